// Scheduler: the rules are written out in scheduler.hpp; this file follows them line by line.
#include "pressline/agent/scheduler.hpp"

#include <algorithm>

namespace pressline::agent::sched {

std::optional<Priority> priority_from_string(std::string_view text) {
    if (text == "express") return Priority::express;
    if (text == "standard") return Priority::standard;
    if (text == "economy") return Priority::economy;
    return std::nullopt;
}

std::string_view to_string(Priority priority) {
    switch (priority) {
        case Priority::express: return "express";
        case Priority::standard: return "standard";
        case Priority::economy: return "economy";
    }
    return "unknown";
}

Priority effective_priority(const Job& job, const Policy& policy, std::int64_t now_ms) {
    const int cls = static_cast<int>(job.priority);
    if (policy.aging_ms <= 0 || cls == 0) return job.priority;
    const std::int64_t waited = std::max<std::int64_t>(0, now_ms - job.arrival_ms);
    const std::int64_t periods = waited / policy.aging_ms;
    return static_cast<Priority>(periods >= cls ? 0 : cls - static_cast<int>(periods));
}

namespace {

// Rule 3 b-d (everything but the class).
bool before_in_class(const Job& a, const Job& b) {
    if (a.due_ms != b.due_ms) {
        if (!a.due_ms) return false;  // none sorts last
        if (!b.due_ms) return true;
        return *a.due_ms < *b.due_ms;
    }
    if (a.arrival_ms != b.arrival_ms) return a.arrival_ms < b.arrival_ms;
    return a.job_id < b.job_id;
}

bool within_window(const Job& job, const Job& best, std::int64_t window_ms) {
    if (best.due_ms) return job.due_ms && *job.due_ms <= *best.due_ms + window_ms;
    return !job.due_ms && job.arrival_ms <= best.arrival_ms + window_ms;
}

}  // namespace

bool before(const Job& a, const Job& b, const Policy& policy, std::int64_t now_ms) {
    const Priority pa = effective_priority(a, policy, now_ms);
    const Priority pb = effective_priority(b, policy, now_ms);
    if (pa != pb) return pa < pb;
    return before_in_class(a, b);
}

bool capable(const Printer& printer, const Job& job) {
    return printer.platens.contains(job.platen) && printer.color_classes.contains(job.color_class) &&
           printer.methods.contains(job.method);
}

std::string missing_capability(const Printer& printer, const Job& job) {
    std::string missing;
    const auto add = [&missing](std::string_view what, const std::string& value) {
        if (!missing.empty()) missing += ", ";
        missing += what;
        missing += ' ';
        missing += value;
    };
    if (!printer.platens.contains(job.platen)) add("platen", job.platen);
    if (!printer.color_classes.contains(job.color_class)) add("color_class", job.color_class);
    if (!printer.methods.contains(job.method)) add("method", job.method);
    return missing;
}

bool any_capable(std::span<const Printer> printers, const Job& job) {
    return std::any_of(printers.begin(), printers.end(),
                       [&job](const Printer& printer) { return capable(printer, job); });
}

Pick pick(std::span<const Job> queued, const Printer& printer, const Policy& policy,
          std::int64_t now_ms) {
    // Rules 1 and 3: the best capable job.
    const Job* best = nullptr;
    Priority best_class = Priority::economy;
    for (const Job& job : queued) {
        if (!capable(printer, job)) continue;
        const Priority cls = effective_priority(job, policy, now_ms);
        if (best == nullptr || cls < best_class || (cls == best_class && before_in_class(job, *best))) {
            best = &job;
            best_class = cls;
        }
    }
    if (best == nullptr) return {nullptr, "no capable job"};

    std::string why{to_string(best_class)};
    if (best_class != best->priority) {
        why += " (aged ";
        why += to_string(best->priority);
        why += "→";
        why += to_string(best_class);
        why += ')';
    }

    // Rule 4.
    const bool batching = policy.batch_window_ms > 0 && policy.batch_max > 1;
    if (!batching || best_class == Priority::express || printer.setup_key.empty() ||
        best->setup_key == printer.setup_key) {
        return {best, std::move(why)};
    }
    const std::string batch_name = "batch:" + printer.setup_key;
    if (printer.batch_count >= policy.batch_max) {
        why += "; " + batch_name + ' ' + std::to_string(printer.batch_count) + '/' +
               std::to_string(policy.batch_max) + " full";
        return {best, std::move(why)};
    }
    if (policy.batch_max_wait_ms > 0 && printer.batch_count > 0 &&
        now_ms - printer.batch_started_ms >= policy.batch_max_wait_ms) {
        why += "; " + batch_name + " wait over";
        return {best, std::move(why)};
    }
    const Job* match = nullptr;
    for (const Job& job : queued) {
        if (job.setup_key != printer.setup_key || !capable(printer, job) ||
            effective_priority(job, policy, now_ms) != best_class ||
            !within_window(job, *best, policy.batch_window_ms)) {
            continue;
        }
        if (match == nullptr || before_in_class(job, *match)) match = &job;
    }
    if (match == nullptr) return {best, std::move(why)};
    return {match, batch_name + ' ' + std::to_string(printer.batch_count + 1) + '/' +
                       std::to_string(policy.batch_max) + " ahead of " + best->job_id};
}

void released(Printer& printer, const Job& job, std::int64_t now_ms) {
    if (printer.batch_count > 0 && job.setup_key == printer.setup_key) {
        ++printer.batch_count;
        return;
    }
    printer.setup_key = job.setup_key;
    printer.batch_count = 1;
    printer.batch_started_ms = now_ms;
}

}  // namespace pressline::agent::sched
