// The MQTT link to the cloud: one paho async client (MQTT 5, persistent session, stable client
// id, Last Will, TLS, username/password), connection management with backoff, subscriptions.
//
// Threads: construct, start(), stop(), publish() and the accessors on the io_context thread.
// paho calls back on its own threads; every callback except `on_message` is posted to the
// io_context. `on_message` runs on paho's thread and must not return before the message is
// durable (paho acknowledges on return; see ARCHITECTURE.md "Threads").
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "pressline/agent/topics.hpp"
#include "pressline/config/config.hpp"

namespace mqtt {
class async_client;
class connect_options;
}

namespace pressline::agent {

struct MqttHandlers {
    std::function<void()> connected;                                  // io thread
    std::function<void(const std::string& cause)> disconnected;       // io thread
    // paho thread, blocking (see above)
    std::function<void(const std::string& topic, const std::string& payload)> on_message;
};

class MqttLink : public std::enable_shared_from_this<MqttLink> {
public:
    // `online_status` is published retained on every connect; `offline_status` is the Last Will
    // and is published by stop().
    MqttLink(boost::asio::io_context& io, const config::Config& cfg, Topics topics,
             MqttHandlers handlers, std::string offline_status);
    ~MqttLink();

    void start();
    // Publishes the retained offline status (`final_status`, or the Last Will text if empty),
    // then disconnects cleanly; waits at most `timeout`. Blocks the calling (io) thread.
    void stop(std::chrono::milliseconds timeout, const std::string& final_status = {});

    bool connected() const { return connected_; }

    // The Last Will (retained offline status) for the next connection. A Will cannot change
    // during a connection; refusing a message drops the connection, so a station whose intake
    // is blocked shows that through its Will.
    void set_offline_status(std::string status) { offline_status_ = std::move(status); }

    // Cuts the TCP connection to the broker at once (shutdown of paho's socket), so that no
    // further packet — in particular no PUBACK for the message being handled — can go out.
    // paho notices, reports the loss and reconnects by itself. Any thread, also paho's.
    void drop_connection() const;

    // QoS 1 publish. `done(ok)` runs on the io thread when the broker acknowledged (ok=true) or
    // the publish failed (ok=false). Returns false if it could not even be queued.
    bool publish(const std::string& topic, const std::string& payload, bool retained,
                 std::function<void(bool ok)> done);

    const Topics& topics() const { return topics_; }

private:
    class Callback;
    class ConnectListener;
    class OneShot;
    struct Pending {  // listeners of operations not yet completed
        std::mutex mu;
        std::unordered_set<OneShot*> set;
        void release_all();
    };
    void make_client();
    void destroy_client();
    void connect();
    void schedule_retry(const std::string& why);
    void reconnect_after(std::chrono::seconds delay);  // with a new client
    void on_connected();
    void on_lost(const std::string& cause);

    boost::asio::io_context& io_;
    config::Config cfg_;
    Topics topics_;
    MqttHandlers handlers_;
    std::string offline_status_;
    std::unique_ptr<Callback> callback_;
    std::unique_ptr<ConnectListener> connect_listener_;
    std::shared_ptr<Pending> pending_ = std::make_shared<Pending>();
    std::unique_ptr<mqtt::connect_options> conn_opts_;  // must outlive the connection (see .cpp)
    std::unique_ptr<mqtt::async_client> client_;
    boost::asio::steady_timer retry_timer_;
    std::chrono::seconds backoff_;
    bool connected_ = false;
    bool stopping_ = false;
    bool connecting_ = false;
    std::string last_failure_;
    int broker_port_ = 0;  // to recognise paho's socket among ours
};

}  // namespace pressline::agent
