// CloudEvents 1.0 (structured JSON mode) as the MQTT contract defines them: ids, time stamps,
// the gap-free `sequence` extension, and rendering of one event to its wire form.
// Pure functions; any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace pressline::agent {

// What a component asks the journal to emit; the journal adds id, time and sequence.
struct EventSpec {
    std::string type;                    // without the "com.pressline." prefix, e.g. "job.accepted"
    std::optional<std::string> subject;  // usually the job id
    nlohmann::json data = nlohmann::json::object();
};

// A new ULID (26 characters, Crockford base32, time-ordered).
std::string new_ulid(std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

// RFC 3339 UTC with milliseconds: "2026-11-26T10:02:11.532Z".
std::string format_time(std::chrono::system_clock::time_point t);

// The 20-digit zero-padded decimal form of a sequence number.
std::string format_sequence(std::int64_t seq);

// The wire form of one event. `source` is "pressline://{shop}/{station}".
std::string render_event(const EventSpec& spec, const std::string& id, const std::string& time,
                         std::int64_t sequence, const std::string& source);

}  // namespace pressline::agent
