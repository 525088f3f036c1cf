// The print pipeline: accepted -> preparing (artwork fetched, checked, rendered) -> queued
// (waits for a capable, ready printer; the scheduler picks) -> printing (one try at a time per
// printer, each step journalled before and after the device is touched) -> printed, with
// job.held / job.print_failed / job.failed where a device or an asset says so.
//
// The no-double-print rule (docs/design.md "Printing"): a try is recorded before the hand-off;
// after a restart every unsettled try is looked up on its device by name before anything else
// is released, and anything whose outcome is uncertain is held for a person.
//
// Crash points for tests: PRESSLINE_CRASH_AT=NAME[:N] kills the process (SIGKILL) the N-th time
// (default 1st) the pipeline reaches NAME: try_recorded, job_created, document_sent,
// completion_seen.
//
// Threads: every method runs on the io_context thread. Blocking work (downloads, rendering,
// libcups) runs on the worker pool and posts its result back; a printer sees one call at a time.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <nlohmann/json.hpp>

#include "pressline/agent/journal.hpp"
#include "pressline/config/config.hpp"

namespace pressline::agent {

struct PrintingHooks {
    std::function<void()> events_appended;  // new events in the outbox
    // A device's retained status changed (topic suffix = device name).
    std::function<void(const std::string& device, const std::string& status_json)> device_status;
    // New paperwork in the journal (an attempt's ticket, an order's label).
    std::function<void()> paperwork_changed;
    // A job's garment was printed and it waits for its QA photo (state inspecting).
    std::function<void(const std::string& job_id)> inspecting;
};

class PrintFlow {
public:
    // `workers` runs downloads and rendering; `device_io` runs printer calls (libcups, hot
    // folders), so that a burst of renders never delays a printer.
    PrintFlow(boost::asio::io_context& io, boost::asio::thread_pool& workers,
              boost::asio::thread_pool& device_io, Journal& journal, const config::Config& cfg,
              PrintingHooks hooks);
    ~PrintFlow();
    PrintFlow(const PrintFlow&) = delete;
    PrintFlow& operator=(const PrintFlow&) = delete;

    // Reconciles unsettled tries with their devices, then takes up every unfinished job.
    void start();
    // Stops releasing and polling; work on the pool finishes and is dropped.
    void stop();

    // Intake changed a job (accepted, cancelled, reprint).
    void job_changed(const std::string& job_id);
    void set_draining(bool draining);
    // `reason` (e.g. qa-failures) is reported in device.state while paused; empty for the
    // pause_device command. Resuming clears it.
    void set_paused(const std::string& device, bool paused, const std::string& reason = {});
    bool has_device(const std::string& device) const;

    // Printer states and queue length for the status topic and the CLI.
    nlohmann::json status() const;

    // Retained device status payloads, re-published on every broker connect.
    std::vector<std::pair<std::string, std::string>> device_statuses() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace pressline::agent
