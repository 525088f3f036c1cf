// bench_qa: the inspector on a generated dataset (tools/qa-dataset) with known truth.
//   (a) in the daemon's way: per case the images are decoded once (not timed), then inspect() is
//       timed with cv::setNumThreads(threads) -- median and p95;
//   (b) the CLI a technician runs: `pressline qa inspect < case.json` as a process per case, wall
//       time including decoding -- median and p95;
//   (c) accuracy against truth: per defect type recall (clear cases that fail) and reason accuracy
//       (clear cases failed with the type's reason), false rejects of good and just-inside
//       cases, overall precision / recall / F1 (positive = fail; truth positive = clear defect).
// Usage: bench_qa --data DIR [--pressline BIN] [--threads 2] [--out results.json] [--no-cli]
//                 [--repeat N]   (inspect() N times per case, the fastest counts: for A/B runs)
//                 [--preloaded-calibration]  (load_case with the calibration loaded beforehand)
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <opencv2/core/utility.hpp>

#include "../common/percentile.hpp"
#include "pressline/devices/qa/inspector.hpp"

namespace fs = std::filesystem;
using pressline::bench::percentile;
namespace qa = pressline::devices::qa;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

struct CliRun {
    int code = -1;
    double ms = 0;
    std::string out, err;
};

// `pressline qa inspect < case.json` in the case's directory (relative paths).
CliRun run_cli(const std::string& bin, const fs::path& dir) {
    const fs::path out = dir / ".bench-stdout", err = dir / ".bench-stderr";
    CliRun r;
    const auto t0 = Clock::now();
    const pid_t pid = ::fork();
    if (pid == 0) {
        const int i = ::open((dir / "case.json").c_str(), O_RDONLY);
        const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (i < 0 || o < 0 || e < 0 || ::dup2(i, 0) < 0 || ::dup2(o, 1) < 0 || ::dup2(e, 2) < 0 ||
            ::chdir(dir.c_str()) != 0)
            ::_exit(126);
        ::execl(bin.c_str(), bin.c_str(), "qa", "inspect", static_cast<char*>(nullptr));
        ::_exit(127);
    }
    int status = 0;
    if (pid > 0 && ::waitpid(pid, &status, 0) == pid && WIFEXITED(status)) r.code = WEXITSTATUS(status);
    r.ms = ms_since(t0);
    r.out = slurp(out);
    r.err = slurp(err);
    fs::remove(out);
    fs::remove(err);
    return r;
}

struct Row {
    std::string id, type, severity, truth_reason;
    bool truth_fail = false;
    bool ok = false;          // inspected (no Problem)
    bool fail = false;
    std::string reason;
    double ms = 0;
    double cli_ms = -1;
    int cli_code = -1;
    std::string cli_verdict, cli_reason;
    nlohmann::json metrics, truth;
};

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Benchmark of the QA inspector on a generated dataset"};
    std::string data, pressline, out_json;
    int threads = 2;
    bool no_cli = false;
    app.add_option("--data", data, "Dataset directory (pressline-qa-dataset generate --out)")->required();
    app.add_option("--pressline", pressline, "The pressline binary (for the CLI timing)");
    app.add_option("--threads", threads, "cv::setNumThreads for inspect()")->capture_default_str();
    app.add_option("--out", out_json, "Write results as JSON here");
    app.add_flag("--no-cli", no_cli, "Skip the CLI process runs");
    int repeat = 1;
    app.add_option("--repeat", repeat,
                   "Run inspect() this many times per case and keep the fastest (comparing code on a busy machine)")
        ->capture_default_str()->check(CLI::PositiveNumber);
    bool preloaded = false;
    app.add_flag("--preloaded-calibration", preloaded,
                 "Load each case's calibration first and pass it to load_case (the daemon's way)");
    CLI11_PARSE(app, argc, argv);

    nlohmann::json index;
    try {
        std::ifstream f(fs::path(data) / "index.json");
        index = nlohmann::json::parse(f);
    } catch (const std::exception& e) {
        std::cerr << "bench_qa: cannot read " << data << "/index.json: " << e.what() << '\n';
        return 2;
    }
    cv::setNumThreads(threads);
    const bool cli = !no_cli && !pressline.empty();

    std::vector<Row> rows;
    for (const auto& entry : index["cases"]) {
        Row r;
        r.id = entry["id"];
        r.truth = entry["truth"];
        r.type = r.truth["type"];
        r.severity = r.truth["severity"];
        r.truth_reason = r.truth["reason"];
        r.truth_fail = r.truth["verdict"] == "fail";
        const fs::path dir = fs::path(data) / r.id;
        nlohmann::json cj;
        try {
            std::ifstream f(dir / "case.json");
            cj = nlohmann::json::parse(f);
        } catch (const std::exception& e) {
            std::cerr << "bench_qa: " << r.id << ": " << e.what() << '\n';
            return 2;
        }
        auto loaded = qa::load_case(cj, dir);  // decoding: not timed
        if (preloaded && cj.contains("calibration")) {
            auto cal = qa::calibration_from_json(cj["calibration"], dir);
            if (auto* c = std::get_if<qa::Calibration>(&cal)) {
                nlohmann::json without = cj;
                without.erase("calibration");
                loaded = qa::load_case(without, dir, *c);
            }
        }
        if (auto* p = std::get_if<qa::Problem>(&loaded)) {
            std::cerr << "bench_qa: " << r.id << ": load_case: " << p->field << ": " << p->message << '\n';
            rows.push_back(r);
            continue;
        }
        auto t0 = Clock::now();
        auto res = qa::inspect(std::get<qa::Case>(loaded));
        r.ms = ms_since(t0);
        for (int i = 1; i < repeat; ++i) {
            t0 = Clock::now();
            auto again = qa::inspect(std::get<qa::Case>(loaded));
            if (const double ms = ms_since(t0); ms < r.ms) r.ms = ms, res = std::move(again);
        }
        if (auto* v = std::get_if<qa::Verdict>(&res)) {
            r.ok = true;
            r.fail = !v->pass;
            r.reason = v->reason;
            r.metrics = v->metrics;
        } else {
            const auto& p = std::get<qa::Problem>(res);
            std::cerr << "bench_qa: " << r.id << ": inspect: " << p.reason << " " << p.field << ": " << p.message << '\n';
        }
        if (cli) {
            const CliRun c = run_cli(pressline, dir);
            r.cli_ms = c.ms;
            r.cli_code = c.code;
            try {
                const auto j = nlohmann::json::parse(c.out);
                r.cli_verdict = j.value("verdict", "");
                r.cli_reason = j.value("reason", "");
            } catch (const std::exception&) {
                std::cerr << "bench_qa: " << r.id << ": CLI exit " << c.code << ", output not JSON: " << c.err << '\n';
            }
        }
        std::fprintf(stderr, "%-32s truth %-4s %-18s got %-4s %-18s %7.1f ms%s\n", r.id.c_str(),
                     r.truth_fail ? "fail" : "pass", r.truth_reason.c_str(), r.ok ? (r.fail ? "fail" : "pass") : "ERR",
                     r.reason.c_str(), r.ms,
                     cli ? (" cli " + std::to_string(static_cast<int>(r.cli_ms)) + " ms").c_str() : "");
        rows.push_back(r);
    }

    // Latency.
    std::vector<double> t_in, t_cli;
    for (const auto& r : rows) {
        if (r.ok) t_in.push_back(r.ms);
        if (r.cli_ms >= 0) t_cli.push_back(r.cli_ms);
    }
    // Accuracy.
    struct TypeStats {
        int clear = 0, caught = 0, right_reason = 0, inside = 0, inside_rejected = 0;
    };
    std::map<std::string, TypeStats> per;
    int tp = 0, fp = 0, fn = 0, tn = 0, good = 0, good_rejected = 0, cli_mismatch = 0;
    std::map<std::string, int> confusion_wrong;  // "truth->got"
    for (const auto& r : rows) {
        const bool pred_fail = !r.ok || r.fail;  // a Problem counts as a reject
        if (r.truth_fail) (pred_fail ? tp : fn)++;
        else (pred_fail ? fp : tn)++;
        if (r.type == "good") {
            ++good;
            if (pred_fail) ++good_rejected;
        } else if (r.severity == "clear") {
            auto& s = per[r.type];
            ++s.clear;
            if (pred_fail) ++s.caught;
            if (pred_fail && r.reason == r.type) ++s.right_reason;
            else if (pred_fail) ++confusion_wrong[r.type + "->" + r.reason];
        } else {
            auto& s = per[r.type];
            ++s.inside;
            if (pred_fail) ++s.inside_rejected;
        }
        if (r.cli_ms >= 0 && r.ok && r.cli_verdict != (r.fail ? "fail" : "pass")) ++cli_mismatch;
    }
    // Measurement error against truth (placement on every case but wrong_design, mean ΔE00 on
    // good and colour-shift cases), with how many exceed the unit tests' bounds.
    struct Err {
        const char* name;
        double bound;
        std::vector<double> v;
    };
    Err errs[] = {{"offset x/y (mm)", 0.5, {}}, {"rotation (deg)", 0.3, {}}, {"scale (%)", 0.5, {}},
                  {"mean dE00", 0.5, {}}};
    auto num = [](const nlohmann::json& j, const char* k) {
        return j.contains(k) && j[k].is_number() ? j[k].get<double>() : 1e9;
    };
    for (const auto& r : rows) {
        if (!r.ok || r.type == "wrong_design") continue;
        const auto& m = r.metrics;
        const auto& t = r.truth;
        if (m.contains("offset_mm") && m["offset_mm"].is_object())
            errs[0].v.push_back(std::max(std::abs(num(m["offset_mm"], "x") - t["offset_mm"]["x"].get<double>()),
                                         std::abs(num(m["offset_mm"], "y") - t["offset_mm"]["y"].get<double>())));
        errs[1].v.push_back(std::abs(num(m, "rotation_deg") - t["rotation_deg"].get<double>()));
        errs[2].v.push_back(std::abs(num(m, "scale_pct") - t["scale_pct"].get<double>()));
        if (r.type == "good" || r.type == "color_shift")
            errs[3].v.push_back(std::abs(num(m, "mean_de00") - t["mean_de00"].get<double>()));
    }
    nlohmann::json err_json = nlohmann::json::object();
    const double precision = tp + fp ? double(tp) / (tp + fp) : 0, recall = tp + fn ? double(tp) / (tp + fn) : 0;
    const double f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0;

    std::printf("\nQA inspector on %s: %zu cases, %d threads\n\n", data.c_str(), rows.size(), threads);
    std::printf("latency                         n   median ms    p95 ms    max ms\n");
    std::printf("  inspect() in-process     %6zu   %9.1f %9.1f %9.1f\n", t_in.size(), percentile(t_in, 0.5),
                percentile(t_in, 0.95), percentile(t_in, 1.0));
    if (!t_cli.empty())
        std::printf("  pressline qa inspect     %6zu   %9.1f %9.1f %9.1f\n", t_cli.size(), percentile(t_cli, 0.5),
                    percentile(t_cli, 0.95), percentile(t_cli, 1.0));
    std::printf("\n%-18s %5s %8s %8s %7s %12s\n", "type", "clear", "recall", "reason", "inside", "inside rej.");
    nlohmann::json types = nlohmann::json::object();
    for (const auto& [type, s] : per) {
        const double rec = s.clear ? double(s.caught) / s.clear : 0, rea = s.clear ? double(s.right_reason) / s.clear : 0;
        std::printf("%-18s %5d %7.1f%% %7.1f%% %7d %12d\n", type.c_str(), s.clear, 100 * rec, 100 * rea, s.inside,
                    s.inside_rejected);
        types[type] = {{"clear", s.clear}, {"recall", rec}, {"reason_accuracy", rea},
                       {"just_inside", s.inside}, {"just_inside_rejected", s.inside_rejected}};
    }
    const double frr = good ? double(good_rejected) / good : 0;
    int inside_total = 0, inside_rej = 0;
    for (const auto& [type, s] : per) inside_total += s.inside, inside_rej += s.inside_rejected;
    std::printf("\ngood: %d, false rejects %d (%.1f%%); just inside: %d, rejected %d (%.1f%%)\n", good, good_rejected,
                100 * frr, inside_total, inside_rej, inside_total ? 100.0 * inside_rej / inside_total : 0.0);
    std::printf("overall (positive = fail, truth = clear defects): precision %.3f recall %.3f F1 %.3f "
                "(tp %d fp %d fn %d tn %d)\n",
                precision, recall, f1, tp, fp, fn, tn);
    if (!confusion_wrong.empty()) {
        std::printf("wrong reasons:");
        for (const auto& [k, n] : confusion_wrong) std::printf(" %s x%d", k.c_str(), n);
        std::printf("\n");
    }
    if (!t_cli.empty()) std::printf("CLI verdict differs from in-process: %d\n", cli_mismatch);
    std::printf("\nmeasurement error vs truth        n    median       p95       max   beyond bound\n");
    for (auto& e : errs) {
        const auto beyond = std::count_if(e.v.begin(), e.v.end(), [&](double x) { return x > e.bound; });
        std::printf("  %-26s %6zu %9.3f %9.3f %9.3f   %ld (> %.1f)\n", e.name, e.v.size(), percentile(e.v, 0.5),
                    percentile(e.v, 0.95), percentile(e.v, 1.0), static_cast<long>(beyond), e.bound);
        err_json[e.name] = {{"n", e.v.size()}, {"median", percentile(e.v, 0.5)}, {"p95", percentile(e.v, 0.95)},
                            {"max", percentile(e.v, 1.0)}, {"beyond_bound", beyond}, {"bound", e.bound}};
    }

    if (!out_json.empty()) {
        nlohmann::json cases = nlohmann::json::array();
        for (const auto& r : rows)
            cases.push_back({{"id", r.id}, {"truth_verdict", r.truth_fail ? "fail" : "pass"},
                             {"truth_reason", r.truth_reason}, {"type", r.type}, {"severity", r.severity},
                             {"verdict", r.ok ? (r.fail ? "fail" : "pass") : "error"}, {"reason", r.reason},
                             {"inspect_ms", r.ms}, {"cli_ms", r.cli_ms}, {"cli_exit", r.cli_code},
                             {"cli_verdict", r.cli_verdict},
                             {"metrics", r.metrics.is_null() ? nlohmann::json::object() : r.metrics},
                             {"truth", r.truth}});
        const nlohmann::json res = {
            {"data", data},
            {"threads", threads},
            {"inspect_ms", {{"n", t_in.size()}, {"median", percentile(t_in, 0.5)}, {"p95", percentile(t_in, 0.95)},
                            {"max", percentile(t_in, 1.0)}}},
            {"cli_ms", {{"n", t_cli.size()}, {"median", percentile(t_cli, 0.5)}, {"p95", percentile(t_cli, 0.95)},
                        {"max", percentile(t_cli, 1.0)}}},
            {"types", types},
            {"good", {{"n", good}, {"false_rejects", good_rejected}, {"false_reject_rate", frr}}},
            {"just_inside", {{"n", inside_total}, {"rejected", inside_rej}}},
            {"overall", {{"precision", precision}, {"recall", recall}, {"f1", f1}, {"tp", tp}, {"fp", fp},
                         {"fn", fn}, {"tn", tn}}},
            {"cli_verdict_mismatch", cli_mismatch},
            {"measurement_error", err_json},
            {"cases", cases}};
        std::ofstream f(out_json);
        f << res.dump(1) << '\n';
        if (!f) {
            std::cerr << "bench_qa: cannot write " << out_json << '\n';
            return 1;
        }
    }
    return 0;
}
