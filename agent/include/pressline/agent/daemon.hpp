// The daemon: owns the io_context and everything that lives on it (MQTT link, outbox, timers,
// signals), the journal and the intake; talks to systemd (READY, STATUS, WATCHDOG).
//
// Signals: SIGTERM/SIGINT stop promptly (publish offline, disconnect; never wait for a garment),
// SIGHUP reloads the config and keeps the old one when the new one is invalid.
// Threads: run() runs the io_context on the calling thread; a small worker pool takes blocking
// housekeeping (checkpoints, pruning, outbox deletes).
#pragma once

#include <memory>

#include "pressline/config/config.hpp"

namespace pressline::agent {

// Exit codes of `pressline run` (documented in docs/operations.md).
enum ExitCode : int {
    exit_ok = 0,
    exit_failure = 1,        // the journal could not be opened, or another fatal error
    exit_bad_config = 2,     // the config file is invalid
};

class Daemon {
public:
    explicit Daemon(config::Config cfg);
    ~Daemon();
    // Runs until stopped by a signal. Returns the process exit code.
    int run();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

const char* version();

}  // namespace pressline::agent
