// Private mosquitto broker (see broker.hpp).
#include "pressline/testing/broker.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>
#include <string_view>

namespace pressline::testing {

namespace fs = std::filesystem;

namespace {

const char* mode_name(BrokerMode m) {
    switch (m) {
    case BrokerMode::plain: return "plain";
    case BrokerMode::pw: return "pw";
    case BrokerMode::tls: return "tls";
    }
    return "plain";
}

bool tcp_accepts(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

// Calls `fn(line)` for each line of `text` from `offset` on, until it returns true.
template <class Fn>
bool any_line(std::string_view text, Fn fn) {
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        if (fn(text.substr(pos, end - pos))) return true;
        pos = end + 1;
    }
    return false;
}

// A mosquitto log line is "TIMESTAMP: message"; returns the message.
std::string_view message_of(std::string_view line) {
    const auto c = line.find(": ");
    return c == std::string_view::npos ? line : line.substr(c + 2);
}

}  // namespace

Broker::Broker(fs::path dir, BrokerMode mode) : dir_(std::move(dir)), mode_(mode) {
    fs::create_directories(dir_);
    prepare();
}

Broker::~Broker() {
    if (proc_.valid() && proc_.running()) {
        proc_.signal(SIGTERM);
        proc_.signal(SIGCONT);
        if (!proc_.wait_for_exit(5s)) proc_.kill_and_wait();
    }
}

fs::path Broker::script() { return fixtures_dir() / "broker" / "broker.sh"; }

void Broker::prepare() {
    auto r = run_command({script().string(), "prepare", dir_.string(), mode_name(mode_)}, 30s);
    if (r.timed_out || r.status.code() != 0)
        throw std::runtime_error("broker.sh prepare failed (" + r.status.str() + "): " + r.err + r.out);
    port_ = std::stoi(read_file(dir_ / "port"));
}

void Broker::launch() {
    SpawnOptions o;
    o.argv = {"mosquitto", "-c", (dir_ / "mosquitto.conf").string()};
    o.stdout_path = dir_ / "mosquitto.stderr";
    o.stderr_path = dir_ / "mosquitto.stderr";
    proc_ = Process::spawn(o);
    const bool ready = poll_until([&] { return !proc_.running() || tcp_accepts(port_); }, 10s, 5ms);
    if (!ready || !proc_.running()) {
        const std::string why = proc_.running() ? "not ready after 10 s" : proc_.exit_status()->str();
        proc_.kill_and_wait();
        throw std::runtime_error("mosquitto on port " + std::to_string(port_) + " failed: " + why +
                                 "\n" + tail_lines(log(), 10) + read_file(dir_ / "mosquitto.stderr"));
    }
}

void Broker::start() {
    if (proc_.valid() && proc_.running()) return;
    for (int attempt = 0;; ++attempt) {
        try {
            launch();
            return;
        } catch (const std::exception&) {
            // The port may have been taken by a concurrent test since it was chosen:
            // choose another one (only before the first successful start).
            if (attempt >= 3) throw;
            prepare();
        }
    }
}

void Broker::freeze() {
    if (proc_.valid() && proc_.running()) proc_.signal(SIGSTOP);
}

void Broker::thaw() {
    if (proc_.valid() && proc_.running()) proc_.signal(SIGCONT);
}

void Broker::stop() {
    if (!proc_.valid() || !proc_.running()) return;
    proc_.signal(SIGTERM);
    proc_.signal(SIGCONT);  // a frozen broker handles the SIGTERM once it runs again
    if (!proc_.wait_for_exit(10s)) proc_.kill_and_wait();
}

void Broker::kill() {
    if (proc_.valid()) proc_.kill_and_wait();
}

void Broker::restart() {
    stop();
    launch();  // same port: never re-prepare here
}

bool Broker::running() { return proc_.valid() && proc_.running(); }

std::string Broker::uri() const {
    return std::string(mode_ == BrokerMode::tls ? "ssl" : "tcp") + "://127.0.0.1:" + std::to_string(port_);
}

BrokerCredentials Broker::credentials() const {
    BrokerCredentials c;
    if (mode_ == BrokerMode::pw) {
        c.username = "testuser";
        c.password = "testpass";
    }
    if (mode_ == BrokerMode::tls) {
        c.ca_file = certs_dir() / "ca.crt";
        c.cert_file = certs_dir() / "client.crt";
        c.key_file = certs_dir() / "client.key";
    }
    return c;
}

std::string Broker::log() const { return read_file(log_path()); }
std::size_t Broker::log_size() const { return file_size_or_zero(log_path()); }

std::string Broker::connect_line(const std::string& client_id, std::size_t offset) const {
    const std::string text = read_file_from(log_path(), offset);
    const std::string needle = " as " + client_id + " (";
    std::string found;
    any_line(text, [&](std::string_view line) {
        auto m = message_of(line);
        if (m.starts_with("New client connected") && m.find(needle) != std::string_view::npos) {
            found = std::string(line);
            return true;
        }
        return false;
    });
    return found;
}

bool Broker::wait_connected(const std::string& client_id, std::chrono::milliseconds timeout,
                            std::size_t offset) const {
    return poll_until([&] { return !connect_line(client_id, offset).empty(); }, timeout);
}

bool Broker::has_subscription(const std::string& client_id, const std::string& topic,
                              std::size_t offset) const {
    const std::string text = read_file_from(log_path(), offset);
    const std::string prefix = client_id + " ";
    return any_line(text, [&](std::string_view line) {
        auto m = message_of(line);
        if (!m.starts_with(prefix)) return false;
        m.remove_prefix(prefix.size());
        // "QOS TOPIC"
        const auto sp = m.find(' ');
        if (sp == std::string_view::npos || sp == 0) return false;
        for (char c : m.substr(0, sp))
            if (c < '0' || c > '9') return false;
        return m.substr(sp + 1) == topic;
    });
}

bool Broker::wait_subscribed(const std::string& client_id, const std::string& topic,
                             std::chrono::milliseconds timeout, std::size_t offset) const {
    return poll_until([&] { return has_subscription(client_id, topic, offset); }, timeout);
}

bool Broker::mentions(const std::string& client_id) const {
    return log().find(client_id) != std::string::npos;
}

}  // namespace pressline::testing
