// Content-addressed artwork cache: single fetch per sha256, verify on write and on hit, LRU.
#include "internal.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>

namespace pressline::assets {
namespace fs = std::filesystem;

namespace {

std::once_flag g_curl_once;

std::shared_ptr<spdlog::logger> log() {
  auto l = spdlog::get("assets");
  return l ? l : spdlog::default_logger();
}

bool is_sha256_hex(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](unsigned char c) {
           return std::isxdigit(c) != 0;
         });
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void set_mtime(const fs::path& p, std::int64_t ns) {
  struct timespec ts[2];
  ts[0].tv_sec = 0;
  ts[0].tv_nsec = UTIME_OMIT;
  ts[1].tv_sec = ns / 1'000'000'000;
  ts[1].tv_nsec = ns % 1'000'000'000;
  ::utimensat(AT_FDCWD, p.c_str(), ts, 0);
}

void fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

struct Store::Impl : std::enable_shared_from_this<Store::Impl> {
  struct Entry {
    std::int64_t bytes = 0;
    std::int64_t last_use = 0;  // ns since epoch; mirrored in the file's mtime
    int pins = 0;
    std::uint64_t generation = 0;
  };
  struct InFlight {
    std::string uri;
    bool done = false;
    std::optional<Problem> problem;
  };

  fs::path objects, tmp;
  std::int64_t cap = 0;
  FetchPolicy policy;

  mutable std::mutex mu;  // guards everything below; held only for bookkeeping and unlink/utime
  std::condition_variable cv;
  std::map<std::string, Entry> entries;
  std::map<std::string, std::shared_ptr<InFlight>> inflight;
  StoreStats st;
  std::int64_t clock = 0;
  std::uint64_t next_generation = 1;

  fs::path object(const std::string& sha) const { return objects / sha; }

  // mu held.
  std::int64_t tick() {
    clock = std::max(clock + 1, now_ns());
    return clock;
  }

  // mu held. Pins the entry and returns a lease that unpins it when the last copy goes.
  std::shared_ptr<const void> lease(const std::string& sha, Entry& e) {
    ++e.pins;
    std::weak_ptr<Impl> weak = weak_from_this();
    const std::uint64_t gen = e.generation;
    return std::shared_ptr<const void>(nullptr, [weak, sha, gen](const void*) {
      if (auto self = weak.lock()) {
        std::lock_guard lk(self->mu);
        auto it = self->entries.find(sha);
        if (it != self->entries.end() && it->second.generation == gen && it->second.pins > 0)
          --it->second.pins;
      }
    });
  }

  // mu held. By value: callers pass the key of the entry being erased.
  void remove(std::string sha) {
    auto it = entries.find(sha);
    if (it == entries.end()) return;
    st.bytes -= it->second.bytes;
    --st.entries;
    entries.erase(it);
    std::error_code ec;
    fs::remove(object(sha), ec);
  }

  // mu held. Evicts least recently used, unpinned entries until under the cap.
  void evict() {
    while (st.bytes > cap) {
      auto victim = entries.end();
      for (auto it = entries.begin(); it != entries.end(); ++it)
        if (it->second.pins == 0 &&
            (victim == entries.end() || it->second.last_use < victim->second.last_use))
          victim = it;
      if (victim == entries.end()) return;  // everything is in use; over the cap for now
      log()->info("assets: evict sha256={} bytes={} cache_bytes={} cap={}", victim->first,
                  victim->second.bytes, st.bytes, cap);
      ++st.evictions;
      remove(victim->first);
    }
  }

  std::variant<Asset, Problem> from_cache(const std::string& sha, std::unique_lock<std::mutex>& lk,
                                          Content content);
  std::variant<Asset, Problem> fetch(const std::string& uri, const std::string& sha, Content content);
};

// Called with mu held and the entry present; returns with mu held. Verifies and probes unlocked.
std::variant<Asset, Problem> Store::Impl::from_cache(const std::string& sha,
                                                     std::unique_lock<std::mutex>& lk, Content content) {
  Entry& e = entries.at(sha);
  const std::int64_t t = tick();
  e.last_use = t;
  set_mtime(object(sha), t);
  Asset a;
  a.path = object(sha);
  a.sha256 = sha;
  a.bytes = e.bytes;
  a.from_cache = true;
  a.lease = lease(sha, e);
  const std::uint64_t gen = e.generation;
  lk.unlock();
  auto actual = sha256_file(a.path);
  std::variant<ImageInfo, Problem> probed = Problem{};
  const bool intact = std::holds_alternative<std::string>(actual) && std::get<std::string>(actual) == sha;
  if (intact) probed = content == Content::image ? probe_image(a.path, policy.max_pixels)
                                                 : std::variant<ImageInfo, Problem>(ImageInfo{});
  a.lease.reset();  // re-taken below if kept
  lk.lock();
  auto it = entries.find(sha);
  if (!intact) {
    if (it != entries.end() && it->second.generation == gen) {
      log()->warn("assets: cached file no longer matches its name, dropped sha256={} actual={}",
                  sha,
                  std::holds_alternative<std::string>(actual) ? std::get<std::string>(actual)
                                                              : std::get<Problem>(actual).message);
      ++st.dropped;
      remove(sha);
    }
    return Problem{};  // empty reason: caller refetches
  }
  if (auto* p = std::get_if<Problem>(&probed)) return *p;
  if (it == entries.end() || it->second.generation != gen) return Problem{};  // raced away
  ++st.hits;
  a.info = std::get<ImageInfo>(probed);
  a.lease = lease(sha, it->second);
  return a;
}

// Called without mu. The single fetcher of `sha` (in-flight entry held by the caller).
std::variant<Asset, Problem> Store::Impl::fetch(const std::string& uri, const std::string& sha,
                                                Content content) {
  std::string tmpl = (tmp / (sha + ".XXXXXX")).string();
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0)
    return Problem{reason::fetch_failed, "cannot create a temp file in " + tmp.string() + ": " +
                                             std::strerror(errno)};
  const fs::path temp = tmpl;
  auto fail = [&](Problem p) -> std::variant<Asset, Problem> {
    ::close(fd);
    std::error_code ec;
    fs::remove(temp, ec);
    return p;
  };
  auto fetched = detail::fetch_to_fd(uri, policy, fd);
  if (auto* p = std::get_if<Problem>(&fetched)) return fail(*p);
  const auto& f = std::get<detail::Fetched>(fetched);
  if (f.sha256 != sha)
    return fail(Problem{reason::checksum_mismatch,
                        "sha256 mismatch for " + detail::redact_uri(uri) + ": expected " + sha +
                            ", got " + f.sha256 + " (" + std::to_string(f.bytes) + " bytes)"});
  auto probed = content == Content::image ? probe_image(temp, policy.max_pixels)
                                          : std::variant<ImageInfo, Problem>(ImageInfo{});
  if (auto* p = std::get_if<Problem>(&probed)) {
    Problem q = *p;
    q.message = detail::redact_uri(uri) + ": " + q.message;
    return fail(q);
  }
  if (::fchmod(fd, 0644) != 0 || ::fsync(fd) != 0)
    return fail(Problem{reason::fetch_failed, "fsync of cache temp file: " + std::string(std::strerror(errno))});
  ::close(fd);
  fd = -1;

  std::unique_lock lk(mu);
  std::error_code ec;
  fs::rename(temp, object(sha), ec);
  if (ec) {
    fs::remove(temp, ec);
    return Problem{reason::fetch_failed, "cannot store in cache: " + ec.message()};
  }
  fsync_dir(objects);
  Entry& e = entries[sha];
  e = Entry{};
  e.bytes = f.bytes;
  e.generation = next_generation++;
  e.last_use = tick();
  set_mtime(object(sha), e.last_use);
  st.bytes += f.bytes;
  ++st.entries;
  Asset a;
  a.path = object(sha);
  a.sha256 = sha;
  a.bytes = f.bytes;
  a.info = std::get<ImageInfo>(probed);
  a.lease = lease(sha, e);  // pinned before eviction so the new entry itself survives it
  evict();
  return a;
}

Store::Store(fs::path cache_dir, std::int64_t cache_max_bytes, FetchPolicy policy)
    : impl_(std::make_shared<Impl>()) {
  std::call_once(g_curl_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  impl_->objects = cache_dir / "objects";
  impl_->tmp = cache_dir / "tmp";
  impl_->cap = cache_max_bytes;
  impl_->policy = std::move(policy);
  fs::create_directories(impl_->objects);
  fs::create_directories(impl_->tmp);
  for (const auto& d : fs::directory_iterator(impl_->tmp)) {  // leftovers of a crash
    std::error_code ec;
    fs::remove(d.path(), ec);
  }
  for (const auto& d : fs::directory_iterator(impl_->objects)) {
    const std::string name = d.path().filename().string();
    struct stat s {};
    if (!is_sha256_hex(name) || ::lstat(d.path().c_str(), &s) != 0 || !S_ISREG(s.st_mode)) continue;
    Impl::Entry e;
    e.bytes = s.st_size;
    e.last_use = static_cast<std::int64_t>(s.st_mtim.tv_sec) * 1'000'000'000 + s.st_mtim.tv_nsec;
    e.generation = impl_->next_generation++;
    impl_->clock = std::max(impl_->clock, e.last_use);
    impl_->entries.emplace(name, e);
    impl_->st.bytes += e.bytes;
    ++impl_->st.entries;
  }
  std::lock_guard lk(impl_->mu);
  impl_->evict();
}

Store::~Store() = default;

std::variant<Asset, Problem> Store::get(const std::string& uri, const std::string& sha256_hex,
                                        Content content) {
  Impl& s = *impl_;
  if (!is_sha256_hex(sha256_hex))
    return Problem{reason::checksum_mismatch,
                   "expected sha256 is not 64 hex digits: '" + sha256_hex.substr(0, 80) + "'"};
  std::string sha = sha256_hex;
  std::transform(sha.begin(), sha.end(), sha.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  // Policy first, so a URI that is not allowed fails the same way whether or not it is cached.
  auto allowed = detail::check_uri(uri, s.policy);
  if (auto* p = std::get_if<Problem>(&allowed)) return *p;

  std::unique_lock lk(s.mu);
  for (;;) {
    if (s.entries.count(sha) != 0) {
      auto r = s.from_cache(sha, lk, content);
      if (auto* p = std::get_if<Problem>(&r); p == nullptr || !p->reason.empty()) return r;
      continue;  // dropped or raced away: look again
    }
    if (auto it = s.inflight.find(sha); it != s.inflight.end()) {
      auto f = it->second;
      ++s.st.joined;
      s.cv.wait(lk, [&] { return f->done; });
      if (f->problem && f->uri == uri) return *f->problem;
      continue;  // fetched (now a cache hit) or failed for another URI: try ours
    }
    auto f = std::make_shared<Impl::InFlight>();
    f->uri = uri;
    s.inflight.emplace(sha, f);
    ++s.st.fetches;
    lk.unlock();
    auto r = s.fetch(uri, sha, content);
    lk.lock();
    if (auto* p = std::get_if<Problem>(&r)) f->problem = *p;
    f->done = true;
    s.inflight.erase(sha);
    s.cv.notify_all();
    return r;
  }
}

StoreStats Store::stats() const {
  std::lock_guard lk(impl_->mu);
  return impl_->st;
}

}  // namespace pressline::assets
