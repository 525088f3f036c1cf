// An MQTT 5 test client on paho-mqtt-cpp's async API: publishes raw payloads at QoS 1
// (waiting for the broker's PUBACK) and records everything that arrives on its subscriptions.
// By default it keeps a persistent session (clean start off + session expiry) and reconnects
// automatically, so messages published while it was away (broker restart) are not lost.
//
// Threads: paho calls back on its own thread; the recorded messages are guarded by a mutex
// and waits use a condition variable. Public methods may be called from any thread except
// from inside a handler installed with on_message().
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pressline/testing/broker.hpp"
#include "pressline/testing/util.hpp"

namespace mqtt {
class async_client;
class connect_options;
}

namespace pressline::testing {

struct ClientOptions {
    std::string uri;                  // tcp://... or ssl://...
    std::string client_id;
    BrokerCredentials credentials;    // user/password and/or TLS files, as the broker needs
    bool persistent_session = true;   // clean start off + session expiry
    std::uint32_t session_expiry_s = 3600;
    std::chrono::seconds keepalive{10};
    bool auto_reconnect = true;       // 1..2 s retry steps
};

struct Message {
    std::string topic;
    std::string payload;
    int qos = 0;
    bool retained = false;
    bool duplicate = false;
    Clock::time_point received;
};

class MqttClient {
public:
    explicit MqttClient(ClientOptions options);
    ~MqttClient();  // disconnects (errors ignored)
    MqttClient(const MqttClient&) = delete;
    MqttClient& operator=(const MqttClient&) = delete;

    // Connects; throws std::runtime_error with paho's reason on failure.
    void connect(std::chrono::milliseconds timeout = kWait);
    void disconnect();
    bool is_connected() const;
    // Times the connection came up (first connect and automatic reconnects).
    int connect_count() const;
    // Waits until connect_count() >= n (after a broker restart: n = previous + 1).
    bool wait_connect_count(int n, std::chrono::milliseconds timeout = kWait);

    // Subscribes (waits for SUBACK). Subscriptions are renewed after every reconnect.
    void subscribe(const std::string& filter, int qos = 1);
    // Publishes and waits for the PUBACK (QoS 1/2); throws on failure.
    void publish(const std::string& topic, std::string_view payload, int qos = 1, bool retained = false);
    // Publishes many (topic, payload) pairs at QoS 1 with at most `window` unacknowledged.
    void publish_many(const std::vector<std::pair<std::string, std::string>>& msgs, std::size_t window = 32);

    // Everything received so far, in arrival order.
    std::vector<Message> messages() const;
    std::size_t message_count() const;
    // Waits until `pred` (called under the lock, on every arrival) holds.
    bool wait_for(const std::function<bool(const std::vector<Message>&)>& pred,
                  std::chrono::milliseconds timeout = kWait);
    // Installs a hook called on paho's thread for each arriving message, after it has been
    // recorded (used by StationClient to parse events once).
    void on_message(std::function<void(const Message&)> hook);

    const ClientOptions& options() const { return options_; }

private:
    ClientOptions options_;
    std::unique_ptr<mqtt::connect_options> conn_opts_;  // must outlive cli_'s connection
    std::unique_ptr<mqtt::async_client> cli_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::vector<Message> messages_;
    std::vector<std::pair<std::string, int>> subscriptions_;
    std::function<void(const Message&)> hook_;
    int connects_ = 0;
};

// Connects a throw-away client (clean session), subscribes to `topic` and returns the first
// message that arrives with the retained flag within `timeout`.
std::optional<Message> fetch_retained(const ClientOptions& base, const std::string& topic,
                                      std::chrono::milliseconds timeout = 5s);

}  // namespace pressline::testing
