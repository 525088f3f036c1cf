// Loader and validator of the agent's YAML configuration (contract in config.hpp).
//
// Choices made here, for the reviewer and for whoever extends the schema:
// - Nothing throws out of load_file/load_string. yaml-cpp is only used to parse; values are
//   converted by hand so that a wrong type becomes a Diagnostic instead of YAML::BadConversion.
// - Every problem is collected, then sorted by position, so a technician fixes the file in one
//   pass. Checks that depend on another value (reconnect_max_s >= reconnect_min_s, client_id
//   default) only run when the values they depend on are valid, to avoid follow-on noise.
// - A key written with no value ("keepalive_s:") is an error for scalars, because it is almost
//   always a half-finished edit; for a section ("mqtt:") or a list ("pools:") it means "empty",
//   so that a file whose optional keys are all commented out still loads.
// - Numbers may be written plain or quoted ("30"); anything else (30s, 1e3, 0x1e) is refused.
// - Relative paths resolve against the directory of the config file and are normalised
//   lexically (no symlinks are resolved); "~" is not expanded and is refused with a hint.
// - Duplicate keys (which yaml-cpp accepts silently) are reported; so is a file with more than
//   one YAML document, and TLS files given for a tcp:// broker (they would be silently unused).
#include "pressline/config/config.hpp"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <system_error>
#include <tuple>
#include <utility>

namespace pressline::config {

namespace fs = std::filesystem;

const LabelPrinter* Config::label_printer(std::string_view name) const {
    for (const auto& p : label_printers)
        if (p.name == name) return &p;
    return nullptr;
}

const Camera* Config::camera_for(std::string_view printer) const {
    for (const auto& c : cameras)
        if (c.printers.empty() || std::find(c.printers.begin(), c.printers.end(), printer) != c.printers.end())
            return &c;
    return nullptr;
}

const Platen* Config::platen(std::string_view name) const {
    auto it = platens.find(std::string(name));
    return it == platens.end() ? nullptr : &it->second;
}

std::string color_class_of(const std::array<int, 3>& srgb) {
    auto lin = [](int c) {
        const double v = c / 255.0;
        return v <= 0.04045 ? v / 12.92 : std::pow((v + 0.055) / 1.055, 2.4);
    };
    const double y = 0.2126 * lin(srgb[0]) + 0.7152 * lin(srgb[1]) + 0.0722 * lin(srgb[2]);
    return y < 0.5 ? "dark" : "light";
}

bool Broker::uses_tls() const {
    return uri.starts_with("ssl://") || uri.starts_with("mqtts://");
}

std::string Diagnostic::str() const {
    std::string out = file;
    if (line > 0) {
        out += fmt::format(":{}", line);
        if (column > 0) out += fmt::format(":{}", column);
    }
    out += ": ";
    if (!path.empty()) out += path + ": ";
    out += message;
    return out;
}

namespace {

// ---- the schema: known keys per section, used for unknown-key checks and suggestions ----

struct SectionSchema {
    std::string_view name;
    std::vector<std::string_view> keys;
};

const std::vector<SectionSchema>& schema() {
    static const std::vector<SectionSchema> s = {
        {"station", {"shop", "id", "pools"}},
        {"broker",
         {"uri", "client_id", "username", "password_file", "ca_file", "cert_file", "key_file",
          "keepalive_s", "connect_timeout_s", "session_expiry_s", "reconnect_min_s",
          "reconnect_max_s", "max_inflight"}},
        {"mqtt", {"topic_prefix"}},
        {"storage", {"state_dir", "retention_hours", "outbox_max_events", "min_free_mb", "max_db_mb"}},
        {"intake", {"max_payload_bytes", "max_depth"}},
        {"log", {"level"}},
        {"assets",
         {"file_root", "allowed_hosts", "allow_private_addresses", "ca_file", "cache_dir",
          "cache_max_mb", "max_mb", "max_megapixels", "connect_timeout_s", "timeout_s"}},
        {"printing", {"retry_budget", "retry_backoff_s", "poll_min_ms", "poll_max_ms", "release", "failover_after_s"}},
        {"scheduler", {"aging_minutes", "batch_window_minutes", "batch_max", "batch_max_wait_s"}},
        {"platens", {}},          // a map: platen name -> {width_mm, height_mm}
        {"garment_colors", {}},   // a map: colour name -> [r, g, b] or {srgb, class}
        {"dtg_printers", {}},     // a list of printers (kDtgPrinterKeys)
        {"label_printers", {}},   // a list of printers (kLabelPrinterKeys)
        {"labels", {"ticket_printer", "shipping_printers", "ticket_width_mm", "ticket_height_mm", "retry_s", "ship_from"}},
        {"cameras", {}},          // a list of cameras (kCameraKeys)
        {"qa",
         {"enabled", "trigger", "delay_s", "qr_scan_interval_ms", "capture_timeout_s", "reprint_limit", "spot_check_share",
          "pause_after_consecutive_failures", "tolerances", "evidence"}},
    };
    return s;
}

const std::vector<std::string_view> kDtgPrinterKeys = {
    "name", "driver", "server", "queue", "options", "hot_folder", "done_folder", "error_folder",
    "result_folder", "completion", "rip_timeout_s", "platens", "garment_classes", "methods", "dpi",
    "format"};

const std::vector<std::string_view> kLabelPrinterKeys = {
    "name", "connection", "language", "vendor_id", "product_id", "serial", "host", "port", "server",
    "queue", "status_query", "dpi", "width_mm", "height_mm", "darkness", "x_offset_mm", "y_offset_mm",
    "media", "connect_timeout_ms", "write_timeout_ms", "status_timeout_ms"};

const std::vector<std::string_view> kCameraKeys = {
    "name", "source", "width", "height", "fourcc", "exposure", "open_timeout_ms", "read_timeout_ms",
    "calibration", "printers"};

const std::vector<std::string_view> kQaToleranceKeys = {
    "offset_mm", "rotation_deg", "scale_pct", "mean_de00", "local_de00", "local_min_area_mm2",
    "margin_mm", "blank_de00", "low_confidence"};

const std::vector<std::string_view> kQaEvidenceKeys = {"dir", "max_age_days", "max_total_mb"};

const std::vector<std::string_view> kShipFromKeys = {
    "name", "company", "line1", "line2", "city", "region", "postal_code", "country", "phone"};

std::vector<std::string_view> section_names() {
    std::vector<std::string_view> out;
    for (const auto& s : schema()) out.push_back(s.name);
    return out;
}

const std::vector<std::string_view>& keys_of(std::string_view section) {
    for (const auto& s : schema())
        if (s.name == section) return s.keys;
    static const std::vector<std::string_view> none;
    return none;
}

// ---- small helpers ----

// Optimal-string-alignment distance (Levenshtein plus adjacent transpositions), ASCII
// case-insensitive: "keepalive" -> "keepalive_s" is 2, "shpo" -> "shop" is 1.
std::size_t edit_distance(std::string_view a, std::string_view b) {
    auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
    const std::size_t n = a.size(), m = b.size();
    std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1));
    for (std::size_t i = 0; i <= n; ++i) d[i][0] = i;
    for (std::size_t j = 0; j <= m; ++j) d[0][j] = j;
    for (std::size_t i = 1; i <= n; ++i) {
        for (std::size_t j = 1; j <= m; ++j) {
            const std::size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
                lower(a[i - 2]) == lower(b[j - 1]))
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    }
    return d[n][m];
}

// The closest candidate within a small distance (1 for words of up to 3 letters, else 2).
std::optional<std::string_view> closest(std::string_view word,
                                        const std::vector<std::string_view>& candidates) {
    const std::size_t limit = word.size() <= 3 ? 1 : 2;
    std::optional<std::string_view> best;
    std::size_t best_d = limit + 1;
    for (auto c : candidates) {
        const std::size_t d = edit_distance(word, c);
        if (d < best_d) {
            best_d = d;
            best = c;
        }
    }
    return best;
}

std::string join(const std::vector<std::string_view>& items, std::string_view sep = ", ") {
    std::string out;
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (i) out += sep;
        out += items[i];
    }
    return out;
}

std::string dotted(std::string_view section, std::string_view key) {
    if (section.empty()) return std::string(key);
    return fmt::format("{}.{}", section, key);
}

// How a node looks to a person: "a map", "a list", "no value", "'abc'".
std::string describe(const YAML::Node& n) {
    switch (n.Type()) {
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Null: return "no value";
    case YAML::NodeType::Undefined: return "nothing";
    case YAML::NodeType::Scalar: {
        std::string s = n.Scalar();
        if (s.size() > 40) s = s.substr(0, 37) + "...";
        return fmt::format("'{}'", s);
    }
    }
    return "an unknown value";
}

std::string mode_octal(unsigned mode) { return fmt::format("{:04o}", mode & 07777u); }

// A name that becomes one MQTT topic level. Returns a problem, or nothing when fine.
std::optional<std::string> topic_level_problem(std::string_view s) {
    if (s.empty()) return "must not be empty";
    for (char c : s) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                        c == '_' || c == '.' || c == '-';
        if (!ok) {
            const std::string shown = c == ' '                          ? std::string("a space")
                                      : (static_cast<unsigned char>(c) < 0x20 ||
                                         static_cast<unsigned char>(c) >= 0x7f)
                                          ? std::string("a non-ASCII or control character")
                                          : fmt::format("'{}'", c);
            return fmt::format(
                "'{}' contains {}; use only letters, digits, '_', '.' and '-' (it becomes an MQTT "
                "topic level)",
                s, shown);
        }
    }
    return std::nullopt;
}

struct Pos {
    int line = 0;    // 1-based, 0 = unknown
    int column = 0;  // 1-based, 0 = unknown
};

Pos pos_of(const YAML::Mark& m) {
    if (m.is_null() || m.line < 0) return {};
    return {m.line + 1, m.column + 1};
}

// One key of a map with its value, as written.
struct Field {
    YAML::Node key;
    YAML::Node value;
    std::string path;  // dotted path of this key

    // Where to point at the value: yaml-cpp gives an implicit null ("key:") the mark of the
    // next token, so point at the key instead.
    Pos value_pos() const {
        if (value.IsNull() || !value.IsDefined()) return pos_of(key.Mark());
        return pos_of(value.Mark());
    }
    Pos key_pos() const { return pos_of(key.Mark()); }
};

// A section (or the top level) after its keys have been checked.
struct Section {
    std::string name;     // "" for the top level
    Pos pos;              // where to report a missing key
    bool usable = true;   // false when the section had the wrong type (missing keys not reported)
    std::map<std::string, Field, std::less<>> fields;

    const Field* find(std::string_view key) const {
        auto it = fields.find(key);
        return it == fields.end() ? nullptr : &it->second;
    }
};

// ---- the loader ----

class Loader {
public:
    Loader(std::string file_label, fs::path source)
        : file_(std::move(file_label)), source_(std::move(source)) {
        base_dir_ = source_.empty() ? current_dir() : source_.parent_path();
    }

    std::vector<Diagnostic> take_diagnostics() {
        std::stable_sort(diags_.begin(), diags_.end(), [](const Diagnostic& a, const Diagnostic& b) {
            return std::tie(a.line, a.column) < std::tie(b.line, b.column);
        });
        return std::move(diags_);
    }

    void error(Pos p, std::string path, std::string message) {
        diags_.push_back(Diagnostic{file_, p.line, p.column, std::move(path), std::move(message)});
    }

    LoadResult run(std::string_view text);

private:
    static fs::path current_dir() {
        std::error_code ec;
        auto p = fs::current_path(ec);
        return ec ? fs::path("/") : p;
    }

    Section read_map(const YAML::Node& map, std::string name, Pos missing_pos,
                     const std::vector<std::string_view>& known);
    Section read_section(const Section& top, std::string_view name);
    void report_unknown(const Field& f, std::string_view section,
                        const std::vector<std::string_view>& known);

    // Value readers. Each reports its own problems and returns nothing when the value is
    // missing or wrong; `required` makes absence an error.
    std::optional<std::string> read_string(const Section& s, std::string_view key, bool required);
    std::optional<std::int64_t> read_int(const Section& s, std::string_view key, std::int64_t min,
                                         std::int64_t max, std::string_view range_text = {});
    std::optional<fs::path> read_path(const Section& s, std::string_view key, bool required);
    bool present(const Section& s, std::string_view key) const { return s.find(key) != nullptr; }
    void report_missing(const Section& s, std::string_view key);

    void load_station(const Section& s, Station& out);
    void load_broker(const Section& s, const Station& station, bool station_ok, Broker& out);
    std::optional<std::string> normalise_uri(const Field& f, std::string_view uri);
    // Checks a file the agent will read; `secret` adds the permission check.
    bool check_input_file(const Field& f, const fs::path& p, bool secret);
    void load_mqtt(const Section& s, Mqtt& out);
    void load_storage(const Section& s, Storage& out);
    void load_intake(const Section& s, Intake& out);
    void load_log(const Section& s, Log& out);
    void load_assets(const Section& s, const Storage& storage, Assets& out);
    void load_printing(const Section& s, Printing& out);
    void load_scheduler(const Section& s, Scheduler& out);
    void load_platens(const Section& top, Config& cfg);
    void load_garment_colors(const Section& top, Config& cfg);
    void load_dtg_printers(const Section& top, Config& cfg);
    void load_label_printers(const Section& top, Config& cfg);
    void load_labels(const Section& s, Config& cfg);
    void load_cameras(const Section& top, Config& cfg);
    void load_qa(const Section& s, Config& cfg);
    // Reads `key` as one of `allowed` into `out` (unchanged when absent or wrong).
    void read_choice(const Section& s, std::string_view key, std::initializer_list<std::string_view> allowed,
                     std::string& out);
    std::optional<bool> read_bool(const Section& s, std::string_view key);
    std::optional<double> read_double(const Section& s, std::string_view key, double min, double max);
    std::optional<std::vector<std::string>> read_string_list(const Section& s, std::string_view key,
                                                             const std::vector<std::string_view>& allowed = {});
    // The entries of a top-level map section ("platens:"), or nothing when absent/empty.
    std::vector<Field> map_entries(const Section& top, std::string_view name);

    std::string file_;
    fs::path source_;
    fs::path base_dir_;
    std::vector<Diagnostic> diags_;
};

Section Loader::read_map(const YAML::Node& map, std::string name, Pos missing_pos,
                         const std::vector<std::string_view>& known) {
    Section s;
    s.name = std::move(name);
    s.pos = missing_pos;
    std::map<std::string, Pos> first_seen;
    for (auto it = map.begin(); it != map.end(); ++it) {
        Field f{it->first, it->second, {}};
        if (!f.key.IsScalar()) {
            error(pos_of(f.key.Mark()), s.name,
                  fmt::format("keys must be plain names, got {} as a key", describe(f.key)));
            continue;
        }
        const std::string key = f.key.Scalar();
        f.path = dotted(s.name, key);
        if (auto seen = first_seen.find(key); seen != first_seen.end()) {
            error(f.key_pos(), f.path,
                  fmt::format("duplicate key (first given at line {}); remove one of them",
                              seen->second.line));
            continue;
        }
        first_seen.emplace(key, f.key_pos());
        if (std::find(known.begin(), known.end(), key) == known.end()) {
            report_unknown(f, s.name, known);
            continue;
        }
        s.fields.emplace(key, std::move(f));
    }
    return s;
}

void Loader::report_unknown(const Field& f, std::string_view section,
                            const std::vector<std::string_view>& known) {
    const std::string key = f.key.Scalar();
    if (auto near = closest(key, known)) {
        error(f.key_pos(), f.path, fmt::format("unknown key; did you mean '{}'?", *near));
        return;
    }
    // A known key put in the wrong section (or at the top level).
    for (const auto& sec : schema()) {
        if (sec.name == section) continue;
        if (std::find(sec.keys.begin(), sec.keys.end(), key) != sec.keys.end()) {
            error(f.key_pos(), f.path,
                  fmt::format("unknown key; '{}' belongs in section '{}' ({}.{})", key, sec.name,
                              sec.name, key));
            return;
        }
    }
    error(f.key_pos(), f.path,
          fmt::format("unknown key; known keys {}: {}",
                      section.empty() ? "at the top level" : "here", join(known)));
}

Section Loader::read_section(const Section& top, std::string_view name) {
    const Field* f = top.find(name);
    if (!f) {
        Section s;
        s.name = std::string(name);
        s.pos = top.pos;
        return s;
    }
    if (f->value.IsNull()) {  // "mqtt:" with everything commented out: an empty section.
        Section s;
        s.name = std::string(name);
        s.pos = f->key_pos();
        return s;
    }
    if (!f->value.IsMap()) {
        error(f->value_pos(), f->path,
              fmt::format("expected a map of keys ({}), got {}", join(keys_of(name)),
                          describe(f->value)));
        Section s;
        s.name = std::string(name);
        s.usable = false;
        return s;
    }
    return read_map(f->value, std::string(name), pos_of(f->value.Mark()), keys_of(name));
}

void Loader::report_missing(const Section& s, std::string_view key) {
    if (s.usable) error(s.pos, dotted(s.name, key), "required key is missing");
}

std::optional<std::string> Loader::read_string(const Section& s, std::string_view key,
                                               bool required) {
    const Field* f = s.find(key);
    if (!f) {
        if (required) report_missing(s, key);
        return std::nullopt;
    }
    if (f->value.IsNull()) {
        error(f->value_pos(), f->path,
              required ? "has no value; expected a string"
                       : "has no value; expected a string (delete the line to use the default)");
        return std::nullopt;
    }
    if (!f->value.IsScalar()) {
        error(f->value_pos(), f->path,
              fmt::format("expected a string, got {}", describe(f->value)));
        return std::nullopt;
    }
    std::string v = f->value.Scalar();
    if (v.empty()) {
        error(f->value_pos(), f->path, "must not be empty");
        return std::nullopt;
    }
    return v;
}

std::optional<std::int64_t> Loader::read_int(const Section& s, std::string_view key,
                                             std::int64_t min, std::int64_t max,
                                             std::string_view range_text) {
    const Field* f = s.find(key);
    if (!f) return std::nullopt;
    const std::string range =
        range_text.empty() ? fmt::format("must be between {} and {}", min, max) : std::string(range_text);
    if (f->value.IsNull()) {
        error(f->value_pos(), f->path,
              "has no value; expected an integer (delete the line to use the default)");
        return std::nullopt;
    }
    if (!f->value.IsScalar()) {
        error(f->value_pos(), f->path,
              fmt::format("expected an integer, got {}", describe(f->value)));
        return std::nullopt;
    }
    const std::string& text = f->value.Scalar();
    // [+-]digits; from_chars takes no '+', so it is dropped here.
    std::string_view digits = text;
    if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);
    const std::string_view unsigned_part =
        (text.starts_with("-") ? digits.substr(1) : digits);
    const bool looks_numeric =
        !unsigned_part.empty() && std::all_of(unsigned_part.begin(), unsigned_part.end(),
                                              [](char c) { return c >= '0' && c <= '9'; });
    if (!looks_numeric) {
        error(f->value_pos(), f->path,
              fmt::format("expected an integer, got {}", describe(f->value)));
        return std::nullopt;
    }
    std::int64_t v = 0;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    if (ec != std::errc() || ptr != digits.data() + digits.size() || v < min || v > max) {
        error(f->value_pos(), f->path, fmt::format("{} (got {})", range, text));
        return std::nullopt;
    }
    return v;
}

std::optional<fs::path> Loader::read_path(const Section& s, std::string_view key, bool required) {
    auto text = read_string(s, key, required);
    if (!text) return std::nullopt;
    const Field* f = s.find(key);
    if (text->starts_with("~")) {
        error(f->value_pos(), f->path,
              fmt::format("'~' is not expanded; write the full path instead of '{}'", *text));
        return std::nullopt;
    }
    fs::path p(*text);
    if (p.is_relative()) p = base_dir_ / p;
    p = p.lexically_normal();
    // "dir/" normalises to "dir/" with an empty filename; drop the trailing separator.
    if (!p.has_filename() && p.has_parent_path() && p != p.root_path()) p = p.parent_path();
    return p;
}

void Loader::load_station(const Section& s, Station& out) {
    for (std::string_view key : {"shop", "id"}) {
        if (auto v = read_string(s, key, true)) {
            if (auto problem = topic_level_problem(*v))
                error(s.find(key)->value_pos(), s.find(key)->path, *problem);
            else
                (key == "shop" ? out.shop : out.id) = *v;
        }
    }
    const Field* f = s.find("pools");
    if (!f || f->value.IsNull()) return;
    if (!f->value.IsSequence()) {
        std::string msg = fmt::format("expected a list of strings, got {}", describe(f->value));
        if (f->value.IsScalar()) msg += fmt::format("; write [{}] for a single pool", f->value.Scalar());
        error(f->value_pos(), f->path, std::move(msg));
        return;
    }
    std::map<std::string, int> seen;  // name -> line
    for (std::size_t i = 0; i < f->value.size(); ++i) {
        const YAML::Node item = f->value[i];
        const std::string path = fmt::format("{}[{}]", f->path, i);
        const Pos p = item.IsNull() ? f->value_pos() : pos_of(item.Mark());
        if (!item.IsScalar()) {
            error(p, path, fmt::format("expected a string, got {}", describe(item)));
            continue;
        }
        const std::string name = item.Scalar();
        if (auto problem = topic_level_problem(name)) {
            error(p, path, *problem);
            continue;
        }
        if (auto it = seen.find(name); it != seen.end()) {
            error(p, path, fmt::format("duplicate pool '{}' (first given at line {})", name, it->second));
            continue;
        }
        seen.emplace(name, p.line);
        out.pools.push_back(name);
    }
}

std::optional<std::string> Loader::normalise_uri(const Field& f, std::string_view uri) {
    const Pos p = f.value_pos();
    const auto sep = uri.find("://");
    if (sep == std::string_view::npos) {
        error(p, f.path,
              fmt::format("must start with tcp://, ssl:// or mqtts:// (got '{}'), e.g. "
                          "tcp://broker.example:1883",
                          uri));
        return std::nullopt;
    }
    std::string scheme(uri.substr(0, sep));
    std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    int default_port = 0;
    std::string stored_scheme;
    if (scheme == "tcp" || scheme == "mqtt") {
        // mqtt:// is not in the documented list; say so rather than guess.
        if (scheme == "mqtt") {
            error(p, f.path,
                  fmt::format("unsupported scheme 'mqtt://'; use tcp:// (plain) or ssl:// / mqtts:// "
                              "(TLS), e.g. tcp://{}",
                              uri.substr(sep + 3)));
            return std::nullopt;
        }
        default_port = 1883;
        stored_scheme = "tcp";
    } else if (scheme == "ssl" || scheme == "mqtts") {
        default_port = 8883;
        stored_scheme = "ssl";  // paho only knows ssl://
    } else {
        error(p, f.path,
              fmt::format("unsupported scheme '{}://'; use tcp://, ssl:// or mqtts://", scheme));
        return std::nullopt;
    }
    std::string_view rest = uri.substr(sep + 3);
    if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);  // tolerate "tcp://host:1883/"
    if (rest.find('@') != std::string_view::npos) {
        error(p, f.path,
              "must not contain user or password; use broker.username and broker.password_file");
        return std::nullopt;
    }
    if (rest.find_first_of("/?#") != std::string_view::npos) {
        error(p, f.path,
              fmt::format("must be {}://HOST:PORT with no path (got '{}')", scheme, uri));
        return std::nullopt;
    }
    std::string_view host;
    std::string_view port_text;
    if (!rest.empty() && rest.front() == '[') {  // [IPv6]:port
        const auto close = rest.find(']');
        if (close == std::string_view::npos) {
            error(p, f.path, fmt::format("IPv6 address is missing ']' (got '{}')", uri));
            return std::nullopt;
        }
        host = rest.substr(0, close + 1);
        std::string_view after = rest.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') {
                error(p, f.path, fmt::format("unexpected text after the host (got '{}')", uri));
                return std::nullopt;
            }
            port_text = after.substr(1);
            if (port_text.empty()) port_text = "<empty>";
        }
        if (host.size() <= 2) host = {};
    } else {
        const auto colon = rest.rfind(':');
        if (colon == std::string_view::npos) {
            host = rest;
        } else {
            host = rest.substr(0, colon);
            port_text = rest.substr(colon + 1);
            if (port_text.empty()) port_text = "<empty>";
            if (host.find(':') != std::string_view::npos) {
                error(p, f.path,
                      fmt::format("an IPv6 address must be in brackets, e.g. {}://[::1]:{} (got '{}')",
                                  scheme, default_port, uri));
                return std::nullopt;
            }
        }
    }
    if (host.empty()) {
        error(p, f.path, fmt::format("has no host name (got '{}')", uri));
        return std::nullopt;
    }
    if (host.find_first_of(" \t") != std::string_view::npos) {
        error(p, f.path, fmt::format("host name contains a space (got '{}')", uri));
        return std::nullopt;
    }
    int port = default_port;
    if (!port_text.empty()) {
        int v = 0;
        auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), v);
        if (ec != std::errc() || ptr != port_text.data() + port_text.size() || v < 1 || v > 65535) {
            error(p, f.path, fmt::format("port must be a number from 1 to 65535 (got '{}')", port_text));
            return std::nullopt;
        }
        port = v;
    }
    return fmt::format("{}://{}:{}", stored_scheme, host, port);
}

bool Loader::check_input_file(const Field& f, const fs::path& p, bool secret) {
    const Pos pos = f.value_pos();
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) {
        const int err = errno;
        if (err == ENOENT || err == ENOTDIR)
            error(pos, f.path, fmt::format("{} does not exist", p.string()));
        else
            error(pos, f.path, fmt::format("{} cannot be read: {}", p.string(), std::strerror(err)));
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        error(pos, f.path, fmt::format("{} is not a regular file", p.string()));
        return false;
    }
    if (secret && (st.st_mode & 077) != 0) {
        const unsigned mode = static_cast<unsigned>(st.st_mode);
        error(pos, f.path,
              fmt::format("{} is {} by group or others (mode {}); run chmod 600 {}", p.string(),
                          (mode & 044) ? "readable" : "accessible", mode_octal(mode), p.string()));
        return false;
    }
    if (::access(p.c_str(), R_OK) != 0) {
        error(pos, f.path,
              fmt::format("{} cannot be read: {}", p.string(), std::strerror(errno)));
        return false;
    }
    return true;
}

void Loader::load_broker(const Section& s, const Station& station, bool station_ok, Broker& out) {
    if (auto uri = read_string(s, "uri", true)) {
        if (auto norm = normalise_uri(*s.find("uri"), *uri)) out.uri = *norm;
    }
    const bool uri_ok = !out.uri.empty();

    if (auto id = read_string(s, "client_id", false))
        out.client_id = *id;
    else if (!present(s, "client_id") && station_ok)
        out.client_id = fmt::format("pressline-{}-{}", station.shop, station.id);

    if (auto user = read_string(s, "username", false)) out.username = *user;

    if (auto pw = read_path(s, "password_file", false)) {
        const Field& f = *s.find("password_file");
        if (!present(s, "username")) {
            error(f.value_pos(), f.path, "needs broker.username; a password is sent with a user name");
        } else if (check_input_file(f, *pw, true)) {
            std::ifstream in(*pw, std::ios::binary);
            std::ostringstream buf;
            if (in.is_open()) buf << in.rdbuf();
            std::string text = buf.str();
            while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
            if (!in.is_open() || in.bad()) {
                error(f.value_pos(), f.path, fmt::format("{} could not be read", pw->string()));
            } else if (text.empty()) {
                error(f.value_pos(), f.path, fmt::format("{} is empty; write the password in it", pw->string()));
            } else {
                out.password_file = *pw;
                out.password = std::move(text);
            }
        }
    }

    // TLS files. Each is checked on its own; the pairing and scheme checks are reported once.
    const bool tls = uri_ok && out.uses_tls();
    auto tls_file = [&](std::string_view key, bool secret, fs::path& dest) {
        auto p = read_path(s, key, false);
        if (!p) return;
        const Field& f = *s.find(key);
        if (uri_ok && !tls) {
            error(f.value_pos(), f.path,
                  "is set but broker.uri uses tcp:// (no TLS), so it would be ignored; use an "
                  "ssl:// or mqtts:// uri, or remove this key");
            return;
        }
        if (check_input_file(f, *p, secret)) dest = *p;
    };
    tls_file("ca_file", false, out.ca_file);
    tls_file("cert_file", false, out.cert_file);
    tls_file("key_file", true, out.key_file);
    const Field* cert = s.find("cert_file");
    const Field* key = s.find("key_file");
    if (uri_ok && !tls) cert = key = nullptr;  // already reported as unused above
    if (cert && !key)
        error(cert->value_pos(), cert->path,
              "needs broker.key_file too; a client certificate is used together with its key");
    if (key && !cert)
        error(key->value_pos(), key->path,
              "needs broker.cert_file too; a client key is used together with its certificate");

    if (auto v = read_int(s, "keepalive_s", 5, 3600)) out.keepalive_s = static_cast<int>(*v);
    if (auto v = read_int(s, "connect_timeout_s", 1, 300)) out.connect_timeout_s = static_cast<int>(*v);
    if (auto v = read_int(s, "session_expiry_s", 60, 4294967295LL))
        out.session_expiry_s = static_cast<std::uint32_t>(*v);
    auto min = read_int(s, "reconnect_min_s", 1, 3600);
    if (min) out.reconnect_min_s = static_cast<int>(*min);
    const bool min_ok = min || !present(s, "reconnect_min_s");
    auto max = read_int(s, "reconnect_max_s", 1, 3600);
    if (max) out.reconnect_max_s = static_cast<int>(*max);
    const bool max_ok = max || !present(s, "reconnect_max_s");
    if (min_ok && max_ok && out.reconnect_max_s < out.reconnect_min_s) {
        const Field* at = max ? s.find("reconnect_max_s") : s.find("reconnect_min_s");
        error(at->value_pos(), dotted("broker", "reconnect_max_s"),
              fmt::format("must be at least broker.reconnect_min_s ({}), got {}", out.reconnect_min_s,
                          out.reconnect_max_s));
    }
    if (auto v = read_int(s, "max_inflight", 1, 65535)) out.max_inflight = static_cast<int>(*v);
}

void Loader::load_mqtt(const Section& s, Mqtt& out) {
    auto v = read_string(s, "topic_prefix", false);
    if (!v) return;
    const Field& f = *s.find("topic_prefix");
    std::string problem;
    if (v->find_first_of("+#") != std::string::npos)
        problem = "must not contain the MQTT wildcards '+' or '#'";
    else if (v->front() == '/' || v->back() == '/')
        problem = "must not start or end with '/'";
    else if (v->find("//") != std::string::npos)
        problem = "must not contain an empty topic level ('//')";
    else if (v->front() == '$')
        problem = "must not start with '$' (reserved by brokers)";
    else if (std::any_of(v->begin(), v->end(), [](unsigned char c) { return c < 0x20 || c == ' '; }))
        problem = "must not contain spaces or control characters";
    if (!problem.empty())
        error(f.value_pos(), f.path, fmt::format("{} (got '{}')", problem, *v));
    else
        out.topic_prefix = *v;
}

void Loader::load_storage(const Section& s, Storage& out) {
    if (auto dir = read_path(s, "state_dir", true)) {
        std::error_code ec;
        const auto st = fs::status(*dir, ec);
        if (!ec && fs::exists(st) && !fs::is_directory(st)) {
            const Field& f = *s.find("state_dir");
            error(f.value_pos(), f.path,
                  fmt::format("{} exists and is not a directory", dir->string()));
        } else {
            out.state_dir = *dir;
        }
    }
    if (auto v = read_int(s, "retention_hours", 1, 87600)) out.retention_hours = static_cast<int>(*v);
    if (auto v = read_int(s, "outbox_max_events", 1000, 100'000'000)) out.outbox_max_events = *v;
    if (auto v = read_int(s, "min_free_mb", 0, 1'000'000)) out.min_free_mb = *v;
    if (auto v = read_int(s, "max_db_mb", 0, std::numeric_limits<std::int64_t>::max(),
                          "must be 0 (no cap) or at least 16")) {
        if (*v != 0 && *v < 16) {
            const Field& f = *s.find("max_db_mb");
            error(f.value_pos(), f.path, fmt::format("must be 0 (no cap) or at least 16 (got {})", *v));
        } else {
            out.max_db_mb = *v;
        }
    }
}

void Loader::load_intake(const Section& s, Intake& out) {
    if (auto v = read_int(s, "max_payload_bytes", 1024, 16'777'216))
        out.max_payload_bytes = static_cast<std::size_t>(*v);
    if (auto v = read_int(s, "max_depth", 4, 128)) out.max_depth = static_cast<int>(*v);
}

void Loader::load_log(const Section& s, Log& out) {
    static const std::vector<std::string_view> levels = {"trace", "debug", "info", "warn", "error"};
    auto v = read_string(s, "level", false);
    if (!v) return;
    if (std::find(levels.begin(), levels.end(), *v) != levels.end()) {
        out.level = *v;
        return;
    }
    const Field& f = *s.find("level");
    std::string msg = fmt::format("unknown level '{}'; use one of {}", *v, join(levels));
    std::string lower = *v;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (lower == "warning") lower = "warn";
    if (auto near = closest(lower, levels)) msg = fmt::format("unknown level '{}'; did you mean '{}'?", *v, *near);
    error(f.value_pos(), f.path, std::move(msg));
}


std::optional<bool> Loader::read_bool(const Section& s, std::string_view key) {
    const Field* f = s.find(key);
    if (!f) return std::nullopt;
    if (f->value.IsScalar()) {
        const std::string& t = f->value.Scalar();
        if (t == "true" || t == "yes" || t == "on") return true;
        if (t == "false" || t == "no" || t == "off") return false;
    }
    error(f->value_pos(), f->path, fmt::format("expected true or false, got {}", describe(f->value)));
    return std::nullopt;
}

std::optional<double> Loader::read_double(const Section& s, std::string_view key, double min,
                                          double max) {
    const Field* f = s.find(key);
    if (!f) return std::nullopt;
    if (f->value.IsScalar()) {
        const std::string& t = f->value.Scalar();
        double v = 0;
        auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
        if (ec == std::errc() && ptr == t.data() + t.size()) {
            if (v >= min && v <= max) return v;
            error(f->value_pos(), f->path, fmt::format("must be between {} and {} (got {})", min, max, t));
            return std::nullopt;
        }
    }
    error(f->value_pos(), f->path, fmt::format("expected a number, got {}", describe(f->value)));
    return std::nullopt;
}

std::optional<std::vector<std::string>> Loader::read_string_list(
    const Section& s, std::string_view key, const std::vector<std::string_view>& allowed) {
    const Field* f = s.find(key);
    if (!f) return std::nullopt;
    if (!f->value.IsSequence()) {
        std::string msg = fmt::format("expected a list of strings, got {}", describe(f->value));
        if (f->value.IsScalar()) msg += fmt::format("; write [{}] for a single entry", f->value.Scalar());
        error(f->value_pos(), f->path, std::move(msg));
        return std::nullopt;
    }
    std::vector<std::string> out;
    bool ok = true;
    for (std::size_t i = 0; i < f->value.size(); ++i) {
        const YAML::Node item = f->value[i];
        const std::string path = fmt::format("{}[{}]", f->path, i);
        const Pos p = item.IsNull() ? f->value_pos() : pos_of(item.Mark());
        if (!item.IsScalar() || item.Scalar().empty()) {
            error(p, path, fmt::format("expected a non-empty string, got {}", describe(item)));
            ok = false;
            continue;
        }
        const std::string v = item.Scalar();
        if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), v) == allowed.end()) {
            std::string msg = fmt::format("unknown value '{}'; use one of {}", v, join(allowed));
            if (auto near = closest(v, allowed)) msg = fmt::format("unknown value '{}'; did you mean '{}'?", v, *near);
            error(p, path, std::move(msg));
            ok = false;
            continue;
        }
        if (std::find(out.begin(), out.end(), v) != out.end()) {
            error(p, path, fmt::format("'{}' is listed twice", v));
            ok = false;
            continue;
        }
        out.push_back(v);
    }
    if (!ok) return std::nullopt;
    return out;
}

std::vector<Field> Loader::map_entries(const Section& top, std::string_view name) {
    const Field* f = top.find(name);
    if (!f || f->value.IsNull()) return {};
    if (!f->value.IsMap()) {
        error(f->value_pos(), f->path, fmt::format("expected a map of names, got {}", describe(f->value)));
        return {};
    }
    std::vector<Field> out;
    std::set<std::string> seen;
    for (auto it = f->value.begin(); it != f->value.end(); ++it) {
        Field e{it->first, it->second, {}};
        if (!e.key.IsScalar()) {
            error(pos_of(e.key.Mark()), f->path, "names must be plain strings");
            continue;
        }
        e.path = dotted(f->path, e.key.Scalar());
        if (!seen.insert(e.key.Scalar()).second) {
            error(e.key_pos(), e.path, "duplicate name; remove one of them");
            continue;
        }
        out.push_back(std::move(e));
    }
    return out;
}

void Loader::load_assets(const Section& s, const Storage& storage, Assets& out) {
    if (auto p = read_path(s, "file_root", false)) out.file_root = *p;
    if (auto v = read_string_list(s, "allowed_hosts")) out.allowed_hosts = *v;
    if (auto v = read_bool(s, "allow_private_addresses")) out.allow_private_addresses = *v;
    if (auto p = read_path(s, "ca_file", false)) {
        if (check_input_file(*s.find("ca_file"), *p, false)) out.ca_file = *p;
    }
    if (auto p = read_path(s, "cache_dir", false))
        out.cache_dir = *p;
    else if (!storage.state_dir.empty())
        out.cache_dir = storage.state_dir / "assets";
    if (auto v = read_int(s, "cache_max_mb", 16, 10'000'000)) out.cache_max_mb = *v;
    if (auto v = read_int(s, "max_mb", 1, 100'000)) out.max_mb = *v;
    if (auto v = read_int(s, "max_megapixels", 1, 10'000)) out.max_megapixels = *v;
    if (auto v = read_int(s, "connect_timeout_s", 1, 300)) out.connect_timeout_s = static_cast<int>(*v);
    if (auto v = read_int(s, "timeout_s", 1, 3600)) out.timeout_s = static_cast<int>(*v);
}

void Loader::load_printing(const Section& s, Printing& out) {
    if (auto v = read_int(s, "retry_budget", 0, 100)) out.retry_budget = static_cast<int>(*v);
    if (auto v = read_int(s, "retry_backoff_s", 0, 3600)) out.retry_backoff_s = static_cast<int>(*v);
    if (auto v = read_int(s, "poll_min_ms", 10, 60'000)) out.poll_min_ms = static_cast<int>(*v);
    if (auto v = read_int(s, "failover_after_s", 1, 86'400)) out.failover_after_s = static_cast<int>(*v);
    if (auto v = read_int(s, "poll_max_ms", 10, 300'000)) out.poll_max_ms = static_cast<int>(*v);
    if (out.poll_max_ms < out.poll_min_ms) {
        const Field* f = s.find("poll_max_ms");
        error(f ? f->value_pos() : s.pos, "printing.poll_max_ms",
              fmt::format("must not be below printing.poll_min_ms ({})", out.poll_min_ms));
    }
    if (auto v = read_string(s, "release", false)) {
        if (*v == "auto") out.release = *v;
        else error(s.find("release")->value_pos(), "printing.release",
                   fmt::format("unknown release mode '{}'; this version supports: auto", *v));
    }
}

void Loader::load_scheduler(const Section& s, Scheduler& out) {
    if (auto v = read_int(s, "aging_minutes", 0, 100'000)) out.aging_minutes = static_cast<int>(*v);
    if (auto v = read_int(s, "batch_window_minutes", 0, 100'000)) out.batch_window_minutes = static_cast<int>(*v);
    if (auto v = read_int(s, "batch_max", 1, 10'000)) out.batch_max = static_cast<int>(*v);
    if (auto v = read_int(s, "batch_max_wait_s", 0, 1'000'000)) out.batch_max_wait_s = static_cast<int>(*v);
}

// "16x20" (inches, width x height) -> mm; nothing for other names.
std::optional<std::pair<double, double>> inch_platen(std::string_view name) {
    const auto x = name.find('x');
    if (x == std::string_view::npos) return std::nullopt;
    double w = 0, h = 0;
    auto a = std::from_chars(name.data(), name.data() + x, w);
    auto b = std::from_chars(name.data() + x + 1, name.data() + name.size(), h);
    if (a.ec != std::errc() || a.ptr != name.data() + x || b.ec != std::errc() ||
        b.ptr != name.data() + name.size() || w <= 0 || h <= 0 || w > 100 || h > 100)
        return std::nullopt;
    return std::pair{w * 25.4, h * 25.4};
}

void Loader::load_platens(const Section& top, Config& cfg) {
    for (std::string_view n : {"16x20", "14x16", "16x18", "12x14", "10x12", "7x8", "4x4"}) {
        auto mm = inch_platen(n);
        cfg.platens[std::string(n)] = Platen{std::string(n), mm->first, mm->second};
    }
    for (const Field& e : map_entries(top, "platens")) {
        if (!e.value.IsMap()) {
            error(e.value_pos(), e.path, fmt::format("expected {{width_mm: W, height_mm: H}}, got {}", describe(e.value)));
            continue;
        }
        const Section ps = read_map(e.value, e.path, pos_of(e.value.Mark()), {"width_mm", "height_mm"});
        auto w = read_double(ps, "width_mm", 10, 2000);
        auto h = read_double(ps, "height_mm", 10, 2000);
        if (!ps.find("width_mm")) report_missing(ps, "width_mm");
        if (!ps.find("height_mm")) report_missing(ps, "height_mm");
        if (w && h) cfg.platens[e.key.Scalar()] = Platen{e.key.Scalar(), *w, *h};
    }
}

void Loader::load_garment_colors(const Section& top, Config& cfg) {
    const std::pair<std::string_view, std::array<int, 3>> defaults[] = {
        {"white", {255, 255, 255}}, {"black", {20, 20, 22}},     {"navy", {31, 40, 66}},
        {"heather_grey", {160, 160, 165}}, {"red", {190, 30, 45}}, {"royal_blue", {40, 70, 160}},
        {"forest_green", {30, 75, 50}},    {"natural", {238, 230, 210}}, {"ash", {215, 215, 210}},
        {"charcoal", {60, 60, 65}},        {"maroon", {95, 30, 40}},  {"pink", {245, 180, 200}},
    };
    for (const auto& [n, rgb] : defaults)
        cfg.garment_colors[std::string(n)] = GarmentColor{std::string(n), rgb, color_class_of(rgb)};
    auto read_rgb = [&](const YAML::Node& node, const std::string& path) -> std::optional<std::array<int, 3>> {
        if (!node.IsSequence() || node.size() != 3) {
            error(pos_of(node.Mark()), path, fmt::format("expected [r, g, b] with values 0-255, got {}", describe(node)));
            return std::nullopt;
        }
        std::array<int, 3> rgb{};
        for (std::size_t i = 0; i < 3; ++i) {
            int v = -1;
            const std::string t = node[i].IsScalar() ? node[i].Scalar() : "";
            auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
            if (t.empty() || ec != std::errc() || ptr != t.data() + t.size() || v < 0 || v > 255) {
                error(pos_of(node[i].Mark()), fmt::format("{}[{}]", path, i),
                      fmt::format("expected an integer 0-255, got {}", describe(node[i])));
                return std::nullopt;
            }
            rgb[i] = v;
        }
        return rgb;
    };
    for (const Field& e : map_entries(top, "garment_colors")) {
        GarmentColor c{e.key.Scalar(), {}, {}};
        if (e.value.IsSequence()) {
            auto rgb = read_rgb(e.value, e.path);
            if (!rgb) continue;
            c.srgb = *rgb;
            c.color_class = color_class_of(*rgb);
        } else if (e.value.IsMap()) {
            const Section cs = read_map(e.value, e.path, pos_of(e.value.Mark()), {"srgb", "class"});
            const Field* rf = cs.find("srgb");
            if (!rf) { report_missing(cs, "srgb"); continue; }
            auto rgb = read_rgb(rf->value, rf->path);
            if (!rgb) continue;
            c.srgb = *rgb;
            c.color_class = color_class_of(*rgb);
            if (auto cls = read_string(cs, "class", false)) {
                if (*cls != "light" && *cls != "dark") {
                    error(cs.find("class")->value_pos(), cs.find("class")->path,
                          fmt::format("unknown class '{}'; use light or dark", *cls));
                    continue;
                }
                c.color_class = *cls;
            }
        } else {
            error(e.value_pos(), e.path, fmt::format("expected [r, g, b] or {{srgb: [r, g, b], class: dark}}, got {}", describe(e.value)));
            continue;
        }
        cfg.garment_colors[c.name] = c;
    }
}

void Loader::load_dtg_printers(const Section& top, Config& cfg) {
    const Field* f = top.find("dtg_printers");
    if (!f || f->value.IsNull()) return;
    if (!f->value.IsSequence()) {
        error(f->value_pos(), f->path, fmt::format("expected a list of printers (- name: ...), got {}", describe(f->value)));
        return;
    }
    std::map<std::string, int> names;
    for (std::size_t i = 0; i < f->value.size(); ++i) {
        const YAML::Node item = f->value[i];
        const std::string path = fmt::format("dtg_printers[{}]", i);
        if (!item.IsMap()) {
            error(pos_of(item.Mark()), path, fmt::format("expected a map (name, driver, ...), got {}", describe(item)));
            continue;
        }
        const Section ps = read_map(item, path, pos_of(item.Mark()), kDtgPrinterKeys);
        DtgPrinter d;
        if (auto v = read_string(ps, "name", true)) {
            if (auto problem = topic_level_problem(*v)) {
                error(ps.find("name")->value_pos(), ps.find("name")->path, *problem);
            } else if (auto it = names.find(*v); it != names.end()) {
                error(ps.find("name")->value_pos(), ps.find("name")->path,
                      fmt::format("duplicate printer name '{}' (first given at line {})", *v, it->second));
            } else {
                names.emplace(*v, ps.find("name")->value_pos().line);
                d.name = *v;
            }
        }
        if (auto v = read_string(ps, "driver", false)) {
            if (*v != "cups" && *v != "hotfolder")
                error(ps.find("driver")->value_pos(), ps.find("driver")->path,
                      fmt::format("unknown driver '{}'; use cups or hotfolder", *v));
            else
                d.driver = *v;
        }
        if (auto v = read_string(ps, "server", false)) d.server = *v;
        if (auto v = read_string(ps, "queue", false)) d.queue = *v;
        if (d.queue.empty()) d.queue = d.name;
        if (const Field* of = ps.find("options")) {
            if (!of->value.IsMap()) {
                error(of->value_pos(), of->path, fmt::format("expected a map of IPP option names to values, got {}", describe(of->value)));
            } else {
                for (auto it = of->value.begin(); it != of->value.end(); ++it) {
                    if (!it->first.IsScalar() || !it->second.IsScalar()) {
                        error(pos_of(it->first.Mark()), of->path, "each option is `name: value` with plain strings");
                        continue;
                    }
                    d.options[it->first.Scalar()] = it->second.Scalar();
                }
            }
        }
        for (auto [key, out] : {std::pair{"hot_folder", &d.hot_folder}, {"done_folder", &d.done_folder},
                                {"error_folder", &d.error_folder}, {"result_folder", &d.result_folder}})
            if (auto p = read_path(ps, key, false)) *out = *p;
        if (auto v = read_string(ps, "completion", false)) {
            if (*v != "consumed" && *v != "folders" && *v != "result_file")
                error(ps.find("completion")->value_pos(), ps.find("completion")->path,
                      fmt::format("unknown completion '{}'; use consumed, folders or result_file", *v));
            else
                d.completion = *v;
        }
        if (auto v = read_int(ps, "rip_timeout_s", 1, 86'400)) d.rip_timeout_s = static_cast<int>(*v);
        if (d.driver == "hotfolder") {
            if (d.hot_folder.empty()) report_missing(ps, "hot_folder");
            if (d.completion == "folders" && d.done_folder.empty()) report_missing(ps, "done_folder");
            if (d.completion == "folders" && d.error_folder.empty()) report_missing(ps, "error_folder");
            if (d.completion == "result_file" && d.result_folder.empty()) report_missing(ps, "result_folder");
        }
        d.platens = {"16x20"};
        if (auto v = read_string_list(ps, "platens")) {
            bool ok = true;
            const Field* pf = ps.find("platens");
            for (std::size_t k = 0; k < v->size(); ++k) {
                const std::string& n = (*v)[k];
                if (cfg.platens.count(n)) continue;
                if (auto mm = inch_platen(n)) {
                    cfg.platens[n] = Platen{n, mm->first, mm->second};
                    continue;
                }
                error(pos_of(pf->value[k].Mark()), fmt::format("{}[{}]", pf->path, k),
                      fmt::format("unknown platen '{}'; define it under platens: (width_mm, height_mm) "
                                  "or name it WxH in inches, e.g. 16x20", n));
                ok = false;
            }
            if (ok) d.platens = *v;
        }
        d.garment_classes = {"light", "dark"};
        if (auto v = read_string_list(ps, "garment_classes", {"light", "dark"})) d.garment_classes = *v;
        d.methods = {"dtg"};
        if (auto v = read_string_list(ps, "methods")) d.methods = *v;
        if (auto v = read_int(ps, "dpi", 72, 2400)) d.dpi = static_cast<int>(*v);
        if (auto v = read_string(ps, "format", false)) {
            if (*v != "png" && *v != "jpeg" && *v != "pdf")
                error(ps.find("format")->value_pos(), ps.find("format")->path,
                      fmt::format("unknown format '{}'; use png, jpeg or pdf", *v));
            else
                d.format = *v;
        }
        cfg.dtg_printers.push_back(std::move(d));
    }
}

void Loader::read_choice(const Section& s, std::string_view key,
                         std::initializer_list<std::string_view> allowed, std::string& out) {
    auto v = read_string(s, key, false);
    if (!v) return;
    const std::vector<std::string_view> list(allowed);
    if (std::find(list.begin(), list.end(), *v) != list.end()) {
        out = *v;
        return;
    }
    std::string msg = fmt::format("unknown value '{}'; use one of {}", *v, join(list));
    if (auto near = closest(*v, list)) msg = fmt::format("unknown value '{}'; did you mean '{}'?", *v, *near);
    error(s.find(key)->value_pos(), s.find(key)->path, msg);
}

void Loader::load_label_printers(const Section& top, Config& cfg) {
    const Field* f = top.find("label_printers");
    if (!f || f->value.IsNull()) return;
    if (!f->value.IsSequence()) {
        error(f->value_pos(), f->path, fmt::format("expected a list of printers (- name: ...), got {}", describe(f->value)));
        return;
    }
    std::map<std::string, int> names;
    for (const auto& d : cfg.dtg_printers) names.emplace(d.name, 0);
    for (std::size_t i = 0; i < f->value.size(); ++i) {
        const YAML::Node item = f->value[i];
        const std::string path = fmt::format("label_printers[{}]", i);
        if (!item.IsMap()) {
            error(pos_of(item.Mark()), path, fmt::format("expected a map (name, connection, ...), got {}", describe(item)));
            continue;
        }
        const Section ps = read_map(item, path, pos_of(item.Mark()), kLabelPrinterKeys);
        LabelPrinter p;
        if (auto v = read_string(ps, "name", true)) {
            if (auto problem = topic_level_problem(*v)) {
                error(ps.find("name")->value_pos(), ps.find("name")->path, *problem);
            } else if (auto it = names.find(*v); it != names.end()) {
                error(ps.find("name")->value_pos(), ps.find("name")->path,
                      it->second ? fmt::format("duplicate printer name '{}' (first given at line {})", *v, it->second)
                                 : fmt::format("duplicate printer name '{}' (a DTG printer has it)", *v));
            } else {
                names.emplace(*v, ps.find("name")->value_pos().line);
                p.name = *v;
            }
        }
        read_choice(ps, "connection", {"usb", "tcp", "cups"}, p.connection);
        read_choice(ps, "language", {"zpl", "pdf"}, p.language);
        if (p.language == "pdf" && p.connection != "cups" && ps.find("language"))
            error(ps.find("language")->value_pos(), ps.find("language")->path,
                  fmt::format("pdf labels need connection cups (a CUPS queue rasterises them); "
                              "connection is {}", p.connection));
        // USB ids as lsusb shows them: hex, "0a5f" or 0x0a5f.
        auto usb_id = [&](std::string_view key, int& out) {
            const Field* idf = ps.find(key);
            if (!idf) return;
            const std::string text = idf->value.IsScalar() ? idf->value.Scalar() : std::string();
            std::string hex = text;
            if (hex.size() > 2 && hex[0] == '0' && (hex[1] == 'x' || hex[1] == 'X')) hex = hex.substr(2);
            const bool ok = !hex.empty() && hex.size() <= 4 &&
                            hex.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
            const long v = ok ? std::strtol(hex.c_str(), nullptr, 16) : 0;
            if (!ok || v < 1)
                error(idf->value_pos(), idf->path,
                      fmt::format("expected a USB id in hex as lsusb shows it (0a5f or 0x0a5f), got {}", describe(idf->value)));
            else
                out = static_cast<int>(v);
        };
        usb_id("vendor_id", p.vendor_id);
        usb_id("product_id", p.product_id);
        if (auto v = read_string(ps, "serial", false)) p.serial = *v;
        if (auto v = read_string(ps, "host", false)) p.host = *v;
        if (auto v = read_int(ps, "port", 1, 65535)) p.port = static_cast<int>(*v);
        if (auto v = read_string(ps, "server", false)) p.server = *v;
        if (auto v = read_string(ps, "queue", false)) p.queue = *v;
        if (p.queue.empty()) p.queue = p.name;
        if (p.connection == "usb" && !ps.find("product_id")) report_missing(ps, "product_id");
        if (p.connection == "tcp" && !ps.find("host")) report_missing(ps, "host");
        read_choice(ps, "status_query", {"auto", "hqes", "hs", "none"}, p.status_query);
        if (auto v = read_int(ps, "dpi", 100, 600)) p.dpi = static_cast<int>(*v);
        if (auto v = read_double(ps, "width_mm", 10, 300)) p.width_mm = *v;
        if (auto v = read_double(ps, "height_mm", 10, 1000)) p.height_mm = *v;
        if (auto v = read_int(ps, "darkness", -1, 30)) p.darkness = static_cast<int>(*v);
        if (auto v = read_double(ps, "x_offset_mm", -50, 50)) p.x_offset_mm = *v;
        if (auto v = read_double(ps, "y_offset_mm", -50, 50)) p.y_offset_mm = *v;
        read_choice(ps, "media", {"gap", "black_mark", "continuous"}, p.media);
        if (auto v = read_int(ps, "connect_timeout_ms", 100, 120'000)) p.connect_timeout_ms = static_cast<int>(*v);
        if (auto v = read_int(ps, "write_timeout_ms", 100, 600'000)) p.write_timeout_ms = static_cast<int>(*v);
        if (auto v = read_int(ps, "status_timeout_ms", 100, 120'000)) p.status_timeout_ms = static_cast<int>(*v);
        cfg.label_printers.push_back(std::move(p));
    }
}

void Loader::load_labels(const Section& s, Config& cfg) {
    Labels& out = cfg.labels;
    auto known = [&](const Field* f, const std::string& path, const YAML::Node& node, const std::string& name) {
        if (cfg.label_printer(name)) return true;
        std::vector<std::string_view> names;
        for (const auto& p : cfg.label_printers)
            if (!p.name.empty()) names.push_back(p.name);
        (void)f;
        error(pos_of(node.Mark()), path,
              names.empty() ? fmt::format("no label printer '{}': label_printers is empty", name)
                            : fmt::format("no label printer '{}'; label_printers has {}", name, join(names)));
        return false;
    };
    if (auto v = read_string(s, "ticket_printer", false)) {
        const Field* f = s.find("ticket_printer");
        if (v->empty() || known(f, f->path, f->value, *v)) out.ticket_printer = *v;
    }
    if (auto v = read_string_list(s, "shipping_printers")) {
        const Field* f = s.find("shipping_printers");
        bool ok = true;
        for (std::size_t k = 0; k < v->size(); ++k)
            ok = known(f, fmt::format("{}[{}]", f->path, k), f->value[k], (*v)[k]) && ok;
        if (ok) out.shipping_printers = *v;
    }
    if (auto v = read_double(s, "ticket_width_mm", 10, 300)) out.ticket_width_mm = *v;
    if (auto v = read_double(s, "ticket_height_mm", 10, 1000)) out.ticket_height_mm = *v;
    if (auto v = read_int(s, "retry_s", 1, 3600)) out.retry_s = static_cast<int>(*v);
    if (const Field* f = s.find("ship_from")) {
        if (!f->value.IsMap()) {
            error(f->value_pos(), f->path, fmt::format("expected a map (name, line1, city, ...), got {}", describe(f->value)));
            return;
        }
        const Section a = read_map(f->value, f->path, f->value_pos(), kShipFromKeys);
        ShipFrom& sf = out.ship_from;
        for (auto [key, dst] : {std::pair{"name", &sf.name}, {"company", &sf.company}, {"line1", &sf.line1},
                                {"line2", &sf.line2}, {"city", &sf.city}, {"region", &sf.region},
                                {"postal_code", &sf.postal_code}, {"country", &sf.country}, {"phone", &sf.phone}})
            if (auto v = read_string(a, key, false)) *dst = *v;
    }
}

void Loader::load_cameras(const Section& top, Config& cfg) {
    const Field* f = top.find("cameras");
    if (!f || f->value.IsNull()) return;
    if (!f->value.IsSequence()) {
        error(f->value_pos(), f->path, fmt::format("expected a list of cameras (- name: ...), got {}", describe(f->value)));
        return;
    }
    std::map<std::string, int> names;
    std::map<std::string, std::string> watched;  // printer -> camera
    for (std::size_t i = 0; i < f->value.size(); ++i) {
        const YAML::Node item = f->value[i];
        const std::string path = fmt::format("cameras[{}]", i);
        if (!item.IsMap()) {
            error(pos_of(item.Mark()), path, fmt::format("expected a map (name, source, ...), got {}", describe(item)));
            continue;
        }
        const Section cs = read_map(item, path, pos_of(item.Mark()), kCameraKeys);
        Camera c;
        if (auto v = read_string(cs, "name", true)) {
            if (auto problem = topic_level_problem(*v)) {
                error(cs.find("name")->value_pos(), cs.find("name")->path, *problem);
            } else if (auto it = names.find(*v); it != names.end()) {
                error(cs.find("name")->value_pos(), cs.find("name")->path,
                      fmt::format("duplicate camera name '{}' (first given at line {})", *v, it->second));
            } else {
                names.emplace(*v, cs.find("name")->value_pos().line);
                c.name = *v;
            }
        }
        if (auto v = read_string(cs, "source", true)) {
            static const std::vector<std::string_view> kinds = {"v4l2:", "rtsp://", "http://", "https://",
                                                                "snapshot:", "gst:", "folder:", "sequence:"};
            const bool known = std::any_of(kinds.begin(), kinds.end(), [&](std::string_view k) { return v->starts_with(k); });
            if (!known)
                error(cs.find("source")->value_pos(), cs.find("source")->path,
                      fmt::format("unknown camera source '{}'; use v4l2:/dev/videoN, rtsp://..., http(s)://..., "
                                  "snapshot:URL, gst:PIPELINE, folder:/path or sequence:/path/img_%04d.png", *v));
            else if (v->starts_with("folder:") && fs::path(v->substr(7)).is_relative())
                c.source = "folder:" + (base_dir_ / v->substr(7)).lexically_normal().string();
            else
                c.source = *v;
        }
        if (auto v = read_int(cs, "width", 0, 20000)) c.width = static_cast<int>(*v);
        if (auto v = read_int(cs, "height", 0, 20000)) c.height = static_cast<int>(*v);
        if (auto v = read_string(cs, "fourcc", false)) {
            if (v->size() != 4)
                error(cs.find("fourcc")->value_pos(), cs.find("fourcc")->path,
                      fmt::format("a fourcc is four characters, e.g. MJPG or YUYV (got '{}')", *v));
            else
                c.fourcc = *v;
        }
        if (auto v = read_double(cs, "exposure", -1, 1'000'000)) c.exposure = *v;
        if (auto v = read_int(cs, "open_timeout_ms", 100, 600'000)) c.open_timeout_ms = static_cast<int>(*v);
        if (auto v = read_int(cs, "read_timeout_ms", 100, 600'000)) c.read_timeout_ms = static_cast<int>(*v);
        // The calibration file is written by `pressline calibrate` and may come later than the
        // config: a missing file is reported when a capture is inspected (the job is held).
        if (auto p = read_path(cs, "calibration", true)) c.calibration = *p;
        if (auto v = read_string_list(cs, "printers")) {
            bool ok = true;
            const Field* pf = cs.find("printers");
            for (std::size_t k = 0; k < v->size(); ++k) {
                const std::string& n = (*v)[k];
                const bool exists = std::any_of(cfg.dtg_printers.begin(), cfg.dtg_printers.end(),
                                                [&](const DtgPrinter& d) { return d.name == n; });
                if (!exists) {
                    std::vector<std::string_view> all;
                    for (const auto& d : cfg.dtg_printers) all.push_back(d.name);
                    error(pos_of(pf->value[k].Mark()), fmt::format("{}[{}]", pf->path, k),
                          all.empty() ? fmt::format("no DTG printer '{}': dtg_printers is empty", n)
                                      : fmt::format("no DTG printer '{}'; dtg_printers has {}", n, join(all)));
                    ok = false;
                } else if (auto w = watched.find(n); w != watched.end()) {
                    error(pos_of(pf->value[k].Mark()), fmt::format("{}[{}]", pf->path, k),
                          fmt::format("printer '{}' is already watched by camera '{}'", n, w->second));
                    ok = false;
                } else {
                    watched.emplace(n, c.name);
                }
            }
            if (ok) c.printers = *v;
        }
        cfg.cameras.push_back(std::move(c));
    }
}

void Loader::load_qa(const Section& s, Config& cfg) {
    Qa& out = cfg.qa;
    if (auto v = read_bool(s, "enabled")) out.enabled = *v;
    read_choice(s, "trigger", {"delay", "operator", "qr"}, out.trigger);
    if (auto v = read_int(s, "delay_s", 0, 3600)) out.delay_s = static_cast<int>(*v);
    if (auto v = read_int(s, "qr_scan_interval_ms", 50, 60'000)) out.qr_scan_interval_ms = static_cast<int>(*v);
    if (auto v = read_int(s, "capture_timeout_s", 1, 86'400)) out.capture_timeout_s = static_cast<int>(*v);
    if (auto v = read_int(s, "reprint_limit", 0, 100)) out.reprint_limit = static_cast<int>(*v);
    if (auto v = read_double(s, "spot_check_share", 0, 1)) out.spot_check_share = *v;
    if (auto v = read_int(s, "pause_after_consecutive_failures", 0, 1000))
        out.pause_after_consecutive_failures = static_cast<int>(*v);
    auto sub = [&](std::string_view key, const std::vector<std::string_view>& keys) -> std::optional<Section> {
        const Field* f = s.find(key);
        if (!f || f->value.IsNull()) return std::nullopt;
        if (!f->value.IsMap()) {
            error(f->value_pos(), f->path, fmt::format("expected a map ({}), got {}", join(keys), describe(f->value)));
            return std::nullopt;
        }
        return read_map(f->value, f->path, f->value_pos(), keys);
    };
    if (auto t = sub("tolerances", kQaToleranceKeys)) {
        QaTolerances& tol = out.tolerances;
        for (auto [key, dst, lo, hi] :
             {std::tuple{"offset_mm", &tol.offset_mm, 0.0, 1000.0}, {"rotation_deg", &tol.rotation_deg, 0.0, 180.0},
              {"scale_pct", &tol.scale_pct, 0.0, 100.0}, {"mean_de00", &tol.mean_de00, 0.0, 100.0},
              {"local_de00", &tol.local_de00, 0.0, 100.0}, {"local_min_area_mm2", &tol.local_min_area_mm2, 0.0, 1e6},
              {"margin_mm", &tol.margin_mm, 0.0, 1000.0}, {"blank_de00", &tol.blank_de00, 0.0, 100.0},
              {"low_confidence", &tol.low_confidence, 0.0, 1.0}})
            if (auto v = read_double(*t, key, lo, hi)) *dst = *v;
    }
    if (!cfg.storage.state_dir.empty()) out.evidence.dir = cfg.storage.state_dir / "qa";
    if (auto e = sub("evidence", kQaEvidenceKeys)) {
        if (auto p = read_path(*e, "dir", false)) out.evidence.dir = *p;
        if (auto v = read_int(*e, "max_age_days", 1, 36'500)) out.evidence.max_age_days = static_cast<int>(*v);
        if (auto v = read_int(*e, "max_total_mb", 1, 100'000'000)) out.evidence.max_total_mb = *v;
    }
}

// Whether 0-based line `line` of `text` has a tab in its leading whitespace.
bool indented_with_tab(std::string_view text, int line) {
    if (line < 0) return false;
    std::size_t start = 0;
    for (int i = 0; i < line; ++i) {
        start = text.find('\n', start);
        if (start == std::string_view::npos) return false;
        ++start;
    }
    for (std::size_t i = start; i < text.size() && (text[i] == ' ' || text[i] == '\t'); ++i)
        if (text[i] == '\t') return true;
    return false;
}

LoadResult Loader::run(std::string_view text) {
    LoadResult result;
    std::vector<YAML::Node> docs;
    try {
        docs = YAML::LoadAll(std::string(text));
    } catch (const YAML::DeepRecursion& e) {  // its own message says "bad file"
        error(pos_of(e.mark), "", "YAML nesting is too deep");
        result.diagnostics = take_diagnostics();
        return result;
    } catch (const YAML::Exception& e) {
        std::string msg = fmt::format("YAML syntax error: {}", e.msg);
        if (indented_with_tab(text, e.mark.line)) msg += " (this line is indented with a tab; YAML needs spaces)";
        error(pos_of(e.mark), "", std::move(msg));
        result.diagnostics = take_diagnostics();
        return result;
    }
    if (docs.empty() || docs[0].IsNull()) {
        error({1, 1}, "",
              "the file is empty; it needs at least station.shop, station.id, broker.uri and "
              "storage.state_dir");
        result.diagnostics = take_diagnostics();
        return result;
    }
    if (docs.size() > 1) {
        // Find the second document's first node for a position; fall back to unknown.
        error(pos_of(docs[1].Mark()), "",
              "the file holds more than one YAML document ('---'); keep only one");
    }
    const YAML::Node& root = docs[0];
    if (!root.IsMap()) {
        error(pos_of(root.Mark()), "",
              fmt::format("the top level must be a map of sections ({}), got {}",
                          join(section_names()), describe(root)));
        result.diagnostics = take_diagnostics();
        return result;
    }

    Config cfg;
    cfg.source = source_;
    const Section top = read_map(root, "", pos_of(root.Mark()), section_names());
    const Section station = read_section(top, "station");
    const Section broker = read_section(top, "broker");
    const Section mqtt = read_section(top, "mqtt");
    const Section storage = read_section(top, "storage");
    const Section intake = read_section(top, "intake");
    const Section log = read_section(top, "log");

    const std::size_t before_station = diags_.size();
    load_station(station, cfg.station);
    const bool station_ok = diags_.size() == before_station && station.usable &&
                            !cfg.station.shop.empty() && !cfg.station.id.empty();
    load_broker(broker, cfg.station, station_ok, cfg.broker);
    load_mqtt(mqtt, cfg.mqtt);
    load_storage(storage, cfg.storage);
    load_intake(intake, cfg.intake);
    load_log(log, cfg.log);
    load_assets(read_section(top, "assets"), cfg.storage, cfg.assets);
    load_printing(read_section(top, "printing"), cfg.printing);
    load_scheduler(read_section(top, "scheduler"), cfg.scheduler);
    load_platens(top, cfg);
    load_garment_colors(top, cfg);
    load_dtg_printers(top, cfg);
    load_label_printers(top, cfg);
    load_labels(read_section(top, "labels"), cfg);
    load_cameras(top, cfg);
    load_qa(read_section(top, "qa"), cfg);

    result.diagnostics = take_diagnostics();
    if (result.diagnostics.empty()) result.config = std::move(cfg);
    return result;
}

std::string file_label(const fs::path& file) {
    return file.empty() ? std::string("<config>") : file.string();
}

fs::path absolute_source(const fs::path& file) {
    if (file.empty()) return {};
    std::error_code ec;
    fs::path abs = fs::absolute(file, ec);
    if (ec) return file;
    return abs.lexically_normal();
}

LoadResult internal_error(const fs::path& file, std::string_view what) {
    LoadResult r;
    r.diagnostics.push_back(
        Diagnostic{file_label(file), 0, 0, "", fmt::format("internal error while loading: {}", what)});
    return r;
}

}  // namespace

LoadResult load_string(std::string_view yaml, const fs::path& file) {
    try {
        Loader loader(file_label(file), absolute_source(file));
        return loader.run(yaml);
    } catch (const std::exception& e) {
        return internal_error(file, e.what());
    } catch (...) {
        return internal_error(file, "unknown exception");
    }
}

LoadResult load_file(const fs::path& file) {
    try {
        LoadResult r;
        auto fail = [&](std::string message) {
            r.diagnostics.push_back(Diagnostic{file_label(file), 0, 0, "", std::move(message)});
            return r;
        };
        std::error_code ec;
        const auto st = fs::status(file, ec);
        if (ec || !fs::exists(st)) {
            if (ec && ec != std::errc::no_such_file_or_directory)
                return fail(fmt::format("cannot open the config file: {}", ec.message()));
            return fail("cannot open the config file: it does not exist");
        }
        if (fs::is_directory(st)) return fail("cannot open the config file: it is a directory");
        std::ifstream in(file, std::ios::binary);
        if (!in) return fail(fmt::format("cannot open the config file: {}", std::strerror(errno)));
        std::ostringstream buf;
        buf << in.rdbuf();
        if (in.bad()) return fail("cannot read the config file: read error");
        return load_string(buf.str(), file);
    } catch (const std::exception& e) {
        return internal_error(file, e.what());
    } catch (...) {
        return internal_error(file, "unknown exception");
    }
}

}  // namespace pressline::config
