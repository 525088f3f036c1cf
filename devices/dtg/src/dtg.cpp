// DTG printer backends: a CUPS queue (drivers/cups) and a RIP hot folder (drivers/hotfolder),
// and the mapping of IPP printer states to the contract's device states.
#include "pressline/devices/dtg.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>

#include <boost/asio/io_context.hpp>
#include <fmt/format.h>

#include "pressline/drivers/cups.hpp"
#include "pressline/drivers/hotfolder.hpp"

namespace pressline::devices::dtg {

namespace cups = drivers::cups;
namespace hf = drivers::hotfolder;

std::string_view to_string(State s) {
    switch (s) {
        case State::idle: return "idle";
        case State::printing: return "printing";
        case State::paused: return "paused";
        case State::offline: return "offline";
        case State::error: return "error";
    }
    return "unknown";
}

std::string_view to_string(Phase p) {
    switch (p) {
        case Phase::absent: return "absent";
        case Phase::incomplete: return "incomplete";
        case Phase::waiting: return "waiting";
        case Phase::printing: return "printing";
        case Phase::completed: return "completed";
        case Phase::unconfirmed: return "unconfirmed";
        case Phase::cancelled: return "cancelled";
        case Phase::failed: return "failed";
    }
    return "unknown";
}

namespace {

// Reasons that stop a DTG printer until a person acts.
bool is_fault(std::string_view r) {
    static constexpr std::string_view faults[] = {
        "media-jam",          "media-empty",        "media-needed",   "media-low-error",
        "cover-open",         "door-open",          "interlock-open", "marker-supply-empty",
        "toner-empty",        "marker-waste-full",  "input-tray-missing", "output-area-full",
        "fuser-over-temp",    "fuser-under-temp",   "spool-area-full", "shutdown",
    };
    return std::find(std::begin(faults), std::end(faults), r) != std::end(faults);
}

std::string strip_suffix(std::string r, bool& report) {
    report = false;
    for (std::string_view suffix : {"-warning", "-error", "-report"}) {
        if (r.size() > suffix.size() && r.compare(r.size() - suffix.size(), suffix.size(), suffix) == 0) {
            report = suffix == "-report";
            r.resize(r.size() - suffix.size());
            break;
        }
    }
    return r;
}

}  // namespace

Status status_from_ipp(int printer_state, const std::vector<std::string>& reasons, std::string message) {
    Status s;
    s.message = std::move(message);
    bool fault = false, paused = false;
    for (const auto& raw : reasons) {
        bool report = false;
        std::string r = strip_suffix(raw, report);
        if (r == "none" || r.empty() || report) continue;
        if (r == "paused") paused = true;
        fault = fault || is_fault(r);
        if (std::find(s.reasons.begin(), s.reasons.end(), r) == s.reasons.end()) s.reasons.push_back(r);
    }
    if (fault) s.state = State::error;
    else if (printer_state == 5) s.state = paused ? State::paused : State::error;  // stopped
    else if (paused) s.state = State::paused;
    else if (printer_state == 4) s.state = State::printing;
    else s.state = State::idle;
    return s;
}

namespace {

std::string code_of(const std::error_code& ec) {
    if (ec == cups::Errc::unreachable) return "unreachable";
    if (ec == cups::Errc::not_found) return "not_found";
    if (ec == cups::Errc::refused) return "refused";
    if (ec == cups::Errc::protocol) return "protocol";
    return "io";
}

HandOffStatus from_cups(const cups::JobInfo& j) {
    HandOffStatus s;
    s.device_job = std::to_string(j.id);
    s.impressions = j.impressions_completed;
    s.reasons = j.reasons;
    const bool incoming = std::find(j.reasons.begin(), j.reasons.end(), "job-incoming") != j.reasons.end();
    switch (j.state) {
        case cups::JobState::pending:
        case cups::JobState::held:
            // A job created without its document waits "held" with job-incoming or
            // job-hold-until-specified; in either case nothing printable is there yet.
            s.phase = incoming ? Phase::incomplete : Phase::waiting;
            break;
        case cups::JobState::processing:
        case cups::JobState::stopped: s.phase = Phase::printing; break;
        case cups::JobState::completed:
            s.phase = Phase::completed;
            // The CUPS hazard (docs/design.md "Printing"): the printer restarted while the job
            // was in flight, lost it, and CUPS counted it completed anyway. Not proof of ink.
            for (const auto& r : j.printer_reasons)
                if (r.rfind("cups-ipp-missing-job-history", 0) == 0) s.phase = Phase::unconfirmed;
            break;
        case cups::JobState::canceled: s.phase = Phase::cancelled; break;
        case cups::JobState::aborted: s.phase = Phase::failed; break;
    }
    return s;
}

class CupsPrinter final : public Printer {
public:
    CupsPrinter(std::string name, CupsSettings s) : name_(std::move(name)), client_(cups::Endpoint{s.server, s.queue}) {}
    const std::string& name() const override { return name_; }

    Result<Status> status() override {
        auto r = client_.printer();
        if (!r) return Result<Status>::fail(code_of(r.code), r.message);
        std::vector<std::string> reasons;
        for (const auto& x : r.value.reasons) reasons.push_back(x.keyword());
        Status s = status_from_ipp(static_cast<int>(r.value.state), reasons, r.value.message);
        // CUPS's ipp backend cannot reach the printer (powered off, cable out): printer-state
        // stays processing with no reason, only this message (cupsd runs in the C locale).
        if (s.state != State::error && (s.message.find("may not exist or is unavailable") != std::string::npos ||
                                        s.message.find("Unable to connect") != std::string::npos)) {
            s.state = State::offline;
            s.reasons.push_back("offline");
        }
        if (!r.value.accepting && s.state == State::idle) {
            s.state = State::paused;
            s.reasons.push_back("not-accepting-jobs");
        }
        // IPP's -2 (unknown, present) and -3 (some remaining) are "unknown" to us.
        for (const auto& m : r.value.markers) s.markers[m.name] = m.level < 0 ? -1 : m.level;
        return Result<Status>::ok(std::move(s));
    }

    Result<std::string> create(const HandOff& h) override {
        std::vector<cups::Option> opts;
        for (const auto& [k, v] : h.options) opts.push_back({k, v});
        auto r = client_.create_job(h.name, opts);
        if (!r) return Result<std::string>::fail(code_of(r.code), r.message);
        return Result<std::string>::ok(std::to_string(r.value));
    }

    Result<bool> send(const std::string& device_job, const HandOff& h) override {
        auto r = client_.send_document(id_of(device_job), h.file, h.mime_type);
        if (!r) return Result<bool>::fail(code_of(r.code), r.message);
        return Result<bool>::ok(true);
    }

    Result<HandOffStatus> follow(const std::string& device_job) override {
        auto r = client_.job(id_of(device_job));
        if (!r) {
            if (r.code == cups::Errc::not_found) {
                HandOffStatus s;
                s.device_job = device_job;
                return Result<HandOffStatus>::ok(s);
            }
            return Result<HandOffStatus>::fail(code_of(r.code), r.message);
        }
        return Result<HandOffStatus>::ok(from_cups(r.value));
    }

    Result<HandOffStatus> find(const std::string& name) override {
        auto r = client_.find_jobs(name);
        if (!r) return Result<HandOffStatus>::fail(code_of(r.code), r.message);
        // Exact name only (the prefix search would also match try 10 for try 1); the newest wins.
        const cups::JobInfo* best = nullptr;
        for (const auto& j : r.value)
            if (j.name == name && (!best || j.id > best->id)) best = &j;
        if (!best) return Result<HandOffStatus>::ok(HandOffStatus{});
        return Result<HandOffStatus>::ok(from_cups(*best));
    }

    Result<HandOffStatus> cancel(const std::string& device_job) override {
        auto r = client_.cancel(id_of(device_job));
        if (!r && r.code != cups::Errc::not_found) return Result<HandOffStatus>::fail(code_of(r.code), r.message);
        return follow(device_job);
    }

private:
    static int id_of(const std::string& s) {
        int v = 0;
        std::from_chars(s.data(), s.data() + s.size(), v);
        return v;
    }
    std::string name_;
    cups::Client client_;
};

// A RIP hot folder: the device job is the hot-folder name; states come from the folders.
class HotFolderPrinter final : public Printer {
public:
    HotFolderPrinter(std::string name, HotFolderSettings s) : name_(std::move(name)) {
        cfg_.hot_dir = s.hot_folder;
        cfg_.done_dir = s.done_folder;
        cfg_.error_dir = s.error_folder;
        cfg_.result_dir = s.result_folder;
        cfg_.completion = s.completion == "folders"       ? hf::Completion::folders
                          : s.completion == "result_file" ? hf::Completion::result_file
                                                          : hf::Completion::consumed;
        cfg_.take_timeout = std::chrono::seconds(s.timeout_s);
        cfg_.finish_timeout = std::chrono::seconds(s.timeout_s);
        cfg_.print_extension = s.print_extension;
        cfg_.state_dir = s.state_dir;
        if (!s.state_dir.empty()) {
            std::error_code ec;
            std::filesystem::create_directories(s.state_dir, ec);
        }
        folder_ = std::make_unique<hf::HotFolder>(io_, cfg_);
    }
    const std::string& name() const override { return name_; }

    Result<Status> status() override {
        auto r = hf::check_config(cfg_);
        if (!r.ok()) return Result<Status>::fail("unreachable", r.message);
        Status s;
        s.state = State::idle;
        return Result<Status>::ok(s);
    }

    Result<std::string> create(const HandOff& h) override {
        // Nothing exists on the RIP's side until the files appear: the name is the job.
        return Result<std::string>::ok(hf::safe_name(h.name));
    }

    Result<bool> send(const std::string& device_job, const HandOff& h) override {
        auto r = folder_->submit_file(device_job, h.file, h.ticket);
        if (!r.ok()) return Result<bool>::fail("io", r.message);
        return Result<bool>::ok(true);
    }

    Result<HandOffStatus> follow(const std::string& device_job) override {
        auto loc = folder_->query(device_job);
        if (loc.ec) return Result<HandOffStatus>::fail("io", loc.message);
        HandOffStatus s;
        s.device_job = device_job;
        s.message = loc.message;
        switch (loc.state) {
            case hf::State::absent: s.phase = Phase::absent; break;
            case hf::State::partial: s.phase = Phase::incomplete; break;
            case hf::State::waiting: s.phase = Phase::waiting; break;
            case hf::State::taken: s.phase = Phase::printing; break;
            case hf::State::done: s.phase = Phase::completed; break;
            case hf::State::error:
                // A RIP error says nothing about ink on the garment: impressions unknown.
                s.phase = Phase::failed;
                break;
        }
        return Result<HandOffStatus>::ok(s);
    }

    Result<HandOffStatus> find(const std::string& name) override { return follow(hf::safe_name(name)); }

    Result<HandOffStatus> cancel(const std::string& device_job) override {
        auto r = folder_->withdraw(device_job);
        if (r.ok() || r.ec == hf::Errc::not_found) {
            HandOffStatus s;
            s.device_job = device_job;
            s.phase = Phase::cancelled;
            s.impressions = 0;  // withdrawn before the RIP took it
            return Result<HandOffStatus>::ok(s);
        }
        return follow(device_job);
    }

private:
    std::string name_;
    boost::asio::io_context io_;  // the driver's async waits are not used: the agent polls
    hf::Config cfg_;
    std::unique_ptr<hf::HotFolder> folder_;
};

}  // namespace

std::unique_ptr<Printer> make_cups_printer(std::string name, CupsSettings settings) {
    return std::make_unique<CupsPrinter>(std::move(name), std::move(settings));
}

std::unique_ptr<Printer> make_hotfolder_printer(std::string name, HotFolderSettings settings) {
    return std::make_unique<HotFolderPrinter>(std::move(name), std::move(settings));
}

}  // namespace pressline::devices::dtg
