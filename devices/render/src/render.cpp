// make_reference(): placement geometry on the platen's pixel grid and artwork resampling.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "pressline/devices/render.hpp"

namespace pressline::devices::render {
namespace {

constexpr double kMmPerInch = 25.4;
constexpr int kMaxSidePx = 50'000;
constexpr double kEpsilonMm = 1e-6;   // tolerance of the out-of-platen check (float noise only)

Problem problem(std::string reason, std::string message) {
    return Problem{std::move(reason), std::move(message)};
}

// Rounds half up; every edge of the box goes through this, so the rule is the same everywhere.
int round_px(double v) { return static_cast<int>(std::floor(v + 0.5)); }

std::optional<double> parse_inches(std::string_view s) {
    double v = 0;
    const auto* end = s.data() + s.size();
    auto [ptr, ec] = std::from_chars(s.data(), end, v);
    if (ec != std::errc{} || ptr != end || !std::isfinite(v) || v <= 0) return std::nullopt;
    return v;
}

// Minimum alpha of an image with an alpha channel (last channel), as a fraction of full scale.
template <class T>
bool alpha_all_max(const cv::Mat& m) {
    const int ch = m.channels();
    const T full = std::numeric_limits<T>::max();
    for (int y = 0; y < m.rows; ++y) {
        const T* p = m.ptr<T>(y) + (ch - 1);
        const T* end = p + static_cast<std::ptrdiff_t>(m.cols) * ch;
        T acc = full;
        for (; p < end; p += ch) acc = static_cast<T>(acc & *p);   // all-max iff AND is max
        if (acc != full) return false;
    }
    return true;
}

bool is_opaque(const cv::Mat& m) {
    if (m.channels() == 1 || m.channels() == 3) return true;
    return m.depth() == CV_8U ? alpha_all_max<std::uint8_t>(m) : alpha_all_max<std::uint16_t>(m);
}

// Same size, any supported depth/channels -> CV_8UC4 BGRA. Shares `src` when it already is.
cv::Mat to_bgra8(const cv::Mat& src) {
    cv::Mat m8;
    if (src.depth() == CV_16U) {
        src.convertTo(m8, CV_8U, 1.0 / 257.0);   // 65535 -> 255, rounded
    } else {
        m8 = src;
    }
    switch (m8.channels()) {
        case 4: return m8.isContinuous() ? m8 : m8.clone();
        case 3: { cv::Mat out; cv::cvtColor(m8, out, cv::COLOR_BGR2BGRA); return out; }
        case 1: { cv::Mat out; cv::cvtColor(m8, out, cv::COLOR_GRAY2BGRA); return out; }
        default: {   // 2: gray + alpha
            cv::Mat out(m8.size(), CV_8UC4);
            const int from_to[] = {0, 0, 0, 1, 0, 2, 1, 3};
            cv::mixChannels(&m8, 1, &out, 1, from_to, 4);
            return out;
        }
    }
}

// Premultiplies into CV_16UC4 BGRA: p = colour * alpha and A = alpha, both scaled to 0..65535
// (16 bits keep low-alpha colours that 8-bit premultiplication would crush). One fused pass.
template <class T>
cv::Mat premultiply16(const cv::Mat& src) {
    constexpr double full = std::numeric_limits<T>::max();
    const int ch = src.channels();   // 2 or 4
    cv::Mat out(src.size(), CV_16UC4);
    for (int y = 0; y < src.rows; ++y) {
        const T* s = src.ptr<T>(y);
        auto* d = out.ptr<std::uint16_t>(y);
        for (int x = 0; x < src.cols; ++x, s += ch, d += 4) {
            const double a = s[ch - 1] / full;   // 0..1
            const double k = a * 65535.0 / full;
            if (ch == 4) {
                d[0] = static_cast<std::uint16_t>(s[0] * k + 0.5);
                d[1] = static_cast<std::uint16_t>(s[1] * k + 0.5);
                d[2] = static_cast<std::uint16_t>(s[2] * k + 0.5);
            } else {
                d[0] = d[1] = d[2] = static_cast<std::uint16_t>(s[0] * k + 0.5);
            }
            d[3] = static_cast<std::uint16_t>(a * 65535.0 + 0.5);
        }
    }
    return out;
}

// Inverse of premultiply16 to CV_8UC4 straight alpha. Fully transparent pixels become 0,0,0,0.
cv::Mat unpremultiply8(const cv::Mat& p) {
    cv::Mat out(p.size(), CV_8UC4);
    for (int y = 0; y < p.rows; ++y) {
        const auto* s = p.ptr<std::uint16_t>(y);
        auto* d = out.ptr<std::uint8_t>(y);
        for (int x = 0; x < p.cols; ++x, s += 4, d += 4) {
            const unsigned a = s[3];
            if (a == 0) {
                d[0] = d[1] = d[2] = d[3] = 0;
                continue;
            }
            const float k = 255.0f / static_cast<float>(a);
            for (int c = 0; c < 3; ++c) {
                d[c] = static_cast<std::uint8_t>(std::min(255.0f, s[c] * k + 0.5f));
            }
            d[3] = static_cast<std::uint8_t>((a + 128) / 257);
        }
    }
    return out;
}

// Resamples artwork with a real alpha channel (2 or 4 channels) premultiplied, so that the
// colour of transparent pixels does not bleed into the edges.
cv::Mat resize_premultiplied(const cv::Mat& src, cv::Size size, int interpolation) {
    const cv::Mat p = src.depth() == CV_16U ? premultiply16<std::uint16_t>(src)
                                            : premultiply16<std::uint8_t>(src);
    cv::Mat r;
    cv::resize(p, r, size, 0, 0, interpolation);   // 16U saturates cubic overshoot
    return unpremultiply8(r);
}

}  // namespace

Result<Platen> platen_from_name(std::string_view name) {
    const auto x = name.find('x');
    if (x == std::string_view::npos) {
        return problem("invalid_platen",
                       fmt::format("platen '{}' is not of the form <width>x<height> (inches)", name));
    }
    const auto w = parse_inches(name.substr(0, x));
    const auto h = parse_inches(name.substr(x + 1));
    if (!w || !h) {
        return problem("invalid_platen",
                       fmt::format("platen '{}': width and height must be positive inches", name));
    }
    return Platen{std::string(name), *w * kMmPerInch, *h * kMmPerInch};
}

Result<Reference> make_reference(const cv::Mat& artwork, const Platen& platen,
                                 const Placement& placement, double dpi) {
    if (!std::isfinite(dpi) || dpi <= 0 || dpi > 4800) {
        return problem("invalid_dpi", fmt::format("dpi {} is outside (0, 4800]", dpi));
    }
    if (!std::isfinite(platen.width_mm) || !std::isfinite(platen.height_mm) ||
        platen.width_mm <= 0 || platen.height_mm <= 0) {
        return problem("invalid_platen", fmt::format("platen '{}' has no positive size ({} x {} mm)",
                                                     platen.name, platen.width_mm, platen.height_mm));
    }
    if (!std::isfinite(placement.width_mm) || placement.width_mm <= 0) {
        return problem("invalid_placement",
                       fmt::format("width_mm must be positive, got {}", placement.width_mm));
    }
    if (!std::isfinite(placement.offset_x_mm) || !std::isfinite(placement.offset_y_mm)) {
        return problem("invalid_placement", "offset_x_mm and offset_y_mm must be finite numbers");
    }
    if (artwork.empty() || artwork.cols <= 0 || artwork.rows <= 0) {
        return problem("artwork_empty", "the artwork has no pixels");
    }
    if ((artwork.depth() != CV_8U && artwork.depth() != CV_16U) || artwork.dims != 2 ||
        artwork.channels() < 1 || artwork.channels() > 4) {
        return problem("artwork_unsupported",
                       fmt::format("artwork must be 8- or 16-bit with 1 to 4 channels, got {}",
                                   cv::typeToString(artwork.type())));
    }

    // Nominal box in platen mm, straight from the contract.
    const double w_mm = placement.width_mm;
    const double h_mm = w_mm * artwork.rows / artwork.cols;
    const double x_mm = platen.width_mm / 2 + placement.offset_x_mm - w_mm / 2;
    const double y_mm = placement.offset_y_mm;
    {
        const double left = -x_mm;
        const double right = x_mm + w_mm - platen.width_mm;
        const double top = -y_mm;
        const double bottom = y_mm + h_mm - platen.height_mm;
        std::string over;
        auto note = [&over](const char* edge, double mm) {
            if (mm > kEpsilonMm) over += fmt::format("{}{:.2f} mm beyond the {} edge",
                                                     over.empty() ? "" : ", ", mm, edge);
        };
        note("left", left);
        note("right", right);
        note("top", top);
        note("bottom", bottom);
        if (!over.empty()) {
            return problem("placement_out_of_platen",
                           fmt::format("artwork {:.2f} x {:.2f} mm at x {:.2f}, y {:.2f} mm does "
                                       "not fit platen '{}' ({:.2f} x {:.2f} mm): {}",
                                       w_mm, h_mm, x_mm, y_mm, platen.name, platen.width_mm,
                                       platen.height_mm, over));
        }
    }

    // Snap every edge to the nearest platen pixel edge (each edge within half a pixel).
    const double ppm = dpi / kMmPerInch;
    const cv::Size platen_px(std::max(1, round_px(platen.width_mm * ppm)),
                             std::max(1, round_px(platen.height_mm * ppm)));
    if (platen_px.width > kMaxSidePx || platen_px.height > kMaxSidePx) {
        return problem("render_too_large",
                       fmt::format("platen '{}' at {} dpi is {} x {} px, above the {} px limit",
                                   platen.name, dpi, platen_px.width, platen_px.height, kMaxSidePx));
    }
    auto snap = [](double from_mm, double to_mm, double ppm_, int limit) {
        int a = round_px(from_mm * ppm_);
        int b = round_px(to_mm * ppm_);
        if (b - a < 1) b = a + 1;                      // never less than one pixel
        const int len = std::min(b - a, limit);
        a = std::clamp(a, 0, limit - len);             // rounding never pushes it off the platen
        return std::pair{a, len};
    };
    const auto [px_x, px_w] = snap(x_mm, x_mm + w_mm, ppm, platen_px.width);
    const auto [px_y, px_h] = snap(y_mm, y_mm + h_mm, ppm, platen_px.height);

    Reference ref;
    ref.box_px = BoxPx{px_x, px_y, px_w, px_h};
    ref.box_mm = BoxMm{px_x / ppm, px_y / ppm, px_w / ppm, px_h / ppm};
    ref.platen_px = platen_px;
    ref.dpi = dpi;
    ref.px_per_mm = ppm;
    ref.platen = platen;

    try {
        const cv::Size size(px_w, px_h);
        const bool src_opaque = is_opaque(artwork);
        if (size == artwork.size()) {
            ref.bgra = to_bgra8(artwork);
        } else {
            const int interpolation =
                (px_w <= artwork.cols && px_h <= artwork.rows) ? cv::INTER_AREA : cv::INTER_CUBIC;
            if (src_opaque) {
                cv::Mat r;
                cv::resize(artwork, r, size, 0, 0, interpolation);
                ref.bgra = to_bgra8(r);
            } else {
                ref.bgra = resize_premultiplied(artwork, size, interpolation);
            }
        }
        ref.opaque = src_opaque || is_opaque(ref.bgra);
    } catch (const cv::Exception& e) {
        return problem("render_failed", fmt::format("OpenCV: {}", e.what()));
    } catch (const std::bad_alloc&) {
        return problem("render_failed",
                       fmt::format("out of memory rendering {} x {} px", px_w, px_h));
    }
    return ref;
}

std::string_view to_string(PrintFormat format) {
    switch (format) {
        case PrintFormat::png: return "png";
        case PrintFormat::jpeg: return "jpeg";
        case PrintFormat::pdf: return "pdf";
    }
    return "unknown";
}

}  // namespace pressline::devices::render
