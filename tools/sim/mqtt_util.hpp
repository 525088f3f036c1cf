// MQTT helpers shared by the dispatcher stand-in (tools/sim) and the benchmarks (bench/):
// client creation (MQTT 5), topic names of the contract, a publisher that bounds outstanding
// QoS 1 publishes, and small process utilities.
//
// Thread-safety: WindowedPublisher may be used from one publishing thread while paho's thread
// completes its deliveries; everything else is plain functions.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <mqtt/async_client.h>

namespace pressline::sim {

inline constexpr std::string_view kDefaultPrefix = "pressline/v1";
inline constexpr std::string_view kEventTypePrefix = "com.pressline.";

// Topic names from docs/mqtt-api.md for one station.
struct Topics {
    std::string prefix, shop, station;
    std::string jobs() const { return prefix + "/" + shop + "/" + station + "/jobs"; }
    std::string commands() const { return prefix + "/" + shop + "/" + station + "/commands"; }
    std::string events() const { return prefix + "/" + shop + "/" + station + "/events"; }
    std::string status() const { return prefix + "/" + shop + "/" + station + "/status"; }
    std::string pool_jobs(const std::string& pool) const {
        return prefix + "/" + shop + "/pool/" + pool + "/jobs";
    }
};

// "pressline-dispatch-<role>-<pid>-<random hex>": a fresh id per run, so a clean session never
// takes over another tool's connection.
std::string fresh_client_id(std::string_view role);

struct ConnectSettings {
    bool clean_start = true;
    std::uint32_t session_expiry_s = 0;   // > 0 keeps the session at the broker after disconnect
    int max_inflight = 256;
    std::chrono::seconds timeout{5};
    bool auto_reconnect = true;
    int max_buffered = 1000;              // paho's limit of outstanding publishes (default 100)
};

// An MQTT 5 client (no file persistence) together with its connect options.
//
// Why the options live here: in paho-mqtt-cpp 1.2 a copied or moved mqtt::connect_options keeps
// pointing at the *original's* MQTT 5 properties (upstream issue #362; connect_options_builder::
// finalize() returns such a copy), and async_client::connect() copies again. The original must be
// alive whenever connect() runs (a helper returning finalize()'d options crashed here), so it is
// a member built in place, and this class is neither copyable nor movable.
class Client {
public:
    Client(std::string uri, const std::string& client_id, const ConnectSettings& settings = {});
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;
    ~Client();

    // Connects and waits; throws std::runtime_error with a readable message on failure.
    // Returns whether the broker had a session for this client id.
    bool connect();
    // Disconnects if connected, ignoring errors.
    void disconnect();

    // The broker's Receive Maximum from CONNACK (65535 when it sent none): how many QoS 1
    // publishes it accepts in flight. mosquitto says 20 (its max_inflight_messages).
    int receive_maximum() const { return receive_maximum_; }

    mqtt::async_client& operator*() { return *client_; }
    mqtt::async_client* operator->() { return client_.get(); }
    const std::string& uri() const { return uri_; }

private:
    std::string uri_;
    ConnectSettings settings_;
    mqtt::connect_options options_;              // must outlive client_ (see above)
    std::unique_ptr<mqtt::async_client> client_;
    int receive_maximum_ = 65535;
};

// Reads a whole file as raw bytes ("-" reads stdin). Throws std::runtime_error.
std::string read_file_bytes(const std::filesystem::path& file);

// CLOCK_MONOTONIC in nanoseconds: comparable across processes of one boot.
std::int64_t monotonic_ns();

// Keeps at most `window` QoS 1 publishes outstanding, and never more than the broker's Receive
// Maximum: what paho queues beyond it collapses throughput (measured with mosquitto's 20:
// window 20 -> ~10k msg/s, 30 -> ~3k, 64 -> ~1.7k; see also TESTBED.md).
class WindowedPublisher {
public:
    // `client` must be connected (its Receive Maximum is known then).
    WindowedPublisher(Client& client, int window);
    int window() const { return window_; }
    WindowedPublisher(const WindowedPublisher&) = delete;
    WindowedPublisher& operator=(const WindowedPublisher&) = delete;
    ~WindowedPublisher();

    // Blocks while the window is full. Caller's thread only (never a paho callback).
    void publish(const std::string& topic, std::string payload, int qos = 1);
    // Waits until every publish is acknowledged or failed, or the timeout passes.
    bool drain(std::chrono::milliseconds timeout);

    std::uint64_t acked() const { return acked_.load(); }
    std::uint64_t failed() const { return failed_.load(); }
    std::string last_error() const;

private:
    class Listener : public mqtt::iaction_listener {
    public:
        explicit Listener(WindowedPublisher& owner) : owner_(owner) {}
        void on_success(const mqtt::token&) override;
        void on_failure(const mqtt::token& tok) override;

    private:
        WindowedPublisher& owner_;
    };
    void done(bool ok, std::string error);

    Client& client_;
    int window_;
    Listener listener_{*this};
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    int outstanding_ = 0;
    std::string last_error_;
    std::atomic<std::uint64_t> acked_{0};
    std::atomic<std::uint64_t> failed_{0};
};

}  // namespace pressline::sim
