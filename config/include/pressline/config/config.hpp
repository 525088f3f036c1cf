// The agent's configuration: the schema of the one YAML file a technician edits, and its loader.
//
// Error rule (see docs/design.md): loading never throws for bad input; every problem found is
// returned as a Diagnostic, all at once, so a technician fixes the file in one pass.
// Thread-safety: the functions here are pure and may be called from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
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

// Where artwork may come from and how it is checked (config/README.md "assets").
struct Assets {
    std::filesystem::path file_root;          // assets.file_root: file:// URIs must lie inside (none: file:// refused)
    std::vector<std::string> allowed_hosts;   // assets.allowed_hosts: https:// hosts ("*.example.com" allowed)
    bool allow_private_addresses = false;     // assets.allow_private_addresses: loopback, RFC 1918, link-local
    std::filesystem::path ca_file;            // assets.ca_file: extra CA bundle for https
    std::filesystem::path cache_dir;          // assets.cache_dir (default {state_dir}/assets)
    std::int64_t cache_max_mb = 2048;         // assets.cache_max_mb: LRU eviction beyond this
    std::int64_t max_mb = 200;                // assets.max_mb: one artwork file at most
    std::int64_t max_megapixels = 120;        // assets.max_megapixels: refused before decoding
    int connect_timeout_s = 10;               // assets.connect_timeout_s
    int timeout_s = 120;                      // assets.timeout_s: whole download
};

// How attempts are released and followed (config/README.md "printing").
struct Printing {
    int retry_budget = 3;                     // printing.retry_budget: tries of one attempt that provably did not print
    int retry_backoff_s = 10;                 // printing.retry_backoff_s: first wait, doubled per retry
    int poll_min_ms = 100;                    // printing.poll_min_ms: first status poll after a hand-off
    int poll_max_ms = 2000;                   // printing.poll_max_ms: poll interval grows up to this
    std::string release = "auto";             // printing.release: auto (operator_scan planned)
    int failover_after_s = 60;                // printing.failover_after_s: a try on an offline printer is withdrawn after this
};

// Release order and batching (agent/include/pressline/agent/scheduler.hpp has the rules).
struct Scheduler {
    int aging_minutes = 240;                  // scheduler.aging_minutes: 0 = no aging
    int batch_window_minutes = 120;           // scheduler.batch_window_minutes: 0 = no batching
    int batch_max = 6;                        // scheduler.batch_max
    int batch_max_wait_s = 900;               // scheduler.batch_max_wait_s
};

struct Platen {
    std::string name;
    double width_mm = 0;
    double height_mm = 0;
};

struct GarmentColor {
    std::string name;
    std::array<int, 3> srgb{};                // 0-255
    std::string color_class;                  // light | dark (dark needs white underbase)
};

// One DTG printer (config/README.md "dtg_printers").
struct DtgPrinter {
    std::string name;                         // device name in events and topics
    std::string driver = "cups";              // cups | hotfolder
    // cups
    std::string server;                       // CUPS server "host:port" or socket path (default: the system's)
    std::string queue;                        // CUPS queue (default: the name)
    std::map<std::string, std::string> options;  // extra IPP job options (vendor options...)
    // hotfolder
    std::filesystem::path hot_folder, done_folder, error_folder, result_folder;
    std::string completion = "consumed";      // consumed | folders | result_file
    int rip_timeout_s = 600;
    // what it can print
    std::vector<std::string> platens;         // platen names (default: 16x20)
    std::vector<std::string> garment_classes; // light, dark (default both)
    std::vector<std::string> methods;         // default dtg
    int dpi = 300;
    std::string format = "png";               // print file: png | jpeg | pdf
};

// One label printer (config/README.md "label_printers"): ZPL on USB, TCP 9100 or a CUPS raw
// queue, or PDF through a CUPS queue; with its calibration.
struct LabelPrinter {
    std::string name;                         // device name in events and topics
    std::string connection = "tcp";           // usb | tcp | cups
    std::string language = "zpl";             // zpl | pdf (pdf needs connection cups)
    int vendor_id = 0x0a5f;                   // usb: idVendor (default Zebra)
    int product_id = 0;                       // usb: idProduct (required for usb)
    std::string serial;                       // usb: iSerialNumber (empty: the only match)
    std::string host;                         // tcp
    int port = 9100;                          // tcp
    std::string server;                       // cups: "host:port" or socket path (default: the system's)
    std::string queue;                        // cups: queue (default: the name)
    std::string status_query = "auto";        // auto | hqes | hs | none
    int dpi = 203;
    double width_mm = 101.6;                  // label size (4 x 6 in)
    double height_mm = 152.4;
    int darkness = -1;                        // 0..30 (~SD); -1: the printer's own setting
    double x_offset_mm = 0;
    double y_offset_mm = 0;
    std::string media = "gap";                // gap | black_mark | continuous
    int connect_timeout_ms = 3000;
    int write_timeout_ms = 10000;
    int status_timeout_ms = 2000;
};

struct ShipFrom {
    std::string name, company, line1, line2, city, region, postal_code, country, phone;
};

// Tickets and shipping labels (config/README.md "labels").
struct Labels {
    std::string ticket_printer;               // labels.ticket_printer: a label_printers name; empty: no tickets
    std::vector<std::string> shipping_printers;  // labels.shipping_printers: first that takes the label's format
    double ticket_width_mm = 101.6;           // labels.ticket_width_mm (4 x 6 in)
    double ticket_height_mm = 152.4;          // labels.ticket_height_mm
    int retry_s = 5;                          // labels.retry_s: wait before asking a printer that was not ready again
    ShipFrom ship_from;                       // labels.ship_from: return address on rendered labels
};

// One QA camera (config/README.md "cameras"): what drivers/camera needs to grab a still, the
// station calibration written by `pressline calibrate`, and the DTG printers it watches.
struct Camera {
    std::string name;                         // device name in events and logs
    std::string source;                       // drivers/camera source: v4l2:..., rtsp://..., folder:/path, ...
    int width = 0, height = 0;                // requested resolution; 0 = the device's default
    std::string fourcc;                       // V4L2 pixel format (MJPG, YUYV); empty = default
    double exposure = -1;                     // V4L2 manual exposure; < 0 = automatic
    int open_timeout_ms = 5000;
    int read_timeout_ms = 5000;
    std::filesystem::path calibration;        // calibration JSON (`pressline calibrate`); required
    std::vector<std::string> printers;        // dtg_printers it watches; empty = all
};

// Visual QA tolerances (devices/qa Tolerances; defaults from issue 5).
struct QaTolerances {
    double offset_mm = 5.0;
    double rotation_deg = 2.0;
    double scale_pct = 3.0;
    double mean_de00 = 3.0;
    double local_de00 = 10.0;
    double local_min_area_mm2 = 9.0;
    double margin_mm = 20.0;
    double blank_de00 = 10.0;
    double low_confidence = 0.15;
};

struct QaEvidence {
    std::filesystem::path dir;                // qa.evidence.dir (default {state_dir}/qa)
    int max_age_days = 30;                    // qa.evidence.max_age_days
    std::int64_t max_total_mb = 2048;         // qa.evidence.max_total_mb
};

// The visual QA flow (config/README.md "qa").
struct Qa {
    bool enabled = true;                      // qa.enabled: false = no QA at this station
    std::string trigger = "delay";            // qa.trigger: delay | operator | qr
    int delay_s = 5;                          // qa.delay_s: capture this long after job.printed
    int qr_scan_interval_ms = 500;            // qa.qr_scan_interval_ms: trigger qr, time between frames
    int capture_timeout_s = 120;              // qa.capture_timeout_s: no_capture after this
    int reprint_limit = 2;                    // qa.reprint_limit: QA reprints of one job
    double spot_check_share = 0.02;           // qa.spot_check_share: passes held for a person
    int pause_after_consecutive_failures = 3; // qa.pause_after_consecutive_failures: 0 = never
    QaTolerances tolerances;
    QaEvidence evidence;
};

struct Config {
    std::filesystem::path source;     // the file this was loaded from
    Station station;
    Broker broker;
    Mqtt mqtt;
    Storage storage;
    Intake intake;
    Log log;
    Assets assets;
    Printing printing;
    Scheduler scheduler;
    std::map<std::string, Platen> platens;          // platens: defaults + the file's
    std::map<std::string, GarmentColor> garment_colors;  // garment_colors: defaults + the file's
    std::vector<DtgPrinter> dtg_printers;           // dtg_printers
    std::vector<LabelPrinter> label_printers;       // label_printers
    Labels labels;                                  // labels
    std::vector<Camera> cameras;                    // cameras
    Qa qa;                                          // qa

    const Platen* platen(std::string_view name) const;
    const LabelPrinter* label_printer(std::string_view name) const;
    // The camera that watches DTG printer `printer` (the first listed), or nullptr.
    const Camera* camera_for(std::string_view printer) const;
};

// The colour class of an sRGB garment colour: "dark" below a relative luminance of 0.5.
std::string color_class_of(const std::array<int, 3>& srgb);

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
