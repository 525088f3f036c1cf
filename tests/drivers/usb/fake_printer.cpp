// Emulated USB label printers under umockdev (see fake_printer.hpp).
#include "fake_printer.hpp"

#include <linux/usbdevice_fs.h>
#include <sys/ioctl.h>
#include <umockdev.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <utility>
#include <vector>

namespace pressline::testing::usb {

std::string zebra_host_status() {
    return "\x02"
           "030,0,0,1245,000,0,0,0,000,0,0,0\x03\r\n"
           "\x02"
           "000,0,0,0,1,2,6,0,00000000,1,000\x03\r\n"
           "\x02"
           "1234,0\x03\r\n";
}

namespace {

std::string hex(const std::string& bytes) {
    static const char digits[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : bytes) {
        out += digits[c >> 4];
        out += digits[c & 0xf];
    }
    return out;
}

// Device descriptor, one configuration with one interface (class `spec.interface_class`) and
// bulk OUT 0x01 (+ bulk IN 0x81 when bidirectional), 512-byte packets (high speed).
std::string descriptors(const FakePrinterSpec& spec) {
    const auto lo = [](unsigned v) { return static_cast<char>(v & 0xff); };
    const auto hi = [](unsigned v) { return static_cast<char>((v >> 8) & 0xff); };
    const int endpoints = spec.bidirectional ? 2 : 1;
    const unsigned total = 9 + 9 + 7 * endpoints;
    std::string d;
    d += std::string{18, 1, 0x00, 0x02, 0, 0, 0, 64};
    d += lo(spec.vendor_id);
    d += hi(spec.vendor_id);
    d += lo(spec.product_id);
    d += hi(spec.product_id);
    d += std::string{0x00, 0x01, 1, 2};
    d += static_cast<char>(spec.serial.empty() ? 0 : 3);
    d += static_cast<char>(1);
    d += std::string{9, 2};
    d += lo(total);
    d += hi(total);
    d += std::string{1, 1, 0, static_cast<char>(0xC0), 1};
    d += std::string{9, 4, 0, 0, static_cast<char>(endpoints)};
    d += static_cast<char>(spec.interface_class);
    d += std::string{1, static_cast<char>(spec.bidirectional ? 2 : 1), 0};
    d += std::string{7, 5, 0x01, 2, 0x00, 0x02, 0};
    if (spec.bidirectional) d += std::string{7, 5, static_cast<char>(0x81), 2, 0x00, 0x02, 0};
    return d;
}

std::string string_descriptor(const std::string& s) {
    std::string d(2 + 2 * s.size(), '\0');
    d[0] = static_cast<char>(d.size());
    d[1] = 3;
    for (std::size_t i = 0; i < s.size(); ++i) d[2 + 2 * i] = s[i];
    return d;
}

std::string three_digits(unsigned v) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%03u", v);
    return buf;
}

}  // namespace

struct FakePrinter::State {
    std::mutex mu;
    FakePrinterSpec spec;
    std::string devnode;         // the current node; ioctls on older nodes fail with ENODEV
    std::uint8_t address = 0;
    bool present = false;        // electrically connected
    std::string received;
    std::string pending_in;      // bytes the printer returns on bulk IN
    std::string held;            // replies held back while silent
    bool silent = false;
    // (trigger, reply): a write containing the trigger queues the reply.
    std::vector<std::pair<std::string, std::string>> replies{{"~HS", zebra_host_status()}};
    bool bind_on_plug = false;   // usblp binds at every plug-in
    bool driver_bound = false;
    int detaches = 0;
    bool claim_busy = false;
    bool claimed = false;
    std::optional<std::size_t> out_limit;
    std::optional<std::size_t> fail_after;

    struct Urb {
        UMockdevIoctlClient* client;  // the connection (open fd) that submitted it
        UMockdevIoctlData* data;      // owned reference (the client's usbdevfs_urb)
        std::size_t consumed = 0;
        bool discarded = false;
    };
    std::deque<Urb> inflight;

    void drop_inflight() {
        for (auto& u : inflight) g_object_unref(u.data);
        inflight.clear();
    }

    // Bulk OUT: takes what the limits allow. Returns true when the URB is finished (`status`).
    bool consume_out(Urb& u, usbdevfs_urb* urb, const unsigned char* buf, int& status) {
        std::size_t n = static_cast<std::size_t>(urb->buffer_length) - u.consumed;
        if (out_limit) n = std::min(n, *out_limit);
        if (fail_after) n = std::min(n, *fail_after);
        const std::size_t before = received.size();
        received.append(reinterpret_cast<const char*>(buf) + u.consumed, n);
        u.consumed += n;
        if (out_limit) *out_limit -= n;
        if (fail_after) *fail_after -= n;
        // Every trigger occurrence that ends in the new bytes (it may straddle two transfers)
        // queues its reply, in stream order.
        std::vector<std::pair<std::size_t, const std::string*>> hits;
        for (const auto& [trigger, reply] : replies) {
            std::size_t pos = before >= trigger.size() ? before - trigger.size() + 1 : 0;
            while ((pos = received.find(trigger, pos)) != std::string::npos) {
                hits.emplace_back(pos, &reply);
                pos += trigger.size();
            }
        }
        std::sort(hits.begin(), hits.end());
        for (const auto& hit : hits) (silent ? held : pending_in) += *hit.second;
        if (u.consumed == static_cast<std::size_t>(urb->buffer_length)) {
            status = 0;
            if (fail_after && *fail_after == 0) present = false;  // the next transfer fails
            return true;
        }
        if (fail_after && *fail_after == 0) {  // pulled out in the middle of this transfer
            present = false;
            status = -ESHUTDOWN;
            return true;
        }
        return false;  // held back by out_limit
    }

    bool control(usbdevfs_urb* urb, unsigned char* buf) {
        const unsigned wValue = buf[2] | buf[3] << 8;
        const unsigned wLength = buf[6] | buf[7] << 8;
        std::string d;
        if (buf[0] == 0x80 && buf[1] == 6 && (wValue >> 8) == 3) {  // GET_DESCRIPTOR(STRING)
            switch (wValue & 0xff) {
            case 0: d = std::string("\x04\x03\x09\x04", 4); break;
            case 1: d = string_descriptor(spec.manufacturer); break;
            case 2: d = string_descriptor(spec.product); break;
            case 3: d = string_descriptor(spec.serial); break;
            default: urb->status = -EPIPE; urb->actual_length = 0; return true;
            }
        } else {
            urb->status = -EPIPE;  // stall: request not supported
            urb->actual_length = 0;
            return true;
        }
        const std::size_t n = std::min<std::size_t>(d.size(), wLength);
        std::memcpy(buf + 8, d.data(), n);
        urb->actual_length = static_cast<int>(n);
        urb->status = 0;
        return true;
    }

    // Fills a URB if it can finish now.
    bool complete(Urb& u, usbdevfs_urb* urb, unsigned char* buf) {
        if (u.discarded) {
            urb->status = -ENOENT;
            urb->actual_length = static_cast<int>(u.consumed);
            return true;
        }
        if (!present) {
            urb->status = -ESHUTDOWN;
            urb->actual_length = static_cast<int>(u.consumed);
            return true;
        }
        if (urb->type == USBDEVFS_URB_TYPE_CONTROL) return control(urb, buf);
        if (!(urb->endpoint & 0x80)) {
            int status = 0;
            if (!consume_out(u, urb, buf, status)) return false;
            urb->status = status;
            urb->actual_length = static_cast<int>(u.consumed);
            return true;
        }
        if (silent || pending_in.empty()) return false;  // bulk IN waits for data
        const std::size_t n = std::min<std::size_t>(pending_in.size(), urb->buffer_length);
        std::memcpy(buf, pending_in.data(), n);
        pending_in.erase(0, n);
        urb->actual_length = static_cast<int>(n);
        urb->status = 0;
        return true;
    }
};

namespace {

void finish(UMockdevIoctlClient* client, int ret, int err) {
    umockdev_ioctl_client_complete(client, ret, err);
}

gboolean on_ioctl(UMockdevIoctlBase*, UMockdevIoctlClient* client, gpointer user) {
    auto* st = static_cast<FakePrinter::State*>(user);
    std::lock_guard lk(st->mu);
    UMockdevIoctlData* arg = umockdev_ioctl_client_get_arg(client);
    const gulong request = umockdev_ioctl_client_get_request(client);
    const char* node = umockdev_ioctl_client_get_devnode(client);
    const bool current = node && st->devnode == node;

    if (request == USBDEVFS_GET_CAPABILITIES) {
        UMockdevIoctlData* d = umockdev_ioctl_data_resolve(arg, 0, sizeof(guint32), nullptr);
        *reinterpret_cast<guint32*>(d->data) =
            USBDEVFS_CAP_BULK_CONTINUATION | USBDEVFS_CAP_NO_PACKET_SIZE_LIM |
            USBDEVFS_CAP_ZERO_PACKET | USBDEVFS_CAP_BULK_SCATTER_GATHER;
        g_object_unref(d);
        finish(client, 0, 0);
        return TRUE;
    }
    // Reaping continues after a disconnect until the URBs in flight are given back.
    const bool reap = request == USBDEVFS_REAPURB || request == USBDEVFS_REAPURBNDELAY;
    if (!current || (!st->present && !reap)) {
        finish(client, -1, ENODEV);
        return TRUE;
    }
    switch (request) {
    case USBDEVFS_CLAIMINTERFACE: {
        if (st->claim_busy || st->driver_bound) {
            finish(client, -1, EBUSY);
            return TRUE;
        }
        st->claimed = true;
        finish(client, 0, 0);
        return TRUE;
    }
    case USBDEVFS_RELEASEINTERFACE:
        st->claimed = false;
        finish(client, 0, 0);
        return TRUE;
    case USBDEVFS_DISCONNECT_CLAIM:  // libusb's auto-detach path
        if (st->claim_busy) {
            finish(client, -1, EBUSY);
            return TRUE;
        }
        if (st->driver_bound) {
            st->driver_bound = false;
            ++st->detaches;
        }
        st->claimed = true;
        finish(client, 0, 0);
        return TRUE;
    case USBDEVFS_CLEAR_HALT:
    case USBDEVFS_RESET:
    case USBDEVFS_RESETEP:
    case USBDEVFS_SETINTERFACE:
        finish(client, 0, 0);
        return TRUE;
    case USBDEVFS_GETDRIVER: {
        UMockdevIoctlData* d =
            umockdev_ioctl_data_resolve(arg, 0, sizeof(usbdevfs_getdriver), nullptr);
        auto* gd = reinterpret_cast<usbdevfs_getdriver*>(d->data);
        const char* name = st->claimed ? "usbfs" : st->driver_bound ? "usblp" : nullptr;
        if (gd->interface == 0 && name) {
            std::snprintf(gd->driver, sizeof gd->driver, "%s", name);
            g_object_unref(d);
            finish(client, 0, 0);
        } else {
            g_object_unref(d);
            finish(client, -1, ENODATA);
        }
        return TRUE;
    }
    case USBDEVFS_IOCTL: {
        UMockdevIoctlData* d = umockdev_ioctl_data_resolve(arg, 0, sizeof(usbdevfs_ioctl), nullptr);
        const auto* io = reinterpret_cast<const usbdevfs_ioctl*>(d->data);
        const bool disconnect = io->ioctl_code == static_cast<int>(USBDEVFS_DISCONNECT);
        const bool connect = io->ioctl_code == static_cast<int>(USBDEVFS_CONNECT);
        g_object_unref(d);
        if (disconnect && st->driver_bound) {
            st->driver_bound = false;
            ++st->detaches;
            finish(client, 0, 0);
        } else if (connect) {
            st->driver_bound = true;
            finish(client, 0, 0);
        } else {
            finish(client, -1, ENODATA);
        }
        return TRUE;
    }
    case USBDEVFS_SUBMITURB: {
        UMockdevIoctlData* u = umockdev_ioctl_data_resolve(arg, 0, sizeof(usbdevfs_urb), nullptr);
        auto* urb = reinterpret_cast<usbdevfs_urb*>(u->data);
        UMockdevIoctlData* b = umockdev_ioctl_data_resolve(
            u, G_STRUCT_OFFSET(usbdevfs_urb, buffer), urb->buffer_length, nullptr);
        g_object_unref(b);  // kept alive by its parent u
        st->inflight.push_back({client, u});
        finish(client, 0, 0);
        return TRUE;
    }
    case USBDEVFS_REAPURB:
    case USBDEVFS_REAPURBNDELAY: {
        // Like usbfs, each open file reaps only the URBs it submitted.
        for (auto it = st->inflight.begin(); it != st->inflight.end(); ++it) {
            if (it->client != client) continue;
            auto* urb = reinterpret_cast<usbdevfs_urb*>(it->data->data);
            UMockdevIoctlData* b = umockdev_ioctl_data_resolve(
                it->data, G_STRUCT_OFFSET(usbdevfs_urb, buffer), urb->buffer_length, nullptr);
            const bool done = st->complete(*it, urb, b->data);
            g_object_unref(b);
            if (!done) continue;
            UMockdevIoctlData* p = umockdev_ioctl_data_resolve(arg, 0, sizeof(gpointer), nullptr);
            umockdev_ioctl_data_set_ptr(p, 0, it->data);
            g_object_unref(p);
            g_object_unref(it->data);
            st->inflight.erase(it);
            finish(client, 0, 0);
            return TRUE;
        }
        finish(client, -1, st->present ? EAGAIN : ENODEV);
        return TRUE;
    }
    case USBDEVFS_DISCARDURB: {  // libusb cancels (timeout)
        const gulong addr = *reinterpret_cast<gulong*>(arg->data);
        for (auto& u : st->inflight) {
            if (u.client == client && u.data->client_addr == addr && !u.discarded) {
                u.discarded = true;  // reaped next with -ENOENT
                finish(client, 0, 0);
                return TRUE;
            }
        }
        finish(client, -1, EINVAL);
        return TRUE;
    }
    default:
        return FALSE;  // umockdev's default handling
    }
}

}  // namespace

struct FakeUsbBus::Impl {
    UMockdevTestbed* tb = nullptr;
    std::uint8_t next_address = 2;
};

FakeUsbBus::FakeUsbBus() : impl_(std::make_unique<Impl>()) {
    if (!preloaded()) {
        throw std::runtime_error(
            "FakeUsbBus needs LD_PRELOAD=libumockdev-preload.so.0 (CTest sets it)");
    }
    impl_->tb = umockdev_testbed_new();
}

FakeUsbBus::~FakeUsbBus() {
    printers_.clear();
    g_object_unref(impl_->tb);
}

bool FakeUsbBus::preloaded() {
    const char* pre = std::getenv("LD_PRELOAD");
    return pre && std::strstr(pre, "libumockdev-preload");
}

std::string FakeUsbBus::root_dir() const {
    gchar* d = umockdev_testbed_get_root_dir(impl_->tb);
    std::string out = d ? d : "";
    g_free(d);
    return out;
}

std::uint8_t FakeUsbBus::next_address() {
    std::lock_guard lk(mu_);
    return impl_->next_address++;
}

FakePrinter& FakeUsbBus::add(FakePrinterSpec spec) {
    int port = 0;
    {
        std::lock_guard lk(mu_);
        port = static_cast<int>(printers_.size()) + 1;
    }
    std::unique_ptr<FakePrinter> p(new FakePrinter(*this, std::move(spec), port));
    p->plug_in();
    std::lock_guard lk(mu_);
    printers_.push_back(std::move(p));
    return *printers_.back();
}

// ---- FakePrinter -------------------------------------------------------------------------------

FakePrinter::FakePrinter(FakeUsbBus& bus, FakePrinterSpec spec, int port)
    : bus_(bus), spec_(std::move(spec)), port_(port), state_(std::make_unique<State>()) {
    state_->spec = spec_;
}

FakePrinter::~FakePrinter() {
    std::lock_guard lk(state_->mu);
    state_->drop_inflight();
    for (auto* h : handlers_) g_object_unref(h);
}

std::string FakePrinter::syspath() const {
    return "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-" + std::to_string(port_);
}

void FakePrinter::plug_in() {
    const std::uint8_t addr = bus_.next_address();
    const std::string a = three_digits(addr);
    const std::string node = "/dev/bus/usb/001/" + a;
    {
        std::lock_guard lk(state_->mu);
        state_->drop_inflight();
        state_->devnode = node;
        state_->address = addr;
        state_->present = true;
        state_->claimed = false;
        state_->driver_bound = state_->bind_on_plug;
        state_->fail_after.reset();
    }
    UMockdevIoctlBase* h = umockdev_ioctl_base_new();
    g_signal_connect(h, "handle-ioctl", G_CALLBACK(on_ioctl), state_.get());
    handlers_.push_back(h);
    GError* err = nullptr;
    if (!umockdev_testbed_attach_ioctl(bus_.impl_->tb, node.c_str(), h, &err)) {
        const std::string msg = err ? err->message : "?";
        if (err) g_error_free(err);
        throw std::runtime_error("umockdev_testbed_attach_ioctl " + node + ": " + msg);
    }
    const std::string p = syspath();
    std::string text = "P: " + p.substr(4) + "\n";
    text += "N: bus/usb/001/" + a + "\n";
    text += "E: SUBSYSTEM=usb\nE: DEVTYPE=usb_device\nE: DRIVER=usb\n";
    text += "E: BUSNUM=001\nE: DEVNUM=" + a + "\n";
    text += "E: DEVNAME=" + node + "\n";
    text += "A: busnum=1\\n\nA: devnum=" + std::to_string(addr) + "\\n\n";
    text += "A: speed=480\\n\nA: bConfigurationValue=1\\n\n";
    char ids[64];
    std::snprintf(ids, sizeof ids, "A: idVendor=%04x\\n\nA: idProduct=%04x\\n\n",
                  spec_.vendor_id, spec_.product_id);
    text += ids;
    if (!spec_.serial.empty()) text += "A: serial=" + spec_.serial + "\\n\n";
    text += "H: descriptors=" + hex(descriptors(spec_)) + "\n";
    if (!umockdev_testbed_add_from_string(bus_.impl_->tb, text.c_str(), &err)) {
        const std::string msg = err ? err->message : "?";
        if (err) g_error_free(err);
        throw std::runtime_error("umockdev_testbed_add_from_string: " + msg);
    }
    // umockdev 0.17 sends the "add" uevent itself (but no "remove" in remove_device).
}

void FakePrinter::unplug() {
    {
        std::lock_guard lk(state_->mu);
        state_->present = false;
    }
    const std::string p = syspath();
    umockdev_testbed_uevent(bus_.impl_->tb, p.c_str(), "remove");
    umockdev_testbed_remove_device(bus_.impl_->tb, p.c_str());
}

void FakePrinter::replug() { plug_in(); }

bool FakePrinter::present() const {
    std::lock_guard lk(state_->mu);
    return state_->present;
}

std::uint8_t FakePrinter::address() const {
    std::lock_guard lk(state_->mu);
    return state_->address;
}

std::string FakePrinter::devnode() const {
    std::lock_guard lk(state_->mu);
    return state_->devnode;
}

std::string FakePrinter::received() const {
    std::lock_guard lk(state_->mu);
    return state_->received;
}

std::size_t FakePrinter::received_size() const {
    std::lock_guard lk(state_->mu);
    return state_->received.size();
}

void FakePrinter::clear_received() {
    std::lock_guard lk(state_->mu);
    state_->received.clear();
}

void FakePrinter::set_reply(std::string trigger, std::string reply) {
    if (trigger.empty()) return;
    std::lock_guard lk(state_->mu);
    auto& rs = state_->replies;
    auto it = std::find_if(rs.begin(), rs.end(), [&](const auto& r) { return r.first == trigger; });
    if (reply.empty()) {
        if (it != rs.end()) rs.erase(it);
    } else if (it != rs.end()) {
        it->second = std::move(reply);
    } else {
        rs.emplace_back(std::move(trigger), std::move(reply));
    }
}

void FakePrinter::push_in(const std::string& bytes) {
    std::lock_guard lk(state_->mu);
    (state_->silent ? state_->held : state_->pending_in) += bytes;
}

void FakePrinter::set_silent(bool silent) {
    std::lock_guard lk(state_->mu);
    state_->silent = silent;
    if (!silent) {
        state_->pending_in += state_->held;
        state_->held.clear();
    }
}

void FakePrinter::bind_kernel_driver() {
    std::lock_guard lk(state_->mu);
    state_->bind_on_plug = true;
    state_->driver_bound = true;
}

bool FakePrinter::kernel_driver_bound() const {
    std::lock_guard lk(state_->mu);
    return state_->driver_bound;
}

int FakePrinter::detach_count() const {
    std::lock_guard lk(state_->mu);
    return state_->detaches;
}

void FakePrinter::set_claim_busy(bool busy) {
    std::lock_guard lk(state_->mu);
    state_->claim_busy = busy;
}

bool FakePrinter::claimed() const {
    std::lock_guard lk(state_->mu);
    return state_->claimed;
}

void FakePrinter::limit_out(std::optional<std::size_t> bytes) {
    std::lock_guard lk(state_->mu);
    state_->out_limit = bytes;
}

void FakePrinter::fail_after(std::size_t bytes) {
    std::lock_guard lk(state_->mu);
    state_->fail_after = bytes;
}

}  // namespace pressline::testing::usb
