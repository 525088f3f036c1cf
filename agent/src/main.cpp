// pressline: the agent's command line (run the daemon, check a config, inspect the journal).
// Error rule: exceptions stop at this layer and become an exit code plus one clear message.
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "pressline/agent/control.hpp"
#include "pressline/agent/daemon.hpp"
#include "pressline/agent/journal.hpp"
#include "pressline/agent/log.hpp"
#include "pressline/agent/qa.hpp"
#include "pressline/config/config.hpp"
#include "calibrate_cli.hpp"
#include "qa_inspect_cli.hpp"

namespace {

using pressline::agent::ExitCode;

// Loads a config and prints every problem; nullopt when invalid.
std::optional<pressline::config::Config> load(const std::string& file) {
    auto res = pressline::config::load_file(file);
    for (const auto& d : res.diagnostics) std::cerr << d.str() << "\n";
    if (!res.ok()) {
        std::cerr << fmt::format("{}: {} problem(s); configuration refused\n", file,
                                 res.diagnostics.size());
        return std::nullopt;
    }
    return std::move(res.config);
}

int cmd_status(const pressline::config::Config& cfg) {
    using namespace pressline::agent;
    JournalOptions options;
    options.migrate = false;  // the running daemon may be an older pressline
    Journal j(cfg.storage.state_dir, options);
    std::cout << fmt::format("journal      {}\n", j.path().string());
    if (j.file_schema_version() < Journal::schema_version())
        std::cout << fmt::format("schema       {} (the agent upgrades it to {} when it starts)\n",
                                 j.file_schema_version(), Journal::schema_version());
    std::cout << fmt::format("last event   {}\n", j.last_sequence());
    std::cout << fmt::format("outbox       {} event(s) not yet acknowledged by the broker\n",
                             j.outbox_count());
    std::cout << fmt::format("intake       {}\n",
                             j.meta("draining").value_or("0") == "1" ? "draining" : "open");
    for (auto s : {JobState::accepted, JobState::preparing, JobState::queued, JobState::printing,
                   JobState::inspecting, JobState::held}) {
        auto jobs = j.jobs_in_state(s);
        std::cout << fmt::format("{:<12} {}\n", to_string(s), jobs.size());
        for (const auto& r : jobs) {
            std::string where;
            for (const auto& t : j.tries(r.job_id))
                if (t.attempt == r.attempt)
                    where = fmt::format(" attempt={} try={} device={} ({})", t.attempt, t.try_no, t.device, t.state);
            std::cout << fmt::format("  {:<28} order={} priority={}{}\n", r.job_id, r.order_id, r.priority, where);
        }
    }
    std::cout << fmt::format("printers     {}\n", cfg.dtg_printers.size());
    for (const auto& p : cfg.dtg_printers)
        std::cout << fmt::format("  {:<12} {} {}{} platens={} garments={}{}\n", p.name, p.driver,
                                 p.driver == "cups" ? p.queue : p.hot_folder.string(),
                                 p.driver == "cups" && !p.server.empty() ? "@" + p.server : "",
                                 fmt::join(p.platens, ","), fmt::join(p.garment_classes, ","),
                                 j.meta("paused:" + p.name).value_or("0") == "1" ? " PAUSED" : "");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    // A write to a socket the peer (or we, refusing a message) closed must be an error, not
    // the end of the process.
    std::signal(SIGPIPE, SIG_IGN);
    CLI::App app{"pressline: the print-on-demand edge agent"};
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string(pressline::agent::version()));

    std::string config_file;
    auto* run = app.add_subcommand("run", "run the agent (systemd Type=notify)");
    run->add_option("-c,--config", config_file, "configuration file")->required();

    std::string check_file;
    auto* check = app.add_subcommand("check-config", "validate a configuration file and exit");
    check->add_option("file", check_file, "configuration file")->required();

    auto* status = app.add_subcommand("status", "show what the journal holds (jobs, outbox)");
    status->add_option("-c,--config", config_file, "configuration file")->required();

    app.add_subcommand("version", "print the version");

    // pressline qa ...: visual QA tools for technicians.
    auto* qa = app.add_subcommand("qa", "visual QA: re-run an inspection, ...");
    qa->require_subcommand(1);
    auto* qa_inspect = qa->add_subcommand(
        "inspect", "inspect one QA case: JSON on stdin, verdict JSON on stdout (docs/qa.md)");

    std::string qa_config, qa_job, qa_verdict, qa_by, qa_note, qa_printer;
    auto* qa_decide = qa->add_subcommand(
        "decide", "decide a job held for QA (like the qa_decision command; works while the cloud is unreachable)");
    qa_decide->add_option("-c,--config", qa_config, "configuration file of the running agent")->required();
    qa_decide->add_option("--job", qa_job, "job id")->required();
    qa_decide->add_option("--verdict", qa_verdict, "pass or fail")->required()->check(CLI::IsMember({"pass", "fail"}));
    qa_decide->add_option("--by", qa_by, "who decides (kept with the decision)")->required();
    qa_decide->add_option("--note", qa_note, "a note kept with the decision");
    auto* qa_trigger = qa->add_subcommand("trigger", "take the QA photo now (operator trigger)");
    qa_trigger->add_option("-c,--config", qa_config, "configuration file of the running agent")->required();
    auto* trigger_job = qa_trigger->add_option("--job", qa_job, "the job to photograph");
    qa_trigger->add_option("--printer", qa_printer, "the oldest job printed on this printer")->excludes(trigger_job);
    qa_trigger->add_option("--by", qa_by, "who triggers (logged)");

    // pressline snapshot: a picture now from the running agent's cameras (calibration photos,
    // checking what a camera sees).
    std::string snap_camera;
    auto* snapshot = app.add_subcommand("snapshot", "take a picture now with the running agent's camera(s); prints where it went");
    snapshot->add_option("-c,--config", qa_config, "configuration file of the running agent")->required();
    snapshot->add_option("--camera", snap_camera, "camera name (default: every camera)");
    snapshot->add_option("--by", qa_by, "who asks (logged)");

    // pressline calibrate: the station's QA camera calibration (docs/calibration.md).
    pressline::agent::CalibrateOptions cal;
    auto* calibrate = app.add_subcommand("calibrate", "calibrate a QA camera from photos of the target, a white board and the gray card");
    calibrate->add_option("--print-target", cal.print_target, "write the printable target (PNG) and exit");
    calibrate->add_option("--px-per-mm", cal.px_per_mm, "resolution of the printable target (default 11.811 = 300 dpi)");
    calibrate->add_option("--target-photo", cal.target_photo, "photo of the target lying on the platen");
    calibrate->add_option("--white-photo", cal.white_photo, "photo of a uniform white board (flat field)");
    calibrate->add_option("--out", cal.out, "calibration JSON to write (the camera's `calibration` path)");
    calibrate->add_option("--check-image", cal.check_image, "check image (default: next to --out)");
    calibrate->add_option("--gray-card", cal.gray_card_file, "gray card patches as JSON");
    calibrate->add_option("--patch", cal.patches, "gray card patch NAME:X,Y,W,H:R,G,B (platen mm; repeat)");
    calibrate->add_option("--target", cal.target, "aruco (default) or chessboard")->check(CLI::IsMember({"aruco", "chessboard"}));
    calibrate->add_option("--cols", cal.cols, "markers (aruco) or inner corners (chessboard) across");
    calibrate->add_option("--rows", cal.rows, "markers (aruco) or inner corners (chessboard) down");
    calibrate->add_option("--marker-mm", cal.marker_mm, "aruco marker side");
    calibrate->add_option("--pitch-mm", cal.pitch_mm, "aruco marker pitch");
    calibrate->add_option("--square-mm", cal.square_mm, "chessboard square side");
    calibrate->add_option("--origin-mm", cal.origin_mm, "X,Y of the grid's first marker / inner corner on the platen");
    calibrate->add_option("--platen", cal.platen, "platen name, WxH in inches (default 16x20)");
    std::string cal_config;
    auto* cal_camera = calibrate->add_option("--camera", cal.camera_name,
                                             "take the photos not given as files with this camera of the config "
                                             "(through the running agent, else directly); --out defaults to its calibration path");
    cal_camera->needs(calibrate->add_option("-c,--config", cal_config, "configuration file (with --camera)"));

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : ExitCode::exit_bad_config;
    }

    try {
        if (app.got_subcommand("version")) {
            std::cout << "pressline " << pressline::agent::version() << "\n";
            return 0;
        }
        if (*qa_inspect) return pressline::agent::qa_inspect_main(std::cin, std::cout, std::cerr);
        if (*calibrate) {
            if (!cal.camera_name.empty()) {
                auto cfg = load(cal_config);
                if (!cfg) return ExitCode::exit_bad_config;
                const auto it = std::find_if(cfg->cameras.begin(), cfg->cameras.end(),
                                             [&](const auto& c) { return c.name == cal.camera_name; });
                if (it == cfg->cameras.end()) {
                    std::cerr << "pressline calibrate: --camera: no camera " << cal.camera_name << " in " << cal_config << "\n";
                    return 2;
                }
                cal.camera = pressline::agent::camera_settings(*it);
                cal.control_socket = cfg->storage.state_dir / "control.sock";
                if (cal.out.empty()) cal.out = it->calibration.string();
            }
            return pressline::agent::calibrate_main(cal, std::cin, std::cout, std::cerr);
        }
        if (*qa_decide || *qa_trigger || *snapshot) {
            auto cfg = load(qa_config);
            if (!cfg) return ExitCode::exit_bad_config;
            nlohmann::json req;
            if (*qa_decide) {
                req = {{"type", "qa_decision"}, {"job_id", qa_job}, {"verdict", qa_verdict}, {"decided_by", qa_by}};
                if (!qa_note.empty()) req["note"] = qa_note;
            } else if (*snapshot) {
                req = {{"type", "snapshot"}};
                if (!snap_camera.empty()) req["camera"] = snap_camera;
                if (!qa_by.empty()) req["by"] = qa_by;
            } else {
                req = {{"type", "qa_trigger"}};
                if (!qa_job.empty()) req["job_id"] = qa_job;
                if (!qa_printer.empty()) req["printer"] = qa_printer;
                if (!qa_by.empty()) req["by"] = qa_by;
            }
            std::string error;
            auto res = pressline::agent::control_request(cfg->storage.state_dir / "control.sock", req, error);
            if (!res) {
                std::cerr << "pressline: " << error << "\n";
                return ExitCode::exit_failure;
            }
            std::cout << res->dump() << "\n";
            if (res->value("status", "") == "ok") return 0;
            std::cerr << "pressline: " << res->value("message", res->value("reason", std::string("refused"))) << "\n";
            return 3;
        }
        if (*check) {
            auto cfg = load(check_file);
            if (!cfg) return ExitCode::exit_bad_config;
            std::cout << check_file << ": ok\n";
            return 0;
        }
        if (*status) {
            auto cfg = load(config_file);
            if (!cfg) return ExitCode::exit_bad_config;
            return cmd_status(*cfg);
        }
        auto cfg = load(config_file);
        if (!cfg) return ExitCode::exit_bad_config;
        pressline::agent::init_logging(cfg->log.level);
        pressline::agent::Daemon daemon(std::move(*cfg));
        return daemon.run();
    } catch (const std::exception& e) {
        std::cerr << "pressline: fatal: " << e.what() << "\n";
        return ExitCode::exit_failure;
    }
}
