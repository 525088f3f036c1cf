// Expectations about an agent's event stream, checked as events arrive (`pressline-dispatch
// check`), plus the stream's own invariant: `sequence` counts up by one without gaps.
//
// Expectation file: a JSON list (or {"expect": [...]}) of objects; every key is optional except
// that each entry needs one of type / events / final / never:
//   subject  the event subject to look at (a job_id...); absent = events of any subject
//   type     one event type ("job.accepted"; the "com.pressline." prefix may be given or not)
//   count    with type: at least this many matching events (default 1)
//   max      with type: more matching events than this is a failure (e.g. 1 for "exactly once")
//   data     with type: the event's data must contain these members (recursive subset match)
//   events   ordered list of types that must appear in this order for the subject (other events
//            may come in between): ["job.accepted", "job.queued", "job.completed"]
//   final    the latest event seen for the subject must be this type (an end state), e.g.
//            "job.completed"; needs subject
//   never    types that must not appear for the subject (or at all, without subject)
//   note     free text repeated in reports
// Example: [{"subject": "J-1", "events": ["job.accepted", "job.cancelled"], "final": "job.cancelled"},
//           {"type": "job.rejected", "data": {"reason": "malformed_json"}}]
//
// Thread-safety: none; feed events from one thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "event_format.hpp"

namespace pressline::sim {

struct Expectation {
    std::optional<std::string> subject;
    std::vector<std::string> events;        // ordered steps (one step for "type")
    bool single_type = false;               // written with "type" (count/max/data apply)
    int count = 1;
    std::optional<int> max;
    Json data;                              // null = no constraint
    std::optional<std::string> final_type;
    std::vector<std::string> never;
    std::string note;

    // progress
    std::size_t steps_done = 0;             // events matched in order
    int matched = 0;                        // for single_type

    std::string describe() const;
};

class EventChecker {
public:
    // Throws std::runtime_error with the file name and the entry at fault.
    static EventChecker load(const std::filesystem::path& file);
    static EventChecker from_json(const Json& doc, const std::string& origin);

    // Feeds one event in arrival order (a redelivered event, same id and sequence, is ignored).
    void observe(const Json& event);

    bool satisfied() const;                 // every expectation met (and no failure)
    bool failed() const { return !failures_.empty(); }
    const std::vector<std::string>& failures() const { return failures_; }

    // Lines for every expectation not met yet, with the last event seen for its subject.
    std::vector<std::string> unmet_report() const;
    // "N events, sequence #a..#b, D redelivered"
    std::string stream_summary() const;
    std::size_t expectation_count() const { return expectations_.size(); }

private:
    struct Seen {
        std::string type;
        std::string line;   // formatted event line
    };
    bool met(const Expectation& e) const;
    void fail(std::string why);

    std::vector<Expectation> expectations_;
    std::vector<std::string> failures_;
    std::map<std::string, Seen> last_by_subject_;
    std::map<std::string, Seen> last_by_type_;
    std::map<std::uint64_t, std::string> ids_by_sequence_;  // for redelivery detection
    std::optional<std::uint64_t> first_seq_, last_seq_;
    std::size_t events_ = 0, redelivered_ = 0;
};

// True when every member of `want` is in `have` with an equal value (objects recursively).
bool json_subset(const Json& want, const Json& have);

}  // namespace pressline::sim
