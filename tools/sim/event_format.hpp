// One readable line per CloudEvent or status message, for people watching the event stream.
// Generic on purpose: event types this tool has never heard of print with their data compactly.
// Pure functions: any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace pressline::sim {

using Json = nlohmann::ordered_json;

// "com.pressline.job.accepted" -> "job.accepted"; other types are returned as they are.
std::string short_type(const std::string& type);

// The 20-digit `sequence` as a number; nullopt when absent or not all digits.
std::optional<std::uint64_t> event_sequence(const Json& event);

// "10:02:11.532" from an RFC 3339 time ("2026-11-26T10:02:11.532Z"); the input when not one.
std::string clock_part(const std::string& rfc3339);

// data as "key=value ..." with the facts people look for first (status, reason, field, conflict,
// command...) and `message` last; strings quoted only when they need it; nested values as
// compact JSON.
std::string format_data(const Json& data);

// "10:02:11.532  #4711  job.accepted      J-2026-000123-1  order_id=ORD-1 priority=express"
std::string format_event_line(const Json& event);

// "10:02:11.532  status  online  since=... (retained)" for the status topic; the time is the
// status's own "time" when it has one, else the time of arrival.
std::string format_status_line(const Json& status, bool retained);

// The current UTC wall-clock time (events carry UTC times) as "HH:MM:SS.mmm".
std::string utc_clock_now();

}  // namespace pressline::sim
