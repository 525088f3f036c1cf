// Raw TCP driver (see pressline/drivers/tcp.hpp and drivers/tcp/README.md).
//
// One private io_context per Client. Every step starts one asynchronous operation and runs the
// context until the step's deadline (run_until); when the time is up the socket's operations are
// cancelled and the context is run until the cancelled handler has completed (immediate), so no
// handler outlives the call and no call blocks longer than its timeout.
#include "pressline/drivers/tcp.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

namespace pressline::drivers::tcp {

namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

class Category final : public std::error_category {
public:
    const char* name() const noexcept override { return "pressline.tcp"; }
    std::string message(int ev) const override {
        switch (static_cast<Errc>(ev)) {
        case Errc::refused: return "connection refused";
        case Errc::timeout: return "timed out";
        case Errc::closed: return "connection closed by the peer";
        case Errc::resolve: return "host name does not resolve";
        case Errc::io: return "socket error";
        }
        return "unknown TCP driver error";
    }
};

// Peer went away: EOF, reset, broken pipe (and their relatives).
bool is_closed(const boost::system::error_code& ec) {
    return ec == asio::error::eof || ec == asio::error::connection_reset ||
           ec == asio::error::broken_pipe || ec == asio::error::connection_aborted ||
           ec == asio::error::not_connected || ec == asio::error::shut_down;
}

std::string ms_text(milliseconds ms) { return std::to_string(ms.count()) + " ms"; }

// Name resolution bounded by a deadline. getaddrinfo() cannot be cancelled, so it runs on a
// detached thread that owns its state jointly with the caller; on timeout the caller returns and
// the thread finishes (and frees the result) on its own.
struct Resolution {
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
    int rc = 0;
    int sys_errno = 0;
    std::vector<tcp::endpoint> endpoints;
};

}  // namespace

const std::error_category& category() noexcept {
    static const Category c;
    return c;
}

std::error_code make_error_code(Errc e) noexcept { return {static_cast<int>(e), category()}; }

struct Client::Impl {
    Endpoint ep;
    // Created on first use: the io_context's constructor throws if it cannot get its file
    // descriptors (epoll, eventfd, timerfd), and a Client's constructor must not throw.
    std::optional<asio::io_context> io;
    std::optional<tcp::socket> sock;  // declared after io: destroyed before it
    std::string pending;  // bytes received but not yet returned by read()
    std::string where;    // "tcp HOST:PORT: "

    explicit Impl(Endpoint e) : ep(std::move(e)) {
        const bool v6 = ep.host.find(':') != std::string::npos && ep.host.front() != '[';
        where = "tcp " + (v6 ? "[" + ep.host + "]" : ep.host) + ":" + std::to_string(ep.port) + ": ";
    }
    ~Impl() { close(); }

    bool is_open() const { return sock && sock->is_open(); }

    Status make_io() {
        if (io) return {};
        try {
            io.emplace(1);  // one thread runs it
            sock.emplace(*io);
        } catch (const boost::system::system_error& e) {
            sock.reset();
            io.reset();
            return fail<std::monostate>(Errc::io, "connect: cannot create an I/O context: " + e.code().message());
        }
        return {};
    }

    template <class T>
    Outcome<T> fail(Errc e, const std::string& what, T value = T{}) const {
        Outcome<T> o;
        o.value = std::move(value);
        o.code = make_error_code(e);
        o.message = where + what;
        return o;
    }

    // Closes gracefully: what the kernel still holds of our writes is sent, then a FIN. Unread
    // received bytes are drained first, because closing a socket with unread data makes Linux
    // send a reset and discard what was not yet sent.
    void close() {
        if (is_open()) {
            std::array<char, 4096> buf;
            for (int i = 0; i < 256; ++i) {  // bounded: a peer that keeps sending does not hold us
                const ssize_t n = ::recv(sock->native_handle(), buf.data(), buf.size(), MSG_DONTWAIT);
                if (n <= 0 && !(n < 0 && errno == EINTR)) break;
            }
            boost::system::error_code ignored;
            sock->shutdown(tcp::socket::shutdown_send, ignored);
            sock->close(ignored);
        }
        pending.clear();
    }

    // Resets the connection (SO_LINGER 0): what the kernel still holds of a failed write is
    // discarded instead of reaching the printer later as the tail of a cut-off format.
    void abort() {
        if (is_open()) {
            boost::system::error_code ignored;
            sock->set_option(asio::socket_base::linger(true, 0), ignored);
            sock->close(ignored);
        }
        pending.clear();
    }

    // Runs the io_context until the operation started before has completed (`done`) or
    // `deadline` passed; then cancels the socket's operations and runs until the handler has run:
    // a cancelled operation completes at once with operation_aborted (unless it finished just
    // before, which its error code then tells). No handler is left pending after this returns.
    void run(const bool& done, Clock::time_point deadline) {
        io->restart();
        if (Clock::now() < deadline) io->run_until(deadline);
        else io->poll();
        if (done) return;
        boost::system::error_code ignored;
        sock->cancel(ignored);
        io->restart();
        io->run();
    }

    static bool expired(Clock::time_point deadline) { return Clock::now() >= deadline; }

    // The host's addresses: a literal directly, a name through getaddrinfo within the deadline.
    Outcome<std::vector<tcp::endpoint>> resolve(Clock::time_point deadline) {
        std::string host = ep.host;
        if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
        if (host.empty()) return fail<std::vector<tcp::endpoint>>(Errc::resolve, "resolve: no host name given");
        boost::system::error_code ec;
        const auto addr = asio::ip::make_address(host, ec);
        if (!ec) return {{tcp::endpoint(addr, ep.port)}, {}, {}};

        auto st = std::make_shared<Resolution>();
        try {
            std::thread([st, host, port = std::to_string(ep.port)] {
                addrinfo hints{};
                hints.ai_family = AF_UNSPEC;
                hints.ai_socktype = SOCK_STREAM;
                hints.ai_protocol = IPPROTO_TCP;
                addrinfo* res = nullptr;
                const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
                const int err = errno;
                std::vector<tcp::endpoint> eps;
                for (addrinfo* a = res; rc == 0 && a; a = a->ai_next) {
                    tcp::endpoint e;
                    if (a->ai_addrlen <= e.capacity()) {
                        std::memcpy(e.data(), a->ai_addr, a->ai_addrlen);
                        e.resize(a->ai_addrlen);
                        eps.push_back(e);
                    }
                }
                if (res) ::freeaddrinfo(res);
                std::lock_guard lock(st->m);
                st->rc = rc;
                st->sys_errno = err;
                st->endpoints = std::move(eps);
                st->done = true;
                st->cv.notify_all();
            }).detach();
        } catch (const std::system_error& e) {
            return fail<std::vector<tcp::endpoint>>(Errc::io, std::string("resolve: cannot start a thread: ") + e.what());
        }
        std::unique_lock lock(st->m);
        if (!st->cv.wait_until(lock, deadline, [&] { return st->done; }))
            return fail<std::vector<tcp::endpoint>>(Errc::timeout,
                                                    "resolve: no answer within " + ms_text(ep.connect_timeout));
        if (st->rc != 0) {
            const std::string words = st->rc == EAI_SYSTEM ? std::strerror(st->sys_errno) : ::gai_strerror(st->rc);
            return fail<std::vector<tcp::endpoint>>(Errc::resolve, "resolve: " + words);
        }
        if (st->endpoints.empty())
            return fail<std::vector<tcp::endpoint>>(Errc::resolve, "resolve: no address for this host");
        return {std::move(st->endpoints), {}, {}};
    }

    void tune_socket() {
        // Failures are ignored on purpose: these options only improve latency and the detection
        // of a dead peer on an idle connection; the connection works without them.
        boost::system::error_code ignored;
        sock->set_option(tcp::no_delay(true), ignored);
        sock->set_option(asio::socket_base::keep_alive(true), ignored);
        const int fd = sock->native_handle();
        const int idle = 30, interval = 10, count = 3;  // a silent dead peer is noticed in ~60 s
        ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
        ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
        ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
    }

    // True if the open connection is still usable: takes what the peer sent unasked into
    // `pending`, and closes the socket if the peer has closed or reset it.
    bool alive() {
        if (!is_open()) return false;
        std::array<char, 4096> buf;
        for (;;) {
            const ssize_t n = ::recv(sock->native_handle(), buf.data(), buf.size(), MSG_DONTWAIT);
            if (n > 0) {
                pending.append(buf.data(), static_cast<std::size_t>(n));
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
            if (n < 0 && errno == EINTR) continue;
            close();  // EOF or an error: the connection is gone (nothing of ours was lost)
            return false;
        }
    }

    Status connect() {
        if (alive()) return {};
        close();
        if (auto st = make_io(); !st) return st;
        const auto deadline = Clock::now() + ep.connect_timeout;
        auto addrs = resolve(deadline);
        if (!addrs) return {{}, addrs.code, addrs.message};

        Status last;
        for (const auto& target : addrs.value) {
            boost::system::error_code ec;
            sock->open(target.protocol(), ec);
            if (ec) {
                last = fail<std::monostate>(Errc::io, "connect: " + ec.message());
                continue;
            }
            bool done = false;
            sock->async_connect(target, [&](const boost::system::error_code& e) {
                ec = e;
                done = true;
            });
            run(done, deadline);
            if (!ec) {
                tune_socket();
                return {};
            }
            boost::system::error_code ignored;
            sock->close(ignored);
            if (ec == asio::error::operation_aborted)
                last = fail<std::monostate>(Errc::timeout, "connect: no answer within " + ms_text(ep.connect_timeout));
            else if (ec == asio::error::connection_refused)
                last = fail<std::monostate>(Errc::refused, "connect: " + ec.message());
            else
                last = fail<std::monostate>(Errc::io, "connect: " + ec.message());
            if (expired(deadline)) break;
        }
        return last;
    }

    Outcome<Written> write(std::string_view data) {
        if (auto st = connect(); !st) return {{}, st.code, st.message};
        boost::system::error_code ec;
        std::size_t n = 0;
        bool done = false;
        asio::async_write(*sock, asio::buffer(data.data(), data.size()),
                          [&](const boost::system::error_code& e, std::size_t bytes) {
                              ec = e;
                              n = bytes;
                              done = true;
                          });
        run(done, Clock::now() + ep.write_timeout);
        if (!ec) return {{n}, {}, {}};
        abort();
        const std::string progress = " (" + std::to_string(n) + " of " + std::to_string(data.size()) +
                                     " bytes accepted by the kernel)";
        if (ec == asio::error::operation_aborted)
            return fail<Written>(Errc::timeout, "write: not finished within " + ms_text(ep.write_timeout) + progress,
                                 Written{n});
        return fail<Written>(is_closed(ec) ? Errc::closed : Errc::io, "write: " + ec.message() + progress, Written{n});
    }

    // The length of the shortest prefix of `pending` for which `complete` holds, given that the
    // first `known_incomplete` bytes (if >= 0) are known not to be complete; 0 = none such.
    // Bisection: `complete` is expected to be monotonic (once true, true for any longer string).
    std::optional<std::size_t> reply_length(const Complete& complete, std::ptrdiff_t known_incomplete) const {
        const std::string_view all(pending);
        if (!complete(all)) return std::nullopt;
        std::ptrdiff_t lo = known_incomplete;  // longest length known incomplete (-1: none)
        std::ptrdiff_t hi = static_cast<std::ptrdiff_t>(all.size());
        while (hi - lo > 1) {
            const std::ptrdiff_t mid = lo + (hi - lo) / 2;
            if (complete(all.substr(0, static_cast<std::size_t>(mid)))) hi = mid;
            else lo = mid;
        }
        return static_cast<std::size_t>(hi);
    }

    std::string take(std::size_t n) {
        std::string out = pending.substr(0, n);
        pending.erase(0, n);
        return out;
    }

    Outcome<std::string> read(const Complete& complete, milliseconds timeout) {
        if (timeout.count() <= 0) timeout = ep.read_timeout;
        const auto deadline = Clock::now() + timeout;
        if (auto len = reply_length(complete, -1)) return {take(*len), {}, {}};
        if (!is_open()) return fail<std::string>(Errc::closed, "read: not connected", take(pending.size()));

        std::array<char, 65536> buf;
        for (;;) {
            const std::ptrdiff_t checked = static_cast<std::ptrdiff_t>(pending.size());
            boost::system::error_code ec;
            std::size_t n = 0;
            bool done = false;
            sock->async_read_some(asio::buffer(buf), [&](const boost::system::error_code& e, std::size_t bytes) {
                ec = e;
                n = bytes;
                done = true;
            });
            run(done, deadline);
            pending.append(buf.data(), n);
            if (n > 0) {
                if (auto len = reply_length(complete, checked)) return {take(*len), {}, {}};
            }
            if (ec == asio::error::operation_aborted || (!ec && expired(deadline))) {
                const std::size_t got = pending.size();
                return fail<std::string>(Errc::timeout,
                                         "read: no complete reply within " + ms_text(timeout) + " (" +
                                             std::to_string(got) + " bytes received)",
                                         take(got));
            }
            if (ec) {
                std::string got = take(pending.size());
                const auto what = "read: " + ec.message() + " (" + std::to_string(got.size()) + " bytes received)";
                close();
                return fail<std::string>(is_closed(ec) ? Errc::closed : Errc::io, what, std::move(got));
            }
        }
    }
};

Client::Client(Endpoint endpoint) : impl_(std::make_unique<Impl>(std::move(endpoint))) {}
Client::~Client() = default;

Status Client::connect() { return impl_->connect(); }
bool Client::connected() const { return impl_->is_open(); }
void Client::close() { impl_->close(); }
Outcome<Written> Client::write(std::string_view data) { return impl_->write(data); }

Outcome<std::string> Client::read(const Complete& complete, std::chrono::milliseconds timeout) {
    return impl_->read(complete, timeout);
}

Outcome<std::string> Client::request(std::string_view query, const Complete& complete,
                                     std::chrono::milliseconds timeout) {
    if (auto w = impl_->write(query); !w) return {{}, w.code, w.message};
    return impl_->read(complete, timeout);
}

const Endpoint& Client::endpoint() const { return impl_->ep; }

}  // namespace pressline::drivers::tcp
