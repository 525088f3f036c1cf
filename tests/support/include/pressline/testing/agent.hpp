// The system under test, the built `pressline` binary: its YAML config, `pressline run` as a
// child process (stderr and stdout appended to one log file across restarts), and one-shot
// CLI calls such as `pressline check-config`.
//
// Threads: not thread-safe; use from the test's main thread (see process.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "pressline/testing/process.hpp"
#include "pressline/testing/station.hpp"
#include "pressline/testing/util.hpp"

namespace pressline::testing {

// The keys of config/include/pressline/config/config.hpp that tests set. Unset optionals are
// left out of the file (the agent's default applies).
struct AgentConfig {
    std::string shop = "shop1";
    std::string station;                         // required
    std::vector<std::string> pools;
    std::string broker_uri;                      // required
    std::optional<std::string> client_id;
    std::optional<std::string> username;
    std::optional<std::filesystem::path> password_file;
    std::optional<std::filesystem::path> ca_file, cert_file, key_file;
    int keepalive_s = 10;
    int reconnect_min_s = 1;
    int reconnect_max_s = 2;
    std::optional<int> connect_timeout_s = 5;
    std::optional<std::string> topic_prefix;     // default pressline/v1
    std::filesystem::path state_dir;             // required
    std::optional<std::int64_t> min_free_mb;
    std::optional<std::int64_t> max_db_mb;
    std::optional<std::int64_t> max_payload_bytes;
    std::optional<int> max_depth;
    std::string log_level = "info";
    std::string extra_yaml;                      // appended verbatim

    std::string yaml() const;
    StationTopics topics() const;
    std::string effective_client_id() const { return client_id.value_or("pressline-" + shop + "-" + station); }
};

class Agent {
public:
    // Files live in `dir`: pressline.yaml (the config), agent.log (stderr+stdout of all runs).
    Agent(std::filesystem::path dir, AgentConfig config);
    ~Agent();  // SIGKILL + reap if still running
    Agent(const Agent&) = delete;
    Agent& operator=(const Agent&) = delete;

    AgentConfig& config() { return config_; }
    const std::filesystem::path& config_path() const { return config_path_; }
    const std::filesystem::path& log_path() const { return log_path_; }

    // Writes config().yaml() to config_path().
    void write_config();
    // Writes arbitrary text as the config file.
    void write_config_text(const std::string& yaml);

    // `pressline run --config FILE`. Writes the config first unless `write` is false.
    void start(bool write = true);
    // Extra environment ("NAME=value") for the next runs, e.g. PRESSLINE_CRASH_AT.
    std::vector<std::string>& env() { return env_; }
    bool running();
    bool signal(int sig);
    // SIGTERM and wait; returns the exit status (nullopt: still running after `timeout`).
    std::optional<ExitStatus> terminate(std::chrono::milliseconds timeout = 10s);
    // SIGKILL and wait.
    ExitStatus kill();
    std::optional<ExitStatus> wait_exit(std::chrono::milliseconds timeout);
    int runs() const { return runs_; }
    // "running", or how the last run ended ("exit 1", "killed by SIGSEGV"), for messages.
    std::string state();

    std::string log() const;
    std::size_t log_size() const;
    // Waits until the log (from `offset` on) contains `needle` (case-insensitive).
    bool wait_log(const std::string& needle, std::chrono::milliseconds timeout = kWait, std::size_t offset = 0);
    // Waits until `pred(log from offset)` holds.
    bool wait_log_pred(const std::function<bool(const std::string&)>& pred,
                       std::chrono::milliseconds timeout = kWait, std::size_t offset = 0);

private:
    std::vector<std::string> env_;
    std::filesystem::path dir_;
    AgentConfig config_;
    std::filesystem::path config_path_;
    std::filesystem::path log_path_;
    Process proc_;
    int runs_ = 0;
};

// Runs `pressline ARGS...` to completion (e.g. {"check-config", file}).
RunResult run_pressline(const std::vector<std::string>& args, std::chrono::milliseconds timeout = 20s);

// A job order that satisfies the contract; tests modify it to make it invalid.
nlohmann::json valid_job(const std::string& job_id, const std::string& order_id = "",
                         const std::string& priority = "");
// A command.
nlohmann::json command(const std::string& command_id, const std::string& type,
                       const std::string& job_id = "");

}  // namespace pressline::testing
