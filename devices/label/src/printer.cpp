// The label printer device: ZPL over USB (drivers/usb) or raw TCP (drivers/tcp) with status
// from ~HQES / ~HS, and CUPS queues (drivers/cups) for raw ZPL or PDF. See README.md for the
// state mapping and what each Delivery value promises.
#include "pressline/devices/label/printer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>

#include <fmt/format.h>

#include "pressline/devices/dtg.hpp"
#include "pressline/devices/label/status.hpp"
#include "pressline/drivers/cups.hpp"
#include "pressline/drivers/tcp.hpp"
#include "pressline/drivers/usb.hpp"

namespace pressline::devices::label {

std::string_view to_string(State s) {
    switch (s) {
        case State::idle: return "idle";
        case State::printing: return "printing";
        case State::paused: return "paused";
        case State::offline: return "offline";
        case State::unresponsive: return "unresponsive";
        case State::error: return "error";
    }
    return "unknown";
}

std::string_view to_string(Language l) {
    switch (l) {
        case Language::zpl: return "zpl";
        case Language::pdf: return "pdf";
    }
    return "unknown";
}

std::string_view to_string(Delivery d) {
    switch (d) {
        case Delivery::delivered: return "delivered";
        case Delivery::not_sent: return "not_sent";
        case Delivery::uncertain: return "uncertain";
    }
    return "unknown";
}

namespace {

namespace usb = drivers::usb;
namespace tcp = drivers::tcp;
namespace cups = drivers::cups;
using std::chrono::milliseconds;

constexpr std::string_view kHqes = "~HQES";
constexpr std::string_view kHs = "~HS";

// "label printer shipping-1 (zpl over tcp 10.0.0.7:9100)"
std::string describe(const Settings& s) {
    std::string transport;
    if (s.connection == "tcp") transport = fmt::format("tcp {}:{}", s.host, s.port);
    else if (s.connection == "usb")
        transport = fmt::format("usb {:04x}:{:04x}{}", s.vendor_id, s.product_id,
                                s.serial.empty() ? std::string{} : " serial " + s.serial);
    else if (s.connection == "cups")
        transport = fmt::format("cups {} queue {}", s.server.empty() ? "(default server)" : s.server, s.queue);
    else transport = s.connection;
    return fmt::format("label printer {} ({} over {})", s.name, to_string(s.language), transport);
}

Status make_status(State state, std::vector<std::string> reasons, std::string message) {
    Status s;
    s.state = state;
    s.reasons = std::move(reasons);
    s.message = std::move(message);
    return s;
}

SendResult send_result(Delivery d, std::string reason, std::string message, std::size_t bytes = 0,
                       std::string device_job = {}) {
    SendResult r;
    r.delivery = d;
    r.reason = std::move(reason);
    r.message = std::move(message);
    r.bytes = bytes;
    r.device_job = std::move(device_job);
    return r;
}

// The contract's state for a parsed ZPL status.
Status from_zpl(const ZplStatus& z, std::string message) {
    State st = State::idle;
    if (z.has_error()) st = State::error;
    else if (z.paused) st = State::paused;
    else if (z.formats_in_buffer > 0 || z.labels_remaining > 0 || z.buffer_full) st = State::printing;
    return make_status(st, z.reasons(), std::move(message));
}

// ~HQES (errors, warnings) and ~HS (pause, buffer, counts) of one poll, as one status.
ZplStatus merge(const ZplStatus& hqes, const ZplStatus& hs) {
    ZplStatus m = hqes;
    m.paper_out = hqes.paper_out || hs.paper_out;
    m.paused = hqes.paused || hs.paused;
    m.head_open = hqes.head_open || hs.head_open;
    m.ribbon_out = hqes.ribbon_out || hs.ribbon_out;
    m.buffer_full = hs.buffer_full;
    m.head_over_temp = hqes.head_over_temp || hs.head_over_temp;
    m.head_under_temp = hs.head_under_temp;
    m.corrupt_ram = hs.corrupt_ram;
    m.formats_in_buffer = hs.formats_in_buffer;
    m.labels_remaining = hs.labels_remaining;
    return m;
}

// ---- ZPL transports -----------------------------------------------------------------------

// What one status query got.
struct Reply {
    enum Kind { answered, silent, offline } kind = silent;
    std::string text;     // the reply (answered) or what arrived before the timeout (silent)
    std::string message;  // the transport's words when not answered
};

// A failed write, transport-neutral.
struct WriteOutcome {
    bool ok = false;
    std::size_t bytes = 0;
    std::string code;  // the transport's error code name
    std::string reason;  // our reason when nothing was accepted
    std::string message;
};

class Link {
public:
    virtual ~Link() = default;
    // Connects / opens for a status poll; the transport's words on failure.
    virtual std::optional<std::string> begin() = 0;
    virtual Reply query(std::string_view q, const std::function<bool(std::string_view)>& complete) = 0;
    // After a status poll.
    virtual void end() = 0;
    virtual WriteOutcome write(std::string_view data) = 0;
};

std::string tcp_code(const std::error_code& ec) {
    if (ec == tcp::make_error_code(tcp::Errc::refused)) return "refused";
    if (ec == tcp::make_error_code(tcp::Errc::timeout)) return "timeout";
    if (ec == tcp::make_error_code(tcp::Errc::closed)) return "closed";
    if (ec == tcp::make_error_code(tcp::Errc::resolve)) return "resolve";
    return "io";
}

// Raw TCP (9100). Every status poll and every document uses a fresh connection: a printer
// that closed an idle connection cannot swallow a document written into it, and a late reply
// to a timed-out query cannot be read as the answer to the next one. Many ZPL printers serve one
// connection at a time, so none is kept open longer than one operation.
class TcpLink final : public Link {
public:
    explicit TcpLink(const Settings& s)
        : client_(tcp::Endpoint{s.host, s.port, s.connect_timeout, s.write_timeout, s.status_timeout}) {}

    std::optional<std::string> begin() override {
        client_.close();
        auto c = client_.connect();
        if (!c) return c.message;
        return std::nullopt;
    }

    Reply query(std::string_view q, const std::function<bool(std::string_view)>& complete) override {
        auto r = client_.request(q, complete);
        if (r) return Reply{Reply::answered, std::move(r.value), {}};
        const std::string code = tcp_code(r.code);
        // A reply may still be on its way: drop this connection (and with it any late bytes).
        client_.close();
        if (code == "refused" || code == "resolve") return Reply{Reply::offline, {}, r.message};
        return Reply{Reply::silent, std::move(r.value), r.message};
    }

    void end() override { client_.close(); }

    WriteOutcome write(std::string_view data) override {
        client_.close();
        auto w = client_.write(data);
        WriteOutcome o;
        o.ok = static_cast<bool>(w);
        o.bytes = w.value.bytes;
        if (!o.ok) {
            o.code = tcp_code(w.code);
            o.reason = o.code == "resolve" ? "offline" : o.code;
            o.message = w.message;
        } else {
            o.bytes = data.size();
        }
        // The end of the connection ends the job for a 9100 printer; the kernel still sends
        // what it buffered.
        client_.close();
        return o;
    }

private:
    tcp::Client client_;
};

std::string usb_code(const std::error_code& ec) {
    if (ec == usb::make_error_code(usb::Errc::not_found)) return "not_found";
    if (ec == usb::make_error_code(usb::Errc::access)) return "access";
    if (ec == usb::make_error_code(usb::Errc::busy)) return "busy";
    if (ec == usb::make_error_code(usb::Errc::timeout)) return "timeout";
    if (ec == usb::make_error_code(usb::Errc::gone)) return "gone";
    return "io";
}

// USB printer class. The device stays open between calls (the driver closes it when it goes
// away). A late reply to a timed-out query is read and dropped before the next query.
class UsbLink final : public Link {
public:
    UsbLink(usb::Context& ctx, const Settings& s)
        : printer_(ctx, usb::Selector{s.vendor_id, s.product_id, s.serial}, options(s)),
          status_timeout_(s.status_timeout) {}

    std::optional<std::string> begin() override {
        if (printer_.is_open()) return std::nullopt;
        auto o = printer_.open();
        if (!o) return o.message;
        return std::nullopt;
    }

    Reply query(std::string_view q, const std::function<bool(std::string_view)>& complete) override {
        if (stale_) {
            (void)printer_.read([](std::string_view) { return false; }, milliseconds{50});
            stale_ = false;
        }
        auto r = printer_.request(q, complete, status_timeout_);
        if (r) return Reply{Reply::answered, std::move(r.value), {}};
        const std::string code = usb_code(r.code);
        if (code == "gone" || code == "not_found") return Reply{Reply::offline, {}, r.message};
        stale_ = true;
        return Reply{Reply::silent, std::move(r.value), r.message};
    }

    void end() override {}

    WriteOutcome write(std::string_view data) override {
        auto w = printer_.write(data);
        WriteOutcome o;
        o.ok = static_cast<bool>(w);
        o.bytes = o.ok ? data.size() : w.value.bytes;
        if (!o.ok) {
            o.code = usb_code(w.code);
            o.reason = (o.code == "gone" || o.code == "not_found") ? "offline" : o.code;
            o.message = w.message;
        }
        return o;
    }

private:
    static usb::Options options(const Settings& s) {
        usb::Options o;
        o.write_timeout = s.write_timeout;
        o.read_timeout = s.status_timeout;
        return o;
    }
    usb::Printer printer_;
    milliseconds status_timeout_;
    bool stale_ = false;
};

// ZPL over USB or TCP.
class ZplPrinter final : public Printer {
public:
    ZplPrinter(Settings s, std::unique_ptr<Link> link)
        : settings_(std::move(s)), who_(describe(settings_)), link_(std::move(link)) {}

    const Settings& settings() const override { return settings_; }

    Status status() override {
        if (auto failed = link_->begin())
            return make_status(State::offline, {"offline"}, fmt::format("{}: {}", who_, *failed));
        Status s = poll();
        link_->end();
        return s;
    }

    SendResult send(std::string_view document, const std::string& job_name) override {
        const WriteOutcome w = link_->write(document);
        if (w.ok)
            return send_result(Delivery::delivered, {}, fmt::format("{}: {} sent ({} bytes)", who_, job_name, w.bytes),
                               w.bytes);
        if (w.bytes == 0)
            return send_result(Delivery::not_sent, w.reason,
                               fmt::format("{}: {} not sent ({}): {}", who_, job_name, w.code, w.message));
        return send_result(Delivery::uncertain, "interrupted",
                           fmt::format("{}: {} interrupted after {} of {} bytes ({}): {}", who_, job_name, w.bytes,
                                       document.size(), w.code, w.message),
                           w.bytes);
    }

    SendResult find(const std::string& job_name) override {
        return send_result(Delivery::uncertain, "not_traceable",
                           fmt::format("{}: {} cannot be looked up: {} keeps no job names", who_, job_name,
                                       settings_.connection));
    }

private:
    struct Parsed {
        Reply reply;
        std::optional<ZplStatus> status;
        std::string error;  // parse error or why there is no answer
    };

    Parsed ask(std::string_view q) {
        Parsed p;
        const bool hqes = q == kHqes;
        p.reply = link_->query(q, hqes ? &hqes_complete : &hs_complete);
        if (p.reply.kind == Reply::offline) {
            p.error = p.reply.message;
        } else if (p.reply.kind == Reply::silent) {
            p.error = fmt::format("no answer to {} within {} ms ({} bytes): {}", q, settings_.status_timeout.count(),
                                  p.reply.text.size(), p.reply.message);
        } else {
            StatusResult r = hqes ? parse_hqes(p.reply.text) : parse_hs(p.reply.text);
            if (auto* z = std::get_if<ZplStatus>(&r)) p.status = *z;
            else p.error = std::get<ParseError>(r).message;
        }
        return p;
    }

    Status offline(const Parsed& p) const {
        return make_status(State::offline, {"offline"}, fmt::format("{}: {}", who_, p.error));
    }
    // Connected, but no well-formed answer.
    Status unanswered(const Parsed& p) const {
        if (p.reply.kind == Reply::answered)
            return make_status(State::error, {"status-unreadable"}, fmt::format("{}: {}", who_, p.error));
        return make_status(State::unresponsive, {"unresponsive"}, fmt::format("{}: {}", who_, p.error));
    }

    Status poll() {
        const std::string& mode = settings_.status_query;
        if (mode == "none") return make_status(State::idle, {}, fmt::format("{}: connected (no status query)", who_));
        if (mode == "hqes") {
            // ~HQES cannot say "paused": a paused printer reads as idle in this mode.
            Parsed p = ask(kHqes);
            if (p.reply.kind == Reply::offline) return offline(p);
            if (!p.status) return unanswered(p);
            return from_zpl(*p.status, "~HQES");
        }
        if (mode == "hs" || hqes_unsupported_) {
            Parsed p = ask(kHs);
            if (p.reply.kind == Reply::offline) return offline(p);
            if (!p.status) return unanswered(p);
            return from_zpl(*p.status, "~HS");
        }
        // auto: ~HQES (the printer's own error bits) and ~HS (pause, formats in the buffer).
        Parsed e = ask(kHqes);
        if (e.reply.kind == Reply::offline) return offline(e);
        Parsed h = ask(kHs);
        if (h.reply.kind == Reply::offline) return offline(h);
        if (e.status && h.status) return from_zpl(merge(*e.status, *h.status), "~HQES+~HS");
        if (e.status) {
            // Errors ~HQES reports are certain; without ~HS, paused or not is unknown.
            if (e.status->has_error())
                return from_zpl(*e.status, fmt::format("~HQES ({})", h.error));
            return unanswered(h);
        }
        if (h.status) {
            // No well-formed answer to ~HQES but one to ~HS: a printer without ~HQES (not
            // Link-OS). Ask only ~HS from now on.
            hqes_unsupported_ = true;
            return from_zpl(*h.status, fmt::format("~HS (~HQES: {})", e.error));
        }
        // Neither: report what ~HS got (a garbled answer is an error, silence unresponsive).
        if (e.reply.kind == Reply::answered && h.reply.kind != Reply::answered) return unanswered(e);
        return unanswered(h);
    }

    Settings settings_;
    std::string who_;
    std::unique_ptr<Link> link_;
    bool hqes_unsupported_ = false;
};

// ---- CUPS ---------------------------------------------------------------------------------

// A private temporary file holding the document (send_document streams a file).
class TempFile {
public:
    explicit TempFile(std::string_view data) {
        std::error_code ec;
        auto dir = std::filesystem::temp_directory_path(ec);
        if (ec) dir = "/tmp";
        std::string templ = (dir / "pressline-label-XXXXXX").string();
        const int fd = ::mkstemp(templ.data());
        if (fd < 0) {
            error_ = fmt::format("cannot create a temporary file in {}: {}", dir.string(), std::strerror(errno));
            return;
        }
        path_ = templ;
        std::size_t done = 0;
        while (done < data.size()) {
            const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                error_ = fmt::format("cannot write {}: {}", path_.string(), std::strerror(errno));
                break;
            }
            done += static_cast<std::size_t>(n);
        }
        if (::close(fd) != 0 && error_.empty())
            error_ = fmt::format("cannot write {}: {}", path_.string(), std::strerror(errno));
    }
    ~TempFile() {
        if (!path_.empty()) {
            std::error_code ec;
            std::filesystem::remove(path_, ec);
        }
    }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    const std::string& error() const { return error_; }
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
    std::string error_;
};

std::string cups_code(const std::error_code& ec) {
    if (ec == cups::Errc::unreachable) return "unreachable";
    if (ec == cups::Errc::not_found) return "not_found";
    if (ec == cups::Errc::refused) return "refused";
    if (ec == cups::Errc::protocol) return "protocol";
    return "io";
}

// Our reason for a CUPS failure with nothing sent.
std::string cups_reason(const std::error_code& ec) {
    const std::string c = cups_code(ec);
    return c == "unreachable" ? "offline" : c;
}

bool has(const std::vector<std::string>& v, std::string_view x) {
    for (const auto& e : v)
        if (e == x) return true;
    return false;
}

// Provably never printed: created but its document never arrived, or ended before anything
// left CUPS (0 impressions; see drivers/cups/README.md).
bool never_printed(const cups::JobInfo& j) {
    if ((j.state == cups::JobState::pending || j.state == cups::JobState::held) && has(j.reasons, "job-incoming"))
        return true;
    return (j.state == cups::JobState::canceled || j.state == cups::JobState::aborted) && j.impressions_completed == 0;
}

class CupsPrinter final : public Printer {
public:
    explicit CupsPrinter(Settings s)
        : settings_(std::move(s)),
          who_(describe(settings_)),
          client_(cups::Endpoint{settings_.server, settings_.queue, settings_.connect_timeout}) {}

    const Settings& settings() const override { return settings_; }

    Status status() override {
        auto r = client_.printer();
        if (!r) {
            if (r.code == cups::Errc::unreachable)
                return make_status(State::offline, {"offline"}, fmt::format("{}: {}", who_, r.message));
            return make_status(State::error, {r.code == cups::Errc::not_found ? "queue-not-found" : "cups-error"},
                               fmt::format("{}: {}", who_, r.message));
        }
        std::vector<std::string> reasons;
        for (const auto& x : r.value.reasons) reasons.push_back(x.keyword());
        const dtg::Status d = dtg::status_from_ipp(static_cast<int>(r.value.state), reasons, r.value.message);
        Status s;
        s.reasons = d.reasons;
        s.message = d.message;
        switch (d.state) {
            case dtg::State::idle: s.state = State::idle; break;
            case dtg::State::printing: s.state = State::printing; break;
            case dtg::State::paused: s.state = State::paused; break;
            case dtg::State::offline: s.state = State::offline; break;
            case dtg::State::error: s.state = State::error; break;
        }
        // As for DTG queues: CUPS' backend cannot reach the printer (only the message says so),
        // and a queue that does not accept jobs.
        if (s.state != State::error && (s.message.find("may not exist or is unavailable") != std::string::npos ||
                                        s.message.find("Unable to connect") != std::string::npos)) {
            s.state = State::offline;
            s.reasons.push_back("offline");
        }
        if (!r.value.accepting && s.state == State::idle) {
            s.state = State::paused;
            s.reasons.push_back("not-accepting-jobs");
        }
        return s;
    }

    SendResult send(std::string_view document, const std::string& job_name) override {
        TempFile file(document);
        if (!file.error().empty())
            return send_result(Delivery::not_sent, "io", fmt::format("{}: {} not sent: {}", who_, job_name, file.error()));
        auto id = client_.create_job(job_name);
        if (!id)
            return send_result(Delivery::not_sent, cups_reason(id.code),
                               fmt::format("{}: {} not sent: {}", who_, job_name, id.message));
        const std::string job = std::to_string(id.value);
        const std::string mime = settings_.language == Language::pdf ? "application/pdf" : "application/vnd.cups-raw";
        auto sent = client_.send_document(id.value, file.path(), mime);
        if (sent)
            return send_result(Delivery::delivered, {},
                               fmt::format("{}: {} sent as job {} ({} bytes)", who_, job_name, job, document.size()),
                               document.size(), job);
        // The job exists but its document may or may not have arrived: withdraw it, then only
        // a job that provably never printed counts as not sent.
        const std::string what = fmt::format("{}: {} (job {}): {}", who_, job_name, job, sent.message);
        (void)client_.cancel(id.value);
        auto j = client_.job(id.value);
        if (j && never_printed(j.value))
            return send_result(Delivery::not_sent, cups_reason(sent.code), what + "; job withdrawn", 0, job);
        const std::string after = j ? fmt::format("job {} is {}", job, cups::to_string(j.value.state))
                                    : fmt::format("job {} unknown: {}", job, j.message);
        return send_result(Delivery::uncertain, "interrupted",
                           fmt::format("{} ({}); {}", what, cups_code(sent.code), after), 0, job);
    }

    SendResult find(const std::string& job_name) override {
        auto r = client_.find_jobs(job_name);
        if (!r)
            return send_result(Delivery::uncertain, cups_reason(r.code),
                               fmt::format("{}: cannot look up {}: {}", who_, job_name, r.message));
        const cups::JobInfo* printed = nullptr;  // newest job that may have printed
        const cups::JobInfo* withdrawn = nullptr;
        for (const auto& j : r.value) {
            if (j.name != job_name) continue;  // the search is by prefix
            const cups::JobInfo*& slot = never_printed(j) ? withdrawn : printed;
            if (!slot || j.id > slot->id) slot = &j;
        }
        if (printed)
            return send_result(Delivery::delivered, {},
                               fmt::format("{}: {} is job {} ({})", who_, job_name, printed->id,
                                           cups::to_string(printed->state)),
                               0, std::to_string(printed->id));
        if (withdrawn) {
            // A job whose document never arrived stays waiting for it: withdraw it so it can
            // never print.
            if (withdrawn->state == cups::JobState::pending || withdrawn->state == cups::JobState::held) {
                auto c = client_.cancel(withdrawn->id);
                if (!c)
                    return send_result(Delivery::uncertain, cups_reason(c.code),
                                       fmt::format("{}: {} is job {} without its document; withdrawing it failed: {}",
                                                   who_, job_name, withdrawn->id, c.message),
                                       0, std::to_string(withdrawn->id));
            }
            return send_result(Delivery::not_sent, "never_printed",
                               fmt::format("{}: {} is job {} ({}), which never printed", who_, job_name, withdrawn->id,
                                           cups::to_string(withdrawn->state)),
                               0, std::to_string(withdrawn->id));
        }
        return send_result(Delivery::not_sent, "unknown_job", fmt::format("{}: no job named {}", who_, job_name));
    }

private:
    Settings settings_;
    std::string who_;
    cups::Client client_;
};

// Settings no transport can serve: every call says why.
class MisconfiguredPrinter final : public Printer {
public:
    MisconfiguredPrinter(Settings s, std::string why) : settings_(std::move(s)), why_(describe(settings_) + ": " + why) {}
    const Settings& settings() const override { return settings_; }
    Status status() override { return make_status(State::error, {"misconfigured"}, why_); }
    SendResult send(std::string_view, const std::string&) override {
        return send_result(Delivery::not_sent, "misconfigured", why_);
    }
    // Nothing can be asked: a row left sending stays uncertain (never resent on a guess).
    SendResult find(const std::string&) override { return send_result(Delivery::uncertain, "misconfigured", why_); }

private:
    Settings settings_;
    std::string why_;
};

std::optional<std::string> check(const Settings& s, usb::Context* ctx) {
    if (s.connection != "usb" && s.connection != "tcp" && s.connection != "cups")
        return fmt::format("unknown connection \"{}\" (usb, tcp or cups)", s.connection);
    if (s.language == Language::pdf && s.connection != "cups")
        return std::string("pdf labels need a cups connection");
    if (s.status_query != "auto" && s.status_query != "hqes" && s.status_query != "hs" && s.status_query != "none")
        return fmt::format("unknown status_query \"{}\" (auto, hqes, hs or none)", s.status_query);
    if (s.connection == "tcp" && s.host.empty()) return std::string("tcp connection without a host");
    if (s.connection == "cups" && s.queue.empty()) return std::string("cups connection without a queue");
    if (s.connection == "usb" && !ctx) return std::string("usb connection without a USB context");
    return std::nullopt;
}

}  // namespace

std::unique_ptr<Printer> make_printer(Settings settings, usb::Context* ctx) {
    if (auto why = check(settings, ctx)) return std::make_unique<MisconfiguredPrinter>(std::move(settings), *why);
    if (settings.connection == "cups") return std::make_unique<CupsPrinter>(std::move(settings));
    std::unique_ptr<Link> link;
    if (settings.connection == "tcp") link = std::make_unique<TcpLink>(settings);
    else link = std::make_unique<UsbLink>(*ctx, settings);
    return std::make_unique<ZplPrinter>(std::move(settings), std::move(link));
}

}  // namespace pressline::devices::label
