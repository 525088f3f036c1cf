// Helpers shared by the integration tests (see util.hpp).
#include "pressline/testing/util.hpp"

#include <openssl/evp.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

#ifndef PRESSLINE_BIN_DEFAULT
#define PRESSLINE_BIN_DEFAULT ""
#endif
#ifndef PRESSLINE_FIXTURES_DIR_DEFAULT
#define PRESSLINE_FIXTURES_DIR_DEFAULT ""
#endif

namespace pressline::testing {

namespace fs = std::filesystem;

TempDir::TempDir(std::string_view prefix) {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/" + std::string(prefix) + "-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed for " + tmpl);
    path_ = buf.data();
}

TempDir::~TempDir() {
    if (keep_) return;
    if (const char* k = std::getenv("PRESSLINE_IT_KEEP"); k && *k && std::string_view(k) != "0") return;
    std::error_code ec;
    fs::remove_all(path_, ec);
}

std::string read_file(const fs::path& p) { return read_file_from(p, 0); }

std::string read_file_from(const fs::path& p, std::size_t offset) {
    std::ifstream in(p, std::ios::binary);
    if (!in) return {};
    in.seekg(0, std::ios::end);
    const auto size = static_cast<std::size_t>(std::max<std::streamoff>(in.tellg(), 0));
    if (offset >= size) return {};
    in.seekg(static_cast<std::streamoff>(offset));
    std::string s(size - offset, '\0');
    in.read(s.data(), static_cast<std::streamsize>(s.size()));
    s.resize(static_cast<std::size_t>(in.gcount()));
    return s;
}

std::size_t file_size_or_zero(const fs::path& p) {
    std::error_code ec;
    const auto n = fs::file_size(p, ec);
    return ec ? 0 : static_cast<std::size_t>(n);
}

void write_file(const fs::path& p, std::string_view content, unsigned mode) {
    if (p.has_parent_path()) fs::create_directories(p.parent_path());
    const fs::path tmp = p.string() + ".tmp~";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) throw std::runtime_error("cannot write " + tmp.string());
        out.write(content.data(), static_cast<std::streamsize>(content.size()));
        if (!out.flush()) throw std::runtime_error("cannot write " + tmp.string());
    }
    if (::chmod(tmp.c_str(), mode) != 0) throw std::runtime_error("chmod failed: " + tmp.string());
    fs::rename(tmp, p);
}

bool poll_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
                std::chrono::milliseconds step) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        if (pred()) return true;
        if (Clock::now() >= deadline) return pred();
        std::this_thread::sleep_for(step);
    }
}

bool icontains(std::string_view haystack, std::string_view needle) {
    auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                          [](char a, char b) {
                              return std::tolower(static_cast<unsigned char>(a)) ==
                                     std::tolower(static_cast<unsigned char>(b));
                          });
    return it != haystack.end();
}

fs::path pressline_binary() {
    if (const char* e = std::getenv("PRESSLINE_BIN"); e && *e) return e;
    return PRESSLINE_BIN_DEFAULT;
}

fs::path fixtures_dir() {
    if (const char* e = std::getenv("PRESSLINE_FIXTURES_DIR"); e && *e) return e;
    return PRESSLINE_FIXTURES_DIR_DEFAULT;
}

std::string grep_lines(std::string_view text, std::string_view needle, std::size_t max_lines) {
    std::string out;
    std::size_t n = 0, pos = 0;
    while (pos < text.size() && n < max_lines) {
        auto end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        auto line = text.substr(pos, end - pos);
        if (icontains(line, needle)) {
            out.append(line).append("\n");
            ++n;
        }
        pos = end + 1;
    }
    return out;
}

std::vector<std::string> split_lines(std::string_view text) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        out.emplace_back(text.substr(pos, end - pos));
        pos = end + 1;
    }
    return out;
}

std::string tail_lines(std::string_view text, std::size_t n) {
    std::vector<std::string_view> lines;
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        lines.push_back(text.substr(pos, end - pos));
        pos = end + 1;
    }
    std::string out;
    for (std::size_t i = lines.size() > n ? lines.size() - n : 0; i < lines.size(); ++i)
        out.append(lines[i]).append("\n");
    return out;
}

std::string sha256_hex(const std::filesystem::path& p) {
    const std::string data = read_file(p);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr);
    static const char* digits = "0123456789abcdef";
    std::string hex;
    for (unsigned i = 0; i < n; ++i) {
        hex += digits[md[i] >> 4];
        hex += digits[md[i] & 15];
    }
    return hex;
}

}  // namespace pressline::testing
