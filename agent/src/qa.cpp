// The visual QA flow (see qa.hpp and docs/design.md "Visual QA flow").
#include "pressline/agent/qa.hpp"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "pressline/agent/clock.hpp"
#include "pressline/agent/log.hpp"
#include "pressline/agent/paperwork.hpp"
#include "pressline/devices/qa/identify.hpp"
#include "pressline/devices/qa/inspector.hpp"
#include "pressline/drivers/camera.hpp"
#include "pressline/image/image.hpp"

namespace pressline::agent {

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace qa = devices::qa;
namespace camera = drivers::camera;
using json = nlohmann::json;

namespace {

// The config's qa.tolerances (same keys; config/ depends on nothing of ours) as the inspector's.
qa::Tolerances inspector_tolerances(const config::QaTolerances& c) {
    return {.offset_mm = c.offset_mm, .rotation_deg = c.rotation_deg, .scale_pct = c.scale_pct,
            .mean_de00 = c.mean_de00, .local_de00 = c.local_de00, .local_min_area_mm2 = c.local_min_area_mm2,
            .margin_mm = c.margin_mm, .blank_de00 = c.blank_de00, .low_confidence = c.low_confidence};
}

// A `folder:` or `sequence:` camera: its images are files, each taken once, in order (the
// next one belongs to the next garment; no new one yet is no fault).
bool reads_files(const config::Camera& c) {
    return c.source.starts_with("folder:") || c.source.starts_with("sequence:");
}

json metrics_of(const QaRow& r) {
    json j = json::parse(r.metrics.empty() ? "{}" : r.metrics, nullptr, false);
    return j.is_discarded() ? json::object() : j;
}

json evidence_json(const QaRow& r) {
    if (r.evidence_dir.empty()) return nullptr;
    const fs::path d = r.evidence_dir;
    json e{{"dir", d.string()}};
    for (const char* f : {"capture.jpg", "rectified.png", "expected.png", "heatmap.png", "result.json", "case.json"}) {
        std::error_code ec;
        if (fs::exists(d / f, ec)) e[fs::path(f).stem().string()] = (d / f).string();
    }
    return e;
}

// The data of a qa.* event about `r`.
json qa_data(const JobRow& job, const QaRow& r) {
    json d{{"order_id", job.order_id}, {"attempt", r.attempt}, {"device", r.device},
           {"reason", r.reason.empty() ? "ok" : r.reason}, {"confidence", r.confidence},
           {"metrics", metrics_of(r)}, {"evidence", evidence_json(r)}};
    if (!r.camera.empty()) d["camera"] = r.camera;
    if (!r.decided_by.empty()) {
        d["decided_by"] = r.decided_by;
        d["decided_at"] = format_time(std::chrono::system_clock::time_point(std::chrono::milliseconds(r.decided_ms)));
    }
    if (!r.source.empty()) d["source"] = r.source;
    if (!r.note.empty()) d["note"] = r.note;
    return d;
}

// QA failures of the job so far (every attempt's row with verdict fail).
int qa_failures(Tx& tx, const std::string& job_id, int attempt) {
    int n = 0;
    for (int a = 1; a <= attempt; ++a)
        if (auto r = tx.qa(job_id, a); r && r->verdict == "fail") ++n;
    return n;
}

// A job now in qa_failed: a reprint within the limit, else job.failed qa_failed. Returns true
// when it was queued again.
bool after_failure(Tx& tx, const std::string& job_id, const config::Config& cfg, const QaRow& r) {
    auto job = tx.job(job_id);
    if (!job) return false;
    const int failures = qa_failures(tx, job_id, job->attempt);
    if (failures <= cfg.qa.reprint_limit) {
        const int attempt = job->attempt + 1;
        tx.start_attempt(job_id, attempt);
        tx.transition(job_id, JobState::queued, "qa_failed: " + r.reason,
                      {"job.reprint", job_id,
                       {{"order_id", job->order_id}, {"attempt", attempt},
                        {"previous_state", std::string(to_string(job->state))},
                        {"reason", "qa_failed"}, {"qa_reason", r.reason}, {"qa_failures", failures},
                        {"reprint_limit", cfg.qa.reprint_limit}}});
        return true;
    }
    tx.transition(job_id, JobState::failed, "qa_failed",
                  {"job.failed", job_id,
                   {{"order_id", job->order_id}, {"reason", "qa_failed"}, {"attempt", job->attempt},
                    {"message", fmt::format("{} QA failure(s), reprint limit {}; last: {}", failures,
                                            cfg.qa.reprint_limit, r.reason)}}});
    return false;
}

void hold(Tx& tx, const JobRow& job, QaRow& r, const std::string& reason, const std::string& message,
          const std::string& suggested) {
    r.state = "held";
    r.reason = reason;
    tx.put_qa(r);
    json d = qa_data(job, r);
    d["message"] = message;
    if (!suggested.empty()) d["verdict"] = suggested;  // what the inspector said
    tx.transition(job.job_id, JobState::held, "qa: " + reason, {"qa.held", job.job_id, d});
}

}  // namespace

camera::Settings camera_settings(const config::Camera& c) {
    camera::Settings s;
    s.name = "camera " + c.name;
    s.source = c.source;
    s.width = c.width;
    s.height = c.height;
    s.fourcc = c.fourcc;
    s.exposure = c.exposure;
    s.open_timeout = std::chrono::milliseconds(c.open_timeout_ms);
    s.read_timeout = std::chrono::milliseconds(c.read_timeout_ms);
    return s;
}

bool begin_qa(Tx& tx, const JobRow& job, int attempt, const std::string& device, const config::Config& cfg) {
    QaRow r;
    r.job_id = job.job_id;
    r.attempt = attempt;
    r.device = device;
    r.printed_ms = tx.now_ms();
    const config::Camera* cam = cfg.camera_for(device);
    if (!cam) {
        hold(tx, job, r, "qa_no_camera",
             fmt::format("no camera watches printer {} (config cameras:); a person decides (qa_decision)", device), "");
        return false;
    }
    r.camera = cam->name;
    r.state = "pending";
    tx.put_qa(r);
    tx.transition(job.job_id, JobState::inspecting, "", {});
    return true;
}

json decide_qa(Tx& tx, const std::string& job_id, const std::string& verdict, const std::string& by,
               const std::string& source, const std::string& note, const std::string& command_id,
               const config::Config& cfg) {
    json result{{"job_id", job_id}, {"verdict", verdict}};
    auto error = [&](const std::string& reason, const std::string& message) {
        result["status"] = "error";
        result["reason"] = reason;
        result["message"] = message;
        return result;
    };
    if (verdict != "pass" && verdict != "fail") return error("invalid_command", "verdict must be pass or fail");
    auto job = tx.job(job_id);
    if (!job) return error("unknown_job", "no job " + job_id + " at this station");
    auto row = tx.qa(job_id, std::max(1, job->attempt));
    if (job->state != JobState::held || !row || row->state != "held")
        return error("not_held_for_qa", "job " + job_id + " is " + std::string(to_string(job->state)) +
                                            "; a QA decision is for a job held for QA (qa.held)");
    QaRow r = *row;
    const std::string held_reason = r.reason;
    r.state = "decided";
    r.verdict = verdict;
    r.decided_by = by.empty() ? (source == "local" ? "local" : "cloud") : by;
    r.decided_ms = tx.now_ms();
    r.source = source;
    r.note = note;
    if (verdict == "pass") {
        r.reason = "ok";
        tx.put_qa(r);
        json d = qa_data(*job, r);
        d["held_reason"] = held_reason;
        if (!command_id.empty()) d["command_id"] = command_id;
        tx.transition(job_id, JobState::qa_passed, "qa decision by " + r.decided_by, {"qa.passed", job_id, d});
        auto now = tx.job(job_id);
        ready_to_ship(tx, *now, cfg);
        result["status"] = "ok";
        result["message"] = "job " + job_id + " passed QA (decided by " + r.decided_by + ")";
        return result;
    }
    // A person's fail: the inspector's reason when it had one, else `operator_rejected`.
    static const std::set<std::string> codes = {"color_shift", "misaligned", "missing_ink", "smudge", "wrong_design",
                                                "missing_underbase", "wrong_blank", "no_capture"};
    const json m = metrics_of(r);
    const std::string inspector_reason = m.value("inspector_reason", std::string());
    r.reason = codes.count(inspector_reason) ? inspector_reason : "operator_rejected";
    tx.put_qa(r);
    json d = qa_data(*job, r);
    d["held_reason"] = held_reason;
    if (!command_id.empty()) d["command_id"] = command_id;
    tx.transition(job_id, JobState::qa_failed, "qa decision by " + r.decided_by, {"qa.failed", job_id, d});
    const bool requeued = after_failure(tx, job_id, cfg, r);
    result["status"] = "ok";
    result["reprint"] = requeued;
    if (requeued) result["attempt"] = job->attempt + 1;
    result["message"] = requeued ? fmt::format("job {} failed QA (decided by {}); reprinted as attempt {}", job_id,
                                               r.decided_by, job->attempt + 1)
                                 : fmt::format("job {} failed QA (decided by {}); reprint limit reached: job failed",
                                               job_id, r.decided_by);
    return result;
}

// ---- the flow ------------------------------------------------------------------------------------

struct QaFlow::Impl : std::enable_shared_from_this<QaFlow::Impl> {
    struct Cam {
        config::Camera cfg;
        std::shared_ptr<camera::Camera> dev;
        bool busy = false;                 // a grab is on the pool
        std::vector<std::string> waiting;  // job ids waiting for this camera, first first
        // Snapshot requests waiting for this camera; each is called with {camera, path, ...} or
        // {camera, error}.
        std::vector<std::function<void(const json&)>> snaps;
        // trigger qr: the next scan, and ticket codes already dealt with (code -> wall ms).
        std::unique_ptr<asio::steady_timer> scan_timer;
        bool scan_armed = false;
        std::map<std::string, std::int64_t> used;      // its frame went to its job
        std::map<std::string, std::int64_t> reported;  // reported as qa.unmatched
        // A job whose photo has not come yet keeps the camera between its tries (garments reach
        // an inline camera in print order): only snapshots may use it meanwhile.
        std::string held_for;
        int scan_failures = 0;  // consecutive failed scans: the scan interval backs off
        // device.state (kind camera)
        std::string state = "unknown";
        std::vector<std::string> reasons;
        std::string last_error;
    };
    // One frame searched for ticket codes (trigger qr).
    struct Scan {
        bool ok = false;
        std::error_code code;
        std::string error;
        std::shared_ptr<const camera::Frame> frame;
        std::vector<qa::TicketCode> codes;
    };
    struct Pending {
        std::string job_id, order_id, device, camera;
        int attempt = 1;
        std::int64_t printed_ms = 0;
        std::int64_t capture_started_ms = 0;  // first capture of this round (0 = not yet)
        std::unique_ptr<asio::steady_timer> timer;
        bool running = false;  // a capture or inspection is on the pool
        bool queued = false;   // waits for its camera
        bool triggered = false;  // an operator trigger is capturing it (trigger qr: no deadline)
        int grabs = 0;
        std::string last_error;
    };
    // The outcome of one capture + inspection, made on the pool.
    struct Outcome {
        bool captured = false;
        bool grabbed = true;         // the outcome of a grab that holds the camera (false: an
                                     // inspection; the camera was released after its grab)
        std::error_code code;        // capture failure
        std::string error;           // capture failure
        std::optional<qa::Problem> problem;
        std::optional<qa::Verdict> verdict;
        std::string evidence_dir;
        std::string origin;          // where the still came from (folder camera: the file)
    };

    asio::io_context& io;
    asio::thread_pool& workers;
    asio::thread_pool& grabbers;  // one thread per camera: a grab waits up to read_timeout_ms
    Journal& journal;
    config::Config cfg;
    QaHooks hooks;
    std::map<std::string, Cam> cams;
    std::map<std::string, Pending> pending;
    bool stopping = false;
    std::int64_t started_ms = wall_ms();
    std::mt19937_64 rng{std::random_device{}()};
    std::mutex cal_mu;  // guards cal_cache (workers)
    struct CalEntry {
        fs::file_time_type mtime;
        json j;
        qa::Calibration cal;
    };
    std::map<std::string, CalEntry> cal_cache;
    std::mutex prune_mu;

    Impl(asio::io_context& io_, asio::thread_pool& w, asio::thread_pool& g, Journal& j, const config::Config& c,
         QaHooks h)
        : io(io_), workers(w), grabbers(g), journal(j), cfg(c), hooks(std::move(h)) {
        for (const auto& c2 : cfg.cameras) {
            Cam cam;
            cam.cfg = c2;
            camera::Settings s = camera_settings(c2);
            // A folder's files from before the start are not this run's garments (the camera is
            // opened at start-up, so every photo taken afterwards counts).
            s.skip_existing = true;
            cam.dev = std::make_shared<camera::Camera>(s);
            cam.scan_timer = std::make_unique<asio::steady_timer>(io);
            cams.emplace(c2.name, std::move(cam));
        }
    }

    bool commit(const char* what, const std::string& job_id, const std::function<void(Tx&)>& fn) {
        try {
            journal.transact(Admission::internal, fn);
            if (hooks.events_appended) hooks.events_appended();
            return true;
        } catch (const std::exception& e) {
            logger("qa")->error("journal: cannot record {} job_id={}: {}", what, job_id, e.what());
            return false;
        }
    }

    void start() {
        // Open every camera now (on the pool): problems show at start-up, and a folder camera
        // takes every photo that appears from now on.
        for (auto& [name, cam] : cams) {
            cam.busy = true;
            auto self = shared_from_this();
            asio::post(grabbers, [self, dev = cam.dev, name = name] {
                auto st = dev->open();
                asio::post(self->io, [self, name, ok = static_cast<bool>(st), code = st.code, msg = st.message] {
                    auto& c = self->cams.at(name);
                    c.busy = false;
                    if (ok) logger("qa")->info("camera {} open source={}", name, c.cfg.source);
                    else logger("qa")->warn("camera {} cannot be opened yet ({}); it is tried again at each capture", name, msg);
                    self->camera_result(c, ok, code, msg);
                    self->next_for(c);
                });
            });
        }
        // In the order they were printed: the order the garments reach the camera.
        std::vector<std::pair<std::int64_t, JobRow>> rows;
        for (auto& row : journal.jobs_in_state(JobState::inspecting)) {
            const auto q = journal.qa(row.job_id, std::max(1, row.attempt));
            rows.emplace_back(q ? q->printed_ms : row.updated_ms, std::move(row));
        }
        std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
        for (const auto& [printed_ms, row] : rows) {
            logger("qa")->info("resuming QA job_id={} attempt={} (captured again)", row.job_id, row.attempt);
            take_up(row);
        }
        prune_evidence();
    }

    void take_up(const JobRow& row) {
        if (pending.count(row.job_id)) return;
        auto q = journal.qa(row.job_id, std::max(1, row.attempt));
        Pending p;
        p.job_id = row.job_id;
        p.order_id = row.order_id;
        p.attempt = std::max(1, row.attempt);
        p.printed_ms = q ? q->printed_ms : wall_ms();
        p.device = q ? q->device : "";
        p.camera = q ? q->camera : "";
        if (p.camera.empty() || !cams.count(p.camera)) {
            // The camera is gone from the config (or the row is missing): ask a person.
            const auto* c = cfg.camera_for(p.device);
            if (c) {
                p.camera = c->name;
            } else {
                commit("qa.held", row.job_id, [&](Tx& tx) {
                    auto job = tx.job(row.job_id);
                    if (!job || job->state != JobState::inspecting) return;
                    QaRow r = q.value_or(QaRow{});
                    r.job_id = row.job_id;
                    r.attempt = p.attempt;
                    r.device = p.device;
                    if (!r.printed_ms) r.printed_ms = p.printed_ms;
                    hold(tx, *job, r, "qa_no_camera",
                         fmt::format("no camera watches printer {} (config cameras:)", p.device), "");
                });
                return;
            }
        }
        p.timer = std::make_unique<asio::steady_timer>(io);
        auto& ref = pending.emplace(row.job_id, std::move(p)).first->second;
        if (cfg.qa.trigger == "delay") {
            const auto due = ref.printed_ms + std::int64_t{cfg.qa.delay_s} * 1000;
            arm(ref, std::max<std::int64_t>(0, due - wall_ms()), [self = shared_from_this(), id = row.job_id] {
                self->capture(id);
            });
        } else if (cfg.qa.trigger == "qr") {
            // The ticket must be seen within capture_timeout_s of job.printed (or of this start:
            // after a restart the garments are looked for again).
            const auto due = std::max(ref.printed_ms, started_ms) + std::int64_t{cfg.qa.capture_timeout_s} * 1000;
            arm(ref, std::max<std::int64_t>(0, due - wall_ms()), [self = shared_from_this(), id = row.job_id] {
                self->ticket_not_seen(id);
            });
            logger("qa")->info("QA waits for ticket PL:{}:{} in a frame of camera {} job_id={} device={}", row.job_id,
                               ref.attempt, ref.camera, row.job_id, ref.device);
            next_for(cams.at(ref.camera));
        } else {
            logger("qa")->info("QA waits for an operator trigger job_id={} device={} (pressline qa trigger)",
                               row.job_id, ref.device);
        }
    }

    void arm(Pending& p, std::int64_t ms, std::function<void()> fn) {
        p.timer->expires_after(std::chrono::milliseconds(ms));
        p.timer->async_wait([fn = std::move(fn)](const boost::system::error_code& ec) {
            if (!ec) fn();
        });
    }

    // Starts (or queues) a capture of the job's garment.
    void capture(const std::string& job_id) {
        if (stopping) return;
        auto it = pending.find(job_id);
        if (it == pending.end()) return;
        Pending& p = it->second;
        if (p.running || p.queued) return;
        Cam& cam = cams.at(p.camera);
        if (cam.busy) {
            p.queued = true;
            cam.waiting.push_back(job_id);
            return;
        }
        run(cam, p);
    }

    void run(Cam& cam, Pending& p) {
        cam.busy = true;
        p.running = true;
        // The capture timeout counts from the first grab (not from waiting for the camera).
        if (p.capture_started_ms == 0) p.capture_started_ms = wall_ms();
        ++p.grabs;
        if (p.grabs == 1)
            commit("qa capturing", p.job_id, [&](Tx& tx) {
                auto r = tx.qa(p.job_id, p.attempt);
                if (!r || r->state != "pending") return;
                r->state = "capturing";
                tx.put_qa(*r);
            });
        auto self = shared_from_this();
        const fs::path work = cfg.storage.state_dir / "work" / p.job_id;
        const fs::path evidence = cfg.qa.evidence.dir / p.job_id / std::to_string(p.attempt);
        // The grab on the camera's own thread (it may wait read_timeout_ms), the inspection on
        // the worker pool.
        asio::post(grabbers, [self, dev = cam.dev, cal_path = cam.cfg.calibration, work, evidence,
                              id = p.job_id, cam_name = cam.cfg.name] {
            drivers::Outcome<camera::Frame> frame;
            try {
                frame = dev->grab();
            } catch (const std::exception& e) {  // OpenCV, memory
                frame.code = camera::Errc::io;
                frame.message = e.what();
            }
            if (!frame) {
                Outcome o;
                o.code = frame.code;
                o.error = frame.message.empty() ? frame.code.message() : frame.message;
                asio::post(self->io, [self, id, cam_name, o = std::move(o)] { self->done(id, cam_name, o); });
                return;
            }
            // The camera is free for the next garment (or a snapshot) while this one is inspected.
            asio::post(self->io, [self, cam_name] {
                Cam& c = self->cams.at(cam_name);
                c.busy = false;
                self->camera_result(c, true, {}, "");
                self->next_for(c);
            });
            asio::post(self->workers, [self, still = std::move(frame.value), cal_path, work, evidence, id, cam_name] {
                Outcome o = self->inspect_frame(still, cal_path, work, evidence);
                o.grabbed = false;  // the camera was released above
                asio::post(self->io, [self, id, cam_name, o = std::move(o)] { self->done(id, cam_name, o); });
            });
        });
    }

    // Worker pool.
    std::optional<qa::Calibration> calibration(const fs::path& file, json& as_json, std::string& problem) {
        std::error_code ec;
        const auto mtime = fs::last_write_time(file, ec);
        if (ec) {
            problem = fmt::format("calibration file {} cannot be read: {}", file.string(), ec.message());
            return std::nullopt;
        }
        {
            std::lock_guard lock(cal_mu);
            if (auto it = cal_cache.find(file.string()); it != cal_cache.end() && it->second.mtime == mtime) {
                as_json = it->second.j;
                return it->second.cal;
            }
        }
        std::ifstream in(file);
        json j = json::parse(in, nullptr, false);
        if (!j.is_object()) {
            problem = fmt::format("calibration file {} is not a JSON object", file.string());
            return std::nullopt;
        }
        auto cal = qa::calibration_from_json(j, file.parent_path());
        if (auto* pr = std::get_if<qa::Problem>(&cal)) {
            problem = fmt::format("calibration {}: {} {}", file.string(), pr->field, pr->message);
            return std::nullopt;
        }
        // Paths in the case file are absolute, so that the case can be run from anywhere.
        if (j.contains("flatfield") && j["flatfield"].is_string()) {
            fs::path ff = j["flatfield"].get<std::string>();
            if (ff.is_relative()) j["flatfield"] = (file.parent_path() / ff).lexically_normal().string();
        }
        std::lock_guard lock(cal_mu);
        cal_cache[file.string()] = CalEntry{mtime, j, std::get<qa::Calibration>(cal)};
        as_json = j;
        return std::get<qa::Calibration>(cal);
    }

    // Worker pool: the inspection of one still (and its evidence).
    Outcome inspect_frame(const camera::Frame& still, const fs::path& cal_path, const fs::path& work,
                          const fs::path& evidence) {
        Outcome o;
        o.captured = true;
        o.origin = still.origin;
        try {
            std::error_code ec;
            fs::remove_all(evidence, ec);  // a capture again after a restart replaces it
            fs::create_directories(evidence, ec);
            if (ec) {
                o.problem = qa::Problem{"inspect_failed", "evidence", "cannot create " + evidence.string() + ": " + ec.message()};
                return o;
            }
            o.evidence_dir = evidence.string();
            // The capture is inspected as saved (capture.jpg, through load_case like `pressline qa
            // inspect`), so that case.json re-runs exactly this inspection. A JPEG file from a
            // folder camera is kept as it is; anything else is encoded once (quality 95).
            const fs::path origin = still.origin;
            std::string ext = origin.extension().string();
            std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
            std::error_code cec;
            if (!((ext == ".jpg" || ext == ".jpeg") && fs::is_regular_file(origin, cec) &&
                  fs::copy_file(origin, evidence / "capture.jpg", fs::copy_options::overwrite_existing, cec))) {
                if (auto st = pressline::image::write(evidence / "capture.jpg", still.bgr, {.jpeg_quality = 95}); !st) {
                    o.problem = qa::Problem{"inspect_failed", "capture", st.message};
                    return o;
                }
            }
            std::ifstream rin(work / "reference.json");
            const json ref = json::parse(rin, nullptr, false);
            if (!ref.is_object()) {
                o.problem = qa::Problem{"unreadable_image", "reference",
                                        "the job's reference (" + (work / "reference.json").string() + ") cannot be read"};
                return o;
            }
            const json box = ref.value("box_mm", json::object());
            const json srgb = ref.value("job", json::object()).value("garment_srgb", json::array({255, 255, 255}));
            json cal_json;
            std::string problem;
            auto cal = calibration(cal_path, cal_json, problem);
            const qa::Tolerances tol = inspector_tolerances(cfg.qa.tolerances);
            // QA's own copy of the reference (4 px/mm) when render wrote one: the full one is
            // ~11 MP at 300 dpi and costs ~0.2 s to decode and shrink for every photo.
            const json qa_ref = ref.value("qa_reference", json::object());
            const bool small_ref = qa_ref.is_object() && qa_ref.contains("file") && qa_ref.contains("px_per_mm") &&
                                   fs::exists(work / qa_ref["file"].get<std::string>());
            json case_json{{"capture", (evidence / "capture.jpg").string()},
                           {"reference", (work / (small_ref ? qa_ref["file"].get<std::string>() : "reference.png")).string()},
                           {"reference_px_per_mm", small_ref ? qa_ref["px_per_mm"].get<double>() : ref.value("px_per_mm", 0.0)},
                           {"placement_mm", box},
                           {"garment_srgb_nominal", srgb},
                           {"calibration", cal_json.is_null() ? json(cal_path.string()) : cal_json},
                           {"calibration_file", cal_path.string()},
                           {"tolerances", qa::to_json(tol)}};
            std::ofstream(evidence / "case.json") << case_json.dump(2) << "\n";
            if (!cal) {
                o.problem = qa::Problem{"bad_calibration", "calibration", problem};
                return o;
            }
            // The calibration as cached (its flat field decoded once), not re-read from case.json.
            auto loaded = qa::load_case(case_json, evidence, *cal);
            if (auto* pr = std::get_if<qa::Problem>(&loaded)) {
                o.problem = *pr;
                return o;
            }
            qa::Case& c = std::get<qa::Case>(loaded);
            qa::Evidence ev;
            const auto t0 = std::chrono::steady_clock::now();
            auto res = qa::inspect(c, tol, &ev);
            const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
            if (auto* pr = std::get_if<qa::Problem>(&res)) {
                o.problem = *pr;
                std::ofstream(evidence / "result.json")
                    << json{{"problem", {{"reason", pr->reason}, {"field", pr->field}, {"message", pr->message}}}}.dump(2) << "\n";
                return o;
            }
            o.verdict = std::get<qa::Verdict>(res);
            if (!o.verdict->metrics.is_object()) o.verdict->metrics = json::object();
            o.verdict->metrics["inspect_ms"] = ms;
            // Evidence pictures for a person: a failed one is logged, the verdict stands.
            for (const auto& [name, picture] : {std::pair{"rectified.png", &ev.rectified}, std::pair{"expected.png", &ev.expected},
                                                std::pair{"heatmap.png", &ev.heatmap}}) {
                if (picture->empty()) continue;
                if (auto st = pressline::image::write(evidence / name, *picture); !st)
                    logger("qa")->warn("cannot keep the evidence picture: {}", st.message);
            }
            json defects = json::array();
            for (const auto& d : o.verdict->defects)
                defects.push_back({{"kind", d.kind},
                                   {"bbox_mm", {d.bbox_mm.x, d.bbox_mm.y, d.bbox_mm.width, d.bbox_mm.height}},
                                   {"area_mm2", d.area_mm2}, {"mean_de00", d.mean_de00}, {"max_de00", d.max_de00}});
            std::ofstream(evidence / "result.json")
                << json{{"verdict", o.verdict->pass ? "pass" : "fail"}, {"reason", o.verdict->reason},
                        {"confidence", o.verdict->confidence}, {"metrics", o.verdict->metrics}, {"defects", defects}}
                       .dump(2)
                << "\n";
        } catch (const std::exception& e) {  // OpenCV or the file system
            o.problem = qa::Problem{"inspect_failed", "", e.what()};
        }
        return o;
    }

    // io thread: a capture + inspection finished.
    // The next job waiting for this camera, if any.
    // Snapshots first (quick), then the jobs in turn; with trigger qr, a scan for tickets next.
    void next_for(Cam& cam) {
        if (cam.busy || stopping) return;
        if (!cam.snaps.empty()) return take_snapshot(cam);
        if (!cam.held_for.empty()) return;
        while (!cam.waiting.empty()) {
            const std::string id = cam.waiting.front();
            cam.waiting.erase(cam.waiting.begin());
            auto it = pending.find(id);
            if (it == pending.end()) continue;
            it->second.queued = false;
            run(cam, it->second);
            return;
        }
        if (cfg.qa.trigger == "qr") arm_scan(cam);
    }

    // ---- trigger qr ------------------------------------------------------------------------------
    // Whether a job waits for its ticket to be seen by this camera.
    bool awaits_ticket(const Cam& cam) const {
        for (const auto& [id, p] : pending)
            if (p.camera == cam.cfg.name && !p.running && !p.queued) return true;
        return false;
    }

    void arm_scan(Cam& cam) {
        if (cam.scan_armed || !awaits_ticket(cam)) return;
        cam.scan_armed = true;
        // A camera that fails is tried less often: 2, 4, 8, then every 10 s.
        int interval = cfg.qa.qr_scan_interval_ms;
        if (cam.scan_failures > 0)
            interval = std::min(10'000, std::max(interval, 2000) << std::min(cam.scan_failures - 1, 3));
        cam.scan_timer->expires_after(std::chrono::milliseconds(interval));
        cam.scan_timer->async_wait([self = shared_from_this(), name = cam.cfg.name](const boost::system::error_code& ec) {
            Cam& c = self->cams.at(name);
            c.scan_armed = false;
            if (!ec) self->scan(c);
        });
    }

    // One frame, searched for ticket codes on the pool.
    void scan(Cam& cam) {
        if (cam.busy || stopping || !cam.held_for.empty() || !awaits_ticket(cam)) return;
        cam.busy = true;
        asio::post(grabbers, [self = shared_from_this(), dev = cam.dev, name = cam.cfg.name] {
            Scan s;
            try {
                auto f = dev->grab();
                s.ok = static_cast<bool>(f);
                s.code = f.code;
                s.error = f.message.empty() ? f.code.message() : f.message;
                if (f) {
                    auto frame = std::make_shared<camera::Frame>(std::move(f.value));
                    s.codes = qa::find_ticket_codes(frame->bgr);
                    s.frame = std::move(frame);
                }
            } catch (const std::exception& e) {  // OpenCV
                s.ok = false;
                s.code = camera::Errc::io;
                s.error = e.what();
            }
            asio::post(self->io, [self, name, s = std::move(s)] { self->scanned(name, s); });
        });
    }

    void scanned(const std::string& name, const Scan& s) {
        Cam& cam = cams.at(name);
        cam.busy = false;
        cam.scan_failures = s.ok ? 0 : cam.scan_failures + 1;
        camera_result(cam, s.ok, s.code, s.error);
        if (stopping) return;
        const auto now = wall_ms();
        constexpr std::int64_t kStillInView = 60'000;   // the same garment under the camera
        constexpr std::int64_t kReportAgain = 300'000;  // an unmatched ticket is reported this often
        for (const auto& code : s.codes) {
            const std::string text = fmt::format("PL:{}:{}", code.job_id, code.attempt);
            auto it = pending.find(code.job_id);
            if (it != pending.end() && it->second.camera == name && it->second.attempt == code.attempt) {
                Pending& p = it->second;
                if (p.running) continue;
                if (p.queued) {
                    std::erase(cam.waiting, p.job_id);
                    p.queued = false;
                }
                cam.used[text] = now;
                logger("qa")->info("ticket {} seen by camera {}: inspecting job_id={} attempt={}", text, name, p.job_id,
                                   p.attempt);
                inspect_scanned(cam, p, s.frame);
                continue;
            }
            if (auto u = cam.used.find(text); u != cam.used.end() && now - u->second < kStillInView) {
                u->second = now;  // still there: the window slides while the garment stays in view
                continue;
            }
            if (auto r = cam.reported.find(text); r != cam.reported.end() && now - r->second < kReportAgain) continue;
            cam.reported[text] = now;
            report_unmatched(cam, code, text, s.frame);
        }
        for (auto* m : {&cam.used, &cam.reported})
            std::erase_if(*m, [&](const auto& kv) { return now - kv.second > kReportAgain; });
        next_for(cam);
    }

    // The scanned frame is the job's still: inspect it (the camera goes on scanning).
    void inspect_scanned(Cam& cam, Pending& p, const std::shared_ptr<const camera::Frame>& frame) {
        p.timer->cancel();
        p.running = true;
        p.capture_started_ms = wall_ms();
        ++p.grabs;
        commit("qa capturing", p.job_id, [&](Tx& tx) {
            auto r = tx.qa(p.job_id, p.attempt);
            if (!r || r->state != "pending") return;
            r->state = "capturing";
            tx.put_qa(*r);
        });
        const fs::path work = cfg.storage.state_dir / "work" / p.job_id;
        const fs::path evidence = cfg.qa.evidence.dir / p.job_id / std::to_string(p.attempt);
        asio::post(workers, [self = shared_from_this(), frame, cal_path = cam.cfg.calibration, work, evidence,
                             id = p.job_id, cam_name = cam.cfg.name] {
            Outcome o = self->inspect_frame(*frame, cal_path, work, evidence);
            o.grabbed = false;
            asio::post(self->io, [self, id, cam_name, o = std::move(o)] { self->done(id, cam_name, o); });
        });
    }

    // A ticket code that names no job inspecting on this camera: reported with the frame, never
    // used (qa.unmatched).
    void report_unmatched(Cam& cam, const qa::TicketCode& code, const std::string& text,
                          const std::shared_ptr<const camera::Frame>& frame) {
        json d{{"camera", cam.cfg.name}, {"code", text}, {"job_id", code.job_id}, {"attempt", code.attempt}};
        std::string reason, message;
        auto it = pending.find(code.job_id);
        auto job = journal.job(code.job_id);
        if (!job) {
            reason = "unknown_job";
            message = fmt::format("camera {} sees ticket {}, but there is no job {} at this station", cam.cfg.name, text,
                                  code.job_id);
        } else {
            d["job_state"] = std::string(to_string(job->state));
            d["job_attempt"] = job->attempt;
            if (it != pending.end() && it->second.camera != cam.cfg.name) {
                reason = "other_camera";
                d["job_camera"] = it->second.camera;
                message = fmt::format("camera {} sees ticket {}, but job {} was printed on {}, which camera {} watches",
                                      cam.cfg.name, text, code.job_id, it->second.device, it->second.camera);
            } else if (job->state == JobState::inspecting && job->attempt != code.attempt) {
                reason = "other_attempt";
                message = fmt::format("camera {} sees ticket {} of attempt {}, but job {} is inspecting attempt {}",
                                      cam.cfg.name, text, code.attempt, code.job_id, job->attempt);
            } else {
                reason = "not_inspecting";
                message = fmt::format("camera {} sees ticket {}, but job {} is {} (attempt {}), not waiting for its photo",
                                      cam.cfg.name, text, code.job_id, to_string(job->state), job->attempt);
            }
        }
        d["reason"] = reason;
        d["message"] = message;
        logger("qa")->warn("unmatched ticket camera={} code={} reason={}: {}", cam.cfg.name, text, reason, message);
        // The frame is kept for a person to look at, then the event names it.
        const fs::path file = cfg.qa.evidence.dir / "_unmatched" / cam.cfg.name /
                              fmt::format("{}-{}-{}.jpg", frame->captured_ms, code.job_id, code.attempt);
        asio::post(workers, [self = shared_from_this(), frame, file, d]() mutable {
            std::error_code ec;
            fs::create_directories(file.parent_path(), ec);
            try {
                if (ec) {
                    logger("qa")->warn("cannot keep the unmatched frame {}: {}", file.string(), ec.message());
                } else if (auto st = pressline::image::write(file, frame->bgr, {.jpeg_quality = 90}); !st) {
                    logger("qa")->warn("cannot keep the unmatched frame: {}", st.message);
                } else {
                    d["frame"] = file.string();
                }
            } catch (const std::exception& e) {
                logger("qa")->warn("cannot keep the unmatched frame {}: {}", file.string(), e.what());
            }
            asio::post(self->io, [self, d] {
                self->commit("qa.unmatched", d.value("job_id", ""),
                             [&](Tx& tx) { tx.append({"qa.unmatched", std::nullopt, d}); });
            });
        });
    }

    // trigger qr: no frame showed the job's ticket within capture_timeout_s of job.printed.
    void ticket_not_seen(const std::string& job_id) {
        auto it = pending.find(job_id);
        if (stopping || it == pending.end()) return;
        Pending& p = it->second;
        if (p.running || p.queued || p.triggered) return;  // an operator trigger is capturing it
        const Cam& cam = cams.at(p.camera);
        Outcome o;
        o.error = fmt::format("ticket PL:{}:{} not seen by camera {} (state {}{})", p.job_id, p.attempt, p.camera,
                              cam.state, cam.state == "idle" || cam.last_error.empty() ? "" : ": " + cam.last_error);
        logger("qa")->warn("no capture job_id={} camera={}: {}", job_id, p.camera, o.error);
        decide_auto(p, o);
    }

    // ---- camera state and snapshots ------------------------------------------------------------
    // device.state of a camera (kind camera) when its state or reasons change. Like printers,
    // the first state seen is an event only when it is not idle.
    void camera_state(Cam& cam, const std::string& state, std::vector<std::string> reasons, const std::string& message) {
        if (cam.state == state && cam.reasons == reasons) return;
        const bool first = cam.state == "unknown";
        cam.state = state;
        cam.reasons = reasons;
        json d{{"device", cam.cfg.name}, {"kind", "camera"}, {"state", state}, {"reasons", reasons}};
        if (!message.empty()) d["message"] = message;
        if (!(first && state == "idle")) {
            logger("qa")->info("camera {} state={} reasons=[{}]", cam.cfg.name, state, fmt::join(reasons, ","));
            commit("device.state", cam.cfg.name, [&](Tx& tx) { tx.append({"device.state", std::nullopt, d}); });
        }
        if (hooks.device_status) {
            d["time"] = format_time(std::chrono::system_clock::now());
            hooks.device_status(cam.cfg.name, d.dump());
        }
    }

    // The state a grab or open outcome says. A folder or sequence with no new image is no fault
    // (nothing was photographed yet).
    void camera_result(Cam& cam, bool ok, std::error_code code, const std::string& message) {
        using camera::Errc;
        if (ok) return camera_state(cam, "idle", {}, "");
        cam.last_error = message;
        if (code == Errc::absent) return camera_state(cam, "offline", {"offline"}, message);
        if (code == Errc::busy) return camera_state(cam, "error", {"camera-busy"}, message);
        if (code == Errc::timeout) {
            if (reads_files(cam.cfg)) return;
            return camera_state(cam, "unresponsive", {"unresponsive"}, message);
        }
        if (code == Errc::bad_frame) return camera_state(cam, "error", {"bad-frame"}, message);
        camera_state(cam, "error", {"camera-error"}, message);
    }

    void snapshot(const std::string& name, std::function<void(json)> done) {
        std::vector<std::string> names;
        std::vector<std::string> all;
        for (const auto& [n, c] : cams) all.push_back(n);
        if (name.empty()) names = all;
        else if (cams.count(name)) names.push_back(name);
        if (names.empty() || stopping) {
            const std::string message =
                stopping ? "the agent is stopping"
                : all.empty() ? "no camera is configured at this station (config cameras:)"
                              : fmt::format("no camera {} at this station (cameras: {})", name, fmt::join(all, ", "));
            done({{"status", "error"}, {"reason", stopping ? "camera_unavailable" : "unknown_camera"}, {"message", message}});
            return;
        }
        // Every camera answers once; the last answer completes the result.
        struct Gather {
            std::size_t remaining;
            json snapshots = json::array();
            std::function<void(json)> done;
        };
        auto g = std::make_shared<Gather>(Gather{names.size(), json::array(), std::move(done)});
        auto answer = [g](const json& one) {
            g->snapshots.push_back(one);
            if (--g->remaining) return;
            int taken = 0;
            for (const auto& s : g->snapshots) taken += s.contains("path") ? 1 : 0;
            json r{{"snapshots", g->snapshots}};
            if (taken) {
                r["status"] = "ok";
                r["message"] = fmt::format("{} of {} camera(s) took a picture", taken, g->snapshots.size());
            } else {
                r["status"] = "error";
                r["reason"] = "camera_unavailable";
                r["message"] = g->snapshots.size() == 1 ? g->snapshots[0].value("error", "no picture")
                                                        : "no camera took a picture (see snapshots)";
            }
            g->done(r);
        };
        for (const auto& n : names) {
            Cam& cam = cams.at(n);
            // A folder's (or sequence's) next image is a garment's photo: a snapshot would take
            // it from the job that waits for it.
            const bool files = reads_files(cam.cfg);
            const auto waiting =
                std::find_if(pending.begin(), pending.end(), [&](const auto& kv) { return kv.second.camera == n; });
            if (files && waiting != pending.end()) {
                answer({{"camera", n},
                        {"error", fmt::format("camera {} reads image files and its next image is the photo of job {}: "
                                              "try again when no job waits on it",
                                              n, waiting->first)}});
                continue;
            }
            cam.snaps.push_back(answer);
            next_for(cam);
        }
    }

    // Answers the snapshots still waiting (the agent stops).
    void abandon_snapshots() {
        for (auto& [n, cam] : cams) {
            auto waiters = std::move(cam.snaps);
            cam.snaps.clear();
            for (const auto& w : waiters) w({{"camera", n}, {"error", "the agent is stopping"}});
        }
    }

    void take_snapshot(Cam& cam) {
        cam.busy = true;
        auto waiters = std::move(cam.snaps);
        cam.snaps.clear();
        const fs::path dir = cfg.qa.evidence.dir / "_snapshots" / cam.cfg.name;
        asio::post(grabbers, [self = shared_from_this(), dev = cam.dev, name = cam.cfg.name, dir,
                             waiters = std::move(waiters)]() mutable {
            json one{{"camera", name}};
            drivers::Outcome<camera::Frame> f;
            try {
                f = dev->grab();
                if (f) {
                    std::error_code ec;
                    fs::create_directories(dir, ec);
                    const fs::path file = dir / fmt::format("{}.jpg", f.value.captured_ms);
                    pressline::image::Status st;
                    if (!ec) st = pressline::image::write(file, f.value.bgr, {.jpeg_quality = 95});
                    if (!ec && st) {
                        one["path"] = file.string();
                        one["width"] = f.value.bgr.cols;
                        one["height"] = f.value.bgr.rows;
                        one["captured_at"] = format_time(
                            std::chrono::system_clock::time_point(std::chrono::milliseconds(f.value.captured_ms)));
                    } else {
                        one["error"] = ec ? "cannot write " + file.string() + ": " + ec.message() : st.message;
                    }
                }
            } catch (const std::exception& e) {  // OpenCV, memory
                if (f) one["error"] = std::string("cannot write the picture: ") + e.what();
                else f.code = camera::Errc::io, f.message = e.what();
            }
            const std::string error = f.message.empty() ? f.code.message() : f.message;
            if (!f) one["error"] = error;
            asio::post(self->io, [self, name, ok = static_cast<bool>(f), code = f.code, error, one,
                                  waiters = std::move(waiters)] {
                Cam& c = self->cams.at(name);
                c.busy = false;
                self->camera_result(c, ok, code, error);
                for (const auto& w : waiters) w(one);
                self->next_for(c);
            });
        });
    }

    void done(const std::string& job_id, const std::string& cam_name, const Outcome& o) {
        Cam& cam = cams.at(cam_name);
        if (o.grabbed) {
            cam.busy = false;
            camera_result(cam, o.captured, o.code, o.error);
        }
        auto next = [this, &cam] { next_for(cam); };
        auto it = pending.find(job_id);
        if (stopping || it == pending.end()) return next();
        Pending& p = it->second;
        p.running = false;
        auto log = logger("qa");
        if (!o.captured) {
            p.last_error = o.error;
            const auto elapsed = wall_ms() - p.capture_started_ms;
            if (elapsed < std::int64_t{cfg.qa.capture_timeout_s} * 1000) {
                if (p.grabs == 1 || p.grabs % 10 == 0)
                    log->warn("no capture yet job_id={} camera={} tries={}: {}; trying again", job_id, cam_name, p.grabs, o.error);
                // The camera stays with this job: garments reach an inline camera in the order
                // they were printed, so the next photo is this one's (never another job's). A
                // snapshot may use it between the tries.
                cam.held_for = job_id;
                p.running = true;
                arm(p, 200, [self = shared_from_this(), job_id, cam_name] {
                    auto pit = self->pending.find(job_id);
                    Cam& c = self->cams.at(cam_name);
                    c.held_for.clear();
                    if (self->stopping || pit == self->pending.end()) return self->next_for(c);
                    Pending& q = pit->second;
                    q.running = false;
                    if (c.busy) {  // a snapshot: this job is next
                        q.queued = true;
                        c.waiting.insert(c.waiting.begin(), job_id);
                        return;
                    }
                    self->run(c, q);
                });
                return next();
            } else {
                log->warn("no capture job_id={} camera={} after {} s ({} tries): {}", job_id, cam_name,
                          elapsed / 1000, p.grabs, o.error);
                decide_auto(p, o);
            }
            return next();
        }
        decide_auto(p, o);
        next();
    }

    // Commits the outcome of an inspection (or of no capture) with its events.
    void decide_auto(Pending& p, const Outcome& o) {
        const std::string job_id = p.job_id;
        auto log = logger("qa");
        bool requeued = false, ready = false, pause = false;
        std::string device = p.device, summary;
        const bool committed = commit("qa outcome", job_id, [&](Tx& tx) {
            requeued = ready = pause = false;
            auto job = tx.job(job_id);
            if (!job || job->state != JobState::inspecting) return;
            QaRow r = tx.qa(job_id, p.attempt).value_or(QaRow{});
            r.job_id = job_id;
            r.attempt = p.attempt;
            r.device = p.device;
            r.camera = p.camera;
            if (!r.printed_ms) r.printed_ms = p.printed_ms;
            r.evidence_dir = o.evidence_dir;
            r.decided_by = "inspector";
            r.decided_ms = tx.now_ms();
            r.source = "auto";
            if (!o.captured) {
                r.state = "inspected";
                r.verdict = "fail";
                r.reason = "no_capture";
                r.metrics = json{{"capture_error", o.error}, {"capture_tries", p.grabs},
                                 {"capture_timeout_s", cfg.qa.capture_timeout_s}}.dump();
                tx.put_qa(r);
                json d = qa_data(*job, r);
                d["message"] = fmt::format("no picture from camera {} within {} s: {}", p.camera,
                                           cfg.qa.capture_timeout_s, o.error);
                tx.transition(job_id, JobState::qa_failed, "no_capture", {"qa.failed", job_id, d});
                requeued = after_failure(tx, job_id, cfg, r);
                summary = "failed no_capture";
                return;
            }
            if (o.problem) {
                r.metrics = json{{"problem", {{"reason", o.problem->reason}, {"field", o.problem->field},
                                              {"message", o.problem->message}}}}.dump();
                const std::string reason = o.problem->reason == "bad_calibration" ? "qa_bad_calibration" : "qa_inspect_problem";
                hold(tx, *job, r, reason, o.problem->message, "");
                summary = "held " + reason;
                return;
            }
            const qa::Verdict& v = *o.verdict;
            json m = v.metrics;
            if (!o.origin.empty()) m["capture_origin"] = o.origin;
            m["inspector_reason"] = v.reason;
            m["inspector_verdict"] = v.pass ? "pass" : "fail";
            json defects = json::array();
            for (const auto& d : v.defects)
                defects.push_back({{"kind", d.kind}, {"bbox_mm", {d.bbox_mm.x, d.bbox_mm.y, d.bbox_mm.width, d.bbox_mm.height}},
                                   {"area_mm2", d.area_mm2}, {"mean_de00", d.mean_de00}, {"max_de00", d.max_de00}});
            if (!defects.empty()) m["defects"] = defects;
            r.metrics = m.dump();
            r.confidence = v.confidence;
            const std::string streak_key = "qa_fail_streak:" + p.device;
            if (v.confidence < cfg.qa.tolerances.low_confidence) {
                hold(tx, *job, r, "low_confidence",
                     fmt::format("the inspector is not sure (confidence {:.2f} < {:.2f}); it would say {} ({})",
                                 v.confidence, cfg.qa.tolerances.low_confidence, v.pass ? "pass" : "fail", v.reason),
                     v.pass ? "pass" : "fail");
                summary = "held low_confidence";
                return;
            }
            if (v.pass) {
                tx.set_meta(streak_key, "0");
                std::uniform_real_distribution<double> u(0.0, 1.0);
                if (cfg.qa.spot_check_share > 0 && u(rng) < cfg.qa.spot_check_share) {
                    hold(tx, *job, r, "spot_check", "a random spot check: a person confirms the pass", "pass");
                    summary = "held spot_check";
                    return;
                }
                r.state = "inspected";
                r.verdict = "pass";
                r.reason = "ok";
                tx.put_qa(r);
                tx.transition(job_id, JobState::qa_passed, "", {"qa.passed", job_id, qa_data(*job, r)});
                auto now = tx.job(job_id);
                ready_to_ship(tx, *now, cfg);
                ready = true;
                summary = "passed";
                return;
            }
            r.state = "inspected";
            r.verdict = "fail";
            r.reason = v.reason.empty() ? "missing_ink" : v.reason;
            tx.put_qa(r);
            json d = qa_data(*job, r);
            d["defects"] = defects;
            tx.transition(job_id, JobState::qa_failed, r.reason, {"qa.failed", job_id, d});
            // Consecutive failures on this printer (no_capture does not count: it says nothing
            // about the printer).
            const int streak = std::stoi(tx.meta(streak_key).value_or("0")) + 1;
            const int limit = cfg.qa.pause_after_consecutive_failures;
            if (limit > 0 && streak >= limit) {
                pause = true;
                tx.set_meta(streak_key, "0");
                tx.set_meta("paused:" + p.device, "1");
                tx.set_meta("pause_reason:" + p.device, "qa-failures");
            } else {
                tx.set_meta(streak_key, std::to_string(streak));
            }
            requeued = after_failure(tx, job_id, cfg, r);
            summary = "failed " + r.reason;
        });
        if (!committed) {
            // Not recorded, nothing happened: record the same outcome later (never a new,
            // unchecked photo in its place).
            p.running = true;  // nothing else starts for it meanwhile
            arm(p, 5000, [self = shared_from_this(), job_id, o] {
                auto it = self->pending.find(job_id);
                if (self->stopping || it == self->pending.end()) return;
                it->second.running = false;
                self->decide_auto(it->second, o);
            });
            return;
        }
        log->info("QA job_id={} attempt={} device={} camera={}: {}", job_id, p.attempt, p.device, p.camera,
                  summary.empty() ? "nothing to do (the job moved on)" : summary);
        pending.erase(job_id);
        // No garment waits for QA: the inspector's scratch memory goes back (an idle agent stays
        // small); a busy station keeps it between garments.
        if (pending.empty()) asio::post(workers, [] { qa::release_scratch_memory(); });
        prune_evidence();
        if (pause) {
            log->warn("printer {} paused after {} consecutive QA failures (qa-failures); resume_device resumes it",
                      device, cfg.qa.pause_after_consecutive_failures);
            if (hooks.pause_device) hooks.pause_device(device);
        }
        if (ready && hooks.paperwork_changed) hooks.paperwork_changed();
        if (requeued && hooks.requeued) hooks.requeued(job_id);
    }

    // Evidence retention (on the pool): older than max_age_days, then oldest first while the
    // total is above max_total_mb. One folder per inspection: {dir}/{job_id}/{attempt}.
    void prune_evidence() {
        auto self = shared_from_this();
        asio::post(workers, [self] {
            std::unique_lock lock(self->prune_mu, std::try_to_lock);
            if (!lock) return;
            const fs::path root = self->cfg.qa.evidence.dir;
            std::error_code ec;
            if (root.empty() || !fs::is_directory(root, ec)) return;
            // Items: an inspection's folder {job}/{attempt}, or one picture of _snapshots/{camera}/
            // or _unmatched/{camera}/.
            struct Item { fs::file_time_type t; fs::path p; std::uintmax_t bytes; bool inspection; };
            std::vector<Item> items;
            std::uintmax_t total = 0;
            for (const auto& job : fs::directory_iterator(root, ec)) {
                if (!job.is_directory(ec)) continue;
                const bool pictures = job.path().filename().string().starts_with("_");
                for (const auto& att : fs::directory_iterator(job.path(), ec)) {
                    if (!att.is_directory(ec)) continue;
                    if (pictures) {
                        for (const auto& f : fs::directory_iterator(att.path(), ec))
                            if (f.is_regular_file(ec)) {
                                items.push_back({f.last_write_time(ec), f.path(), f.file_size(ec), false});
                                total += items.back().bytes;
                            }
                        continue;
                    }
                    std::uintmax_t bytes = 0;
                    for (const auto& f : fs::directory_iterator(att.path(), ec))
                        if (f.is_regular_file(ec)) bytes += f.file_size(ec);
                    items.push_back({fs::last_write_time(att.path(), ec), att.path(), bytes, true});
                    total += bytes;
                }
            }
            std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.t < b.t; });
            const auto max_age = std::chrono::hours(24) * self->cfg.qa.evidence.max_age_days;
            const auto now = fs::file_time_type::clock::now();
            const std::uintmax_t max_total = static_cast<std::uintmax_t>(self->cfg.qa.evidence.max_total_mb) * 1024 * 1024;
            int removed = 0;
            // The newest inspection is always kept (its events point at it).
            if (auto newest = std::find_if(items.rbegin(), items.rend(), [](const Item& i) { return i.inspection; });
                newest != items.rend())
                items.erase(std::next(newest).base());
            for (const auto& it : items) {
                if (now - it.t <= max_age && total <= max_total) break;
                fs::remove_all(it.p, ec);
                total -= it.bytes;
                ++removed;
                if (fs::is_empty(it.p.parent_path(), ec)) fs::remove(it.p.parent_path(), ec);
            }
            if (removed) logger("qa")->info("evidence pruned folders={} total_mb={}", removed, total / (1024 * 1024));
        });
    }

    json trigger(const std::string& job_id, const std::string& printer) {
        json r;
        auto error = [&](const std::string& reason, const std::string& message) {
            r = {{"status", "error"}, {"reason", reason}, {"message", message}};
            return r;
        };
        Pending* found = nullptr;
        if (!job_id.empty()) {
            auto it = pending.find(job_id);
            if (it == pending.end()) {
                auto row = journal.job(job_id);
                if (!row) return error("unknown_job", "no job " + job_id + " at this station");
                return error("not_inspecting", "job " + job_id + " is " + std::string(to_string(row->state)) +
                                                   "; only a job waiting for its QA photo (inspecting) can be triggered");
            }
            found = &it->second;
        } else {
            for (auto& [id, p] : pending)
                if ((printer.empty() || p.device == printer) && !p.running &&
                    (!found || p.printed_ms < found->printed_ms))
                    found = &p;
            if (!found)
                return error("nothing_to_inspect", printer.empty() ? "no job waits for its QA photo"
                                                                    : "no job printed on " + printer + " waits for its QA photo");
        }
        if (found->running || found->queued) {
            r = {{"status", "ok"}, {"job_id", found->job_id}, {"message", "the photo of " + found->job_id + " is being taken"}};
            return r;
        }
        found->timer->cancel();
        found->triggered = true;        // a ticket deadline already due does not fail it now
        found->capture_started_ms = 0;  // the timeout counts from the trigger
        const std::string id = found->job_id;
        asio::post(io, [self = shared_from_this(), id] { self->capture(id); });
        r = {{"status", "ok"}, {"job_id", id}, {"attempt", found->attempt}, {"device", found->device},
             {"camera", found->camera}, {"message", "capturing " + id + " now"}};
        return r;
    }
};

QaFlow::QaFlow(asio::io_context& io, asio::thread_pool& workers, Journal& journal, const config::Config& cfg,
               QaHooks hooks)
    : grabbers_(std::make_unique<asio::thread_pool>(std::max<std::size_t>(1, cfg.cameras.size()))),
      impl_(std::make_shared<Impl>(io, workers, *grabbers_, journal, cfg, std::move(hooks))) {}

QaFlow::~QaFlow() {
    stop();
    grabbers_->stop();  // grabs not started are dropped; one under way ends within read_timeout_ms
    grabbers_->join();
}

void QaFlow::start() { impl_->start(); }

void QaFlow::stop() {
    impl_->stopping = true;
    for (auto& [id, p] : impl_->pending)
        if (p.timer) p.timer->cancel();
    for (auto& [name, c] : impl_->cams)
        if (c.scan_timer) c.scan_timer->cancel();
    impl_->abandon_snapshots();
}

void QaFlow::snapshot(const std::string& camera, std::function<void(json)> done) {
    impl_->snapshot(camera, std::move(done));
}

void QaFlow::printed(const std::string& job_id) {
    if (impl_->stopping) return;
    if (auto row = impl_->journal.job(job_id); row && row->state == JobState::inspecting) impl_->take_up(*row);
}

void QaFlow::job_changed(const std::string& job_id) {
    auto it = impl_->pending.find(job_id);
    if (it == impl_->pending.end()) return;
    auto row = impl_->journal.job(job_id);
    if (row && row->state == JobState::inspecting) return;
    if (it->second.running) return;  // its outcome finds the job moved on
    if (it->second.timer) it->second.timer->cancel();
    impl_->pending.erase(it);
}

json QaFlow::trigger(const std::string& job_id, const std::string& printer) {
    return impl_->trigger(job_id, printer);
}

json QaFlow::status() const {
    json j = json::array();
    for (const auto& [id, p] : impl_->pending)
        j.push_back({{"job_id", id}, {"attempt", p.attempt}, {"device", p.device}, {"camera", p.camera},
                     {"capturing", p.running}});
    return j;
}

}  // namespace pressline::agent
