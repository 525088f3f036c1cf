// Visual QA of printed garments (docs/design.md "Visual QA flow"; issue 5 parts 3, 5, 7).
//
// A job with qa.required goes printed -> inspecting in the transaction of its job.printed
// (begin_qa). After qa.delay_s (trigger: delay) or on an operator trigger (`pressline qa
// trigger`), the camera that watches the job's printer is asked for a still (drivers/camera, on
// the worker pool); the still, the job's reference ({state_dir}/work/{job_id}/reference.*) and
// the camera's calibration go to the inspector (devices/qa, on the worker pool); the evidence is
// written to {qa.evidence.dir}/{job_id}/{attempt}/. The outcome and its events are one
// transaction:
//   pass                         -> qa.passed, then the order's label path (ready_to_ship);
//   fail                         -> qa.failed, then job.reprint (attempt + 1, back to queued,
//                                   released ahead of normal work) or, past qa.reprint_limit,
//                                   job.failed (qa_failed);
//   spot check / low confidence  -> qa.held until a qa_decision (MQTT or local);
//   no still within capture_timeout_s -> qa.failed no_capture (never a silent pass).
// qa.pause_after_consecutive_failures failures in a row on one printer (no_capture excluded)
// pause it (device.state reason qa-failures). A restart with jobs in `inspecting` captures again.
//
// Threads: QaFlow's methods run on the io_context thread; captures and inspections run on the
// worker pool and post their results back. begin_qa and decide_qa run inside a transaction on
// whichever thread holds it.
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

struct QaHooks {
    std::function<void()> events_appended;
    std::function<void()> paperwork_changed;              // a job became ready to ship
    std::function<void(const std::string& job_id)> requeued;  // a reprint is queued
    // The printer had too many QA failures in a row: pause it (reason qa-failures).
    std::function<void(const std::string& device)> pause_device;
};

// Inside the job.printed transaction of a job whose payload says qa.required (and qa.enabled):
// printed -> inspecting and a `pending` QA row; or, when no camera watches `device`,
// printed -> held with qa.held (reason qa_no_camera). Returns true when the job is inspecting.
bool begin_qa(Tx& tx, const JobRow& job, int attempt, const std::string& device, const config::Config& cfg);

// A person's decision on a job held for QA (qa_decision command, `pressline qa decide`), inside
// the command's transaction. `source`: cloud | local. Returns the command.result members
// (status ok | error, reason, message, ...).
nlohmann::json decide_qa(Tx& tx, const std::string& job_id, const std::string& verdict, const std::string& by,
                         const std::string& source, const std::string& note, const std::string& command_id,
                         const config::Config& cfg);

class QaFlow {
public:
    QaFlow(boost::asio::io_context& io, boost::asio::thread_pool& workers, Journal& journal,
           const config::Config& cfg, QaHooks hooks);
    ~QaFlow();
    QaFlow(const QaFlow&) = delete;
    QaFlow& operator=(const QaFlow&) = delete;

    // Takes up every job in `inspecting` (a restart captures again) and prunes old evidence.
    void start();
    void stop();
    // A job's garment was printed and the job is inspecting (after begin_qa committed).
    void printed(const std::string& job_id);
    // A job changed elsewhere (decision, cancel, reprint): forget what no longer applies.
    void job_changed(const std::string& job_id);
    // Operator trigger: capture now the job `job_id`, or the oldest job inspecting on `printer`.
    // Returns {status: ok, job_id} or {status: error, reason, message}.
    nlohmann::json trigger(const std::string& job_id, const std::string& printer);

    nlohmann::json status() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace pressline::agent
