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

// Named crash points for tests: with PRESSLINE_CRASH_AT=NAME[:N] the process kills itself
// (SIGKILL, after flushing the log) the N-th time (default 1st) it reaches crash_point(NAME).
// Points: printing.hpp and paperwork.hpp list theirs.
void crash_point(const char* name);

}  // namespace pressline::agent
