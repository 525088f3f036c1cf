// Colour conversions and CIEDE2000 of the QA dataset generator (see color.hpp).
#include "pressline/qa_dataset/color.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>
#include <vector>

#include <opencv2/core.hpp>

namespace pressline::qa_dataset {
namespace {

// IEC 61966-2-1 primaries, D65.
constexpr double kRgbToXyz[3][3] = {{0.4124564, 0.3575761, 0.1804375},
                                    {0.2126729, 0.7151522, 0.0721750},
                                    {0.0193339, 0.1191920, 0.9503041}};
constexpr double kXyzToRgb[3][3] = {{3.2404542, -1.5371385, -0.4985314},
                                    {-0.9692660, 1.8760108, 0.0415560},
                                    {0.0556434, -0.2040259, 1.0572252}};
constexpr double kWhite[3] = {0.95047, 1.0, 1.08883};
constexpr double kEps = 216.0 / 24389.0;
constexpr double kKappa = 24389.0 / 27.0;

double lab_f(double t) { return t > kEps ? std::cbrt(t) : (kKappa * t + 16.0) / 116.0; }
double lab_finv(double f) {
    double t = f * f * f;
    return t > kEps ? t : (116.0 * f - 16.0) / kKappa;
}
double deg(double rad) { return rad * 180.0 / std::numbers::pi; }
double rad(double d) { return d * std::numbers::pi / 180.0; }

}  // namespace

double srgb_to_linear(double v) {
    return v <= 0.04045 ? v / 12.92 : std::pow((v + 0.055) / 1.055, 2.4);
}
double linear_to_srgb(double v) {
    v = std::clamp(v, 0.0, 1.0);
    return v <= 0.0031308 ? v * 12.92 : 1.055 * std::pow(v, 1.0 / 2.4) - 0.055;
}

cv::Vec3d srgb8_to_linear(const cv::Vec3d& c) {
    return {srgb_to_linear(c[0] / 255.0), srgb_to_linear(c[1] / 255.0), srgb_to_linear(c[2] / 255.0)};
}
cv::Vec3d linear_to_srgb8(const cv::Vec3d& l) {
    return {linear_to_srgb(l[0]) * 255.0, linear_to_srgb(l[1]) * 255.0, linear_to_srgb(l[2]) * 255.0};
}

cv::Vec3d linear_to_lab(const cv::Vec3d& lin) {
    double xyz[3];
    for (int i = 0; i < 3; ++i) {
        xyz[i] = 0;
        for (int k = 0; k < 3; ++k) xyz[i] += kRgbToXyz[i][k] * std::clamp(lin[k], 0.0, 1.0);
    }
    const double fx = lab_f(xyz[0] / kWhite[0]);
    const double fy = lab_f(xyz[1] / kWhite[1]);
    const double fz = lab_f(xyz[2] / kWhite[2]);
    return {116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)};
}

cv::Vec3d lab_to_linear(const cv::Vec3d& lab) {
    const double fy = (lab[0] + 16.0) / 116.0;
    const double fx = fy + lab[1] / 500.0;
    const double fz = fy - lab[2] / 200.0;
    const double xyz[3] = {lab_finv(fx) * kWhite[0], lab_finv(fy) * kWhite[1], lab_finv(fz) * kWhite[2]};
    cv::Vec3d out;
    for (int i = 0; i < 3; ++i) {
        out[i] = 0;
        for (int k = 0; k < 3; ++k) out[i] += kXyzToRgb[i][k] * xyz[k];
    }
    return out;
}

// Sharma, Wu & Dalal, "The CIEDE2000 color-difference formula: implementation notes,
// supplementary test data, and mathematical observations", Color Res. Appl. 30 (2005).
double ciede2000(const cv::Vec3d& lab1, const cv::Vec3d& lab2) {
    const double L1 = lab1[0], a1 = lab1[1], b1 = lab1[2];
    const double L2 = lab2[0], a2 = lab2[1], b2 = lab2[2];
    const double C1 = std::hypot(a1, b1), C2 = std::hypot(a2, b2);
    const double Cbar = (C1 + C2) / 2.0;
    const double Cbar7 = std::pow(Cbar, 7.0);
    const double G = 0.5 * (1.0 - std::sqrt(Cbar7 / (Cbar7 + std::pow(25.0, 7.0))));
    const double a1p = (1.0 + G) * a1, a2p = (1.0 + G) * a2;
    const double C1p = std::hypot(a1p, b1), C2p = std::hypot(a2p, b2);
    auto hue = [](double b, double ap) {
        if (b == 0 && ap == 0) return 0.0;
        double h = deg(std::atan2(b, ap));
        return h < 0 ? h + 360.0 : h;
    };
    const double h1p = hue(b1, a1p), h2p = hue(b2, a2p);
    const double dLp = L2 - L1;
    const double dCp = C2p - C1p;
    double dhp = 0;
    if (C1p * C2p != 0) {
        dhp = h2p - h1p;
        if (dhp > 180) dhp -= 360;
        else if (dhp < -180) dhp += 360;
    }
    const double dHp = 2.0 * std::sqrt(C1p * C2p) * std::sin(rad(dhp / 2.0));
    const double Lbarp = (L1 + L2) / 2.0;
    const double Cbarp = (C1p + C2p) / 2.0;
    double hbarp = h1p + h2p;
    if (C1p * C2p != 0) {
        if (std::abs(h1p - h2p) <= 180) hbarp = (h1p + h2p) / 2.0;
        else if (h1p + h2p < 360) hbarp = (h1p + h2p + 360) / 2.0;
        else hbarp = (h1p + h2p - 360) / 2.0;
    }
    const double T = 1.0 - 0.17 * std::cos(rad(hbarp - 30)) + 0.24 * std::cos(rad(2 * hbarp)) +
                     0.32 * std::cos(rad(3 * hbarp + 6)) - 0.20 * std::cos(rad(4 * hbarp - 63));
    const double dTheta = 30.0 * std::exp(-std::pow((hbarp - 275.0) / 25.0, 2.0));
    const double Cbarp7 = std::pow(Cbarp, 7.0);
    const double Rc = 2.0 * std::sqrt(Cbarp7 / (Cbarp7 + std::pow(25.0, 7.0)));
    const double Lm = (Lbarp - 50.0) * (Lbarp - 50.0);
    const double Sl = 1.0 + 0.015 * Lm / std::sqrt(20.0 + Lm);
    const double Sc = 1.0 + 0.045 * Cbarp;
    const double Sh = 1.0 + 0.015 * Cbarp * T;
    const double Rt = -std::sin(rad(2.0 * dTheta)) * Rc;
    const double tl = dLp / Sl, tc = dCp / Sc, th = dHp / Sh;
    return std::sqrt(tl * tl + tc * tc + th * th + Rt * tc * th);
}

cv::Mat linear_to_lab(const cv::Mat& lin) {
    CV_Assert(lin.type() == CV_32FC3);
    cv::Mat out(lin.size(), CV_32FC3);
    cv::parallel_for_(cv::Range(0, lin.rows), [&](const cv::Range& r) {
        for (int y = r.start; y < r.end; ++y) {
            const auto* s = lin.ptr<cv::Vec3f>(y);
            auto* d = out.ptr<cv::Vec3f>(y);
            for (int x = 0; x < lin.cols; ++x) d[x] = cv::Vec3f(linear_to_lab(cv::Vec3d(s[x])));
        }
    });
    return out;
}

cv::Mat ciede2000(const cv::Mat& lab1, const cv::Mat& lab2) {
    CV_Assert(lab1.type() == CV_32FC3 && lab2.type() == CV_32FC3 && lab1.size() == lab2.size());
    cv::Mat out(lab1.size(), CV_32F);
    cv::parallel_for_(cv::Range(0, lab1.rows), [&](const cv::Range& r) {
        for (int y = r.start; y < r.end; ++y) {
            const auto* a = lab1.ptr<cv::Vec3f>(y);
            const auto* b = lab2.ptr<cv::Vec3f>(y);
            auto* d = out.ptr<float>(y);
            for (int x = 0; x < lab1.cols; ++x)
                d[x] = static_cast<float>(ciede2000(cv::Vec3d(a[x]), cv::Vec3d(b[x])));
        }
    });
    return out;
}

const float* srgb8_to_linear_table() {
    static const std::array<float, 256> table = [] {
        std::array<float, 256> t{};
        for (int i = 0; i < 256; ++i) t[i] = static_cast<float>(srgb_to_linear(i / 255.0));
        return t;
    }();
    return table.data();
}

cv::Mat linear_to_srgb8(const cv::Mat& lin) {
    CV_Assert(lin.depth() == CV_32F);
    static const std::vector<std::uint8_t> table = [] {
        std::vector<std::uint8_t> t(65536);
        for (int i = 0; i < 65536; ++i)
            t[i] = cv::saturate_cast<std::uint8_t>(linear_to_srgb(i / 65535.0) * 255.0);
        return t;
    }();
    const int cn = lin.channels();
    cv::Mat out(lin.size(), CV_MAKETYPE(CV_8U, cn));
    cv::parallel_for_(cv::Range(0, lin.rows), [&](const cv::Range& r) {
        for (int y = r.start; y < r.end; ++y) {
            const float* s = lin.ptr<float>(y);
            std::uint8_t* d = out.ptr<std::uint8_t>(y);
            for (int x = 0; x < lin.cols * cn; ++x) {
                const float v = std::clamp(s[x], 0.0f, 1.0f);
                d[x] = table[static_cast<std::size_t>(v * 65535.0f + 0.5f)];
            }
        }
    });
    return out;
}

cv::Mat srgb8_to_linear(const cv::Mat& srgb) {
    CV_Assert(srgb.depth() == CV_8U);
    cv::Mat lut(1, 256, CV_32F, const_cast<float*>(srgb8_to_linear_table()));
    cv::Mat out;
    cv::LUT(srgb, lut, out);
    return out;
}

}  // namespace pressline::qa_dataset
