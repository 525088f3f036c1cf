// Logging: spdlog loggers per module ("intake", "outbox", "mqtt", ...) writing to stderr.
// Under systemd (JOURNAL_STREAM set) each line starts with a syslog priority "<N>" so journald
// keeps the level, and carries no timestamp (journald adds its own); elsewhere lines carry an
// ISO time stamp and the level name. Messages put facts as key=value pairs after a short text.
// Thread-safety: spdlog loggers are thread-safe.
#pragma once

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace pressline::agent {

// Installs the stderr sink and format. Call once, early in main().
void init_logging(const std::string& level);

// Changes the level of every logger ("trace".."error"); returns false for an unknown name.
bool set_log_level(const std::string& level);

// The logger of one module, created on first use.
std::shared_ptr<spdlog::logger> logger(const std::string& module);

}  // namespace pressline::agent
