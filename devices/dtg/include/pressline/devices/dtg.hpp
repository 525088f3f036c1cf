// The DTG printer device: one garment at a time, behind one small interface whatever feeds the
// printer (a CUPS queue, a RIP hot folder). It knows print files, device-side job names and
// printer states; it knows nothing of the journal or MQTT (the agent turns what it reports into
// events).
//
// Threads: every method blocks on the network or the disk. Call them from the worker pool, one
// call at a time per printer (the agent serialises them); never from the io_context thread.
// Errors: values (DeviceError in the results), never exceptions.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace pressline::devices::dtg {

// What the agent reports upstream (MQTT contract `device.state`).
enum class State { idle, printing, paused, offline, error };
std::string_view to_string(State s);

struct Status {
    State state = State::offline;
    std::vector<std::string> reasons;  // IPP-style: media-jam, media-empty, cover-open,
                                       // marker-supply-empty, paused, offline...
    std::string message;               // the device's own words, if any
    // Levels of marker supplies, name -> percent (-1 unknown), where the device reports them.
    std::map<std::string, int> markers;
    bool operator==(const Status& o) const { return state == o.state && reasons == o.reasons; }
    // Ready to take the next garment now.
    bool ready() const { return state == State::idle || state == State::printing; }
};

// Where one hand-off stands on the device.
enum class Phase {
    absent,      // the device does not know it
    incomplete,  // created on the device but its document never arrived (safe to withdraw)
    waiting,     // with the device, not printing yet (spooler queue, hot folder)
    printing,
    completed,   // the device says it printed
    unconfirmed, // the spooler says completed but the printer lost track of it (CUPS hazard)
    cancelled,   // ended without printing it all: see impressions
    failed,      // ended with an error: see impressions
};
std::string_view to_string(Phase p);

struct HandOffStatus {
    Phase phase = Phase::absent;
    std::string device_job;             // device-side id (CUPS job id, hot-folder name)
    int impressions = -1;               // impressions completed, -1 unknown
    std::vector<std::string> reasons;   // device's reasons for this job
    std::string message;
    // Ended without a single impression: provably not printed (failover allowed).
    bool provably_unprinted() const {
        return phase == Phase::absent || phase == Phase::incomplete ||
               ((phase == Phase::cancelled || phase == Phase::failed) && impressions == 0);
    }
    bool finished() const {
        return phase == Phase::completed || phase == Phase::unconfirmed ||
               phase == Phase::cancelled || phase == Phase::failed;
    }
};

struct DeviceError {
    std::string code;     // unreachable, refused, not_found, io, protocol
    std::string message;  // names the device, the server and what failed
};

template <class T>
struct Result {
    std::optional<T> value;
    std::optional<DeviceError> error;
    explicit operator bool() const { return value.has_value(); }
    static Result ok(T v) { return Result{std::move(v), std::nullopt}; }
    static Result fail(std::string code, std::string message) {
        return Result{std::nullopt, DeviceError{std::move(code), std::move(message)}};
    }
};

// One garment to hand over.
struct HandOff {
    std::string name;                   // device-side job name, unique per try
    std::filesystem::path file;         // the print-ready file
    std::string mime_type;              // image/png, image/jpeg, application/pdf
    std::map<std::string, std::string> options;  // device options (IPP attributes for CUPS)
    std::string ticket;                 // job ticket text (hot folders)
};

class Printer {
public:
    virtual ~Printer() = default;
    virtual const std::string& name() const = 0;
    // Current state of the printer (one request).
    virtual Result<Status> status() = 0;
    // First half of the hand-off: the device-side job exists (CUPS: Create-Job), nothing
    // printable yet. Returns the device job id.
    virtual Result<std::string> create(const HandOff& h) = 0;
    // Second half: the document goes to the device; from here it may print.
    virtual Result<bool> send(const std::string& device_job, const HandOff& h) = 0;
    // Where a hand-off stands.
    virtual Result<HandOffStatus> follow(const std::string& device_job) = 0;
    // Looks a hand-off up by its name (reconciliation after a restart).
    virtual Result<HandOffStatus> find(const std::string& name) = 0;
    // Withdraws a hand-off that has not printed yet. The result says where it stands after.
    virtual Result<HandOffStatus> cancel(const std::string& device_job) = 0;
};

// Maps IPP printer-state + printer-state-reasons to our states: stopped + only `paused` ->
// paused; faults (media-jam, media-empty, media-needed, cover-open, door-open,
// marker-supply-empty, toner-empty, ...) -> error whatever printer-state says; processing ->
// printing; idle -> idle. Reasons lose their -warning/-error/-report suffix; `none` and
// -report reasons are dropped.
Status status_from_ipp(int printer_state, const std::vector<std::string>& reasons,
                       std::string message);

struct CupsSettings {
    std::string server;  // host:port or socket path; empty: the system default
    std::string queue;
};
std::unique_ptr<Printer> make_cups_printer(std::string name, CupsSettings settings);

struct HotFolderSettings {
    std::filesystem::path hot_folder, done_folder, error_folder, result_folder;
    std::string completion = "consumed";  // consumed | folders | result_file
    int timeout_s = 600;
    std::string print_extension = "png";  // of the print file in the hot folder
    // Private folder (not watched by the RIP) where the driver keeps a receipt per submission,
    // so that after a restart "the RIP took it" is told apart from "never submitted".
    std::filesystem::path state_dir;
};
std::unique_ptr<Printer> make_hotfolder_printer(std::string name, HotFolderSettings settings);

}  // namespace pressline::devices::dtg
