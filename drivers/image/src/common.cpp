// Error category, format detection and whole-file reads for the image module.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "internal.hpp"

namespace pressline::image {

namespace {

class Category final : public std::error_category {
public:
    const char* name() const noexcept override { return "pressline.image"; }
    std::string message(int ev) const override {
        switch (static_cast<Errc>(ev)) {
            case Errc::not_found: return "no such image file";
            case Errc::io: return "image file I/O error";
            case Errc::corrupt: return "not a decodable PNG or JPEG image";
            case Errc::unsupported: return "unsupported image format or layout";
            case Errc::too_large: return "image too large";
        }
        return "unknown image error";
    }
};

}  // namespace

const std::error_category& category() {
    static const Category c;
    return c;
}

std::error_code make_error_code(Errc e) { return {static_cast<int>(e), category()}; }

Format sniff(std::span<const std::uint8_t> b) {
    static constexpr std::uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (b.size() >= 8 && std::equal(png_sig, png_sig + 8, b.begin())) return Format::png;
    if (b.size() >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return Format::jpeg;
    return Format::unknown;
}

Format format_of(const std::filesystem::path& file) {
    std::string ext = file.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    if (ext == ".png") return Format::png;
    if (ext == ".jpg" || ext == ".jpeg" || ext == ".jpe") return Format::jpeg;
    return Format::unknown;
}

namespace detail {

Status read_whole_file(const std::filesystem::path& file, std::vector<std::uint8_t>& out) {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        const int e = errno;
        return fail(e == ENOENT || e == ENOTDIR ? Errc::not_found : Errc::io,
                    fmt::format("{}: {}", file.string(), e == ENOENT ? "no such file" : std::strerror(e)));
    }
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        ::close(fd);
        return fail(Errc::not_found, fmt::format("{}: is a directory, not an image", file.string()));
    }
    out.clear();
    if (st.st_size > 0) out.reserve(static_cast<std::size_t>(st.st_size));
    std::uint8_t buf[65536];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const int e = errno;
            ::close(fd);
            return fail(e == EISDIR ? Errc::not_found : Errc::io,
                        fmt::format("{}: reading: {}", file.string(), std::strerror(e)));
        }
        if (n == 0) break;
        out.insert(out.end(), buf, buf + n);
    }
    ::close(fd);
    return {};
}

}  // namespace detail

}  // namespace pressline::image
