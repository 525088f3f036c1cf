// bench_intake: measures the agent's intake (MQTT job order -> durable -> job.accepted event)
// against a running agent and broker, next to two ceilings measured in the same run.
// bench/intake/run.sh starts the broker and the agent and calls this; see its header for usage.
//
// Phases (--phases, comma-separated, default all, in this order):
//   throughput  N valid orders published QoS 1 as fast as the broker takes them (at most
//               --inflight outstanding), timed until the N-th job.accepted event arrives
//   ceiling     the same N payloads through the same broker to a trivial paho subscriber
//   sqlite      N rows of 1 KiB, one transaction each, WAL + synchronous=FULL, in --sqlite-dir
//   latency     --rate orders/s for --latency-seconds, after one second of warm-up at the same
//               rate (not counted; its max is shown); publish -> job.accepted arrival, p50/p99;
//               meanwhile a probe times fdatasync of 12 KiB at 200/s in --sqlite-dir (the disk alone)
//   idle        the agent's RSS (VmRSS) and CPU% (utime+stime) over --idle-seconds
// Events are subscribed to before anything is published. Timestamps are CLOCK_MONOTONIC;
// each order also carries its send time in "bench_sent_ns" (unknown fields are allowed).
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "../common/percentile.hpp"
#include "pressline/agent/clock.hpp"
#include "mqtt_util.hpp"
#include "orders.hpp"

namespace fs = std::filesystem;
using pressline::sim::Client;
using pressline::sim::ConnectSettings;
using pressline::sim::monotonic_ns;
using pressline::sim::Topics;
using pressline::sim::WindowedPublisher;
using Clock = std::chrono::steady_clock;

using pressline::agent::parse_time_ms;
using pressline::agent::wall_ms;
using pressline::bench::make_order;

namespace {

struct Options {
    std::string broker = "tcp://127.0.0.1:1883";
    std::string shop, station, prefix{pressline::sim::kDefaultPrefix};
    int agent_pid = 0;
    std::string sqlite_dir;
    int n = 20000;
    int inflight = 128;
    double rate = 500;
    double latency_s = 10;
    double idle_s = 60;
    double timeout_s = 600;
    std::string phases = "throughput,ceiling,sqlite,latency,idle";
    std::string results_file;
};

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string fmt(const char* f, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}


// Subscribes to the agent's events and counts job.accepted per phase; job ids are
// "<run>-<phase>-<index>" so the index finds the send time without a map.
class EventCounter {
public:
    EventCounter(const Options& o, const Topics& t, std::string run)
        : run_(std::move(run)), client_(o.broker, pressline::sim::fresh_client_id("bench-events"), settings()) {
        client_->set_message_callback([this](mqtt::const_message_ptr m) { on_message(m->get_payload_str()); });
        client_.connect();
        if (!client_->subscribe(t.events(), 1)->wait_for(std::chrono::seconds(5)))
            throw std::runtime_error("no SUBACK for " + t.events());
    }

    // Starts counting a phase of n jobs; sent[i] is filled by the publisher.
    void begin(const std::string& phase, int n) {
        std::lock_guard lock(mutex_);
        phase_prefix_ = run_ + "-" + phase + "-";
        expected_ = n;
        accepted_ = 0;
        rejected_ = 0;
        first_rejection_.clear();
        seen_.assign(n, 0);
        latency_ns_.clear();
        latency_ns_.reserve(n);
        spans_.clear();
        sent_ = std::vector<std::atomic<std::int64_t>>(n);
        sent_wall_ms_ = std::vector<std::atomic<std::int64_t>>(n);
        inbound_ms_.clear();
        outbound_ms_.clear();
    }
    std::string job_id(const std::string& phase, int i) const { return run_ + "-" + phase + "-" + std::to_string(i); }
    void sent(int i, std::int64_t ns) {
        sent_wall_ms_[i].store(wall_ms(), std::memory_order_relaxed);
        sent_[i].store(ns, std::memory_order_release);
    }

    // Waits until every job of the phase is accepted; false on timeout.
    bool wait_all(double timeout_s) {
        std::unique_lock lock(mutex_);
        return cv_.wait_for(lock, std::chrono::duration<double>(timeout_s), [&] { return accepted_ >= expected_; });
    }
    int accepted() {
        std::lock_guard lock(mutex_);
        return accepted_;
    }
    std::string rejections() {
        std::lock_guard lock(mutex_);
        return rejected_ ? std::to_string(rejected_) + " rejected, first: " + first_rejection_ : "";
    }
    std::int64_t last_arrival_ns() {
        std::lock_guard lock(mutex_);
        return last_arrival_ns_;
    }
    std::vector<std::int64_t> latencies() {
        std::lock_guard lock(mutex_);
        return latency_ns_;
    }
    // Each accepted job's [sent, event arrived] in monotonic ns.
    std::vector<std::pair<std::int64_t, std::int64_t>> spans() {
        std::lock_guard lock(mutex_);
        return spans_;
    }
    // The two halves of each latency, split at the event's `time` (the agent's commit, in ms of
    // the wall clock): publish -> broker -> agent -> commit, and outbox -> broker -> us.
    std::pair<std::vector<std::int64_t>, std::vector<std::int64_t>> halves() {
        std::lock_guard lock(mutex_);
        return {inbound_ms_, outbound_ms_};
    }

private:
    static ConnectSettings settings() {
        ConnectSettings s;
        s.max_inflight = 1024;
        return s;
    }

    void on_message(const std::string& payload) {
        std::int64_t now = monotonic_ns();
        nlohmann::json ev;
        try {
            ev = nlohmann::json::parse(payload);
        } catch (...) {
            return;
        }
        std::string type = ev.value("type", "");
        std::string subject = ev.value("subject", "");
        std::lock_guard lock(mutex_);
        if (phase_prefix_.empty() || subject.rfind(phase_prefix_, 0) != 0) return;
        if (type == "com.pressline.job.rejected") {
            if (rejected_++ == 0) first_rejection_ = subject + " " + ev["data"].dump();
            return;
        }
        if (type != "com.pressline.job.accepted") return;
        int i = -1;
        try {
            i = std::stoi(subject.substr(phase_prefix_.size()));
        } catch (...) {
            return;
        }
        if (i < 0 || i >= static_cast<int>(seen_.size()) || seen_[i]) return;
        seen_[i] = 1;
        std::int64_t sent = sent_[i].load(std::memory_order_acquire);
        if (sent > 0) {
            latency_ns_.push_back(now - sent);
            spans_.emplace_back(sent, now);
        }
        if (auto committed = parse_time_ms(ev.value("time", "")); committed && sent > 0) {
            inbound_ms_.push_back(*committed - sent_wall_ms_[i].load(std::memory_order_relaxed));
            outbound_ms_.push_back(wall_ms() - *committed);
        }
        last_arrival_ns_ = now;
        if (++accepted_ >= expected_) cv_.notify_all();
    }

    std::string run_;
    Client client_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::string phase_prefix_;
    int expected_ = 0, accepted_ = 0, rejected_ = 0;
    std::string first_rejection_;
    std::vector<char> seen_;
    std::vector<std::int64_t> latency_ns_;
    std::vector<std::pair<std::int64_t, std::int64_t>> spans_;
    std::vector<std::atomic<std::int64_t>> sent_;
    std::vector<std::atomic<std::int64_t>> sent_wall_ms_;
    std::vector<std::int64_t> inbound_ms_, outbound_ms_;
    std::int64_t last_arrival_ns_ = 0;
};

ConnectSettings publisher_settings(const Options& o) {
    ConnectSettings s;
    s.max_inflight = o.inflight;
    s.max_buffered = std::max(1000, o.inflight * 4);
    return s;
}

struct Results {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
};

// ---- phases -----------------------------------------------------------------------------------

void phase_throughput(const Options& o, const Topics& t, EventCounter& events, Results& r) {
    std::cerr << "throughput: publishing " << o.n << " orders (inflight <= " << o.inflight << ")..." << std::endl;
    Client pub(o.broker, pressline::sim::fresh_client_id("bench-pub"), publisher_settings(o));
    pub.connect();
    events.begin("tput", o.n);
    std::vector<std::string> payloads;
    payloads.reserve(o.n);
    for (int i = 0; i < o.n; ++i) payloads.push_back(make_order(events.job_id("tput", i), i, 0));
    auto t0 = monotonic_ns();
    auto start = Clock::now();
    {
        WindowedPublisher w(pub, o.inflight);
        r.j["window"] = w.window();
        if (w.window() < o.inflight)
            std::cerr << "throughput: the broker's Receive Maximum is " << pub.receive_maximum()
                      << ": at most " << w.window() << " publishes outstanding" << std::endl;
        for (int i = 0; i < o.n; ++i) {
            events.sent(i, monotonic_ns());
            w.publish(t.jobs(), std::move(payloads[i]));
        }
        w.drain(std::chrono::seconds(60));
        if (w.failed()) throw std::runtime_error(std::to_string(w.failed()) + " publishes failed: " + w.last_error());
    }
    double publish_s = seconds_since(start);
    std::cerr << "throughput: all PUBACKs after " << fmt("%.2f", publish_s) << " s, waiting for job.accepted..." << std::endl;
    bool ok = events.wait_all(o.timeout_s);
    double total_s = (events.last_arrival_ns() - t0) / 1e9;
    r.j["throughput"] = {{"jobs", o.n},         {"accepted", events.accepted()},
                         {"seconds", total_s},  {"jobs_per_s", events.accepted() / total_s},
                         {"publish_seconds", publish_s}, {"complete", ok}};
    if (!ok) {
        std::cerr << "throughput: TIMEOUT after " << o.timeout_s << " s: " << events.accepted() << " of " << o.n
                  << " accepted. " << events.rejections() << std::endl;
        throw std::runtime_error("throughput phase incomplete");
    }
    if (auto rej = events.rejections(); !rej.empty()) std::cerr << "throughput: " << rej << std::endl;
}

void phase_ceiling(const Options& o, Results& r) {
    std::cerr << "ceiling: " << o.n << " messages through the broker to a paho subscriber..." << std::endl;
    std::string topic = "pressline-bench/" + std::to_string(::getpid()) + "/ceiling";
    std::mutex m;
    std::condition_variable cv;
    int received = 0;
    std::int64_t last_ns = 0;
    ConnectSettings ss;
    ss.max_inflight = 1024;
    Client sub(o.broker, pressline::sim::fresh_client_id("bench-ceiling-sub"), ss);
    sub->set_message_callback([&](mqtt::const_message_ptr) {
        std::lock_guard lock(m);
        last_ns = monotonic_ns();
        if (++received == o.n) cv.notify_all();
    });
    sub.connect();
    sub->subscribe(topic, 1)->wait_for(std::chrono::seconds(5));
    Client pub(o.broker, pressline::sim::fresh_client_id("bench-ceiling-pub"), publisher_settings(o));
    pub.connect();
    auto payload = make_order("CEILING-0", 0, 0);
    auto t0 = monotonic_ns();
    {
        WindowedPublisher w(pub, o.inflight);
        for (int i = 0; i < o.n; ++i) w.publish(topic, payload);
        w.drain(std::chrono::seconds(60));
    }
    std::unique_lock lock(m);
    bool ok = cv.wait_for(lock, std::chrono::duration<double>(o.timeout_s), [&] { return received >= o.n; });
    double s = (last_ns - t0) / 1e9;
    r.j["ceiling_mqtt"] = {{"messages", received}, {"seconds", s}, {"msgs_per_s", received / s}, {"complete", ok}};
    if (!ok) throw std::runtime_error("ceiling phase: only " + std::to_string(received) + " messages arrived");
}

void sqlite_check(int rc, sqlite3* db, const char* what) {
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        throw std::runtime_error(std::string("sqlite ") + what + ": " + sqlite3_errmsg(db));
}

void phase_sqlite(const Options& o, Results& r) {
    if (o.sqlite_dir.empty()) throw std::runtime_error("--sqlite-dir is needed for the sqlite phase");
    fs::path file = fs::path(o.sqlite_dir) / "bench-ceiling.db";
    for (const char* ext : {"", "-wal", "-shm"}) fs::remove(file.string() + ext);
    std::cerr << "sqlite: " << o.n << " x 1 KiB rows, one transaction each, WAL, synchronous=FULL in " << file << "..."
              << std::endl;
    sqlite3* db = nullptr;
    if (sqlite3_open(file.c_str(), &db) != SQLITE_OK) throw std::runtime_error("cannot open " + file.string());
    auto exec = [&](const char* sql) { sqlite_check(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), db, sql); };
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=FULL");
    exec("CREATE TABLE rows(id INTEGER PRIMARY KEY, body BLOB NOT NULL)");
    sqlite3_stmt* ins = nullptr;
    sqlite_check(sqlite3_prepare_v2(db, "INSERT INTO rows(body) VALUES(?)", -1, &ins, nullptr), db, "prepare");
    std::string body(1024, 'x');
    auto start = Clock::now();
    for (int i = 0; i < o.n; ++i) {
        exec("BEGIN");
        body[i % body.size()] = static_cast<char>('a' + i % 26);
        sqlite3_bind_blob(ins, 1, body.data(), static_cast<int>(body.size()), SQLITE_TRANSIENT);
        sqlite_check(sqlite3_step(ins), db, "insert");
        sqlite3_reset(ins);
        exec("COMMIT");
    }
    double s = seconds_since(start);
    sqlite3_finalize(ins);
    sqlite3_close(db);
    for (const char* ext : {"", "-wal", "-shm"}) fs::remove(file.string() + ext);
    r.j["ceiling_sqlite"] = {{"rows", o.n}, {"seconds", s}, {"rows_per_s", o.n / s}, {"dir", o.sqlite_dir}};
}

// While the latency phase runs: 12 KiB written and fdatasync'd 200 times a second in
// --sqlite-dir (the state dir's disk), timed. An agent commit is one such write and fsync, so
// agent outliers in a run whose probe stalled as long point at the disk; outliers with a calm
// probe are ours to find. The probe adds that much disk load to the phase.
class DiskProbe {
public:
    // The file is written in full first, so that the probe's syncs write data, not file size.
    explicit DiskProbe(const std::string& dir) : file_(fs::path(dir) / "bench-disk-probe") {
        fd_ = ::open(file_.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
        if (fd_ < 0) throw std::runtime_error("cannot create " + file_.string());
        const std::string buf(kBytes * kSlots, 'p');
        if (::pwrite(fd_, buf.data(), buf.size(), 0) != static_cast<ssize_t>(buf.size()) || ::fsync(fd_) != 0) {
            release();
            throw std::runtime_error("cannot write " + file_.string());
        }
        lat_ms_.reserve(1 << 20);
        try {
            thread_ = std::thread([this] { run(); });
        } catch (...) {
            release();
            throw;
        }
    }
    ~DiskProbe() {
        stop();
        release();
    }
    DiskProbe(const DiskProbe&) = delete;
    DiskProbe& operator=(const DiskProbe&) = delete;
    // Stops probing; returns the fdatasync durations in ms.
    std::vector<double> stop() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
        return lat_ms_;
    }
    // The syncs of kStallMs or more, as [start, end] in monotonic ns (after stop()).
    static constexpr double kStallMs = 20.0;
    const std::vector<std::pair<std::int64_t, std::int64_t>>& stalls() const { return stalls_; }

private:
    static constexpr std::size_t kBytes = 12 * 1024;
    static constexpr long kSlots = 256;
    static constexpr auto kPeriod = std::chrono::milliseconds(5);

    void release() noexcept {
        ::close(fd_);
        std::error_code ec;
        fs::remove(file_, ec);
    }
    void run() {
        const std::string buf(kBytes, 'q');
        const auto start = Clock::now();
        for (long i = 0; !stop_; ++i) {
            // After a stall, go on at the next tick instead of catching up in a burst.
            i = std::max<long>(i, static_cast<long>((Clock::now() - start) / kPeriod));
            std::this_thread::sleep_until(start + kPeriod * i);
            const std::int64_t t0 = monotonic_ns();
            const auto at = static_cast<off_t>((i % kSlots) * static_cast<long>(kBytes));
            if (::pwrite(fd_, buf.data(), buf.size(), at) != static_cast<ssize_t>(buf.size()) || ::fdatasync(fd_) != 0) {
                std::cerr << "latency: the disk probe stopped: " << std::strerror(errno) << std::endl;
                return;  // the probe only informs; the phase goes on without it
            }
            const std::int64_t t1 = monotonic_ns();
            const double ms = static_cast<double>(t1 - t0) / 1e6;
            if (lat_ms_.size() < lat_ms_.capacity()) lat_ms_.push_back(ms);
            if (ms >= kStallMs && stalls_.size() < 100000) stalls_.emplace_back(t0, t1);
        }
    }
    fs::path file_;
    int fd_ = -1;
    std::atomic<bool> stop_{false};
    std::vector<double> lat_ms_;
    std::vector<std::pair<std::int64_t, std::int64_t>> stalls_;
    std::thread thread_;
};

// Agent outliers (latency >= DiskProbe::kStallMs) and how many of them were in flight while the
// probe's own fdatasync stalled as long: those are the disk's.
std::pair<int, int> outliers_during_stalls(const std::vector<std::pair<std::int64_t, std::int64_t>>& spans,
                                           const std::vector<std::pair<std::int64_t, std::int64_t>>& stalls) {
    int outliers = 0, during = 0;
    const auto min_ns = static_cast<std::int64_t>(DiskProbe::kStallMs * 1e6);
    for (const auto& [sent, arrived] : spans) {
        if (arrived - sent < min_ns) continue;
        ++outliers;
        if (std::any_of(stalls.begin(), stalls.end(),
                        [&](const auto& st) { return st.first < arrived && st.second > sent; }))
            ++during;
    }
    return {outliers, during};
}

void phase_latency(const Options& o, const Topics& t, EventCounter& events, Results& r) {
    int n = static_cast<int>(std::lround(o.rate * o.latency_s));
    // A second at the same rate first, not counted: an agent idle for a second or more (as after
    // the ceiling phases) has paho's receive thread in its 100 ms nap after each 1 s poll
    // timeout, which delays the first orders of a stream by up to 100 ms. That is the start of
    // a stream, not the steady state this phase measures; its worst latency is reported apart.
    int warm = std::max(1, static_cast<int>(std::lround(o.rate)));
    std::cerr << "latency: " << warm << " warm-up orders, then " << n << " at " << o.rate << "/s..." << std::endl;
    std::optional<DiskProbe> probe;
    try {
        if (!o.sqlite_dir.empty()) probe.emplace(o.sqlite_dir);
    } catch (const std::exception& e) {
        std::cerr << "latency: no disk probe: " << e.what() << std::endl;
    }
    Client pub(o.broker, pressline::sim::fresh_client_id("bench-lat"), publisher_settings(o));
    pub.connect();
    const auto period = std::chrono::duration<double>(1.0 / o.rate);
    auto stream = [&](const std::string& phase, int count) {
        events.begin(phase, count);
        const auto begun = Clock::now();
        WindowedPublisher w(pub, o.inflight);
        for (int i = 0; i < count; ++i) {
            std::this_thread::sleep_until(begun + std::chrono::duration_cast<Clock::duration>(period * i));
            auto now = monotonic_ns();
            events.sent(i, now);
            w.publish(t.jobs(), make_order(events.job_id(phase, i), i, now));
        }
        w.drain(std::chrono::seconds(60));
        return begun;
    };
    stream("warm", warm);
    if (!events.wait_all(o.timeout_s)) throw std::runtime_error("latency phase: warm-up orders were not all accepted");
    const double warm_max_ms = pressline::bench::percentile(events.latencies(), 1.0) / 1e6;
    const auto start = stream("lat", n);
    double send_s = seconds_since(start);
    bool ok = events.wait_all(o.timeout_s);
    const std::vector<double> disk = probe ? probe->stop() : std::vector<double>{};
    auto lat = events.latencies();
    auto halves = events.halves();
    r.j["latency"] = {{"jobs", n},
                      {"warmup_jobs", warm},
                      {"warmup_max_ms", warm_max_ms},
                      {"accepted", static_cast<int>(lat.size())},
                      {"target_rate", o.rate},
                      {"achieved_rate", n / send_s},
                      {"p50_ms", pressline::bench::percentile(lat, 0.50) / 1e6},
                      {"p99_ms", pressline::bench::percentile(lat, 0.99) / 1e6},
                      {"max_ms", pressline::bench::percentile(lat, 1.0) / 1e6},
                      {"inbound_p99_ms", pressline::bench::percentile(halves.first, 0.99)},
                      {"inbound_max_ms", pressline::bench::percentile(halves.first, 1.0)},
                      {"outbound_p99_ms", pressline::bench::percentile(halves.second, 0.99)},
                      {"outbound_max_ms", pressline::bench::percentile(halves.second, 1.0)},
                      {"complete", ok}};
    if (!disk.empty()) {
        const auto [outliers, during] = outliers_during_stalls(events.spans(), probe->stalls());
        r.j["latency"]["outliers_20ms"] = outliers;
        r.j["latency"]["outliers_during_disk_stall"] = during;
        r.j["latency"]["disk_probe"] = {
            {"stalls_20ms", probe->stalls().size()},
            {"syncs", disk.size()},
            {"p99_ms", pressline::bench::percentile(disk, 0.99)},
            {"max_ms", pressline::bench::percentile(disk, 1.0)},
            {"over_50ms", std::count_if(disk.begin(), disk.end(), [](double v) { return v > 50.0; })}};
    }
    if (!ok) throw std::runtime_error("latency phase: only " + std::to_string(lat.size()) + " of " + std::to_string(n) + " accepted");
}

struct ProcSample {
    double cpu_s = 0;
    double rss_mib = 0, hwm_mib = 0;
};

ProcSample sample_proc(int pid) {
    ProcSample s;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string content((std::istreambuf_iterator<char>(stat)), {});
    if (content.empty()) throw std::runtime_error("agent pid " + std::to_string(pid) + " is gone");
    // Fields after "(comm)": state is field 3; utime and stime are fields 14 and 15.
    std::istringstream rest(content.substr(content.rfind(')') + 2));
    std::vector<std::string> f((std::istream_iterator<std::string>(rest)), {});
    long ticks = ::sysconf(_SC_CLK_TCK);
    s.cpu_s = (std::stod(f.at(11)) + std::stod(f.at(12))) / static_cast<double>(ticks);
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmRSS:", 0) == 0) s.rss_mib = std::stod(line.substr(6)) / 1024.0;
        if (line.rfind("VmHWM:", 0) == 0) s.hwm_mib = std::stod(line.substr(6)) / 1024.0;
    }
    return s;
}

void phase_idle(const Options& o, Results& r) {
    if (o.agent_pid <= 0) throw std::runtime_error("--agent-pid is needed for the idle phase");
    std::cerr << "idle: sampling the agent (pid " << o.agent_pid << ") for " << o.idle_s << " s..." << std::endl;
    auto a = sample_proc(o.agent_pid);
    auto start = Clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(o.idle_s));
    auto b = sample_proc(o.agent_pid);
    double wall = seconds_since(start);
    r.j["idle"] = {{"seconds", wall},
                   {"cpu_percent", (b.cpu_s - a.cpu_s) / wall * 100.0},
                   {"rss_mib", b.rss_mib},
                   {"peak_rss_mib", b.hwm_mib}};
}

// ---- report -----------------------------------------------------------------------------------

void print_table(const Options& o, const Results& r) {
    const auto& j = r.j;
    auto num = [&](const char* phase, const char* key) {
        return j.contains(phase) && j[phase].contains(key) && j[phase][key].is_number() ? j[phase][key].get<double>() : NAN;
    };
    int window = j.contains("window") ? j["window"].get<int>() : o.inflight;
    std::cout << "\nPressline intake benchmark (N=" << o.n << ", outstanding publishes <= " << window << ", broker "
              << o.broker << ")\n";
    std::cout << "  metric                              value\n";
    std::cout << "  ----------------------------------  -----------------------------------------\n";
    double jobs = num("throughput", "jobs_per_s");
    auto row = [](const std::string& name, const std::string& value) {
        std::string n = name;
        n.resize(34, ' ');
        std::cout << "  " << n << "  " << value << "\n";
    };
    if (j.contains("throughput"))
        row("intake throughput", fmt("%.0f jobs/s", jobs) + fmt("  (%.0f jobs", num("throughput", "accepted")) +
                                     fmt(" in %.2f s;", num("throughput", "seconds")) +
                                     fmt(" PUBACKs done after %.2f s)", num("throughput", "publish_seconds")));
    if (j.contains("ceiling_mqtt")) {
        double c = num("ceiling_mqtt", "msgs_per_s");
        row("ceiling (a) broker -> paho sub", fmt("%.0f msg/s", c));
        if (j.contains("throughput")) row("  intake / ceiling (a)", fmt("%.1f %%", 100.0 * jobs / c));
    }
    if (j.contains("ceiling_sqlite")) {
        double c = num("ceiling_sqlite", "rows_per_s");
        row("ceiling (b) sqlite 1 txn/row FULL", fmt("%.0f rows/s", c));
        if (j.contains("throughput")) row("  intake / ceiling (b)", fmt("%.1f %%", 100.0 * jobs / c));
    }
    if (j.contains("latency"))
        row(fmt("latency @ %g jobs/s", num("latency", "target_rate")),
            fmt("p50 %.2f ms", num("latency", "p50_ms")) + fmt("  p99 %.2f ms", num("latency", "p99_ms")) +
                fmt("  max %.2f ms", num("latency", "max_ms")) + fmt("  (%.0f jobs,", num("latency", "jobs")) +
                fmt(" sent at %.3g/s;", num("latency", "achieved_rate")) +
                fmt(" warm-up of %.0f", num("latency", "warmup_jobs")) +
                fmt(" before: max %.1f ms)", num("latency", "warmup_max_ms")));
    if (j.contains("latency"))
        row("  split at the commit (ms clock)",
            fmt("to commit p99 %.0f ms", num("latency", "inbound_p99_ms")) +
                fmt(" max %.0f ms;", num("latency", "inbound_max_ms")) +
                fmt("  event back p99 %.0f ms", num("latency", "outbound_p99_ms")) +
                fmt(" max %.0f ms", num("latency", "outbound_max_ms")));
    if (j.contains("latency") && j["latency"].contains("disk_probe")) {
        const auto& p = j["latency"]["disk_probe"];
        row("  disk alone meanwhile (fdatasync)",
            fmt("p99 %.2f ms", p["p99_ms"].get<double>()) + fmt("  max %.1f ms", p["max_ms"].get<double>()) +
                fmt("  (%.0f of", p["over_50ms"].get<double>()) + fmt(" %.0f syncs over 50 ms)", p["syncs"].get<double>()));
        row("  agent outliers >= 20 ms",
            fmt("%.0f jobs,", num("latency", "outliers_20ms")) +
                fmt(" %.0f of them in flight while the disk alone stalled >= 20 ms",
                    num("latency", "outliers_during_disk_stall")));
    }
    if (j.contains("idle"))
        row(fmt("agent idle over %.0f s", num("idle", "seconds")),
            fmt("RSS %.1f MiB", num("idle", "rss_mib")) + fmt("  (peak %.1f MiB)", num("idle", "peak_rss_mib")) +
                fmt("  CPU %.2f %%", num("idle", "cpu_percent")));
    std::cout << std::flush;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"bench_intake: intake throughput/latency of a running Pressline agent, with ceilings"};
    Options o;
    app.add_option("--broker", o.broker, "broker URI")->capture_default_str();
    app.add_option("--shop", o.shop, "station.shop of the agent");
    app.add_option("--station", o.station, "station.id of the agent");
    app.add_option("--prefix", o.prefix, "mqtt.topic_prefix")->capture_default_str();
    app.add_option("--agent-pid", o.agent_pid, "agent process id (idle phase)");
    app.add_option("--sqlite-dir", o.sqlite_dir, "directory for the SQLite ceiling (same disk as state_dir)");
    app.add_option("-n,--n", o.n, "orders for throughput/ceilings")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--inflight", o.inflight, "max outstanding QoS 1 publishes")->capture_default_str()->check(CLI::Range(1, 65535));
    app.add_option("--rate", o.rate, "latency phase: orders per second")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--latency-seconds", o.latency_s, "latency phase duration")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--idle-seconds", o.idle_s, "idle phase duration")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--timeout", o.timeout_s, "seconds to wait for the agent per phase")->capture_default_str();
    app.add_option("--phases", o.phases, "comma-separated subset of throughput,ceiling,sqlite,latency,idle")
        ->capture_default_str();
    app.add_option("--results", o.results_file, "also write the results as JSON to this file");
    CLI11_PARSE(app, argc, argv);

    auto want = [&](const char* phase) { return ("," + o.phases + ",").find("," + std::string(phase) + ",") != std::string::npos; };
    Results r;
    int rc = 0;
    try {
        Topics t{o.prefix, o.shop, o.station};
        std::optional<EventCounter> events;
        if (want("throughput") || want("latency")) {
            if (o.shop.empty() || o.station.empty()) throw std::runtime_error("--shop and --station are needed");
            events.emplace(o, t, "BENCH-" + std::to_string(::getpid()) + "-" + std::to_string(std::time(nullptr)));
        }
        if (want("throughput")) phase_throughput(o, t, *events, r);
        if (want("ceiling")) phase_ceiling(o, r);
        if (want("sqlite")) phase_sqlite(o, r);
        if (want("latency")) phase_latency(o, t, *events, r);
        if (want("idle")) phase_idle(o, r);
    } catch (const std::exception& e) {
        std::cerr << "bench_intake: " << e.what() << std::endl;
        rc = 1;
    }
    print_table(o, r);
    if (!o.results_file.empty()) std::ofstream(o.results_file) << r.j.dump(2) << "\n";
    return rc;
}
