// RIP hot-folder driver: atomic submission, inotify-driven completion, crash reconciliation.
// The choices (rename order, temp names, result format) are explained in the header and in
// drivers/hotfolder/README.md.
#include "pressline/drivers/hotfolder.hpp"

#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

namespace pressline::drivers::hotfolder {

namespace fs = std::filesystem;
namespace asio = boost::asio;

// ---------------------------------------------------------------------------------------------
// Error category

namespace {

class Category final : public std::error_category {
public:
    const char* name() const noexcept override { return "hotfolder"; }
    std::string message(int ev) const override {
        switch (static_cast<Errc>(ev)) {
            case Errc::bad_config: return "inconsistent hot-folder configuration";
            case Errc::folder_missing: return "folder missing";
            case Errc::folder_unwritable: return "folder not writable";
            case Errc::invalid_name: return "invalid name";
            case Errc::already_exists: return "a file of that name already exists";
            case Errc::rip_error: return "the RIP reported an error";
            case Errc::timed_out: return "timed out";
            case Errc::already_taken: return "the RIP already took the file";
            case Errc::not_found: return "no file of that name";
            case Errc::folder_removed: return "a watched folder was removed";
        }
        return "unknown hotfolder error";
    }
};

}  // namespace

const std::error_category& hotfolder_category() noexcept {
    static const Category c;
    return c;
}

std::error_code make_error_code(Errc e) noexcept {
    return {static_cast<int>(e), hotfolder_category()};
}

const char* to_string(State s) noexcept {
    switch (s) {
        case State::absent: return "absent";
        case State::partial: return "partial";
        case State::waiting: return "waiting";
        case State::taken: return "taken";
        case State::done: return "done";
        case State::error: return "error";
    }
    return "?";
}

// ---------------------------------------------------------------------------------------------
// File helpers (blocking)

namespace {

constexpr const char* tmp_suffix = ".pressline-tmp";
constexpr const char* withdrawn_suffix = ".pressline-withdrawn";
constexpr std::size_t max_name = 200;

std::error_code sys(int e) {
    return {e, std::system_category()};
}

Result fail(std::error_code ec, std::string msg) {
    return Result{ec, std::move(msg)};
}

std::string q(const fs::path& p) {
    return p.string();
}

bool present(const fs::path& p) {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0;
}

// A folder error with the folder named: ENOENT/ENOTDIR -> folder_missing, EACCES/EROFS/EPERM ->
// folder_unwritable, anything else keeps its errno.
Result folder_error(int e, const char* role, const fs::path& dir, const std::string& what) {
    std::error_code ec = sys(e);
    if (e == ENOENT || e == ENOTDIR) ec = Errc::folder_missing;
    if (e == EACCES || e == EROFS || e == EPERM) ec = Errc::folder_unwritable;
    return fail(ec, std::string(role) + " folder " + q(dir) + ": " + what + ": " + std::strerror(e));
}

int fsync_dir(const fs::path& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno;
    int rc = ::fsync(fd) == 0 ? 0 : errno;
    ::close(fd);
    return rc;
}

int write_all(int fd, const char* p, std::size_t n) {
    while (n > 0) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        p += w;
        n -= static_cast<std::size_t>(w);
    }
    return 0;
}

// Copies all of `src` into `dst` (copy_file_range, read/write fallback). Returns errno or 0.
int copy_fd(int src, int dst) {
    bool use_cfr = true;
    std::vector<char> buf;
    for (;;) {
        if (use_cfr) {
            ssize_t n = ::copy_file_range(src, nullptr, dst, nullptr, 1 << 30, 0);
            if (n == 0) return 0;
            if (n > 0) continue;
            if (errno == EINTR) continue;
            if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) return errno;
            use_cfr = false;
            buf.resize(1 << 20);
        }
        ssize_t n = ::read(src, buf.data(), buf.size());
        if (n == 0) return 0;
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        if (int e = write_all(dst, buf.data(), static_cast<std::size_t>(n))) return e;
    }
}

// Creates `path` exclusively, fills it (data, or a copy of source_fd), fsyncs. errno or 0; the
// file is removed on failure (except EEXIST: not ours).
int write_new_file(const fs::path& path, std::string_view data, int source_fd = -1) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return errno;
    int e = source_fd >= 0 ? copy_fd(source_fd, fd) : write_all(fd, data.data(), data.size());
    if (e == 0 && ::fsync(fd) != 0) e = errno;
    if (::close(fd) != 0 && e == 0) e = errno;
    if (e != 0) ::unlink(path.c_str());
    return e;
}

// rename() that never replaces an existing target (link()+unlink() where renameat2 is refused).
int rename_noreplace(const fs::path& from, const fs::path& to) {
    if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return 0;
    if (errno != EINVAL && errno != ENOSYS) return errno;
    if (::link(from.c_str(), to.c_str()) != 0) return errno;
    ::unlink(from.c_str());
    return 0;
}

std::optional<std::string> read_small(const fs::path& p) {
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    std::string out;
    std::array<char, 4096> buf{};
    for (;;) {
        ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0 || out.size() > 64 * 1024) break;
        out.append(buf.data(), static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

std::string trim(std::string_view s) {
    auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string_view::npos) return {};
    auto e = s.find_last_not_of(" \t\r\n");
    return std::string(s.substr(b, e - b + 1));
}

// The result-file format: first line "ok", or "error" optionally followed by ": <message>"
// (the message may continue on the following lines). Case-insensitive keywords.
struct Parsed {
    enum Kind { ok, error, unrecognised } kind;
    std::string message;
};
Parsed parse_result(std::string_view text) {
    std::string t = trim(text);
    std::string lower = t;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (lower == "ok") return {Parsed::ok, {}};
    if (lower.rfind("error", 0) == 0 &&
        (lower.size() == 5 || lower[5] == ':' || lower[5] == '\n' || lower[5] == ' ')) {
        std::string msg = trim(std::string_view(t).substr(5));
        if (!msg.empty() && msg.front() == ':') msg = trim(std::string_view(msg).substr(1));
        return {Parsed::error, msg.empty() ? "(no message)" : msg};
    }
    return {Parsed::unrecognised, t};
}

}  // namespace

std::string safe_name(std::string_view name) {
    std::string out;
    for (char c : name.substr(0, max_name)) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '_' || c == '-';
        out.push_back(ok ? c : '_');
    }
    if (!out.empty() && out.front() == '.') out.front() = '_';
    return out;
}

Result check_config(const Config& cfg) {
    auto check = [](const char* role, const fs::path& dir) -> Result {
        if (dir.empty()) return fail(Errc::bad_config, std::string(role) + " folder not configured");
        struct stat st {};
        if (::stat(dir.c_str(), &st) != 0) return folder_error(errno, role, dir, "cannot open");
        if (!S_ISDIR(st.st_mode))
            return fail(Errc::folder_missing, std::string(role) + " folder " + q(dir) + ": not a directory");
        if (::access(dir.c_str(), W_OK | X_OK) != 0) return folder_error(errno, role, dir, "not writable");
        return {};
    };
    if (cfg.print_extension.empty()) return fail(Errc::bad_config, "print_extension is empty");
    if (cfg.print_extension == cfg.ticket_extension)
        return fail(Errc::bad_config, "print and ticket extensions are the same");
    if (auto r = check("hot", cfg.hot_dir); !r.ok()) return r;
    if (cfg.completion == Completion::folders) {
        if (auto r = check("done", cfg.done_dir); !r.ok()) return r;
        if (auto r = check("error", cfg.error_dir); !r.ok()) return r;
    }
    if (cfg.completion == Completion::result_file) {
        if (cfg.result_extension.empty()) return fail(Errc::bad_config, "result_extension is empty");
        if (auto r = check("result", cfg.result_dir); !r.ok()) return r;
    }
    if (!cfg.state_dir.empty())
        if (auto r = check("state", cfg.state_dir); !r.ok()) return r;
    return {};
}

// ---------------------------------------------------------------------------------------------
// Paths of one name

namespace {

struct Names {
    std::string name;  // safe
    fs::path print, ticket, print_tmp, ticket_tmp, withdrawn, receipt, done, error, error_msg, result;
};

Names names_of(const Config& cfg, const std::string& sn) {
    Names n;
    n.name = sn;
    std::string pf = sn + "." + cfg.print_extension;
    n.print = cfg.hot_dir / pf;
    n.print_tmp = cfg.hot_dir / ("." + pf + tmp_suffix);
    n.withdrawn = cfg.hot_dir / ("." + pf + withdrawn_suffix);
    if (!cfg.ticket_extension.empty()) {
        std::string tf = sn + "." + cfg.ticket_extension;
        n.ticket = cfg.hot_dir / tf;
        n.ticket_tmp = cfg.hot_dir / ("." + tf + tmp_suffix);
    }
    if (!cfg.state_dir.empty()) n.receipt = cfg.state_dir / (sn + ".submitted");
    std::string rf = sn + "." + cfg.result_extension;
    if (cfg.completion == Completion::folders) {
        n.done = cfg.done_dir / pf;
        n.error = cfg.error_dir / pf;
        n.error_msg = cfg.error_dir / rf;
    }
    if (cfg.completion == Completion::result_file) n.result = cfg.result_dir / rf;
    return n;
}

void unlink_quiet(const fs::path& p) {
    if (!p.empty()) ::unlink(p.c_str());
}

struct Inspection {
    Location loc;
    bool result_unrecognised = false;  // result file present but not (yet) "ok"/"error..."
};

// What query() sees. With `cleanup`, the leftovers of an interrupted submission or withdrawal
// are removed (and reported as partial / absent).
Inspection inspect(const Config& cfg, const Names& n, bool cleanup) {
    Inspection in;
    Location& loc = in.loc;
    struct stat st {};
    if (::stat(cfg.hot_dir.c_str(), &st) != 0) {
        int e = errno;
        Result r = folder_error(e, "hot", cfg.hot_dir, "cannot read");
        loc.ec = r.ec;
        loc.message = r.message;
        return in;
    }
    bool print_tmp = present(n.print_tmp);
    bool ticket_tmp = !n.ticket_tmp.empty() && present(n.ticket_tmp);
    bool print_visible = present(n.print);
    if (present(n.withdrawn)) {
        // A withdrawal was interrupted after its rename: the file is out of the RIP's sight.
        if (cleanup) {
            unlink_quiet(n.withdrawn);
            if (!print_visible) unlink_quiet(n.ticket);
            unlink_quiet(n.receipt);
            fsync_dir(cfg.hot_dir);
            loc.state = State::absent;
            loc.message = "finished an interrupted withdrawal of " + q(n.withdrawn);
            return in;
        }
        loc.state = State::partial;
        return in;
    }
    if (print_tmp || ticket_tmp) {
        loc.state = State::partial;
        if (!cleanup) return in;
        std::string removed;
        auto rm = [&](const fs::path& p) {
            if (!p.empty() && ::unlink(p.c_str()) == 0) removed += (removed.empty() ? "" : ", ") + q(p);
        };
        rm(n.print_tmp);
        rm(n.ticket_tmp);
        if (!print_visible) {
            rm(n.ticket);  // renamed before the print file: an orphan the RIP ignores
            rm(n.receipt);
        }
        fsync_dir(cfg.hot_dir);
        loc.message = "removed " + removed;
        return in;
    }
    if (print_visible) {
        loc.state = State::waiting;
        return in;
    }
    if (cfg.completion == Completion::folders) {
        if (present(n.done)) {
            loc.state = State::done;
            return in;
        }
        if (present(n.error)) {
            loc.state = State::error;
            auto text = read_small(n.error_msg);
            Parsed p = text ? parse_result(*text) : Parsed{Parsed::unrecognised, {}};
            loc.message = "moved to error folder " + q(cfg.error_dir);
            if (p.kind == Parsed::error)
                loc.message = p.message;
            else if (!p.message.empty())
                loc.message += ": " + p.message;
            return in;
        }
    }
    if (cfg.completion == Completion::result_file) {
        if (auto text = read_small(n.result)) {
            Parsed p = parse_result(*text);
            if (p.kind == Parsed::ok) {
                loc.state = State::done;
                return in;
            }
            if (p.kind == Parsed::error) {
                loc.state = State::error;
                loc.message = p.message;
                return in;
            }
            in.result_unrecognised = true;
            loc.state = State::taken;
            loc.message = "result file " + q(n.result) + " not recognised: \"" + p.message + "\"";
            return in;
        }
    }
    if (!n.receipt.empty() && present(n.receipt)) {
        loc.state = cfg.completion == Completion::consumed ? State::done : State::taken;
        return in;
    }
    loc.state = State::absent;
    return in;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// HotFolder

struct HotFolder::Impl : std::enable_shared_from_this<HotFolder::Impl> {
    struct Waiter {
        std::string name;
        WaitHandler handler;
        std::unique_ptr<asio::steady_timer> timer;
        bool taken = false;
    };

    Impl(asio::io_context& i, Config c) : io(i), cfg(std::move(c)) {}

    asio::io_context& io;
    const Config cfg;
    std::optional<asio::posix::stream_descriptor> inotify;
    std::map<int, fs::path> watches;  // wd -> folder
    std::map<std::uint64_t, Waiter> waiters;
    std::uint64_t next_id = 1;
    alignas(inotify_event) std::array<char, 16 * 1024> buf{};

    void read_events();
    void on_events(std::size_t n);
    void evaluate(std::uint64_t id, bool result_closed);
    void arm_timer(std::uint64_t id, std::chrono::milliseconds d);
    void complete(std::uint64_t id, std::error_code ec, std::string message);
    void abort_all();
};

HotFolder::HotFolder(asio::io_context& io, Config cfg) : impl_(std::make_shared<Impl>(io, std::move(cfg))) {}

HotFolder::~HotFolder() {
    close();
}

const Config& HotFolder::config() const noexcept {
    return impl_->cfg;
}

Result HotFolder::start() {
    Impl& im = *impl_;
    if (auto r = check_config(im.cfg); !r.ok()) return r;
    if (im.inotify) return {};
    int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) return fail(sys(errno), std::string("inotify_init1: ") + std::strerror(errno));
    im.inotify.emplace(im.io, fd);
    constexpr std::uint32_t self = IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;
    auto add = [&](const char* role, const fs::path& dir, std::uint32_t mask) -> Result {
        int wd = ::inotify_add_watch(fd, dir.c_str(), mask | self);
        if (wd < 0) return folder_error(errno, role, dir, "cannot watch");
        im.watches[wd] = dir;
        return {};
    };
    Result r = add("hot", im.cfg.hot_dir, IN_DELETE | IN_MOVED_FROM);
    if (r.ok() && im.cfg.completion == Completion::folders) {
        r = add("done", im.cfg.done_dir, IN_MOVED_TO | IN_CLOSE_WRITE);
        if (r.ok()) r = add("error", im.cfg.error_dir, IN_MOVED_TO | IN_CLOSE_WRITE);
    }
    if (r.ok() && im.cfg.completion == Completion::result_file)
        r = add("result", im.cfg.result_dir, IN_MOVED_TO | IN_CLOSE_WRITE);
    if (!r.ok()) {
        im.inotify.reset();
        im.watches.clear();
        return r;
    }
    im.read_events();
    return {};
}

void HotFolder::Impl::read_events() {
    inotify->async_read_some(asio::buffer(buf),
                             [weak = weak_from_this()](boost::system::error_code ec, std::size_t n) {
                                 auto self = weak.lock();
                                 if (!self || ec == asio::error::operation_aborted || !self->inotify) return;
                                 if (ec) {
                                     // The descriptor failed: nothing more will be seen, so fail the waits
                                     // loudly.
                                     auto ids = std::vector<std::uint64_t>();
                                     for (auto& [id, w] : self->waiters) ids.push_back(id);
                                     for (auto id : ids)
                                         self->complete(id, ec, "inotify read failed: " + ec.message());
                                     return;
                                 }
                                 self->on_events(n);
                                 if (self->inotify) self->read_events();
                             });
}

void HotFolder::Impl::on_events(std::size_t n) {
    std::vector<std::string> closed_results;  // result files closed after writing / moved in
    std::optional<fs::path> removed;
    for (std::size_t off = 0; off + sizeof(inotify_event) <= n;) {
        auto* ev = reinterpret_cast<const inotify_event*>(buf.data() + off);
        off += sizeof(inotify_event) + ev->len;
        if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
            auto it = watches.find(ev->wd);
            removed = it != watches.end() ? it->second : fs::path("?");
        }
        if (ev->len > 0 && (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO))) closed_results.emplace_back(ev->name);
    }
    std::vector<std::uint64_t> ids;
    for (auto& [id, w] : waiters) ids.push_back(id);
    if (removed) {
        for (auto id : ids)
            complete(id, Errc::folder_removed,
                     "folder " + q(*removed) + " was removed or moved while waiting");
        return;
    }
    // Every event (and a queue overflow) re-checks every waiter: a few stat() calls each.
    const std::string rsuffix = "." + cfg.result_extension;
    for (auto id : ids) {
        auto it = waiters.find(id);
        if (it == waiters.end()) continue;
        bool closed = std::find(closed_results.begin(), closed_results.end(), it->second.name + rsuffix) !=
                      closed_results.end();
        evaluate(id, closed);
    }
}

void HotFolder::Impl::evaluate(std::uint64_t id, bool result_closed) {
    auto it = waiters.find(id);
    if (it == waiters.end()) return;
    Waiter& w = it->second;
    Names n = names_of(cfg, w.name);
    Inspection in = inspect(cfg, n, false);
    const Location& loc = in.loc;
    if (loc.ec) return complete(id, loc.ec, loc.message);
    switch (loc.state) {
        case State::done: return complete(id, {}, {});
        case State::error: return complete(id, Errc::rip_error, loc.message);
        case State::partial:
        case State::waiting: return;
        case State::absent:
            // Not in the hot folder and no outcome: consumed mode means done; otherwise the RIP
            // holds it in its own spool.
            if (cfg.completion == Completion::consumed) return complete(id, {}, {});
            break;
        case State::taken:
            if (in.result_unrecognised && result_closed) return complete(id, Errc::rip_error, loc.message);
            break;
    }
    if (!w.taken) {
        w.taken = true;
        arm_timer(id, cfg.finish_timeout);
    }
}

void HotFolder::Impl::arm_timer(std::uint64_t id, std::chrono::milliseconds d) {
    auto it = waiters.find(id);
    if (it == waiters.end()) return;
    it->second.timer->expires_after(d);
    it->second.timer->async_wait([weak = weak_from_this(), id](boost::system::error_code ec) {
        auto self = weak.lock();
        if (!self || ec) return;
        auto w = self->waiters.find(id);
        if (w == self->waiters.end()) return;
        Names n = names_of(self->cfg, w->second.name);
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
            w->second.taken ? self->cfg.finish_timeout : self->cfg.take_timeout);
        std::string msg = w->second.taken ? q(n.print) + " was taken by the RIP but no outcome within " +
                                                std::to_string(ms.count()) + " ms"
                                          : q(n.print) + " not taken by the RIP within " +
                                                std::to_string(ms.count()) + " ms (still in the hot folder)";
        self->complete(id, Errc::timed_out, msg);
    });
}

void HotFolder::Impl::complete(std::uint64_t id, std::error_code ec, std::string message) {
    auto it = waiters.find(id);
    if (it == waiters.end()) return;
    WaitHandler h = std::move(it->second.handler);
    it->second.timer->cancel();
    waiters.erase(it);
    h(ec, std::move(message));
}

void HotFolder::Impl::abort_all() {
    auto pending = std::move(waiters);
    waiters.clear();
    for (auto& [id, w] : pending) {
        w.timer->cancel();
        asio::post(io, [h = std::move(w.handler), name = w.name]() {
            h(std::make_error_code(std::errc::operation_canceled), "wait for " + name + " cancelled");
        });
    }
}

void HotFolder::async_wait(std::string_view name, WaitHandler handler) {
    Impl& im = *impl_;
    std::string sn = safe_name(name);
    if (sn.empty() || !im.inotify) {
        auto ec = sn.empty() ? make_error_code(Errc::invalid_name) : make_error_code(Errc::bad_config);
        std::string msg = sn.empty() ? "empty name" : "HotFolder::start() has not succeeded";
        asio::post(im.io, [h = std::move(handler), ec, msg]() { h(ec, msg); });
        return;
    }
    std::uint64_t id = im.next_id++;
    im.waiters.emplace(id, Impl::Waiter{sn, std::move(handler), std::make_unique<asio::steady_timer>(im.io)});
    im.arm_timer(id, im.cfg.take_timeout);
    // The watches are already set, so nothing can slip between this check and the events.
    asio::post(im.io, [weak = std::weak_ptr<Impl>(impl_), id]() {
        if (auto self = weak.lock()) self->evaluate(id, false);
    });
}

void HotFolder::cancel(std::string_view name) {
    std::string sn = safe_name(name);
    std::vector<std::uint64_t> ids;
    for (auto& [id, w] : impl_->waiters)
        if (w.name == sn) ids.push_back(id);
    for (auto id : ids) {
        auto it = impl_->waiters.find(id);
        WaitHandler h = std::move(it->second.handler);
        it->second.timer->cancel();
        impl_->waiters.erase(it);
        asio::post(impl_->io, [h = std::move(h), sn]() {
            h(std::make_error_code(std::errc::operation_canceled), "wait for " + sn + " cancelled");
        });
    }
}

void HotFolder::close() {
    if (!impl_) return;
    impl_->abort_all();
    if (impl_->inotify) {
        boost::system::error_code ignored;
        impl_->inotify->close(ignored);
        impl_->inotify.reset();
    }
    impl_->watches.clear();
}

// ---------------------------------------------------------------------------------------------
// Blocking operations

namespace {

Result do_submit(const Config& cfg, std::string_view name, std::string_view data, int source_fd,
                 std::string_view ticket) {
    std::string sn = safe_name(name);
    if (sn.empty()) return fail(Errc::invalid_name, "empty name");
    Names n = names_of(cfg, sn);
    for (const fs::path* p :
         {&n.print, &n.ticket, &n.done, &n.error, &n.result, &n.print_tmp, &n.ticket_tmp, &n.withdrawn}) {
        if (!p->empty() && present(*p))
            return fail(Errc::already_exists, q(*p) + " already exists (call query() to reconcile)");
    }
    auto undo = [&] {
        unlink_quiet(n.print_tmp);
        unlink_quiet(n.ticket_tmp);
    };
    // 1. both files complete and on disk under names the RIP ignores
    if (!n.ticket_tmp.empty()) {
        if (int e = write_new_file(n.ticket_tmp, ticket)) {
            if (e != EEXIST) unlink_quiet(n.ticket_tmp);
            return folder_error(e, "hot", cfg.hot_dir, "cannot write " + n.ticket_tmp.filename().string());
        }
    }
    if (int e = write_new_file(n.print_tmp, data, source_fd)) {
        if (e != EEXIST)
            undo();
        else
            unlink_quiet(n.ticket_tmp);
        return folder_error(e, "hot", cfg.hot_dir, "cannot write " + n.print_tmp.filename().string());
    }
    // 2. the receipt: from here on, a vanished print file means the RIP took it
    if (!n.receipt.empty()) {
        int e = write_new_file(n.receipt, {});
        if (e == 0) e = fsync_dir(cfg.state_dir);
        if (e != 0 && e != EEXIST) {
            undo();
            return folder_error(e, "state", cfg.state_dir, "cannot write " + n.receipt.filename().string());
        }
    }
    // 3. ticket first, print file last: the RIP triggers on the print file
    if (!n.ticket_tmp.empty()) {
        if (int e = rename_noreplace(n.ticket_tmp, n.ticket)) {
            undo();
            unlink_quiet(n.receipt);
            if (e == EEXIST) return fail(Errc::already_exists, q(n.ticket) + " already exists");
            return folder_error(e, "hot", cfg.hot_dir, "cannot rename to " + n.ticket.filename().string());
        }
    }
    if (int e = rename_noreplace(n.print_tmp, n.print)) {
        undo();
        unlink_quiet(n.ticket);
        unlink_quiet(n.receipt);
        if (e == EEXIST) return fail(Errc::already_exists, q(n.print) + " already exists");
        return folder_error(e, "hot", cfg.hot_dir, "cannot rename to " + n.print.filename().string());
    }
    if (int e = fsync_dir(cfg.hot_dir)) return folder_error(e, "hot", cfg.hot_dir, "fsync");
    return Result{{}, sn};
}

}  // namespace

Result HotFolder::submit(std::string_view name, std::string_view print_data, std::string_view ticket) {
    return do_submit(impl_->cfg, name, print_data, -1, ticket);
}

Result HotFolder::submit_file(std::string_view name, const fs::path& print_file, std::string_view ticket) {
    int fd = ::open(print_file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return fail(sys(e), "cannot open print file " + q(print_file) + ": " + std::strerror(e));
    }
    Result r = do_submit(impl_->cfg, name, {}, fd, ticket);
    ::close(fd);
    return r;
}

Location HotFolder::query(std::string_view name) const {
    std::string sn = safe_name(name);
    if (sn.empty()) return Location{State::absent, "empty name", make_error_code(Errc::invalid_name)};
    return inspect(impl_->cfg, names_of(impl_->cfg, sn), true).loc;
}

Result HotFolder::withdraw(std::string_view name) {
    const Config& cfg = impl_->cfg;
    std::string sn = safe_name(name);
    if (sn.empty()) return fail(Errc::invalid_name, "empty name");
    Names n = names_of(cfg, sn);
    // Leftovers of an interrupted submission/withdrawal: never visible as a print file.
    Location before = inspect(cfg, n, true).loc;
    if (before.ec) return fail(before.ec, before.message);
    if (before.state == State::partial || (before.state == State::absent && !before.message.empty()))
        return Result{{}, before.message};
    if (::rename(n.print.c_str(), n.withdrawn.c_str()) != 0) {
        int e = errno;
        if (e != ENOENT)
            return folder_error(e, "hot", cfg.hot_dir, "cannot rename " + n.print.filename().string());
        Location now = inspect(cfg, n, false).loc;
        if (now.state == State::absent)
            return fail(Errc::not_found, "no " + sn + " in the hot folder or beyond");
        return fail(Errc::already_taken,
                    q(n.print) + " already taken by the RIP (now " + to_string(now.state) + ")");
    }
    // The rename is the point of no return; make it durable, then tidy up.
    int e = fsync_dir(cfg.hot_dir);
    unlink_quiet(n.withdrawn);
    unlink_quiet(n.ticket);
    unlink_quiet(n.receipt);
    if (e == 0) e = fsync_dir(cfg.hot_dir);
    if (e != 0) return folder_error(e, "hot", cfg.hot_dir, "fsync after withdrawal");
    return Result{{}, "withdrew " + q(n.print)};
}

Result HotFolder::forget(std::string_view name) {
    const Config& cfg = impl_->cfg;
    std::string sn = safe_name(name);
    if (sn.empty()) return fail(Errc::invalid_name, "empty name");
    Names n = names_of(cfg, sn);
    for (const fs::path* p : {&n.receipt, &n.result}) {
        if (!p->empty() && ::unlink(p->c_str()) != 0 && errno != ENOENT) {
            int e = errno;
            return fail(sys(e), "cannot remove " + q(*p) + ": " + std::strerror(e));
        }
    }
    return {};
}

}  // namespace pressline::drivers::hotfolder
