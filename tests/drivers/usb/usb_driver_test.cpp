// The USB printer driver against emulated Zebra printers (umockdev, in-process) under the real
// libusb-1.0. Runs with LD_PRELOAD=libumockdev-preload.so.0 (set by CTest).
#include <gtest/gtest.h>

#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "fake_printer.hpp"
#include "pressline/drivers/usb.hpp"

namespace {

namespace usb = pressline::drivers::usb;
using pressline::testing::usb::FakePrinter;
using pressline::testing::usb::FakePrinterSpec;
using pressline::testing::usb::FakeUsbBus;
using pressline::testing::usb::zebra_host_status;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::uint16_t kZebra = 0x0a5f;
constexpr std::uint16_t kZd420 = 0x0120;

long long ms_since(Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

// Complete when `n` ETX-terminated lines arrived (the Zebra ~HS answer has three).
usb::Complete etx_lines(int n) {
    return [n](std::string_view s) { return std::count(s.begin(), s.end(), '\x03') >= n; };
}

// Bytes whose every position is distinguishable: reordering or loss shows up in a compare.
std::string document(std::size_t size) {
    std::string d;
    d.reserve(size);
    for (std::size_t i = 0; d.size() < size; ++i) {
        d += "^FO" + std::to_string(i) + "^FD";
        d += static_cast<char>('A' + i % 26);
        d += "^FS\n";
    }
    d.resize(size);
    return d;
}

FakePrinterSpec zebra(std::string serial) {
    FakePrinterSpec s;
    s.serial = std::move(serial);
    return s;
}

// Clears CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from this thread's effective set (root in CI
// would otherwise open a mode-000 node), restoring them afterwards.
class WithoutDacOverride {
public:
    WithoutDacOverride() {
        if (syscall(SYS_capget, &hdr_, saved_) != 0) return;
        __user_cap_data_struct reduced[2] = {saved_[0], saved_[1]};
        reduced[0].effective &= ~((1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH));
        ok_ = syscall(SYS_capset, &hdr_, reduced) == 0;
    }
    ~WithoutDacOverride() {
        if (ok_) syscall(SYS_capset, &hdr_, saved_);
    }
    bool ok() const { return ok_; }

private:
    __user_cap_header_struct hdr_{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct saved_[2]{};
    bool ok_ = false;
};

class UsbDriver : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(FakeUsbBus::preloaded())
            << "run with LD_PRELOAD=libumockdev-preload.so.0 (ctest sets it)";
        bus_ = std::make_unique<FakeUsbBus>();
    }
    void TearDown() override {
        printers_.clear();
        ctx_.reset();  // the libusb context goes before the testbed
        bus_.reset();
    }

    FakePrinter& add(FakePrinterSpec spec) { return bus_->add(std::move(spec)); }

    // The libusb context; created after the printers that are present at start.
    usb::Context& ctx() {
        if (!ctx_) ctx_ = std::make_unique<usb::Context>();
        return *ctx_;
    }

    usb::Printer& printer(std::string serial, usb::Options o = fast()) {
        printers_.push_back(std::make_unique<usb::Printer>(
            ctx(), usb::Selector{kZebra, kZd420, std::move(serial)}, o));
        return *printers_.back();
    }

    static usb::Options fast() {
        usb::Options o;
        o.write_timeout = 500ms;
        o.read_timeout = 300ms;
        o.rescan_interval = 100ms;
        return o;
    }

    std::unique_ptr<FakeUsbBus> bus_;
    std::unique_ptr<usb::Context> ctx_;
    std::vector<std::unique_ptr<usb::Printer>> printers_;
};

TEST_F(UsbDriver, ListShowsPrinterClassDevicesWithTheirStrings) {
    add(zebra("ZBR0000001"));
    add(zebra("ZBR0000002"));
    FakePrinterSpec other;  // a vendor-specific device on the same bus: not a printer
    other.vendor_id = 0x1234;
    other.product_id = 0x5678;
    other.serial = "NOTAPRINTER";
    other.interface_class = 0xff;
    add(other);

    auto l = ctx().list();
    ASSERT_TRUE(l) << l.message;
    ASSERT_EQ(l.value.size(), 2u);
    std::sort(l.value.begin(), l.value.end(),
              [](const auto& a, const auto& b) { return a.serial < b.serial; });
    EXPECT_EQ(l.value[0].serial, "ZBR0000001");
    EXPECT_EQ(l.value[1].serial, "ZBR0000002");
    for (const auto& d : l.value) {
        EXPECT_EQ(d.vendor_id, kZebra);
        EXPECT_EQ(d.product_id, kZd420);
        EXPECT_EQ(d.manufacturer, "Zebra Technologies");
        EXPECT_EQ(d.product, "ZTC ZD420-203dpi ZPL");
        EXPECT_EQ(d.bus, 1);
    }
    EXPECT_NE(l.value[0].address, l.value[1].address);
}

TEST_F(UsbDriver, ChoosesOnePrinterBySerialAndOnlyItReceives) {
    FakePrinter& a = add(zebra("ZBR0000001"));
    FakePrinter& b = add(zebra("ZBR0000002"));
    usb::Printer& p = printer("ZBR0000002");

    ASSERT_TRUE(p.open()) << p.open().message;
    EXPECT_TRUE(p.is_open());
    EXPECT_EQ(p.info().serial, "ZBR0000002");
    EXPECT_EQ(p.info().address, b.address());
    EXPECT_EQ(p.info().manufacturer, "Zebra Technologies");
    EXPECT_TRUE(b.claimed());
    EXPECT_FALSE(a.claimed());

    const std::string zpl = "^XA^FO50,50^BCN,100,Y,N,N^FDSHIP-0001^FS^XZ";
    auto w = p.write(zpl);
    ASSERT_TRUE(w) << w.message;
    EXPECT_EQ(w.value.bytes, zpl.size());
    EXPECT_EQ(b.received(), zpl);
    EXPECT_EQ(a.received(), "");

    p.close();
    EXPECT_FALSE(p.is_open());
    EXPECT_FALSE(b.claimed());
}

TEST_F(UsbDriver, WithoutSerialOpensTheOnlyMatchButRefusesToGuessAmongSeveral) {
    add(zebra("ZBR0000001"));
    usb::Printer& only = printer("");
    ASSERT_TRUE(only.open()) << only.open().message;
    EXPECT_EQ(only.info().serial, "ZBR0000001");
    only.close();

    add(zebra("ZBR0000002"));
    usb::Printer& p = printer("");
    const auto s = p.open();
    EXPECT_EQ(s.code, usb::make_error_code(usb::Errc::not_found)) << s.message;
    EXPECT_NE(s.message.find("ZBR0000001"), std::string::npos) << s.message;
    EXPECT_NE(s.message.find("ZBR0000002"), std::string::npos) << s.message;
    EXPECT_FALSE(p.is_open());
}

TEST_F(UsbDriver, NotFoundNamesThePrinterClassDevicesPresent) {
    add(zebra("ZBR0000001"));
    add(zebra("ZBR0000002"));
    usb::Printer& p = printer("ZBR9999999");
    const auto s = p.open();
    EXPECT_EQ(s.code, usb::make_error_code(usb::Errc::not_found));
    EXPECT_EQ(s.code.category().name(), std::string("pressline.usb"));
    EXPECT_NE(s.message.find("usb 0a5f:0120 serial ZBR9999999"), std::string::npos) << s.message;
    EXPECT_NE(s.message.find("0a5f:0120 ZBR0000001"), std::string::npos) << s.message;
    EXPECT_NE(s.message.find("0a5f:0120 ZBR0000002"), std::string::npos) << s.message;
}

TEST_F(UsbDriver, EmptyBusIsNotFound) {
    usb::Printer& p = printer("ZBR0000001");
    const auto s = p.open();
    EXPECT_EQ(s.code, usb::make_error_code(usb::Errc::not_found));
    EXPECT_NE(s.message.find("no printer-class devices present"), std::string::npos) << s.message;
    auto l = ctx().list();
    ASSERT_TRUE(l) << l.message;
    EXPECT_TRUE(l.value.empty());
    // write() opens first and reports the same.
    const auto w = p.write("^XA^XZ");
    EXPECT_EQ(w.code, usb::make_error_code(usb::Errc::not_found));
    EXPECT_EQ(w.value.bytes, 0u);
}

TEST_F(UsbDriver, DocumentLargerThanAChunkArrivesWholeAndInOrder) {
    FakePrinter& a = add(zebra("ZBR0000001"));
    usb::Options o = fast();
    o.chunk_bytes = 16384;
    usb::Printer& p = printer("ZBR0000001", o);
    const std::string doc = document(100 * 1024);

    const auto t0 = Clock::now();
    auto w = p.write(doc);  // opens on first use
    const auto elapsed = ms_since(t0);
    ASSERT_TRUE(w) << w.message;
    EXPECT_EQ(w.value.bytes, doc.size());
    EXPECT_EQ(a.received().size(), doc.size());
    EXPECT_TRUE(a.received() == doc) << "bytes differ or out of order";
    RecordProperty("write_100KiB_ms", std::to_string(elapsed));
}

TEST_F(UsbDriver, StatusQueryGetsTheReply) {
    FakePrinter& a = add(zebra("ZBR0000001"));
    usb::Printer& p = printer("ZBR0000001");
    auto r = p.request("~HS", etx_lines(3));
    ASSERT_TRUE(r) << r.message;
    EXPECT_EQ(r.value, zebra_host_status());
    EXPECT_EQ(a.received(), "~HS");
}

TEST_F(UsbDriver, ReadTimeoutHandsOverPartialDataAndKeepsTheDeviceOpen) {
    FakePrinter& a = add(zebra("ZBR0000001"));
    usb::Printer& p = printer("ZBR0000001");
    ASSERT_TRUE(p.open());

    // Only the first of the three lines comes: the timeout hands over what arrived.
    const std::string first = zebra_host_status().substr(0, 36);
    ASSERT_EQ(first.back(), '\n');
    a.set_reply("~HS", first);
    auto t0 = Clock::now();
    auto r = p.request("~HS", etx_lines(3), 200ms);
    auto elapsed = ms_since(t0);
    EXPECT_EQ(r.code, usb::make_error_code(usb::Errc::timeout)) << r.message;
    EXPECT_EQ(r.value, first);
    EXPECT_GE(elapsed, 190);
    EXPECT_LT(elapsed, 1500);
    EXPECT_NE(r.message.find("36 bytes arrived"), std::string::npos) << r.message;
    EXPECT_TRUE(p.is_open());

    // A silent printer: nothing at all, and still a bounded wait.
    a.set_silent(true);
    t0 = Clock::now();
    r = p.request("~HS", etx_lines(3), 200ms);
    elapsed = ms_since(t0);
    EXPECT_EQ(r.code, usb::make_error_code(usb::Errc::timeout)) << r.message;
    EXPECT_EQ(r.value, "");
    EXPECT_GE(elapsed, 190);
    EXPECT_LT(elapsed, 1500);

    // Still open and usable.
    EXPECT_TRUE(p.is_open());
    a.clear_received();
    ASSERT_TRUE(p.write("^XA^XZ"));
    EXPECT_EQ(a.received(), "^XA^XZ");
}

TEST_F(UsbDriver, LateAnswerToATimedOutQueryIsNotTakenAsTheNextReply) {
    FakePrinter& a = add(zebra("ZBR0000001"));
    usb::Printer& p = printer("ZBR0000001");
    a.set_reply("~HS", "\x02OLD\x03");
    a.set_silent(true);
    auto r = p.request("~HS", etx_lines(1), 150ms);
    ASSERT_EQ(r.code, usb::make_error_code(usb::Errc::timeout)) << r.message;

    a.set_reply("~HS", "\x02NEW\x03");
    a.set_silent(false);  // the old answer arrives now, late
    r = p.request("~HS", etx_lines(1), 500ms);
    ASSERT_TRUE(r) << r.message;
    EXPECT_EQ(r.value, "\x02NEW\x03");
}

TEST_F(UsbDriver, BoundKernelDriverIsDetachedBeforeClaiming) {
    FakePrinter& a = add(zebra("ZBR0000001"));
    a.bind_kernel_driver();
    usb::Printer& p = printer("ZBR0000001");
    auto s = p.open();
    ASSERT_TRUE(s) << s.message;
    EXPECT_EQ(a.detach_count(), 1);
    EXPECT_FALSE(a.kernel_driver_bound());
    EXPECT_TRUE(a.claimed());
    ASSERT_TRUE(p.write("~HS"));
    EXPECT_EQ(a.received(), "~HS");
}

TEST_F(UsbDriver, InterfaceHeldElsewhereIsBusy) {
    FakePrinter& a = add(zebra("ZBR0000001"));
    a.set_claim_busy(true);
    usb::Printer& p = printer("ZBR0000001");
    auto s = p.open();
    EXPECT_EQ(s.code, usb::make_error_code(usb::Errc::busy)) << s.message;
    EXPECT_NE(s.message.find("usb 0a5f:0120 serial ZBR0000001"), std::string::npos) << s.message;
    EXPECT_NE(s.message.find("claim interface 0"), std::string::npos) << s.message;
    EXPECT_NE(s.message.find("LIBUSB_ERROR_BUSY"), std::string::npos) << s.message;
    EXPECT_FALSE(p.is_open());

    a.set_claim_busy(false);  // the other holder lets go
    s = p.open();
    EXPECT_TRUE(s) << s.message;
}

TEST_F(UsbDriver, NoPermissionOnTheNodeIsAccessNamingTheUdevRule) {
    FakePrinter& a = add(zebra("ZBR0000001"));
    const std::string node = bus_->root_dir() + a.devnode();
    ASSERT_EQ(::chmod(node.c_str(), 0), 0) << node;
    usb::Printer& p = printer("ZBR0000001");
    usb::Status s;
    {
        WithoutDacOverride as_unprivileged;
        ASSERT_TRUE(as_unprivileged.ok());
        s = p.open();
    }
    EXPECT_EQ(s.code, usb::make_error_code(usb::Errc::access)) << s.message;
    EXPECT_NE(s.message.find("systemd/60-pressline-usb-printers.rules"), std::string::npos)
        << s.message;
    EXPECT_NE(s.message.find("LIBUSB_ERROR_ACCESS"), std::string::npos) << s.message;
    EXPECT_FALSE(p.is_open());
}

TEST_F(UsbDriver, WriteThatStallsTimesOutReportingTheAcceptedBytesAndStaysOpen) {
    FakePrinter& a = add(zebra("ZBR0000001"));
    usb::Options o = fast();
    o.chunk_bytes = 16384;
    o.write_timeout = 200ms;
    usb::Printer& p = printer("ZBR0000001", o);
    const std::string doc = document(50000);
    a.limit_out(20000);  // the printer's buffer fills up after 20000 bytes

    const auto t0 = Clock::now();
    auto w = p.write(doc);
    const auto elapsed = ms_since(t0);
    EXPECT_EQ(w.code, usb::make_error_code(usb::Errc::timeout)) << w.message;
    EXPECT_EQ(w.value.bytes, 20000u);
    EXPECT_EQ(a.received(), doc.substr(0, 20000));
    EXPECT_LT(elapsed, 1500);
    EXPECT_NE(w.message.find("after 20000 of 50000 bytes"), std::string::npos) << w.message;
    EXPECT_TRUE(p.is_open());

    a.limit_out(std::nullopt);
    ASSERT_TRUE(p.write("~HS"));
    EXPECT_EQ(a.received(), doc.substr(0, 20000) + "~HS");
}

TEST_F(UsbDriver, UnplugMidWriteIsGoneWithAcknowledgedBytesAndReplugRecovers) {
    FakePrinter& a = add(zebra("ZBR0000001"));
    usb::Options o = fast();
    o.chunk_bytes = 16384;
    usb::Printer& p = printer("ZBR0000001", o);
    ASSERT_TRUE(p.open());
    const std::string doc = document(100 * 1024);
    a.fail_after(40000);  // the cable comes out after 40000 bytes (inside the third chunk)

    auto w = p.write(doc);
    EXPECT_EQ(w.code, usb::make_error_code(usb::Errc::gone)) << w.message;
    EXPECT_EQ(w.value.bytes, 40000u);
    EXPECT_EQ(a.received(), doc.substr(0, 40000));
    EXPECT_FALSE(p.is_open());
    EXPECT_NE(w.message.find("LIBUSB_ERROR_NO_DEVICE"), std::string::npos) << w.message;

    a.unplug();
    w = p.write(doc);  // tries to open again: nothing there
    EXPECT_EQ(w.code, usb::make_error_code(usb::Errc::not_found)) << w.message;
    EXPECT_EQ(w.value.bytes, 0u);

    a.replug();
    auto s = p.wait_present(2s);
    ASSERT_TRUE(s) << s.message;
    EXPECT_EQ(p.info().address, a.address());
    a.clear_received();
    w = p.write(doc);
    ASSERT_TRUE(w) << w.message;
    EXPECT_TRUE(a.received() == doc);
}

TEST_F(UsbDriver, UnplugWhileIdleIsGoneAndHotplugWakesWaitPresent) {
    FakePrinter& a = add(zebra("ZBR0000001"));
    usb::Options o = fast();
    o.rescan_interval = 10s;  // only a hotplug event can end the wait early
    usb::Printer& p = printer("ZBR0000001", o);
    ASSERT_TRUE(p.open());
    ASSERT_TRUE(ctx().hotplug()) << "libusb reports no hotplug under umockdev";
    const auto old_address = a.address();

    a.unplug();
    auto w = p.write("^XA^XZ");
    EXPECT_EQ(w.code, usb::make_error_code(usb::Errc::gone)) << w.message;
    EXPECT_EQ(w.value.bytes, 0u);
    EXPECT_FALSE(p.is_open());

    std::thread plug([&] {
        std::this_thread::sleep_for(100ms);
        a.replug();
    });
    const auto t0 = Clock::now();
    auto s = p.wait_present(5s);
    const auto elapsed = ms_since(t0);
    plug.join();
    ASSERT_TRUE(s) << s.message;
    EXPECT_GE(elapsed, 90);
    EXPECT_LT(elapsed, 2000);  // well before the 10 s rescan
    EXPECT_NE(p.info().address, old_address);
    ASSERT_TRUE(p.write("^XA^XZ"));
    EXPECT_EQ(a.received(), "^XA^XZ");
}

TEST_F(UsbDriver, WithoutHotplugWaitPresentRescansAtTheInterval) {
    FakePrinter& a = add(zebra("ZBR0000001"));
    usb::Options o = fast();
    o.hotplug = false;
    o.rescan_interval = 100ms;
    usb::Printer& p = printer("ZBR0000001", o);
    ASSERT_TRUE(p.open());
    a.unplug();

    std::thread plug([&] {
        std::this_thread::sleep_for(150ms);
        a.replug();
    });
    const auto t0 = Clock::now();
    auto s = p.wait_present(3s);
    const auto elapsed = ms_since(t0);
    plug.join();
    ASSERT_TRUE(s) << s.message;
    EXPECT_GE(elapsed, 140);
    EXPECT_LT(elapsed, 1000);
    ASSERT_TRUE(p.write("~HS"));
    EXPECT_EQ(a.received(), "~HS");
}

TEST_F(UsbDriver, WaitPresentNoticesAnUnplugWhileOpenAndGivesUpInTime) {
    FakePrinter& a = add(zebra("ZBR0000001"));
    add(zebra("ZBR0000002"));
    usb::Printer& p = printer("ZBR0000001");
    ASSERT_TRUE(p.open());
    EXPECT_TRUE(p.wait_present(100ms));  // open and present: at once

    a.unplug();
    const auto t0 = Clock::now();
    auto s = p.wait_present(300ms);
    const auto elapsed = ms_since(t0);
    EXPECT_EQ(s.code, usb::make_error_code(usb::Errc::not_found)) << s.message;
    EXPECT_FALSE(p.is_open());
    EXPECT_GE(elapsed, 290);
    EXPECT_LT(elapsed, 1500);
    EXPECT_NE(s.message.find("wait_present"), std::string::npos) << s.message;
    EXPECT_NE(s.message.find("ZBR0000002"), std::string::npos) << s.message;  // what is there
}

TEST_F(UsbDriver, UnidirectionalPrinterTakesWritesButCannotAnswer) {
    FakePrinterSpec spec = zebra("ZBR0000001");
    spec.bidirectional = false;
    FakePrinter& a = add(spec);
    usb::Printer& p = printer("ZBR0000001");
    ASSERT_TRUE(p.write("^XA^XZ"));
    EXPECT_EQ(a.received(), "^XA^XZ");
    auto r = p.read(etx_lines(1), 100ms);
    EXPECT_EQ(r.code, usb::make_error_code(usb::Errc::io)) << r.message;
    EXPECT_NE(r.message.find("no bulk IN endpoint"), std::string::npos) << r.message;
}

TEST_F(UsbDriver, TwoPrintersOnOneContextFromTwoThreads) {
    FakePrinter& a = add(zebra("ZBR0000001"));
    FakePrinter& b = add(zebra("ZBR0000002"));
    usb::Printer& pa = printer("ZBR0000001");
    usb::Printer& pb = printer("ZBR0000002");
    const std::string da = document(64 * 1024);
    const std::string db = document(48 * 1024) + "~HS";
    usb::Outcome<usb::Written> wa;
    usb::Outcome<std::string> rb;
    std::thread ta([&] { wa = pa.write(da); });
    std::thread tb([&] { rb = pb.request(db, etx_lines(3), 2s); });
    ta.join();
    tb.join();
    ASSERT_TRUE(wa) << wa.message;
    ASSERT_TRUE(rb) << rb.message;
    EXPECT_TRUE(a.received() == da);
    EXPECT_TRUE(b.received() == db);
    EXPECT_EQ(rb.value, zebra_host_status());
}

}  // namespace
