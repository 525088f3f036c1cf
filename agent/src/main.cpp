// pressline: the agent's command line (run the daemon, check a config, inspect the journal).
// Error rule: exceptions stop at this layer and become an exit code plus one clear message.
#include <csignal>
#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "pressline/agent/daemon.hpp"
#include "pressline/agent/journal.hpp"
#include "pressline/agent/log.hpp"
#include "pressline/config/config.hpp"

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
    Journal j(cfg.storage.state_dir, {});
    std::cout << fmt::format("journal      {}\n", j.path().string());
    std::cout << fmt::format("last event   {}\n", j.last_sequence());
    std::cout << fmt::format("outbox       {} event(s) not yet acknowledged by the broker\n",
                             j.outbox_count());
    std::cout << fmt::format("intake       {}\n",
                             j.meta("draining").value_or("0") == "1" ? "draining" : "open");
    for (auto s : {JobState::accepted, JobState::preparing, JobState::queued, JobState::printing,
                   JobState::held}) {
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
