// paho-mqtt-cpp behind a small io_context-friendly interface.
#include "pressline/agent/mqtt_link.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <filesystem>
#include <mutex>
#include <unordered_set>

#include <boost/asio/post.hpp>
#include <mqtt/async_client.h>

#include "pressline/agent/log.hpp"

namespace pressline::agent {
namespace {

// Paho's C library error codes, in words a technician can act on.
std::string describe_failure(const mqtt::token& tok, bool tls) {
    const int rc = tok.get_return_code();
    // paho reports a refused CONNECT either as the MQTT 5 reason code or as the return code.
    const int reason = tok.get_reason_code() != 0 ? static_cast<int>(tok.get_reason_code()) : rc;
    std::string msg = rc != 0 ? mqtt::exception::error_str(rc) : std::string();
    switch (reason) {
        case 134: return "broker refused the user name or password (MQTT reason 134); check "
                         "broker.username and broker.password_file";
        case 135: return "broker says not authorized (MQTT reason 135); check broker.username, "
                         "broker.password_file and the broker's ACL";
        case 133: return "broker refused the client id (MQTT reason 133); check broker.client_id";
        default: break;
    }
    if (rc == MQTTASYNC_FAILURE || rc == -1) {
        if (tls)
            return "TCP/TLS connection failed" + (msg.empty() ? std::string() : " (" + msg + ")") +
                   "; if the broker is up, check the TLS certificate settings broker.ca_file, "
                   "broker.cert_file and broker.key_file";
        return "cannot connect (broker unreachable?)" + (msg.empty() ? std::string() : ": " + msg);
    }
    if (msg.empty()) msg = "error " + std::to_string(rc);
    if (reason != 0) msg += " (MQTT reason " + std::to_string(reason) + ")";
    return msg;
}

// paho's C library never sets TCP_NODELAY, so with Nagle's algorithm an event published right
// after paho's PUBACK for a job waits for the broker's delayed TCP ACK: ~40 ms per event (seen
// with strace: PUBACK write, then the PUBLISH write held back until the ACK). paho does not
// expose its socket, so after each connect we set TCP_NODELAY on our process's TCP sockets.
// Harmless for any other TCP socket we own: all of them carry small request/response traffic.
// Calls fn(fd, peer port) for each connected TCP socket of this process.
template <class Fn>
void for_each_tcp_socket(Fn&& fn) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
        int fd = -1;
        try {
            fd = std::stoi(entry.path().filename().string());
        } catch (...) {
            continue;
        }
        int type = 0;
        socklen_t len = sizeof type;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) continue;
        sockaddr_storage addr{};
        socklen_t alen = sizeof addr;
        if (getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &alen) != 0) continue;
        int port = 0;
        if (addr.ss_family == AF_INET)
            port = ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
        else if (addr.ss_family == AF_INET6)
            port = ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
        else
            continue;
        fn(fd, port);
    }
}

void disable_nagle_on_tcp_sockets() {
    for_each_tcp_socket([](int fd, int) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    });
}

int port_of(const std::string& uri) {
    const auto colon = uri.rfind(':');
    try {
        return colon == std::string::npos ? 0 : std::stoi(uri.substr(colon + 1));
    } catch (...) {
        return 0;
    }
}

// Listener for one operation; deletes itself when paho reports the outcome.
}  // namespace

// Listener for one operation; deletes itself when paho reports the outcome. Listeners whose
// operation never completes (the client was replaced) are deleted with their registry.
class MqttLink::OneShot final : public mqtt::iaction_listener {
public:
    using Fn = std::function<void(bool ok, const mqtt::token& tok)>;
    OneShot(std::shared_ptr<Pending> pending, Fn fn) : pending_(std::move(pending)), fn_(std::move(fn)) {
        std::lock_guard lock(pending_->mu);
        pending_->set.insert(this);
    }
    void on_success(const mqtt::token& tok) override { finish(true, tok); }
    void on_failure(const mqtt::token& tok) override { finish(false, tok); }
    void cancel() {  // not queued after all
        std::lock_guard lock(pending_->mu);
        pending_->set.erase(this);
        delete this;
    }

private:
    void finish(bool ok, const mqtt::token& tok) {
        {
            std::lock_guard lock(pending_->mu);
            if (pending_->set.erase(this) == 0) return;  // already released
        }
        fn_(ok, tok);
        delete this;
    }
    std::shared_ptr<Pending> pending_;
    Fn fn_;
};

void MqttLink::Pending::release_all() {
    std::unordered_set<OneShot*> doomed;
    {
        std::lock_guard lock(mu);
        doomed.swap(set);
    }
    for (auto* l : doomed) delete l;
}

// Outcome of a connect attempt. A member, not a one-shot: paho-mqtt-cpp 1.2 calls on_success of
// the connect token twice (upstream issue #322), so this object must outlive the client.
class MqttLink::ConnectListener final : public mqtt::iaction_listener {
public:
    ConnectListener(boost::asio::io_context& io, bool tls) : io_(io), tls_(tls) {}
    std::weak_ptr<MqttLink> link_;
    void on_success(const mqtt::token&) override { report(true, {}); }
    void on_failure(const mqtt::token& tok) override { report(false, describe_failure(tok, tls_)); }

private:
    void report(bool ok, std::string why) {
        boost::asio::post(io_, [w = link_, ok, why = std::move(why)] {
            auto self = w.lock();
            if (!self) return;
            self->connecting_ = false;
            if (!ok) self->schedule_retry(why);
        });
    }
    boost::asio::io_context& io_;
    bool tls_;
};

class MqttLink::Callback final : public mqtt::callback {
public:
    Callback(boost::asio::io_context& io,
             std::function<void(const std::string&, const std::string&)> on_message)
        : io_(&io), on_message_(std::move(on_message)) {}
    std::weak_ptr<MqttLink> link_;  // set once the link is owned by a shared_ptr
    boost::asio::io_context* io_;
    std::function<void(const std::string&, const std::string&)> on_message_;

    void connected(const std::string&) override {
        boost::asio::post(*io_, [w = link_] {
            if (auto l = w.lock()) l->on_connected();
        });
    }
    void connection_lost(const std::string& cause) override {
        boost::asio::post(*io_, [w = link_, cause] {
            if (auto l = w.lock()) l->on_lost(cause);
        });
    }
    void message_arrived(mqtt::const_message_ptr msg) override {
        // paho thread; blocks until durable. Exceptions must not reach paho's C code.
        try {
            on_message_(msg->get_topic(), msg->get_payload_str());
        } catch (const std::exception& e) {
            logger("mqtt")->critical("message handler failed topic={}: {}", msg->get_topic(), e.what());
            std::abort();  // never acknowledge what was not recorded
        }
    }
};


MqttLink::MqttLink(boost::asio::io_context& io, const config::Config& cfg, Topics topics,
                   MqttHandlers handlers, std::string offline_status)
    : io_(io), cfg_(cfg), topics_(std::move(topics)), handlers_(std::move(handlers)),
      offline_status_(std::move(offline_status)), retry_timer_(io),
      backoff_(cfg.broker.reconnect_min_s), broker_port_(port_of(cfg.broker.uri)) {
    callback_ = std::make_unique<Callback>(io_, handlers_.on_message);
    connect_listener_ = std::make_unique<ConnectListener>(io_, cfg.broker.uses_tls());
    make_client();
}

void MqttLink::make_client() {
    mqtt::create_options copts(MQTTVERSION_5);
    // Our outbox keeps events while disconnected; paho must not buffer them a second time.
    copts.set_send_while_disconnected(false);
    // Applies while connected too (TESTBED.md): keep it well above what we keep in flight.
    copts.set_max_buffered_messages(std::max(1000, cfg_.broker.max_inflight * 4));
    client_ = std::make_unique<mqtt::async_client>(cfg_.broker.uri, cfg_.broker.client_id, copts,
                                                   nullptr);
    client_->set_callback(*callback_);
}

void MqttLink::destroy_client() {
    if (!client_) return;
    try {
        client_->disable_callbacks();
    } catch (...) {
    }
    client_.reset();
    pending_->release_all();
}

MqttLink::~MqttLink() {
    retry_timer_.cancel();
    destroy_client();
}

void MqttLink::start() {
    callback_->link_ = weak_from_this();
    connect_listener_->link_ = weak_from_this();
    connect();
}

void MqttLink::connect() {
    if (stopping_ || connecting_) return;
    connecting_ = true;
    const auto& b = cfg_.broker;
    // Built in place in a member that outlives the connection: paho-mqtt-cpp 1.2 copies of
    // connect_options keep pointing at the original's properties, will and ssl structures, and
    // paho-mqtt-c reads them when it sends CONNECT, after connect() returned. A local builder
    // left CONNECT to read freed memory (under ASan the session expiry came out wrong and the
    // broker dropped the session; without ASan it worked by luck).
    conn_opts_ = std::make_unique<mqtt::connect_options>();
    auto& o = *conn_opts_;
    o.set_mqtt_version(MQTTVERSION_5);
    o.set_clean_start(false);
    o.set_properties(mqtt::properties{
        {mqtt::property::SESSION_EXPIRY_INTERVAL, static_cast<int32_t>(b.session_expiry_s)}});
    o.set_keep_alive_interval(std::chrono::seconds(b.keepalive_s));
    o.set_connect_timeout(std::chrono::seconds(b.connect_timeout_s));
    o.set_max_inflight(b.max_inflight);
    o.set_will(mqtt::will_options(topics_.status, offline_status_, 1, true));
    if (!b.username.empty()) o.set_user_name(b.username);
    if (!b.password.empty()) o.set_password(b.password);
    if (b.uses_tls()) {
        mqtt::ssl_options ssl;
        if (!b.ca_file.empty()) ssl.set_trust_store(b.ca_file.string());
        if (!b.cert_file.empty()) ssl.set_key_store(b.cert_file.string());
        if (!b.key_file.empty()) ssl.set_private_key(b.key_file.string());
        ssl.set_enable_server_cert_auth(true);
        ssl.set_verify(true);
        // No ssl error handler: paho-mqtt-cpp 1.2 copies ssl_options without re-pointing the
        // handler's context, and calling it crashed (seen with an untrusted server certificate).
        o.set_ssl(std::move(ssl));
    }
    logger("mqtt")->info("connecting uri={} client_id={} tls={}", b.uri, b.client_id, b.uses_tls());
    try {
        client_->connect(o, nullptr, *connect_listener_);
    } catch (const mqtt::exception& e) {
        connecting_ = false;
        schedule_retry(e.what());
    }
}

void MqttLink::schedule_retry(const std::string& why) {
    if (stopping_) return;
    if (why != last_failure_) {
        logger("mqtt")->error("broker connection failed uri={}: {}; retrying every {}s up to {}s",
                              cfg_.broker.uri, why, cfg_.broker.reconnect_min_s,
                              cfg_.broker.reconnect_max_s);
        last_failure_ = why;
    } else {
        logger("mqtt")->debug("broker connection failed again: {}", why);
    }
    const auto delay = backoff_;
    backoff_ = std::min(backoff_ * 2, std::chrono::seconds(cfg_.broker.reconnect_max_s));
    reconnect_after(delay);
}

void MqttLink::reconnect_after(std::chrono::seconds delay) {
    retry_timer_.expires_after(delay);
    retry_timer_.async_wait([w = weak_from_this()](const boost::system::error_code& ec) {
        if (ec == boost::asio::error::operation_aborted) return;
        auto self = w.lock();
        if (!self || self->stopping_) return;
        // A fresh client (and options) per attempt: see on_lost() and connect().
        self->destroy_client();
        self->make_client();
        self->connecting_ = false;
        self->connect();
    });
}

void MqttLink::on_connected() {
    if (stopping_) return;
    connected_ = true;
    connecting_ = false;
    last_failure_.clear();
    backoff_ = std::chrono::seconds(cfg_.broker.reconnect_min_s);
    disable_nagle_on_tcp_sockets();
    logger("mqtt")->info("connected uri={} client_id={}", cfg_.broker.uri, cfg_.broker.client_id);
    // Subscribing again is harmless with a persistent session and covers a lost session.
    std::vector<std::string> filters{topics_.jobs, topics_.commands};
    filters.insert(filters.end(), topics_.pool_subscriptions.begin(), topics_.pool_subscriptions.end());
    try {
        for (const auto& f : filters) {
            auto* l = new OneShot(pending_, [f](bool ok, const mqtt::token& tok) {
                if (!ok && tok.get_return_code() == 0 && tok.get_reason_code() == 0)
                    logger("mqtt")->warn("subscribe not confirmed topic={}: connection lost", f);
                else if (!ok)
                    logger("mqtt")->error("subscribe failed topic={}: {}", f,
                                          mqtt::exception::reason_code_str(tok.get_reason_code()));
                else
                    logger("mqtt")->debug("subscribed topic={}", f);
            });
            try {
                client_->subscribe(f, 1, nullptr, *l);
            } catch (...) {
                l->cancel();
                throw;
            }
        }
    } catch (const mqtt::exception& e) {
        logger("mqtt")->error("subscribe failed: {}", e.what());
    }
    if (handlers_.connected) handlers_.connected();
}

void MqttLink::on_lost(const std::string& cause) {
    if (!connected_) return;
    connected_ = false;
    logger("mqtt")->warn("connection lost uri={} cause=\"{}\"; reconnecting in {}s",
                         cfg_.broker.uri, cause.empty() ? "unknown" : cause, backoff_.count());
    if (handlers_.disconnected) handlers_.disconnected(cause);
    // A fresh client per connection: paho-mqtt-c 1.3 re-sends its in-flight QoS 1 messages after
    // a reconnect from freed memory (upstream #1310/#1592; seen as events with garbage bytes).
    // A new client has nothing in flight; the outbox re-sends every unacknowledged event itself,
    // and the broker keeps our session (subscriptions, queued jobs) by client id.
    reconnect_after(backoff_);
}

void MqttLink::drop_connection() const {
    int dropped = 0;
    for_each_tcp_socket([&](int fd, int port) {
        if (port != broker_port_) return;
        ::shutdown(fd, SHUT_RDWR);
        ++dropped;
    });
    logger("mqtt")->warn("dropped the broker connection to refuse a message sockets={}", dropped);
}

bool MqttLink::publish(const std::string& topic, const std::string& payload, bool retained,
                       std::function<void(bool ok)> done) {
    if (!connected_) return false;
    auto msg = mqtt::make_message(topic, payload, 1, retained);
    auto* l = new OneShot(pending_, [&io = io_, done = std::move(done)](bool ok, const mqtt::token&) {
        if (done) boost::asio::post(io, [done, ok] { done(ok); });
    });
    try {
        client_->publish(msg, nullptr, *l);
        return true;
    } catch (const mqtt::exception& e) {
        l->cancel();
        logger("mqtt")->debug("publish not queued topic={}: {}", topic, e.what());
        return false;
    }
}

void MqttLink::stop(std::chrono::milliseconds timeout, const std::string& final_status) {
    stopping_ = true;
    retry_timer_.cancel();
    if (!client_) return;
    try {
        if (connected_) {
            auto tok = client_->publish(mqtt::make_message(
                topics_.status, final_status.empty() ? offline_status_ : final_status, 1, true));
            tok->wait_for(timeout / 2);
        }
        if (client_->is_connected()) client_->disconnect(timeout / 2)->wait_for(timeout / 2);
    } catch (const mqtt::exception& e) {
        logger("mqtt")->warn("clean disconnect failed: {}", e.what());
    }
    connected_ = false;
}

}  // namespace pressline::agent
