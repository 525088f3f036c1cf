// Camera driver (see pressline/drivers/camera.hpp and drivers/camera/README.md).
//
// One Impl per Camera, used by one thread at a time. Sources are parsed once in the
// constructor; open() and grab() dispatch on the kind. OpenCV and libcurl exceptions are caught
// here and become Outcome values (docs/design.md "Error rule").
//
// cv::VideoCapture (V4L2, streams, GStreamer) comes from the videoio module, loaded on the first
// open of such a source (videoio_module.hpp); <opencv2/videoio.hpp> is included for its
// constants only. Image files and snapshot bodies are decoded by pressline_image.
#include "pressline/drivers/camera.hpp"

#include <fcntl.h>
#include <linux/videodev2.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <curl/curl.h>
#include <fmt/format.h>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>  // CAP_* constants only: no videoio function is called here

#include "pressline/image/image.hpp"
#include "videoio_module.hpp"

namespace pressline::drivers::camera {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

class Category final : public std::error_category {
public:
    const char* name() const noexcept override { return "pressline.camera"; }
    std::string message(int ev) const override {
        switch (static_cast<Errc>(ev)) {
            case Errc::absent: return "no such camera, device, file or host";
            case Errc::busy: return "camera in use";
            case Errc::timeout: return "timed out";
            case Errc::bad_frame: return "undecodable or empty frame";
            case Errc::unsupported: return "unsupported source or setting";
            case Errc::closed: return "the source ended or closed the connection";
            case Errc::io: return "I/O or protocol error";
        }
        return "unknown camera error";
    }
};

// A folder file counts as complete when its size and mtime have not changed for this long...
constexpr milliseconds kStableWindow{50};
// ...or, when inotify saw it created and not yet closed after writing, for this long (a file
// made with link(2) is created but never "closed after write").
constexpr milliseconds kStableWindowWriting{2000};
// Streams: after flush_frames, frames keep being dropped while they come out of buffers (a grab
// faster than this), so the still is fresh even after a long pause; bounded by kMaxDrain.
constexpr milliseconds kMaxDrain{1000};
constexpr int kMaxDrainFrames = 300;
// Snapshot bodies larger than this are refused (a misconfigured URL serving a video file).
constexpr curl_off_t kMaxSnapshotBytes = 64 * 1024 * 1024;

// How often the calling thread was preempted so far (-1 if unknown). A grab during which this
// changed may have been slow for the scheduler's sake, not because it waited for the camera.
long involuntary_switches() {
    rusage u{};
    if (::getrusage(RUSAGE_THREAD, &u) != 0) return -1;
    return u.ru_nivcsw;
}

long long ms_count(Clock::duration d) { return std::chrono::duration_cast<milliseconds>(d).count(); }

std::int64_t wall_ms() {
    return std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// True when `pattern` holds exactly one printf conversion and it is %d with an optional 0 flag
// and width (%d, %4d, %04d); %% is a literal. The pattern goes to a printf-like function.
bool one_int_conversion(std::string_view pattern) {
    int conversions = 0;
    for (std::size_t i = 0; i < pattern.size(); ++i) {
        if (pattern[i] != '%') continue;
        if (++i >= pattern.size()) return false;
        if (pattern[i] == '%') continue;
        std::size_t digits = 0;
        while (i < pattern.size() && is_digit(pattern[i]) && digits < 3) ++i, ++digits;
        if (i >= pattern.size() || pattern[i] != 'd') return false;
        ++conversions;
    }
    return conversions == 1;
}

bool iends_with(std::string_view s, std::string_view suffix) {
    if (s.size() < suffix.size()) return false;
    auto tail = s.substr(s.size() - suffix.size());
    return std::equal(tail.begin(), tail.end(), suffix.begin(), [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
    });
}

// "rtsp://user:secret@host/x" -> "rtsp://user:***@host/x": messages and logs never carry a
// password.
std::string redact(const std::string& source) {
    const auto scheme = source.find("://");
    if (scheme == std::string::npos) return source;
    const auto host_start = scheme + 3;
    const auto path = source.find_first_of("/?#", host_start);
    const auto at = source.rfind('@', path == std::string::npos ? std::string::npos : path);
    if (at == std::string::npos || at < host_start) return source;
    const auto colon = source.find(':', host_start);
    if (colon == std::string::npos || colon > at) return source;
    return source.substr(0, colon + 1) + "***" + source.substr(at);
}

// Any frame as 8-bit, 3-channel BGR: gray and BGRA converted, 16-bit scaled (65535 -> 255),
// float assumed in [0, 1].
cv::Mat to_bgr8(const cv::Mat& in) {
    cv::Mat m = in;
    if (m.depth() != CV_8U) {
        cv::Mat tmp;
        switch (m.depth()) {
            case CV_16U: m.convertTo(tmp, CV_8U, 1.0 / 257.0); break;
            case CV_16S: m.convertTo(tmp, CV_8U, 1.0 / 128.0); break;
            case CV_32F:
            case CV_64F: m.convertTo(tmp, CV_8U, 255.0); break;
            default: m.convertTo(tmp, CV_8U); break;
        }
        m = tmp;
    }
    cv::Mat out;
    switch (m.channels()) {
        case 1: cv::cvtColor(m, out, cv::COLOR_GRAY2BGR); break;
        case 3: out = m; break;
        case 4: cv::cvtColor(m, out, cv::COLOR_BGRA2BGR); break;
        default: return {};
    }
    return out;
}

// How the driver decodes image files and snapshot bodies: as cv::imdecode with IMREAD_ANYDEPTH |
// IMREAD_ANYCOLOR | IMREAD_IGNORE_ORIENTATION (the camera's pixels as they are; to_bgr8 after).
constexpr image::ReadOptions kAsStored{.color = image::Color::as_stored, .keep_alpha = false, .keep_16bit = true};

int fourcc_code(const std::string& f) {  // cv::VideoWriter::fourcc, which lives in videoio
    return (f[0] & 255) + ((f[1] & 255) << 8) + ((f[2] & 255) << 16) + ((f[3] & 255) << 24);
}

// Runs `f` on its own thread and waits at most `timeout` for it. For library calls that have no
// timeout of their own (V4L2 and GStreamer in OpenCV 4.6). On timeout the thread is left to
// finish on its own; whatever it uses must be owned by the lambda (shared_ptr captures).
template <class R>
std::optional<R> run_bounded(std::function<R()> f, milliseconds timeout) {
    struct State {
        std::mutex m;
        std::condition_variable cv;
        std::optional<R> result;
    };
    auto st = std::make_shared<State>();
    auto fn = std::make_shared<std::function<R()>>(std::move(f));
    try {
        std::thread([st, fn] {
            R r = (*fn)();
            std::lock_guard lk(st->m);
            st->result = std::move(r);
            st->cv.notify_all();
        }).detach();
    } catch (const std::system_error&) {  // no thread to be had: run inline, unbounded
        return (*fn)();
    }
    std::unique_lock lk(st->m);
    if (!st->cv.wait_for(lk, timeout, [&] { return st->result.has_value(); })) return std::nullopt;
    return std::move(st->result);
}

struct CurlGlobal {
    CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};

size_t curl_write(char* data, size_t size, size_t n, void* user) {
    auto* body = static_cast<std::string*>(user);
    const size_t bytes = size * n;
    if (body->size() + bytes > static_cast<size_t>(kMaxSnapshotBytes)) return 0;  // aborts
    body->append(data, bytes);
    return bytes;
}

std::string errno_text(int e) { return std::strerror(e); }

// Who holds a device open, for the "busy" message: "pid 812 (motion)". Empty if unknown.
std::string holders_of(const std::string& device) {
    std::string out;
    std::error_code ec;
    const fs::path target = fs::weakly_canonical(device, ec);
    // Processes come and go while we look: error_code iteration, never an exception.
    for (fs::directory_iterator proc("/proc", ec), end; !ec && proc != end; proc.increment(ec)) {
        const std::string pid = proc->path().filename().string();
        if (pid.empty() || !std::all_of(pid.begin(), pid.end(), is_digit)) continue;
        if (pid == std::to_string(::getpid())) continue;
        std::error_code ec2;
        for (fs::directory_iterator fd(proc->path() / "fd", ec2), fd_end; !ec2 && fd != fd_end;
             fd.increment(ec2)) {
            std::error_code ec3;
            if (fs::read_symlink(fd->path(), ec3) == target) {
                std::string comm;
                if (FILE* f = std::fopen((proc->path() / "comm").c_str(), "r")) {
                    char buf[64] = {};
                    if (std::fgets(buf, sizeof buf, f)) comm = buf;
                    std::fclose(f);
                    if (!comm.empty() && comm.back() == '\n') comm.pop_back();
                }
                if (!out.empty()) out += ", ";
                out += "pid " + pid + (comm.empty() ? "" : " (" + comm + ")");
                break;
            }
        }
    }
    return out;
}

}  // namespace

const std::error_category& category() {
    static const Category c;
    return c;
}

std::error_code make_error_code(Errc e) { return {static_cast<int>(e), category()}; }

struct Camera::Impl {
    enum class Kind { v4l2, stream, snapshot, gst, folder, sequence, invalid };

    Settings s;
    Kind kind = Kind::invalid;
    std::string target;  // the source without its prefix (device path, URL, pipeline, path)
    std::string where;   // "NAME (SOURCE): ", NAME being e.g. "camera cam-1"
    std::string invalid_why;

    // Capture sources (v4l2, stream, gst), from the videoio module. shared_ptr: a bounded call that timed out
    // keeps its own reference while its thread finishes.
    std::shared_ptr<videoio::Capture> cap;
    std::int64_t frames_read = 0;  // since the capture (or sequence) was opened

    // sequence (read file by file with pressline_image, as OpenCV's CAP_IMAGES did)
    int seq_first = 0;
    bool seq_open = false;
    // snapshot
    bool snapshot_open = false;

    // folder
    struct Seen {
        std::int64_t size = -1;
        std::int64_t mtime_ns = 0;
        Clock::time_point since;  // when size/mtime were last seen to change
    };
    struct Key {
        std::string name;
        dev_t dev;
        ino_t ino;
        std::int64_t mtime_ns;
        auto operator<=>(const Key&) const = default;
    };
    int inotify_fd = -1;
    bool folder_open = false;
    bool skipped_existing = false;
    std::set<Key> used;
    std::map<std::string, Seen> seen;
    std::set<std::string> renamed_in;  // IN_MOVED_TO: complete on arrival
    std::set<std::string> writing;     // IN_CREATE without IN_CLOSE_WRITE yet

    explicit Impl(Settings st) : s(std::move(st)) {
        where = (s.name.empty() ? std::string("camera") : s.name) + " (" + redact(s.source) + "): ";
        parse();
    }
    ~Impl() { close(); }

    template <class T = std::monostate>
    Outcome<T> fail(Errc e, const std::string& what) const {
        Outcome<T> o;
        o.code = make_error_code(e);
        o.message = where + what;
        return o;
    }

    template <class T>
    static Outcome<T> relay(const Status& st) {
        Outcome<T> o;
        o.code = st.code;
        o.message = st.message;
        return o;
    }

    void parse() {
        const std::string& src = s.source;
        auto rest = [&](std::string_view prefix) { return src.substr(prefix.size()); };
        if (starts_with(src, "v4l2:")) {
            kind = Kind::v4l2;
            target = rest("v4l2:");
            if (!target.empty() && target.size() <= 3 && std::all_of(target.begin(), target.end(), is_digit))
                target = "/dev/video" + std::to_string(std::stoi(target));
        } else if (starts_with(src, "rtsp://") || starts_with(src, "rtsps://") ||
                   starts_with(src, "http://") || starts_with(src, "https://")) {
            kind = Kind::stream;
            target = src;
        } else if (starts_with(src, "snapshot:")) {
            kind = Kind::snapshot;
            target = rest("snapshot:");
            if (!starts_with(target, "http://") && !starts_with(target, "https://")) {
                kind = Kind::invalid;
                invalid_why = "snapshot: needs an http:// or https:// URL";
            }
        } else if (starts_with(src, "gst:")) {
            kind = Kind::gst;
            target = rest("gst:");
        } else if (starts_with(src, "folder:")) {
            kind = Kind::folder;
            target = rest("folder:");
        } else if (starts_with(src, "sequence:")) {
            kind = Kind::sequence;
            target = rest("sequence:");
            if (!one_int_conversion(target)) {
                kind = Kind::invalid;
                invalid_why =
                    "a sequence needs a path with one %d conversion (such as img_%04d.png; %% for a "
                    "literal %)";
            }
        } else {
            invalid_why =
                "unknown source kind (expected v4l2:, rtsp://, http(s)://, snapshot:, gst:, "
                "folder: or sequence:)";
        }
        if (kind != Kind::invalid && target.empty()) {
            kind = Kind::invalid;
            invalid_why = "empty source after the prefix";
        }
    }

    bool is_open() const {
        switch (kind) {
            case Kind::folder: return folder_open;
            case Kind::snapshot: return snapshot_open;  // no connection kept: every grab is one GET
            case Kind::sequence: return seq_open;
            case Kind::invalid: return false;
            default: return cap && cap->isOpened();
        }
    }

    void close() {
        if (cap) {
            auto c = std::move(cap);
            try {
                c->release();
            } catch (...) {  // nothing to report on release
            }
        }
        frames_read = 0;
        snapshot_open = false;
        seq_open = false;
        if (inotify_fd >= 0) ::close(inotify_fd);
        inotify_fd = -1;
        folder_open = false;
        seen.clear();
        renamed_in.clear();
        writing.clear();
        // `used` survives close(): a reopened folder does not hand out the same files again.
    }

    Status open() {
        if (is_open()) return {};
        try {
            switch (kind) {
                case Kind::invalid: return fail(Errc::unsupported, "open: " + invalid_why);
                case Kind::folder: return open_folder();
                case Kind::sequence: return open_sequence();
                case Kind::stream: return open_stream();
                case Kind::v4l2: return open_v4l2();
                case Kind::gst: return open_gst();
                case Kind::snapshot: snapshot_open = true; return {};
            }
        } catch (const cv::Exception& e) {
            close();
            return fail(Errc::unsupported, std::string("open: OpenCV: ") + e.what());
        } catch (const std::bad_alloc&) {
            throw;
        } catch (const std::exception& e) {
            close();
            return fail(Errc::io, std::string("open: ") + e.what());
        }
        return fail(Errc::unsupported, "open: unknown source kind");
    }

    Outcome<Frame> grab() {
        const bool was_open = is_open();
        auto r = attempt();
        // A connection that was open before this call and turns out closed went stale while
        // idle (the camera restarted, or dropped a client that did not read): reconnect once
        // within this call rather than fail a capture that a fresh connection can give.
        if (!r && was_open && r.code == Errc::closed &&
            (kind == Kind::stream || kind == Kind::v4l2 || kind == Kind::gst))
            r = attempt();
        return r;
    }

    // open() if needed, then one grab; a failure closes a capture source.
    Outcome<Frame> attempt() {
        if (kind == Kind::invalid) return fail<Frame>(Errc::unsupported, "open: " + invalid_why);
        if (auto st = open(); !st) return relay<Frame>(st);
        Outcome<Frame> r;
        try {
            switch (kind) {
                case Kind::folder: r = grab_folder(); break;
                case Kind::snapshot: r = grab_snapshot(); break;
                case Kind::sequence: r = grab_sequence(); break;
                default: r = grab_capture(); break;
            }
        } catch (const cv::Exception& e) {
            r = fail<Frame>(Errc::bad_frame, std::string("grab: OpenCV: ") + e.what());
        } catch (const std::bad_alloc&) {
            throw;
        } catch (const std::exception& e) {
            r = fail<Frame>(Errc::io, std::string("grab: ") + e.what());
        }
        // A failed grab closes a capture so the next grab reconnects. Folders stay open (their
        // errors are per file or "nothing new"), except when the folder itself went away.
        if (!r && kind != Kind::folder && kind != Kind::snapshot) close();
        if (!r && kind == Kind::folder && r.code == Errc::absent) close();
        return r;
    }

    // ---- folder ------------------------------------------------------------------------------

    Status open_folder() {
        struct stat st {};
        if (::stat(target.c_str(), &st) != 0) {
            const int e = errno;
            return fail(e == ENOENT || e == ENOTDIR ? Errc::absent : Errc::io,
                        "open: folder " + target + ": " + errno_text(e));
        }
        if (!S_ISDIR(st.st_mode)) return fail(Errc::absent, "open: " + target + " is not a folder");
        inotify_fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (inotify_fd < 0) {
            const int e = errno;
            return fail(Errc::io, "open: inotify_init1: " + errno_text(e) +
                                      (e == EMFILE ? " (fs.inotify.max_user_instances reached)" : ""));
        }
        const uint32_t mask = IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
                              IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;
        if (::inotify_add_watch(inotify_fd, target.c_str(), mask) < 0) {
            const int e = errno;
            ::close(inotify_fd);
            inotify_fd = -1;
            return fail(e == ENOENT || e == ENOTDIR ? Errc::absent : Errc::io,
                        "open: inotify_add_watch " + target + ": " + errno_text(e));
        }
        folder_open = true;
        if (s.skip_existing && !skipped_existing) {
            // Files already there at the first open count as used (taken before a restart).
            std::error_code ec;
            for (const auto& c : scan(ec)) used.insert(c.key);
            skipped_existing = true;
        }
        return {};
    }

    static bool ignored_name(const std::string& n) {
        return n.empty() || n.front() == '.' || iends_with(n, ".tmp") || iends_with(n, ".part");
    }

    // Reads pending inotify events. False if the folder itself went away.
    bool drain_events() {
        alignas(struct inotify_event) std::array<char, 16384> buf;
        bool alive = true;
        for (;;) {
            const ssize_t n = ::read(inotify_fd, buf.data(), buf.size());
            if (n <= 0) break;  // EAGAIN: drained
            for (ssize_t off = 0; off < n;) {
                const auto* ev = reinterpret_cast<const struct inotify_event*>(buf.data() + off);
                off += static_cast<ssize_t>(sizeof(struct inotify_event) + ev->len);
                if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) alive = false;
                if (ev->mask & IN_Q_OVERFLOW) {  // events lost: fall back to the size check alone
                    writing.clear();
                    continue;
                }
                if (ev->len == 0) continue;
                const std::string name = ev->name;
                if (ev->mask & IN_CREATE) writing.insert(name);
                if (ev->mask & IN_CLOSE_WRITE) writing.erase(name);
                if (ev->mask & IN_MOVED_TO) {
                    writing.erase(name);
                    renamed_in.insert(name);
                }
                if (ev->mask & (IN_MOVED_FROM | IN_DELETE)) {
                    writing.erase(name);
                    renamed_in.erase(name);
                    seen.erase(name);
                }
            }
        }
        return alive;
    }

    struct Candidate {
        std::int64_t mtime_ns;
        std::string name;
        Key key;
        bool ready;
        bool in_turn;                // not ready only for the 50 ms size check: newer files wait
        Clock::time_point ready_at;  // when not ready: when it may become ready
    };

    // The unused files of the folder, oldest first (mtime, then name), each with its readiness.
    std::vector<Candidate> scan(std::error_code& ec) {
        std::vector<Candidate> out;
        std::set<std::string> present;
        const auto now = Clock::now();
        for (fs::directory_iterator it(target, ec), end; !ec && it != end; it.increment(ec)) {
            const std::string name = it->path().filename().string();
            if (ignored_name(name)) continue;
            struct stat st {};
            if (::stat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
            present.insert(name);
            const std::int64_t mt = std::int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
            Key key{name, st.st_dev, st.st_ino, mt};
            if (used.count(key)) continue;
            auto& sn = seen[name];
            if (sn.size != st.st_size || sn.mtime_ns != mt) {
                sn = Seen{st.st_size, mt, now};
            }
            Candidate c{mt, name, key, false, false, {}};
            if (renamed_in.count(name)) {
                c.ready = true;
            } else if (st.st_size > 0) {
                const bool open_for_writing = writing.count(name) > 0;
                c.ready_at = sn.since + (open_for_writing ? kStableWindowWriting : kStableWindow);
                c.ready = now >= c.ready_at;
                c.in_turn = !open_for_writing;
            } else {
                c.ready_at = Clock::time_point::max();  // empty: wait for it to be written
            }
            out.push_back(std::move(c));
        }
        if (ec) return {};
        for (auto it = seen.begin(); it != seen.end();)
            it = present.count(it->first) ? std::next(it) : seen.erase(it);
        // Forget used files that are gone, so the set does not grow forever.
        for (auto it = used.begin(); it != used.end();)
            it = present.count(it->name) ? std::next(it) : used.erase(it);
        std::sort(out.begin(), out.end(), [](const Candidate& a, const Candidate& b) {
            return std::tie(a.mtime_ns, a.name) < std::tie(b.mtime_ns, b.name);
        });
        return out;
    }

    Outcome<Frame> grab_folder() {
        const auto start = Clock::now();
        const auto deadline = start + s.read_timeout;
        for (;;) {
            if (!drain_events()) {
                close();
                return fail<Frame>(Errc::absent, "grab: folder " + target + " was removed or moved");
            }
            std::error_code ec;
            auto cands = scan(ec);
            if (ec)
                return fail<Frame>(ec == std::errc::no_such_file_or_directory ? Errc::absent : Errc::io,
                                   "grab: reading folder " + target + ": " + ec.message());
            // The oldest ready file, but a file due in 50 ms keeps its turn (files found at open
            // and files copied in place all go through that check). Files still open for
            // writing or empty are passed over: they may take long.
            Clock::time_point wake = deadline;
            for (auto& c : cands) {
                if (c.ready) return read_file_frame(c);
                wake = std::min(wake, c.ready_at);
                if (c.in_turn) break;
            }
            const auto now = Clock::now();
            if (now >= deadline)
                return fail<Frame>(
                    Errc::timeout,
                    fmt::format(
                        "grab: no new image in {} within {} ms{}", target, s.read_timeout.count(),
                        cands.empty() ? "" : fmt::format(" ({} file(s) still being written)", cands.size())));
            pollfd p{inotify_fd, POLLIN, 0};
            const auto wait = std::max<long long>(1, ms_count(wake - now));
            const int rc = ::poll(&p, 1, static_cast<int>(std::min<long long>(wait, 60'000)));
            if (rc < 0 && errno != EINTR) {
                const int e = errno;
                return fail<Frame>(Errc::io, "grab: poll: " + errno_text(e));
            }
        }
    }

    Outcome<Frame> read_file_frame(const Candidate& c) {
        used.insert(c.key);
        seen.erase(c.name);
        renamed_in.erase(c.name);
        const fs::path p = fs::path(target) / c.name;
        std::string bytes;
        {
            const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                const int e = errno;
                return fail<Frame>(e == ENOENT ? Errc::absent : Errc::io,
                                   "grab: " + p.string() + ": " + errno_text(e));
            }
            std::array<char, 65536> buf;
            for (;;) {
                const ssize_t n = ::read(fd, buf.data(), buf.size());
                if (n < 0 && errno == EINTR) continue;
                if (n < 0) {
                    const int e = errno;
                    ::close(fd);
                    return fail<Frame>(Errc::io, "grab: reading " + p.string() + ": " + errno_text(e));
                }
                if (n == 0) break;
                bytes.append(buf.data(), static_cast<size_t>(n));
            }
            ::close(fd);
        }
        cv::Mat img;
        std::string why = "empty";
        if (!bytes.empty()) {
            auto d = image::decode({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()}, kAsStored,
                                   p.string());
            if (d) img = std::move(d.value);
            else why = d.message.substr(std::min(d.message.size(), p.string().size() + 2));  // without "PATH: "
        }
        if (img.empty())
            return fail<Frame>(Errc::bad_frame, fmt::format("grab: {}: not a decodable image ({} bytes: {})",
                                                            p.string(), bytes.size(), why));
        Outcome<Frame> o;
        o.value.bgr = to_bgr8(img);
        if (o.value.bgr.empty())
            return fail<Frame>(Errc::bad_frame, "grab: " + p.string() + ": unsupported channel count");
        o.value.captured_ms = wall_ms();
        o.value.origin = p.string();
        return o;
    }

    // ---- sequence ----------------------------------------------------------------------------

    std::string seq_file(int index) const {
        try {
            return cv::format(target.c_str(), index);
        } catch (...) {
            return target;
        }
    }

    Status open_sequence() {
        // OpenCV's CAP_IMAGES starts at index 0, or 1 when 0 does not exist.
        seq_first = fs::exists(seq_file(0)) ? 0 : 1;
        if (!fs::exists(seq_file(seq_first)))
            return fail(Errc::absent, "open: no first image (" + seq_file(0) + " or " + seq_file(1) + ")");
        // As CAP_IMAGES did: the first image must decode for the sequence to open.
        if (auto first = image::read(seq_file(seq_first), kAsStored); !first)
            return fail(Errc::bad_frame, "open: cannot read the sequence starting at " + first.message);
        seq_open = true;
        frames_read = 0;
        return {};
    }

    Outcome<Frame> grab_sequence() {
        const std::string file = seq_file(seq_first + static_cast<int>(frames_read));
        // Checked first: OpenCV would log a warning for the missing file.
        if (!fs::exists(file))
            return fail<Frame>(Errc::closed,
                               fmt::format("grab: end of the sequence after {} image(s) ({} does not exist); "
                                           "the next grab starts again",
                                           frames_read, file));
        auto d = image::read(file, kAsStored);
        if (!d) return fail<Frame>(Errc::bad_frame, "grab: " + d.message);
        const cv::Mat m = std::move(d.value);
        ++frames_read;
        Outcome<Frame> o;
        o.value.bgr = to_bgr8(m);
        if (o.value.bgr.empty())
            return fail<Frame>(Errc::bad_frame, "grab: " + file + ": unsupported channel count");
        o.value.captured_ms = wall_ms();
        o.value.origin = file;
        return o;
    }

    // ---- the videoio module --------------------------------------------------------------------

    const videoio::Module* module = nullptr;  // loaded by the first new_capture()

    // A new, closed capture from the videoio module, which is loaded on first use; unsupported
    // naming the module file and dlerror's words when it cannot be.
    Status new_capture(std::shared_ptr<videoio::Capture>& out) {
        if (!module) {
            std::string why;
            module = videoio::load_module(why);
            if (!module) return fail(Errc::unsupported, "open: " + why);
        }
        out = std::make_shared<videoio::Capture>(module);
        return {};
    }

    // ---- streams (FFmpeg) --------------------------------------------------------------------

    Status open_stream() {
        std::shared_ptr<videoio::Capture> c;
        if (auto st = new_capture(c); !st) return st;
        const std::vector<int> params = {
            cv::CAP_PROP_OPEN_TIMEOUT_MSEC, static_cast<int>(s.open_timeout.count()),
            cv::CAP_PROP_READ_TIMEOUT_MSEC, static_cast<int>(s.read_timeout.count())};
        const auto t0 = Clock::now();
        const bool ok = c->open(target, cv::CAP_FFMPEG, params) && c->isOpened();
        const auto took = Clock::now() - t0;
        if (!ok) {
            if (took >= s.open_timeout - milliseconds(s.open_timeout.count() / 10))
                return fail(Errc::timeout,
                            fmt::format("open: no stream within {} ms", s.open_timeout.count()));
            if (starts_with(target, "http")) {
                if (auto why = diagnose_http(); !why) return why;
            }
            return fail(Errc::absent, fmt::format("open: FFmpeg cannot open the stream after {} ms (refused, "
                                                  "not found, or not a video stream)",
                                                  ms_count(took)));
        }
        cap = std::move(c);
        frames_read = 0;
        return {};
    }

    // Why an HTTP stream did not open, in the server's words (one GET of the headers only).
    Status diagnose_http() {
        std::string body;
        long status = 0;
        auto r = http_get(target, body, status,
                          milliseconds(std::min<long long>(s.open_timeout.count(), 2000)), true, "open");
        if (!r) return r;
        if (status >= 400) return http_status_error(status, "open");
        return {};
    }

    Status apply_size_check(const cv::Mat& frame, const char* step) {
        if ((s.width > 0 && frame.cols != s.width) || (s.height > 0 && frame.rows != s.height))
            return fail(Errc::unsupported, fmt::format("{}: the source gives {}x{}, not the requested {}x{}",
                                                       step, frame.cols, frame.rows, s.width, s.height));
        return {};
    }

    // One grab of the capture, bounded: FFmpeg by its own read timeout, others by a thread.
    bool bounded_grab(bool& timed_out) {
        timed_out = false;
        if (kind == Kind::stream) return cap->grab();
        auto c = cap;
        auto r = run_bounded<bool>(
            [c] {
                try {
                    return c->grab();
                } catch (...) {
                    return false;
                }
            },
            s.read_timeout);
        if (!r) {
            timed_out = true;
            cap.reset();  // the thread owns it now; released when its grab returns
            return false;
        }
        return *r;
    }

    Outcome<Frame> grab_capture() {
        const auto start = Clock::now();
        double fps = cap->get(cv::CAP_PROP_FPS);
        if (!(fps >= 1 && fps <= 240)) fps = 25;
        const auto live =
            std::clamp(milliseconds(static_cast<long long>(500.0 / fps)), milliseconds(4), milliseconds(20));
        int grabs = 0;
        for (;;) {
            const long switches = involuntary_switches();
            const auto t0 = Clock::now();
            bool timed_out = false;
            const bool ok = bounded_grab(timed_out);
            const auto took = Clock::now() - t0;
            // On a loaded machine a grab from the buffers can take longer than `live` because
            // this thread was preempted: that is no sign of a fresh frame, so keep draining.
            const bool preempted = involuntary_switches() != switches;
            if (!ok) {
                if (timed_out || took >= s.read_timeout - milliseconds(s.read_timeout.count() / 10))
                    return fail<Frame>(Errc::timeout,
                                       fmt::format("grab: no frame within {} ms", s.read_timeout.count()));
                return fail<Frame>(
                    Errc::closed,
                    fmt::format("grab: the stream ended or broke after {} frame(s); the next grab reconnects",
                                frames_read));
            }
            ++frames_read;
            ++grabs;
            if (grabs <= s.flush_frames) continue;  // dropped, whatever its age
            if (took >= live && !preempted) break;  // had to wait for the camera: fresh
            if (grabs > s.flush_frames + kMaxDrainFrames || Clock::now() - start >= kMaxDrain) break;
        }
        cv::Mat m;
        if (!cap->retrieve(m) || m.empty())
            return fail<Frame>(Errc::bad_frame,
                               fmt::format("grab: frame {} could not be decoded", frames_read));
        Outcome<Frame> o;
        o.value.bgr = to_bgr8(m);
        if (o.value.bgr.empty()) return fail<Frame>(Errc::bad_frame, "grab: unsupported channel count");
        if (kind != Kind::stream) {
            if (auto st = apply_size_check(o.value.bgr, "grab"); !st) return relay<Frame>(st);
        }
        o.value.captured_ms = wall_ms();
        o.value.origin = fmt::format("frame {}", frames_read);
        return o;
    }

    // ---- V4L2 --------------------------------------------------------------------------------

    // Checks the device node before OpenCV opens it, for precise errors: absent, permission,
    // not a capture device, or busy (another process streams from it).
    Status probe_v4l2() {
        struct stat st {};
        if (::stat(target.c_str(), &st) != 0) {
            const int e = errno;
            return fail(e == ENOENT ? Errc::absent : Errc::io, "open: " + target + ": " + errno_text(e));
        }
        if (!S_ISCHR(st.st_mode)) return fail(Errc::unsupported, "open: " + target + " is not a device node");
        const int fd = ::open(target.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) {
            const int e = errno;
            if (e == EBUSY) return busy_error();
            if (e == EACCES || e == EPERM)
                return fail(Errc::io, "open: " + target + ": " + errno_text(e) +
                                          " (is the service user in group video?)");
            return fail(e == ENOENT || e == ENODEV || e == ENXIO ? Errc::absent : Errc::io,
                        "open: " + target + ": " + errno_text(e));
        }
        v4l2_capability capab{};
        if (::ioctl(fd, VIDIOC_QUERYCAP, &capab) != 0) {
            const int e = errno;
            ::close(fd);
            return fail(Errc::unsupported,
                        "open: " + target + ": not a V4L2 device (VIDIOC_QUERYCAP: " + errno_text(e) + ")");
        }
        const uint32_t caps =
            (capab.capabilities & V4L2_CAP_DEVICE_CAPS) ? capab.device_caps : capab.capabilities;
        if (!(caps & (V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_VIDEO_CAPTURE_MPLANE))) {
            ::close(fd);
            return fail(Errc::unsupported,
                        "open: " + target + " (" + reinterpret_cast<const char*>(capab.card) +
                            ") is not a video capture node (a UVC camera's metadata node?)");
        }
        v4l2_requestbuffers req{};
        req.count = 1;
        req.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
        req.memory = V4L2_MEMORY_MMAP;
        const int rc = ::ioctl(fd, VIDIOC_REQBUFS, &req);
        const int e = errno;
        if (rc == 0) {
            req.count = 0;
            (void)::ioctl(fd, VIDIOC_REQBUFS, &req);
        }
        ::close(fd);
        if (rc != 0 && e == EBUSY) return busy_error();
        return {};
    }

    Status busy_error() {
        const std::string who = holders_of(target);
        return fail(Errc::busy, "open: " + target + " is in use by another process" +
                                    (who.empty() ? "" : " (" + who + ")"));
    }

    Status open_v4l2() {
        if (auto st = probe_v4l2(); !st) return st;
        const Settings cfg = s;
        const std::string dev = target;
        std::shared_ptr<videoio::Capture> c;
        if (auto st = new_capture(c); !st) return st;
        // open + settings on a bounded thread: OpenCV's V4L2 open has no timeout of its own.
        auto r = run_bounded<std::string>(
            [c, cfg, dev]() -> std::string {
                try {
                    if (!c->open(dev, cv::CAP_V4L2, {}) || !c->isOpened()) return "OpenCV cannot open it";
                    if (!cfg.fourcc.empty()) {
                        const std::string f = (cfg.fourcc + "    ").substr(0, 4);
                        if (!c->set(cv::CAP_PROP_FOURCC, fourcc_code(f)))
                            return "unsupported: pixel format " + cfg.fourcc + " refused";
                    }
                    if (cfg.width > 0) c->set(cv::CAP_PROP_FRAME_WIDTH, cfg.width);
                    if (cfg.height > 0) c->set(cv::CAP_PROP_FRAME_HEIGHT, cfg.height);
                    c->set(cv::CAP_PROP_BUFFERSIZE, 2);
                    // OpenCV passes these to V4L2 as they are: CAP_PROP_AUTO_EXPOSURE is
                    // V4L2_CID_EXPOSURE_AUTO (1 = manual, 3 = aperture priority, the UVC "auto"),
                    // CAP_PROP_EXPOSURE is V4L2_CID_EXPOSURE_ABSOLUTE (100 us units on UVC cameras).
                    if (cfg.exposure >= 0) {
                        c->set(cv::CAP_PROP_AUTO_EXPOSURE, 1);
                        if (!c->set(cv::CAP_PROP_EXPOSURE, cfg.exposure))
                            return "unsupported: manual exposure refused";
                    } else {
                        c->set(cv::CAP_PROP_AUTO_EXPOSURE, 3);  // back to automatic; refused by some devices
                    }
                    return {};
                } catch (const cv::Exception& e) {
                    return std::string("OpenCV: ") + e.what();
                } catch (...) {
                    return "unexpected exception";
                }
            },
            s.open_timeout);
        if (!r)
            return fail(Errc::timeout,
                        fmt::format("open: {} did not open within {} ms", target, s.open_timeout.count()));
        if (!r->empty()) {
            if (starts_with(*r, "unsupported: "))
                return fail(Errc::unsupported, "open: " + target + ": " + r->substr(13));
            if (auto st = probe_v4l2(); !st) return st;  // busy since?
            return fail(Errc::io, "open: " + target + ": " + *r);
        }
        if (!s.fourcc.empty()) {
            const int got = static_cast<int>(c->get(cv::CAP_PROP_FOURCC));
            const std::string g{static_cast<char>(got & 0xff), static_cast<char>((got >> 8) & 0xff),
                                static_cast<char>((got >> 16) & 0xff), static_cast<char>((got >> 24) & 0xff)};
            if (g != (s.fourcc + "    ").substr(0, 4))
                return fail(Errc::unsupported,
                            "open: " + target + " gives pixel format " + g + ", not " + s.fourcc);
        }
        const int w = static_cast<int>(c->get(cv::CAP_PROP_FRAME_WIDTH));
        const int h = static_cast<int>(c->get(cv::CAP_PROP_FRAME_HEIGHT));
        if ((s.width > 0 && w != s.width) || (s.height > 0 && h != s.height))
            return fail(Errc::unsupported, fmt::format("open: {} gives {}x{}, not the requested {}x{}",
                                                       target, w, h, s.width, s.height));
        cap = std::move(c);
        frames_read = 0;
        return {};
    }

    // ---- GStreamer ---------------------------------------------------------------------------

    Status open_gst() {
        std::shared_ptr<videoio::Capture> c;
        if (auto st = new_capture(c); !st) return st;
        if (!module->has_backend(cv::CAP_GSTREAMER))
            return fail(Errc::unsupported, "open: this OpenCV was built without GStreamer");
        const std::string pipeline = target;
        auto r = run_bounded<bool>(
            [c, pipeline] {
                try {
                    return c->open(pipeline, cv::CAP_GSTREAMER, {}) && c->isOpened();
                } catch (...) {
                    return false;
                }
            },
            s.open_timeout);
        if (!r)
            return fail(Errc::timeout,
                        fmt::format("open: the pipeline did not start within {} ms", s.open_timeout.count()));
        if (!*r)
            return fail(Errc::absent,
                        "open: GStreamer cannot start the pipeline (missing element or plugin, no appsink at "
                        "the end, or the source is absent; GST_DEBUG=2 tells more)");
        cap = std::move(c);
        frames_read = 0;
        return {};
    }

    // ---- snapshot (libcurl) ------------------------------------------------------------------

    Status http_status_error(long status, const char* step) {
        const Errc e = (status == 404 || status == 410)   ? Errc::absent
                       : (status == 503 || status == 429) ? Errc::busy
                                                          : Errc::io;
        return fail(e, fmt::format("{}: HTTP status {}", step, status));
    }

    // One GET, bounded by `total` as a whole (its connect also by open_timeout). headers_only:
    // stop at the first body byte (stream diagnosis; HEAD is not answered by every camera).
    // Messages start with `step`.
    Status http_get(const std::string& url, std::string& body, long& status, milliseconds total,
                    bool headers_only, const std::string& step) {
        static CurlGlobal global;
        CURL* h = curl_easy_init();
        if (!h) return fail(Errc::io, step + ": curl_easy_init failed");
        char err[CURL_ERROR_SIZE] = {};
        curl_easy_setopt(h, CURLOPT_URL, url.c_str());
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(h, CURLOPT_MAXREDIRS, 3L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                         static_cast<long>(std::min(s.open_timeout, total).count()));
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(total.count()));
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_ANY);  // user:pass@ in the URL: basic or digest
        curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, kMaxSnapshotBytes);
        if (headers_only)
            curl_easy_setopt(
                h, CURLOPT_WRITEFUNCTION, +[](char*, size_t, size_t, void*) -> size_t { return 0; });
        else
            curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, curl_write);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
        const CURLcode rc = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(h);
        if (rc == CURLE_OK || (headers_only && rc == CURLE_WRITE_ERROR)) return {};
        const std::string words = err[0] ? err : curl_easy_strerror(rc);
        switch (rc) {
            case CURLE_OPERATION_TIMEDOUT:
                return fail(Errc::timeout, fmt::format("{}: no complete answer within {} ms ({})", step,
                                                       total.count(), words));
            case CURLE_COULDNT_RESOLVE_HOST:
            case CURLE_COULDNT_CONNECT: return fail(Errc::absent, step + ": " + words);
            case CURLE_WRITE_ERROR:
            case CURLE_FILESIZE_EXCEEDED:
                return fail(Errc::bad_frame,
                            fmt::format("{}: body larger than {} bytes", step, kMaxSnapshotBytes));
            case CURLE_UNSUPPORTED_PROTOCOL: return fail(Errc::unsupported, step + ": " + words);
            default: return fail(Errc::io, step + ": " + words);
        }
    }

    Outcome<Frame> grab_snapshot() {
        std::string body;
        long status = 0;
        if (auto st = http_get(target, body, status, s.read_timeout, false, "GET"); !st)
            return relay<Frame>(st);
        if (status >= 400 || status < 200) {
            auto st = http_status_error(status, "GET");
            return relay<Frame>(st);
        }
        cv::Mat img;
        std::string why;
        if (!body.empty()) {
            auto d = image::decode({reinterpret_cast<const std::uint8_t*>(body.data()), body.size()}, kAsStored,
                                   "body");
            if (d) img = std::move(d.value);
            else why = " (" + d.message.substr(std::min<std::size_t>(d.message.size(), 6)) + ")";  // without "body: "
        }
        if (img.empty())
            return fail<Frame>(
                Errc::bad_frame,
                fmt::format("decode: the body ({} bytes) is not a decodable image{}", body.size(), why));
        ++frames_read;
        Outcome<Frame> o;
        o.value.bgr = to_bgr8(img);
        if (o.value.bgr.empty()) return fail<Frame>(Errc::bad_frame, "decode: unsupported channel count");
        o.value.captured_ms = wall_ms();
        o.value.origin = fmt::format("snapshot {}", frames_read);
        return o;
    }
};

Camera::Camera(Settings s) : impl_(std::make_unique<Impl>(std::move(s))) {}
Camera::~Camera() = default;

Status Camera::open() { return impl_->open(); }
Outcome<Frame> Camera::grab() { return impl_->grab(); }
void Camera::close() { impl_->close(); }
bool Camera::is_open() const { return impl_->is_open(); }
const Settings& Camera::settings() const { return impl_->s; }

}  // namespace pressline::drivers::camera
