// The job lifecycle table (ARCHITECTURE.md "Job lifecycle").
#include "pressline/agent/job_state.hpp"

#include <array>
#include <utility>

namespace pressline::agent {
namespace {

using S = JobState;
constexpr std::array<std::pair<S, std::string_view>, 13> kNames{{
    {S::accepted, "accepted"},   {S::preparing, "preparing"}, {S::queued, "queued"},
    {S::printing, "printing"},   {S::printed, "printed"},     {S::inspecting, "inspecting"},
    {S::qa_passed, "qa_passed"}, {S::qa_failed, "qa_failed"}, {S::held, "held"},
    {S::labeling, "labeling"},   {S::completed, "completed"}, {S::cancelled, "cancelled"},
    {S::failed, "failed"},
}};

}  // namespace

std::string_view to_string(JobState s) {
    for (const auto& [state, name] : kNames)
        if (state == s) return name;
    return "unknown";
}

std::optional<JobState> job_state_from_string(std::string_view s) {
    for (const auto& [state, name] : kNames)
        if (name == s) return state;
    return std::nullopt;
}

bool is_terminal(JobState s) {
    return s == S::completed || s == S::cancelled || s == S::failed;
}

bool is_cancellable(JobState s) {
    return s == S::accepted || s == S::preparing || s == S::queued || s == S::held;
}

bool can_transition(JobState from, JobState to) {
    if (is_terminal(from)) return false;
    if (to == S::cancelled) return is_cancellable(from);
    if (to == S::failed || to == S::held) return true;
    switch (from) {
        case S::accepted: return to == S::preparing;
        case S::preparing: return to == S::queued;
        case S::queued: return to == S::printing;
        case S::printing: return to == S::printed || to == S::queued;  // failover: new try
        case S::printed:  // reprint: a new attempt
            return to == S::inspecting || to == S::labeling || to == S::queued;
        case S::inspecting: return to == S::qa_passed || to == S::qa_failed;
        case S::qa_failed: return to == S::queued;  // reprint: attempt + 1
        case S::qa_passed: return to == S::labeling || to == S::queued;  // reprint
        case S::held: return to == S::queued || to == S::qa_passed || to == S::qa_failed ||
                             to == S::printed || to == S::labeling;
        case S::labeling: return to == S::completed || to == S::queued;  // reprint
        default: return false;
    }
}

}  // namespace pressline::agent
