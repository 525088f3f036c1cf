// Artwork assets for DTG jobs: fetch (https:// or file://), verify sha256, probe the image header,
// keep a content-addressed cache. Reason codes and policy fields: agent/assets/README.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include <opencv2/core/mat.hpp>

namespace pressline::assets {

// Stable reason codes (they go on the wire in job.failed). See agent/assets/README.md.
namespace reason {
inline constexpr const char* uri_not_allowed = "asset_uri_not_allowed";
inline constexpr const char* path_not_allowed = "asset_path_not_allowed";
inline constexpr const char* not_found = "asset_not_found";
inline constexpr const char* fetch_failed = "asset_fetch_failed";
inline constexpr const char* too_large = "asset_too_large";
inline constexpr const char* checksum_mismatch = "asset_checksum_mismatch";
inline constexpr const char* unsupported_format = "asset_unsupported_format";
inline constexpr const char* corrupt = "asset_corrupt";
inline constexpr const char* too_many_pixels = "asset_too_many_pixels";
}  // namespace reason

// What may be fetched, from where, and how much. Plain data; copied into the Store.
struct FetchPolicy {
  // Exact host names (case-insensitive) or "*.example.com" (any subdomain of example.com, not
  // example.com itself). Empty: no https:// host is allowed.
  std::vector<std::string> allowed_hosts;
  // false: refuse to connect to loopback, RFC 1918, link-local, ULA, unspecified addresses (checked
  // on the address curl actually connects to, so DNS rebinding cannot bypass it).
  bool allow_private_addresses = false;
  // Labs only: also accept plain http:// (same host and address rules). Default off.
  bool allow_http = false;
  // Root for file:// URIs; empty: file:// is refused. The URI path is an absolute path that must
  // lie inside this root; no symbolic link is followed below the root.
  std::filesystem::path file_root;
  std::int64_t max_bytes = 512LL * 1024 * 1024;  // per asset; larger is asset_too_large
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds total_timeout{600'000};
  // Abort when the transfer is slower than low_speed_bytes_per_s for low_speed_time.
  std::int64_t low_speed_bytes_per_s = 1024;
  std::chrono::seconds low_speed_time{30};
  // Extra CA bundle (PEM), trusted in addition to the system store (private CAs, tests).
  std::filesystem::path ca_file;
  // Same-host redirects followed at most this many times; a redirect to another scheme, host or
  // port is always refused (asset_uri_not_allowed).
  int max_redirects = 3;
  std::int64_t max_pixels = 400LL * 1000 * 1000;  // width*height above this: asset_too_many_pixels
};

struct ImageInfo {
  std::string format;  // png | jpeg | tiff
  int width = 0, height = 0;
  double dpi_x = 0, dpi_y = 0;  // 0 = not stated in the file
  int channels = 0, bit_depth = 0;
};

struct Problem {
  std::string reason;   // one of pressline::assets::reason
  std::string message;  // human-readable: URI (query string removed), sizes, hashes...
};

struct Asset {
  std::filesystem::path path;  // the cached file (read-only; do not modify)
  std::string sha256;          // lower-case hex
  ImageInfo info;
  bool from_cache = false;
  std::int64_t bytes = 0;
  // Keeps the cache entry from being evicted while the caller holds it (copy or drop freely).
  std::shared_ptr<const void> lease;
};

// Reads only the header of an image file (format from magic bytes, not the name) and refuses
// more than max_pixels before anything is decoded. PNG: also checks that the file ends with IEND
// (a PNG truncated after its header is asset_corrupt). Thread-safe; blocking file I/O.
std::variant<ImageInfo, Problem> probe_image(const std::filesystem::path& file,
                                             std::int64_t max_pixels);

// Decodes a checked artwork file (PNG, JPEG or TIFF, probed first with `max_pixels`) into an
// 8-bit BGRA image with straight alpha (JPEG: opaque; 16-bit input reduced by libpng/libtiff).
// Uses libpng, libjpeg and libtiff only (not cv::imread: see src/decode.cpp). Problems:
// asset_corrupt, asset_unsupported_format (e.g. CMYK JPEG), and probe_image's. Thread-safe;
// CPU-heavy: call it from a worker thread.
std::variant<cv::Mat, Problem> decode_image(const std::filesystem::path& file, std::int64_t max_pixels);

// Lower-case hex sha256 of a file, or Problem (asset_not_found / asset_fetch_failed).
std::variant<std::string, Problem> sha256_file(const std::filesystem::path& file);

enum class Content { image, document };

struct StoreStats {
  std::int64_t fetches = 0;    // downloads or file:// copies started
  std::int64_t hits = 0;       // served from the cache (content re-verified)
  std::int64_t joined = 0;     // waited for another thread's fetch of the same sha256
  std::int64_t evictions = 0;  // entries removed to stay under the size cap
  std::int64_t dropped = 0;    // cache entries whose content no longer matched their name
  std::int64_t bytes = 0;      // bytes currently in the cache
  std::int64_t entries = 0;    // files currently in the cache
};

// Content-addressed artwork cache: <cache_dir>/objects/<sha256>, temp files in <cache_dir>/tmp.
// LRU eviction under cache_max_bytes (last use = file mtime, so it survives restarts); entries
// held through an Asset::lease are never evicted. One Store per cache_dir per host.
//
// Thread-safe. get() blocks (network, disk, hashing): call it from a worker thread, never from
// the io_context. Concurrent get() of the same sha256 fetches once; the others wait for it.
class Store {
 public:
  // Creates the directories if needed, removes stale temp files, indexes existing entries.
  // Throws std::filesystem::filesystem_error if cache_dir cannot be created (start-up only).
  Store(std::filesystem::path cache_dir, std::int64_t cache_max_bytes, FetchPolicy policy);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Returns the verified, probed asset for uri (https://, file://, http:// if allowed) whose
  // content must hash to sha256_hex (64 hex digits). Never throws for bad input or fetch errors.
  // Content::document (a carrier's ZPL or PDF label) skips the image probe; `info` stays empty.
  std::variant<Asset, Problem> get(const std::string& uri, const std::string& sha256_hex,
                                   Content content = Content::image);

  StoreStats stats() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace pressline::assets
