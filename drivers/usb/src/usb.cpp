// USB printer-class driver through libusb-1.0 (see pressline/drivers/usb.hpp and README.md).
#include "pressline/drivers/usb.hpp"

#include <libusb.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <stdexcept>
#include <thread>
#include <utility>

namespace pressline::drivers::usb {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr const char* kUdevRule = "systemd/60-pressline-usb-printers.rules";
constexpr std::size_t kReadBuffer = 16384;  // a multiple of every bulk max packet size
constexpr milliseconds kDrainTimeout{10};   // request(): collecting a late answer
constexpr milliseconds kHotplugSlice{250};  // wait_present(): one libusb event wait

class Category final : public std::error_category {
public:
    const char* name() const noexcept override { return "pressline.usb"; }
    std::string message(int ev) const override {
        switch (static_cast<Errc>(ev)) {
        case Errc::not_found: return "USB printer not found";
        case Errc::access: return "no permission to use the USB device";
        case Errc::busy: return "USB interface held by another process or driver";
        case Errc::timeout: return "USB transfer timed out";
        case Errc::gone: return "USB device disappeared";
        case Errc::io: return "USB I/O error";
        }
        return "unknown USB driver error";
    }
};

Errc errc_of(int r) {
    switch (r) {
    case LIBUSB_ERROR_ACCESS: return Errc::access;
    case LIBUSB_ERROR_NO_DEVICE: return Errc::gone;
    case LIBUSB_ERROR_BUSY: return Errc::busy;
    case LIBUSB_ERROR_TIMEOUT: return Errc::timeout;
    case LIBUSB_ERROR_NOT_FOUND: return Errc::not_found;
    default: return Errc::io;
    }
}

// libusb's words: "LIBUSB_ERROR_BUSY (Resource busy)".
std::string words(int r) {
    return std::string(libusb_error_name(r)) + " (" + libusb_strerror(r) + ")";
}

std::string hex4(std::uint16_t v) {
    char b[8];
    std::snprintf(b, sizeof b, "%04x", v);
    return b;
}

std::string device_name(std::uint16_t vid, std::uint16_t pid, const std::string& serial) {
    std::string s = "usb " + hex4(vid) + ":" + hex4(pid);
    if (!serial.empty()) s += " serial " + serial;
    return s;
}

std::string where(libusb_device* dev) {
    return "bus " + std::to_string(libusb_get_bus_number(dev)) + " address " +
           std::to_string(libusb_get_device_address(dev));
}

// Adds what an error code needs to be acted on.
std::string hint(int r) {
    switch (r) {
    case LIBUSB_ERROR_ACCESS:
        return std::string("; no permission on the device node: install ") + kUdevRule +
               " (see its header) or run as a member of its group";
    case LIBUSB_ERROR_BUSY: return "; another process or driver holds the interface";
    case LIBUSB_ERROR_NO_DEVICE: return "; the device is gone (unplugged or powered off)";
    default: return "";
    }
}

template <class T>
Outcome<T> fail(Errc e, std::string message, T value = {}) {
    Outcome<T> o;
    o.value = std::move(value);
    o.code = make_error_code(e);
    o.message = std::move(message);
    return o;
}

template <class T>
Errc errc_of_status(const Outcome<T>& o) {
    return static_cast<Errc>(o.code.value());
}

// Owns the device list of one libusb_get_device_list() call.
struct DeviceList {
    libusb_device** devs = nullptr;
    ssize_t n = 0;
    explicit DeviceList(libusb_context* ctx) { n = libusb_get_device_list(ctx, &devs); }
    ~DeviceList() {
        if (devs) libusb_free_device_list(devs, 1);
    }
    DeviceList(const DeviceList&) = delete;
    DeviceList& operator=(const DeviceList&) = delete;
    libusb_device* operator[](ssize_t i) const { return devs[i]; }
};

std::string string_descriptor(libusb_device_handle* h, std::uint8_t index) {
    if (index == 0) return {};
    unsigned char buf[256];
    const int n = libusb_get_string_descriptor_ascii(h, index, buf, sizeof buf);
    if (n <= 0) return {};
    return std::string(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(n));
}

// The printer-class interface of a device and its bulk endpoints.
struct PrinterInterface {
    int number = -1;
    int altsetting = 0;
    int protocol = 0;
    unsigned char ep_out = 0;
    unsigned char ep_in = 0;
};

libusb_config_descriptor* config_of(libusb_device* dev) {
    libusb_config_descriptor* cfg = nullptr;
    if (libusb_get_active_config_descriptor(dev, &cfg) == 0) return cfg;
    if (libusb_get_config_descriptor(dev, 0, &cfg) == 0) return cfg;
    return nullptr;
}

// Picks a class-7 interface with a bulk OUT endpoint, preferring a bidirectional protocol
// (2 or 3, with bulk IN) over a unidirectional one (1).
PrinterInterface find_printer_interface(libusb_device* dev) {
    PrinterInterface best;
    libusb_config_descriptor* cfg = config_of(dev);
    if (!cfg) return best;
    for (int i = 0; i < cfg->bNumInterfaces; ++i) {
        const libusb_interface& itf = cfg->interface[i];
        for (int a = 0; a < itf.num_altsetting; ++a) {
            const libusb_interface_descriptor& alt = itf.altsetting[a];
            if (alt.bInterfaceClass != LIBUSB_CLASS_PRINTER) continue;
            PrinterInterface c;
            c.number = alt.bInterfaceNumber;
            c.altsetting = alt.bAlternateSetting;
            c.protocol = alt.bInterfaceProtocol;
            for (int e = 0; e < alt.bNumEndpoints; ++e) {
                const libusb_endpoint_descriptor& ep = alt.endpoint[e];
                if ((ep.bmAttributes & LIBUSB_TRANSFER_TYPE_MASK) != LIBUSB_TRANSFER_TYPE_BULK)
                    continue;
                if (ep.bEndpointAddress & LIBUSB_ENDPOINT_IN) {
                    if (!c.ep_in) c.ep_in = ep.bEndpointAddress;
                } else if (!c.ep_out) {
                    c.ep_out = ep.bEndpointAddress;
                }
            }
            if (!c.ep_out) continue;
            const bool better = best.number < 0 || (c.ep_in && !best.ep_in);
            if (better) best = c;
        }
    }
    libusb_free_config_descriptor(cfg);
    return best;
}

bool is_printer(libusb_device* dev) {
    libusb_config_descriptor* cfg = config_of(dev);
    if (!cfg) return false;
    bool found = false;
    for (int i = 0; i < cfg->bNumInterfaces && !found; ++i)
        for (int a = 0; a < cfg->interface[i].num_altsetting && !found; ++a)
            found = cfg->interface[i].altsetting[a].bInterfaceClass == LIBUSB_CLASS_PRINTER;
    libusb_free_config_descriptor(cfg);
    return found;
}

// A printer-class device as list() and not_found messages show it.
struct Found {
    DeviceInfo info;
    int open_error = 0;  // strings unreadable: why
};

std::vector<Found> printers_present(libusb_context* ctx, int* list_error) {
    std::vector<Found> out;
    DeviceList list(ctx);
    if (list.n < 0) {
        if (list_error) *list_error = static_cast<int>(list.n);
        return out;
    }
    for (ssize_t i = 0; i < list.n; ++i) {
        libusb_device* dev = list[i];
        libusb_device_descriptor dd{};
        if (libusb_get_device_descriptor(dev, &dd) != 0 || !is_printer(dev)) continue;
        Found f;
        f.info.vendor_id = dd.idVendor;
        f.info.product_id = dd.idProduct;
        f.info.bus = libusb_get_bus_number(dev);
        f.info.address = libusb_get_device_address(dev);
        libusb_device_handle* h = nullptr;
        const int r = libusb_open(dev, &h);
        if (r == 0) {
            f.info.serial = string_descriptor(h, dd.iSerialNumber);
            f.info.manufacturer = string_descriptor(h, dd.iManufacturer);
            f.info.product = string_descriptor(h, dd.iProduct);
            libusb_close(h);
        } else {
            f.open_error = r;
        }
        out.push_back(std::move(f));
    }
    return out;
}

std::string describe_present(libusb_context* ctx) {
    int err = 0;
    const auto found = printers_present(ctx, &err);
    if (err) return "device list failed: " + words(err);
    if (found.empty()) return "no printer-class devices present";
    std::string s = "printer-class devices present: ";
    for (std::size_t i = 0; i < found.size(); ++i) {
        const auto& f = found[i];
        if (i) s += ", ";
        s += hex4(f.info.vendor_id) + ":" + hex4(f.info.product_id) + " ";
        if (f.open_error)
            s += "(serial unreadable: " + std::string(libusb_error_name(f.open_error)) + ")";
        else
            s += f.info.serial.empty() ? "(no serial)" : f.info.serial;
        s += " (bus " + std::to_string(f.info.bus) + " address " + std::to_string(f.info.address) +
             ")";
    }
    return s;
}

timeval to_timeval(milliseconds ms) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
    return tv;
}

unsigned int timeout_ms(milliseconds ms) {
    // libusb reads 0 as "no timeout": never pass it.
    return static_cast<unsigned int>(std::max<long long>(1, ms.count()));
}

}  // namespace

const std::error_category& category() noexcept {
    static const Category c;
    return c;
}

std::error_code make_error_code(Errc e) noexcept { return {static_cast<int>(e), category()}; }

// ---- Context -----------------------------------------------------------------------------------

struct Context::Impl {
    libusb_context* ctx = nullptr;
    bool hotplug = false;
    libusb_hotplug_callback_handle callback{};
    // Hotplug arrivals and departures seen so far (any device); wait_present() watches it.
    std::atomic<std::uint64_t> events{0};

    static int LIBUSB_CALL on_hotplug(libusb_context*, libusb_device*, libusb_hotplug_event,
                                      void* user) {
        static_cast<Impl*>(user)->events.fetch_add(1);
        return 0;  // stay registered
    }
};

Context::Context() : impl_(std::make_unique<Impl>()) {
    const int r = libusb_init(&impl_->ctx);
    if (r != 0) throw std::runtime_error("usb: libusb_init: " + words(r));
    if (libusb_has_capability(LIBUSB_CAP_HAS_HOTPLUG)) {
        const int h = libusb_hotplug_register_callback(
            impl_->ctx,
            static_cast<libusb_hotplug_event>(LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED |
                                              LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT),
            static_cast<libusb_hotplug_flag>(0), LIBUSB_HOTPLUG_MATCH_ANY,
            LIBUSB_HOTPLUG_MATCH_ANY, LIBUSB_HOTPLUG_MATCH_ANY, &Impl::on_hotplug, impl_.get(),
            &impl_->callback);
        impl_->hotplug = h == LIBUSB_SUCCESS;
    }
}

Context::~Context() {
    if (impl_->hotplug) libusb_hotplug_deregister_callback(impl_->ctx, impl_->callback);
    libusb_exit(impl_->ctx);
}

bool Context::hotplug() const { return impl_->hotplug; }

Outcome<std::vector<DeviceInfo>> Context::list() {
    int err = 0;
    auto found = printers_present(impl_->ctx, &err);
    if (err) return fail<std::vector<DeviceInfo>>(errc_of(err), "usb: device list: " + words(err));
    Outcome<std::vector<DeviceInfo>> out;
    for (auto& f : found) out.value.push_back(std::move(f.info));
    return out;
}

// ---- Printer -----------------------------------------------------------------------------------

struct Printer::Impl {
    Context::Impl& ctx;
    Selector sel;
    Options opt;
    libusb_device_handle* h = nullptr;
    PrinterInterface itf;
    DeviceInfo info;
    bool stale_in = false;  // a read timed out: a late answer may still be waiting on bulk IN

    Impl(Context::Impl& c, Selector s, Options o) : ctx(c), sel(std::move(s)), opt(o) {}

    std::string name() const {
        if (h) return device_name(info.vendor_id, info.product_id, info.serial);
        return device_name(sel.vendor_id, sel.product_id, sel.serial);
    }

    void close() {
        if (!h) return;
        libusb_release_interface(h, itf.number);  // fails harmlessly when the device is gone
        libusb_close(h);
        h = nullptr;
        itf = {};
        info = {};
        stale_in = false;
    }

    Status error(int r, const std::string& step) {
        const Errc e = errc_of(r);
        std::string msg = name() + ": " + step + ": " + words(r) + hint(r);
        if (e == Errc::gone) close();
        return fail<std::monostate>(e, std::move(msg));
    }

    Status open();
    Status claim(libusb_device* dev, libusb_device_handle* handle, std::string serial,
                 const libusb_device_descriptor& dd);
    Outcome<Written> write(std::string_view data);
    Outcome<std::string> read(const Complete& complete, milliseconds timeout);
    void drain();
    bool still_there();
};

Status Printer::Impl::open() {
    if (h) return {};
    DeviceList list(ctx.ctx);
    if (list.n < 0) return error(static_cast<int>(list.n), "device list");

    struct Match {
        libusb_device* dev;
        libusb_device_handle* handle;
        std::string serial;
        libusb_device_descriptor dd;
    };
    std::vector<Match> matches;
    int open_error = 0;
    std::string open_error_where;
    for (ssize_t i = 0; i < list.n; ++i) {
        libusb_device* dev = list[i];
        libusb_device_descriptor dd{};
        if (libusb_get_device_descriptor(dev, &dd) != 0) continue;
        if (dd.idVendor != sel.vendor_id || dd.idProduct != sel.product_id) continue;
        libusb_device_handle* handle = nullptr;
        const int r = libusb_open(dev, &handle);
        if (r != 0) {
            // Cannot read its serial; remember why in case nothing else matches.
            if (!open_error || r == LIBUSB_ERROR_ACCESS) {
                open_error = r;
                open_error_where = where(dev);
            }
            continue;
        }
        std::string serial = string_descriptor(handle, dd.iSerialNumber);
        if (!sel.serial.empty() && serial != sel.serial) {
            libusb_close(handle);
            continue;
        }
        matches.push_back({dev, handle, std::move(serial), dd});
    }

    if (matches.size() > 1) {
        std::string serials;
        for (auto& m : matches) {
            serials += serials.empty() ? "" : ", ";
            serials += m.serial.empty() ? "(no serial)" : m.serial;
            libusb_close(m.handle);
        }
        return fail<std::monostate>(Errc::not_found,
                                    name() + ": open: " + std::to_string(matches.size()) +
                                        " devices match (serials " + serials +
                                        "); set the serial to choose one");
    }
    if (matches.empty()) {
        if (open_error) {
            return error(open_error, "open " + open_error_where + " to read its serial");
        }
        return fail<std::monostate>(Errc::not_found,
                                    name() + ": not found; " + describe_present(ctx.ctx));
    }
    Match& m = matches.front();
    return claim(m.dev, m.handle, std::move(m.serial), m.dd);
}

Status Printer::Impl::claim(libusb_device* dev, libusb_device_handle* handle, std::string serial,
                            const libusb_device_descriptor& dd) {
    h = handle;  // from here on close() releases it
    info.vendor_id = dd.idVendor;
    info.product_id = dd.idProduct;
    info.serial = std::move(serial);
    info.manufacturer = string_descriptor(h, dd.iManufacturer);
    info.product = string_descriptor(h, dd.iProduct);
    info.bus = libusb_get_bus_number(dev);
    info.address = libusb_get_device_address(dev);

    itf = find_printer_interface(dev);
    if (itf.number < 0) {
        std::string msg = name() + " (" + where(dev) +
                          "): open: no printer-class interface (class 7) with a bulk OUT endpoint";
        close();
        return fail<std::monostate>(Errc::not_found, std::move(msg));
    }
    const std::string ifs = "interface " + std::to_string(itf.number);
    // Explicit detach: libusb_set_auto_detach_kernel_driver fails under umockdev and hides
    // which step went wrong.
    const int active = libusb_kernel_driver_active(h, itf.number);
    if (active == 1) {
        const int r = libusb_detach_kernel_driver(h, itf.number);
        if (r != 0 && r != LIBUSB_ERROR_NOT_FOUND) {
            Status s = error(r, "detach kernel driver from " + ifs);
            close();
            return s;
        }
    } else if (active < 0 && active != LIBUSB_ERROR_NOT_SUPPORTED) {
        Status s = error(active, "query kernel driver of " + ifs);
        close();
        return s;
    }
    if (const int r = libusb_claim_interface(h, itf.number); r != 0) {
        Status s = error(r, "claim " + ifs);
        close();
        return s;
    }
    if (itf.altsetting != 0) {
        if (const int r = libusb_set_interface_alt_setting(h, itf.number, itf.altsetting); r != 0) {
            Status s = error(r, ifs + " alternate setting " + std::to_string(itf.altsetting));
            close();
            return s;
        }
    }
    stale_in = false;
    return {};
}

Outcome<Written> Printer::Impl::write(std::string_view data) {
    if (Status s = open(); !s) return fail<Written>(errc_of_status(s), s.message);
    Written w;
    const std::size_t chunk = std::max<std::size_t>(1, opt.chunk_bytes);
    while (w.bytes < data.size()) {
        const std::size_t n = std::min(chunk, data.size() - w.bytes);
        int done = 0;
        // libusb does not write through the pointer for OUT transfers.
        auto* p = reinterpret_cast<unsigned char*>(const_cast<char*>(data.data() + w.bytes));
        const int r = libusb_bulk_transfer(h, itf.ep_out, p, static_cast<int>(n), &done,
                                           timeout_ms(opt.write_timeout));
        w.bytes += static_cast<std::size_t>(std::max(0, done));
        if (r == 0 && done > 0) continue;
        const int err = r != 0 ? r : LIBUSB_ERROR_IO;  // success with no progress: give up
        std::string step = "write: bulk OUT after " + std::to_string(w.bytes) + " of " +
                           std::to_string(data.size()) + " bytes";
        if (err == LIBUSB_ERROR_TIMEOUT)
            step += " (no progress within " + std::to_string(opt.write_timeout.count()) + " ms)";
        if (err == LIBUSB_ERROR_PIPE) libusb_clear_halt(h, itf.ep_out);
        Status s = error(err, step);
        return fail<Written>(errc_of(err), s.message, w);
    }
    return {w, {}, {}};
}

Outcome<std::string> Printer::Impl::read(const Complete& complete, milliseconds timeout) {
    if (Status s = open(); !s) return fail<std::string>(errc_of_status(s), s.message);
    if (!itf.ep_in) {
        return fail<std::string>(Errc::io, name() + ": read: the printer has no bulk IN endpoint"
                                                    " (unidirectional, interface protocol " +
                                               std::to_string(itf.protocol) + ")");
    }
    const milliseconds limit = timeout.count() > 0 ? timeout : opt.read_timeout;
    const auto deadline = Clock::now() + limit;
    std::string got;
    unsigned char buf[kReadBuffer];
    for (;;) {
        const auto left = std::chrono::ceil<milliseconds>(deadline - Clock::now());
        int r = LIBUSB_ERROR_TIMEOUT;
        int n = 0;
        if (left.count() > 0) {
            r = libusb_bulk_transfer(h, itf.ep_in, buf, sizeof buf, &n, timeout_ms(left));
            got.append(reinterpret_cast<const char*>(buf),
                       static_cast<std::size_t>(std::max(0, n)));
        }
        if (r == 0) {
            if (complete ? complete(got) : !got.empty()) return {std::move(got), {}, {}};
            continue;
        }
        if (r == LIBUSB_ERROR_TIMEOUT) {
            stale_in = true;
            std::string msg = name() + ": read: no complete reply within " +
                              std::to_string(limit.count()) + " ms (" +
                              std::to_string(got.size()) + " bytes arrived)";
            return fail<std::string>(Errc::timeout, std::move(msg), std::move(got));
        }
        if (r == LIBUSB_ERROR_PIPE) libusb_clear_halt(h, itf.ep_in);
        Status s = error(r, "read: bulk IN after " + std::to_string(got.size()) + " bytes");
        return fail<std::string>(errc_of(r), s.message, std::move(got));
    }
}

// Throws away what waits on bulk IN (a late answer to a query whose read timed out).
void Printer::Impl::drain() {
    unsigned char buf[kReadBuffer];
    for (int i = 0; i < 64; ++i) {
        int n = 0;
        const int r =
            libusb_bulk_transfer(h, itf.ep_in, buf, sizeof buf, &n, timeout_ms(kDrainTimeout));
        if (r != 0 || n == 0) break;
    }
    stale_in = false;
}

// The device behind an open handle is still attached (an ioctl, no bus traffic).
bool Printer::Impl::still_there() {
    if (!h) return false;
    const int r = libusb_kernel_driver_active(h, itf.number);
    if (r == LIBUSB_ERROR_NO_DEVICE) {
        close();
        return false;
    }
    return true;
}

Printer::Printer(Context& context, Selector selector, Options options)
    : impl_(std::make_unique<Impl>(*context.impl_, std::move(selector), options)) {}

Printer::~Printer() { impl_->close(); }

Status Printer::open() { return impl_->open(); }

bool Printer::is_open() const { return impl_->h != nullptr; }

void Printer::close() { impl_->close(); }

const DeviceInfo& Printer::info() const { return impl_->info; }

Outcome<Written> Printer::write(std::string_view data) { return impl_->write(data); }

Outcome<std::string> Printer::read(const Complete& complete, milliseconds timeout) {
    return impl_->read(complete, timeout);
}

Outcome<std::string> Printer::request(std::string_view query, const Complete& complete,
                                      milliseconds timeout) {
    if (Status s = impl_->open(); !s) return fail<std::string>(errc_of_status(s), s.message);
    if (impl_->stale_in && impl_->itf.ep_in) impl_->drain();
    if (auto w = impl_->write(query); !w) return fail<std::string>(errc_of_status(w), w.message);
    return impl_->read(complete, timeout);
}

Status Printer::wait_present(milliseconds timeout) {
    Impl& p = *impl_;
    if (p.still_there()) return {};
    const auto start = Clock::now();
    const auto deadline = start + timeout;
    const bool hotplug = p.opt.hotplug && p.ctx.hotplug;
    for (;;) {
        const std::uint64_t seen = p.ctx.events.load();
        Status s = p.open();
        if (s) return s;
        const auto now = Clock::now();
        if (now >= deadline) {
            const auto waited = std::chrono::duration_cast<milliseconds>(now - start).count();
            const std::string prefix = p.name() + ": ";
            std::string last = s.message.starts_with(prefix) ? s.message.substr(prefix.size())
                                                              : s.message;
            s.message = prefix + "wait_present: not open after " + std::to_string(waited) +
                        " ms (" + (hotplug ? "hotplug" : "rescan") + "); last: " + last;
            return s;
        }
        const auto step_end = std::min(deadline, now + std::max(milliseconds{1},
                                                                 p.opt.rescan_interval));
        if (!hotplug) {
            std::this_thread::sleep_until(step_end);
            continue;
        }
        // Let libusb process hotplug events (this thread or another one handling events runs
        // the callback) until one arrives or the rescan step is over.
        while (p.ctx.events.load() == seen) {
            const auto left = std::chrono::ceil<milliseconds>(step_end - Clock::now());
            if (left.count() <= 0) break;
            timeval tv = to_timeval(std::min(left, kHotplugSlice));
            libusb_handle_events_timeout_completed(p.ctx.ctx, &tv, nullptr);
        }
    }
}

}  // namespace pressline::drivers::usb
