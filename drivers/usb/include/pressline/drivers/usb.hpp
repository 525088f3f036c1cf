// pressline::drivers::usb: USB printer-class devices (label printers) through libusb-1.0.
//
// A transport without domain logic: it finds a device by vendor id, product id and serial
// number (several printers of one model are told apart by serial), claims its printer-class
// interface (class 7; detaching a bound kernel driver such as usblp), writes bytes in chunks
// to the bulk OUT endpoint and reads replies from the bulk IN endpoint, each with a timeout.
// When the device goes away (unplugged, powered off) calls fail with Errc::gone; wait_present()
// waits for it to come back (libusb hotplug where the platform has it, else a paced rescan)
// and opens it again. It knows nothing of ZPL, labels or jobs.
//
// Threads: calls block (each bounded by its timeout); call from a worker thread. A Printer is
// not thread-safe. One Context may serve several Printers from different threads; it must
// outlive them.
//
// Errors: nothing throws except std::bad_alloc (and Context's constructor, which throws
// std::runtime_error when libusb cannot start at all). Every call returns an Outcome whose
// `code` is one of Errc (category "pressline.usb") and whose `message` names the device
// ("usb 0a5f:0181 serial ZD4201"), the step and libusb's words.
//   - not_found: no device matches (the message lists the printer-class devices present)
//   - access:    permission denied; the message names the udev rule to install
//                (systemd/60-pressline-usb-printers.rules)
//   - busy:      another process or driver holds the interface
//   - timeout:   a transfer did not finish in time
//   - gone:      the device disappeared (unplugged) during or before the call
//   - io:        any other libusb error
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
#include <vector>

namespace pressline::drivers::usb {

enum class Errc { not_found = 1, access, busy, timeout, gone, io };
const std::error_category& category() noexcept;
std::error_code make_error_code(Errc e) noexcept;

// Results: drivers::Outcome (pressline/drivers/outcome.hpp) with this driver's Errc.
template <class T>
using Outcome = drivers::Outcome<T>;
using Status = drivers::Status;

struct DeviceInfo {
    std::uint16_t vendor_id = 0;
    std::uint16_t product_id = 0;
    std::string serial;        // iSerialNumber string, empty if the device has none
    std::string manufacturer;  // iManufacturer
    std::string product;       // iProduct
    std::uint8_t bus = 0;
    std::uint8_t address = 0;
};

// Which device. serial empty: the only matching device (not_found naming the serials when
// there are several).
struct Selector {
    std::uint16_t vendor_id = 0;
    std::uint16_t product_id = 0;
    std::string serial;
};

struct Options {
    std::size_t chunk_bytes = 16384;                 // bulk OUT transfer size
    std::chrono::milliseconds write_timeout{10000};  // per chunk
    std::chrono::milliseconds read_timeout{2000};    // default for read()
    std::chrono::milliseconds rescan_interval{1000}; // wait_present() without hotplug
    // wait_present() wakes up on libusb hotplug events where libusb has them (and still rescans
    // every rescan_interval); false: paced rescan only.
    bool hotplug = true;
};

// How far a write got. On failure `bytes` counts the bytes the device acknowledged before the
// error (0 = provably nothing reached it; more = it may have printed part or all of it).
struct Written {
    std::size_t bytes = 0;
};

using Complete = std::function<bool(std::string_view received)>;

// One libusb context (and, where hotplug is available, its event handling).
class Context {
public:
    Context();
    ~Context();
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;
    // Printer-class devices present now.
    Outcome<std::vector<DeviceInfo>> list();
    bool hotplug() const;  // libusb reports hotplug capability

private:
    friend class Printer;
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

class Printer {
public:
    Printer(Context& context, Selector selector, Options options = {});
    ~Printer();
    Printer(const Printer&) = delete;
    Printer& operator=(const Printer&) = delete;

    // Finds, opens and claims the device (detaching a kernel driver if one is bound).
    Status open();
    bool is_open() const;
    void close();
    // Info of the opened device (empty before open()).
    const DeviceInfo& info() const;

    // Writes all of `data` in chunks, opening first if needed. On failure `value.bytes` says
    // how far it got; an unplugged device closes the Printer (Errc::gone).
    Outcome<Written> write(std::string_view data);
    // Reads until `complete` says so or `timeout` (default options.read_timeout) passes.
    // Timeout: Errc::timeout with what arrived so far in `value`; the device stays open.
    // An empty `complete` accepts the first bytes that arrive. A printer without a bulk IN
    // endpoint (interface protocol 1) gives Errc::io.
    Outcome<std::string> read(const Complete& complete,
                              std::chrono::milliseconds timeout = std::chrono::milliseconds{0});
    // write(query), then read(complete, timeout). After an earlier read timed out, bytes still
    // waiting on bulk IN (a late answer to the old query) are discarded before the query goes
    // out, so the reply belongs to this query.
    Outcome<std::string> request(std::string_view query, const Complete& complete,
                                 std::chrono::milliseconds timeout = std::chrono::milliseconds{0});

    // Waits until a matching device is present and opens it, at most `timeout`. Already open:
    // checks that the device is still there first. When time runs out it returns the last
    // open() error (not_found, gone, busy, access...), its message saying how long it waited.
    Status wait_present(std::chrono::milliseconds timeout);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace pressline::drivers::usb
