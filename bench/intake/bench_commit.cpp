// bench_commit: the agent's intake without MQTT, in one process: how long parsing and
// validation take, and how fast Intake::on_job makes orders durable (journal commit, fsync'd,
// with the job.accepted event), with a second thread deleting "acknowledged" events in batches
// as the outbox does. It isolates what bench_intake measures end to end from the broker and the
// network, so that a change in the journal or the parser can be compared on a busy machine too:
// the CPU time per job hardly depends on other load, the wall time does.
//
//   bench_commit --dir DIR [--n 5000] [--log-level info]
// DIR must be on the disk the agent's state_dir would be on; a journal is created in DIR/state.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "../common/percentile.hpp"
#include "orders.hpp"
#include "pressline/agent/intake.hpp"
#include "pressline/agent/journal.hpp"
#include "pressline/agent/log.hpp"
#include "pressline/agent/validation.hpp"

namespace fs = std::filesystem;
using namespace pressline::agent;
using Clock = std::chrono::steady_clock;
using pressline::bench::percentile;

namespace {

double cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    return s(u.ru_utime) + s(u.ru_stime);
}

// Bytes this process has caused to be written to storage (/proc/self/io write_bytes): the WAL
// frames, the checkpoints' database pages and file-system metadata.
double written_bytes() {
    std::ifstream io("/proc/self/io");
    std::string key;
    double value = 0;
    while (io >> key >> value)
        if (key == "write_bytes:") return value;
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"bench_commit: intake parse + durable commit, in process"};
    std::string dir, log_level = "info";
    int n = 5000;
    app.add_option("--dir", dir, "scratch directory (a journal is created in DIR/state)")->required();
    app.add_option("-n,--n", n, "orders")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--log-level", log_level, "the agent's log level (its lines go to stderr)")->capture_default_str();
    CLI11_PARSE(app, argc, argv);
    init_logging(log_level);

    std::vector<std::string> payloads;
    payloads.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) payloads.push_back(pressline::bench::make_order("BENCH-" + std::to_string(i), i, 0));

    // 1. Parsing, validation and the canonical form alone (what the paho thread does before
    // the commit).
    const ParseLimits limits;
    auto t0 = Clock::now();
    double c0 = cpu_seconds();
    std::size_t canonical_bytes = 0;
    for (const auto& p : payloads) {
        auto parsed = parse_job(p, limits);
        auto* job = std::get_if<JobOrder>(&parsed);
        if (!job) {
            std::fprintf(stderr, "bench_commit: the sample order is rejected\n");
            return 1;
        }
        canonical_bytes += canonical_json(job->json).size();
    }
    const double parse_us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / n;
    const double parse_cpu_us = (cpu_seconds() - c0) * 1e6 / n;

    // 2. Intake into a fresh journal, acknowledged events deleted in batches meanwhile.
    const fs::path state = fs::path(dir) / "state";
    fs::remove_all(state);
    JournalOptions jo;
    jo.source = "pressline://bench/commit";
    jo.events_topic = "bench/events";
    Journal journal(state, jo);
    Intake intake(journal, limits, IntakeHooks{});
    std::atomic<bool> done{false};
    std::thread deleter([&] {
        std::int64_t deleted = 0;
        while (!done) {
            const std::int64_t last = journal.last_sequence();
            if (last - deleted >= 512) {
                try {
                    journal.outbox_delete_upto(last);
                    deleted = last;
                } catch (const JournalError& e) {
                    std::fprintf(stderr, "bench_commit: outbox delete failed: %s\n", e.what());
                    std::this_thread::sleep_for(std::chrono::milliseconds(5));
                }
            } else {
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
            }
        }
    });
    std::vector<double> lat_us;
    lat_us.reserve(payloads.size());
    t0 = Clock::now();
    c0 = cpu_seconds();
    const double w0 = written_bytes();
    for (const auto& p : payloads) {
        const auto s = Clock::now();
        intake.on_job("bench/jobs", p);
        lat_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - s).count());
    }
    const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
    const double cpu_us = (cpu_seconds() - c0) * 1e6 / n;
    done = true;
    deleter.join();
    const double written_kib = (written_bytes() - w0) / 1024 / n;
    if (journal.last_sequence() != n) {
        std::fprintf(stderr, "bench_commit: %lld events for %d orders\n",
                     static_cast<long long>(journal.last_sequence()), n);
        return 1;
    }

    std::printf("bench_commit (N=%d, order %zu bytes, canonical %zu bytes, dir %s)\n", n, payloads[0].size(),
                canonical_bytes / static_cast<std::size_t>(n), dir.c_str());
    std::printf("  parse+validate+canonical   %7.1f us/job wall   %7.1f us/job CPU\n", parse_us, parse_cpu_us);
    std::printf("  on_job (durable)           %7.0f jobs/s        %7.1f us/job CPU (both threads)\n", n / wall, cpu_us);
    std::printf("  written to storage         %7.1f KiB/job\n", written_kib);
    std::printf("  on_job latency             p50 %.0f us  p99 %.0f us  max %.0f us\n", percentile(lat_us, 0.5),
                percentile(lat_us, 0.99), percentile(lat_us, 1.0));
    return 0;
}
