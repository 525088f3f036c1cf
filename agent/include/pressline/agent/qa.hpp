// Visual QA of printed garments (docs/design.md "Visual QA flow"; issue 5 parts 3, 5, 7).
//
// A job with qa.required goes printed -> inspecting in the transaction of its job.printed
// (begin_qa). After qa.delay_s (trigger: delay), on an operator trigger (`pressline qa
// trigger`, any trigger mode), or when its ticket's QR code "PL:{job_id}:{attempt}" is seen in a
// frame (trigger: qr; the camera is watched every qa.qr_scan_interval_ms only while a job waits
// on it), the camera that watches the job's printer is asked for a still (drivers/camera, on
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
// A ticket code that names no job inspecting on that camera (unknown job, another attempt,
// another state, another camera) is reported (qa.unmatched, with the frame), never guessed.
// Cameras report their own device.state (kind camera: idle, offline, unresponsive, error) when
// it changes.
//
// Threads: QaFlow's methods run on the io_context thread; grabs (and ticket searches) run on a
// thread of their camera's own (QaFlow's pool, one per camera: a grab may block for
// read_timeout_ms and must not hold up inspections), inspections on the worker pool; both post
// their results back. begin_qa and decide_qa run inside a transaction on
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
#include "pressline/drivers/camera.hpp"

namespace pressline::agent {

struct QaHooks {
    std::function<void()> events_appended;
    std::function<void()> paperwork_changed;              // a job became ready to ship
    std::function<void(const std::string& job_id)> requeued;  // a reprint is queued
    // The printer had too many QA failures in a row: pause it (reason qa-failures).
    std::function<void(const std::string& device)> pause_device;
    // A camera's retained device status (the data of its latest device.state, plus time).
    std::function<void(const std::string& device, const std::string& payload)> device_status;
};

// The driver settings of a configured camera (the daemon's and `pressline calibrate`'s).
drivers::camera::Settings camera_settings(const config::Camera& c);

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

    // A picture now (the snapshot command): from camera `camera`, or from every camera when
    // empty. `done` is called once, on the io thread, with the command.result members: status ok
    // with `snapshots` [{camera, path, width, height, captured_at} or {camera, error}] when at
    // least one picture was taken, else status error (unknown_camera, camera_unavailable).
    // The pictures go to {qa.evidence.dir}/_snapshots/{camera}/.
    void snapshot(const std::string& camera, std::function<void(nlohmann::json)> done);

    nlohmann::json status() const;

private:
    struct Impl;
    std::unique_ptr<boost::asio::thread_pool> grabbers_;  // one thread per camera (grabs block)
    std::shared_ptr<Impl> impl_;
};

}  // namespace pressline::agent
