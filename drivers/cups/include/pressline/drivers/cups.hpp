// pressline::drivers::cups: print through a CUPS scheduler with libcups (IPP over HTTP).
//
// A transport without domain logic: it submits documents, reads job and printer state and
// cancels jobs. It knows nothing of Pressline jobs, attempts or MQTT; the caller encodes what
// it needs in the job name (e.g. "pressline:J-1:1:1") and finds its jobs again by prefix.
//
// Threads: every call blocks on network I/O (up to Endpoint::timeout per request, plus a
// connect), so call it from a worker thread, never from an MQTT callback or the event loop.
// A Client is not thread-safe: one Client per worker thread (libcups keeps its last error
// per thread). Different Clients may be used concurrently.
//
// Errors: nothing throws except std::bad_alloc. Every call returns an Outcome whose `code`
// is one of Errc (category "pressline.cups") and whose `message` names the server, the queue,
// the IPP operation and the scheduler's own words, e.g.
//   "cups 127.0.0.1:631 queue dtg1: Create-Job: The printer or class does not exist."
//   - unreachable: no connection to the scheduler (refused, timeout, connection lost)
//   - not_found:   the queue or the job does not exist (client-error-not-found)
//   - refused:     the scheduler answered but will not do it (queue not accepting jobs,
//                  forbidden, not authorized, not possible, bad document format...)
//   - protocol:    any other IPP error status or a malformed answer
//   - io:          the local document cannot be read
#pragma once

#include "pressline/drivers/outcome.hpp"

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <variant>
#include <vector>

namespace pressline::drivers::cups {

struct Endpoint {
    // "HOST:PORT" ("127.0.0.1:631"), "HOST" (port 631) or the path of the scheduler's domain
    // socket ("/run/cups/cups.sock"); empty: libcups' default (cupsServer(): $CUPS_SERVER,
    // client.conf, the local socket).
    std::string server;
    std::string queue;  // the CUPS queue (printer) name, e.g. "dtg1"
    // Connect timeout and the timeout of each network wait inside a request.
    std::chrono::milliseconds timeout{10000};
};

enum class Errc { unreachable = 1, not_found, refused, protocol, io };
const std::error_category& category() noexcept;
std::error_code make_error_code(Errc e) noexcept;

// Results: drivers::Outcome (pressline/drivers/outcome.hpp) with this driver's Errc.
template <class T>
using Outcome = drivers::Outcome<T>;
using Status = drivers::Status;

// IPP job-state values (RFC 8011 5.3.7).
enum class JobState { pending = 3, held, processing, stopped, canceled, aborted, completed };
std::string_view to_string(JobState s);
// canceled, aborted or completed: the job will not change any more.
bool is_terminal(JobState s);

struct JobInfo {
    int id = 0;
    std::string name;                  // job-name
    JobState state = JobState::pending;
    std::vector<std::string> reasons;  // job-state-reasons, "none" left out
    // job-impressions-completed as CUPS reports it, -1 if absent. CUPS counts what the
    // backend reported, not what came out of the printer: with ippeveprinter a job canceled
    // or aborted after it reached the printer shows 1 although nothing printed (see
    // drivers/cups/README.md). Only a job that never left CUPS reliably shows 0.
    int impressions_completed = -1;
    // job-printer-state-reasons: the printer's reasons when the job ended (CUPS extension).
    // `cups-ipp-missing-job-history` here means the printer lost the job's history — as when
    // the printer restarted mid-job and CUPS then marked the job completed without knowing.
    std::vector<std::string> printer_reasons;
};

// IPP printer-state values.
enum class PrinterState { idle = 3, processing, stopped };
std::string_view to_string(PrinterState s);

// One printer-state-reasons keyword split into name and severity suffix:
// "media-jam-warning" -> {"media-jam", warning}; "paused" -> {"paused", none}.
// (RFC 8011 reads a keyword without suffix as an error; CUPS also uses suffix-less keywords for
// plain states such as "paused" or "cups-waiting-for-job-completed", so it stays `none` here.)
struct Reason {
    enum class Severity { none, report, warning, error };
    std::string name;
    Severity severity = Severity::none;
    std::string keyword() const;  // the original keyword, suffix included
};

// One marker (ink, toner, waste tank) from the marker-* attributes; -1 = unknown.
// CUPS knows a printer's markers only after its backend has run a job on it.
struct Marker {
    std::string name;   // marker-names,  e.g. "Black Ink"
    std::string type;   // marker-types,  e.g. "ink-cartridge"
    std::string color;  // marker-colors, e.g. "#000000"
    int level = -1;     // marker-levels, percent (-1 unknown, -2 unknown but present, -3 ok)
    int low = -1;       // marker-low-levels
    int high = -1;      // marker-high-levels
};

struct PrinterInfo {
    PrinterState state = PrinterState::idle;
    std::vector<Reason> reasons;  // printer-state-reasons, "none" left out
    bool accepting = false;       // printer-is-accepting-jobs
    std::string message;          // printer-state-message
    std::vector<Marker> markers;

    // Whether a reason with this name (suffix ignored: "media-jam" matches
    // "media-jam-warning" and "media-jam-error") is present.
    bool has_reason(std::string_view name) const;
};

// A job template attribute, passed as a CUPS option (cupsEncodeOptions): "copies" = "2",
// "media" = "na_letter_8.5x11in", "print-quality" = "5", vendor options...
struct Option {
    std::string name;
    std::string value;
};

// The result of cancel(): canceled now, or the job had already reached `state`
// (completed/canceled/aborted), which is not a failure.
struct Cancellation {
    bool already_finished = false;
    JobState state = JobState::canceled;
};

// One connection to one scheduler and one queue. Connects lazily on the first call and again
// after the connection was lost (a restarted cupsd). Not thread-safe; worker thread only.
class Client {
public:
    explicit Client(Endpoint endpoint);
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;
    Client(Client&& other) noexcept;
    Client& operator=(Client&& other) noexcept;

    const Endpoint& endpoint() const { return endpoint_; }

    // IPP Create-Job on the queue with `options` as job template attributes; returns the job
    // id. The job waits (pending) for its document. Not retried: a lost answer may leave a
    // job behind, which find_jobs() finds by name. Errors: unreachable, not_found (queue),
    // refused (queue not accepting), protocol.
    Outcome<int> create_job(const std::string& job_name, const std::vector<Option>& options = {});

    // IPP Send-Document with last-document=true (cupsStartDocument / cupsWriteRequestData /
    // cupsFinishDocument): streams `file` as `mime_type` ("image/png", "application/pdf",
    // "application/octet-stream" to let CUPS detect it). Errors: io (file unreadable, checked
    // before anything is sent), unreachable, not_found (job), refused (format unsupported),
    // protocol. CUPS 2.4 answers successful-ok for a job already canceled and drops the data.
    Status send_document(int job_id, const std::filesystem::path& file, const std::string& mime_type);

    // IPP Get-Job-Attributes. Errors: unreachable, not_found (job), protocol.
    Outcome<JobInfo> job(int job_id);

    // IPP Get-Jobs on the queue with which-jobs=all, my-jobs=false, keeping the jobs whose
    // job-name starts with `name_prefix` (all jobs for ""), oldest first. Finished jobs are
    // listed as long as the scheduler keeps their history (PreserveJobHistory). Errors:
    // unreachable, not_found (queue), protocol.
    Outcome<std::vector<JobInfo>> find_jobs(std::string_view name_prefix);

    // IPP Get-Printer-Attributes on the queue: state, reasons, accepting, message, markers.
    // Errors: unreachable, not_found (queue), protocol.
    Outcome<PrinterInfo> printer();

    // IPP Cancel-Job. A job already completed, canceled or aborted is reported as
    // {already_finished = true, state}, not as an error. Cancelling in CUPS does not recall
    // what the printer already received (see README). Errors: unreachable, not_found (job),
    // refused, protocol.
    Outcome<Cancellation> cancel(int job_id);

    // Closes the connection (the next call reconnects).
    void disconnect();

private:
    struct Impl;
    Endpoint endpoint_;
    std::unique_ptr<Impl> impl_;
};

}  // namespace pressline::drivers::cups

template <>
struct std::is_error_code_enum<pressline::drivers::cups::Errc> : std::true_type {};
