// Images on labels: PNG decoding (libpng's simplified API: no longjmp reaches our frames),
// scaling and reduction to the 1-bit pictures a thermal printer prints.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <opencv2/imgproc.hpp>
#include <png.h>

#include "documents_detail.hpp"

namespace pressline::devices::label::doc {
namespace {

// Larger pictures are refused before decoding (a carrier label at 600 dpi is ~ 9 Mpx).
constexpr std::uint64_t kMaxPixels = 64ull * 1024 * 1024;

struct PngImageFree {
    void operator()(png_image* i) const { png_image_free(i); }
};

}  // namespace

Result<cv::Mat> decode_png(const std::vector<std::uint8_t>& png, std::string_view field) {
    if (png.empty()) return Problem{"image_invalid", fmt::format("{}: empty", field)};
    png_image image{};
    image.version = PNG_IMAGE_VERSION;
    std::unique_ptr<png_image, PngImageFree> guard(&image);
    if (png_image_begin_read_from_memory(&image, png.data(), png.size()) == 0) {
        return Problem{"image_invalid", fmt::format("{}: not a PNG ({})", field, image.message)};
    }
    const std::uint64_t pixels = static_cast<std::uint64_t>(image.width) * image.height;
    if (image.width == 0 || image.height == 0 || pixels > kMaxPixels) {
        return Problem{"image_invalid", fmt::format("{}: {} x {} pixels (at most {} Mpx)", field,
                                                    image.width, image.height,
                                                    kMaxPixels / (1024 * 1024))};
    }
    image.format = PNG_FORMAT_RGBA;
    cv::Mat rgba(static_cast<int>(image.height), static_cast<int>(image.width), CV_8UC4);
    if (png_image_finish_read(&image, nullptr, rgba.data, static_cast<png_int_32>(rgba.step[0]),
                              nullptr) == 0) {
        return Problem{"image_invalid", fmt::format("{}: cannot decode PNG ({})", field, image.message)};
    }
    // Composite onto white paper.
    cv::Mat rgb(rgba.rows, rgba.cols, CV_8UC3);
    for (int y = 0; y < rgba.rows; ++y) {
        const auto* src = rgba.ptr<std::uint8_t>(y);
        auto* dst = rgb.ptr<std::uint8_t>(y);
        for (int x = 0; x < rgba.cols; ++x, src += 4, dst += 3) {
            const int a = src[3];
            for (int k = 0; k < 3; ++k) {
                dst[k] = static_cast<std::uint8_t>((src[k] * a + 255 * (255 - a) + 127) / 255);
            }
        }
    }
    return rgb;
}

cv::Mat fit(const cv::Mat& rgb, int w, int h) {
    const double scale = std::min(static_cast<double>(w) / rgb.cols, static_cast<double>(h) / rgb.rows);
    const int tw = std::max(1, std::min(w, static_cast<int>(std::lround(rgb.cols * scale))));
    const int th = std::max(1, std::min(h, static_cast<int>(std::lround(rgb.rows * scale))));
    if (tw == rgb.cols && th == rgb.rows) return rgb.clone();
    cv::Mat out;
    cv::resize(rgb, out, cv::Size(tw, th), 0, 0, scale < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
    return out;
}

Bitmap to_bitmap(const cv::Mat& rgb, bool dither) {
    cv::Mat gray;
    cv::cvtColor(rgb, gray, cv::COLOR_RGB2GRAY);
    Bitmap out;
    out.width = gray.cols;
    out.height = gray.rows;
    out.row_bytes = (gray.cols + 7) / 8;
    out.bits.assign(static_cast<std::size_t>(out.row_bytes) * gray.rows, 0);
    auto set = [&out](int x, int y) {
        out.bits[static_cast<std::size_t>(y) * out.row_bytes + x / 8] |=
            static_cast<std::uint8_t>(0x80 >> (x % 8));
    };
    if (!dither) {
        for (int y = 0; y < gray.rows; ++y) {
            const auto* row = gray.ptr<std::uint8_t>(y);
            for (int x = 0; x < gray.cols; ++x) {
                if (row[x] < 128) set(x, y);
            }
        }
        return out;
    }
    // Floyd-Steinberg, error carried in two float rows.
    std::vector<float> cur(static_cast<std::size_t>(gray.cols) + 2, 0.f);
    std::vector<float> next(cur.size(), 0.f);
    for (int y = 0; y < gray.rows; ++y) {
        const auto* row = gray.ptr<std::uint8_t>(y);
        std::fill(next.begin(), next.end(), 0.f);
        for (int x = 0; x < gray.cols; ++x) {
            const float v = row[x] + cur[static_cast<std::size_t>(x) + 1];
            const float q = v < 128.f ? 0.f : 255.f;
            if (q == 0.f) set(x, y);
            const float e = v - q;
            cur[static_cast<std::size_t>(x) + 2] += e * 7.f / 16.f;
            next[static_cast<std::size_t>(x)] += e * 3.f / 16.f;
            next[static_cast<std::size_t>(x) + 1] += e * 5.f / 16.f;
            next[static_cast<std::size_t>(x) + 2] += e * 1.f / 16.f;
        }
        std::swap(cur, next);
    }
    return out;
}

}  // namespace pressline::devices::label::doc
