// The pressline binary under test (see agent.hpp).
#include "pressline/testing/agent.hpp"

#include <signal.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace pressline::testing {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A YAML double-quoted scalar (JSON string syntax is valid YAML).
std::string q(const std::string& s) { return json(s).dump(); }

}  // namespace

std::string AgentConfig::yaml() const {
    std::ostringstream y;
    y << "# written by the integration tests (tests/support/src/agent.cpp)\n";
    y << "station:\n";
    y << "  shop: " << q(shop) << "\n";
    y << "  id: " << q(station) << "\n";
    if (!pools.empty()) {
        y << "  pools:\n";
        for (const auto& p : pools) y << "    - " << q(p) << "\n";
    }
    y << "broker:\n";
    y << "  uri: " << q(broker_uri) << "\n";
    if (client_id) y << "  client_id: " << q(*client_id) << "\n";
    if (username) y << "  username: " << q(*username) << "\n";
    if (password_file) y << "  password_file: " << q(password_file->string()) << "\n";
    if (ca_file) y << "  ca_file: " << q(ca_file->string()) << "\n";
    if (cert_file) y << "  cert_file: " << q(cert_file->string()) << "\n";
    if (key_file) y << "  key_file: " << q(key_file->string()) << "\n";
    y << "  keepalive_s: " << keepalive_s << "\n";
    if (connect_timeout_s) y << "  connect_timeout_s: " << *connect_timeout_s << "\n";
    y << "  reconnect_min_s: " << reconnect_min_s << "\n";
    y << "  reconnect_max_s: " << reconnect_max_s << "\n";
    if (topic_prefix) y << "mqtt:\n  topic_prefix: " << q(*topic_prefix) << "\n";
    y << "storage:\n";
    y << "  state_dir: " << q(state_dir.string()) << "\n";
    if (min_free_mb) y << "  min_free_mb: " << *min_free_mb << "\n";
    if (max_db_mb) y << "  max_db_mb: " << *max_db_mb << "\n";
    if (max_payload_bytes || max_depth) {
        y << "intake:\n";
        if (max_payload_bytes) y << "  max_payload_bytes: " << *max_payload_bytes << "\n";
        if (max_depth) y << "  max_depth: " << *max_depth << "\n";
    }
    y << "log:\n";
    y << "  level: " << q(log_level) << "\n";
    y << extra_yaml;
    return y.str();
}

StationTopics AgentConfig::topics() const {
    StationTopics t;
    if (topic_prefix) t.prefix = *topic_prefix;
    t.shop = shop;
    t.station = station;
    return t;
}

Agent::Agent(fs::path dir, AgentConfig config)
    : dir_(std::move(dir)), config_(std::move(config)), config_path_(dir_ / "pressline.yaml"),
      log_path_(dir_ / "agent.log") {
    fs::create_directories(dir_);
    if (config_.state_dir.empty()) config_.state_dir = dir_ / "state";
}

Agent::~Agent() {
    if (proc_.valid()) proc_.kill_and_wait();
}

void Agent::write_config() { write_file(config_path_, config_.yaml(), 0644); }
void Agent::write_config_text(const std::string& yaml) { write_file(config_path_, yaml, 0644); }

void Agent::start(bool write) {
    if (proc_.valid() && proc_.running()) throw std::logic_error("agent already running");
    if (write) write_config();
    {
        std::ofstream log(log_path_, std::ios::app);
        log << "==== [test harness] run " << ++runs_ << ": " << pressline_binary().string() << " run --config "
            << config_path_.string() << "\n";
    }
    SpawnOptions o;
    o.argv = {pressline_binary().string(), "run", "--config", config_path_.string()};
    o.extra_env = env_;
    o.stdout_path = log_path_;
    o.stderr_path = log_path_;
    o.append = true;
    proc_ = Process::spawn(o);
}

bool Agent::running() { return proc_.valid() && proc_.running(); }
bool Agent::signal(int sig) { return proc_.signal(sig); }

std::optional<ExitStatus> Agent::terminate(std::chrono::milliseconds timeout) {
    if (!proc_.valid()) return std::nullopt;
    proc_.signal(SIGTERM);
    return proc_.wait_for_exit(timeout);
}

ExitStatus Agent::kill() { return proc_.kill_and_wait(); }

std::optional<ExitStatus> Agent::wait_exit(std::chrono::milliseconds timeout) {
    return proc_.wait_for_exit(timeout);
}

std::string Agent::state() {
    if (!proc_.valid()) return "not started";
    if (proc_.running()) return "running";
    return proc_.exit_status() ? proc_.exit_status()->str() : "gone";
}

std::string Agent::log() const { return read_file(log_path_); }
std::size_t Agent::log_size() const { return file_size_or_zero(log_path_); }

bool Agent::wait_log(const std::string& needle, std::chrono::milliseconds timeout, std::size_t offset) {
    return poll_until([&] { return icontains(read_file_from(log_path_, offset), needle); }, timeout);
}

bool Agent::wait_log_pred(const std::function<bool(const std::string&)>& pred,
                          std::chrono::milliseconds timeout, std::size_t offset) {
    return poll_until([&] { return pred(read_file_from(log_path_, offset)); }, timeout);
}

RunResult run_pressline(const std::vector<std::string>& args, std::chrono::milliseconds timeout) {
    std::vector<std::string> argv{pressline_binary().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, timeout);
}

json valid_job(const std::string& job_id, const std::string& order_id, const std::string& priority) {
    json j = {
        {"job_id", job_id},
        {"order_id", order_id.empty() ? "ORD-" + job_id : order_id},
        {"order_items", 1},
        {"created_at", "2026-11-26T10:00:00Z"},
        {"product", {{"sku", "TEE-BLK-L"}, {"type", "tshirt"}, {"garment_color", "black"}, {"size", "L"}}},
        {"print",
         {{"method", "dtg"},
          {"artwork",
           {{"uri", "https://assets.example.com/a/" + job_id + ".png"},
            {"sha256", "9f2c6d1e0b8a7f3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4"},
            {"dpi", 300}}},
          {"placement", {{"location", "front"}, {"width_mm", 280}, {"offset_x_mm", 0}, {"offset_y_mm", 75}}},
          {"platen", "16x20"}}},
        {"qa", {{"required", true}}},
    };
    if (!priority.empty()) j["priority"] = priority;
    return j;
}

json command(const std::string& command_id, const std::string& type, const std::string& job_id) {
    json j = {{"command_id", command_id}, {"type", type}};
    if (!job_id.empty()) j["job_id"] = job_id;
    return j;
}

}  // namespace pressline::testing
