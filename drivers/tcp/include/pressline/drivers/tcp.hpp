// pressline::drivers::tcp: raw TCP to a printer's port 9100 ("JetDirect"), Boost.Asio.
//
// A transport without domain logic: it connects, writes bytes, reads replies, with a timeout on
// every step, and reconnects when asked to write on a closed connection. It knows nothing of
// ZPL, labels or jobs.
//
// Threads: calls block (each bounded by its timeout); call from a worker thread. A Client is not
// thread-safe; different Clients may be used concurrently.
//
// Errors: nothing throws except std::bad_alloc. Every call returns an Outcome whose `code` is
// one of Errc (category "pressline.tcp") and whose `message` names host:port, the step and the
// system's words, e.g. "tcp 127.0.0.1:9100: connect: Connection refused".
//   - refused:   the host answered the connect with a reset (nothing listens)
//   - timeout:   connect, write or read did not finish in time
//   - closed:    the peer closed or reset the connection
//   - resolve:   the host name does not resolve
//   - io:        any other socket error
#pragma once

#include "pressline/drivers/outcome.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <variant>

namespace pressline::drivers::tcp {

enum class Errc { refused = 1, timeout, closed, resolve, io };
const std::error_category& category() noexcept;
std::error_code make_error_code(Errc e) noexcept;

// Results: drivers::Outcome (pressline/drivers/outcome.hpp) with this driver's Errc.
template <class T>
using Outcome = drivers::Outcome<T>;
using Status = drivers::Status;

struct Endpoint {
    std::string host;             // name or address
    std::uint16_t port = 9100;
    std::chrono::milliseconds connect_timeout{3000};
    std::chrono::milliseconds write_timeout{10000};  // for one write() call as a whole
    std::chrono::milliseconds read_timeout{2000};    // default for read()
};

// How far a write got. On failure `bytes` says how many bytes the kernel accepted before the
// error (0 = provably nothing left this machine on this connection; more = the printer may
// have received and printed part or all of it).
struct Written {
    std::size_t bytes = 0;
};

// A reply is complete when this returns true for the bytes read so far.
using Complete = std::function<bool(std::string_view received)>;

class Client {
public:
    explicit Client(Endpoint endpoint);
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    // Connects if not connected (within connect_timeout).
    Status connect();
    bool connected() const;
    // Closes the connection (a later call reconnects).
    void close();

    // Writes all of `data`, connecting first if needed (one connect attempt). On failure the
    // connection is closed and `value.bytes` says how far it got.
    Outcome<Written> write(std::string_view data);

    // Reads until `complete` says so or `timeout` (default: the endpoint's read_timeout)
    // passes. On timeout the code is Errc::timeout and `value` holds what arrived so far; the
    // connection stays open. Bytes that arrive unasked between calls are kept for the next read.
    // The reply is the shortest prefix of the received bytes for which `complete` holds (found
    // by bisection, so `complete` should stay true once true); bytes after it are kept. Bytes
    // returned with a timeout or closed error are consumed, not kept.
    Outcome<std::string> read(const Complete& complete,
                              std::chrono::milliseconds timeout = std::chrono::milliseconds{0});

    // write(query) then read(complete, timeout).
    Outcome<std::string> request(std::string_view query, const Complete& complete,
                                 std::chrono::milliseconds timeout = std::chrono::milliseconds{0});

    const Endpoint& endpoint() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace pressline::drivers::tcp

template <>
struct std::is_error_code_enum<pressline::drivers::tcp::Errc> : std::true_type {};
