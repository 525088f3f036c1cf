// Parsing and validation of inbound MQTT payloads (job orders and commands) against the
// contract's JSON Schemas in docs/schemas/ (compiled into the binary at build time).
//
// Error rule: bad input is a value (Rejection), never an exception. Pure functions: any thread.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

namespace pressline::agent {

struct ParseLimits {
    std::size_t max_payload_bytes = 64 * 1024;
    int max_depth = 16;
};

// Why a payload was refused. `reason` is a stable machine code (documented in docs/mqtt-api.md):
//   payload_too_large, too_deeply_nested, invalid_utf8, malformed_json, not_an_object,
//   missing_field, wrong_type, invalid_value, schema_violation
// `field` is the JSON path of the offending field in dotted form ("print.artwork.sha256"),
// empty when the problem is the payload as a whole. `message` is one human sentence.
struct Rejection {
    std::string reason;
    std::string field;
    std::string message;
};

template <class T>
using Parsed = std::variant<T, Rejection>;

// A schema-valid job order with defaults applied (priority "standard", order_items 1,
// qa.required true, placement offsets 0). `json` keeps the full order as received plus defaults.
struct JobOrder {
    std::string job_id;
    std::string order_id;
    std::string priority;   // express | standard | economy
    nlohmann::json json;
};

// A schema-valid command. `json` is the whole command.
struct Command {
    std::string command_id;
    std::string type;       // cancel, reprint, pause_device, resume_device, drain, resume,
                            // snapshot, qa_decision, reload_config
    nlohmann::json json;
};

// Parses JSON within limits (size checked before parsing, depth while parsing).
// Stricter than plain nlohmann: rejects invalid UTF-8 and lone surrogate escapes ("\ud800")
// (invalid_utf8), duplicate keys in an object (malformed_json, field = the repeated key), raw NUL
// bytes (malformed_json), strings or keys containing "\u0000" and numbers beyond double range
// such as 1e999 (invalid_value, field = where). See the top of src/validation.cpp.
Parsed<nlohmann::json> parse_json(std::string_view payload, const ParseLimits& limits);

// Parses and validates a job order.
Parsed<JobOrder> parse_job(std::string_view payload, const ParseLimits& limits);

// Parses and validates a command.
Parsed<Command> parse_command(std::string_view payload, const ParseLimits& limits);

// Canonical form used to compare a redelivered job with the stored one (and for signatures):
// keys sorted, no insignificant whitespace, without the "signature" member.
// Note: JobOrder::json carries the applied defaults, so its canonical form is not what the cloud
// signed when the cloud left defaulted fields out; verify signatures over parse_json()'s result.
// Keys sort bytewise (UTF-8) and numbers print as nlohmann does (280.0 stays 280.0): this is not
// RFC 8785 (JCS); the cloud must canonicalise the same way.
std::string canonical_json(const nlohmann::json& order);

}  // namespace pressline::agent
