#pragma once
// Scheduler: which queued job a ready printer prints next.
//
// Pure functions over values the caller passes in: no I/O, no clock (time is `now_ms`, any epoch,
// the same one as `Job::arrival_ms` / `Job::due_ms`), no journal, no hidden state. The agent keeps
// the queue and each printer's batch state (`Printer::setup_key`, `batch_count`,
// `batch_started_ms`, updated with `released()`), and asks `pick()` when a printer becomes ready.
//
// THE RULES ("why did job X print before job Y?")
//
// 1. Routing. A printer only ever gets a job it is capable of (`capable()`): the job's platen is
//    one of the printer's platens, its garment colour class (`light`, or `dark`, which needs a
//    white underbase) one of the printer's colour classes, and its method (`dtg`) one of its
//    methods. Exact, case-sensitive string matches. Everything below is among those jobs only.
//    `any_capable()` tells a job that no configured printer can ever take (the agent fails or
//    holds it instead of letting it wait forever); `missing_capability()` says what is missing.
//
// 2. Aging (Policy::aging_ms = A; 0 = off). A job's effective class is its priority class moved
//    up one class per FULL period A it has waited, never above express:
//        waited    = max(0, now_ms - arrival_ms)
//        effective = max(express, class - floor(waited / A))
//    So at exactly waited == A an economy job is standard, at 2A it is express; a standard job is
//    express at A. Waiting is counted from arrival in the queue (`arrival_ms`), not from due_by.
//    An aged job competes inside its effective class by the rules of 3 like any other job there.
//
// 3. Strict order (`before()`): the first of these that differs decides.
//      a. effective class: express, then standard, then economy;
//      b. due_by: earlier first; a job without due_by comes after every job with one;
//      c. arrival: earlier first;
//      d. job_id: byte-wise smaller first (ids are unique, so the order is total and
//         deterministic).
//    The "best" job for a printer is the first capable job in this order. Without batching the
//    best job is what `pick()` returns.
//
// 4. Batching (on when Policy::batch_window_ms > 0 and Policy::batch_max > 1). Changing a
//    printer's setup (garment colour class, platen, ink options; summarised by the agent in a
//    setup key) costs time, so a printer may take a job matching its CURRENT setup key ahead of
//    the best job, when ALL of these hold:
//      a. the best job's effective class is not express (express is never held back: when the
//         best job is express, strict order applies);
//      b. the best job's setup key differs from the printer's (otherwise the best job already
//         matches and is taken), and the printer has a non-empty setup key;
//      c. the printer has released fewer than batch_max consecutive jobs with its setup key
//         (`batch_count < batch_max`). Once it has released batch_max, the preference is off
//         until its setup key changes: strict order decides (which may well pick the same key);
//      d. batch_max_wait_ms (W) is 0 (no time limit), or the current batch started less than W
//         ago: now_ms - batch_started_ms < W. A batch starts at its first release; while
//         batch_count is 0 the batch would start with this pick, so d holds. Since a batch only
//         passes over jobs during its own run, no job is passed over for W or longer (measured
//         from the batch's start, which is never later than when the job became the best);
//      e. there is a matching job: capable, same effective class as the best job, setup key ==
//         the printer's, and within the window of the best job:
//           - best job has a due_by: the job has a due_by and due_by <= best.due_by + window;
//           - best job has no due_by (so no job of that class has one): the job has no due_by
//             and arrival_ms <= best.arrival_ms + window.
//         Both edges are inclusive: a due_by exactly `window` after the best one is inside.
//    Then the first matching job in strict order is picked; otherwise the best job.
//
// `Pick::why` is one line for the log, e.g.:
//   "express"                                the best job, strict order
//   "standard (aged economy→standard)"       the best job, strict order, promoted by aging
//   "batch:dark/16x20 3/6 ahead of J-17"     rule 4: 3rd job of the batch (max 6), J-17 was best
//   "standard; batch:dark/16x20 6/6 full"    the best job, because rule 4c stopped the batch
//   "standard; batch:dark/16x20 wait over"   the best job, because rule 4d stopped the batch

#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>

namespace pressline::agent::sched {

enum class Priority { express = 0, standard = 1, economy = 2 };

// "express" / "standard" / "economy"; anything else is nullopt (case-sensitive, as on the wire).
std::optional<Priority> priority_from_string(std::string_view text);
std::string_view to_string(Priority priority);

struct Job {
    std::string job_id;
    Priority priority = Priority::standard;
    std::optional<std::int64_t> due_ms;  // due_by; nullopt = none (sorts after every due_by)
    std::int64_t arrival_ms = 0;         // when it entered the queue (aging counts from here)
    std::string platen;                  // e.g. "16x20"
    std::string color_class;             // "light" or "dark"
    std::string method;                  // "dtg"
    std::string setup_key;               // computed by the agent, e.g. "dark/16x20"
};

struct Printer {
    std::string name;
    std::set<std::string> platens, color_classes, methods;
    // Batch state, kept by the agent and updated with released():
    std::string setup_key;              // setup currently on the printer ("" = unknown)
    int batch_count = 0;                // consecutive jobs released with setup_key
    std::int64_t batch_started_ms = 0;  // when the first of those was released
};

struct Policy {
    std::int64_t aging_ms = 0;           // A: one class up per full A waited; 0 = no aging
    std::int64_t batch_window_ms = 0;    // due_by (or arrival) window; 0 = no batching
    int batch_max = 1;                   // max consecutive same-setup releases preferred; <=1 = no batching
    std::int64_t batch_max_wait_ms = 0;  // W: max batch duration while passing over; 0 = no limit
};

struct Pick {
    const Job* job = nullptr;  // points into the `queued` span; nullptr = nothing this printer can take
    std::string why;           // for logs
};

// The class a job competes in at now_ms (rule 2).
Priority effective_priority(const Job& job, const Policy& policy, std::int64_t now_ms);

// Strict order (rule 3): true if `a` goes before `b`.
bool before(const Job& a, const Job& b, const Policy& policy, std::int64_t now_ms);

// Routing (rule 1).
bool capable(const Printer& printer, const Job& job);
// "" if capable; otherwise what is missing, e.g. "platen 16x20" or "color_class dark".
std::string missing_capability(const Printer& printer, const Job& job);
// False: no printer in `printers` can ever take this job (capabilities do not change with time).
bool any_capable(std::span<const Printer> printers, const Job& job);

// The job `printer` should print next (rules 1-4), or job == nullptr if no queued job is capable.
Pick pick(std::span<const Job> queued, const Printer& printer, const Policy& policy,
          std::int64_t now_ms);

// Update the printer's batch state after the agent released `job` to it at now_ms.
void released(Printer& printer, const Job& job, std::int64_t now_ms);

}  // namespace pressline::agent::sched
