// fork/exec/waitpid for integration tests (see process.hpp).
#include "pressline/testing/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <stdexcept>
#include <thread>

#include "pressline/testing/util.hpp"

extern char** environ;

namespace pressline::testing {

namespace {

std::vector<char*> c_strings(std::vector<std::string>& v) {
    std::vector<char*> out;
    out.reserve(v.size() + 1);
    for (auto& s : v) out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}

std::vector<std::string> merged_env(const std::vector<std::string>& extra) {
    std::map<std::string, std::string> vars;
    std::vector<std::string> order;
    auto put = [&](const std::string& kv) {
        const auto eq = kv.find('=');
        const std::string name = kv.substr(0, eq);
        if (!vars.count(name)) order.push_back(name);
        vars[name] = kv;
    };
    for (char** e = environ; e && *e; ++e) put(*e);
    for (const auto& kv : extra) put(kv);
    std::vector<std::string> out;
    for (const auto& n : order) out.push_back(vars[n]);
    return out;
}

// Child side, between fork and exec: async-signal-safe calls only.
[[noreturn]] void child_exec(const char* prog, char* const* argv, char* const* envp,
                             const char* out_path, const char* err_path, bool same, int flags,
                             const char* cwd, int err_pipe, pid_t parent) {
    auto fail = [&](int stage) {
        int code[2] = {stage, errno};
        (void)!write(err_pipe, code, sizeof code);
        _exit(127);
    };
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail(1);
    if (getppid() != parent) _exit(126);  // the parent died before prctl
    setpgid(0, 0);                        // own process group: signals to it never hit the test
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int s : {SIGPIPE, SIGHUP, SIGTERM, SIGINT, SIGCHLD}) ::signal(s, SIG_DFL);

    int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (in < 0 || dup2(in, 0) < 0) fail(2);
    int out = open(out_path, O_WRONLY | O_CREAT | flags | O_CLOEXEC, 0644);
    if (out < 0 || dup2(out, 1) < 0) fail(3);
    if (same) {
        if (dup2(1, 2) < 0) fail(4);
    } else {
        int err = open(err_path, O_WRONLY | O_CREAT | flags | O_CLOEXEC, 0644);
        if (err < 0 || dup2(err, 2) < 0) fail(4);
    }
    if (cwd && chdir(cwd) != 0) fail(5);
    // Inherited descriptors (the test's MQTT sockets...) must not leak into the child;
    // err_pipe is close-on-exec and must survive until exec.
    for (int fd = 3; fd < 1024; ++fd)
        if (fd != err_pipe) close(fd);
    execvpe(prog, argv, envp);
    fail(6);
    _exit(127);
}

}  // namespace

bool ExitStatus::exited() const { return WIFEXITED(raw); }
bool ExitStatus::signaled() const { return WIFSIGNALED(raw); }
int ExitStatus::code() const { return WIFEXITED(raw) ? WEXITSTATUS(raw) : -1; }
int ExitStatus::signal() const { return WIFSIGNALED(raw) ? WTERMSIG(raw) : 0; }
std::string ExitStatus::str() const {
    if (exited()) return "exit " + std::to_string(code());
    if (signaled()) {
        const char* name = sigabbrev_np(signal());
        return std::string("killed by SIG") + (name ? name : std::to_string(signal()).c_str());
    }
    return "status " + std::to_string(raw);
}

Process Process::spawn(const SpawnOptions& o) {
    if (o.argv.empty()) throw std::invalid_argument("spawn: empty argv");
    std::vector<std::string> args = o.argv;
    std::vector<std::string> env = merged_env(o.extra_env);
    auto argv = c_strings(args);
    auto envp = c_strings(env);
    const std::string out = o.stdout_path.empty() ? "/dev/null" : o.stdout_path.string();
    const std::string err = o.stderr_path.empty() ? "/dev/null" : o.stderr_path.string();
    const bool same = !o.stdout_path.empty() && o.stdout_path == o.stderr_path;
    const std::string cwd = o.working_dir.string();
    const int flags = o.append ? O_APPEND : O_TRUNC;

    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) {
        close(pipefd[0]);
        close(pipefd[1]);
        throw std::runtime_error(std::string("fork failed: ") + std::strerror(errno));
    }
    if (pid == 0) {
        close(pipefd[0]);
        child_exec(argv[0], argv.data(), envp.data(), out.c_str(), err.c_str(), same, flags,
                   cwd.empty() ? nullptr : cwd.c_str(), pipefd[1], parent);
    }
    close(pipefd[1]);
    int code[2] = {0, 0};
    ssize_t n;
    do {
        n = read(pipefd[0], code, sizeof code);
    } while (n < 0 && errno == EINTR);
    close(pipefd[0]);
    Process p;
    p.pid_ = pid;
    if (n > 0) {  // exec (or the set-up before it) failed
        p.wait_for_exit(5s);
        throw std::runtime_error("cannot start " + o.argv[0] + " (stage " +
                                 std::to_string(code[0]) + "): " + std::strerror(code[1]));
    }
    // pidfd_open via syscall(): glibc 2.36's <sys/pidfd.h> lacks extern "C". -1 if
    // unsupported; wait_for_exit then polls.
    p.pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    return p;
}

Process::Process(Process&& other) noexcept { *this = std::move(other); }

Process& Process::operator=(Process&& other) noexcept {
    if (this != &other) {
        if (valid() && !status_) kill_and_wait();
        if (pidfd_ >= 0) close(pidfd_);
        pid_ = other.pid_;
        pidfd_ = other.pidfd_;
        status_ = other.status_;
        other.pid_ = -1;
        other.pidfd_ = -1;
        other.status_.reset();
    }
    return *this;
}

Process::~Process() {
    if (valid() && !status_) kill_and_wait();
    if (pidfd_ >= 0) close(pidfd_);
}

bool Process::try_reap() {
    if (status_) return true;
    if (!valid()) return false;
    int st = 0;
    pid_t r;
    do {
        r = waitpid(pid_, &st, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == pid_) {
        status_ = ExitStatus{st};
        return true;
    }
    if (r < 0) {  // not our child any more (should not happen): treat as gone
        status_ = ExitStatus{0};
        return true;
    }
    return false;
}

bool Process::running() { return valid() && !try_reap(); }

bool Process::signal(int sig) {
    if (!running()) return false;
    return ::kill(pid_, sig) == 0;
}

std::optional<ExitStatus> Process::wait_for_exit(std::chrono::milliseconds timeout) {
    if (!valid()) return std::nullopt;
    const auto deadline = Clock::now() + timeout;
    while (!try_reap()) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) return std::nullopt;
        if (pidfd_ >= 0) {
            pollfd pfd{pidfd_, POLLIN, 0};
            ::poll(&pfd, 1, static_cast<int>(std::min<long>(left.count(), 1000)));
        } else {
            std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds(5)));
        }
    }
    return status_;
}

ExitStatus Process::kill_and_wait() {
    if (!valid()) return ExitStatus{};
    if (!try_reap()) {
        ::kill(pid_, SIGKILL);
        int st = 0;
        pid_t r;
        do {
            r = waitpid(pid_, &st, 0);
        } while (r < 0 && errno == EINTR);
        status_ = ExitStatus{r == pid_ ? st : 0};
    }
    return *status_;
}

RunResult run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                      const std::vector<std::string>& extra_env) {
    TempDir tmp("pressline-run");
    SpawnOptions o;
    o.argv = argv;
    o.extra_env = extra_env;
    o.stdout_path = tmp / "out";
    o.stderr_path = tmp / "err";
    o.append = false;
    Process p = Process::spawn(o);
    RunResult r;
    auto st = p.wait_for_exit(timeout);
    if (!st) {
        r.timed_out = true;
        st = p.kill_and_wait();
    }
    r.status = *st;
    r.out = read_file(tmp / "out");
    r.err = read_file(tmp / "err");
    return r;
}

}  // namespace pressline::testing
