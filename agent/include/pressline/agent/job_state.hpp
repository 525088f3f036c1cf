// The job lifecycle of ARCHITECTURE.md as a state machine: names, terminal states and the
// transitions allowed between them. Pure; any thread.
#pragma once

#include <optional>
#include <string_view>

namespace pressline::agent {

enum class JobState {
    accepted,
    preparing,
    queued,
    printing,
    printed,
    inspecting,
    qa_passed,
    qa_failed,
    held,
    labeling,
    completed,
    cancelled,
    failed,
};

std::string_view to_string(JobState s);
std::optional<JobState> job_state_from_string(std::string_view s);

// completed, cancelled and failed: nothing happens to the job any more.
bool is_terminal(JobState s);

// Whether `cancel` may move the job to cancelled (before the current attempt starts printing).
bool is_cancellable(JobState s);

// Whether the lifecycle allows from -> to.
bool can_transition(JobState from, JobState to);

}  // namespace pressline::agent
