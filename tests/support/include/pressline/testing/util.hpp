// Small helpers shared by the integration tests: temporary directories, files, polling,
// paths of the fixtures and of the binary under test.
// Threads: free functions are thread-safe; TempDir is not.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace pressline::testing {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// The generous default timeout for anything a test waits for.
inline constexpr std::chrono::milliseconds kWait = 20s;

// A fresh directory under $TMPDIR (or /tmp), removed on destruction unless keep() was called.
class TempDir {
public:
    explicit TempDir(std::string_view prefix = "pressline-it");
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(std::string_view name) const { return path_ / name; }
    void keep() { keep_ = true; }

private:
    std::filesystem::path path_;
    bool keep_ = false;
};

std::string read_file(const std::filesystem::path& p);  // "" if missing
// Writes atomically (temp file + rename) and chmods to `mode`.
void write_file(const std::filesystem::path& p, std::string_view content, unsigned mode = 0644);
// The bytes of `p` from `offset` on ("" if missing or shorter).
std::string read_file_from(const std::filesystem::path& p, std::size_t offset);
std::size_t file_size_or_zero(const std::filesystem::path& p);
// Lower-case hex sha256 of a file's content (as a job's print.artwork.sha256 wants it).
std::string sha256_hex(const std::filesystem::path& p);

// Polls `pred` every `step` until it holds or `timeout` passes; returns the last result.
// For conditions with no notification (files, processes). MQTT waits use condition variables.
bool poll_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout = kWait,
                std::chrono::milliseconds step = 20ms);

// Case-insensitive substring search.
bool icontains(std::string_view haystack, std::string_view needle);

// The `pressline` binary under test: $PRESSLINE_BIN, else the path compiled in.
std::filesystem::path pressline_binary();
// tests/fixtures in the source tree: $PRESSLINE_FIXTURES_DIR, else the path compiled in.
std::filesystem::path fixtures_dir();

// Lines of `text` that contain `needle` (case-insensitive), for failure messages.
std::string grep_lines(std::string_view text, std::string_view needle, std::size_t max_lines = 20);
// The lines of `text`, without their newlines.
std::vector<std::string> split_lines(std::string_view text);
// The last `n` lines of `text`.
std::string tail_lines(std::string_view text, std::size_t n = 40);

}  // namespace pressline::testing
