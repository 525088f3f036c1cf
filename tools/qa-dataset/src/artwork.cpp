// Procedural artworks of the QA dataset: flat-colour logos, text, gradients and photo-like
// patterns, some with transparent backgrounds and soft edges.
#include <algorithm>
#include <cmath>
#include <numbers>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "detail.hpp"
#include "pressline/qa_dataset/color.hpp"

namespace pressline::qa_dataset::detail {
namespace {

// Premultiplied float canvas (r, g, b, a), sRGB-encoded colours.
struct Canvas {
    cv::Mat p;  // CV_32FC4
    explicit Canvas(cv::Size s) : p(s, CV_32FC4, cv::Scalar::all(0)) {}

    // Paints `colour` (r, g, b 0..255) through `mask` (CV_8U coverage) over what is there.
    void paint(const cv::Mat& mask, const cv::Vec3d& colour) {
        cv::Mat m;
        mask.convertTo(m, CV_32F, 1.0 / 255.0);
        paint_f(m, [&](int, int) { return colour; });
    }
    // Paints a per-pixel colour image (CV_32FC3 r,g,b 0..255) through a CV_32F mask.
    void paint_image(const cv::Mat& mask_f, const cv::Mat& colours) {
        paint_f(mask_f, [&](int y, int x) { return cv::Vec3d(colours.at<cv::Vec3f>(y, x)); });
    }
    template <class F>
    void paint_f(const cv::Mat& m, F colour_at) {
        cv::parallel_for_(cv::Range(0, p.rows), [&](const cv::Range& r) {
            for (int y = r.start; y < r.end; ++y) {
                auto* d = p.ptr<cv::Vec4f>(y);
                const float* mm = m.ptr<float>(y);
                for (int x = 0; x < p.cols; ++x) {
                    const float a = mm[x];
                    if (a <= 0) continue;
                    const cv::Vec3d c = colour_at(y, x);
                    for (int k = 0; k < 3; ++k) d[x][k] = d[x][k] * (1 - a) + a * static_cast<float>(c[k]);
                    d[x][3] = d[x][3] * (1 - a) + a;
                }
            }
        });
    }
    // Straight-alpha BGRA 8-bit.
    cv::Mat bgra() const {
        cv::Mat out(p.size(), CV_8UC4);
        for (int y = 0; y < p.rows; ++y) {
            const auto* s = p.ptr<cv::Vec4f>(y);
            auto* d = out.ptr<cv::Vec4b>(y);
            for (int x = 0; x < p.cols; ++x) {
                const float a = s[x][3];
                if (a < 0.5f / 255.0f) {
                    d[x] = cv::Vec4b(0, 0, 0, 0);
                    continue;
                }
                d[x] = cv::Vec4b(cv::saturate_cast<uchar>(s[x][2] / a), cv::saturate_cast<uchar>(s[x][1] / a),
                                 cv::saturate_cast<uchar>(s[x][0] / a), cv::saturate_cast<uchar>(a * 255.0f));
            }
        }
        return out;
    }
};

cv::Vec3d hsv_to_rgb(double h, double s, double v) {  // h 0..360, s, v 0..1 -> 0..255
    const double c = v * s;
    const double hp = std::fmod(h, 360.0) / 60.0;
    const double x = c * (1 - std::abs(std::fmod(hp, 2.0) - 1));
    double r = 0, g = 0, b = 0;
    if (hp < 1) r = c, g = x;
    else if (hp < 2) r = x, g = c;
    else if (hp < 3) g = c, b = x;
    else if (hp < 4) g = x, b = c;
    else if (hp < 5) r = x, b = c;
    else r = c, b = x;
    const double m = v - c;
    return {(r + m) * 255, (g + m) * 255, (b + m) * 255};
}

// Ink colours that stand out from the garment (ΔE00 >= 20) and from each other (>= 12).
std::vector<cv::Vec3d> palette(int n, const cv::Vec3d& garment, Rng& rng) {
    std::vector<cv::Vec3d> out;
    const cv::Vec3d glab = srgb8_to_lab(garment);
    for (int tries = 0; static_cast<int>(out.size()) < n && tries < 500; ++tries) {
        cv::Vec3d c;
        const double pick = uniform(rng, 0, 1);
        if (pick < 0.12) c = cv::Vec3d(250, 250, 248);                  // white ink
        else if (pick < 0.2) c = cv::Vec3d(25, 25, 28);                 // black ink
        else c = hsv_to_rgb(uniform(rng, 0, 360), uniform(rng, 0.45, 1.0), uniform(rng, 0.45, 1.0));
        const cv::Vec3d lab = srgb8_to_lab(c);
        bool ok = ciede2000(lab, glab) >= 20;
        for (const auto& o : out) ok = ok && ciede2000(lab, srgb8_to_lab(o)) >= 12;
        if (ok) out.push_back(c);
    }
    while (static_cast<int>(out.size()) < n)
        out.push_back(srgb8_to_lab(garment)[0] > 50 ? cv::Vec3d(30, 30, 120) : cv::Vec3d(250, 220, 60));
    return out;
}

cv::Point pt(double x, double y) { return {cvRound(x), cvRound(y)}; }

void draw_shape(cv::Mat& mask, Rng& rng, double scale) {
    const int w = mask.cols, h = mask.rows;
    const double cx = uniform(rng, 0.15, 0.85) * w, cy = uniform(rng, 0.15, 0.85) * h;
    const double r = uniform(rng, 0.08, 0.25) * std::min(w, h) * scale;
    const int kind = uniform_int(rng, 0, 4);
    switch (kind) {
    case 0:
        cv::circle(mask, pt(cx, cy), cvRound(r), cv::Scalar(255), cv::FILLED, cv::LINE_AA);
        break;
    case 1:
        cv::circle(mask, pt(cx, cy), cvRound(r), cv::Scalar(255), std::max(3, cvRound(r * 0.25)), cv::LINE_AA);
        break;
    case 2: {
        cv::RotatedRect rr(cv::Point2f(float(cx), float(cy)),
                           cv::Size2f(float(r * uniform(rng, 1, 2.5)), float(r * uniform(rng, 0.6, 1.5))),
                           float(uniform(rng, -30, 30)));
        cv::Point2f p[4];
        rr.points(p);
        std::vector<cv::Point> poly(p, p + 4);
        cv::fillConvexPoly(mask, poly, cv::Scalar(255), cv::LINE_AA);
        break;
    }
    case 3: {  // star
        const int n = uniform_int(rng, 5, 8);
        std::vector<cv::Point> poly;
        const double rot = uniform(rng, 0, 2 * std::numbers::pi);
        for (int i = 0; i < 2 * n; ++i) {
            const double rr = (i % 2 == 0) ? r : r * 0.45;
            const double a = rot + i * std::numbers::pi / n;
            poly.push_back(pt(cx + rr * std::cos(a), cy + rr * std::sin(a)));
        }
        cv::fillPoly(mask, std::vector<std::vector<cv::Point>>{poly}, cv::Scalar(255), cv::LINE_AA);
        break;
    }
    default: {  // triangle
        std::vector<cv::Point> poly;
        const double rot = uniform(rng, 0, 2 * std::numbers::pi);
        for (int i = 0; i < 3; ++i) {
            const double a = rot + i * 2 * std::numbers::pi / 3;
            poly.push_back(pt(cx + r * std::cos(a), cy + r * std::sin(a)));
        }
        cv::fillConvexPoly(mask, poly, cv::Scalar(255), cv::LINE_AA);
    }
    }
}

const char* kWords[] = {"PRESSLINE", "ROAST", "SUMMIT", "COASTAL", "NORTH", "DRIFT", "BREW CO",
                        "RIDE", "WILD", "STUDIO", "GAME DAY", "EST 2019", "LAB", "TIDE", "FOREST"};

void draw_text(cv::Mat& mask, Rng& rng, double y_frac, double height_frac) {
    const std::string word = kWords[uniform_int(rng, 0, int(std::size(kWords)) - 1)];
    const int fonts[] = {cv::FONT_HERSHEY_DUPLEX, cv::FONT_HERSHEY_TRIPLEX, cv::FONT_HERSHEY_COMPLEX,
                         cv::FONT_HERSHEY_SIMPLEX};
    const int font = fonts[uniform_int(rng, 0, 3)] | (chance(rng, 0.2) ? cv::FONT_ITALIC : 0);
    const int thick_base = 1;
    int baseline = 0;
    const cv::Size ts = cv::getTextSize(word, font, 1.0, thick_base, &baseline);
    double scale = std::min(mask.cols * 0.9 / ts.width, mask.rows * height_frac / ts.height);
    const int thick = std::max(2, cvRound(scale * uniform(rng, 1.5, 3.0)));
    const cv::Size t2 = cv::getTextSize(word, font, scale, thick, &baseline);
    const cv::Point org((mask.cols - t2.width) / 2, cvRound(y_frac * mask.rows + t2.height / 2.0));
    cv::putText(mask, word, org, font, scale, cv::Scalar(255), thick, cv::LINE_AA);
}

cv::Mat gradient_image(cv::Size s, const cv::Vec3d& c1, const cv::Vec3d& c2, bool radial, Rng& rng) {
    cv::Mat out(s, CV_32FC3);
    const double ang = uniform(rng, 0, std::numbers::pi);
    const double dx = std::cos(ang), dy = std::sin(ang);
    const double cx = s.width * uniform(rng, 0.3, 0.7), cy = s.height * uniform(rng, 0.3, 0.7);
    const double rmax = std::hypot(s.width, s.height) * 0.6;
    for (int y = 0; y < s.height; ++y) {
        auto* d = out.ptr<cv::Vec3f>(y);
        for (int x = 0; x < s.width; ++x) {
            double t = radial ? std::hypot(x - cx, y - cy) / rmax
                              : ((x - s.width / 2.0) * dx + (y - s.height / 2.0) * dy) /
                                        (std::abs(s.width * dx) + std::abs(s.height * dy)) + 0.5;
            t = std::clamp(t, 0.0, 1.0);
            d[x] = cv::Vec3f(c1 * (1 - t) + c2 * t);
        }
    }
    return out;
}

}  // namespace

std::uint64_t mix_seed(std::uint64_t a, std::uint64_t b) {
    std::uint64_t z = a + 0x9e3779b97f4a7c15ULL * (b + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

const std::vector<std::string>& artwork_kinds() {
    static const std::vector<std::string> k = {"logo", "text", "gradient", "photo"};
    return k;
}

cv::Mat smooth_noise(cv::Size size, double feature_px, Rng& rng) {
    const int w = std::max(2, cvRound(size.width / feature_px) + 2);
    const int h = std::max(2, cvRound(size.height / feature_px) + 2);
    cv::Mat small(h, w, CV_32F);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) small.at<float>(y, x) = static_cast<float>(uniform(rng, 0, 1));
    cv::Mat out;
    cv::resize(small, out, size, 0, 0, cv::INTER_CUBIC);
    cv::min(cv::max(out, 0.0), 1.0, out);
    return out;
}

cv::Mat make_artwork(cv::Size size, double px_per_mm, const std::string& kind, const cv::Vec3d& garment,
                     Rng& rng) {
    Canvas canvas(size);
    const auto pal = palette(5, garment, rng);
    const auto mask8 = [&] { return cv::Mat(size, CV_8U, cv::Scalar(0)); };
    if (kind == "logo") {
        if (chance(rng, 0.5)) {  // a badge behind the shapes
            cv::Mat m = mask8();
            if (chance(rng, 0.5))
                cv::ellipse(m, cv::Point(size.width / 2, size.height / 2),
                            cv::Size(size.width / 2 - 2, size.height / 2 - 2), 0, 0, 360, cv::Scalar(255),
                            cv::FILLED, cv::LINE_AA);
            else
                cv::rectangle(m, cv::Rect(2, 2, size.width - 4, size.height - 4), cv::Scalar(255), cv::FILLED);
            canvas.paint(m, pal[0]);
        }
        const int n = uniform_int(rng, 3, 7);
        for (int i = 0; i < n; ++i) {
            cv::Mat m = mask8();
            draw_shape(m, rng, 1.0);
            canvas.paint(m, pal[1 + i % 4]);
        }
        if (chance(rng, 0.6)) {
            cv::Mat m = mask8();
            draw_text(m, rng, uniform(rng, 0.7, 0.85), 0.18);
            canvas.paint(m, pal[uniform_int(rng, 1, 4)]);
        }
    } else if (kind == "text") {
        const int lines = uniform_int(rng, 2, 3);
        for (int i = 0; i < lines; ++i) {
            cv::Mat m = mask8();
            draw_text(m, rng, (i + 0.5) / lines, 0.8 / lines);
            if (chance(rng, 0.3)) {  // outlined
                cv::Mat outline;
                cv::dilate(m, outline, cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(9, 9)));
                canvas.paint(outline, pal[4]);
            }
            canvas.paint(m, pal[i % 3]);
        }
        cv::Mat m = mask8();
        const int y = uniform_int(rng, size.height / 10, size.height * 9 / 10);
        cv::line(m, cv::Point(size.width / 10, y), cv::Point(size.width * 9 / 10, y), cv::Scalar(255),
                 std::max(3, cvRound(2.5 * px_per_mm)), cv::LINE_AA);
        canvas.paint(m, pal[3]);
    } else if (kind == "gradient") {
        cv::Mat m = mask8();
        if (chance(rng, 0.5))
            cv::ellipse(m, cv::Point(size.width / 2, size.height / 2),
                        cv::Size(size.width / 2 - 2, size.height / 2 - 2), 0, 0, 360, cv::Scalar(255), cv::FILLED,
                        cv::LINE_AA);
        else
            cv::rectangle(m, cv::Rect(0, 0, size.width, size.height), cv::Scalar(255), cv::FILLED);
        cv::Mat mf;
        m.convertTo(mf, CV_32F, 1.0 / 255);
        if (chance(rng, 0.5)) {  // soft edge
            const double sigma = uniform(rng, 1.0, 3.0) * px_per_mm;
            cv::erode(mf, mf, cv::getStructuringElement(cv::MORPH_ELLIPSE,
                                                        cv::Size(cvRound(sigma * 4) | 1, cvRound(sigma * 4) | 1)));
            cv::GaussianBlur(mf, mf, cv::Size(), sigma);
        }
        canvas.paint_image(mf, gradient_image(size, pal[0], pal[1], chance(rng, 0.5), rng));
        for (int i = 0; i < 2; ++i) {
            cv::Mat s = mask8();
            draw_shape(s, rng, 0.7);
            canvas.paint(s, pal[2 + i]);
        }
        if (chance(rng, 0.5)) {
            cv::Mat t = mask8();
            draw_text(t, rng, 0.5, 0.25);
            canvas.paint(t, pal[4]);
        }
    } else {  // photo-like: smooth colour fields with detail, opaque or vignetted
        const cv::Mat n1 = smooth_noise(size, std::min(size.width, size.height) / 4.0, rng);
        const cv::Mat n2 = smooth_noise(size, std::min(size.width, size.height) / 5.0, rng);
        const cv::Mat n3 = smooth_noise(size, 3.0 * px_per_mm, rng);
        cv::Mat colours(size, CV_32FC3);
        for (int y = 0; y < size.height; ++y) {
            auto* d = colours.ptr<cv::Vec3f>(y);
            const float* a = n1.ptr<float>(y);
            const float* b = n2.ptr<float>(y);
            const float* c = n3.ptr<float>(y);
            for (int x = 0; x < size.width; ++x) {
                const double t = a[x], u = b[x], v = 0.75 + 0.5 * c[x];
                cv::Vec3d col = (pal[0] * (1 - t) + pal[1] * t) * (1 - u) + pal[2] * u;
                d[x] = cv::Vec3f(cv::Vec3d(std::min(255.0, col[0] * v), std::min(255.0, col[1] * v),
                                           std::min(255.0, col[2] * v)));
            }
        }
        cv::Mat mf(size, CV_32F, cv::Scalar(1));
        if (chance(rng, 0.6)) {  // vignetted: transparent surroundings, soft edge
            cv::Mat m = mask8();
            cv::ellipse(m, cv::Point(size.width / 2, size.height / 2),
                        cv::Size(size.width / 2 - cvRound(4 * px_per_mm), size.height / 2 - cvRound(4 * px_per_mm)),
                        0, 0, 360, cv::Scalar(255), cv::FILLED, cv::LINE_AA);
            m.convertTo(mf, CV_32F, 1.0 / 255);
            cv::GaussianBlur(mf, mf, cv::Size(), uniform(rng, 0.8, 2.0) * px_per_mm);
        }
        canvas.paint_image(mf, colours);
        cv::Mat t = mask8();
        draw_text(t, rng, uniform(rng, 0.2, 0.8), 0.2);
        canvas.paint(t, pal[3]);
    }
    return canvas.bgra();
}

}  // namespace pressline::qa_dataset::detail
