// The QA inspector: capture + reference + calibration -> verdict, reason and metrics.
//
// Pipeline (docs/qa.md has the why of each step):
//  1. rectify: the platen area around the artwork (box + margin + search slack) is warped out of
//     the capture into platen millimetres at kWorkPxPerMm (homography of the calibration);
//  2. photometry: sRGB -> linear light, / flat field, gray card -> per-channel gain and black
//     offset (exposure and white balance), -> CIELAB;
//  3. garment: the median colour around the print (not under it) vs the job's garment colour;
//  4. registration: "ink-ness" (distance from the garment colour) of the capture and of the
//     reference composited on that garment; a coarse search over translation and rotation
//     (normalised cross-correlation at 0.5 px/mm), then ECC (affine) at 1 and 2 px/mm;
//  5. measurements on the registered reference: placement (offset, rotation, scale), mean ΔE00
//     over inked pixels, local ΔE00 defects (against the reference with the global colour offset
//     removed, with a +-1 px tolerance band at edges), underbase collapse, design correlation;
//  6. decision, in order: wrong_blank, wrong_design, missing_underbase, misaligned, local defects
//     (missing_ink | smudge), color_shift.
#include <malloc.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cmath>
#include <mutex>
#include <numeric>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <opencv2/core.hpp>
#include <opencv2/core/hal/intrin.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/video/tracking.hpp>

#include "pressline/devices/qa/inspector.hpp"
#include "qa_internal.hpp"

namespace pressline::devices::qa {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr double kSearchSlackMm = 15;   // beyond the margin, so a print off by more is still found
constexpr double kRingGapMm = 8;        // the garment is measured this far from the nominal box
constexpr double kPadMm = 6;            // transparent border around the reference template
constexpr double kCoarsePxPerMm = 0.5;  // coarse translation + rotation search
constexpr float kInkClip = 100.f;       // ΔE76 from the garment at which ink-ness saturates
constexpr double kTemplateBlurMm = 0.45;  // see registration
constexpr double kDesignCorrelation = 0.75;  // below: not the reference's shapes
constexpr double kUnderbaseExplains = 0.35;
constexpr double kResidualDesign = 8.0;
constexpr double kColourAverageMm = 1.0;
constexpr double kImplausibleShift = 30.0;   // mean ΔE00 no printer fault produces on its own     // mean ΔE00 is taken on colours averaged this wide      // median ΔE00 no colour response explains  // "no underbase" model vs reference: ΔE00 ratio

double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double round_to(double v, int digits) {
    const double f = std::pow(10.0, digits);
    return std::round(v * f) / f;
}

// ---- scratch memory ---------------------------------------------------------------------------

// The inspection's big images (a few MB each, dozens per call) come from here: buffers of
// finished inspections are kept (up to kScratchKeep bytes) and handed out again. Memory fresh
// from the kernel costs a page fault per 4 KiB, which was ~15 % of an inspection's time.
// Thread-safe; never destroyed (images may be released at exit in any order).
class ScratchAllocator final : public cv::MatAllocator {
public:
    static constexpr std::size_t kMinSize = 256 * 1024;       // smaller: malloc's own reuse is fine
    static constexpr std::size_t kScratchKeep = 160u << 20;   // bytes kept between inspections

    cv::UMatData* allocate(int dims, const int* sizes, int type, void* data0, std::size_t* step,
                           cv::AccessFlag, cv::UMatUsageFlags) const override {
        std::size_t total = CV_ELEM_SIZE(type);
        for (int i = dims - 1; i >= 0; --i) {
            if (step) {
                if (data0 && step[i] != cv::Mat::AUTO_STEP) total = std::max(total, step[i]);
                else step[i] = total;
            }
            total *= static_cast<std::size_t>(sizes[i]);
        }
        auto* u = new cv::UMatData(this);
        u->size = total;
        if (data0) {
            u->data = u->origdata = static_cast<uchar*>(data0);
            u->flags |= cv::UMatData::USER_ALLOCATED;
            return u;
        }
        uchar* data = nullptr;
        std::size_t capacity = total;
        if (total >= kMinSize) {
            std::lock_guard lock(mutex_);
            // The smallest kept buffer that fits without wasting more than a third.
            auto best = free_.end();
            for (auto it = free_.begin(); it != free_.end(); ++it)
                if (it->second >= total && it->second <= total + total / 3 &&
                    (best == free_.end() || it->second < best->second))
                    best = it;
            if (best != free_.end()) {
                data = best->first, capacity = best->second;
                kept_ -= capacity;
                free_.erase(best);
            }
        }
        if (!data) data = static_cast<uchar*>(cv::fastMalloc(capacity));
        if (capacity >= kMinSize) {
            std::lock_guard lock(mutex_);
            capacity_[data] = capacity;
        }
        u->data = u->origdata = data;
        return u;
    }
    bool allocate(cv::UMatData* u, cv::AccessFlag, cv::UMatUsageFlags) const override { return u != nullptr; }
    void deallocate(cv::UMatData* u) const override {
        if (!u) return;
        if (!(u->flags & cv::UMatData::USER_ALLOCATED) && u->origdata) {
            bool kept = false;
            {
                std::lock_guard lock(mutex_);
                if (auto it = capacity_.find(u->origdata); it != capacity_.end()) {
                    const std::size_t capacity = it->second;
                    capacity_.erase(it);
                    if (kept_ + capacity <= kScratchKeep) {
                        free_.emplace_back(u->origdata, capacity);
                        kept_ += capacity;
                        kept = true;
                    }
                }
            }
            if (!kept) cv::fastFree(u->origdata);
        }
        delete u;
    }

    // Frees every kept buffer (release_scratch_memory).
    void release() const {
        std::vector<std::pair<uchar*, std::size_t>> gone;
        {
            std::lock_guard lock(mutex_);
            gone.swap(free_);
            kept_ = 0;
        }
        for (const auto& [data, capacity] : gone) cv::fastFree(data);
    }

private:
    mutable std::mutex mutex_;
    mutable std::vector<std::pair<uchar*, std::size_t>> free_;
    mutable std::unordered_map<uchar*, std::size_t> capacity_;  // every buffer of >= kMinSize out
    mutable std::size_t kept_ = 0;
};

ScratchAllocator* scratch_allocator() {
    static auto* a = new ScratchAllocator;  // never destroyed
    return a;
}
// An empty image whose data (once created, also as an OpenCV function's output) is scratch.
cv::Mat scratch() {
    cv::Mat m;
    m.allocator = scratch_allocator();
    return m;
}
cv::Mat scratch(cv::Size size, int type) {
    cv::Mat m = scratch();
    m.create(size, type);
    return m;
}
cv::Mat scratch(cv::Size size, int type, const cv::Scalar& value) {
    cv::Mat m = scratch(size, type);
    m.setTo(value);
    return m;
}

// ---- colour -----------------------------------------------------------------------------------

const cv::Mat& srgb8_to_linear_lut() {
    static const cv::Mat lut = [] {
        cv::Mat l(1, 256, CV_32F);
        for (int i = 0; i < 256; ++i) l.at<float>(i) = static_cast<float>(srgb_to_linear(i));
        return l;
    }();
    return lut;
}

cv::Mat linear_to_srgb8(const cv::Mat& lin) {
    static const std::array<std::uint8_t, 4097> table = [] {
        std::array<std::uint8_t, 4097> t{};
        for (int i = 0; i <= 4096; ++i) {
            const double v = i / 4096.0;
            const double s = v <= 0.0031308 ? 12.92 * v : 1.055 * std::pow(v, 1 / 2.4) - 0.055;
            t[static_cast<std::size_t>(i)] = cv::saturate_cast<std::uint8_t>(s * 255.0);
        }
        return t;
    }();
    cv::Mat out(lin.size(), CV_8UC3);
    cv::parallel_for_(cv::Range(0, lin.rows), [&](const cv::Range& r) {
        for (int y = r.start; y < r.end; ++y) {
            const float* s = lin.ptr<float>(y);
            auto* d = out.ptr<std::uint8_t>(y);
            for (int x = 0; x < lin.cols * 3; ++x) {
                const float v = std::clamp(s[x], 0.f, 1.f);
                d[x] = table[static_cast<std::size_t>(v * 4096.f + 0.5f)];
            }
        }
    });
    return out;
}

// CIELAB (D65) of linear-light BGR (CV_32FC3). OpenCV's COLOR_LBGR2Lab on floats calls cbrt per
// channel and is ~10x slower; here f(t) comes from a table with linear interpolation (error
// < 1e-4 in L*, far below anything QA measures).
constexpr int kLabTable = 8192;
constexpr float kLabTableMax = 1.25f;  // t = Y / Yn may exceed 1 a little (specular, gain)
const std::array<float, kLabTable + 2>& lab_f_table() {
    static const std::array<float, kLabTable + 2> t = [] {
        std::array<float, kLabTable + 2> a{};
        for (int i = 0; i < kLabTable + 2; ++i) {
            const double v = double(i) * kLabTableMax / kLabTable;
            a[static_cast<std::size_t>(i)] = float(v > 216.0 / 24389 ? std::cbrt(v) : (24389.0 / 27 * v + 16) / 116);
        }
        return a;
    }();
    return t;
}
inline float lab_f(float v) {
    const auto& t = lab_f_table();
    if (v >= kLabTableMax) return std::cbrt(v);
    const float p = std::max(v, 0.f) * (kLabTable / kLabTableMax);
    const int i = int(p);
    const float fr = p - float(i);
    return t[static_cast<std::size_t>(i)] * (1 - fr) + t[static_cast<std::size_t>(i) + 1] * fr;
}
inline cv::Vec3f lab_px(float b, float g, float r) {
    // sRGB primaries, D65 white (Xn, Yn, Zn) = (0.950456, 1, 1.088754).
    const float x = (0.412453f * r + 0.357580f * g + 0.180423f * b) / 0.950456f;
    const float y = 0.212671f * r + 0.715160f * g + 0.072169f * b;
    const float z = (0.019334f * r + 0.119193f * g + 0.950227f * b) / 1.088754f;
    const float fx = lab_f(x), fy = lab_f(y), fz = lab_f(z);
    return {116.f * fy - 16.f, 500.f * (fx - fy), 200.f * (fy - fz)};
}
cv::Mat lab_of(const cv::Mat& lin_bgr) {
    cv::Mat lab = scratch(lin_bgr.size(), CV_32FC3);
    cv::parallel_for_(cv::Range(0, lin_bgr.rows), [&](const cv::Range& r) {
        for (int y = r.start; y < r.end; ++y) {
            const auto* s = lin_bgr.ptr<cv::Vec3f>(y);
            auto* d = lab.ptr<cv::Vec3f>(y);
            for (int x = 0; x < lin_bgr.cols; ++x) d[x] = lab_px(s[x][0], s[x][1], s[x][2]);
        }
    });
    return lab;
}

// Euclidean distance (ΔE76) of every pixel from one colour, clipped, scaled to 0..1.
cv::Mat inkness(const cv::Mat& lab, const cv::Vec3f& garment) {
    cv::Mat out = scratch(lab.size(), CV_32F);
    cv::parallel_for_(cv::Range(0, lab.rows), [&](const cv::Range& r) {
        for (int y = r.start; y < r.end; ++y) {
            const float* p = lab.ptr<float>(y);
            float* d = out.ptr<float>(y);
            for (int x = 0; x < lab.cols; ++x, p += 3) {
                const float dl = p[0] - garment[0], da = p[1] - garment[1], db = p[2] - garment[2];
                d[x] = std::min(std::sqrt(dl * dl + da * da + db * db), kInkClip) / kInkClip;
            }
        }
    });
    return out;
}

cv::Vec3d linear_bgr_of_srgb(const cv::Vec3d& rgb255) {
    return {srgb_to_linear(rgb255[2]), srgb_to_linear(rgb255[1]), srgb_to_linear(rgb255[0])};
}

cv::Vec3f lab_of_bgr(const cv::Vec3d& bgr) {
    return lab_of_linear_rgb(bgr[2], bgr[1], bgr[0]);
}

json srgb_json(const cv::Vec3d& lin_bgr) {
    auto enc = [](double v) {
        v = std::clamp(v, 0.0, 1.0);
        return std::round((v <= 0.0031308 ? 12.92 * v : 1.055 * std::pow(v, 1 / 2.4) - 0.055) * 255.0);
    };
    return json::array({enc(lin_bgr[2]), enc(lin_bgr[1]), enc(lin_bgr[0])});
}

// The colour response as r, g, b rows: [d/dr, d/dg, d/db, offset] (0 = no change).
json response_json(const cv::Matx34d& m) {
    json rows = json::array();
    for (int k : {2, 1, 0})
        rows.push_back(json::array({round_to(m(k, 2), 3), round_to(m(k, 1), 3), round_to(m(k, 0), 3), round_to(m(k, 3), 4)}));
    return rows;
}

// ---- geometry ---------------------------------------------------------------------------------

cv::Matx33d affine33(const cv::Matx23d& m) {
    return {m(0, 0), m(0, 1), m(0, 2), m(1, 0), m(1, 1), m(1, 2), 0, 0, 1};
}
cv::Matx23d affine23(const cv::Matx33d& m) {
    return {m(0, 0), m(0, 1), m(0, 2), m(1, 0), m(1, 1), m(1, 2)};
}
// Pixel grid scaling with OpenCV's resize convention: x' = (x + 0.5) * s - 0.5.
cv::Matx33d grid_scale(double sx, double sy) {
    return {sx, 0, 0.5 * sx - 0.5, 0, sy, 0.5 * sy - 0.5, 0, 0, 1};
}

// Pixels per mm of the capture around a platen point (square root of the Jacobian's determinant).
double px_per_mm_at(const cv::Matx33d& H, cv::Point2d mm) {
    auto map = [&](double x, double y) {
        cv::Vec3d v = H * cv::Vec3d(x, y, 1);
        return cv::Point2d(v[0] / v[2], v[1] / v[2]);
    };
    const cv::Point2d o = map(mm.x, mm.y), ex = map(mm.x + 1, mm.y), ey = map(mm.x, mm.y + 1);
    const double det = (ex.x - o.x) * (ey.y - o.y) - (ex.y - o.y) * (ey.x - o.x);
    return std::sqrt(std::abs(det));
}

RectMm grow(const RectMm& r, double by) {
    return {r.x - by, r.y - by, r.width + 2 * by, r.height + 2 * by};
}

json rect_json(const RectMm& r) {
    return json::array({round_to(r.x, 2), round_to(r.y, 2), round_to(r.width, 2), round_to(r.height, 2)});
}

template <class T>
T median_of(std::vector<T> v) {
    if (v.empty()) return T{};
    auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
    std::nth_element(v.begin(), mid, v.end());
    return *mid;
}

template <class T>
T quantile_of(std::vector<T> v, double q) {
    if (v.empty()) return T{};
    auto k = v.begin() + static_cast<std::ptrdiff_t>(std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size()))));
    std::nth_element(v.begin(), k, v.end());
    return *k;
}

// Values gathered from rows 0, step, 2 step... of `rows` in parallel: f(y, out) appends row y's
// values. The result is in row order, the same vector a serial loop gives.
template <class T, class F>
std::vector<T> gather_rows(int rows, int step, F f) {
    const int n = (rows + step - 1) / step;
    const int chunks = std::max(1, std::min(n, 32));
    std::vector<std::vector<T>> parts(static_cast<std::size_t>(chunks));
    cv::parallel_for_(cv::Range(0, chunks), [&](const cv::Range& r) {
        for (int c = r.start; c < r.end; ++c) {
            auto& out = parts[static_cast<std::size_t>(c)];
            for (int i = int(std::int64_t(n) * c / chunks); i < int(std::int64_t(n) * (c + 1) / chunks); ++i) f(i * step, out);
        }
    });
    std::size_t total = 0;
    for (const auto& p : parts) total += p.size();
    std::vector<T> all;
    all.reserve(total);
    for (const auto& p : parts) all.insert(all.end(), p.begin(), p.end());
    return all;
}

// cv::GaussianBlur(src, {0, 0}, sigma) of a CV_32FC3 image on the rows where need[y] only (the
// others stay 0): the same kernel and border (reflect 101), the vertical pass first and only
// for those rows. For measurements sampled on every 2nd or 3rd row.
cv::Mat gaussian_rows(const cv::Mat& src, double sigma, const std::vector<std::uint8_t>& need) {
    const int ksize = cvRound(sigma * 4 * 2 + 1) | 1, r = ksize / 2;
    const cv::Mat kmat = cv::getGaussianKernel(ksize, sigma, CV_32F);
    const float* k = kmat.ptr<float>();
    const int rows = src.rows, cols = src.cols;
    auto reflect = [](int i, int n) {
        if (n == 1) return 0;
        while (i < 0 || i >= n) i = i < 0 ? -i : 2 * n - 2 - i;
        return i;
    };
    cv::Mat dst = scratch(src.size(), CV_32FC3, cv::Scalar::all(0));
    auto axpy = [](float* d, const float* s, float a, int n) {  // d[j] += a * s[j]
        int j = 0;
#if CV_SIMD
        const cv::v_float32 va = cv::vx_setall_f32(a);
        for (; j <= n - cv::v_float32::nlanes; j += cv::v_float32::nlanes)
            cv::v_store(d + j, cv::v_fma(cv::vx_load(s + j), va, cv::vx_load(d + j)));
#endif
        for (; j < n; ++j) d[j] += a * s[j];
    };
    cv::parallel_for_(cv::Range(0, rows), [&](const cv::Range& range) {
        std::vector<float> col(static_cast<std::size_t>(cols + 2 * r) * 3);
        for (int y = range.start; y < range.end; ++y) {
            if (!need[static_cast<std::size_t>(y)]) continue;
            float* c = col.data() + 3 * r;
            std::fill(col.begin(), col.end(), 0.f);
            for (int i = 0; i < ksize; ++i) axpy(c, src.ptr<float>(reflect(y + i - r, rows)), k[i], 3 * cols);
            for (int x = 1; x <= r; ++x)
                for (int ch = 0; ch < 3; ++ch) {
                    c[3 * -x + ch] = c[3 * reflect(-x, cols) + ch];
                    c[3 * (cols - 1 + x) + ch] = c[3 * reflect(cols - 1 + x, cols) + ch];
                }
            float* d = dst.ptr<float>(y);
            for (int i = 0; i < ksize; ++i) axpy(d, c + 3 * (i - r), k[i], 3 * cols);
        }
    });
    return dst;
}

// Median per channel of the CV_32FC3 pixels where mask != 0 (every `step`th pixel).
cv::Vec3d median_color(const cv::Mat& img, const cv::Mat& mask, int step = 1) {
    std::array<std::vector<float>, 3> ch;
    for (int y = 0; y < img.rows; y += step) {
        const auto* p = img.ptr<cv::Vec3f>(y);
        const auto* m = mask.ptr<std::uint8_t>(y);
        for (int x = 0; x < img.cols; x += step)
            if (m[x])
                for (int k = 0; k < 3; ++k) ch[static_cast<std::size_t>(k)].push_back(p[x][k]);
    }
    return {median_of(ch[0]), median_of(ch[1]), median_of(ch[2])};
}

// Area averaging along one axis when shrinking n source samples to m (OpenCV's INTER_AREA
// table, computeResizeAreaTab): output i takes taps[first[i] .. first[i + 1]).
struct AreaAxis {
    std::vector<int> first, src;
    std::vector<float> weight;
};
AreaAxis area_axis(int n, int m) {
    AreaAxis t;
    const double scale = 1.0 / (double(m) / n);
    for (int i = 0; i < m; ++i) {
        t.first.push_back(int(t.src.size()));
        const double f1 = i * scale, f2 = f1 + scale;
        const double cell = std::min(scale, n - f1);
        int s2 = std::min(cvFloor(f2), n - 1);
        const int s1 = std::min(cvCeil(f1), s2);
        if (s1 - f1 > 1e-3) t.src.push_back(s1 - 1), t.weight.push_back(float((s1 - f1) / cell));
        for (int s = s1; s < s2; ++s) t.src.push_back(s), t.weight.push_back(float(1.0 / cell));
        if (f2 - s2 > 1e-3) t.src.push_back(s2), t.weight.push_back(float(std::min(std::min(f2 - s2, 1.), cell) / cell));
    }
    t.first.push_back(int(t.src.size()));
    return t;
}

// A BGRA 8-bit image premultiplied by its alpha and shrunk by area averaging, in one pass:
// CV_32FC4, premultiplied B, G, R and alpha in 0..255.
cv::Mat shrink_premultiplied(const cv::Mat& bgra, cv::Size size) {
    const AreaAxis ax = area_axis(bgra.cols, size.width), ay = area_axis(bgra.rows, size.height);
    cv::Mat out = scratch(size, CV_32FC4);
    cv::parallel_for_(cv::Range(0, size.height), [&](const cv::Range& r) {
        const auto n = static_cast<std::size_t>(size.width);
        std::vector<cv::Vec4f> row(n), acc(n);
        int row_y = -1;  // the source row `row` holds (consecutive outputs share one)
        for (int y = r.start; y < r.end; ++y) {
            std::fill(acc.begin(), acc.end(), cv::Vec4f::all(0));
            for (int j = ay.first[static_cast<std::size_t>(y)]; j < ay.first[static_cast<std::size_t>(y) + 1]; ++j) {
                const int sy = ay.src[static_cast<std::size_t>(j)];
                if (sy != row_y) {
                    const auto* p = bgra.ptr<cv::Vec4b>(sy);
                    for (std::size_t x = 0; x < n; ++x) {
                        cv::Vec4f v = cv::Vec4f::all(0);
                        for (int i = ax.first[x]; i < ax.first[x + 1]; ++i) {
                            const cv::Vec4b& q = p[ax.src[static_cast<std::size_t>(i)]];
                            if (q[3] == 0) continue;
                            const float wa = ax.weight[static_cast<std::size_t>(i)];
                            const float f = q[3] == 255 ? wa : wa * q[3] * (1.f / 255);
                            v[0] += f * q[0], v[1] += f * q[1], v[2] += f * q[2], v[3] += wa * q[3];
                        }
                        row[x] = v;
                    }
                    row_y = sy;
                }
                const float wy = ay.weight[static_cast<std::size_t>(j)];
                for (std::size_t x = 0; x < n; ++x) acc[x] += wy * row[x];
            }
            std::copy(acc.begin(), acc.end(), out.ptr<cv::Vec4f>(y));
        }
    });
    return out;
}

// ---- the inspection ---------------------------------------------------------------------------

struct Photometry {
    bool gray_card_used = false;
    cv::Vec3d gain{1, 1, 1}, offset{0, 0, 0};  // measured = gain * true + offset (linear, BGR)
    double residual_de00 = 0;
    json patches = json::array();
};

// Samples a platen rectangle (shrunk to its inner part) out of the capture as linear light,
// flat-field corrected; the median per channel. nullopt when the patch leaves the image.
std::optional<cv::Vec3d> sample_patch(const cv::Mat& capture, const Calibration& cal, const RectMm& r) {
    const RectMm inner{r.x + 0.2 * r.width, r.y + 0.2 * r.height, 0.6 * r.width, 0.6 * r.height};
    for (auto [x, y] : {std::pair{inner.x, inner.y}, {inner.x + inner.width, inner.y},
                        {inner.x, inner.y + inner.height}, {inner.x + inner.width, inner.y + inner.height}}) {
        cv::Vec3d v = cal.H * cv::Vec3d(x, y, 1);
        const double px = v[0] / v[2], py = v[1] / v[2];
        if (!(px >= 0 && py >= 0 && px <= capture.cols - 1 && py <= capture.rows - 1)) return std::nullopt;
    }
    constexpr int n = 24;
    const cv::Matx33d A{inner.width / n, 0, inner.x + 0.5 * inner.width / n,
                        0, inner.height / n, inner.y + 0.5 * inner.height / n, 0, 0, 1};
    cv::Mat s8, lin;
    cv::warpPerspective(capture, s8, cal.H * A, {n, n}, cv::INTER_LINEAR | cv::WARP_INVERSE_MAP);
    cv::LUT(s8, srgb8_to_linear_lut(), lin);
    if (!cal.flatfield.empty()) {
        const cv::Matx33d S = grid_scale(double(cal.flatfield.cols) / cal.image_size.width,
                                         double(cal.flatfield.rows) / cal.image_size.height);
        cv::Mat g;
        cv::warpPerspective(cal.flatfield, g, S * cal.H * A, {n, n}, cv::INTER_LINEAR | cv::WARP_INVERSE_MAP,
                            cv::BORDER_REPLICATE);
        cv::Mat g3;
        cv::merge(std::vector<cv::Mat>{g, g, g}, g3);
        cv::divide(lin, g3, lin);
    }
    cv::Mat all(lin.size(), CV_8U, cv::Scalar(255));
    return median_color(lin, all);
}

Photometry gray_card(const cv::Mat& capture, const Calibration& cal) {
    Photometry ph;
    struct Point {
        cv::Vec3d truth, measured;
    };
    std::vector<Point> pts;
    for (const auto& p : cal.gray_patches) {
        auto m = sample_patch(capture, cal, p.rect_mm);
        json pj{{"name", p.name}, {"visible", m.has_value()}};
        if (m) {
            pts.push_back({linear_bgr_of_srgb(p.srgb), *m});
            pj["measured_srgb"] = srgb_json(*m);
        }
        ph.patches.push_back(std::move(pj));
    }
    if (pts.empty()) return ph;
    for (int k = 0; k < 3; ++k) {
        double a = 1, b = 0;
        if (pts.size() >= 2) {
            // Weighted by relative error: in linear light the black patch is ~0.01, and an
            // unweighted fit leaves it 25 % (ΔE00 ~5) off while fitting white to 0.1 %.
            double sw = 0, st = 0, sm = 0, stt = 0, stm = 0;
            for (const auto& p : pts) {
                const double wgt = 1.0 / ((p.truth[k] + 0.01) * (p.truth[k] + 0.01));
                sw += wgt, st += wgt * p.truth[k], sm += wgt * p.measured[k];
                stt += wgt * p.truth[k] * p.truth[k], stm += wgt * p.truth[k] * p.measured[k];
            }
            const double den = sw * stt - st * st;
            if (std::abs(den) > 1e-12 * sw * sw) {
                a = (sw * stm - st * sm) / den;
                b = (sm - a * st) / sw;
            }
        }
        if (pts.size() < 2 || !(a > 0.05) || std::abs(b) > 0.2) {
            // One patch (or a fit that makes no sense): gain only, from the brightest patch.
            const auto& brightest = *std::max_element(pts.begin(), pts.end(), [&](const Point& x, const Point& y) {
                return x.truth[k] < y.truth[k];
            });
            a = brightest.measured[k] / std::max(brightest.truth[k], 1e-4);
            b = 0;
            if (!(a > 0.05)) a = 1;
        }
        ph.gain[k] = a;
        ph.offset[k] = b;
    }
    ph.gray_card_used = true;
    std::size_t vi = 0;
    for (auto& pj : ph.patches) {
        if (!pj["visible"].get<bool>()) continue;
        const auto& p = pts[vi++];
        cv::Vec3d corr;
        for (int k = 0; k < 3; ++k) corr[k] = (p.measured[k] - ph.offset[k]) / ph.gain[k];
        const cv::Vec3f a = lab_of_bgr(corr), b = lab_of_bgr(p.truth);
        const double de = ciede2000(a[0], a[1], a[2], b[0], b[1], b[2]);
        pj["residual_de00"] = round_to(de, 2);
        ph.residual_de00 = std::max(ph.residual_de00, de);
    }
    return ph;
}

struct Region {
    Defect defect;
    double inked_fraction = 0;
    double median_t = 1;
    double off_line = 0;
};

}  // namespace

double srgb_to_linear(double v255) {
    const double v = v255 / 255.0;
    return v <= 0.04045 ? v / 12.92 : std::pow((v + 0.055) / 1.055, 2.4);
}

cv::Vec3f lab_of_linear_rgb(double r, double g, double b) {
    return lab_px(float(b), float(g), float(r));
}

float ciede2000(float L1, float a1, float b1, float L2, float a2, float b2) {
    constexpr float kPi = 3.14159265358979f;
    constexpr float kDeg = kPi / 180.f;
    const float C1 = std::sqrt(a1 * a1 + b1 * b1), C2 = std::sqrt(a2 * a2 + b2 * b2);
    const float Cb = 0.5f * (C1 + C2);
    const float Cb2 = Cb * Cb, Cb7 = Cb2 * Cb2 * Cb2 * Cb;
    const float G = 0.5f * (1.f - std::sqrt(Cb7 / (Cb7 + 6103515625.f)));  // 25^7
    const float a1p = (1.f + G) * a1, a2p = (1.f + G) * a2;
    const float C1p = std::sqrt(a1p * a1p + b1 * b1), C2p = std::sqrt(a2p * a2p + b2 * b2);
    auto hue = [&](float b, float ap) {
        if (b == 0 && ap == 0) return 0.f;
        float h = std::atan2(b, ap);
        if (h < 0) h += 2 * kPi;
        return h;
    };
    const float h1p = hue(b1, a1p), h2p = hue(b2, a2p);
    const float dLp = L2 - L1, dCp = C2p - C1p;
    float dhp = 0;
    if (C1p * C2p != 0) {
        dhp = h2p - h1p;
        if (dhp > kPi) dhp -= 2 * kPi;
        else if (dhp < -kPi) dhp += 2 * kPi;
    }
    const float dHp = 2.f * std::sqrt(C1p * C2p) * std::sin(dhp / 2.f);
    const float Lbp = 0.5f * (L1 + L2), Cbp = 0.5f * (C1p + C2p);
    float hbp = h1p + h2p;
    if (C1p * C2p != 0) {
        if (std::abs(h1p - h2p) > kPi) hbp += (h1p + h2p < 2 * kPi) ? 2 * kPi : -2 * kPi;
        hbp *= 0.5f;
    }
    const float T = 1.f - 0.17f * std::cos(hbp - 30.f * kDeg) + 0.24f * std::cos(2.f * hbp) +
                    0.32f * std::cos(3.f * hbp + 6.f * kDeg) - 0.20f * std::cos(4.f * hbp - 63.f * kDeg);
    const float q = (hbp / kDeg - 275.f) / 25.f;
    const float dTheta = 30.f * kDeg * std::exp(-q * q);
    const float Cbp2 = Cbp * Cbp, Cbp7 = Cbp2 * Cbp2 * Cbp2 * Cbp;
    const float RC = 2.f * std::sqrt(Cbp7 / (Cbp7 + 6103515625.f));
    const float Lm = (Lbp - 50.f) * (Lbp - 50.f);
    const float SL = 1.f + 0.015f * Lm / std::sqrt(20.f + Lm);
    const float SC = 1.f + 0.045f * Cbp, SH = 1.f + 0.015f * Cbp * T;
    const float RT = -std::sin(2.f * dTheta) * RC;
    const float l = dLp / SL, c = dCp / SC, h = dHp / SH;
    return std::sqrt(std::max(0.f, l * l + c * c + h * h + RT * c * h));
}

int capture_reduction(const Calibration& cal, double work_px_per_mm) {
    // Around the middle of a 16x20 in platen; the centre of the calibrated area is as good.
    const double s = px_per_mm_at(cal.H, {203.2, 254});
    int r = 1;
    while (r < 8 && s / (2 * r) >= 2 * work_px_per_mm) r *= 2;
    return r;
}

std::optional<Problem> fit_calibration_to(Calibration& cal, cv::Size actual, int reduce) {
    if (actual == cal.image_size && reduce == 1) return std::nullopt;
    const double full_w = double(actual.width) * reduce, full_h = double(actual.height) * reduce;
    const double cal_aspect = double(cal.image_size.width) / cal.image_size.height;
    const double aspect = full_w / full_h;
    if (std::abs(aspect / cal_aspect - 1) > 0.01 + 2.0 * reduce / std::min(full_w, full_h))
        return Problem{"bad_calibration", "calibration.image_size_px",
                       fmt::format("the capture is {}x{} px but the calibration was made for {}x{} px "
                                   "(another aspect ratio: another camera or setting?)",
                                   actual.width * reduce, actual.height * reduce, cal.image_size.width,
                                   cal.image_size.height)};
    const cv::Matx33d S = grid_scale(double(actual.width) / cal.image_size.width,
                                     double(actual.height) / cal.image_size.height);
    cal.H = S * cal.H;
    cal.image_size = actual;
    return std::nullopt;
}

Result<Verdict> inspect(const Case& in, const Tolerances& tol, Evidence* evidence) try {
    const auto t_start = Clock::now();
    json timing;
    auto lap = [&, t = Clock::now()](const char* what) mutable {
        timing[what] = round_to(ms_since(t), 2);
        t = Clock::now();
    };

    // ---- inputs -------------------------------------------------------------------------------
    if (in.capture.empty()) return Problem{"bad_case", "capture", "the capture is empty"};
    if (in.reference.empty()) return Problem{"bad_case", "reference", "the reference is empty"};
    if (!(in.placement_mm.width > 0 && in.placement_mm.height > 0))
        return Problem{"bad_case", "placement_mm", "width and height must be positive"};
    cv::Mat capture = in.capture;
    if (capture.depth() != CV_8U) capture.convertTo(capture, CV_8U, capture.depth() == CV_16U ? 1.0 / 257 : 255.0);
    if (capture.channels() == 1) cv::cvtColor(capture, capture, cv::COLOR_GRAY2BGR);
    else if (capture.channels() == 4) cv::cvtColor(capture, capture, cv::COLOR_BGRA2BGR);
    cv::Mat reference = in.reference;
    if (reference.type() != CV_8UC4) return Problem{"bad_case", "reference", "the reference must be 8-bit BGRA"};

    Calibration cal = in.calibration;
    if (capture.size() != cal.image_size)
        if (auto p = fit_calibration_to(cal, capture.size(), 1)) return *p;
    // Much sharper than needed (a 12 Mpx still of a whole platen): area-average down first, so
    // the bilinear warp below does not alias the fabric's texture into noise.
    {
        const int r = capture_reduction(cal, kWorkPxPerMm);
        if (r > 1) {
            cv::Mat small;
            cv::resize(capture, small, cv::Size((capture.cols + r - 1) / r, (capture.rows + r - 1) / r), 0, 0, cv::INTER_AREA);
            capture = small;
            if (auto p = fit_calibration_to(cal, capture.size(), r)) return *p;
        }
    }
    const RectMm box = in.placement_mm;
    const cv::Point2d box_centre{box.x + box.width / 2, box.y + box.height / 2};
    const double capture_ppm = px_per_mm_at(cal.H, box_centre);
    if (!std::isfinite(capture_ppm) || capture_ppm < 0.05 || !(std::abs(cv::determinant(cal.H)) > 1e-12))
        return Problem{"bad_calibration", "calibration.H_platen_mm_to_image_px",
                       "does not map the artwork's box into the image (singular or degenerate homography)"};
    const double w = std::clamp(capture_ppm, 0.5, kWorkPxPerMm);  // working px per mm
    lap("load");

    // ---- 1. rectify ---------------------------------------------------------------------------
    const RectMm area = grow(box, tol.margin_mm + kSearchSlackMm);
    const cv::Size wsize(static_cast<int>(std::ceil(area.width * w)), static_cast<int>(std::ceil(area.height * w)));
    // work px (u, v) -> platen mm: the centre of pixel u is area.x + (u + 0.5) / w.
    const cv::Matx33d A_work{1 / w, 0, area.x + 0.5 / w, 0, 1 / w, area.y + 0.5 / w, 0, 0, 1};
    const cv::Matx33d M = cal.H * A_work;
    cv::Mat rect8 = scratch(), valid;
    cv::warpPerspective(capture, rect8, M, wsize, cv::INTER_LINEAR | cv::WARP_INVERSE_MAP, cv::BORDER_CONSTANT);
    {
        // Which work pixels the camera saw: a 1/8 size mask is enough (the border of the view is
        // known to a few capture pixels; two more work pixels are given up to be safe).
        const cv::Size ms((capture.cols + 7) / 8, (capture.rows + 7) / 8);
        cv::Mat ones(ms, CV_8U, cv::Scalar(255));
        const cv::Matx33d S = grid_scale(double(ms.width) / capture.cols, double(ms.height) / capture.rows);
        cv::warpPerspective(ones, valid, S * M, wsize, cv::INTER_NEAREST | cv::WARP_INVERSE_MAP, cv::BORDER_CONSTANT);
        cv::erode(valid, valid, cv::Mat(), {-1, -1}, 3);
    }
    const double visible = cv::countNonZero(valid) / double(wsize.area());
    if (visible < 0.3)
        return Problem{"bad_calibration", "calibration.H_platen_mm_to_image_px",
                       fmt::format("the artwork's area is {:.0f} % inside the capture: calibration or "
                                   "placement does not match the camera view", visible * 100)};
    lap("rectify");

    // ---- 2. photometry ------------------------------------------------------------------------
    // One pass over the rectified area only: sRGB -> linear, / flat field, gray card, >= 0.
    const Photometry ph = gray_card(capture, cal);
    cv::Mat flat_gain = scratch();  // the flat field's gain at every work pixel (CV_32F), or empty
    if (!cal.flatfield.empty()) {
        const cv::Matx33d S = grid_scale(double(cal.flatfield.cols) / cal.image_size.width,
                                         double(cal.flatfield.rows) / cal.image_size.height);
        cv::warpPerspective(cal.flatfield, flat_gain, S * M, wsize, cv::INTER_LINEAR | cv::WARP_INVERSE_MAP,
                            cv::BORDER_REPLICATE);
    }
    cv::Mat lin = scratch(wsize, CV_32FC3);
    {
        const float* lut = srgb8_to_linear_lut().ptr<float>();
        const bool card = ph.gray_card_used;
        const float off[3] = {float(ph.offset[0]), float(ph.offset[1]), float(ph.offset[2])};
        const double inv_gain[3] = {1 / ph.gain[0], 1 / ph.gain[1], 1 / ph.gain[2]};
        cv::parallel_for_(cv::Range(0, wsize.height), [&](const cv::Range& r) {
            for (int y = r.start; y < r.end; ++y) {
                const auto* s = rect8.ptr<std::uint8_t>(y);
                const float* g = flat_gain.empty() ? nullptr : flat_gain.ptr<float>(y);
                float* d = lin.ptr<float>(y);
                for (int x = 0; x < wsize.width; ++x) {
                    for (int k = 0; k < 3; ++k) {
                        float v = lut[s[3 * x + k]];
                        if (g) v = v / g[x];
                        if (card) v = float(double(v - off[k]) * inv_gain[k]);  // as cv::subtract, cv::multiply
                        d[3 * x + k] = std::max(v, 0.f);
                    }
                }
            }
        });
    }
    cv::Mat lin_s = scratch();
    cv::GaussianBlur(lin, lin_s, {0, 0}, 0.35 * w);
    const cv::Mat lab_c = lab_of(lin_s);
    lap("photometry");

    // ---- 3. garment ---------------------------------------------------------------------------
    cv::Mat ring = valid.clone();
    {
        const RectMm gap = grow(box, kRingGapMm);
        cv::Rect r(cv::Point(int(std::floor((gap.x - area.x) * w)), int(std::floor((gap.y - area.y) * w))),
                   cv::Point(int(std::ceil((gap.x + gap.width - area.x) * w)), int(std::ceil((gap.y + gap.height - area.y) * w))));
        ring(r & cv::Rect({}, wsize)).setTo(0);
    }
    const int ring_px = cv::countNonZero(ring);
    const cv::Vec3d garment_lin = ring_px > 50 ? median_color(lin_s, ring, 2) : linear_bgr_of_srgb(in.garment_srgb_nominal);
    const cv::Vec3f garment_lab = lab_of_bgr(garment_lin);
    const cv::Vec3f nominal_lab = lab_of_bgr(linear_bgr_of_srgb(in.garment_srgb_nominal));
    const double blank_de00 = ciede2000(garment_lab[0], garment_lab[1], garment_lab[2], nominal_lab[0], nominal_lab[1], nominal_lab[2]);
    // Ring texture: how much the bare garment varies (fabric, noise), for confidence.
    lap("garment");

    // ---- 4. registration ----------------------------------------------------------------------
    // Reference, premultiplied linear light, at the working resolution, padded.
    cv::Mat ref_pm = scratch();  // CV_32FC4: B*a, G*a, R*a, a
    {
        // Shrink first with premultiplied alpha (transparent pixels' colour must not bleed into
        // the edges), then to linear light: a 300 dpi reference is ~12 Mpx. `pm` holds
        // premultiplied sRGB and alpha, 0..255.
        const cv::Size small(std::max(1, int(std::lround(box.width * w))), std::max(1, int(std::lround(box.height * w))));
        cv::Mat pm;  // CV_32FC4
        if (small.width < reference.cols && small.height < reference.rows) {
            // Premultiplied and area-averaged in one pass, in float (OpenCV's INTER_AREA weights):
            // no full-size premultiplied copy, no rounding to 8 bits in between.
            pm = shrink_premultiplied(reference, small);
        } else {
            cv::Mat pm8(reference.size(), CV_8UC4), s8;
            cv::parallel_for_(cv::Range(0, reference.rows), [&](const cv::Range& r) {
                for (int y = r.start; y < r.end; ++y) {
                    const auto* p = reference.ptr<cv::Vec4b>(y);
                    auto* q = pm8.ptr<cv::Vec4b>(y);
                    for (int x = 0; x < reference.cols; ++x) {
                        const unsigned a = p[x][3];
                        for (int k = 0; k < 3; ++k) q[x][k] = std::uint8_t((p[x][k] * a + 127) / 255);
                        q[x][3] = std::uint8_t(a);
                    }
                }
            });
            cv::resize(pm8, s8, small, 0, 0, small.width < reference.cols ? cv::INTER_AREA : cv::INTER_LINEAR);
            s8.convertTo(pm, CV_32F);
        }
        ref_pm.create(small, CV_32FC4);
        const float* lut = srgb8_to_linear_lut().ptr<float>();
        cv::parallel_for_(cv::Range(0, small.height), [&](const cv::Range& r) {
            for (int y = r.start; y < r.end; ++y) {
                const auto* p = pm.ptr<cv::Vec4f>(y);
                auto* d = ref_pm.ptr<cv::Vec4f>(y);
                for (int x = 0; x < small.width; ++x) {
                    const float a = p[x][3] / 255.f;
                    d[x][3] = a;
                    for (int k = 0; k < 3; ++k) {
                        if (!(p[x][3] > 0)) {
                            d[x][k] = 0;
                            continue;
                        }
                        // un-premultiply in sRGB, to linear, premultiply in linear
                        const float v = std::min(255.f, p[x][k] * 255.f / p[x][3]);
                        const int i = std::min(254, int(v));
                        const float fr = v - float(i);
                        d[x][k] = a * (lut[i] * (1 - fr) + lut[i + 1] * fr);
                    }
                }
            }
        });
    }
    lap("reference");
    const int pad = int(std::lround(kPadMm * w));
    cv::copyMakeBorder(ref_pm, ref_pm, pad, pad, pad, pad, cv::BORDER_CONSTANT, cv::Scalar::all(0));
    const double sppm_x = (ref_pm.cols - 2 * pad) / box.width, sppm_y = (ref_pm.rows - 2 * pad) / box.height;
    // box mm -> padded reference px, and work px -> platen mm.
    const cv::Matx33d P_ref{sppm_x, 0, -box.x * sppm_x + pad - 0.5, 0, sppm_y, -box.y * sppm_y + pad - 0.5, 0, 0, 1};
    const cv::Matx33d W0 = A_work.inv() * P_ref.inv();  // nominal: padded reference px -> work px

    auto composite = [&](const cv::Mat& pm) {  // premultiplied BGRA -> linear BGR on the garment
        cv::Mat out = scratch(pm.size(), CV_32FC3);
        const cv::Vec3f g{float(garment_lin[0]), float(garment_lin[1]), float(garment_lin[2])};
        cv::parallel_for_(cv::Range(0, pm.rows), [&](const cv::Range& r) {
            for (int y = r.start; y < r.end; ++y) {
                const auto* p = pm.ptr<cv::Vec4f>(y);
                auto* o = out.ptr<cv::Vec3f>(y);
                for (int x = 0; x < pm.cols; ++x) {
                    const float inv = 1.f - p[x][3];
                    o[x] = {p[x][0] + inv * g[0], p[x][1] + inv * g[1], p[x][2] + inv * g[2]};
                }
            }
        });
        return out;
    };
    // The template gets the blur the capture has (optics ~0.25 mm + our 0.35 mm smoothing):
    // ink-ness is non-linear (saturating), so unequal blur would shift edges and bias the scale.
    cv::Mat ref_comp = composite(ref_pm);
    cv::GaussianBlur(ref_comp, ref_comp, {0, 0}, kTemplateBlurMm * w);
    const cv::Mat ink_ref = inkness(lab_of(ref_comp), garment_lab);
    cv::Mat ink_cap = inkness(lab_c, garment_lab);
    ink_cap.setTo(0, valid == 0);
    lap("inkness");

    // Coarse: translation by normalised cross-correlation, over a few rotations.
    cv::Matx33d W = W0;
    double coarse_score = -1, coarse_angle = 0;
    {
        const double k = w / kCoarsePxPerMm;
        cv::Mat t_s, i_s;
        cv::resize(ink_ref, t_s, {}, 1 / k, 1 / k, cv::INTER_AREA);
        cv::resize(ink_cap, i_s, {}, 1 / k, 1 / k, cv::INTER_AREA);
        if (t_s.cols < i_s.cols && t_s.rows < i_s.rows) {
            const cv::Point2f c((t_s.cols - 1) / 2.f, (t_s.rows - 1) / 2.f);
            cv::Matx23d best_rot = cv::Matx23d::eye();
            cv::Point best_loc;
            for (double angle : {0.0, -4.0, 4.0, -8.0, 8.0}) {
                cv::Mat rot_m = cv::getRotationMatrix2D(c, angle, 1.0), rotated, score;
                cv::warpAffine(t_s, rotated, rot_m, t_s.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT);
                cv::matchTemplate(i_s, rotated, score, cv::TM_CCOEFF_NORMED);
                double mx;
                cv::Point loc;
                cv::minMaxLoc(score, nullptr, &mx, nullptr, &loc);
                if (mx > coarse_score + 0.01) {  // prefer the smaller angle on a near tie
                    coarse_score = mx, coarse_angle = angle, best_loc = loc;
                    best_rot = cv::Matx23d(rot_m);
                }
            }
            cv::Matx33d Ws = affine33(best_rot);
            Ws(0, 2) += best_loc.x;
            Ws(1, 2) += best_loc.y;
            const cv::Matx33d Sk = grid_scale(1 / k, 1 / k);
            W = Sk.inv() * Ws * Sk;
        }
    }
    lap("register_coarse");

    const cv::Matx33d W_coarse = W;
    // Fine: ECC, affine, at half the working resolution (sub-pixel there is ~0.1 mm).
    double ecc = 0;
    bool ecc_ok = false;
    for (double level : {0.5}) {
        cv::Mat t, i;
        if (level < 1) {
            cv::resize(ink_ref, t, {}, level, level, cv::INTER_AREA);
            cv::resize(ink_cap, i, {}, level, level, cv::INTER_AREA);
        } else {
            t = ink_ref, i = ink_cap;
        }
        const cv::Matx33d S = grid_scale(level, level);
        cv::Mat Wl(affine23(S * W * S.inv()));
        Wl.convertTo(Wl, CV_32F);
        try {
            ecc = cv::findTransformECC(t, i, Wl, cv::MOTION_AFFINE,
                                       cv::TermCriteria(cv::TermCriteria::COUNT | cv::TermCriteria::EPS, 50, 1e-5),
                                       cv::noArray(), 5);
            cv::Mat wd;
            Wl.convertTo(wd, CV_64F);
            W = S.inv() * affine33(cv::Matx23d(wd.ptr<double>())) * S;
            ecc_ok = true;
        } catch (const cv::Exception&) {
            ecc_ok = false;  // uncorrelated (wrong design, nothing printed): keep the coarse result
        }
    }
    // ECC can run off on a print that barely resembles its reference (underbase missing on a
    // dark garment, the wrong design): of nominal, coarse and fine, keep the transform under
    // which the ink maps correlate best (at 1 px/mm).
    double reg_corr = 0;
    std::string reg_from = "ecc";
    {
        cv::Mat i_h, t_h, m_h;
        cv::resize(ink_cap, i_h, {}, 0.5, 0.5, cv::INTER_AREA);
        cv::resize(ink_ref, t_h, {}, 0.5, 0.5, cv::INTER_AREA);
        cv::resize(valid, m_h, i_h.size(), 0, 0, cv::INTER_NEAREST);
        const cv::Matx33d S = grid_scale(0.5, 0.5);
        auto corr_at = [&](const cv::Matx33d& Wc) {
            cv::Mat warped;
            cv::warpAffine(t_h, warped, affine23(S * Wc * S.inv()), i_h.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT, 0);
            cv::Scalar m1, s1, m2, s2;
            cv::meanStdDev(i_h, m1, s1, m_h);
            cv::meanStdDev(warped, m2, s2, m_h);
            if (s1[0] < 1e-6 || s2[0] < 1e-6) return -1.0;
            cv::Mat a, b;
            i_h.convertTo(a, CV_32F, 1, -m1[0]);
            warped.convertTo(b, CV_32F, 1, -m2[0]);
            cv::Mat prod = a.mul(b);
            return cv::mean(prod, m_h)[0] / (s1[0] * s2[0]);
        };
        // A printer does not turn a print by more than ~12 degrees or scale it by 20 %: such a
        // fit is ECC chasing the wrong thing.
        auto plausible = [&](const cv::Matx33d& Wc) {
            const cv::Matx33d Tc = A_work * Wc * P_ref;
            const double rot = std::abs(std::atan2(Tc(1, 0) - Tc(0, 1), Tc(0, 0) + Tc(1, 1))) * 180 / CV_PI;
            const double sc = std::sqrt(std::abs(Tc(0, 0) * Tc(1, 1) - Tc(0, 1) * Tc(1, 0)));
            return rot <= 12 && std::abs(sc - 1) <= 0.2;
        };
        reg_corr = ecc_ok && plausible(W) ? corr_at(W) : -2;
        for (const auto& [cand, name] : {std::pair{W_coarse, "coarse"}, std::pair{W0, "nominal"}}) {
            const double c = corr_at(cand);
            if (c > reg_corr + 0.02) reg_corr = c, W = cand, reg_from = name;
        }
    }
    lap("register_fine");

    // Placement: platen mm of the box -> platen mm where it was printed.
    const cv::Matx33d T = A_work * W * P_ref;
    const cv::Vec3d cc = T * cv::Vec3d(box_centre.x, box_centre.y, 1);
    const cv::Point2d offset{cc[0] - box_centre.x, cc[1] - box_centre.y};
    const double center_offset = std::hypot(offset.x, offset.y);
    const double rotation = std::atan2(T(1, 0) - T(0, 1), T(0, 0) + T(1, 1)) * 180 / CV_PI;
    const double scale = std::sqrt(std::abs(T(0, 0) * T(1, 1) - T(0, 1) * T(1, 0)));
    const double scale_pct = (scale - 1) * 100;

    // ---- 5. measurements ----------------------------------------------------------------------
    // The registered reference covers only its footprint (its padded box mapped by W): outside
    // it the expected image is the bare garment, filled in, not computed pixel by pixel. `foot`
    // is grown by the smoothing kernel's reach; the same smoothing of a constant is that constant.
    const double sigma_s = 0.35 * w;
    cv::Rect foot;
    {
        std::vector<cv::Point2f> corners;
        for (auto [x, y] : {std::pair{-0.5, -0.5}, {ref_pm.cols - 0.5, -0.5}, {-0.5, ref_pm.rows - 0.5},
                            {ref_pm.cols - 0.5, ref_pm.rows - 0.5}}) {
            const cv::Vec3d v = W * cv::Vec3d(x, y, 1);
            corners.emplace_back(float(v[0]), float(v[1]));
        }
        const int reach = 2 + (cvRound(sigma_s * 4 * 2 + 1) | 1) / 2;
        const cv::Rect b = cv::boundingRect(corners);
        foot = cv::Rect(b.x - reach, b.y - reach, b.width + 2 * reach, b.height + 2 * reach) & cv::Rect({}, wsize);
    }
    const cv::Vec3f garment_f{float(garment_lin[0]), float(garment_lin[1]), float(garment_lin[2])};
    const cv::Vec3f garment_lab_f = lab_px(garment_f[0], garment_f[1], garment_f[2]);
    cv::Mat reg_pm = scratch(wsize, CV_32FC4, cv::Scalar::all(0));
    cv::Mat exp_lin = scratch(wsize, CV_32FC3, cv::Scalar(garment_f[0], garment_f[1], garment_f[2]));
    cv::Mat exp_s = scratch();
    exp_lin.copyTo(exp_s);
    cv::Mat lab_e = scratch(wsize, CV_32FC3, cv::Scalar(garment_lab_f[0], garment_lab_f[1], garment_lab_f[2]));
    cv::Mat ink_exp = scratch(wsize, CV_32F, cv::Scalar(0));
    if (!foot.empty()) {
        cv::Matx23d Wf = affine23(W);
        Wf(0, 2) -= foot.x;
        Wf(1, 2) -= foot.y;
        cv::Mat pm_f = reg_pm(foot);
        cv::warpAffine(ref_pm, pm_f, Wf, foot.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT, cv::Scalar::all(0));
        composite(pm_f).copyTo(exp_lin(foot));
        cv::Mat s_f = exp_s(foot);
        cv::GaussianBlur(exp_lin(foot), s_f, {0, 0}, sigma_s);
        lab_of(s_f).copyTo(lab_e(foot));
        inkness(lab_e(foot), garment_lab).copyTo(ink_exp(foot));
    }
    cv::Mat alpha = scratch();
    cv::extractChannel(reg_pm, alpha, 3);

    // Inked, away from the print's edges and from colour edges inside it.
    lap("expected");
    cv::Mat inked = (alpha >= 0.5) & valid;
    cv::Mat flat;
    {
        cv::Mat er;
        cv::erode(inked, er, cv::Mat(), {-1, -1}, 1);
        cv::Mat lmin, lmax, grad;
        cv::Mat L;
        cv::extractChannel(lab_e, L, 0);
        cv::morphologyEx(L, grad, cv::MORPH_GRADIENT, cv::Mat());
        cv::Mat edges = grad > 8;
        cv::dilate(edges, edges, cv::Mat());
        flat = er & ~edges;
        if (cv::countNonZero(flat) < 0.2 * cv::countNonZero(inked)) flat = er;
        if (cv::countNonZero(flat) < 20) flat = inked;
    }
    const int inked_px = cv::countNonZero(inked);
    double mean_de00 = 0, p95_de00 = 0;
    std::vector<float> t_values;
    // The print's global colour response, capture ≈ expected + D * [expected, 1] (linear light,
    // D 3x4): ink strength, hue and white balance errors of the printer (not of the camera, the
    // gray card took that out).
    cv::Matx34d response = cv::Matx34d::zeros();
    double underbase_de00 = 0;   // mean ΔE00 of the capture vs "inks printed without underbase"
    double underbase_scatter = 0;
    double residual_de00 = 0;    // median ΔE00 left after the colour response
    double texture_de00 = 0;     // the bare garment's own ΔE00 after averaging (noise floor)
    {
        // Every other pixel of every other row: ~1/4 of the flat ink is plenty for a mean.
        std::vector<float> d;
        std::vector<cv::Vec3f> e_lin, c_lin, c_lab, ink_pm;
        std::vector<float> ink_a;
        const float tiny = 15.f * 15.f;
        {
            const auto n = static_cast<std::size_t>(cv::countNonZero(flat)) / 4 + 64;
            e_lin.reserve(n), c_lin.reserve(n), c_lab.reserve(n), ink_pm.reserve(n), ink_a.reserve(n), t_values.reserve(n);
        }
        for (int y = 0; y < wsize.height; y += 2) {
            const auto* m = flat.ptr<std::uint8_t>(y);
            const auto* c = lab_c.ptr<cv::Vec3f>(y);
            const auto* e = lab_e.ptr<cv::Vec3f>(y);
            const auto* cl = lin_s.ptr<cv::Vec3f>(y);
            const auto* el = exp_s.ptr<cv::Vec3f>(y);
            const auto* pm = reg_pm.ptr<cv::Vec4f>(y);
            for (int x = y / 2 % 2; x < wsize.width; x += 2) {
                if (!m[x]) continue;
                e_lin.push_back(el[x]);
                c_lin.push_back(cl[x]);
                c_lab.push_back(c[x]);
                ink_pm.push_back({pm[x][0], pm[x][1], pm[x][2]});
                ink_a.push_back(pm[x][3]);
                const cv::Vec3f eg = e[x] - garment_lab, cg = c[x] - garment_lab;
                const float n2 = eg.dot(eg);
                if (n2 > tiny) t_values.push_back(cg.dot(eg) / n2);
            }
        }
        // The colour difference of the print, not of sensor noise, weave and JPEG: both images
        // averaged over ~1 mm first (ΔE of noisy pixels is biased upward, never zero-mean).
        {
            const double sigma = kColourAverageMm * w;
            // Both are averaged alike, so colour edges and the print's outline mix the same way in
            // both: every inked pixel counts (as in the definition), not only flat interiors.
            cv::Mat flat_m;
            cv::erode(inked, flat_m, cv::Mat(), {-1, -1}, 1);
            if (cv::countNonZero(flat_m) < 20) flat_m = inked;
            const int n_flat = cv::countNonZero(flat_m);
            const int step = n_flat > 90000 ? 3 : n_flat > 40000 ? 2 : 1;
            // Averaged on the rows sampled below only (ink: every step-th, ring: every 3rd): the
            // capture over the whole area (the ring is outside the print), the reference only
            // around its ink (the kernel's reach: no border effect on any inked pixel).
            std::vector<std::uint8_t> rows_used(static_cast<std::size_t>(wsize.height));
            for (int y = 0; y < wsize.height; ++y) rows_used[static_cast<std::size_t>(y)] = y % step == 0 || y % 3 == 0;
            const cv::Mat lin_m = gaussian_rows(lin, sigma, rows_used);
            const int pad_px = int(std::ceil(4 * sigma));
            cv::Rect ink_box = cv::boundingRect(inked);
            ink_box = cv::Rect(ink_box.x - pad_px, ink_box.y - pad_px, ink_box.width + 2 * pad_px,
                               ink_box.height + 2 * pad_px) & cv::Rect({}, wsize);
            cv::Mat exp_m;  // over ink_box
            if (ink_box.area() > 0)
                exp_m = gaussian_rows(exp_lin(ink_box), sigma,
                                      std::vector<std::uint8_t>(rows_used.begin() + ink_box.y,
                                                                rows_used.begin() + ink_box.y + ink_box.height));
            d = gather_rows<float>(wsize.height, step, [&](int y, std::vector<float>& out) {
                if (y < ink_box.y || y >= ink_box.y + ink_box.height) return;  // no ink on this row
                const auto* m = flat_m.ptr<std::uint8_t>(y);
                const auto* cl = lin_m.ptr<cv::Vec3f>(y);
                const auto* el = exp_m.ptr<cv::Vec3f>(y - ink_box.y);
                for (int x = (y / step) % step; x < wsize.width; x += step) {
                    if (!m[x]) continue;
                    const cv::Vec3f a = lab_px(cl[x][0], cl[x][1], cl[x][2]);
                    const cv::Vec3f& em = el[x - ink_box.x];
                    const cv::Vec3f b = lab_px(em[0], em[1], em[2]);
                    out.push_back(ciede2000(a[0], a[1], a[2], b[0], b[1], b[2]));
                }
            });
            // What fabric texture and noise leave after that averaging, measured on the bare
            // garment around the print (where the truth is "no difference"): removed from the
            // mean in quadrature, as independent errors add.
            const cv::Vec3f g = lab_px(float(garment_lin[0]), float(garment_lin[1]), float(garment_lin[2]));
            std::vector<float> ring_d = gather_rows<float>(wsize.height, 3, [&](int y, std::vector<float>& out) {
                const auto* m = ring.ptr<std::uint8_t>(y);
                const auto* cl = lin_m.ptr<cv::Vec3f>(y);
                for (int x = 0; x < wsize.width; x += 3) {
                    if (!m[x]) continue;
                    const cv::Vec3f a = lab_px(cl[x][0], cl[x][1], cl[x][2]);
                    out.push_back(ciede2000(a[0], a[1], a[2], g[0], g[1], g[2]));
                }
            });
            texture_de00 = ring_d.empty() ? 0.0 : median_of(ring_d);
        }
        if (!d.empty()) {
            const double raw = std::accumulate(d.begin(), d.end(), 0.0) / double(d.size());
            mean_de00 = std::sqrt(std::max(0.0, raw * raw - texture_de00 * texture_de00));
            p95_de00 = quantile_of(d, 0.95);
        }
        // Least squares with a small ridge toward "no change" (one flat colour leaves D
        // under-determined), then again on the best 70 % (a local defect of less than ~40 % of
        // the print does not move it).
        auto fit = [&](const std::vector<std::size_t>& idx) {
            cv::Matx44d ata = cv::Matx44d::zeros();
            cv::Matx<double, 4, 3> atb = cv::Matx<double, 4, 3>::zeros();
            for (std::size_t i : idx) {
                const cv::Vec4d r(e_lin[i][0], e_lin[i][1], e_lin[i][2], 1);
                for (int p = 0; p < 4; ++p) {
                    for (int q = 0; q < 4; ++q) ata(p, q) += r[p] * r[q];
                    for (int k = 0; k < 3; ++k) atb(p, k) += r[p] * (c_lin[i][k] - e_lin[i][k]);
                }
            }
            const double ridge = 1e-3 * double(idx.size());
            for (int p = 0; p < 4; ++p) ata(p, p) += ridge;
            cv::Matx<double, 4, 3> x;
            cv::solve(ata, atb, x, cv::DECOMP_SVD);
            response = x.t();
        };
        auto predict = [&](const cv::Vec3f& e) {
            const cv::Vec4d r(e[0], e[1], e[2], 1);
            const cv::Vec3d dv = response * r;
            return cv::Vec3f(float(e[0] + dv[0]), float(e[1] + dv[1]), float(e[2] + dv[2]));
        };
        if (e_lin.size() >= 50) {
            std::vector<std::size_t> all(e_lin.size());
            std::iota(all.begin(), all.end(), 0);
            fit(all);
            std::vector<float> res(e_lin.size());
            for (std::size_t i = 0; i < e_lin.size(); ++i) res[i] = float(cv::norm(c_lin[i] - predict(e_lin[i])));
            const float cut = quantile_of(res, 0.7);
            std::vector<std::size_t> kept;
            for (std::size_t i = 0; i < e_lin.size(); ++i)
                if (res[i] <= cut) kept.push_back(i);
            if (kept.size() >= 30) fit(kept);
        }
        // What the colour response leaves unexplained (median: local defects do not count).
        if (!e_lin.empty()) {
            const std::size_t step = std::max<std::size_t>(1, e_lin.size() / 8000);
            std::vector<float> res;
            for (std::size_t i = 0; i < e_lin.size(); i += step) {
                const cv::Vec3f p = predict(e_lin[i]);
                const cv::Vec3f lp = lab_px(std::max(p[0], 0.f), std::max(p[1], 0.f), std::max(p[2], 0.f));
                res.push_back(ciede2000(c_lab[i][0], c_lab[i][1], c_lab[i][2], lp[0], lp[1], lp[2]));
            }
            residual_de00 = median_of(res);
        }
        // Inks printed without the white underbase filter the garment's colour:
        // printed = ink * (s + (1 - s) * garment) with a little scatter s.
        if (!e_lin.empty()) {
            const std::size_t step = std::max<std::size_t>(1, e_lin.size() / 8000);
            underbase_de00 = 1e9;
            for (double sc : {0.0, 0.12, 0.25}) {
                double sum = 0;
                int n = 0;
                for (std::size_t i = 0; i < e_lin.size(); i += step, ++n) {
                    cv::Vec3f p;
                    for (int k = 0; k < 3; ++k)
                        p[k] = ink_pm[i][k] * float(sc + (1 - sc) * garment_lin[k]) + (1 - ink_a[i]) * float(garment_lin[k]);
                    const cv::Vec3f lp = lab_px(p[0], p[1], p[2]);
                    sum += ciede2000(c_lab[i][0], c_lab[i][1], c_lab[i][2], lp[0], lp[1], lp[2]);
                }
                if (n && sum / n < underbase_de00) underbase_de00 = sum / n, underbase_scatter = sc;
            }
        }
    }
    lap("colour");
    const double median_t = t_values.empty() ? 1.0 : median_of(t_values);
    const double collapsed = t_values.empty() ? 0.0 :
        double(std::count_if(t_values.begin(), t_values.end(), [](float t) { return t < 0.8f; })) / double(t_values.size());

    const RectMm search = grow(box, tol.margin_mm);
    cv::Mat within = cv::Mat::zeros(wsize, CV_8U);
    {
        cv::Rect r(cv::Point(int(std::lround((search.x - area.x) * w)), int(std::lround((search.y - area.y) * w))),
                   cv::Point(int(std::lround((search.x + search.width - area.x) * w)), int(std::lround((search.y + search.height - area.y) * w))));
        within(r & cv::Rect({}, wsize)).setTo(255);
        within &= valid;
    }
    // Local defects: against the reference with the print's global colour response applied (a
    // colour shift is judged by the mean, not here), within a +-1 px tolerance band at edges
    // (registration and optics are never perfect to the pixel).
    cv::Mat d_local = scratch(wsize, CV_32F, cv::Scalar(0));
    {
        // The corrected reference in CIELAB, in one pass (no linear-light intermediate).
        // Where there is no ink (alpha 0: outside the footprint too) it is the reference's.
        cv::Mat lab_corr = scratch();
        lab_e.copyTo(lab_corr);
        cv::parallel_for_(cv::Range(foot.y, foot.y + foot.height), [&](const cv::Range& r) {
            for (int y = r.start; y < r.end; ++y) {
                const auto* e = exp_s.ptr<cv::Vec3f>(y);
                const float* a = alpha.ptr<float>(y);
                auto* o = lab_corr.ptr<cv::Vec3f>(y);
                for (int x = foot.x; x < foot.x + foot.width; ++x) {
                    if (a[x] == 0) continue;
                    const double e0 = e[x][0], e1 = e[x][1], e2 = e[x][2];
                    float v[3];
                    for (int k = 0; k < 3; ++k) {
                        // response * (e, 1), summed in the order Matx * Vec does
                        double dv = response(k, 0) * e0;
                        dv += response(k, 1) * e1;
                        dv += response(k, 2) * e2;
                        dv += response(k, 3);
                        v[k] = std::max(0.f, e[x][k] + a[x] * float(dv));
                    }
                    o[x] = lab_px(v[0], v[1], v[2]);
                }
            }
        });
        // Against the reference both with and without the response: where the response is an
        // extrapolation (a thin black rule when it was fitted on pink and green text) the plain
        // reference is right, and a real defect differs from both. The range of the reference's
        // colours in each pixel's 3x3 neighbourhood (erode / dilate, only pixels inside the image
        // count) is taken on the fly: per row for the corrected reference, per pixel for the
        // plain one (needed only where the first comparison is already high).
        // ΔE00 <= 2.13 x ΔE76 for any pair (SL, SC, SH >= 1; a' stretches a by at most 1.5; the
        // rotation term at most doubles the chroma part): below this the pixel cannot be a defect.
        const float pre = float(tol.local_de00) / 2.2f;
        auto band = [&](const cv::Vec3f& cx, const cv::Vec3f& lx, const cv::Vec3f& hx) {
            cv::Vec3f e;
            for (int k = 0; k < 3; ++k) e[k] = std::clamp(cx[k], lx[k], hx[k]);
            const cv::Vec3f diff = cx - e;
            const float d76 = std::sqrt(diff.dot(diff));
            return d76 < pre ? d76 : ciede2000(cx[0], cx[1], cx[2], e[0], e[1], e[2]);
        };
        auto range3x3 = [&](const cv::Mat& m, int y, int x, cv::Vec3f& lo, cv::Vec3f& hi) {
            lo = hi = m.at<cv::Vec3f>(y, x);
            for (int yy = std::max(0, y - 1); yy <= std::min(m.rows - 1, y + 1); ++yy) {
                const auto* p = m.ptr<cv::Vec3f>(yy);
                for (int xx = std::max(0, x - 1); xx <= std::min(m.cols - 1, x + 1); ++xx)
                    for (int k = 0; k < 3; ++k) lo[k] = std::min(lo[k], p[xx][k]), hi[k] = std::max(hi[k], p[xx][k]);
            }
        };
        cv::parallel_for_(cv::Range(0, wsize.height), [&](const cv::Range& r) {
            const int cols = wsize.width;
            std::vector<cv::Vec3f> vlo(static_cast<std::size_t>(cols)), vhi(static_cast<std::size_t>(cols));
            for (int y = r.start; y < r.end; ++y) {
                const auto* m = within.ptr<std::uint8_t>(y);
                if (std::find_if(m, m + cols, [](std::uint8_t v) { return v != 0; }) == m + cols) continue;
                // Column-wise min / max over rows y-1..y+1, then over x-1..x+1 below.
                const auto* r0 = lab_corr.ptr<cv::Vec3f>(std::max(0, y - 1));
                const auto* r1 = lab_corr.ptr<cv::Vec3f>(y);
                const auto* r2 = lab_corr.ptr<cv::Vec3f>(std::min(wsize.height - 1, y + 1));
                for (int x = 0; x < cols; ++x)
                    for (int k = 0; k < 3; ++k) {
                        vlo[static_cast<std::size_t>(x)][k] = std::min({r0[x][k], r1[x][k], r2[x][k]});
                        vhi[static_cast<std::size_t>(x)][k] = std::max({r0[x][k], r1[x][k], r2[x][k]});
                    }
                const auto* c = lab_c.ptr<cv::Vec3f>(y);
                float* d = d_local.ptr<float>(y);
                for (int x = 0; x < cols; ++x) {
                    if (!m[x]) continue;
                    const auto xa = static_cast<std::size_t>(std::max(0, x - 1)), xb = static_cast<std::size_t>(x),
                               xc = static_cast<std::size_t>(std::min(cols - 1, x + 1));
                    cv::Vec3f l, h;
                    for (int k = 0; k < 3; ++k) {
                        l[k] = std::min({vlo[xa][k], vlo[xb][k], vlo[xc][k]});
                        h[k] = std::max({vhi[xa][k], vhi[xb][k], vhi[xc][k]});
                    }
                    const float dc = band(c[x], l, h);
                    if (dc <= pre) {
                        d[x] = dc;
                        continue;
                    }
                    cv::Vec3f l0, h0;
                    range3x3(lab_e, y, x, l0, h0);
                    d[x] = std::min(dc, band(c[x], l0, h0));
                }
            }
        });
    }
    std::vector<Region> regions;
    cv::Mat labels = scratch();
    {
        cv::Mat hot = (d_local > tol.local_de00) & within;
        cv::Mat stats, centroids;
        const int n = cv::connectedComponentsWithStats(hot, labels, stats, centroids, 8, CV_32S);
        const double min_px = tol.local_min_area_mm2 * w * w;
        std::vector<int> keep;
        for (int i = 1; i < n; ++i)
            if (stats.at<int>(i, cv::CC_STAT_AREA) >= min_px) keep.push_back(i);
        for (int i : keep) {
            const cv::Rect bb(stats.at<int>(i, cv::CC_STAT_LEFT), stats.at<int>(i, cv::CC_STAT_TOP),
                              stats.at<int>(i, cv::CC_STAT_WIDTH), stats.at<int>(i, cv::CC_STAT_HEIGHT));
            double sum = 0, mx = 0;
            int count = 0, inked_count = 0;
            std::vector<float> ts, perps;
            for (int y = bb.y; y < bb.y + bb.height; ++y) {
                const int* l = labels.ptr<int>(y);
                const float* dl = d_local.ptr<float>(y);
                const float* a = alpha.ptr<float>(y);
                const auto* c = lab_c.ptr<cv::Vec3f>(y);
                const auto* e = lab_e.ptr<cv::Vec3f>(y);
                for (int x = bb.x; x < bb.x + bb.width; ++x) {
                    if (l[x] != i) continue;
                    ++count;
                    sum += dl[x];
                    mx = std::max(mx, double(dl[x]));
                    if (a[x] >= 0.5f) {
                        ++inked_count;
                        const cv::Vec3f eg = e[x] - garment_lab, cg = c[x] - garment_lab;
                        const float n2 = eg.dot(eg);
                        if (n2 > 100.f) {
                            const float t = cg.dot(eg) / n2;
                            ts.push_back(t);
                            const cv::Vec3f off = cg - t * eg;
                            perps.push_back(std::sqrt(off.dot(off) / n2));
                        }
                    }
                }
            }
            Region reg;
            reg.inked_fraction = double(inked_count) / count;
            reg.median_t = ts.empty() ? 1.0 : median_of(ts);
            // Ink missing: where ink belongs, the photo is closer to the bare garment than the
            // print should be. Anything else (ink or dirt where none belongs, smears over ink,
            // ink of the wrong colour in one spot) is a smudge.
            // "Nearer the bare garment" means on the line garment -> ink, short of the ink; a
            // foreign colour (a red spot on blue ink) is off that line: a smudge.
            reg.off_line = perps.empty() ? 0.0 : median_of(perps);
            const bool missing = reg.inked_fraction >= 0.5 && reg.median_t < 0.7 && reg.off_line < 0.35;
            reg.defect = Defect{missing ? "missing_ink" : "smudge",
                                {area.x + bb.x / w, area.y + bb.y / w, bb.width / w, bb.height / w},
                                count / (w * w), sum / count, mx};
            regions.push_back(std::move(reg));
        }
        // Bare garment where ink belongs, found directly: a large missing area can bend the
        // colour response fitted above (it explains "less ink" as a colour shift) and so hide
        // from the comparison with the corrected reference.
        cv::Mat bare(wsize, CV_8U, cv::Scalar(0));
        cv::parallel_for_(cv::Range(0, wsize.height), [&](const cv::Range& rr) {
            for (int y = rr.start; y < rr.end; ++y) {
                const auto* m = within.ptr<std::uint8_t>(y);
                const float* a = alpha.ptr<float>(y);
                const auto* c = lab_c.ptr<cv::Vec3f>(y);
                const auto* e = lab_e.ptr<cv::Vec3f>(y);
                auto* b = bare.ptr<std::uint8_t>(y);
                for (int x = 0; x < wsize.width; ++x) {
                    if (!m[x] || a[x] < 0.5f) continue;
                    const cv::Vec3f eg = e[x] - garment_lab, cg = c[x] - garment_lab;
                    const float deg = std::sqrt(eg.dot(eg));
                    if (deg > 15.f && std::sqrt(cg.dot(cg)) < std::max(6.f, 0.25f * deg)) b[x] = 255;
                }
            }
        });
        cv::morphologyEx(bare, bare, cv::MORPH_OPEN, cv::Mat());
        cv::Mat blabels = scratch(), bstats, bcent;
        const int bn = cv::connectedComponentsWithStats(bare, blabels, bstats, bcent, 8, CV_32S);
        for (int i = 1; i < bn; ++i) {
            const int count = bstats.at<int>(i, cv::CC_STAT_AREA);
            if (count < min_px) continue;
            const cv::Rect bb(bstats.at<int>(i, cv::CC_STAT_LEFT), bstats.at<int>(i, cv::CC_STAT_TOP),
                              bstats.at<int>(i, cv::CC_STAT_WIDTH), bstats.at<int>(i, cv::CC_STAT_HEIGHT));
            const RectMm bbm{area.x + bb.x / w, area.y + bb.y / w, bb.width / w, bb.height / w};
            const bool known = std::any_of(regions.begin(), regions.end(), [&](const Region& r) {
                const auto& o = r.defect.bbox_mm;
                return r.defect.kind == "missing_ink" && o.x < bbm.x + bbm.width && bbm.x < o.x + o.width &&
                       o.y < bbm.y + bbm.height && bbm.y < o.y + o.height;
            });
            if (known) continue;
            double sum = 0, mx = 0;
            for (int y = bb.y; y < bb.y + bb.height; ++y) {
                const int* l = blabels.ptr<int>(y);
                const auto* c = lab_c.ptr<cv::Vec3f>(y);
                const auto* e = lab_e.ptr<cv::Vec3f>(y);
                for (int x = bb.x; x < bb.x + bb.width; ++x) {
                    if (l[x] != i) continue;
                    const float dd = ciede2000(c[x][0], c[x][1], c[x][2], e[x][0], e[x][1], e[x][2]);
                    sum += dd;
                    mx = std::max(mx, double(dd));
                }
            }
            Region reg;
            reg.inked_fraction = 1;
            reg.median_t = 0;
            reg.defect = Defect{"missing_ink", bbm, count / (w * w), sum / count, mx};
            regions.push_back(std::move(reg));
        }
        std::sort(regions.begin(), regions.end(), [](const Region& a, const Region& b) {
            return a.defect.area_mm2 * a.defect.mean_de00 > b.defect.area_mm2 * b.defect.mean_de00;
        });
    }
    // The largest area above the local threshold that is too small to count (for confidence).
    lap("measure");

    // Design: does the photographed ink look like the registered reference's?
    double design_corr = 0, ink_ratio = 0;
    {
        cv::Mat wf;
        within.convertTo(wf, CV_32F, 1.0 / 255);
        const double n = std::max(1.0, cv::sum(wf)[0]);
        const double m1 = cv::sum(ink_cap.mul(wf))[0] / n, m2 = cv::sum(ink_exp.mul(wf))[0] / n;
        cv::Mat a = (ink_cap - m1).mul(wf), b = (ink_exp - m2).mul(wf);
        const double cov = cv::sum(a.mul(b))[0], va = cv::sum(a.mul(a))[0], vb = cv::sum(b.mul(b))[0];
        design_corr = (va > 1e-9 && vb > 1e-9) ? cov / std::sqrt(va * vb) : 0;
        ink_ratio = m2 > 0 ? m1 / m2 : 0;
    }
    // Ink where the reference has none (3 mm away from it, so a small misregistration does not
    // count): a share of all the ink seen.
    double extra_ink = 0;
    {
        cv::Mat near_ink = alpha > 0.02;
        const int r = std::max(1, int(std::lround(3 * w)));
        cv::dilate(near_ink, near_ink, cv::getStructuringElement(cv::MORPH_ELLIPSE, {2 * r + 1, 2 * r + 1}));
        cv::Mat outside = within & ~near_ink;
        const double all = cv::sum(ink_cap)[0];
        cv::Mat tmp;
        ink_cap.copyTo(tmp, outside);
        extra_ink = all > 0 ? cv::sum(tmp)[0] / all : 0;
    }

    // ---- 6. decision --------------------------------------------------------------------------
    const bool garment_non_white = ciede2000(garment_lab[0], garment_lab[1], garment_lab[2], 100, 0, 0) > 15;
    const double defect_area = std::accumulate(regions.begin(), regions.end(), 0.0,
                                               [](double s, const Region& r) { return s + r.defect.area_mm2; });
    const double inked_area = inked_px / (w * w);
    const double coverage = inked_area > 0 ? defect_area / inked_area : 0;

    struct Check {
        const char* reason;
        bool fail;
        double margin;  // |value - limit| / limit: how sure this check is (0 = on the limit)
    };
    auto rel = [](double value, double limit) { return std::abs(value - limit) / limit; };
    std::vector<Check> checks;
    checks.push_back({"wrong_blank", blank_de00 > tol.blank_de00, rel(blank_de00, tol.blank_de00)});
    // Missing underbase: on a coloured garment, the print looks like its inks filtering the
    // garment's colour (no white under them) much better than like the reference.
    const bool has_ink = ink_ratio > 0.12;  // nothing printed: ~0.02
    const bool underbase_bad = garment_non_white && mean_de00 > tol.mean_de00 && design_corr >= 0.6 &&
                               underbase_de00 < kUnderbaseExplains * mean_de00;
    checks.push_back({"missing_underbase", underbase_bad,
                      mean_de00 > 0 ? std::abs(1 - underbase_de00 / (kUnderbaseExplains * mean_de00)) : 1.0});
    // Wrong design: ink of other shapes (poor correlation and ink where none belongs), or the
    // colours wrong over most of the print in a way no colour response explains.
    // A large missing region lowers the correlation too; it is the wrong design only when the
    // ink that is there does not match either (wrong colours or shapes beside the bare parts).
    double missing_area = 0, smudge_area = 0;
    for (const auto& r : regions) (r.defect.kind == "missing_ink" ? missing_area : smudge_area) += r.defect.area_mm2;
    const bool shapes_differ = design_corr < kDesignCorrelation &&
                               (extra_ink > 0.15 || (coverage > 0.3 && smudge_area > 0.1 * missing_area));
    const bool mostly_wrong = coverage > 0.5 && !regions.empty() && regions.front().defect.kind == "smudge";
    // A colour response explains a colour shift; the wrong artwork in the same outline leaves
    // most of the print unexplained.
    // Neither applies where most of what is wrong is bare garment (that is missing ink). A
    // "colour shift" beyond any printer fault (ΔE00 30: another artwork in the same outline, whose
    // few colours an affine response can map) is the wrong design too.
    const bool missing_dominates = !regions.empty() && regions.front().defect.kind == "missing_ink";
    const bool unexplained = !underbase_bad && !missing_dominates &&
                             (residual_de00 > kResidualDesign || mean_de00 > kImplausibleShift);
    const bool design_bad = has_ink && (design_corr < 0.5 || shapes_differ || (mostly_wrong && !missing_dominates) || unexplained);
    checks.push_back({"wrong_design", design_bad,
                      shapes_differ ? rel(design_corr, kDesignCorrelation) : mostly_wrong ? std::min(1.0, coverage - 0.5) : rel(design_corr, kDesignCorrelation)});
    const double m_off = center_offset / tol.offset_mm, m_rot = std::abs(rotation) / tol.rotation_deg,
                 m_scale = std::abs(scale_pct) / tol.scale_pct;
    const double m_place = std::max({m_off, m_rot, m_scale});
    checks.push_back({"misaligned", has_ink && m_place > 1, std::abs(m_place - 1)});  // no ink: nothing to place
    // Nothing printed at all counts as missing ink. Smudges on the ink while the whole print is
    // off-colour are the colour shift's doing (its response differs a little across colours).
    const bool nothing = !has_ink && inked_area > 0;
    const bool shift = mean_de00 > tol.mean_de00;
    std::vector<const Region*> local;
    for (const auto& r : regions)
        if (!(shift && r.defect.kind == "smudge" && r.inked_fraction >= 0.5)) local.push_back(&r);
    const bool local_bad = !local.empty() || nothing;
    const std::string local_reason = nothing || local.empty() ? "missing_ink" : local.front()->defect.kind;
    double local_margin = 1;
    if (!local.empty()) local_margin = std::min(1.0, local.front()->defect.area_mm2 / tol.local_min_area_mm2 - 1);
    checks.push_back({"local", local_bad, local_margin});
    checks.push_back({"color_shift", shift, rel(mean_de00, tol.mean_de00)});

    Verdict v;
    v.pass = true;
    v.reason = "ok";
    double confidence = 1;
    for (const auto& c : checks) {
        if (c.fail) {
            v.pass = false;
            v.reason = std::string(c.reason) == "local" ? local_reason : c.reason;
            confidence = std::min(1.0, c.margin);
            break;
        }
        confidence = std::min(confidence, c.margin);
    }
    if (!ecc_ok) confidence *= 0.5;
    v.confidence = round_to(std::clamp(confidence, 0.0, 1.0), 3);
    for (const auto& r : regions) v.defects.push_back(r.defect);

    json defects = json::array();
    for (const auto& r : regions)
        defects.push_back({{"kind", r.defect.kind},
                           {"bbox_mm", rect_json(r.defect.bbox_mm)},
                           {"area_mm2", round_to(r.defect.area_mm2, 1)},
                           {"mean_de00", round_to(r.defect.mean_de00, 2)},
                           {"max_de00", round_to(r.defect.max_de00, 2)},
                           {"inked_fraction", round_to(r.inked_fraction, 2)},
                           {"ink_level", round_to(r.median_t, 2)},
                           {"off_line", round_to(r.off_line, 2)}});
    v.metrics = {
        {"offset_mm", {{"x", round_to(offset.x, 3)}, {"y", round_to(offset.y, 3)}}},
        {"center_offset_mm", round_to(center_offset, 3)},
        {"rotation_deg", round_to(rotation, 3)},
        {"scale_pct", round_to(scale_pct, 3)},
        {"mean_de00", round_to(mean_de00, 3)},
        {"p95_de00", round_to(p95_de00, 3)},
        {"texture_de00", round_to(texture_de00, 3)},
        {"color_response", response_json(response)},
        {"defects", defects},
        {"defect_area_mm2", round_to(defect_area, 1)},
        {"inked_area_mm2", round_to(inked_area, 1)},
        {"garment", {{"measured_srgb", srgb_json(garment_lin)}, {"de00_vs_nominal", round_to(blank_de00, 2)}}},
        {"underbase", {{"ink_level_median", round_to(median_t, 3)}, {"collapsed_fraction", round_to(collapsed, 3)},
                       {"garment_non_white", garment_non_white}, {"model_de00", round_to(underbase_de00, 3)},
                       {"model_scatter", underbase_scatter}}},
        {"design", {{"correlation", round_to(design_corr, 3)}, {"ink_ratio", round_to(ink_ratio, 3)},
                    {"extra_ink", round_to(extra_ink, 3)}, {"residual_de00", round_to(residual_de00, 2)}, {"defect_coverage", round_to(coverage, 3)}}},
        {"registration", {{"ecc", round_to(ecc, 4)}, {"converged", ecc_ok}, {"used", reg_from},
                          {"correlation", round_to(reg_corr, 4)}, {"coarse_score", round_to(coarse_score, 3)},
                          {"coarse_angle_deg", coarse_angle}}},
        {"gray_card", {{"used", ph.gray_card_used},
                       {"gain", json::array({round_to(ph.gain[2], 4), round_to(ph.gain[1], 4), round_to(ph.gain[0], 4)})},
                       {"offset", json::array({round_to(ph.offset[2], 4), round_to(ph.offset[1], 4), round_to(ph.offset[0], 4)})},
                       {"residual_de00", round_to(ph.residual_de00, 2)},
                       {"patches", ph.patches}}},
        {"flatfield", !cal.flatfield.empty()},
        {"capture_px_per_mm", round_to(capture_ppm, 2)},
        {"work_px_per_mm", w},
        {"confidence", v.confidence},
    };

    if (evidence) {
        evidence->px_per_mm = w;
        evidence->area_mm = area;
        evidence->rectified = linear_to_srgb8(lin);
        evidence->expected = linear_to_srgb8(exp_lin);
        cv::Mat scaled, heat;
        d_local.convertTo(scaled, CV_8U, 255.0 / (2 * tol.local_de00));
        cv::applyColorMap(scaled, heat, cv::COLORMAP_INFERNO);
        cv::Mat gray, gray3;
        cv::cvtColor(evidence->rectified, gray, cv::COLOR_BGR2GRAY);
        cv::cvtColor(gray, gray3, cv::COLOR_GRAY2BGR);
        cv::addWeighted(heat, 0.65, gray3, 0.35, 0, evidence->heatmap);
        cv::Rect sr(cv::Point(int((search.x - area.x) * w), int((search.y - area.y) * w)),
                    cv::Size(int(search.width * w), int(search.height * w)));
        cv::rectangle(evidence->heatmap, sr, {255, 255, 255}, 1);
        for (const auto& r : regions) {
            const auto& b = r.defect.bbox_mm;
            cv::Rect rr(cv::Point(int((b.x - area.x) * w) - 3, int((b.y - area.y) * w) - 3),
                        cv::Size(int(b.width * w) + 6, int(b.height * w) + 6));
            cv::rectangle(evidence->heatmap, rr, r.defect.kind == "missing_ink" ? cv::Scalar(255, 255, 0) : cv::Scalar(0, 255, 0), 2);
            cv::putText(evidence->heatmap, r.defect.kind, rr.tl() + cv::Point(0, -4), cv::FONT_HERSHEY_SIMPLEX, 0.5,
                        {255, 255, 255}, 1, cv::LINE_AA);
        }
        lap("evidence");
    }
    timing["total"] = round_to(ms_since(t_start), 2);
    v.metrics["timing_ms"] = timing;
    return v;
} catch (const cv::Exception& e) {
    return Problem{"inspect_failed", "", fmt::format("OpenCV: {}", e.what())};
}

void release_scratch_memory() {
    scratch_allocator()->release();
    ::malloc_trim(0);  // glibc keeps freed heap pages otherwise
}

}  // namespace pressline::devices::qa
