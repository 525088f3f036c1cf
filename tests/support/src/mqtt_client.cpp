// MQTT 5 test client on paho-mqtt-cpp (see mqtt_client.hpp).
#include "pressline/testing/mqtt_client.hpp"

#include <unistd.h>

#include <atomic>
#include <deque>
#include <optional>
#include <stdexcept>

#include <mqtt/async_client.h>

// Under PRESSLINE_SANITIZE: paho's C library keeps allocations until exit; not our leaks.
extern "C" const char* __lsan_default_suppressions() { return "leak:libpaho-mqtt3as.so\n"; }

namespace pressline::testing {

namespace {

std::atomic<int> g_client_seq{0};

// Fills `c` in place. paho-mqtt-cpp 1.2.0's connect_options copy/move does not re-point the
// C struct's connectProperties at the copy's own properties: a connect_options made by
// connect_options_builder::finalize() (a copy) sends garbage or no Session Expiry Interval,
// and the session dies at disconnect. So the options object is built where it lives (a
// member of MqttClient, alive as long as the client) and never copied before connect().
void fill_connect_options(mqtt::connect_options& c, const ClientOptions& o) {
    c.set_mqtt_version(MQTTVERSION_5);
    c.set_clean_start(!o.persistent_session);
    c.set_keep_alive_interval(o.keepalive);
    c.set_connect_timeout(std::chrono::seconds(5));
    if (o.auto_reconnect) c.set_automatic_reconnect(std::chrono::seconds(1), std::chrono::seconds(2));
    if (!o.credentials.username.empty()) c.set_user_name(o.credentials.username);
    if (!o.credentials.password.empty()) c.set_password(o.credentials.password);
    if (o.uri.starts_with("ssl://") || o.uri.starts_with("mqtts://")) {
        mqtt::ssl_options s;
        if (!o.credentials.ca_file.empty()) s.set_trust_store(o.credentials.ca_file.string());
        if (!o.credentials.cert_file.empty()) s.set_key_store(o.credentials.cert_file.string());
        if (!o.credentials.key_file.empty()) s.set_private_key(o.credentials.key_file.string());
        s.set_enable_server_cert_auth(true);
        c.set_ssl(std::move(s));
    }
    if (o.persistent_session) {
        mqtt::properties props;
        props.add({mqtt::property::SESSION_EXPIRY_INTERVAL, static_cast<int>(o.session_expiry_s)});
        c.set_properties(std::move(props));
    }
}

}  // namespace

MqttClient::MqttClient(ClientOptions options) : options_(std::move(options)) {
    if (options_.client_id.empty())
        options_.client_id = "it-client-" + std::to_string(::getpid()) + "-" + std::to_string(++g_client_seq);
    // ssl:// is what paho understands; mqtts:// is an alias the agent accepts.
    std::string uri = options_.uri;
    if (uri.starts_with("mqtts://")) uri = "ssl://" + uri.substr(8);
    mqtt::create_options co(MQTTVERSION_5);
    co.set_max_buffered_messages(10000);
    cli_ = std::make_unique<mqtt::async_client>(uri, options_.client_id, co, nullptr);

    cli_->set_message_callback([this](mqtt::const_message_ptr m) {
        Message msg;
        msg.topic = m->get_topic();
        msg.payload = m->get_payload_str();
        msg.qos = m->get_qos();
        msg.retained = m->is_retained();
        msg.duplicate = m->is_duplicate();
        msg.received = Clock::now();
        std::function<void(const Message&)> hook;
        {
            std::lock_guard lk(mu_);
            messages_.push_back(msg);
            hook = hook_;
        }
        if (hook) hook(msg);
        cv_.notify_all();
    });
    cli_->set_connected_handler([this](const std::string&) {
        std::vector<std::pair<std::string, int>> subs;
        int n;
        {
            std::lock_guard lk(mu_);
            n = ++connects_;
            subs = subscriptions_;
        }
        // After an automatic reconnect: renew subscriptions in case the session was lost.
        // Never wait on a token here (paho's callback thread would deadlock).
        if (n > 1) {
            for (const auto& [filter, qos] : subs) {
                try {
                    cli_->subscribe(filter, qos);
                } catch (...) {
                }
            }
        }
        cv_.notify_all();
    });
    cli_->set_connection_lost_handler([this](const std::string&) { cv_.notify_all(); });
}

MqttClient::~MqttClient() {
    try {
        disconnect();
    } catch (...) {
    }
    // Callbacks use the members below cli_: stop them before those are destroyed.
    try {
        cli_->disable_callbacks();
    } catch (...) {
    }
    cli_.reset();
    conn_opts_.reset();
}

void MqttClient::connect(std::chrono::milliseconds timeout) {
    try {
        conn_opts_ = std::make_unique<mqtt::connect_options>();
        fill_connect_options(*conn_opts_, options_);
        // connect() takes its argument by value; the copy's properties pointer still refers
        // to *conn_opts_, which outlives the connection (see fill_connect_options).
        auto tok = cli_->connect(*conn_opts_);
        if (!tok->wait_for(timeout))
            throw std::runtime_error("MQTT connect to " + options_.uri + " timed out");
    } catch (const mqtt::exception& e) {
        throw std::runtime_error("MQTT connect to " + options_.uri + " as " + options_.client_id +
                                 " failed: " + e.what() + " (rc " + std::to_string(e.get_reason_code()) + ")");
    }
    // The connected handler may run a little after the token completes.
    wait_connect_count(1, 5s);
}

void MqttClient::disconnect() {
    if (cli_ && cli_->is_connected()) cli_->disconnect()->wait_for(std::chrono::seconds(5));
}

bool MqttClient::is_connected() const { return cli_ && cli_->is_connected(); }

int MqttClient::connect_count() const {
    std::lock_guard lk(mu_);
    return connects_;
}

bool MqttClient::wait_connect_count(int n, std::chrono::milliseconds timeout) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, timeout, [&] { return connects_ >= n; });
}

void MqttClient::subscribe(const std::string& filter, int qos) {
    {
        std::lock_guard lk(mu_);
        subscriptions_.emplace_back(filter, qos);
    }
    try {
        if (!cli_->subscribe(filter, qos)->wait_for(std::chrono::seconds(10)))
            throw std::runtime_error("subscribe to " + filter + " timed out");
    } catch (const mqtt::exception& e) {
        throw std::runtime_error("subscribe to " + filter + " failed: " + e.what());
    }
}

void MqttClient::publish(const std::string& topic, std::string_view payload, int qos, bool retained) {
    try {
        auto msg = mqtt::make_message(topic, payload.data(), payload.size(), qos, retained);
        if (!cli_->publish(msg)->wait_for(std::chrono::seconds(10)))
            throw std::runtime_error("publish to " + topic + " timed out");
    } catch (const mqtt::exception& e) {
        throw std::runtime_error("publish to " + topic + " failed: " + e.what());
    }
}

void MqttClient::publish_many(const std::vector<std::pair<std::string, std::string>>& msgs,
                              std::size_t window) {
    std::deque<mqtt::delivery_token_ptr> pending;
    auto wait_front = [&] {
        if (!pending.front()->wait_for(std::chrono::seconds(10)))
            throw std::runtime_error("publish timed out");
        pending.pop_front();
    };
    try {
        for (const auto& [topic, payload] : msgs) {
            if (pending.size() >= window) wait_front();
            pending.push_back(cli_->publish(mqtt::make_message(topic, payload.data(), payload.size(), 1, false)));
        }
        while (!pending.empty()) wait_front();
    } catch (const mqtt::exception& e) {
        throw std::runtime_error(std::string("publish failed: ") + e.what());
    }
}

std::vector<Message> MqttClient::messages() const {
    std::lock_guard lk(mu_);
    return messages_;
}

std::size_t MqttClient::message_count() const {
    std::lock_guard lk(mu_);
    return messages_.size();
}

bool MqttClient::wait_for(const std::function<bool(const std::vector<Message>&)>& pred,
                          std::chrono::milliseconds timeout) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, timeout, [&] { return pred(messages_); });
}

void MqttClient::on_message(std::function<void(const Message&)> hook) {
    std::lock_guard lk(mu_);
    hook_ = std::move(hook);
}

std::optional<Message> fetch_retained(const ClientOptions& base, const std::string& topic,
                                      std::chrono::milliseconds timeout) {
    ClientOptions o = base;
    o.client_id.clear();
    o.persistent_session = false;
    o.auto_reconnect = false;
    MqttClient c(o);
    c.connect();
    c.subscribe(topic, 1);
    std::optional<Message> out;
    c.wait_for(
        [&](const std::vector<Message>& ms) {
            for (const auto& m : ms)
                if (m.topic == topic && m.retained) {
                    out = m;
                    return true;
                }
            return false;
        },
        timeout);
    return out;
}

}  // namespace pressline::testing
