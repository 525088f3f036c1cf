// A private mosquitto 2.0 broker for one test process. The configuration (port, persistence,
// queue limits, TLS/password variants) comes from tests/fixtures/broker/broker.sh `prepare`;
// this class runs mosquitto itself (fork/exec + waitpid: no zombies, no orphan survives the
// test) and reads its log to see who connected and subscribed.
//
// Threads: not thread-safe; use from the test's main thread.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

#include "pressline/testing/process.hpp"
#include "pressline/testing/util.hpp"

namespace pressline::testing {

enum class BrokerMode { plain, pw, tls };

// Credentials a client needs for a broker of a given mode.
struct BrokerCredentials {
    std::string username;                 // pw: "testuser"
    std::string password;                 // pw: "testpass"
    std::filesystem::path ca_file;        // tls: certs/ca.crt
    std::filesystem::path cert_file;      // tls: certs/client.crt (signed by ca)
    std::filesystem::path key_file;       // tls: certs/client.key (0600)
};

class Broker {
public:
    // Prepares DIR (config, certs, password file) and picks a port. Does not start.
    Broker(std::filesystem::path dir, BrokerMode mode);
    ~Broker();  // stops (SIGTERM, then SIGKILL after 5 s)
    Broker(const Broker&) = delete;
    Broker& operator=(const Broker&) = delete;

    // Starts mosquitto and waits until it accepts TCP connections. If the port was taken
    // between choosing and binding on the first start, prepares again with a new port.
    void start();
    // SIGTERM and wait (mosquitto saves its persistence file).
    void stop();
    // SIGKILL and wait (a crash: persistence as of the last autosave).
    void kill();
    // stop() + start() on the same port with the same persistence.
    void restart();
    // SIGSTOP / SIGCONT: a hung broker (connections stay open, nothing is read or answered).
    // stop() and kill() thaw a frozen broker first.
    void freeze();
    void thaw();
    bool running();

    BrokerMode mode() const { return mode_; }
    int port() const { return port_; }
    // tcp://127.0.0.1:PORT, or ssl://127.0.0.1:PORT in tls mode.
    std::string uri() const;
    const std::filesystem::path& dir() const { return dir_; }
    std::filesystem::path certs_dir() const { return dir_ / "certs"; }
    std::filesystem::path log_path() const { return dir_ / "mosquitto.log"; }
    BrokerCredentials credentials() const;

    std::string log() const;
    std::size_t log_size() const;  // an offset for the *_since waits below
    // Whether the log (from `offset` on) shows `client_id` connecting: the "New client
    // connected ... as CLIENT_ID (pV, cN, kN)." line, returned whole ("" if none yet).
    std::string connect_line(const std::string& client_id, std::size_t offset = 0) const;
    bool wait_connected(const std::string& client_id, std::chrono::milliseconds timeout = kWait,
                        std::size_t offset = 0) const;
    // Whether the log shows `client_id` subscribing to exactly `topic` (the broker logs
    // "CLIENT_ID QOS TOPIC" when it has added the subscription).
    bool has_subscription(const std::string& client_id, const std::string& topic,
                          std::size_t offset = 0) const;
    bool wait_subscribed(const std::string& client_id, const std::string& topic,
                         std::chrono::milliseconds timeout = kWait, std::size_t offset = 0) const;
    // Whether `client_id` appears anywhere in the log (connected, tried, was refused...).
    bool mentions(const std::string& client_id) const;

private:
    void prepare();
    void launch();
    static std::filesystem::path script();

    std::filesystem::path dir_;
    BrokerMode mode_;
    int port_ = 0;
    Process proc_;
};

}  // namespace pressline::testing
