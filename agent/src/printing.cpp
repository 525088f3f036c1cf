// The print pipeline (see printing.hpp and docs/design.md "Printing").
#include "pressline/agent/printing.hpp"

#include <malloc.h>

#include <csignal>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>

#include "pressline/agent/clock.hpp"
#include "pressline/agent/log.hpp"
#include "pressline/agent/paperwork.hpp"
#include "pressline/agent/qa.hpp"
#include "pressline/agent/scheduler.hpp"
#include "pressline/assets/assets.hpp"
#include "pressline/devices/dtg.hpp"
#include "pressline/devices/render.hpp"

namespace pressline::agent {

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace dtg = devices::dtg;
namespace render = devices::render;
using json = nlohmann::json;

namespace {

std::string mime_of(const std::string& format) {
    if (format == "jpeg") return "image/jpeg";
    if (format == "pdf") return "application/pdf";
    return "image/png";
}

render::PrintFormat format_of(const std::string& format) {
    if (format == "jpeg") return render::PrintFormat::jpeg;
    if (format == "pdf") return render::PrintFormat::pdf;
    return render::PrintFormat::png;
}

// What the pipeline needs of a job order (the payload is schema-valid, defaults applied).
struct JobInfo {
    std::string job_id, order_id;
    sched::Job sched;
    std::string color_name;
    std::array<int, 3> srgb{};
    render::Placement placement;
    std::string uri, sha256;
    json print_options;
    int attempt = 1;
};

std::optional<JobInfo> job_info(const JobRow& row, const config::Config& cfg, std::string& problem) {
    const json j = json::parse(row.payload, nullptr, false);
    if (!j.is_object()) {
        problem = "stored payload is not readable";
        return std::nullopt;
    }
    JobInfo info;
    info.job_id = row.job_id;
    info.order_id = row.order_id;
    info.attempt = std::max(1, row.attempt);
    auto& s = info.sched;
    s.job_id = row.job_id;
    s.priority = sched::priority_from_string(row.priority).value_or(sched::Priority::standard);
    if (auto due = j.value("due_by", std::string()); !due.empty()) s.due_ms = parse_time_ms(due);
    s.arrival_ms = row.received_ms;
    // A reprint (a new garment of a job already in hand: QA failed, or a reprint command) goes
    // ahead of normal work (docs/design.md "Visual QA flow").
    if (info.attempt > 1) s.priority = sched::Priority::express;
    const json& product = j.value("product", json::object());
    const json& print = j.value("print", json::object());
    s.platen = print.value("platen", "");
    s.method = print.value("method", "dtg");
    if (product.contains("garment_srgb")) {
        const auto& a = product["garment_srgb"];
        for (std::size_t i = 0; i < 3 && i < a.size(); ++i) info.srgb[i] = a[i].get<int>();
        info.color_name = product.value("garment_color", "");
        s.color_class = config::color_class_of(info.srgb);
    }
    if (auto name = product.value("garment_color", std::string()); !name.empty()) {
        info.color_name = name;
        auto it = cfg.garment_colors.find(name);
        if (it == cfg.garment_colors.end() && !product.contains("garment_srgb")) {
            problem = fmt::format("product.garment_color '{}' is not in the station's colour table", name);
            return std::nullopt;
        }
        if (it != cfg.garment_colors.end()) {
            if (!product.contains("garment_srgb")) info.srgb = it->second.srgb;
            s.color_class = it->second.color_class;
        }
    }
    const json& placement = print.value("placement", json::object());
    info.placement.width_mm = placement.value("width_mm", 0.0);
    info.placement.offset_x_mm = placement.value("offset_x_mm", 0.0);
    info.placement.offset_y_mm = placement.value("offset_y_mm", 0.0);
    const json& art = print.value("artwork", json::object());
    info.uri = art.value("uri", "");
    info.sha256 = art.value("sha256", "");
    info.print_options = print.value("options", json::object());
    s.setup_key = fmt::format("{}/{}/{}{}", s.color_class, s.platen,
                              info.print_options.value("white_underbase", s.color_class == "dark") ? "wb" : "nowb",
                              info.print_options.value("highlight_white", false) ? "+hw" : "");
    return info;
}

struct QueueEntry {
    JobInfo info;
    std::int64_t not_before_ms = 0;  // retry backoff
};

// A try in flight on a printer.
struct InFlight {
    std::string job_id, order_id;
    int attempt = 0, try_no = 0;
    std::string stage;        // recorded, created, handed_over
    std::string device_job;
    dtg::HandOff handoff;
    bool held = false;        // the job was held while this try is still followed
    int poll_ms = 0;
    std::int64_t offline_since_ms = 0;  // the printer is offline while this try waits
    std::int64_t waiting_since_ms = 0;  // the device has it but has not started it
};

}  // namespace

struct PrintFlow::Impl : std::enable_shared_from_this<PrintFlow::Impl> {
    struct Device {
        config::DtgPrinter cfg;
        std::shared_ptr<dtg::Printer> dev;
        sched::Printer caps;
        std::unique_ptr<asio::steady_timer> timer;
        dtg::Status status;          // last known
        bool status_known = false;
        bool op_running = false;     // a blocking call is on the pool
        bool paused = false;         // pause_device
        std::string pause_reason;    // e.g. qa-failures; empty for pause_device
        bool reconciled = false;
        int idle_poll_ms = 0;        // backoff while waiting for the printer to become ready
        // After a try was withdrawn because the printer was unreachable, CUPS reports the
        // printer idle again without knowing more: nothing is released to it until then.
        std::int64_t quarantine_until_ms = 0;
        std::optional<InFlight> flight;
    };

    asio::io_context& io;
    asio::thread_pool& workers;    // rendering (CPU-heavy)
    asio::thread_pool& device_io;  // printer calls: never queued behind a burst of renders
    Journal& journal;
    config::Config cfg;
    PrintingHooks hooks;
    std::unique_ptr<assets::Store> store;
    std::map<std::string, Device> devices;
    std::map<std::string, QueueEntry> queue;   // job_id -> entry (queued, files ready)
    std::set<std::string> preparing;           // jobs waiting for or in preparation
    // Preparation waits here and runs at most kParallelPrepares at a time, most urgent first
    // (the scheduler's order): an express job arriving behind a burst of renders goes next.
    struct PrepTask {
        JobInfo info;
        JobState from;
        std::vector<std::pair<int, std::string>> targets;  // (dpi, format) per print file
        std::vector<fs::path> files;
        render::Platen platen;
    };
    std::vector<PrepTask> to_prepare;
    int preparing_now = 0;
    static constexpr int kParallelPrepares = 2;
    sched::Policy policy;
    asio::steady_timer retry_timer;
    bool draining = false;
    bool stopping = false;
    bool started = false;
    int reconciling = 0;

    Impl(asio::io_context& io_, asio::thread_pool& w, asio::thread_pool& dio, Journal& j,
         const config::Config& c, PrintingHooks h)
        : io(io_), workers(w), device_io(dio), journal(j), cfg(c), hooks(std::move(h)), retry_timer(io_) {
        assets::FetchPolicy fp;
        fp.allowed_hosts = cfg.assets.allowed_hosts;
        fp.allow_private_addresses = cfg.assets.allow_private_addresses;
        fp.file_root = cfg.assets.file_root;
        fp.ca_file = cfg.assets.ca_file;
        fp.max_bytes = cfg.assets.max_mb * 1024 * 1024;
        fp.max_pixels = cfg.assets.max_megapixels * 1'000'000;
        fp.connect_timeout = std::chrono::seconds(cfg.assets.connect_timeout_s);
        fp.total_timeout = std::chrono::seconds(cfg.assets.timeout_s);
        store = std::make_unique<assets::Store>(cfg.assets.cache_dir, cfg.assets.cache_max_mb * 1024 * 1024, fp);
        policy.aging_ms = std::int64_t{cfg.scheduler.aging_minutes} * 60'000;
        policy.batch_window_ms = std::int64_t{cfg.scheduler.batch_window_minutes} * 60'000;
        policy.batch_max = cfg.scheduler.batch_max;
        policy.batch_max_wait_ms = std::int64_t{cfg.scheduler.batch_max_wait_s} * 1000;
        for (const auto& p : cfg.dtg_printers) {
            Device d;
            d.cfg = p;
            if (p.driver == "hotfolder")
                d.dev = dtg::make_hotfolder_printer(
                    p.name, {p.hot_folder, p.done_folder, p.error_folder, p.result_folder, p.completion,
                             p.rip_timeout_s, p.format == "jpeg" ? "jpg" : p.format,
                             cfg.storage.state_dir / "hotfolder" / p.name});
            else
                d.dev = dtg::make_cups_printer(p.name, {p.server, p.queue});
            d.caps.name = p.name;
            d.caps.platens = {p.platens.begin(), p.platens.end()};
            d.caps.color_classes = {p.garment_classes.begin(), p.garment_classes.end()};
            d.caps.methods = {p.methods.begin(), p.methods.end()};
            d.timer = std::make_unique<asio::steady_timer>(io);
            d.paused = journal.meta("paused:" + p.name).value_or("0") == "1";
            if (d.paused) d.pause_reason = journal.meta("pause_reason:" + p.name).value_or("");
            devices.emplace(p.name, std::move(d));
        }
        draining = journal.meta("draining").value_or("0") == "1";
    }

    fs::path work_dir(const std::string& job_id) const {
        return cfg.storage.state_dir / "work" / job_id;
    }
    fs::path print_file(const std::string& job_id, const config::DtgPrinter& p) const {
        return work_dir(job_id) / fmt::format("print-{}dpi.{}", p.dpi, p.format == "jpeg" ? "jpg" : p.format);
    }

    // ---- journal helpers -------------------------------------------------------------------
    // Runs one internal transaction; false (logged) when it could not commit.
    bool commit(const char* what, const std::string& job_id, const std::function<void(Tx&)>& fn) {
        try {
            journal.transact(Admission::internal, fn);
            if (hooks.events_appended) hooks.events_appended();
            return true;
        } catch (const std::exception& e) {
            logger("printing")->error("journal: cannot record {} job_id={}: {}", what, job_id, e.what());
            return false;
        }
    }

    void fail_job(const std::string& job_id, const std::string& reason, const std::string& message) {
        logger("printing")->warn("job failed job_id={} reason={} message=\"{}\"", job_id, reason, message);
        commit("job.failed", job_id, [&](Tx& tx) {
            auto row = tx.job(job_id);
            if (!row || is_terminal(row->state)) return;
            tx.transition(job_id, JobState::failed, reason,
                          {"job.failed", job_id,
                           {{"order_id", row->order_id}, {"reason", reason}, {"message", message},
                            {"attempt", std::max(1, row->attempt)}}});
        });
    }

    // ---- start-up ----------------------------------------------------------------------------
    void start() {
        started = true;
        if (devices.empty()) {
            // A station without printers (intake only, or not set up yet) keeps every job
            // accepted and durable; nothing is fetched or failed.
            logger("printing")->warn("no dtg_printers configured: jobs are accepted and kept, nothing is printed");
            return;
        }
        for (auto& [name, d] : devices) publish_device(d);
        // Unsettled tries first: nothing is released to a printer before its tries are known.
        for (const auto& t : journal.open_tries()) {
            auto it = devices.find(t.device);
            if (it == devices.end()) {
                hold_uncertain(t, fmt::format("device {} is no longer configured", t.device));
                continue;
            }
            ++reconciling;
            reconcile(it->second, t);
        }
        for (auto state : {JobState::accepted, JobState::preparing, JobState::queued})
            for (const auto& row : journal.jobs_in_state(state)) take_up(row);
        for (auto& [name, d] : devices) pump(d);
    }

    void hold_uncertain(const TryRow& t, const std::string& why) {
        commit("job.held", t.job_id, [&](Tx& tx) {
            tx.update_try(t.job_id, t.attempt, t.try_no, "uncertain");
            auto row = tx.job(t.job_id);
            if (!row || row->state == JobState::held || is_terminal(row->state)) return;
            tx.transition(t.job_id, JobState::held, "print_outcome_uncertain",
                          {"job.held", t.job_id,
                           {{"order_id", row->order_id}, {"attempt", t.attempt}, {"try", t.try_no},
                            {"device", t.device}, {"reason", "print_outcome_uncertain"}, {"message", why}}});
        });
    }

    // Looks an unsettled try up on its device (by name) and decides (docs/design.md).
    void reconcile(Device& d, const TryRow& t) {
        auto self = shared_from_this();
        const std::string name = handoff_name(t.job_id, t.attempt, t.try_no);
        d.op_running = true;
        asio::post(device_io, [self, &d, t, name] {
            auto found = d.dev->find(name);
            asio::post(self->io, [self, &d, t, name, found = std::move(found)] {
                d.op_running = false;
                --self->reconciling;
                self->settle_reconciled(d, t, found);
                self->pump_all();
            });
        });
    }

    void settle_reconciled(Device& d, const TryRow& t, const dtg::Result<dtg::HandOffStatus>& found) {
        auto log = logger("printing");
        if (!found) {
            // The device cannot tell us now: keep the try and ask again when it answers.
            log->warn("reconcile: device {} cannot be asked about {} ({}); holding the job", d.cfg.name,
                      handoff_name(t.job_id, t.attempt, t.try_no), found.error->message);
            hold_uncertain(t, "device unreachable at start-up: " + found.error->message);
            return;
        }
        const auto& st = *found.value;
        log->info("reconcile job_id={} attempt={} try={} device={} journal={} device_says={}", t.job_id,
                  t.attempt, t.try_no, d.cfg.name, t.state, dtg::to_string(st.phase));
        auto row = journal.job(t.job_id);
        if (!row) return;
        InFlight f;
        f.job_id = t.job_id;
        f.order_id = row->order_id;
        f.attempt = t.attempt;
        f.try_no = t.try_no;
        f.device_job = st.device_job.empty() ? t.device_job : st.device_job;
        f.held = row->state == JobState::held;
        f.poll_ms = cfg.printing.poll_min_ms;
        switch (st.phase) {
            case dtg::Phase::absent:
                if (t.state == "recorded") {
                    // Never handed over: hand it over now (same try, same name).
                    std::string problem;
                    auto info = job_info(*row, cfg, problem);
                    if (!info) return fail_job(t.job_id, "invalid_job", problem);
                    f.stage = "recorded";
                    f.handoff = make_handoff(d, *info, t.try_no);
                    d.flight = std::move(f);
                } else {
                    hold_uncertain(t, fmt::format("the try was {} but device {} does not know {}", t.state,
                                                  d.cfg.name, handoff_name(t.job_id, t.attempt, t.try_no)));
                }
                return;
            case dtg::Phase::incomplete:
                // Created, document never arrived: withdraw it, then a new try.
                f.stage = "created";
                d.flight = std::move(f);
                withdraw_incomplete(d);
                return;
            default:
                f.stage = "handed_over";
                d.flight = std::move(f);
                commit("try", t.job_id, [&](Tx& tx) {
                    tx.update_try(t.job_id, t.attempt, t.try_no, "handed_over", d.flight->device_job);
                });
                on_followed(d, st);
                return;
        }
    }

    // Puts a job from the journal where it belongs.
    void take_up(const JobRow& row) {
        if (devices.empty() || preparing.count(row.job_id) || queue.count(row.job_id)) return;
        for (auto& [n, d] : devices)
            if (d.flight && d.flight->job_id == row.job_id) return;
        std::string problem;
        auto info = job_info(row, cfg, problem);
        if (!info) return fail_job(row.job_id, "invalid_job", problem);
        if (row.state == JobState::accepted || row.state == JobState::preparing || row.state == JobState::queued)
            prepare(*info, row.state);
    }

    // ---- preparing -----------------------------------------------------------------------------
    // The move accepted -> preparing is not committed on its own (it has no event and a
    // restart prepares accepted and preparing jobs alike): it is journalled together with
    // preparing -> queued, which saves one fsync per job.
    void prepare(const JobInfo& info, JobState from) {
        // Which printers could take it, and the files they need.
        std::vector<const config::DtgPrinter*> capable;
        for (const auto& [n, d] : devices)
            if (sched::capable(d.caps, info.sched)) capable.push_back(&d.cfg);
        if (capable.empty()) {
            std::vector<std::string> why;
            for (const auto& [n, d] : devices) why.push_back(n + ": " + sched::missing_capability(d.caps, info.sched));
            return fail_job(info.job_id, "no_capable_printer",
                            devices.empty() ? "no DTG printer is configured at this station"
                                            : fmt::format("no printer here can print it ({})", fmt::join(why, "; ")));
        }
        const config::Platen* platen = cfg.platen(info.sched.platen);
        if (!platen) return fail_job(info.job_id, "unknown_platen", "platen " + info.sched.platen + " is not configured");
        preparing.insert(info.job_id);
        PrepTask task{info, from, {}, {}, render::Platen{platen->name, platen->width_mm, platen->height_mm}};
        for (const auto* p : capable) {
            const fs::path file = print_file(info.job_id, *p);
            if (std::find(task.files.begin(), task.files.end(), file) != task.files.end()) continue;
            task.targets.emplace_back(p->dpi, p->format);
            task.files.push_back(file);
        }
        to_prepare.push_back(std::move(task));
        start_prepares();
    }

    void start_prepares() {
        while (!stopping && preparing_now < kParallelPrepares && !to_prepare.empty()) {
            const auto now = wall_ms();
            auto best = to_prepare.begin();
            for (auto it = to_prepare.begin(); it != to_prepare.end(); ++it)
                if (sched::before(it->info.sched, best->info.sched, policy, now)) best = it;
            PrepTask task = std::move(*best);
            to_prepare.erase(best);
            if (auto row = journal.job(task.info.job_id); !row || is_terminal(row->state)) {
                preparing.erase(task.info.job_id);  // cancelled while it waited
                continue;
            }
            ++preparing_now;
            run_prepare(std::move(task));
        }
    }

    void run_prepare(PrepTask task) {
        auto self = shared_from_this();
        const fs::path dir = work_dir(task.info.job_id);
        asio::post(workers, [self, task = std::move(task), dir] {
            const auto& info = task.info;
            const auto& rp = task.platen;
            const auto from = task.from;
            struct Target { int dpi; std::string format; fs::path file; };
            std::vector<Target> targets;
            for (std::size_t i = 0; i < task.files.size(); ++i)
                targets.push_back({task.targets[i].first, task.targets[i].second, task.files[i]});
            std::string reason, message;
            const auto t0 = std::chrono::steady_clock::now();
            bool cached = true;
            for (const auto& t : targets) cached = cached && fs::exists(t.file.string() + ".json");
            if (!cached) {
                auto got = self->store->get(info.uri, info.sha256);
                if (auto* p = std::get_if<assets::Problem>(&got)) {
                    reason = p->reason;
                    message = p->message;
                } else {
                    const auto& asset = std::get<assets::Asset>(got);
                    cv::Mat art;
                    auto decoded = assets::decode_image(asset.path, self->cfg.assets.max_megapixels * 1'000'000);
                    if (auto* dp = std::get_if<assets::Problem>(&decoded)) {
                        reason = dp->reason;
                        message = dp->message;
                    } else {
                        art = std::move(std::get<cv::Mat>(decoded));
                    }
                    std::error_code ec;
                    fs::create_directories(dir, ec);
                    render::PrintFileMeta meta{info.job_id, 0, "sRGB IEC61966-2.1", info.color_name,
                                               {static_cast<std::uint8_t>(info.srgb[0]),
                                                static_cast<std::uint8_t>(info.srgb[1]),
                                                static_cast<std::uint8_t>(info.srgb[2])}};
                    bool reference_written = false;
                    for (const auto& t : targets) {
                        if (!reason.empty() || art.empty()) break;
                        auto ref = render::make_reference(art, rp, info.placement, t.dpi);
                        if (auto* rp_problem = std::get_if<render::Problem>(&ref)) {
                            reason = rp_problem->reason;
                            message = rp_problem->message;
                            break;
                        }
                        const auto& r = std::get<render::Reference>(ref);
                        meta.dpi = r.dpi;
                        if (!reference_written) {
                            if (auto w = render::write_reference(dir, r, meta); std::holds_alternative<render::Problem>(w)) {
                                reason = std::get<render::Problem>(w).reason;
                                message = std::get<render::Problem>(w).message;
                                break;
                            }
                            reference_written = true;
                        }
                        auto w = render::write_print_file(t.file, format_of(t.format), r, meta);
                        if (auto* wp = std::get_if<render::Problem>(&w)) {
                            reason = wp->reason;
                            message = wp->message;
                        }
                    }
                }
            }
            // A platen-sized render takes a few hundred MB; give it back to the system rather
            // than keep it in malloc's arenas while the station idles.
            ::malloc_trim(0);
            const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
            asio::post(self->io, [self, info, reason, message, ms, from] {
                self->preparing.erase(info.job_id);
                --self->preparing_now;
                if (self->stopping) return;
                self->start_prepares();
                if (!reason.empty()) return self->fail_job(info.job_id, reason, message);
                self->prepared(info, ms, from);
            });
        });
    }

    void prepared(const JobInfo& info, std::int64_t ms, JobState from) {
        bool still = false;
        std::vector<std::string> names;
        for (const auto& [n, d] : devices)
            if (sched::capable(d.caps, info.sched)) names.push_back(n);
        commit("job.queued", info.job_id, [&](Tx& tx) {
            auto row = tx.job(info.job_id);
            still = row && (row->state == JobState::accepted || row->state == JobState::preparing ||
                            row->state == JobState::queued);
            if (!still || row->state == JobState::queued) return;
            if (row->state == JobState::accepted) tx.transition(info.job_id, JobState::preparing, "", {});
            tx.start_attempt(info.job_id, info.attempt);
            tx.transition(info.job_id, JobState::queued, "",
                          {"job.queued", info.job_id,
                           {{"order_id", info.order_id}, {"attempt", info.attempt},
                            {"priority", sched::to_string(info.sched.priority)},
                            {"setup", info.sched.setup_key}, {"devices", names},
                            {"prepare_ms", ms}}});
        });
        if (!still) return;
        (void)from;
        logger("printing")->info("job queued job_id={} setup={} prepare_ms={}", info.job_id, info.sched.setup_key, ms);
        queue[info.job_id] = QueueEntry{info, 0};
        pump_all();
    }

    // ---- releasing -----------------------------------------------------------------------------
    static std::string handoff_name(const std::string& job_id, int attempt, int try_no) {
        return fmt::format("pressline:{}:{}:{}", job_id, attempt, try_no);
    }

    dtg::HandOff make_handoff(const Device& d, const JobInfo& info, int try_no) const {
        dtg::HandOff h;
        h.name = handoff_name(info.job_id, info.attempt, try_no);
        h.file = print_file(info.job_id, d.cfg);
        h.mime_type = mime_of(d.cfg.format);
        h.options = d.cfg.options;
        const std::string q = info.print_options.value("quality", "");
        if (q == "draft") h.options.emplace("print-quality", "3");
        else if (q == "high") h.options.emplace("print-quality", "5");
        else if (q == "standard") h.options.emplace("print-quality", "4");
        h.ticket = json{{"job_id", info.job_id}, {"order_id", info.order_id}, {"attempt", info.attempt},
                        {"try", try_no}, {"platen", info.sched.platen}, {"garment_color", info.color_name},
                        {"garment_srgb", info.srgb}, {"dpi", d.cfg.dpi}, {"options", info.print_options}}
                       .dump(2);
        return h;
    }

    void pump_all() {
        for (auto& [n, d] : devices) pump(d);
    }

    bool has_candidates(const Device& d, std::int64_t now) const {
        for (const auto& [id, e] : queue)
            if (e.not_before_ms <= now && sched::capable(d.caps, e.info.sched)) return true;
        return false;
    }

    // Moves a device one step: continue the try in hand, or release the next garment.
    void pump(Device& d) {
        if (stopping || !started || d.op_running || reconciling > 0) return;
        if (d.flight) {
            if (d.flight->stage == "recorded") return hand_over(d);
            if (d.flight->stage == "created") return send_document(d);
            return;  // handed over: the follow timer drives it
        }
        const auto now = wall_ms();
        if (draining || d.paused || !has_candidates(d, now)) {
            arm_retry_timer();
            return;
        }
        if (now < d.quarantine_until_ms) {
            auto self = shared_from_this();
            arm(d, static_cast<int>(d.quarantine_until_ms - now) + 5, [self, &d] { self->pump(d); });
            return;
        }
        // Ask the printer before releasing (the only request made while nothing is in flight,
        // and only when there is work for it).
        d.op_running = true;
        d.timer->cancel();
        auto self = shared_from_this();
        asio::post(device_io, [self, &d] {
            auto st = d.dev->status();
            asio::post(self->io, [self, &d, st = std::move(st)] {
                d.op_running = false;
                if (self->stopping) return;
                self->update_status(d, st);
                if (d.status_known && d.status.ready() && !d.flight) {
                    d.idle_poll_ms = 0;
                    self->release(d);
                } else {
                    // Not ready: look again later, backing off, only while there is work.
                    d.idle_poll_ms = std::min(self->cfg.printing.poll_max_ms * 2,
                                              std::max(self->cfg.printing.poll_min_ms * 4, d.idle_poll_ms * 2));
                    self->arm(d, d.idle_poll_ms, [self, &d] { self->pump(d); });
                }
            });
        });
    }

    void arm(Device& d, int ms, std::function<void()> fn) {
        d.timer->expires_after(std::chrono::milliseconds(ms));
        d.timer->async_wait([fn = std::move(fn)](const boost::system::error_code& ec) {
            if (!ec) fn();
        });
    }

    void arm_retry_timer() {
        std::int64_t next = 0;
        const auto now = wall_ms();
        for (const auto& [id, e] : queue)
            if (e.not_before_ms > now && (next == 0 || e.not_before_ms < next)) next = e.not_before_ms;
        if (next == 0) return;
        retry_timer.expires_after(std::chrono::milliseconds(next - now + 5));
        auto self = shared_from_this();
        retry_timer.async_wait([self](const boost::system::error_code& ec) {
            if (!ec) self->pump_all();
        });
    }

    void release(Device& d) {
        const auto now = wall_ms();
        std::vector<sched::Job> jobs;
        for (const auto& [id, e] : queue)
            if (e.not_before_ms <= now) jobs.push_back(e.info.sched);
        auto pick = sched::pick(jobs, d.caps, policy, now);
        if (!pick.job) return;
        const std::string job_id = pick.job->job_id;
        QueueEntry entry = queue.at(job_id);
        int try_no = 0;
        bool ok = false;
        commit("job.printing", job_id, [&](Tx& tx) {
            auto row = tx.job(job_id);
            ok = row && row->state == JobState::queued;
            if (!ok) return;
            try_no = tx.insert_try(job_id, entry.info.attempt, d.cfg.name);
            record_ticket(tx, job_id, entry.info.attempt, cfg);
            tx.transition(job_id, JobState::printing, "",
                          {"job.printing", job_id,
                           {{"order_id", entry.info.order_id}, {"attempt", entry.info.attempt},
                            {"try", try_no}, {"device", d.cfg.name},
                            {"device_job_name", handoff_name(job_id, entry.info.attempt, try_no)},
                            {"why", pick.why}}});
        });
        queue.erase(job_id);
        if (!ok) return pump(d);
        if (hooks.paperwork_changed) hooks.paperwork_changed();
        sched::released(d.caps, entry.info.sched, now);
        logger("printing")->info("released job_id={} attempt={} try={} device={} why=\"{}\"", job_id,
                                 entry.info.attempt, try_no, d.cfg.name, pick.why);
        InFlight f;
        f.job_id = job_id;
        f.order_id = entry.info.order_id;
        f.attempt = entry.info.attempt;
        f.try_no = try_no;
        f.stage = "recorded";
        f.handoff = make_handoff(d, entry.info, try_no);
        f.poll_ms = cfg.printing.poll_min_ms;
        d.flight = std::move(f);
        crash_point("try_recorded");
        hand_over(d);
    }

    void hand_over(Device& d) {
        d.op_running = true;
        auto self = shared_from_this();
        asio::post(device_io, [self, &d, h = d.flight->handoff] {
            auto created = d.dev->create(h);
            if (created) crash_point("job_created");
            asio::post(self->io, [self, &d, created = std::move(created)] {
                d.op_running = false;
                if (self->stopping) return;
                auto& f = *d.flight;
                if (!created) {
                    // Nothing printable reached the device (a job without its document never
                    // prints): the try failed provably.
                    dtg::HandOffStatus st;
                    st.phase = dtg::Phase::absent;
                    st.message = created.error->message;
                    if (created.error->code == "unreachable")
                        self->update_status(d, dtg::Result<dtg::Status>::fail(created.error->code, created.error->message));
                    return self->try_failed(d, st, "device_" + created.error->code, created.error->message);
                }
                f.device_job = *created.value;
                f.stage = "created";
                self->commit("try", f.job_id, [&](Tx& tx) {
                    tx.update_try(f.job_id, f.attempt, f.try_no, "created", f.device_job);
                });
                self->send_document(d);
            });
        });
    }

    void send_document(Device& d) {
        d.op_running = true;
        auto self = shared_from_this();
        asio::post(device_io, [self, &d, job = d.flight->device_job, h = d.flight->handoff] {
            auto sent = d.dev->send(job, h);
            if (sent) crash_point("document_sent");
            asio::post(self->io, [self, &d, sent = std::move(sent)] {
                d.op_running = false;
                if (self->stopping) return;
                auto& f = *d.flight;
                if (!sent)
                    logger("printing")->warn("sending {} to {} failed: {}; asking the device where it stands",
                                             f.handoff.name, d.cfg.name, sent.error->message);
                f.stage = "handed_over";
                self->commit("try", f.job_id, [&](Tx& tx) {
                    tx.update_try(f.job_id, f.attempt, f.try_no, "handed_over");
                });
                self->follow_later(d, self->cfg.printing.poll_min_ms);
            });
        });
    }

    // ---- following -----------------------------------------------------------------------------
    void follow_later(Device& d, int ms) {
        auto self = shared_from_this();
        arm(d, ms, [self, &d] { self->follow(d); });
    }

    void follow(Device& d) {
        if (stopping || !d.flight || d.op_running) return;
        d.op_running = true;
        auto self = shared_from_this();
        asio::post(device_io, [self, &d, job = d.flight->device_job] {
            auto st = d.dev->follow(job);
            auto ps = d.dev->status();
            if (st && st.value->phase == dtg::Phase::completed) crash_point("completion_seen");
            asio::post(self->io, [self, &d, st = std::move(st), ps = std::move(ps)] {
                d.op_running = false;
                if (self->stopping || !d.flight) return;
                self->update_status(d, ps);
                if (!st) {
                    // Unreachable: keep the try, ask again later.
                    d.flight->poll_ms = self->cfg.printing.poll_max_ms;
                    return self->follow_later(d, d.flight->poll_ms);
                }
                self->on_followed(d, *st.value);
            });
        });
    }

    void on_followed(Device& d, const dtg::HandOffStatus& st) {
        auto& f = *d.flight;
        switch (st.phase) {
            case dtg::Phase::completed: return printed(d, st);
            case dtg::Phase::cancelled:
            case dtg::Phase::failed:
                if (st.provably_unprinted())
                    return try_failed(d, st, st.phase == dtg::Phase::cancelled ? "device_cancelled" : "device_aborted",
                                      st.message);
                return hold_flight(d, "print_outcome_uncertain",
                                   fmt::format("the device ended the job {} after {} impression(s){}",
                                               dtg::to_string(st.phase), st.impressions,
                                               st.message.empty() ? "" : ": " + st.message), true);
            case dtg::Phase::absent:
                return hold_flight(d, "print_outcome_uncertain",
                                   "the device no longer knows " + f.handoff.name, true);
            case dtg::Phase::unconfirmed:
                return hold_flight(d, "print_outcome_uncertain",
                                   "CUPS reports " + f.handoff.name + " completed, but the printer lost "
                                   "its job history (it restarted mid-job?): check the garment", true);
            case dtg::Phase::incomplete:
                return withdraw_incomplete(d);
            default:
                break;
        }
        // Waiting or printing on a printer the spooler cannot reach: after printing.failover_after_s
        // withdraw it; if it never reached the printer (0 impressions) that is proof it did
        // not print, and the attempt gets a new try (on whichever printer is ready).
        if (d.status_known && d.status.state == dtg::State::offline && st.impressions <= 0) {
            const auto now = wall_ms();
            if (f.offline_since_ms == 0) f.offline_since_ms = now;
            if (now - f.offline_since_ms >= std::int64_t{cfg.printing.failover_after_s} * 1000)
                return withdraw_for_failover(d, "device_offline");
        } else {
            f.offline_since_ms = 0;
        }
        // Waiting in the spooler or the hot folder, not taken by the printer or RIP for too long
        // (a stopped queue, a RIP that is not running): withdraw it; still waiting means not
        // printed, so the attempt gets a new try elsewhere.
        if (st.phase == dtg::Phase::waiting) {
            const auto now = wall_ms();
            if (f.waiting_since_ms == 0) f.waiting_since_ms = now;
            const std::int64_t limit_s = d.cfg.driver == "hotfolder" ? d.cfg.rip_timeout_s : cfg.printing.failover_after_s;
            if (now - f.waiting_since_ms >= limit_s * 1000) return withdraw_for_failover(d, "device_not_taking");
        } else {
            f.waiting_since_ms = 0;
        }
        // Waiting or printing: a device fault while it is in hand holds the job (did it print?).
        if (d.status_known && d.status.state == dtg::State::error && !f.held)
            hold_flight(d, "device_fault",
                        fmt::format("{} reports {} while printing {}", d.cfg.name,
                                    fmt::join(d.status.reasons, ", "), f.handoff.name), false);
        f.poll_ms = std::min(cfg.printing.poll_max_ms, std::max(cfg.printing.poll_min_ms, f.poll_ms * 2));
        follow_later(d, f.poll_ms);
    }

    void printed(Device& d, const dtg::HandOffStatus& st) {
        auto f = *d.flight;
        bool inspecting = false;
        commit("job.printed", f.job_id, [&](Tx& tx) {
            inspecting = false;
            tx.update_try(f.job_id, f.attempt, f.try_no, "done");
            auto row = tx.job(f.job_id);
            if (!row || (row->state != JobState::printing && row->state != JobState::held)) return;
            const json payload = json::parse(row->payload, nullptr, false);
            const bool qa_required = payload.is_object() && payload.value("qa", json::object()).value("required", true);
            json data{{"order_id", f.order_id}, {"attempt", f.attempt}, {"try", f.try_no},
                      {"device", d.cfg.name}, {"impressions", st.impressions}};
            if (qa_required && !cfg.qa.enabled) data["qa"] = "disabled";
            tx.transition(f.job_id, JobState::printed, "", {"job.printed", f.job_id, data});
            row->state = JobState::printed;
            if (qa_required && cfg.qa.enabled) {
                // Visual QA: inspecting (or held when no camera watches this printer).
                inspecting = begin_qa(tx, *row, f.attempt, d.cfg.name, cfg);
            } else {
                // Without QA the garment is done: on to the order's label.
                ready_to_ship(tx, *row, cfg);
            }
        });
        if (inspecting && hooks.inspecting) hooks.inspecting(f.job_id);
        logger("printing")->info("printed job_id={} attempt={} try={} device={}", f.job_id, f.attempt, f.try_no, d.cfg.name);
        if (hooks.paperwork_changed) hooks.paperwork_changed();
        d.flight.reset();
        pump_all();
    }

    // The try provably did not print: a new try (after a backoff) within the budget.
    void try_failed(Device& d, const dtg::HandOffStatus& st, const std::string& reason, const std::string& message) {
        auto f = *d.flight;
        d.flight.reset();
        int failed = 0;
        bool requeue = false;
        std::int64_t backoff_ms = 0;
        commit("job.print_failed", f.job_id, [&](Tx& tx) {
            tx.update_try(f.job_id, f.attempt, f.try_no, "failed");
            failed = 0;
            for (const auto& t : tx.tries(f.job_id, f.attempt)) failed += t.state == "failed";
            auto row = tx.job(f.job_id);
            if (!row || is_terminal(row->state)) return;
            // A job cancelled (or moved on by a person) meanwhile is not tried again.
            requeue = failed <= cfg.printing.retry_budget &&
                      (row->state == JobState::printing || row->state == JobState::held);
            backoff_ms = std::int64_t{cfg.printing.retry_backoff_s} * 1000 << std::min(failed - 1, 10);
            tx.append({"job.print_failed", f.job_id,
                       {{"order_id", f.order_id}, {"attempt", f.attempt}, {"try", f.try_no},
                        {"device", d.cfg.name}, {"reason", reason}, {"message", message},
                        {"impressions", st.impressions}, {"provably_unprinted", true},
                        {"retry", requeue}, {"retry_in_s", requeue ? backoff_ms / 1000 : 0}}});
            if (requeue && row->state != JobState::queued)
                tx.transition(f.job_id, JobState::queued, reason, {});
            else
                tx.transition(f.job_id, JobState::failed, "print_failed",
                              {"job.failed", f.job_id,
                               {{"order_id", f.order_id}, {"reason", "print_failed"}, {"attempt", f.attempt},
                                {"message", fmt::format("{} tries failed; last: {}", failed, message)}}});
        });
        logger("printing")->warn("try failed job_id={} attempt={} try={} device={} reason={} retry={}", f.job_id,
                                 f.attempt, f.try_no, d.cfg.name, reason, requeue);
        if (requeue) {
            if (auto row = journal.job(f.job_id)) {
                std::string problem;
                if (auto info = job_info(*row, cfg, problem)) queue[f.job_id] = QueueEntry{*info, wall_ms() + backoff_ms};
            }
        }
        pump_all();
    }

    // Holds the job for a person; `settle` ends following (the try is uncertain), otherwise the
    // try is still followed and a later completion or provable failure settles it.
    void hold_flight(Device& d, const std::string& reason, const std::string& message, bool settle) {
        auto& f = *d.flight;
        commit("job.held", f.job_id, [&](Tx& tx) {
            if (settle) tx.update_try(f.job_id, f.attempt, f.try_no, "uncertain");
            auto row = tx.job(f.job_id);
            if (!row || row->state == JobState::held || is_terminal(row->state)) return;
            tx.transition(f.job_id, JobState::held, reason,
                          {"job.held", f.job_id,
                           {{"order_id", f.order_id}, {"attempt", f.attempt}, {"try", f.try_no},
                            {"device", d.cfg.name}, {"reason", reason}, {"message", message},
                            {"device_reasons", d.status.reasons}}});
        });
        logger("printing")->warn("job held job_id={} device={} reason={} message=\"{}\"", f.job_id, d.cfg.name, reason, message);
        f.held = true;
        if (settle) {
            d.flight.reset();
            pump_all();
        }
    }

    // Cancels the device job of the try in hand on the pool; `done` runs on the io thread with
    // where the job stands afterwards (only while the try is still in hand and we run).
    void cancel_in_hand(Device& d, std::function<void(const dtg::Result<dtg::HandOffStatus>&)> done) {
        d.op_running = true;
        d.timer->cancel();
        auto self = shared_from_this();
        asio::post(device_io, [self, &d, job = d.flight->device_job, done = std::move(done)] {
            auto r = d.dev->cancel(job);
            asio::post(self->io, [self, &d, r = std::move(r), done] {
                d.op_running = false;
                if (!d.flight || self->stopping) return;
                done(r);
            });
        });
    }

    // A device job without its document: withdraw it (it cannot have printed), then a new try.
    void withdraw_incomplete(Device& d) {
        auto self = shared_from_this();
        cancel_in_hand(d, [self, &d](const dtg::Result<dtg::HandOffStatus>& r) {
            if (r && r.value->provably_unprinted()) {
                dtg::HandOffStatus st = *r.value;
                st.impressions = 0;
                return self->try_failed(d, st, "withdrawn_incomplete", "the device job never got its document");
            }
            self->hold_flight(d, "print_outcome_uncertain",
                              r ? "could not withdraw an incomplete device job" : r.error->message, true);
        });
    }

    // Withdraws the try in hand from a printer that cannot print it (`reason`: device_offline =
    // the spooler cannot reach the printer; device_not_taking = it sits in the spooler or hot
    // folder untaken). Only a withdrawal that proves the garment unprinted gives a new try.
    void withdraw_for_failover(Device& d, const std::string& reason) {
        auto self = shared_from_this();
        logger("printing")->warn("device {} cannot print {} ({}): withdrawing it", d.cfg.name,
                                 d.flight->handoff.name, reason);
        cancel_in_hand(d, [self, &d, reason](const dtg::Result<dtg::HandOffStatus>& r) {
            if (r && r.value->provably_unprinted()) {
                d.quarantine_until_ms = wall_ms() + 5LL * self->cfg.printing.failover_after_s * 1000;
                dtg::HandOffStatus st = *r.value;
                st.impressions = 0;
                return self->try_failed(d, st, reason,
                                        reason == "device_offline"
                                            ? d.cfg.name + " could not be reached; the job never reached it and was withdrawn"
                                            : d.cfg.name + " did not take the job; it was withdrawn before it started");
            }
            if (r && r.value->phase == dtg::Phase::completed) return self->printed(d, *r.value);
            self->hold_flight(d, "print_outcome_uncertain",
                              r ? fmt::format("{} went offline after the job reached it ({} impression(s))",
                                              d.cfg.name, r.value->impressions)
                                : r.error->message,
                              true);
        });
    }

    // ---- device states -------------------------------------------------------------------------
    void update_status(Device& d, const dtg::Result<dtg::Status>& r) {
        dtg::Status st;
        if (r) {
            st = *r.value;
        } else {
            st.state = dtg::State::offline;
            st.reasons = {"offline"};
            st.message = r.error->message;
        }
        if (d.status_known && st == d.status) {
            d.status.markers = st.markers;
            return;
        }
        const bool first = !d.status_known;
        d.status = st;
        d.status_known = true;
        logger("printing")->info("device {} state={} reasons={} message=\"{}\"", d.cfg.name, dtg::to_string(st.state),
                                 fmt::join(st.reasons, ","), st.message);
        if (!first || st.state != dtg::State::idle)
            commit("device.state", d.cfg.name, [&](Tx& tx) {
                tx.append({"device.state", std::nullopt, device_json(d)});
            });
        publish_device(d);
    }

    json device_json(const Device& d) const {
        json j{{"device", d.cfg.name}, {"kind", "dtg"},
               {"state", d.status_known ? std::string(dtg::to_string(d.status.state)) : "unknown"},
               {"reasons", d.status.reasons}, {"paused_by_command", d.paused && d.pause_reason.empty()}};
        if (d.paused && !d.pause_reason.empty()) {
            // Paused by the agent itself (qa-failures): a person looks at the printer.
            j["state"] = "paused";
            auto reasons = d.status.reasons;
            reasons.push_back(d.pause_reason);
            j["reasons"] = reasons;
        }
        if (!d.status.message.empty()) j["message"] = d.status.message;
        if (!d.status.markers.empty()) j["markers"] = d.status.markers;
        if (d.flight) j["job_id"] = d.flight->job_id;
        return j;
    }

    void publish_device(const Device& d) {
        if (!hooks.device_status) return;
        json j = device_json(d);
        j["time"] = format_time(std::chrono::system_clock::now());
        hooks.device_status(d.cfg.name, j.dump());
    }

    // ---- commands ------------------------------------------------------------------------------
    void job_changed(const std::string& job_id) {
        if (devices.empty()) return;  // a station without printers only keeps jobs
        auto row = journal.job(job_id);
        if (!row) return;
        if (row->state == JobState::cancelled) {
            queue.erase(job_id);
            for (auto& [n, d] : devices)
                if (d.flight && d.flight->job_id == job_id && d.flight->held) cancel_held(d);
            return;
        }
        if (row->state == JobState::queued) queue.erase(job_id);  // reprint: new attempt
        take_up(*row);
    }

    // A held job with a try still on the device was cancelled: withdraw it there.
    void cancel_held(Device& d) {
        if (d.op_running) {
            auto self = shared_from_this();
            asio::post(io, [self, &d] { if (d.flight) self->cancel_held(d); });
            return;
        }
        auto self = shared_from_this();
        cancel_in_hand(d, [self, &d](const dtg::Result<dtg::HandOffStatus>& r) {
            auto f = *d.flight;
            const bool unprinted = r && r.value->provably_unprinted();
            self->commit("try", f.job_id, [&](Tx& tx) {
                tx.update_try(f.job_id, f.attempt, f.try_no, unprinted ? "withdrawn" : "uncertain");
            });
            logger("printing")->info("cancelled job's try withdrawn job_id={} device={} provably_unprinted={}",
                                     f.job_id, d.cfg.name, unprinted);
            d.flight.reset();
            self->pump_all();
        });
    }
};

PrintFlow::PrintFlow(asio::io_context& io, asio::thread_pool& workers, asio::thread_pool& device_io,
                     Journal& journal, const config::Config& cfg, PrintingHooks hooks)
    : impl_(std::make_shared<Impl>(io, workers, device_io, journal, cfg, std::move(hooks))) {}

PrintFlow::~PrintFlow() { stop(); }

void PrintFlow::start() { impl_->start(); }

void PrintFlow::stop() {
    impl_->stopping = true;
    impl_->retry_timer.cancel();
    for (auto& [n, d] : impl_->devices) d.timer->cancel();
}

void PrintFlow::job_changed(const std::string& job_id) {
    if (!impl_->stopping) impl_->job_changed(job_id);
}

void PrintFlow::set_draining(bool draining) {
    impl_->draining = draining;
    if (!draining) impl_->pump_all();
}

void PrintFlow::set_paused(const std::string& device, bool paused, const std::string& reason) {
    auto it = impl_->devices.find(device);
    if (it == impl_->devices.end()) return;
    it->second.paused = paused;
    it->second.pause_reason = paused ? reason : std::string();
    impl_->commit("device.state", device, [&](Tx& tx) {
        tx.append({"device.state", std::nullopt, impl_->device_json(it->second)});
    });
    impl_->publish_device(it->second);
    if (!paused) impl_->pump(it->second);
}

bool PrintFlow::has_device(const std::string& device) const { return impl_->devices.count(device) > 0; }

json PrintFlow::status() const {
    json devs = json::array();
    for (const auto& [n, d] : impl_->devices) devs.push_back(impl_->device_json(d));
    return {{"queued", impl_->queue.size()}, {"preparing", impl_->preparing.size()}, {"devices", devs}};
}

std::vector<std::pair<std::string, std::string>> PrintFlow::device_statuses() const {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [n, d] : impl_->devices) out.emplace_back(n, impl_->device_json(d).dump());
    return out;
}

}  // namespace pressline::agent
