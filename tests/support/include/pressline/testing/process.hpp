// Child processes for integration tests: fork/exec with output to files, signals, waitpid
// with a timeout. A Process that goes out of scope kills (SIGKILL) and reaps its child, and
// children get PR_SET_PDEATHSIG so they die with the test even if it is killed itself.
//
// Threads: a Process object is not thread-safe; use it from the test's thread. It must be
// created on a thread that outlives the child (PDEATHSIG fires when the forking *thread*
// exits): gtest's main thread, not a paho callback.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace pressline::testing {

struct SpawnOptions {
    std::vector<std::string> argv;              // argv[0] is the program (path or name in PATH)
    std::vector<std::string> extra_env;         // "NAME=value", added to (and overriding) environ
    std::filesystem::path stdout_path;          // empty: /dev/null
    std::filesystem::path stderr_path;          // empty: /dev/null; may equal stdout_path
    bool append = true;                         // O_APPEND instead of O_TRUNC
    std::filesystem::path working_dir;          // empty: inherit
};

// Decoded wait status.
struct ExitStatus {
    int raw = 0;
    bool exited() const;
    bool signaled() const;
    int code() const;     // exit code, -1 if killed by a signal
    int signal() const;   // terminating signal, 0 if exited
    std::string str() const;  // "exit 0", "killed by SIGKILL"
};

class Process {
public:
    Process() = default;
    // Forks and execs. Throws std::runtime_error if fork fails or exec fails (exec failure is
    // reported through a close-on-exec pipe, so a missing program is an error, not exit 127).
    static Process spawn(const SpawnOptions& options);

    Process(Process&& other) noexcept;
    Process& operator=(Process&& other) noexcept;
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;
    ~Process();  // SIGKILL + reap if still running

    pid_t pid() const { return pid_; }
    bool valid() const { return pid_ > 0; }
    // True while the child has not exited (reaps it if it has).
    bool running();
    // Sends a signal; false if the child is gone.
    bool signal(int sig);
    // Waits up to `timeout` for the child to exit; nullopt on timeout.
    std::optional<ExitStatus> wait_for_exit(std::chrono::milliseconds timeout);
    // SIGKILL and reap; returns the status (or the status it had already exited with).
    ExitStatus kill_and_wait();
    // The status once reaped.
    std::optional<ExitStatus> exit_status() const { return status_; }

private:
    bool try_reap();
    pid_t pid_ = -1;
    int pidfd_ = -1;
    std::optional<ExitStatus> status_;
};

// Runs a command to completion with stdout and stderr captured. On timeout the command is
// killed and `timed_out` set.
struct RunResult {
    ExitStatus status;
    bool timed_out = false;
    std::string out;
    std::string err;
};
RunResult run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                      const std::vector<std::string>& extra_env = {});

}  // namespace pressline::testing
