// The local control channel: a unix socket ({state_dir}/control.sock, mode 0660) through which
// technicians' commands (`pressline qa decide`, `pressline qa trigger`) reach the running daemon
// while the cloud is unreachable (docs/operations.md "Local commands").
//
// Protocol: one JSON request per connection (ended by a newline or by closing the write side),
// one JSON response (one line), then the daemon closes the connection. Requests larger than
// 64 KiB are refused. Who may connect is decided by the socket's mode and group (the state
// directory's group; add technicians to it).
//
// Threads: served on the io_context; the handler runs there and answers through `reply`, at once
// or later (a snapshot waits for the camera), from any thread, exactly once.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

namespace pressline::agent {

class ControlServer {
public:
    using Reply = std::function<void(nlohmann::json response)>;
    using Handler = std::function<void(const nlohmann::json& request, Reply reply)>;
    ControlServer(boost::asio::io_context& io, std::filesystem::path socket_path, Handler handler);
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    // Binds (replacing a stale socket file) and accepts; false with `error` when it cannot.
    bool start(std::string& error);
    void stop();

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

// Client side (the CLI): sends `request` to the daemon's socket and returns its response, or
// nullopt with `error` (no daemon listening, timeout...).
std::optional<nlohmann::json> control_request(const std::filesystem::path& socket_path, const nlohmann::json& request,
                                              std::string& error, int timeout_ms = 30000);

}  // namespace pressline::agent
