// Emulated USB label printers (printer class 7) for tests, served in-process by umockdev.
//
// The code under test talks to them through the REAL libusb-1.0: umockdev's testbed provides the
// sysfs entries and device nodes, and a UMockdevIoctlBase handler per printer answers the usbfs
// ioctls (submit/reap/discard URBs, string descriptors, claim, kernel driver queries). Each
// printer records what arrives on bulk OUT and queues a reply on bulk IN when a write contains a
// trigger (by default a Zebra `~HS` host status answer).
//
// Requirements: the process runs with LD_PRELOAD=libumockdev-preload.so.0 (CTest ENVIRONMENT;
// FakeUsbBus::preloaded() tells), and the FakeUsbBus is created BEFORE the libusb context
// (pressline::drivers::usb::Context) and destroyed after it.
//
// Threads: the ioctl handlers run on umockdev's own thread; every FakePrinter method may be
// called from any thread (state is behind a mutex). unplug()/replug() touch the testbed and may
// be called from a helper thread while the code under test blocks in libusb.
//
// Link target: pressline_fake_usb_printer (tests/drivers/usb/CMakeLists.txt).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

typedef struct _UMockdevIoctlBase UMockdevIoctlBase;

namespace pressline::testing::usb {

// The Zebra `~HS` answer (three STX...ETX CRLF lines, 82 bytes).
std::string zebra_host_status();

struct FakePrinterSpec {
    std::uint16_t vendor_id = 0x0a5f;  // Zebra
    std::uint16_t product_id = 0x0120;
    std::string serial = "ZBR1234567";  // empty: the device has no serial string
    std::string manufacturer = "Zebra Technologies";
    std::string product = "ZTC ZD420-203dpi ZPL";
    std::uint8_t interface_class = 7;  // 7 printer; e.g. 0xff makes a vendor-specific non-printer
    bool bidirectional = true;         // protocol 2 with bulk IN 0x81; false: 7/1/1, OUT only
};

class FakeUsbBus;

class FakePrinter {
public:
    ~FakePrinter();
    FakePrinter(const FakePrinter&) = delete;
    FakePrinter& operator=(const FakePrinter&) = delete;

    const FakePrinterSpec& spec() const { return spec_; }
    std::uint8_t address() const;  // current device address on bus 1 (changes on replug)
    std::string devnode() const;   // /dev/bus/usb/001/NNN

    // Everything written to bulk OUT so far, in order.
    std::string received() const;
    std::size_t received_size() const;
    void clear_received();

    // Each time the bytes written contain `trigger` (also across transfers), queue `reply` on
    // bulk IN. Several triggers may be set; setting one again replaces its reply, an empty
    // reply removes it. Default: "~HS" -> zebra_host_status().
    void set_reply(std::string trigger, std::string reply);
    // Queue bytes on bulk IN now.
    void push_in(const std::string& bytes);
    // Silent: replies are held back, not lost; set_silent(false) releases them at once (a late
    // answer). A bulk IN transfer on a silent printer only ends by timeout.
    void set_silent(bool silent);

    // A kernel driver (usblp) is bound to interface 0 until the host detaches it, and binds
    // again at every replug.
    void bind_kernel_driver();
    bool kernel_driver_bound() const;
    int detach_count() const;  // how often the host detached it
    // Claiming interface 0 fails with EBUSY (another process or driver holds it).
    void set_claim_busy(bool busy);
    bool claimed() const;

    // Accept only `bytes` more bulk OUT bytes, then hold the rest (the host's transfer times out
    // and reports the accepted part). std::nullopt: accept everything (default).
    void limit_out(std::optional<std::size_t> bytes);
    // Drop off the bus after `bytes` more bulk OUT bytes: the transfer in flight ends with
    // -ESHUTDOWN reporting only the accepted part and every later ioctl fails with ENODEV, as
    // when the cable is pulled mid-job. The device stays in sysfs until unplug().
    void fail_after(std::size_t bytes);

    // Unplug: transfers in flight end with -ESHUTDOWN, later ioctls on open handles fail with
    // ENODEV, a "remove" uevent goes out and the device leaves sysfs.
    void unplug();
    // Plug back in at the same port with a new address; an "add" uevent goes out. Received
    // bytes, replies and modes are kept; a kernel driver binds again if bind_kernel_driver()
    // was called (as usblp does at every plug-in).
    void replug();
    bool present() const;
    std::string syspath() const;  // /sys/devices/.../usb1/1-PORT

    struct State;  // handler state, shared with the ioctl callback

private:
    friend class FakeUsbBus;
    FakePrinter(FakeUsbBus& bus, FakePrinterSpec spec, int port);
    void plug_in();

    FakeUsbBus& bus_;
    FakePrinterSpec spec_;
    int port_;
    std::unique_ptr<State> state_;
    std::vector<UMockdevIoctlBase*> handlers_;  // one per device node it had; owned
};

// One umockdev testbed with any number of fake printers on bus 1.
class FakeUsbBus {
public:
    FakeUsbBus();
    ~FakeUsbBus();
    FakeUsbBus(const FakeUsbBus&) = delete;
    FakeUsbBus& operator=(const FakeUsbBus&) = delete;

    // LD_PRELOAD contains libumockdev-preload (without it libusb sees the real /sys and /dev).
    static bool preloaded();

    // Adds a printer and plugs it in (with an "add" uevent). The reference stays valid for the
    // bus's lifetime.
    FakePrinter& add(FakePrinterSpec spec = {});

    std::string root_dir() const;

private:
    friend class FakePrinter;
    std::uint8_t next_address();

    struct Impl;
    std::unique_ptr<Impl> impl_;
    mutable std::mutex mu_;
    std::deque<std::unique_ptr<FakePrinter>> printers_;
};

}  // namespace pressline::testing::usb
