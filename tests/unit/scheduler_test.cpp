// Unit tests for agent/src/scheduler.cpp: the release-order rules written in scheduler.hpp, on a
// fake clock (milliseconds).
#include "pressline/agent/scheduler.hpp"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace pressline::agent::sched {
namespace {

constexpr std::int64_t s = 1000;
constexpr std::int64_t min = 60 * s;

// Setup keys (the agent computes them; the scheduler only compares them).
const std::string L = "light/16x20";
const std::string D = "dark/16x20";
const std::string S = "dark/14x16";

Job job(std::string id, Priority priority, std::optional<std::int64_t> due_ms, std::int64_t arrival_ms,
        const std::string& key = L) {
    Job j;
    j.job_id = std::move(id);
    j.priority = priority;
    j.due_ms = due_ms;
    j.arrival_ms = arrival_ms;
    j.color_class = key.substr(0, key.find('/'));
    j.platen = key.substr(key.find('/') + 1);
    j.method = "dtg";
    j.setup_key = key;
    return j;
}

Printer any_printer(std::string name = "p1") {
    Printer p;
    p.name = std::move(name);
    p.platens = {"16x20", "14x16"};
    p.color_classes = {"light", "dark"};
    p.methods = {"dtg"};
    return p;
}

Printer light_16x20_printer(std::string name = "p2") {
    Printer p;
    p.name = std::move(name);
    p.platens = {"16x20"};
    p.color_classes = {"light"};
    p.methods = {"dtg"};
    return p;
}

std::string picked_id(const Pick& p) { return p.job ? p.job->job_id : std::string("-"); }

constexpr auto X = Priority::express;
constexpr auto St = Priority::standard;
constexpr auto E = Priority::economy;
constexpr std::optional<std::int64_t> none = std::nullopt;

// ---------------------------------------------------------------------------------------------
// Strings

TEST(SchedulerPriority, StringsRoundTrip) {
    for (auto p : {X, St, E}) EXPECT_EQ(priority_from_string(to_string(p)), p);
    EXPECT_EQ(to_string(X), "express");
    EXPECT_FALSE(priority_from_string("Express").has_value());
    EXPECT_FALSE(priority_from_string("").has_value());
}

// ---------------------------------------------------------------------------------------------
// Strict order

TEST(SchedulerStrict, ClassThenDueThenArrivalThenId) {
    const Policy policy;  // no aging, no batching
    const std::vector<Job> q = {
        job("e1", E, 1 * min, 0),           // economy loses to any standard, even with an early due
        job("s-late", St, 90 * min, 0),     // later due
        job("s-b", St, 60 * min, 5 * s),    // same due as s-a/s-c, later arrival
        job("s-c", St, 60 * min, 1 * s),    // same due and arrival as s-a: id decides
        job("s-a", St, 60 * min, 1 * s),
        job("x1", X, none, 9 * min),        // express first, even without due and arriving last
    };
    std::vector<std::string> order;
    std::vector<Job> left = q;
    while (!left.empty()) {
        const Pick p = pick(left, any_printer(), policy, 10 * min);
        ASSERT_NE(p.job, nullptr);
        order.push_back(p.job->job_id);
        left.erase(left.begin() + (p.job - left.data()));
    }
    EXPECT_EQ(order, (std::vector<std::string>{"x1", "s-a", "s-c", "s-b", "s-late", "e1"}));
}

TEST(SchedulerStrict, NoDueComesLastInItsClass) {
    const Policy policy;
    const std::vector<Job> q = {job("none-early", St, none, 0), job("due-far", St, 1000 * min, 5 * min),
                                job("eco-due", E, 1 * min, 0)};
    EXPECT_EQ(picked_id(pick(q, any_printer(), policy, 6 * min)), "due-far");
    EXPECT_TRUE(before(q[1], q[0], policy, 6 * min));
    EXPECT_FALSE(before(q[0], q[1], policy, 6 * min));
    // ...but a class still beats any due_by.
    EXPECT_TRUE(before(q[0], q[2], policy, 6 * min));
}

TEST(SchedulerStrict, TieBreakIsDeterministicWhateverTheQueueOrder) {
    const Policy policy;
    std::vector<Job> q = {job("J-3", St, 10 * min, 0), job("J-1", St, 10 * min, 0), job("J-2", St, 10 * min, 0)};
    std::sort(q.begin(), q.end(), [](const Job& a, const Job& b) { return a.job_id < b.job_id; });
    do {
        EXPECT_EQ(picked_id(pick(q, any_printer(), policy, 1 * min)), "J-1");
    } while (std::next_permutation(q.begin(), q.end(),
                                   [](const Job& a, const Job& b) { return a.job_id < b.job_id; }));
}

// ---------------------------------------------------------------------------------------------
// Aging

TEST(SchedulerAging, OneClassPerFullPeriodExactlyAtTheBoundary) {
    const Policy policy{.aging_ms = 10 * min};
    const Job eco = job("eco", E, none, 1 * min);
    const Job std_job = job("std", St, none, 1 * min);
    EXPECT_EQ(effective_priority(eco, policy, 11 * min - 1), E);
    EXPECT_EQ(effective_priority(eco, policy, 11 * min), St);  // waited exactly 10 min
    EXPECT_EQ(effective_priority(eco, policy, 21 * min - 1), St);
    EXPECT_EQ(effective_priority(eco, policy, 21 * min), X);   // exactly 2 periods
    EXPECT_EQ(effective_priority(eco, policy, 500 * min), X);  // never above express
    EXPECT_EQ(effective_priority(std_job, policy, 11 * min - 1), St);
    EXPECT_EQ(effective_priority(std_job, policy, 11 * min), X);
    // Off, and clock before arrival (waited counts as 0).
    EXPECT_EQ(effective_priority(eco, Policy{}, 500 * min), E);
    EXPECT_EQ(effective_priority(eco, policy, 0), E);
}

TEST(SchedulerAging, AgedJobCompetesByDueInsideItsNewClass) {
    const Policy policy{.aging_ms = 10 * min};
    // eco arrived at 0 with an early due; std arrived at 5 min with a later due.
    const std::vector<Job> q = {job("std", St, 60 * min, 5 * min), job("eco", E, 30 * min, 0)};
    Pick p = pick(q, any_printer(), policy, 10 * min - 1);
    EXPECT_EQ(picked_id(p), "std");
    EXPECT_EQ(p.why, "standard");
    p = pick(q, any_printer(), policy, 10 * min);
    EXPECT_EQ(picked_id(p), "eco");
    EXPECT_EQ(p.why, "standard (aged economy→standard)");
    // At 15 min the standard job is express (waited 10 min), the economy one only standard.
    p = pick(q, any_printer(), policy, 15 * min);
    EXPECT_EQ(picked_id(p), "std");
    EXPECT_EQ(p.why, "express (aged standard→express)");
}

// ---------------------------------------------------------------------------------------------
// Routing

TEST(SchedulerRouting, CapabilityNeedsPlatenColourAndMethod) {
    const Printer p2 = light_16x20_printer();
    EXPECT_TRUE(capable(p2, job("a", St, none, 0, L)));
    EXPECT_FALSE(capable(p2, job("b", St, none, 0, D)));
    EXPECT_FALSE(capable(p2, job("c", St, none, 0, S)));
    Job screen = job("d", St, none, 0, L);
    screen.method = "screen";
    EXPECT_FALSE(capable(p2, screen));
    EXPECT_EQ(missing_capability(p2, screen), "method screen");
    EXPECT_EQ(missing_capability(p2, job("c", St, none, 0, S)), "platen 14x16, color_class dark");
    EXPECT_EQ(missing_capability(p2, job("a", St, none, 0, L)), "");
}

TEST(SchedulerRouting, NoCapablePrinterMeansNoPick) {
    const Policy policy{.aging_ms = 1 * min, .batch_window_ms = 60 * min, .batch_max = 5};
    const std::vector<Printer> printers = {light_16x20_printer("p2"), light_16x20_printer("p3")};
    const std::vector<Job> q = {job("dark", X, 1 * min, 0, D), job("small", St, none, 0, S)};
    for (const Printer& p : printers) {
        const Pick none_pick = pick(q, p, policy, 100 * min);
        EXPECT_EQ(none_pick.job, nullptr);
        EXPECT_EQ(none_pick.why, "no capable job");
    }
    EXPECT_FALSE(any_capable(printers, q[0]));
    EXPECT_FALSE(any_capable(printers, q[1]));
    EXPECT_TRUE(any_capable(std::vector<Printer>{light_16x20_printer(), any_printer()}, q[0]));
    EXPECT_FALSE(any_capable({}, q[0]));
    EXPECT_EQ(pick({}, any_printer(), policy, 0).job, nullptr);
}

TEST(SchedulerRouting, BestCapableJobNotBestJob) {
    const Policy policy;
    const std::vector<Job> q = {job("dark-express", X, none, 0, D), job("light-eco", E, none, 0, L)};
    EXPECT_EQ(picked_id(pick(q, light_16x20_printer(), policy, 1 * min)), "light-eco");
    EXPECT_EQ(picked_id(pick(q, any_printer(), policy, 1 * min)), "dark-express");
}

// ---------------------------------------------------------------------------------------------
// Batching

Printer on(const std::string& key, int count, std::int64_t started_ms = 0) {
    Printer p = any_printer();
    p.setup_key = key;
    p.batch_count = count;
    p.batch_started_ms = started_ms;
    return p;
}

TEST(SchedulerBatching, PrefersSetupKeyWithinWindowNotOutside) {
    const Policy policy{.batch_window_ms = 30 * min, .batch_max = 6};
    const std::vector<Job> q = {
        job("best", St, 100 * min, 0, L),
        job("dark-edge", St, 130 * min, 1 * s, D),      // exactly window after best: inside
        job("dark-out", St, 130 * min + 1, 0, D),       // 1 ms beyond: outside
        job("dark-eco", E, 100 * min, 0, D),            // other class: never batched
    };
    Pick p = pick(q, on(D, 2), policy, 10 * min);
    EXPECT_EQ(picked_id(p), "dark-edge");
    EXPECT_EQ(p.why, "batch:dark/16x20 3/6 ahead of best");

    const std::vector<Job> only_out = {q[0], q[2], q[3]};
    p = pick(only_out, on(D, 2), policy, 10 * min);
    EXPECT_EQ(picked_id(p), "best");
    EXPECT_EQ(p.why, "standard");

    // A dated best job never batches with an undated one.
    const std::vector<Job> undated = {q[0], job("dark-none", St, none, 0, D)};
    EXPECT_EQ(picked_id(pick(undated, on(D, 2), policy, 10 * min)), "best");
}

TEST(SchedulerBatching, UndatedJobsUseTheWindowOnArrival) {
    const Policy policy{.batch_window_ms = 30 * min, .batch_max = 6};
    const std::vector<Job> q = {job("best", St, none, 10 * min, L), job("dark-in", St, none, 40 * min, D),
                                job("dark-out", St, none, 40 * min + 1, D)};
    EXPECT_EQ(picked_id(pick(q, on(D, 1), policy, 50 * min)), "dark-in");
    const std::vector<Job> out = {q[0], q[2]};
    EXPECT_EQ(picked_id(pick(out, on(D, 1), policy, 50 * min)), "best");
}

TEST(SchedulerBatching, BatchMaxEndsTheBatch) {
    const Policy policy{.batch_window_ms = 30 * min, .batch_max = 3};
    const std::vector<Job> q = {job("best", St, 100 * min, 0, L), job("dark", St, 110 * min, 0, D)};
    EXPECT_EQ(picked_id(pick(q, on(D, 2), policy, 1 * min)), "dark");
    const Pick p = pick(q, on(D, 3), policy, 1 * min);
    EXPECT_EQ(picked_id(p), "best");
    EXPECT_EQ(p.why, "standard; batch:dark/16x20 3/3 full");

    // Through released(): the 4th consecutive dark pick is refused, the light job goes.
    Printer printer = on(D, 0);
    std::vector<Job> queue = {job("best", St, 100 * min, 0, L), job("d1", St, 101 * min, 0, D),
                              job("d2", St, 102 * min, 0, D), job("d3", St, 103 * min, 0, D),
                              job("d4", St, 104 * min, 0, D)};
    std::vector<std::string> order;
    for (std::int64_t t = 1 * min; !queue.empty(); t += 1 * min) {
        const Pick next = pick(queue, printer, policy, t);
        ASSERT_NE(next.job, nullptr);
        order.push_back(next.job->job_id);
        released(printer, *next.job, t);
        queue.erase(queue.begin() + (next.job - queue.data()));
    }
    EXPECT_EQ(order, (std::vector<std::string>{"d1", "d2", "d3", "best", "d4"}));
}

TEST(SchedulerBatching, BatchMaxWaitEndsTheBatch) {
    const Policy policy{.batch_window_ms = 30 * min, .batch_max = 10, .batch_max_wait_ms = 5 * min};
    const std::vector<Job> q = {job("best", St, 100 * min, 0, L), job("dark", St, 110 * min, 0, D)};
    // Batch of dark started at 10 min.
    EXPECT_EQ(picked_id(pick(q, on(D, 4, 10 * min), policy, 15 * min - 1)), "dark");
    const Pick p = pick(q, on(D, 4, 10 * min), policy, 15 * min);
    EXPECT_EQ(picked_id(p), "best");
    EXPECT_EQ(p.why, "standard; batch:dark/16x20 wait over");
    // No batch running yet (count 0): this pick would start one, so the preference holds.
    EXPECT_EQ(picked_id(pick(q, on(D, 0, 0), policy, 60 * min)), "dark");
}

TEST(SchedulerBatching, ExpressNeverWaits) {
    const Policy policy{.aging_ms = 10 * min, .batch_window_ms = 600 * min, .batch_max = 100};
    const std::vector<Job> q = {job("express-light", X, 500 * min, 0, L),
                                job("express-dark", X, 501 * min, 0, D)};
    // Both express, the printer is on dark: strict order, no batching among express jobs.
    Pick p = pick(q, on(D, 1), policy, 1 * min);
    EXPECT_EQ(picked_id(p), "express-light");
    EXPECT_EQ(p.why, "express");
    // An aged job is express too.
    const std::vector<Job> aged = {job("aged", St, 900 * min, 0, L), job("dark", St, 1 * min, 5 * min, D)};
    EXPECT_EQ(picked_id(pick(aged, on(D, 1), policy, 10 * min)), "aged");
}

TEST(SchedulerBatching, OffMeansStrictOrder) {
    const std::vector<Job> q = {job("best", St, 100 * min, 0, L), job("dark", St, 101 * min, 0, D)};
    EXPECT_EQ(picked_id(pick(q, on(D, 1), Policy{.batch_window_ms = 0, .batch_max = 6}, 1 * min)), "best");
    EXPECT_EQ(picked_id(pick(q, on(D, 1), Policy{.batch_window_ms = 60 * min, .batch_max = 1}, 1 * min)),
              "best");
    EXPECT_EQ(picked_id(pick(q, on("", 0), Policy{.batch_window_ms = 60 * min, .batch_max = 6}, 1 * min)),
              "best");
    EXPECT_EQ(picked_id(pick(q, on(D, 1), Policy{.batch_window_ms = 60 * min, .batch_max = 6}, 1 * min)),
              "dark");
}

TEST(SchedulerBatching, ReleasedKeepsTheRun) {
    Printer p = any_printer();
    released(p, job("a", St, none, 0, D), 5 * min);
    EXPECT_EQ(p.setup_key, D);
    EXPECT_EQ(p.batch_count, 1);
    EXPECT_EQ(p.batch_started_ms, 5 * min);
    released(p, job("b", St, none, 0, D), 6 * min);
    EXPECT_EQ(p.batch_count, 2);
    EXPECT_EQ(p.batch_started_ms, 5 * min);
    released(p, job("c", St, none, 0, L), 7 * min);
    EXPECT_EQ(p.setup_key, L);
    EXPECT_EQ(p.batch_count, 1);
    EXPECT_EQ(p.batch_started_ms, 7 * min);
}

// ---------------------------------------------------------------------------------------------
// A shift on a fake clock: 30 arrivals, printers ready at fixed ticks.

// Times: m(minutes, seconds).
constexpr std::int64_t m(std::int64_t minutes, std::int64_t seconds = 0) { return minutes * min + seconds * s; }

// J03 arrives at 0:00 (queued before the first tick); every other job between ticks.
std::vector<Job> shift_arrivals() {
    return {
        job("J01", St, m(50), m(0, 10), L),
        job("J02", St, m(40), m(0, 20), D),
        job("J03", E, none, m(0, 0), L),
        job("J04", St, none, m(0, 40), L),
        job("J05", X, m(100), m(0, 50), D),
        job("J06", St, m(45), m(1, 30), D),
        job("J07", St, m(55), m(3, 30), D),
        job("J08", St, m(70), m(4, 10), L),
        job("J09", St, m(80), m(5, 10), L),
        job("J10", St, m(95) + 1, m(5, 20), D),  // 1 ms after J09's due + window
        job("J11", St, m(120), m(7, 40), D),
        job("J12", St, m(125), m(8, 10), D),
        job("J13", St, m(118), m(8, 20), L),
        job("J14", X, none, m(9, 30), L),
        job("J15", St, m(130), m(11, 10), L),
        job("J16", St, m(128), m(11, 20), D),
        job("J17", St, m(135), m(12, 30), L),
        job("J18", St, m(150), m(13, 40), S),
        job("J19", St, m(140), m(14, 50), D),
        job("J20", St, m(145), m(15, 30), S),
        job("J21", St, m(142), m(16, 20), L),
        job("J22", E, m(146), m(17, 10), S),
        job("J23", St, m(155), m(18, 10), D),
        job("J24", St, m(158), m(19, 10), S),
        job("J25", St, m(156), m(19, 20), L),
        job("J26", St, m(165), m(20, 10), S),
        job("J27", St, m(170), m(21, 10), D),
        job("J28", X, m(200), m(22, 30), L),
        job("J29", St, m(168), m(23, 40), S),
        job("J30", St, m(175), m(24, 30), D),
    };
}

struct Station {
    Printer printer;
    int every_ticks = 1;  // ready on ticks divisible by this
};

// Every minute of fake time: add the arrivals whose time has come, then each ready printer (in
// the given order) takes one pick. Records "t<minute> <printer> <job> | <why>".
std::vector<std::string> run_shift(std::vector<Station> stations, const Policy& policy) {
    std::vector<Job> pending = shift_arrivals();
    std::vector<Job> queue;
    std::vector<std::string> log;
    for (std::int64_t tick = 1; tick <= 120 && (!pending.empty() || !queue.empty()); ++tick) {
        const std::int64_t now = tick * min;
        for (auto it = pending.begin(); it != pending.end();) {
            if (it->arrival_ms <= now) {
                queue.push_back(*it);
                it = pending.erase(it);
            } else {
                ++it;
            }
        }
        for (Station& station : stations) {
            if (tick % station.every_ticks != 0) continue;
            const Pick p = pick(queue, station.printer, policy, now);
            if (p.job == nullptr) continue;
            std::string line = "t" + std::to_string(tick) + " " + station.printer.name + " " + p.job->job_id;
            if (stations.size() == 1) line += " | " + p.why;
            log.push_back(line);
            released(station.printer, *p.job, now);
            queue.erase(queue.begin() + (p.job - queue.data()));
        }
    }
    EXPECT_TRUE(queue.empty());
    return log;
}

// Policy: aging 14 min, window 15 min, batches of at most 3, no batch time limit. One printer that
// takes everything, starting with an unknown setup, ready every minute.
TEST(SchedulerShift, OnePrinterReleasesInRuleOrder) {
    const Policy policy{.aging_ms = 14 * min, .batch_window_ms = 15 * min, .batch_max = 3};
    const std::vector<std::string> expected = {
        "t1 p1 J05 | express",
        // J02 (due 40) then J06 (due 45): strict, both dark -> dark run 3.
        "t2 p1 J02 | standard",
        "t3 p1 J06 | standard",
        // J07 (dark, due 55) is within 15 min of J01 (due 50), but the dark run is 3/3: J01.
        "t4 p1 J01 | standard; batch:dark/16x20 3/3 full",
        // Best is J07 (dark, 55); printer is light 1/3; J08 light due 70 = 55 + 15, the window's
        // inclusive edge: batched ahead.
        "t5 p1 J08 | batch:light/16x20 2/3 ahead of J07",
        // J09 (light, 80) is outside J07's window (70); J04 has no due_by (never within a dated window).
        "t6 p1 J07 | standard",
        // Best J09 (light, 80); printer dark 1/3; J10's due is 95:00.001, 1 ms outside 80 + 15.
        "t7 p1 J09 | standard",
        "t8 p1 J10 | standard",
        // Best J13 (light, 118); printer dark 1/3; J11 (120) and J12 (125) within 133: J11 first.
        "t9 p1 J11 | batch:dark/16x20 2/3 ahead of J13",
        // Express J14 arrived 9:30: taken although J12 (dark, 125) would continue the dark batch.
        "t10 p1 J14 | express",
        "t11 p1 J13 | standard",
        // Best J12 (dark, 125); printer light 2/3; J15 (light, 130) within 140.
        "t12 p1 J15 | batch:light/16x20 3/3 ahead of J12",
        // Light run 3/3 (J17 light 135 would be inside the window): J12.
        "t13 p1 J12 | standard; batch:light/16x20 3/3 full",
        // J03 (economy since 0:00) is standard from exactly 14:00 on, but undated: after J16.
        "t14 p1 J16 | standard",
        // J04 (standard, 0:40) has waited 14:20 at t15: express, ahead of every dated job.
        "t15 p1 J04 | express (aged standard→express)",
        "t16 p1 J17 | standard",
        // Best J19 (dark, 140); printer light 2/3; J21 (light, 142, arrived 16:20) within 155.
        "t17 p1 J21 | batch:light/16x20 3/3 ahead of J19",
        "t18 p1 J19 | standard; batch:light/16x20 3/3 full",
        // Best J20 (dark/14x16, 145); printer dark/16x20 1/3; J23 (155) within 160.
        "t19 p1 J23 | batch:dark/16x20 2/3 ahead of J20",
        "t20 p1 J20 | standard",
        "t21 p1 J18 | standard",
        // Best J25 (light, 156); printer dark/14x16 2/3; J24 (158) and J26 (165) within 171.
        "t22 p1 J24 | batch:dark/14x16 3/3 ahead of J25",
        "t23 p1 J28 | express",
        "t24 p1 J25 | standard",
        "t25 p1 J26 | standard",
        "t26 p1 J29 | standard",
        "t27 p1 J27 | standard",
        // J03 has waited exactly 28:00 = 2 aging periods: express, ahead of J30 (standard).
        "t28 p1 J03 | express (aged economy→express)",
        "t29 p1 J30 | standard",
        // J22 (economy, due 146) waited 12:50 < 14: still economy, last.
        "t30 p1 J22 | economy",
    };
    EXPECT_EQ(run_shift({{any_printer("p1"), 1}}, policy), expected);
}

// Two printers, batching off (strict order + aging): p2 takes light 16x20 only and is asked first
// every minute; p1 takes everything but is ready only every second minute. Dark and 14x16 jobs
// wait for p1 even while p2 is idle.
TEST(SchedulerShift, TwoPrintersRouteByCapability) {
    const Policy policy{.aging_ms = 14 * min};
    const std::vector<std::string> expected = {
        "t1 p2 J01",   // best light job: J01 (due 50) before J04 (undated) and J03 (economy)
        "t2 p2 J04",   //
        "t2 p1 J05",   // express
        "t3 p2 J03",   // the only light job left; J02 and J06 are dark
        "t4 p1 J02",   // due 40
        "t5 p2 J08",
        "t6 p2 J09",
        "t6 p1 J06",   // due 45
        "t8 p1 J07",   // due 55, before J10 (95) and J11 (120)
        "t9 p2 J13",
        "t10 p2 J14",  // express, light
        "t10 p1 J10",
        "t12 p2 J15",
        "t12 p1 J11",
        "t13 p2 J17",
        "t14 p1 J12",
        "t16 p1 J16",  // 128, before J19 (140), J20 (145), J18 (150)
        "t17 p2 J21",
        "t18 p1 J19",
        "t20 p2 J25",
        "t20 p1 J20",
        "t22 p1 J18",  // 150, before J23 (155)
        "t23 p2 J28",  // express, light
        "t24 p1 J23",
        "t26 p1 J24",
        "t28 p1 J26",  // J22 (economy) has waited 10:50: still behind every standard job
        "t30 p1 J29",  // 168 before J27 (170)
        // J22 (economy, due 146, arrived 17:10) waited 14:50 at t32: standard, and its due 146 is
        // earlier than J27 (170) and J30 (175).
        "t32 p1 J22",
        "t34 p1 J27",
        "t36 p1 J30",
    };
    EXPECT_EQ(run_shift({{light_16x20_printer("p2"), 1}, {any_printer("p1"), 2}}, policy), expected);
}

}  // namespace
}  // namespace pressline::agent::sched
