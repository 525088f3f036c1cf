// The agent's configuration: the schema of the one YAML file a technician edits, and its loader.
//
// Error rule (see docs/design.md): loading never throws for bad input; every problem found is
// returned as a Diagnostic, all at once, so a technician fixes the file in one pass.
// Thread-safety: the functions here are pure and may be called from any thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pressline::config {

struct Station {
    std::string shop;                 // station.shop (required)
    std::string id;                   // station.id (required)
    std::vector<std::string> pools;   // station.pools (default: empty)
};

struct Broker {
    std::string uri;                  // broker.uri: tcp://, ssl://, mqtts:// (required)
    std::string client_id;            // broker.client_id (default pressline-{shop}-{id})
    std::string username;             // broker.username (default: none)
    std::filesystem::path password_file;  // broker.password_file (default: none); mode must be 0600-ish
    std::string password;             // content of password_file, trailing newline stripped
    std::filesystem::path ca_file;    // broker.ca_file (TLS trust anchor)
    std::filesystem::path cert_file;  // broker.cert_file (TLS client certificate)
    std::filesystem::path key_file;   // broker.key_file (TLS client key; a secret)
    int keepalive_s = 30;             // broker.keepalive_s
    int connect_timeout_s = 10;       // broker.connect_timeout_s
    std::uint32_t session_expiry_s = 7 * 24 * 3600;  // broker.session_expiry_s
    int reconnect_min_s = 1;          // broker.reconnect_min_s
    int reconnect_max_s = 30;         // broker.reconnect_max_s
    int max_inflight = 20;            // broker.max_inflight: QoS 1 publishes outstanding at once

    bool uses_tls() const;            // ssl:// or mqtts://
};

struct Mqtt {
    std::string topic_prefix = "pressline/v1";  // mqtt.topic_prefix
};

struct Storage {
    std::filesystem::path state_dir;  // storage.state_dir (required)
    int retention_hours = 7 * 24;     // storage.retention_hours: finished jobs kept this long
    std::int64_t outbox_max_events = 1'000'000;  // storage.outbox_max_events
    std::int64_t min_free_mb = 64;    // storage.min_free_mb: intake stops below this free space
    std::int64_t max_db_mb = 0;       // storage.max_db_mb: hard cap on the journal, 0 = none
};

struct Intake {
    std::size_t max_payload_bytes = 64 * 1024;  // intake.max_payload_bytes
    int max_depth = 16;                          // intake.max_depth: JSON nesting limit
};

struct Log {
    std::string level = "info";       // log.level: trace, debug, info, warn, error
};

struct Config {
    std::filesystem::path source;     // the file this was loaded from
    Station station;
    Broker broker;
    Mqtt mqtt;
    Storage storage;
    Intake intake;
    Log log;
};

// One problem in a config file. line/column are 1-based; 0 when unknown (e.g. missing file).
struct Diagnostic {
    std::string file;
    int line = 0;
    int column = 0;
    std::string path;      // dotted key path, e.g. "broker.uri"
    std::string message;   // what is wrong, and where possible how to fix it

    // "FILE:LINE:COL: key.path: problem"
    std::string str() const;
};

struct LoadResult {
    std::optional<Config> config;          // set only when diagnostics is empty
    std::vector<Diagnostic> diagnostics;   // every problem found
    bool ok() const { return config.has_value() && diagnostics.empty(); }
};

// Loads and validates a config file. Relative paths in the file are resolved against the
// directory of the file. Secret files (password_file, key_file) that are group- or
// world-readable are refused.
LoadResult load_file(const std::filesystem::path& file);

// Same, from text; `file` is used in diagnostics and to resolve relative paths.
LoadResult load_string(std::string_view yaml, const std::filesystem::path& file);

}  // namespace pressline::config
