// The QA dataset generator: a print (good or with one defect) on a textured garment, photographed
// by the simulated station camera, with its truth. See dataset.hpp for the conventions.
//
// Pipeline (linear light throughout until the camera encodes sRGB):
//   reference (sRGB RGBA) -> ink in linear light, possibly altered (colour, dropouts, other design)
//   -> placed on the platen by a similarity (offset, rotation, scale) -> composited on the actual
//   garment (with or without white underbase) in a "scene" image of the platen surroundings in mm
//   -> stains -> fabric texture -> camera: perspective warp (H), blur, exposure/white balance
//   (per-channel gain + black offset), flat field x small residual gradient, sRGB, noise, JPEG.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <fstream>
#include <numbers>
#include <stdexcept>

#include <opencv2/aruco.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "detail.hpp"
#include "pressline/qa_dataset/color.hpp"
#include "pressline/qa_dataset/dataset.hpp"

namespace pressline::qa_dataset {

using namespace detail;

namespace {

// QA_DATASET_TRACE=1: time the stages on stderr.
struct Trace {
    bool on = std::getenv("QA_DATASET_TRACE") != nullptr;
    std::chrono::steady_clock::time_point t = std::chrono::steady_clock::now();
    void lap(const char* what) {
        if (!on) return;
        const auto now = std::chrono::steady_clock::now();
        std::fprintf(stderr, "  %-16s %7.1f ms\n", what, std::chrono::duration<double, std::milli>(now - t).count());
        t = now;
    }
};
thread_local Trace* g_trace = nullptr;
void lap(const char* what) {
    if (g_trace) g_trace->lap(what);
}

constexpr double kLocalDe = 10.0;       // tolerance: local defect ΔE00 ...
constexpr double kClearAreaMm2 = 20.0;  // ... a clear defect covers at least this (tolerance 9)
constexpr double kUnderbaseScatter = 0.12;

struct Similarity {
    double dx = 0, dy = 0, rot_deg = 0, scale = 1;
};

// Ink in reference space: straight linear colour and coverage.
struct Ink {
    cv::Mat lin;    // CV_32FC3 r, g, b
    cv::Mat alpha;  // CV_32F 0..1
    Ink clone() const { return {lin.clone(), alpha.clone()}; }
};

Ink ink_from_bgra(const cv::Mat& bgra) {
    cv::Mat ch[4];
    cv::split(bgra, ch);
    cv::Mat rgb;
    cv::merge(std::vector<cv::Mat>{ch[2], ch[1], ch[0]}, rgb);
    Ink ink;
    ink.lin = srgb8_to_linear(rgb);
    ch[3].convertTo(ink.alpha, CV_32F, 1.0 / 255.0);
    return ink;
}

// The printed colour of ink over a garment in linear light. Without underbase the inks act as a
// filter over the garment (a little scatter keeps them from going fully dark).
cv::Vec3f printed(const cv::Vec3f& ink, float a, const cv::Vec3f& g, bool underbase) {
    cv::Vec3f out;
    for (int k = 0; k < 3; ++k) {
        const float i = underbase ? ink[k] : ink[k] * float(kUnderbaseScatter + (1 - kUnderbaseScatter) * g[k]);
        out[k] = a * i + (1 - a) * g[k];
    }
    return out;
}

// A sample of inked pixels (alpha >= 128) of the reference, for mean ΔE00 estimates.
struct Samples {
    std::vector<cv::Point> pts;
};
Samples inked_samples(const Ink& ink0, int max_n) {
    const double n = cv::countNonZero(ink0.alpha >= 128.0 / 255.0);
    const int stride = std::max(1, static_cast<int>(std::floor(std::sqrt(std::max(1.0, n) / max_n))));
    Samples s;
    for (int y = stride / 2; y < ink0.alpha.rows; y += stride) {
        const float* a = ink0.alpha.ptr<float>(y);
        for (int x = stride / 2; x < ink0.alpha.cols; x += stride)
            if (a[x] >= 128.0f / 255.0f) s.pts.push_back({x, y});
    }
    return s;
}

double mean_de(const Samples& s, const Ink& ink0, const cv::Vec3d& g0, const Ink& ink1, const cv::Vec3d& g1,
               bool underbase1, const cv::Matx33d* gains = nullptr, double* p99 = nullptr,
               double* max = nullptr) {
    if (p99) *p99 = 0;
    if (max) *max = 0;
    if (s.pts.empty()) return 0;
    double sum = 0;
    std::vector<double> all;
    if (p99) all.reserve(s.pts.size());
    for (const auto& p : s.pts) {
        const cv::Vec3f want = printed(ink0.lin.at<cv::Vec3f>(p), ink0.alpha.at<float>(p), cv::Vec3f(g0), true);
        cv::Vec3f inkc = ink1.lin.at<cv::Vec3f>(p);
        if (gains) {
            cv::Vec3d v = (*gains) * cv::Vec3d(inkc);
            inkc = cv::Vec3f(std::min(1.0, v[0]), std::min(1.0, v[1]), std::min(1.0, v[2]));
        }
        const cv::Vec3f got = printed(inkc, ink1.alpha.at<float>(p), cv::Vec3f(g1), underbase1);
        const double d = ciede2000(linear_to_lab(cv::Vec3d(want)), linear_to_lab(cv::Vec3d(got)));
        sum += d;
        if (p99) all.push_back(d);
        if (max) *max = std::max(*max, d);
    }
    if (p99) {
        const auto k = static_cast<std::size_t>(0.99 * static_cast<double>(all.size() - 1));
        std::nth_element(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k), all.end());
        *p99 = all[k];
    }
    return sum / static_cast<double>(s.pts.size());
}

// Area (mm²) and max ΔE00 where the actually printed ink differs from the intended by more than
// the local tolerance, inside `roi` of the reference.
struct LocalTruth {
    double area_mm2 = 0, max_de = 0;
};
LocalTruth local_truth_ref(const Ink& ink0, const cv::Vec3d& g, const Ink& ink1, cv::Rect roi, double ppm) {
    roi &= cv::Rect(0, 0, ink0.alpha.cols, ink0.alpha.rows);
    LocalTruth t;
    if (roi.empty()) return t;
    const int stride = std::max(1, static_cast<int>(std::sqrt(roi.area() / 150000.0)));
    long n = 0;
    for (int y = roi.y; y < roi.br().y; y += stride)
        for (int x = roi.x; x < roi.br().x; x += stride) {
            const cv::Vec3f a = printed(ink0.lin.at<cv::Vec3f>(y, x), ink0.alpha.at<float>(y, x), cv::Vec3f(g), true);
            const cv::Vec3f b = printed(ink1.lin.at<cv::Vec3f>(y, x), ink1.alpha.at<float>(y, x), cv::Vec3f(g), true);
            if (a == b) continue;
            const double d = ciede2000(linear_to_lab(cv::Vec3d(a)), linear_to_lab(cv::Vec3d(b)));
            t.max_de = std::max(t.max_de, d);
            if (d > kLocalDe) ++n;
        }
    t.area_mm2 = static_cast<double>(n) * stride * stride / (ppm * ppm);
    return t;
}

// Scales a garment colour away from `srgb` by ΔE00 `target` in a random Lab direction.
cv::Vec3d shift_colour(const cv::Vec3d& srgb, double target, Rng& rng) {
    const cv::Vec3d lab = srgb8_to_lab(srgb);
    cv::Vec3d dir(uniform(rng, -0.5, 0.5), uniform(rng, -1, 1), uniform(rng, -1, 1));
    dir *= 1.0 / cv::norm(dir);
    double lo = 0, hi = 60;
    cv::Vec3d best = srgb;
    for (int i = 0; i < 40; ++i) {
        const double k = (lo + hi) / 2;
        cv::Vec3d lin = lab_to_linear(lab + dir * k);
        for (int c = 0; c < 3; ++c) lin[c] = std::clamp(lin[c], 0.0, 1.0);
        const cv::Vec3d s = linear_to_srgb8(lin);
        const double d = ciede2000(lab, srgb8_to_lab(s));
        best = s;
        (d < target ? lo : hi) = k;
    }
    return best;
}

// Global ink colour change by ΔE00 ~ `target` (mean over inked pixels): per-channel gains
// exp(t * d) in linear light, t found by bisection.
// Tries directions until the largest per-pixel ΔE00 (over `check`, a denser sample) is at most
// `max_de` (so that a small global change makes no local defect, not even on a small feature of
// one colour), else keeps the most even one.
cv::Matx33d colour_gains(const Samples& s, const Samples& check, const Ink& ink0, const cv::Vec3d& g, double target,
                         Rng& rng, double max_de = 1e9) {
    if (target <= 0) return cv::Matx33d::eye();
    cv::Matx33d best = cv::Matx33d::eye();
    double best_p99 = 1e18;
    for (int attempt = 0; attempt < 12; ++attempt) {
        cv::Vec3d d(uniform(rng, -1, 1), uniform(rng, -1, 1), uniform(rng, -1, 1));
        if (chance(rng, 0.3)) d = cv::Vec3d(-1, -1, -1) + d * 0.3;  // density loss or gain
        if (chance(rng, 0.5)) d = -d;
        d *= 1.0 / cv::norm(d);
        auto gains = [&](double t) {
            return cv::Matx33d(std::exp(t * d[0]), 0, 0, 0, std::exp(t * d[1]), 0, 0, 0, std::exp(t * d[2]));
        };
        double lo = 0, hi = 4;
        for (int i = 0; i < 22; ++i) {
            const double t = (lo + hi) / 2;
            const auto m = gains(t);
            (mean_de(s, ink0, g, ink0, g, true, &m) < target ? lo : hi) = t;
        }
        const auto m = gains((lo + hi) / 2);
        if (max_de >= 1e9) return m;
        double mx = 0;
        mean_de(check, ink0, g, ink0, g, true, &m, nullptr, &mx);
        if (mx < best_p99) best = m, best_p99 = mx;
        if (mx <= max_de) break;
    }
    return best;
}

void apply_gains(Ink& ink, const cv::Matx33d& m) {
    cv::transform(ink.lin, ink.lin, m);
    cv::min(ink.lin, 1.0, ink.lin);
    cv::max(ink.lin, 0.0, ink.lin);
}

// A stain on top of the print or garment, in platen mm.
struct Stain {
    cv::Rect2d rect_mm;
    cv::Mat alpha;      // CV_32F over rect_mm (any resolution)
    cv::Vec3d lin;      // colour, linear
    bool multiply = false;  // dye (multiplies) instead of matter that covers
    std::string kind;
};

// The scene: the platen surroundings in mm sampled at sp px/mm, origin (x0, y0).
struct SceneGeom {
    double x0 = -115, y0 = -50, sp = 4.5;
    cv::Size size;
    cv::Matx33d mm_to_px() const { return {sp, 0, -x0 * sp, 0, sp, -y0 * sp, 0, 0, 1}; }
    cv::Rect rect(const cv::Rect2d& mm) const {
        return cv::Rect(cv::Point(cvFloor((mm.x - x0) * sp), cvFloor((mm.y - y0) * sp)),
                        cv::Point(cvCeil((mm.br().x - x0) * sp), cvCeil((mm.br().y - y0) * sp))) &
               cv::Rect(cv::Point(0, 0), size);
    }
};

struct PrintSpec {
    Ink ink;                    // as printed (reference space)
    cv::Vec4d box_mm;           // the intended artwork box
    Similarity sim;
    cv::Vec3d garment_lin;      // the actual garment
    bool underbase = true;
    bool heather = false;
    std::vector<Stain> stains;
};

cv::Matx33d similarity_matrix(const Similarity& s, const cv::Point2d& c) {
    const double th = s.rot_deg * std::numbers::pi / 180.0;
    const double a = s.scale * std::cos(th), b = s.scale * std::sin(th);
    // p' = c + sR(p - c) + d
    return {a, -b, c.x + s.dx - a * c.x + b * c.y, b, a, c.y + s.dy - b * c.x - a * c.y, 0, 0, 1};
}

void draw_markers(cv::Mat& scene, const SceneGeom& g) {
    const auto dict = cv::aruco::getPredefinedDictionary(cv::aruco::DICT_4X4_50);
    const cv::Point2d pos[] = {{-100, 10}, {-100, 234}, {-100, 458}, {525, 10}, {525, 458}};
    int id = 0;
    for (const auto& p : pos) {
        const cv::Rect paper = g.rect({p.x - 5, p.y - 5, 50, 50});
        scene(paper).setTo(cv::Scalar(0.8, 0.8, 0.78));
        const cv::Rect r = g.rect({p.x, p.y, 40, 40});
        cv::Mat m;
        cv::aruco::drawMarker(dict, id++, 6 * 20, m, 1);
        cv::Mat mr;
        cv::resize(m, mr, r.size(), 0, 0, cv::INTER_AREA);
        cv::Mat mf;
        mr.convertTo(mf, CV_32F, 0.78 / 255.0);
        mf += 0.02;
        cv::Mat m3;
        cv::merge(std::vector<cv::Mat>{mf, mf, mf}, m3);
        m3.copyTo(scene(r));
    }
}

const float* normal_table();
void multiply_texture(cv::Mat& scene, const cv::Mat& tex);

// Renders the scene (CV_32FC3 linear r, g, b). Measures each stain's truth (area where it changes
// the print by more than the local tolerance) into `stain_truth`.
cv::Mat render_scene(const Camera& cam, const PrintSpec& ps, double ref_ppm, const SceneGeom& g, Rng& rng,
                     std::vector<LocalTruth>* stain_truth) {
    cv::Mat scene(g.size, CV_32FC3, cv::Scalar(0.03, 0.03, 0.035));
    draw_markers(scene, g);
    lap("scene:markers");
    scene(g.rect({cam.gray_card_rect_mm[0], cam.gray_card_rect_mm[1], cam.gray_card_rect_mm[2],
                  cam.gray_card_rect_mm[3]}))
        .setTo(cv::Scalar(0.06, 0.06, 0.06));
    for (const auto& p : cam.patches) {
        const cv::Vec3d l = srgb8_to_linear(p.srgb);
        scene(g.rect({p.rect_mm[0], p.rect_mm[1], p.rect_mm[2], p.rect_mm[3]})).setTo(cv::Scalar(l[0], l[1], l[2]));
    }
    // The garment over the platen and a little beyond.
    const cv::Rect shirt = g.rect({-30, -60, kPlatenWidthMm + 60, kPlatenHeightMm + 120});
    const cv::Vec3d G = ps.garment_lin;
    scene(shirt).setTo(cv::Scalar(G[0], G[1], G[2]));

    // The ink, premultiplied, warped from reference pixels into the scene.
    const double bw = ps.box_mm[2], bh = ps.box_mm[3];
    cv::Mat ink4;
    {
        cv::Mat pre;
        cv::Mat a3;
        cv::merge(std::vector<cv::Mat>{ps.ink.alpha, ps.ink.alpha, ps.ink.alpha}, a3);
        cv::multiply(ps.ink.lin, a3, pre);
        cv::Mat ch[3];
        cv::split(pre, ch);
        cv::merge(std::vector<cv::Mat>{ch[0], ch[1], ch[2], ps.ink.alpha}, ink4);
    }
    double ppmx = ref_ppm, ppmy = ref_ppm;
    if (ref_ppm > 1.5 * g.sp) {
        const cv::Size s(std::max(1, cvRound(bw * g.sp * 1.25)), std::max(1, cvRound(bh * g.sp * 1.25)));
        cv::resize(ink4, ink4, s, 0, 0, cv::INTER_AREA);
        ppmx = s.width / bw;
        ppmy = s.height / bh;
    }
    const cv::Matx33d ref_to_mm(1 / ppmx, 0, ps.box_mm[0] + 0.5 / ppmx, 0, 1 / ppmy, ps.box_mm[1] + 0.5 / ppmy, 0, 0, 1);
    const cv::Point2d c(ps.box_mm[0] + bw / 2, ps.box_mm[1] + bh / 2);
    const cv::Matx33d ref_to_scene = g.mm_to_px() * similarity_matrix(ps.sim, c) * ref_to_mm;
    std::vector<cv::Point2f> corners = {{-0.5f, -0.5f}, {ink4.cols - 0.5f, -0.5f}, {ink4.cols - 0.5f, ink4.rows - 0.5f},
                                        {-0.5f, ink4.rows - 0.5f}};
    std::vector<cv::Point2f> sc;
    cv::perspectiveTransform(corners, sc, cv::Matx33f(ref_to_scene));
    cv::Rect roi = (cv::boundingRect(sc) + cv::Size(4, 4) - cv::Point(2, 2)) & cv::Rect(cv::Point(0, 0), g.size);
    cv::Mat alpha_roi(roi.size(), CV_32F, cv::Scalar(0));
    if (!roi.empty()) {
        const cv::Matx33d shifted = cv::Matx33d(1, 0, -roi.x, 0, 1, -roi.y, 0, 0, 1) * ref_to_scene;
        cv::Mat warped;
        cv::warpAffine(ink4, warped, cv::Mat(cv::Matx23d(shifted.val)), roi.size(), cv::INTER_LINEAR,
                       cv::BORDER_CONSTANT, cv::Scalar::all(0));
        const cv::Vec3f gf(G);
        cv::Mat dst = scene(roi);
        for (int y = 0; y < roi.height; ++y) {
            const auto* w = warped.ptr<cv::Vec4f>(y);
            auto* d = dst.ptr<cv::Vec3f>(y);
            float* ar = alpha_roi.ptr<float>(y);
            for (int x = 0; x < roi.width; ++x) {
                const float a = std::clamp(w[x][3], 0.0f, 1.0f);
                ar[x] = a;
                for (int k = 0; k < 3; ++k) {
                    const float p = ps.underbase ? w[x][k]
                                                 : w[x][k] * float(kUnderbaseScatter + (1 - kUnderbaseScatter) * gf[k]);
                    d[x][k] = p + (1 - a) * gf[k];
                }
            }
        }
    }

    lap("scene:ink");
    // Stains on top.
    for (const auto& st : ps.stains) {
        const cv::Rect r = g.rect(st.rect_mm);
        if (r.empty()) continue;
        cv::Mat m;
        cv::resize(st.alpha, m, r.size(), 0, 0, cv::INTER_AREA);
        cv::Mat before = scene(r).clone();
        cv::Mat dst = scene(r);
        for (int y = 0; y < r.height; ++y) {
            auto* d = dst.ptr<cv::Vec3f>(y);
            const float* a = m.ptr<float>(y);
            for (int x = 0; x < r.width; ++x)
                for (int k = 0; k < 3; ++k)
                    d[x][k] = st.multiply ? d[x][k] * (1 - a[x] + a[x] * float(st.lin[k]))
                                          : d[x][k] * (1 - a[x]) + a[x] * float(st.lin[k]);
        }
        if (stain_truth) {
            LocalTruth t;
            long n = 0;
            for (int y = 0; y < r.height; ++y)
                for (int x = 0; x < r.width; ++x) {
                    const cv::Vec3f a = before.at<cv::Vec3f>(y, x), b = dst.at<cv::Vec3f>(y, x);
                    if (a == b) continue;
                    const double d = ciede2000(linear_to_lab(cv::Vec3d(a)), linear_to_lab(cv::Vec3d(b)));
                    t.max_de = std::max(t.max_de, d);
                    if (d > kLocalDe) ++n;
                }
            t.area_mm2 = static_cast<double>(n) / (g.sp * g.sp);
            stain_truth->push_back(t);
        }
    }

    lap("scene:stains");
    // Fabric texture: knit noise, heather mottling and streaks, soft wrinkles; ink lets part of
    // it through.
    cv::Mat tex(g.size, CV_32F, cv::Scalar(0));
    {
        cv::Mat sub = tex(shirt);
        const double knit = ps.heather ? 0.06 : uniform(rng, 0.025, 0.045);
        const float* nt = normal_table();
        const std::uint64_t seed = rng();
        cv::parallel_for_(cv::Range(0, sub.rows), [&](const cv::Range& r) {
            for (int y = r.start; y < r.end; ++y) {
                std::uint64_t st = mix_seed(seed, static_cast<std::uint64_t>(y)) | 1;
                float* p = sub.ptr<float>(y);
                for (int x = 0; x < sub.cols; ++x) {
                    st ^= st << 13;
                    st ^= st >> 7;
                    st ^= st << 17;
                    p[x] = static_cast<float>(knit) * nt[st & 0xffff];
                }
            }
        });
        cv::blur(sub, sub, cv::Size(2, 2));
        const cv::Size small(std::max(2, shirt.width / 4), std::max(2, shirt.height / 4));
        cv::Mat low = (smooth_noise(small, 90 * g.sp / 4, rng) - 0.5f) * 0.025f;
        if (ps.heather) {
            low += (smooth_noise(small, 2.5 * g.sp / 4, rng) - 0.5f) * 0.16f;
            cv::Mat streak = smooth_noise(cv::Size(std::max(2, small.width / 60), small.height), 1.5, rng);
            cv::resize(streak, streak, small, 0, 0, cv::INTER_LINEAR);
            low += (streak - 0.5f) * 0.12f;
        }
        cv::resize(low, low, shirt.size(), 0, 0, cv::INTER_LINEAR);
        sub += low;
        if (!roi.empty()) {
            cv::Mat t = tex(roi);
            cv::Mat keep = 1.0f - alpha_roi * 0.6f;
            cv::multiply(t, keep, t);
        }
        tex += 1.0f;
        multiply_texture(scene, tex);
    }
    return scene;
}

// The camera's image formation in one pass per pixel: the scene (linear R,G,B) seen through the
// perspective `img_to_scene` (bilinear; `background` outside it), exposure (per-channel gain,
// black offset), flat field, sRGB encoding, to B,G,R 8-bit.
cv::Mat expose(const cv::Mat& scene, const cv::Matx33d& img_to_scene, const cv::Vec3f& background,
               const cv::Vec3d& gain, const cv::Vec3d& off, const cv::Mat& flat) {
    static const std::vector<std::uint8_t> table = [] {
        std::vector<std::uint8_t> t(65536);
        for (int i = 0; i < 65536; ++i) t[i] = cv::saturate_cast<std::uint8_t>(linear_to_srgb(i / 65535.0) * 255.0);
        return t;
    }();
    cv::Mat out(flat.size(), CV_8UC3);
    const float g[3] = {float(gain[0]), float(gain[1]), float(gain[2])};
    const float o[3] = {float(off[0]), float(off[1]), float(off[2])};
    const cv::Matx33d& M = img_to_scene;
    const int sw = scene.cols, sh = scene.rows;
    cv::parallel_for_(cv::Range(0, out.rows), [&](const cv::Range& r) {
        for (int y = r.start; y < r.end; ++y) {
            const float* f = flat.ptr<float>(y);
            auto* d = out.ptr<cv::Vec3b>(y);
            for (int x = 0; x < out.cols; ++x) {
                const double w = M(2, 0) * x + M(2, 1) * y + M(2, 2);
                const double u = (M(0, 0) * x + M(0, 1) * y + M(0, 2)) / w;
                const double v = (M(1, 0) * x + M(1, 1) * y + M(1, 2)) / w;
                cv::Vec3f c = background;
                if (u >= 0 && v >= 0 && u < sw - 1 && v < sh - 1) {
                    const int iu = static_cast<int>(u), iv = static_cast<int>(v);
                    const float fu = static_cast<float>(u - iu), fv = static_cast<float>(v - iv);
                    const auto* p0 = scene.ptr<cv::Vec3f>(iv) + iu;
                    const auto* p1 = scene.ptr<cv::Vec3f>(iv + 1) + iu;
                    c = (p0[0] * (1 - fu) + p0[1] * fu) * (1 - fv) + (p1[0] * (1 - fu) + p1[1] * fu) * fv;
                }
                for (int k = 0; k < 3; ++k) {
                    const float val = std::clamp((g[k] * c[k] + o[k]) * f[x], 0.0f, 1.0f);
                    d[x][2 - k] = table[static_cast<std::size_t>(val * 65535.0f + 0.5f)];
                }
            }
        }
    });
    return out;
}

// Gaussian noise of `sigma` DN, deterministic for `seed` whatever the threading: a fixed table
// of normal deviates indexed by a per-row xorshift generator.
const float* normal_table() {
    static const std::vector<float> t = [] {
        std::vector<float> v(65536);
        Rng r(12345);
        std::normal_distribution<float> n(0.0f, 1.0f);
        for (auto& x : v) x = n(r);
        return v;
    }();
    return t.data();
}
void add_noise(cv::Mat& img8, double sigma, std::uint64_t seed) {
    const float* nt = normal_table();
    const int n = img8.cols * img8.channels();
    const float sg = static_cast<float>(sigma);
    cv::parallel_for_(cv::Range(0, img8.rows), [&](const cv::Range& r) {
        for (int y = r.start; y < r.end; ++y) {
            std::uint64_t st = mix_seed(seed, static_cast<std::uint64_t>(y)) | 1;
            std::uint8_t* p = img8.ptr<std::uint8_t>(y);
            for (int x = 0; x < n; ++x) {
                st ^= st << 13;
                st ^= st >> 7;
                st ^= st << 17;
                p[x] = cv::saturate_cast<std::uint8_t>(p[x] + sg * nt[st & 0xffff]);
            }
        }
    });
}

// Multiplies a scene (CV_32FC3) by a texture map (CV_32F).
void multiply_texture(cv::Mat& scene, const cv::Mat& tex) {
    cv::parallel_for_(cv::Range(0, scene.rows), [&](const cv::Range& r) {
        for (int y = r.start; y < r.end; ++y) {
            auto* s = scene.ptr<cv::Vec3f>(y);
            const float* t = tex.ptr<float>(y);
            for (int x = 0; x < scene.cols; ++x) s[x] *= t[x];
        }
    });
}

// The camera: perspective, blur, exposure and white balance, flat field, sRGB, noise.
// Returns BGR 8-bit.
cv::Mat shoot(const Camera& cam, const cv::Mat& scene, const SceneGeom& g, Rng& rng, const Options& opt,
              nlohmann::json& camera_truth) {
    const cv::Matx33d img_to_scene = (cam.H * g.mm_to_px().inv()).inv();
    const double blur = uniform(rng, 0.5, 0.9) * cam.image_size.width / 4000.0 + 0.3;
    // Exposure / white balance: captured = gain * true + black offset (then the flat field).
    const cv::Vec3d gain(uniform(rng, 0.85, 1.1), uniform(rng, 0.85, 1.1), uniform(rng, 0.85, 1.1));
    const cv::Vec3d off(uniform(rng, 0.0, 0.006), uniform(rng, 0.0, 0.006), uniform(rng, 0.0, 0.006));
    // Flat field (exactly the written gain map, stretched like the inspector does) times a small
    // residual lighting gradient the flat field does not know (linear, so it can be applied to
    // the small map before stretching).
    cv::Mat flat;
    cam.flatfield16.convertTo(flat, CV_32F, 1.0 / 65535.0);
    const double ang = uniform(rng, 0, 2 * std::numbers::pi);
    const double amp = opt.residual_gradient * uniform(rng, 0.3, 1.0);
    for (int y = 0; y < flat.rows; ++y)
        for (int x = 0; x < flat.cols; ++x) {
            const double u = (x + 0.5) / flat.cols - 0.5, v = (y + 0.5) / flat.rows - 0.5;
            flat.at<float>(y, x) *= static_cast<float>(1.0 + amp * 2.0 * (u * std::cos(ang) + v * std::sin(ang)));
        }
    cv::resize(flat, flat, cam.image_size, 0, 0, cv::INTER_LINEAR);
    lap("cam:flat");
    // One pass: perspective, exposure, flat field, sRGB encoding, R,G,B -> B,G,R.
    cv::Mat out8 = expose(scene, img_to_scene, cv::Vec3f(0.03f, 0.03f, 0.035f), gain, off, flat);
    lap("cam:expose");
    cv::GaussianBlur(out8, out8, cv::Size(), blur);
    lap("cam:blur");
    const double sigma = uniform(rng, 0.8, 1.8);
    add_noise(out8, sigma, rng());
    lap("cam:noise");
    camera_truth = {{"wb_gain", {gain[0], gain[1], gain[2]}},
                    {"black_offset", {off[0], off[1], off[2]}},
                    {"residual_gradient", amp},
                    {"noise_dn", sigma},
                    {"blur_px", blur}};
    return out8;
}

struct Job {
    cv::Mat ref_bgra;
    double ppm = 0;
    cv::Vec4d box_mm;
    cv::Vec3d garment_srgb;   // nominal
    std::string garment_name;
};

const std::vector<std::pair<std::string, Garment>>& blank_mixups() {
    static const std::vector<std::pair<std::string, Garment>> m = {
        {"black", {"navy", {31, 42, 68}}},        {"navy", {"black", {20, 20, 22}}},
        {"white", {"heather_grey", {150, 150, 152}}}, {"heather_grey", {"white", {245, 245, 242}}},
        {"red", {"maroon", {100, 22, 38}}},       {"royal", {"navy", {31, 42, 68}}},
        {"forest", {"black", {20, 20, 22}}}};
    return m;
}

cv::Point2d ref_px_to_mm(const Job& job, double x, double y) {
    return {job.box_mm[0] + (x + 0.5) / job.ppm, job.box_mm[1] + (y + 0.5) / job.ppm};
}

// A random inked point of the reference whose colour stands out from the garment.
cv::Point inked_point(const Ink& ink, const cv::Vec3d& g, Rng& rng, int margin) {
    const cv::Vec3d glab = linear_to_lab(g);
    cv::Point best(ink.alpha.cols / 2, ink.alpha.rows / 2);
    for (int i = 0; i < 400; ++i) {
        const cv::Point p(uniform_int(rng, margin, std::max(margin, ink.alpha.cols - 1 - margin)),
                          uniform_int(rng, margin, std::max(margin, ink.alpha.rows - 1 - margin)));
        if (ink.alpha.at<float>(p) < 0.95f) continue;
        best = p;
        if (ciede2000(linear_to_lab(cv::Vec3d(ink.lin.at<cv::Vec3f>(p))), glab) >= 25) return p;
    }
    return best;
}

nlohmann::json rect_json(const cv::Rect2d& r) { return {r.x, r.y, r.width, r.height}; }

struct Made {
    cv::Mat capture;
    nlohmann::json truth;
};

Made make_print(const Job& job, const std::string& type, Severity sev, Rng& rng, const Camera& cam,
                const Options& opt) {
    const bool defect = type != "good" && sev == Severity::clear;
    const cv::Vec3d g_nom_lin = srgb8_to_linear(job.garment_srgb);
    const Ink ink0 = ink_from_bgra(job.ref_bgra);
    const Samples samples = inked_samples(ink0, 4000);
    const Samples dense = inked_samples(ink0, 60000);
    lap("ink0");
    PrintSpec ps;
    ps.box_mm = job.box_mm;
    ps.ink = ink0.clone();
    ps.heather = job.garment_name == "heather_grey";
    // Small variations every print has.
    const bool good = type == "good";
    const double jit = good ? 1.0 : 0.6;
    {
        const double r = uniform(rng, 0, 1.5 * jit), a = uniform(rng, 0, 2 * std::numbers::pi);
        ps.sim = {r * std::cos(a), r * std::sin(a), uniform(rng, -0.4, 0.4) * jit, 1 + uniform(rng, -0.006, 0.006) * jit};
    }
    cv::Vec3d g_act = job.garment_srgb;
    if (chance(rng, 0.7)) g_act = shift_colour(job.garment_srgb, uniform(rng, 0.3, 1.5), rng);
    std::string garment_name = job.garment_name;
    const double colour_target = good ? uniform(rng, 0.1, 0.8) : uniform(rng, 0.0, 0.4);
    apply_gains(ps.ink, colour_gains(samples, dense, ink0, g_nom_lin, colour_target, rng, 4.0));

    nlohmann::json dtruth = nullptr;
    const double ppm = job.ppm;
    if (type == "misaligned") {
        const int mode = uniform_int(rng, 0, defect ? 3 : 2);
        Similarity s{0, 0, 0, 1};
        const double a = uniform(rng, 0, 2 * std::numbers::pi);
        const double sign = chance(rng, 0.5) ? 1 : -1;
        const char* kinds[] = {"offset", "rotation", "scale", "combined"};
        if (mode == 0 || mode == 3) {
            const double r = defect ? uniform(rng, 8, 30) : 3.5;
            s.dx = r * std::cos(a);
            s.dy = r * std::sin(a);
        }
        if (mode == 1 || mode == 3) s.rot_deg = sign * (defect ? uniform(rng, 3, 8) : 1.2);
        if (mode == 2 || mode == 3) s.scale = 1 + sign * (defect ? uniform(rng, 5, 10) : 1.8) / 100.0;
        ps.sim = s;
        dtruth = {{"kind", kinds[mode]}};
    } else if (type == "color_shift") {
        const double target = defect ? uniform(rng, 5, 15) : uniform(rng, 1.5, 2.0);
        ps.ink = ink0.clone();
        apply_gains(ps.ink, colour_gains(samples, dense, ink0, g_nom_lin, target, rng, defect ? 1e9 : 6.0));
        dtruth = {{"kind", "global"}, {"target_de00", target}};
    } else if (type == "missing_ink") {
        const Ink base = ps.ink.clone();
        const int mode = defect ? uniform_int(rng, 0, 2) : -1;
        const char* kinds[] = {"dropout", "banding", "missing_region"};
        LocalTruth lt;
        cv::Rect2d bbox_mm;
        for (int attempt = 0; attempt < 12; ++attempt) {
            ps.ink = base.clone();
            cv::Mat m(ps.ink.alpha.size(), CV_32F, cv::Scalar(0));  // 1 = no ink
            double residual = 0;
            if (mode == -1) {  // one 2 x 2 mm dropout: 4 mm², under the 9 mm² tolerance
                const cv::Point p = inked_point(base, g_nom_lin, rng, cvRound(3 * ppm));
                const int s = cvRound(2 * ppm);
                cv::rectangle(m, cv::Rect(p.x - s / 2, p.y - s / 2, s, s), cv::Scalar(1), cv::FILLED);
            } else if (mode == 0) {
                const int n = uniform_int(rng, 1, 3);
                residual = uniform(rng, 0.0, 0.2);
                for (int i = 0; i < n; ++i) {
                    const double area = uniform(rng, 60, 260);
                    const double ratio = uniform(rng, 0.5, 2.0);
                    const double ax = std::sqrt(area / std::numbers::pi * ratio), ay = area / std::numbers::pi / ax;
                    const cv::Point p = inked_point(base, g_nom_lin, rng, cvRound(std::max(ax, ay) * ppm));
                    cv::ellipse(m, p, cv::Size(cvRound(ax * ppm), cvRound(ay * ppm)), uniform(rng, 0, 180), 0, 360,
                                cv::Scalar(1), cv::FILLED, cv::LINE_AA);
                }
            } else if (mode == 1) {
                const int n = uniform_int(rng, 2, 5);
                residual = uniform(rng, 0.25, 0.5);
                for (int i = 0; i < n; ++i) {
                    const int h = std::max(2, cvRound(uniform(rng, 1.5, 4.0) * ppm));
                    const int y = uniform_int(rng, 0, std::max(0, m.rows - h));
                    m(cv::Rect(0, y, m.cols, std::min(h, m.rows - y))).setTo(1);
                }
            } else {
                const double fw = uniform(rng, 0.3, 0.6), fh = uniform(rng, 0.25, 0.5);
                const int w = cvRound(m.cols * fw), h = cvRound(m.rows * fh);
                const int x = chance(rng, 0.5) ? 0 : m.cols - w, y = chance(rng, 0.5) ? 0 : m.rows - h;
                m(cv::Rect(x, y, w, h)).setTo(1);
            }
            if (mode >= 0) cv::GaussianBlur(m, m, cv::Size(), 0.3 * ppm);
            cv::Mat keep = 1.0f - m * float(1 - residual);
            cv::multiply(ps.ink.alpha, keep, ps.ink.alpha);
            cv::Mat nz;
            cv::compare(m, 0.01, nz, cv::CMP_GT);
            const cv::Rect r = cv::boundingRect(nz);
            const cv::Point2d tl = ref_px_to_mm(job, r.x - 0.5, r.y - 0.5);
            bbox_mm = cv::Rect2d(tl.x, tl.y, r.width / ppm, r.height / ppm);
            lt = local_truth_ref(base, g_nom_lin, ps.ink, r, ppm);
            if (mode == -1 || lt.area_mm2 >= kClearAreaMm2) break;
        }
        dtruth = {{"kind", mode < 0 ? "dropout" : kinds[mode]},
                  {"bbox_mm", rect_json(bbox_mm)},
                  {"area_mm2", lt.area_mm2},
                  {"max_de00", lt.max_de}};
    } else if (type == "smudge") {
        const cv::Vec3d glab = srgb8_to_lab(g_act);
        const std::vector<cv::Vec3d> colours = {{70, 50, 35},   {60, 60, 62},   {25, 25, 25}, {40, 60, 160},
                                                {180, 40, 40},  {225, 225, 220}, {230, 200, 60}};
        std::vector<cv::Vec3d> ok;
        for (const auto& c : colours)
            if (ciede2000(srgb8_to_lab(c), glab) >= 30) ok.push_back(c);
        const int mode = defect ? uniform_int(rng, 0, 2) : -1;
        const char* kinds[] = {"smear", "stain", "spot"};
        const bool inside = chance(rng, 0.6);
        Stain st;
        st.kind = mode < 0 ? "spot" : kinds[mode];
        const double mpp = 10.0;  // mask px per mm
        cv::Point2d c;
        double extent = 0;
        if (mode == -1) extent = 1.2;
        else if (mode == 0) extent = 18;
        else if (mode == 1) extent = 12;
        else extent = 5;
        const double bx = job.box_mm[0], by = job.box_mm[1], bw = job.box_mm[2], bh = job.box_mm[3];
        if (inside) {
            c = {uniform(rng, bx + extent, bx + bw - extent), uniform(rng, by + extent, by + bh - extent)};
        } else {  // in the margin ring: 3..15 mm beyond an edge, within the grown box
            const double d = uniform(rng, 3, std::max(3.5, 17 - extent));
            switch (uniform_int(rng, 0, 3)) {
            case 0: c = {uniform(rng, bx, bx + bw), by - d - extent / 2}; break;
            case 1: c = {uniform(rng, bx, bx + bw), by + bh + d + extent / 2}; break;
            case 2: c = {bx - d - extent / 2, uniform(rng, by, by + bh)}; break;
            default: c = {bx + bw + d + extent / 2, uniform(rng, by, by + bh)};
            }
        }
        const double half = extent + 2;
        st.rect_mm = cv::Rect2d(c.x - half, c.y - half, 2 * half, 2 * half);
        const cv::Size ms(cvRound(2 * half * mpp), cvRound(2 * half * mpp));
        cv::Mat m(ms, CV_32F, cv::Scalar(0));
        const cv::Point mc(ms.width / 2, ms.height / 2);
        double opacity = uniform(rng, 0.75, 0.95);
        if (mode == -1) {
            cv::circle(m, mc, cvRound(std::sqrt(4.0 / std::numbers::pi) * mpp), cv::Scalar(1), cv::FILLED, cv::LINE_AA);
            opacity = 0.55;
        } else if (mode == 0) {
            const double len = uniform(rng, 10, 34), wid = uniform(rng, 2.5, 6);
            cv::ellipse(m, mc, cv::Size(cvRound(len / 2 * mpp), cvRound(wid / 2 * mpp)), uniform(rng, 0, 180), 0, 360,
                        cv::Scalar(1), cv::FILLED, cv::LINE_AA);
            cv::GaussianBlur(m, m, cv::Size(), 0.5 * mpp);
        } else if (mode == 1) {
            const int n = uniform_int(rng, 3, 6);
            for (int i = 0; i < n; ++i)
                cv::circle(m, mc + cv::Point(cvRound(uniform(rng, -5, 5) * mpp), cvRound(uniform(rng, -5, 5) * mpp)),
                           cvRound(uniform(rng, 2, 5.5) * mpp), cv::Scalar(1), cv::FILLED, cv::LINE_AA);
            cv::GaussianBlur(m, m, cv::Size(), 1.0 * mpp);
            st.multiply = glab[0] > 55;
        } else {
            cv::circle(m, mc, cvRound(uniform(rng, 2.6, 4.5) * mpp), cv::Scalar(1), cv::FILLED, cv::LINE_AA);
            cv::GaussianBlur(m, m, cv::Size(), 0.2 * mpp);
        }
        st.alpha = m * opacity;
        const cv::Vec3d col = ok.empty() ? cv::Vec3d(128, 128, 128) : ok[uniform_int(rng, 0, int(ok.size()) - 1)];
        st.lin = st.multiply ? cv::Vec3d(uniform(rng, 0.15, 0.5), uniform(rng, 0.1, 0.35), uniform(rng, 0.03, 0.2))
                             : srgb8_to_linear(col);
        ps.stains.push_back(st);
        dtruth = {{"kind", st.kind},
                  {"inside_artwork", inside},
                  {"bbox_mm", rect_json(st.rect_mm)},
                  {"colour_srgb", {col[0], col[1], col[2]}}};
    } else if (type == "wrong_design") {
        const auto& kinds = artwork_kinds();
        const std::string kind = kinds[uniform_int(rng, 0, int(kinds.size()) - 1)];
        ps.ink = ink_from_bgra(make_artwork(job.ref_bgra.size(), ppm, kind, job.garment_srgb, rng));
        dtruth = {{"kind", "other_artwork"}, {"artwork", kind}};
    } else if (type == "missing_underbase") {
        ps.underbase = false;
        dtruth = {{"kind", "no_underbase"}};
    } else if (type == "wrong_blank") {
        if (defect) {
            const auto& mix = blank_mixups();
            auto it = std::find_if(mix.begin(), mix.end(), [&](const auto& p) { return p.first == job.garment_name; });
            if (it != mix.end()) {
                g_act = it->second.srgb;
                garment_name = it->second.name;
            } else {
                g_act = shift_colour(job.garment_srgb, uniform(rng, 18, 30), rng);
                garment_name = "other";
            }
        } else {
            g_act = shift_colour(job.garment_srgb, uniform(rng, 5, 8), rng);
            garment_name = job.garment_name + "_other_lot";
        }
        dtruth = {{"kind", defect ? "other_garment" : "garment_shade"},
                  {"actual_srgb", {g_act[0], g_act[1], g_act[2]}},
                  {"de00_vs_nominal", ciede2000(srgb8_to_lab(g_act), srgb8_to_lab(job.garment_srgb))}};
    }
    ps.garment_lin = srgb8_to_linear(g_act);
    lap("defect");

    // The scene around the platen at about the camera's resolution there.
    SceneGeom g;
    {
        const cv::Vec3d c = cam.H * cv::Vec3d(203, 254, 1), cx = cam.H * cv::Vec3d(204, 254, 1);
        const double p = std::hypot(cx[0] / cx[2] - c[0] / c[2], cx[1] / cx[2] - c[1] / c[2]);
        g.sp = p * 1.05;
        g.size = cv::Size(cvRound(690 * g.sp), cvRound(620 * g.sp));
    }
    std::vector<LocalTruth> stain_truth;
    const cv::Mat scene = render_scene(cam, ps, ppm, g, rng, &stain_truth);
    lap("scene:texture");
    if (type == "smudge" && !stain_truth.empty()) {
        dtruth["area_mm2"] = stain_truth[0].area_mm2;
        dtruth["max_de00"] = stain_truth[0].max_de;
    }
    nlohmann::json camera_truth;
    Made made;
    made.capture = shoot(cam, scene, g, rng, opt, camera_truth);

    lap("cam:bgr");
    double p99 = 0, max_de = 0;
    const double mean = mean_de(dense, ink0, g_nom_lin, ps.ink, ps.garment_lin, ps.underbase, nullptr, &p99, &max_de);
    const double offx = ps.sim.dx, offy = ps.sim.dy;
    made.truth = {{"verdict", defect ? "fail" : "pass"},
                  {"reason", defect ? type : "ok"},
                  {"type", good ? "good" : type},
                  {"severity", to_string(good ? Severity::none : sev)},
                  {"offset_mm", {{"x", offx}, {"y", offy}}},
                  {"center_offset_mm", std::hypot(offx, offy)},
                  {"rotation_deg", ps.sim.rot_deg},
                  {"scale_pct", (ps.sim.scale - 1) * 100},
                  {"mean_de00", mean},
                  {"p99_de00", p99},
                  {"max_de00", max_de},
                  {"defect", dtruth},
                  {"garment", garment_name},
                  {"garment_nominal", job.garment_name},
                  {"garment_srgb_actual", {g_act[0], g_act[1], g_act[2]}},
                  {"underbase", ps.underbase},
                  {"camera", camera_truth}};
    return made;
}

}  // namespace

const std::vector<std::string>& defect_types() {
    static const std::vector<std::string> t = {"misaligned", "color_shift",       "missing_ink", "smudge",
                                               "wrong_design", "missing_underbase", "wrong_blank"};
    return t;
}

const std::vector<Garment>& garments() {
    static const std::vector<Garment> g = {{"white", {245, 245, 242}}, {"black", {20, 20, 22}},
                                           {"navy", {31, 42, 68}},     {"heather_grey", {150, 150, 152}},
                                           {"red", {170, 25, 35}},     {"royal", {40, 70, 160}},
                                           {"forest", {30, 70, 45}}};
    return g;
}

std::string to_string(Severity s) {
    switch (s) {
    case Severity::clear: return "clear";
    case Severity::just_inside: return "just_inside";
    default: return "none";
    }
}

std::string case_id(const CaseSpec& spec, int index) {
    char buf[96];
    if (spec.type == "good") std::snprintf(buf, sizeof buf, "good-%03d", index);
    else std::snprintf(buf, sizeof buf, "%s-%s-%03d", spec.type.c_str(), to_string(spec.severity).c_str(), index);
    return buf;
}

std::vector<CaseSpec> dataset_specs(int per_type, int good, std::uint64_t seed, const std::vector<std::string>& types) {
    std::vector<CaseSpec> out;
    const auto& all = types.empty() ? defect_types() : types;
    std::uint64_t n = 0;
    for (const auto& t : all) {
        const bool has_inside = t != "wrong_design" && t != "missing_underbase";
        const int clear = has_inside ? (per_type * 7 + 9) / 10 : per_type;
        for (int i = 0; i < per_type; ++i)
            out.push_back({t, i < clear ? Severity::clear : Severity::just_inside, mix_seed(seed, ++n)});
    }
    for (int i = 0; i < good; ++i) out.push_back({"good", Severity::none, mix_seed(seed, ++n)});
    return out;
}

GeneratedCase generate_case(const CaseSpec& spec, const Options& opt) {
    if (spec.type != "good" &&
        std::find(defect_types().begin(), defect_types().end(), spec.type) == defect_types().end())
        throw std::invalid_argument("unknown case type '" + spec.type + "'");
    Trace trace;
    g_trace = &trace;
    Rng rng(spec.seed);
    const Camera cam = make_camera(opt.image_size, mix_seed(spec.seed, 7));
    Job job;
    // The garment: missing underbase only shows on non-white garments.
    const auto& gs = garments();
    const Garment& garment =
        spec.type == "missing_underbase" ? gs[uniform_int(rng, 1, int(gs.size()) - 1)] : gs[uniform_int(rng, 0, int(gs.size()) - 1)];
    job.garment_srgb = garment.srgb;
    job.garment_name = garment.name;
    const auto& kinds = artwork_kinds();
    const std::string kind = kinds[uniform_int(rng, 0, int(kinds.size()) - 1)];
    job.ppm = opt.reference_px_per_mm;
    const double w = uniform(rng, 180, 300);
    double aspect = kind == "text" ? uniform(rng, 0.45, 0.8) : uniform(rng, 0.6, 1.25);
    const double h = std::min(w * aspect, 330.0);
    const cv::Size px(cvRound(w * job.ppm), cvRound(h * job.ppm));
    const double bw = px.width / job.ppm, bh = px.height / job.ppm;
    job.box_mm = {(kPlatenWidthMm - bw) / 2 + uniform(rng, -15, 15), uniform(rng, 55, 100), bw, bh};
    job.ref_bgra = make_artwork(px, job.ppm, kind, job.garment_srgb, rng);
    lap("artwork");

    Made made = make_print(job, spec.type, spec.severity, rng, cam, opt);
    lap("truth");
    g_trace = nullptr;
    GeneratedCase out;
    out.id = spec.type;
    out.capture = std::move(made.capture);
    out.reference = job.ref_bgra;
    out.flatfield16 = cam.flatfield16;
    out.truth = std::move(made.truth);
    out.truth["artwork"] = kind;
    out.truth["seed"] = spec.seed;
    out.case_json = {{"capture", opt.png_capture ? "capture.png" : "capture.jpg"},
                     {"reference", "reference.png"},
                     {"reference_px_per_mm", job.ppm},
                     {"placement_mm", {{"x", job.box_mm[0]}, {"y", job.box_mm[1]}, {"width", bw}, {"height", bh}}},
                     {"garment_srgb_nominal", {job.garment_srgb[0], job.garment_srgb[1], job.garment_srgb[2]}},
                     {"calibration", camera_to_json(cam, "flatfield.png")}};
    return out;
}

namespace {
void write_json(const std::filesystem::path& p, const nlohmann::json& j) {
    std::ofstream f(p);
    f << j.dump(2) << '\n';
    if (!f) throw std::runtime_error("cannot write " + p.string());
}
void write_image(const std::filesystem::path& p, const cv::Mat& m, const std::vector<int>& params) {
    bool ok = false;
    try {
        ok = cv::imwrite(p.string(), m, params);
    } catch (const cv::Exception& e) {
        throw std::runtime_error("cannot write " + p.string() + ": " + e.what());
    }
    if (!ok) throw std::runtime_error("cannot write " + p.string());
}
}  // namespace

void write_case(const GeneratedCase& c, const std::filesystem::path& dir, const Options& opt) {
    std::filesystem::create_directories(dir);
    if (opt.png_capture) write_image(dir / "capture.png", c.capture, {cv::IMWRITE_PNG_COMPRESSION, 1});
    else write_image(dir / "capture.jpg", c.capture, {cv::IMWRITE_JPEG_QUALITY, opt.jpeg_quality});
    write_image(dir / "reference.png", c.reference, {cv::IMWRITE_PNG_COMPRESSION, 1});
    write_image(dir / "flatfield.png", c.flatfield16, {cv::IMWRITE_PNG_COMPRESSION, 3});
    write_json(dir / "case.json", c.case_json);
    write_json(dir / "truth.json", c.truth);
}

Photo photograph(const PhotoRequest& req, const Camera& cam, const Options& opt) {
    if (req.print_bgra.empty() || req.print_bgra.type() != CV_8UC4)
        throw std::invalid_argument("print file: not an 8-bit RGBA image");
    Rng rng(req.seed);
    const double ppm = req.print_bgra.cols / req.platen_width_mm;
    cv::Mat a;
    cv::extractChannel(req.print_bgra, a, 3);
    cv::Rect bbox = cv::boundingRect(a > 0);
    if (bbox.empty()) bbox = cv::Rect(0, 0, req.print_bgra.cols, req.print_bgra.rows);
    Job job;
    job.ppm = ppm;
    job.box_mm = {bbox.x / ppm, bbox.y / ppm, bbox.width / ppm, bbox.height / ppm};
    job.ref_bgra = req.print_bgra(bbox).clone();
    // Work at no more than ~8 px/mm: the camera sees about 5.
    if (ppm > 8.5) {
        const double f = 8.0 / ppm;
        const cv::Size s(std::max(1, cvRound(bbox.width * f)), std::max(1, cvRound(bbox.height * f)));
        cv::Mat premul;
        job.ref_bgra.convertTo(premul, CV_32FC4);
        std::vector<cv::Mat> ch;
        cv::split(premul, ch);
        for (int k = 0; k < 3; ++k) cv::multiply(ch[k], ch[3], ch[k], 1.0 / 255.0);
        cv::merge(ch, premul);
        cv::resize(premul, premul, s, 0, 0, cv::INTER_AREA);
        cv::split(premul, ch);
        for (int k = 0; k < 3; ++k) cv::divide(ch[k], cv::max(ch[3], 1e-3) / 255.0, ch[k]);
        cv::merge(ch, premul);
        premul.convertTo(job.ref_bgra, CV_8UC4);
        job.ppm = s.width / job.box_mm[2];
    }
    job.garment_srgb = req.garment_srgb;
    job.garment_name = "custom";
    double best = 1e9;
    for (const auto& g : garments()) {
        const double d = ciede2000(srgb8_to_lab(g.srgb), srgb8_to_lab(req.garment_srgb));
        if (d < best && d < 6) best = d, job.garment_name = g.name;
    }
    std::string type = req.defect.empty() ? "good" : req.defect;
    if (type != "good" && std::find(defect_types().begin(), defect_types().end(), type) == defect_types().end())
        throw std::invalid_argument("unknown defect '" + type + "'");
    Made made = make_print(job, type, type == "good" ? Severity::none : Severity::clear, rng, cam, opt);
    return {std::move(made.capture), std::move(made.truth)};
}

}  // namespace pressline::qa_dataset
