// The local control channel (see control.hpp).
#include "pressline/agent/control.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <optional>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>

#include "pressline/agent/log.hpp"

namespace pressline::agent {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using json = nlohmann::json;
using local = asio::local::stream_protocol;

namespace {
constexpr std::size_t kMaxRequest = 64 * 1024;
}

struct ControlServer::Impl : std::enable_shared_from_this<ControlServer::Impl> {
    asio::io_context& io;
    fs::path path;
    Handler handler;
    std::optional<local::acceptor> acceptor;
    bool stopped = false;

    Impl(asio::io_context& i, fs::path p, Handler h) : io(i), path(std::move(p)), handler(std::move(h)) {}

    struct Conn {
        explicit Conn(asio::io_context& io) : sock(io) {}
        local::socket sock;
        std::string in;
        std::array<char, 4096> buf{};
        std::string out;
    };

    void accept() {
        auto self = shared_from_this();
        acceptor->async_accept([self](const boost::system::error_code& ec, local::socket s) {
            if (ec || self->stopped) return;
            auto c = std::make_shared<Conn>(self->io);
            c->sock = std::move(s);
            self->read(c);
            self->accept();
        });
    }

    void read(const std::shared_ptr<Conn>& c) {
        auto self = shared_from_this();
        c->sock.async_read_some(asio::buffer(c->buf), [self, c](const boost::system::error_code& ec, std::size_t n) {
            if (!ec) c->in.append(c->buf.data(), n);
            const bool complete = ec || c->in.find('\n') != std::string::npos;
            if (c->in.size() > kMaxRequest) return self->reply(c, {{"status", "error"}, {"reason", "too_large"},
                                                                    {"message", "request larger than 64 KiB"}});
            if (!complete) return self->read(c);
            if (ec && ec != asio::error::eof) return;
            json req = json::parse(c->in, nullptr, false);
            if (!req.is_object())
                return self->reply(c, {{"status", "error"}, {"reason", "malformed_json"},
                                       {"message", "the request must be one JSON object"}});
            auto answer = [self, c](json res) {
                asio::post(self->io, [self, c, res = std::move(res)] { self->reply(c, res); });
            };
            try {
                self->handler(req, answer);
            } catch (const std::exception& e) {
                answer({{"status", "error"}, {"reason", "internal_error"}, {"message", e.what()}});
            }
        });
    }

    void reply(const std::shared_ptr<Conn>& c, const json& res) {
        c->out = res.dump() + "\n";
        asio::async_write(c->sock, asio::buffer(c->out), [c](const boost::system::error_code&, std::size_t) {
            boost::system::error_code ignored;
            c->sock.shutdown(local::socket::shutdown_both, ignored);
            c->sock.close(ignored);
        });
    }
};

ControlServer::ControlServer(asio::io_context& io, fs::path socket_path, Handler handler)
    : impl_(std::make_shared<Impl>(io, std::move(socket_path), std::move(handler))) {}

ControlServer::~ControlServer() { stop(); }

bool ControlServer::start(std::string& error) {
    if (impl_->path.string().size() >= sizeof(sockaddr_un::sun_path)) {
        error = fmt::format("socket path {} is longer than {} bytes", impl_->path.string(), sizeof(sockaddr_un::sun_path) - 1);
        return false;
    }
    std::error_code fec;
    fs::remove(impl_->path, fec);  // a stale socket of a previous run
    try {
        impl_->acceptor.emplace(impl_->io);
        impl_->acceptor->open(local());
        impl_->acceptor->bind(local::endpoint(impl_->path.string()));
        ::chmod(impl_->path.c_str(), 0660);
        impl_->acceptor->listen();
    } catch (const boost::system::system_error& e) {
        error = fmt::format("cannot listen on {}: {}", impl_->path.string(), e.what());
        impl_->acceptor.reset();
        return false;
    }
    impl_->accept();
    return true;
}

void ControlServer::stop() {
    if (impl_->stopped) return;
    impl_->stopped = true;
    if (impl_->acceptor) {
        boost::system::error_code ec;
        impl_->acceptor->close(ec);
        std::error_code fec;
        fs::remove(impl_->path, fec);
    }
}

std::optional<json> control_request(const fs::path& socket_path, const json& request, std::string& error, int timeout_ms) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket_path.string().size() >= sizeof(addr.sun_path)) {
        error = "socket path too long: " + socket_path.string();
        return std::nullopt;
    }
    std::strncpy(addr.sun_path, socket_path.c_str(), sizeof(addr.sun_path) - 1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error = std::strerror(errno);
        return std::nullopt;
    }
    struct Closer { int fd; ~Closer() { ::close(fd); } } closer{fd};
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        error = fmt::format("cannot reach the agent at {}: {} (is `pressline run` running with this config?)",
                            socket_path.string(), std::strerror(errno));
        return std::nullopt;
    }
    const std::string out = request.dump() + "\n";
    for (std::size_t sent = 0; sent < out.size();) {
        const ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) {
            error = fmt::format("sending to the agent failed: {}", std::strerror(errno));
            return std::nullopt;
        }
        sent += static_cast<std::size_t>(n);
    }
    ::shutdown(fd, SHUT_WR);
    std::string in;
    char buf[4096];
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        const int r = ::poll(&p, 1, timeout_ms);
        if (r == 0) {
            error = "the agent did not answer in time";
            return std::nullopt;
        }
        if (r < 0) {
            if (errno == EINTR) continue;
            error = std::strerror(errno);
            return std::nullopt;
        }
        const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            error = std::strerror(errno);
            return std::nullopt;
        }
        if (n == 0) break;
        in.append(buf, static_cast<std::size_t>(n));
    }
    json res = json::parse(in, nullptr, false);
    if (!res.is_object()) {
        error = "the agent's answer is not JSON: " + in;
        return std::nullopt;
    }
    return res;
}

}  // namespace pressline::agent
