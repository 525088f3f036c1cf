// CUPS driver (see pressline/drivers/cups.hpp).
#include "pressline/drivers/cups.hpp"

#include <cups/cups.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <utility>

namespace pressline::drivers::cups {

namespace {

class Category final : public std::error_category {
public:
    const char* name() const noexcept override { return "pressline.cups"; }
    std::string message(int ev) const override {
        switch (static_cast<Errc>(ev)) {
        case Errc::unreachable: return "CUPS scheduler unreachable";
        case Errc::not_found: return "queue or job not found";
        case Errc::refused: return "request refused by the scheduler";
        case Errc::protocol: return "IPP error";
        case Errc::io: return "document cannot be read";
        }
        return "unknown CUPS driver error";
    }
};

// Deletes an ipp_t when it goes out of scope.
struct IppPtr {
    ipp_t* p = nullptr;
    explicit IppPtr(ipp_t* x) : p(x) {}
    ~IppPtr() { ippDelete(p); }
    IppPtr(const IppPtr&) = delete;
    IppPtr& operator=(const IppPtr&) = delete;
};

Errc errc_for_status(ipp_status_t st) {
    switch (st) {
    case IPP_STATUS_ERROR_NOT_FOUND:
    case IPP_STATUS_ERROR_GONE:
        return Errc::not_found;
    case IPP_STATUS_ERROR_SERVICE_UNAVAILABLE:
        return Errc::unreachable;
    case IPP_STATUS_ERROR_FORBIDDEN:
    case IPP_STATUS_ERROR_NOT_AUTHENTICATED:
    case IPP_STATUS_ERROR_NOT_AUTHORIZED:
    case IPP_STATUS_ERROR_NOT_POSSIBLE:
    case IPP_STATUS_ERROR_NOT_ACCEPTING_JOBS:
    case IPP_STATUS_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED:
    case IPP_STATUS_ERROR_ATTRIBUTES_OR_VALUES:
    case IPP_STATUS_ERROR_BUSY:
    case IPP_STATUS_ERROR_PRINTER_IS_DEACTIVATED:
    case IPP_STATUS_ERROR_CUPS_AUTHENTICATION_CANCELED:
    case IPP_STATUS_ERROR_CUPS_UPGRADE_REQUIRED:
        return Errc::refused;
    default:
        return Errc::protocol;
    }
}

// A status that means the connection failed rather than the scheduler refusing.
bool connection_failure(ipp_status_t st, http_t* http) {
    if (st == IPP_STATUS_ERROR_SERVICE_UNAVAILABLE) return true;
    if (st == IPP_STATUS_ERROR_INTERNAL && http) {
        const int e = httpError(http);
        return e != 0 || httpGetState(http) == HTTP_STATE_ERROR;
    }
    return st == IPP_STATUS_ERROR_INTERNAL && !http;
}

JobState job_state_of(int v) {
    if (v < 3 || v > 9) return JobState::pending;
    return static_cast<JobState>(v);
}

PrinterState printer_state_of(int v) {
    if (v < 3 || v > 5) return PrinterState::stopped;
    return static_cast<PrinterState>(v);
}

Reason parse_reason(std::string_view kw) {
    Reason r;
    r.name = std::string(kw);
    constexpr std::pair<std::string_view, Reason::Severity> suffixes[] = {
        {"-error", Reason::Severity::error},
        {"-warning", Reason::Severity::warning},
        {"-report", Reason::Severity::report},
    };
    for (const auto& [suffix, sev] : suffixes) {
        if (kw.size() > suffix.size() && kw.ends_with(suffix)) {
            r.name = std::string(kw.substr(0, kw.size() - suffix.size()));
            r.severity = sev;
            break;
        }
    }
    return r;
}

std::vector<std::string> strings_of(ipp_attribute_t* a) {
    std::vector<std::string> out;
    const int n = ippGetCount(a);
    for (int i = 0; i < n; ++i) {
        const char* s = ippGetString(a, i, nullptr);
        out.emplace_back(s ? s : "");
    }
    return out;
}

std::vector<int> ints_of(ipp_attribute_t* a) {
    std::vector<int> out;
    const int n = ippGetCount(a);
    for (int i = 0; i < n; ++i) out.push_back(ippGetInteger(a, i));
    return out;
}

// Reads one job's attributes starting at `a`; stops at the end of its group. Returns the
// first attribute after the group (nullptr at the end).
ipp_attribute_t* read_job(ipp_t* resp, ipp_attribute_t* a, JobInfo& j) {
    const ipp_tag_t group = ippGetGroupTag(a);
    for (; a && ippGetGroupTag(a) == group; a = ippNextAttribute(resp)) {
        const char* nm = ippGetName(a);
        if (!nm) break;  // separator between jobs
        const std::string_view name(nm);
        if (name == "job-id") j.id = ippGetInteger(a, 0);
        else if (name == "job-name") { const char* s = ippGetString(a, 0, nullptr); j.name = s ? s : ""; }
        else if (name == "job-state") j.state = job_state_of(ippGetInteger(a, 0));
        else if (name == "job-state-reasons") {
            for (auto& r : strings_of(a))
                if (r != "none") j.reasons.push_back(std::move(r));
        } else if (name == "job-impressions-completed") j.impressions_completed = ippGetInteger(a, 0);
        else if (name == "job-printer-state-reasons") {
            for (auto& r : strings_of(a))
                if (r != "none") j.printer_reasons.push_back(std::move(r));
        }
    }
    return a;
}

const char* const kJobAttrs[] = {"job-id", "job-name", "job-state", "job-state-reasons",
                                 "job-impressions-completed", "job-printer-state-reasons"};
const char* const kPrinterAttrs[] = {
    "printer-state", "printer-state-reasons", "printer-is-accepting-jobs", "printer-state-message",
    "marker-names", "marker-types", "marker-colors", "marker-levels", "marker-low-levels",
    "marker-high-levels"};

}  // namespace

const std::error_category& category() noexcept {
    static const Category c;
    return c;
}

std::error_code make_error_code(Errc e) noexcept { return {static_cast<int>(e), category()}; }

std::string_view to_string(JobState s) {
    switch (s) {
    case JobState::pending: return "pending";
    case JobState::held: return "held";
    case JobState::processing: return "processing";
    case JobState::stopped: return "stopped";
    case JobState::canceled: return "canceled";
    case JobState::aborted: return "aborted";
    case JobState::completed: return "completed";
    }
    return "unknown";
}

bool is_terminal(JobState s) {
    return s == JobState::canceled || s == JobState::aborted || s == JobState::completed;
}

std::string_view to_string(PrinterState s) {
    switch (s) {
    case PrinterState::idle: return "idle";
    case PrinterState::processing: return "processing";
    case PrinterState::stopped: return "stopped";
    }
    return "unknown";
}

std::string Reason::keyword() const {
    switch (severity) {
    case Severity::error: return name + "-error";
    case Severity::warning: return name + "-warning";
    case Severity::report: return name + "-report";
    case Severity::none: break;
    }
    return name;
}

bool PrinterInfo::has_reason(std::string_view name) const {
    return std::any_of(reasons.begin(), reasons.end(), [&](const Reason& r) { return r.name == name; });
}

struct Client::Impl {
    http_t* http = nullptr;
    std::string host;  // host name or socket path
    int port = 0;

    ~Impl() { close(); }
    void close() {
        if (http) httpClose(http);
        http = nullptr;
    }
};

Client::Client(Endpoint endpoint) : endpoint_(std::move(endpoint)), impl_(std::make_unique<Impl>()) {
    std::string server = endpoint_.server.empty() ? std::string(cupsServer()) : endpoint_.server;
    if (server.empty() || server.front() == '/') {
        impl_->host = server;
        impl_->port = ippPort();
    } else {
        const auto colon = server.rfind(':');
        const bool has_port = colon != std::string::npos && server.find(']', colon) == std::string::npos &&
                              colon + 1 < server.size() &&
                              std::all_of(server.begin() + static_cast<long>(colon) + 1, server.end(),
                                          [](char c) { return c >= '0' && c <= '9'; });
        impl_->host = has_port ? server.substr(0, colon) : server;
        impl_->port = has_port ? std::stoi(server.substr(colon + 1)) : 631;
    }
}

Client::~Client() = default;
Client::Client(Client&& other) noexcept = default;
Client& Client::operator=(Client&& other) noexcept = default;

void Client::disconnect() {
    if (impl_) impl_->close();
}

namespace {

// Shared plumbing of the calls: connection, URIs, error outcomes.
class Call {
public:
    Call(const Endpoint& ep, http_t*& http, const std::string& host, int port, const char* op)
        : ep_(ep), http_(http), host_(host), port_(port), op_(op) {}

    std::string where() const {
        std::string s = "cups ";
        s += host_.front() == '/' ? host_ : host_ + ":" + std::to_string(port_);
        s += " queue " + ep_.queue + ": " + op_ + ": ";
        return s;
    }

    template <class T>
    Outcome<T> fail(Errc e, const std::string& what) const {
        Outcome<T> o;
        o.code = make_error_code(e);
        o.message = where() + what;
        return o;
    }

    // Connects if needed; false with `error` set when the scheduler cannot be reached.
    bool connect(std::string& error) {
        if (http_) return true;
        const int msec = static_cast<int>(std::max<std::chrono::milliseconds::rep>(ep_.timeout.count(), 1));
        http_ = httpConnect2(host_.c_str(), port_, nullptr, AF_UNSPEC, HTTP_ENCRYPTION_IF_REQUESTED,
                             1, msec, nullptr);
        if (!http_) {
            const int e = errno;
            error = "cannot connect within " + std::to_string(ep_.timeout.count()) + " ms";
            if (e == ECONNREFUSED || e == ETIMEDOUT || e == EHOSTUNREACH || e == ENETUNREACH || e == ENOENT)
                error += std::string(" (") + std::strerror(e) + ")";
            else
                error += " (connection refused or no answer)";
            return false;
        }
        httpSetTimeout(http_, static_cast<double>(ep_.timeout.count()) / 1000.0, nullptr, nullptr);
        return true;
    }

    void reset() {
        if (http_) httpClose(http_);
        http_ = nullptr;
    }

    std::string printer_uri() const {
        char uri[HTTP_MAX_URI];
        httpAssembleURIf(HTTP_URI_CODING_ALL, uri, sizeof uri, "ipp", nullptr, "localhost", 0,
                         "/printers/%s", ep_.queue.c_str());
        return uri;
    }

    ipp_t* new_request(ipp_op_t op) const {
        ipp_t* req = ippNewRequest(op);
        ippAddString(req, IPP_TAG_OPERATION, IPP_TAG_NAME, "requesting-user-name", nullptr, cupsUser());
        return req;
    }

    // Sends the request `make()` builds. On a connection failure with `retry`, reconnects once
    // and sends a fresh request again (idempotent operations only). Returns the response, or
    // nullptr with `errc`/`error` set (also for a response with an error status).
    template <class Make>
    ipp_t* send(const Make& make, bool retry, Errc& errc, std::string& error) {
        for (int attempt = 0;; ++attempt) {
            if (!connect(error)) {
                errc = Errc::unreachable;
                return nullptr;
            }
            ipp_t* resp = cupsDoRequest(http_, make(), "/");  // frees the request
            const ipp_status_t st = cupsLastError();
            if (resp && st <= IPP_STATUS_OK_EVENTS_COMPLETE) return resp;
            const bool conn = !resp && connection_failure(st, http_);
            const char* msg = cupsLastErrorString();
            error = msg && *msg ? msg : ippErrorString(st);
            ippDelete(resp);
            if (conn) {
                reset();
                if (retry && attempt == 0) continue;
                errc = Errc::unreachable;
                return nullptr;
            }
            errc = errc_for_status(st);
            return nullptr;
        }
    }

    http_t*& http() { return http_; }

private:
    const Endpoint& ep_;
    http_t*& http_;
    const std::string& host_;
    int port_;
    std::string op_;
};

}  // namespace

Outcome<int> Client::create_job(const std::string& job_name, const std::vector<Option>& options) {
    // Our own Create-Job rather than cupsCreateJob(): that one looks the queue up as a
    // destination (lpoptions, the default server) and fails on a private scheduler.
    Call call(endpoint_, impl_->http, impl_->host, impl_->port, "Create-Job");
    cups_option_t* opts = nullptr;
    int n = 0;
    for (const auto& o : options) n = cupsAddOption(o.name.c_str(), o.value.c_str(), n, &opts);
    auto make = [&] {
        ipp_t* req = call.new_request(IPP_OP_CREATE_JOB);
        ippAddString(req, IPP_TAG_OPERATION, IPP_TAG_URI, "printer-uri", nullptr, call.printer_uri().c_str());
        ippAddString(req, IPP_TAG_OPERATION, IPP_TAG_NAME, "job-name", nullptr, job_name.c_str());
        cupsEncodeOptions2(req, n, opts, IPP_TAG_OPERATION);
        cupsEncodeOptions2(req, n, opts, IPP_TAG_JOB);
        cupsEncodeOptions2(req, n, opts, IPP_TAG_SUBSCRIPTION);
        return req;
    };
    Errc errc{};
    std::string error;
    IppPtr resp(call.send(make, false, errc, error));
    cupsFreeOptions(n, opts);
    if (!resp.p) return call.fail<int>(errc, error);
    ipp_attribute_t* a = ippFindAttribute(resp.p, "job-id", IPP_TAG_INTEGER);
    const int id = a ? ippGetInteger(a, 0) : 0;
    if (id <= 0) return call.fail<int>(Errc::protocol, "answer without job-id");
    return {id, {}, {}};
}

Status Client::send_document(int job_id, const std::filesystem::path& file, const std::string& mime_type) {
    Call call(endpoint_, impl_->http, impl_->host, impl_->port, "Send-Document");
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        const int e = errno;
        return call.fail<std::monostate>(Errc::io, "job " + std::to_string(job_id) + ": cannot open " +
                                                       file.string() + " (" + std::strerror(e) + ")");
    }
    std::string error;
    if (!call.connect(error)) return call.fail<std::monostate>(Errc::unreachable, error);
    const std::string docname = file.filename().string();
    http_status_t hs = cupsStartDocument(call.http(), endpoint_.queue.c_str(), job_id, docname.c_str(),
                                         mime_type.c_str(), 1);
    bool read_error = false;
    if (hs == HTTP_STATUS_CONTINUE) {
        std::vector<char> buf(64 * 1024);
        while (in) {
            in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
            const auto got = in.gcount();
            if (got > 0) {
                hs = cupsWriteRequestData(call.http(), buf.data(), static_cast<size_t>(got));
                if (hs != HTTP_STATUS_CONTINUE) break;
            }
        }
        read_error = in.bad();
    }
    // Always read the answer, so the connection stays usable.
    const ipp_status_t st = cupsFinishDocument(call.http(), endpoint_.queue.c_str());
    const std::string where = "job " + std::to_string(job_id) + ": ";
    if (read_error) {
        call.reset();
        return call.fail<std::monostate>(Errc::io, where + "read error on " + file.string());
    }
    if (st <= IPP_STATUS_OK_EVENTS_COMPLETE && hs == HTTP_STATUS_CONTINUE) return {};
    const char* msg = cupsLastErrorString();
    const std::string what = where + (msg && *msg ? msg : ippErrorString(st));
    if (connection_failure(st, call.http()) || hs == HTTP_STATUS_ERROR) {
        call.reset();
        return call.fail<std::monostate>(Errc::unreachable, what);
    }
    return call.fail<std::monostate>(errc_for_status(st), what);
}

Outcome<JobInfo> Client::job(int job_id) {
    Call call(endpoint_, impl_->http, impl_->host, impl_->port, "Get-Job-Attributes");
    auto make = [&] {
        ipp_t* req = call.new_request(IPP_OP_GET_JOB_ATTRIBUTES);
        ippAddString(req, IPP_TAG_OPERATION, IPP_TAG_URI, "printer-uri", nullptr, call.printer_uri().c_str());
        ippAddInteger(req, IPP_TAG_OPERATION, IPP_TAG_INTEGER, "job-id", job_id);
        ippAddStrings(req, IPP_TAG_OPERATION, IPP_TAG_KEYWORD, "requested-attributes",
                      static_cast<int>(std::size(kJobAttrs)), nullptr, kJobAttrs);
        return req;
    };
    Errc errc{};
    std::string error;
    IppPtr resp(call.send(make, true, errc, error));
    if (!resp.p) return call.fail<JobInfo>(errc, "job " + std::to_string(job_id) + ": " + error);
    Outcome<JobInfo> out;
    out.value.id = job_id;
    for (ipp_attribute_t* a = ippFirstAttribute(resp.p); a;) {
        if (ippGetGroupTag(a) == IPP_TAG_JOB) {
            read_job(resp.p, a, out.value);
            break;
        }
        a = ippNextAttribute(resp.p);
    }
    return out;
}

Outcome<std::vector<JobInfo>> Client::find_jobs(std::string_view name_prefix) {
    Call call(endpoint_, impl_->http, impl_->host, impl_->port, "Get-Jobs");
    auto make = [&] {
        ipp_t* req = call.new_request(IPP_OP_GET_JOBS);
        ippAddString(req, IPP_TAG_OPERATION, IPP_TAG_URI, "printer-uri", nullptr, call.printer_uri().c_str());
        ippAddString(req, IPP_TAG_OPERATION, IPP_TAG_KEYWORD, "which-jobs", nullptr, "all");
        ippAddBoolean(req, IPP_TAG_OPERATION, "my-jobs", 0);
        ippAddStrings(req, IPP_TAG_OPERATION, IPP_TAG_KEYWORD, "requested-attributes",
                      static_cast<int>(std::size(kJobAttrs)), nullptr, kJobAttrs);
        return req;
    };
    Errc errc{};
    std::string error;
    IppPtr resp(call.send(make, true, errc, error));
    if (!resp.p) return call.fail<std::vector<JobInfo>>(errc, error);
    Outcome<std::vector<JobInfo>> out;
    ipp_attribute_t* a = ippFirstAttribute(resp.p);
    while (a) {
        if (ippGetGroupTag(a) != IPP_TAG_JOB || !ippGetName(a)) {
            a = ippNextAttribute(resp.p);
            continue;
        }
        JobInfo j;
        a = read_job(resp.p, a, j);
        if (j.id > 0 && std::string_view(j.name).starts_with(name_prefix)) out.value.push_back(std::move(j));
    }
    std::sort(out.value.begin(), out.value.end(), [](const JobInfo& x, const JobInfo& y) { return x.id < y.id; });
    return out;
}

Outcome<PrinterInfo> Client::printer() {
    Call call(endpoint_, impl_->http, impl_->host, impl_->port, "Get-Printer-Attributes");
    auto make = [&] {
        ipp_t* req = call.new_request(IPP_OP_GET_PRINTER_ATTRIBUTES);
        ippAddString(req, IPP_TAG_OPERATION, IPP_TAG_URI, "printer-uri", nullptr, call.printer_uri().c_str());
        ippAddStrings(req, IPP_TAG_OPERATION, IPP_TAG_KEYWORD, "requested-attributes",
                      static_cast<int>(std::size(kPrinterAttrs)), nullptr, kPrinterAttrs);
        return req;
    };
    Errc errc{};
    std::string error;
    IppPtr resp(call.send(make, true, errc, error));
    if (!resp.p) return call.fail<PrinterInfo>(errc, error);
    Outcome<PrinterInfo> out;
    PrinterInfo& p = out.value;
    std::vector<std::string> names, types, colors;
    std::vector<int> levels, lows, highs;
    for (ipp_attribute_t* a = ippFirstAttribute(resp.p); a; a = ippNextAttribute(resp.p)) {
        const char* nm = ippGetName(a);
        if (!nm || ippGetGroupTag(a) != IPP_TAG_PRINTER) continue;
        const std::string_view name(nm);
        if (name == "printer-state") p.state = printer_state_of(ippGetInteger(a, 0));
        else if (name == "printer-state-reasons") {
            for (const auto& r : strings_of(a))
                if (r != "none") p.reasons.push_back(parse_reason(r));
        } else if (name == "printer-is-accepting-jobs") p.accepting = ippGetBoolean(a, 0) != 0;
        else if (name == "printer-state-message") { const char* s = ippGetString(a, 0, nullptr); p.message = s ? s : ""; }
        else if (name == "marker-names") names = strings_of(a);
        else if (name == "marker-types") types = strings_of(a);
        else if (name == "marker-colors") colors = strings_of(a);
        else if (name == "marker-levels") levels = ints_of(a);
        else if (name == "marker-low-levels") lows = ints_of(a);
        else if (name == "marker-high-levels") highs = ints_of(a);
    }
    const std::size_t n = std::max({names.size(), types.size(), colors.size(), levels.size()});
    for (std::size_t i = 0; i < n; ++i) {
        Marker m;
        if (i < names.size()) m.name = names[i];
        if (i < types.size()) m.type = types[i];
        if (i < colors.size()) m.color = colors[i];
        if (i < levels.size()) m.level = levels[i];
        if (i < lows.size()) m.low = lows[i];
        if (i < highs.size()) m.high = highs[i];
        p.markers.push_back(std::move(m));
    }
    return out;
}

Outcome<Cancellation> Client::cancel(int job_id) {
    Call call(endpoint_, impl_->http, impl_->host, impl_->port, "Cancel-Job");
    auto make = [&] {
        ipp_t* req = call.new_request(IPP_OP_CANCEL_JOB);
        ippAddString(req, IPP_TAG_OPERATION, IPP_TAG_URI, "printer-uri", nullptr, call.printer_uri().c_str());
        ippAddInteger(req, IPP_TAG_OPERATION, IPP_TAG_INTEGER, "job-id", job_id);
        return req;
    };
    Errc errc{};
    std::string error;
    IppPtr resp(call.send(make, false, errc, error));
    if (resp.p) return {};
    if (errc == Errc::refused) {
        // CUPS answers client-error-not-possible for a job that has already finished.
        auto j = job(job_id);
        if (j && is_terminal(j.value.state)) return {{true, j.value.state}, {}, {}};
    }
    return call.fail<Cancellation>(errc, "job " + std::to_string(job_id) + ": " + error);
}

}  // namespace pressline::drivers::cups
