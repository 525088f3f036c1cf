// Station calibration: target detection (ArUco grid or chessboard), the homography platen mm ->
// image px, the flat field, the gray card and the technician's check image.
//
// Choices (see also docs/calibration.md):
// - Detection runs on a copy reduced to 1600 px, 1280 for a chessboard (the cost of ArUco's
//   adaptive thresholds and of the chessboard detectors grows with the pixel count; a 40 mm marker
//   is still ~90 px there; markers missing there are looked for in the full image too);
//   every corner is then refined with cornerSubPix on the full-resolution image, with a window
//   kept inside the marker's black border / the four squares around a chessboard corner.
// - H: RANSAC (threshold a tenth of a marker or square, so only gross errors such as a misread
//   marker go), then least squares + Levenberg-Marquardt on the inliers (findHomography method 0),
//   dropping markers with a corner far off the typical residual (a half-hidden marker) and
//   refitting. A homography has no lens distortion: the RMS shows how much there is.
// - Flat field: linear light, luminance, area-averaged to 1/8, Gaussian blur with point-reflected
//   borders (odd extension: a linear fall-off stays linear up to the edge instead of flattening
//   as with mirror padding, which would be ~2 % wrong in the corners), brightest = 1.0.
#include "pressline/devices/qa/calibration.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <opencv2/aruco.hpp>
#include <opencv2/calib3d.hpp>
#include <opencv2/imgproc.hpp>
#include <optional>
#include <set>

#include "calibration_detail.hpp"

namespace pressline::devices::qa {
namespace {

constexpr int kDetectMaxSide = 1600;       // ArUco
constexpr int kDetectMaxSideChess = 1280;  // the chessboard detectors are slower, squares bigger

Problem bad(const std::string& field, const std::string& message) {
    return {"bad_calibration", field, message};
}

// Any accepted photo as 8-bit BGR.
cv::Mat to_bgr8(const cv::Mat& m) {
    cv::Mat d = m;
    if (m.depth() == CV_16U)
        m.convertTo(d, CV_8U, 1.0 / 257.0);
    else if (m.depth() != CV_8U)
        m.convertTo(d, CV_8U);
    cv::Mat out;
    if (d.channels() == 1)
        cv::cvtColor(d, out, cv::COLOR_GRAY2BGR);
    else if (d.channels() == 4)
        cv::cvtColor(d, out, cv::COLOR_BGRA2BGR);
    else
        out = d;
    return out;
}

std::string join_ints(const std::vector<int>& v) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
    return s;
}

cv::Point2d apply(const cv::Matx33d& H, cv::Point2d p) {
    const cv::Vec3d q = H * cv::Vec3d(p.x, p.y, 1.0);
    return {q[0] / q[2], q[1] / q[2]};
}

double w_of(const cv::Matx33d& H, cv::Point2d p) { return H(2, 0) * p.x + H(2, 1) * p.y + H(2, 2); }

// Scale from a detection image back to the full image (pixel centres at integer coordinates).
cv::Point2f to_full(cv::Point2f p, double sx, double sy) {
    return {float((p.x + 0.5) * sx - 0.5), float((p.y + 0.5) * sy - 0.5)};
}

struct Detection {
    std::vector<cv::Point2f> mm, px;                  // correspondences
    std::vector<int> point_marker;                    // aruco: marker id of each point
    std::vector<int> ids;                             // aruco: markers used
    std::vector<std::vector<cv::Point2f>> marker_px;  // aruco: their refined corners
    cv::Size chess_pattern;                           // chessboard: for drawing
    double feature_px = 0;                            // median marker side / square side in px
    std::vector<std::string> notes;                   // go into warnings
};

void refine(const cv::Mat& gray, std::vector<cv::Point2f>& pts, int half_win) {
    if (pts.empty()) return;
    const std::vector<cv::Point2f> before = pts;
    cv::cornerSubPix(gray, pts, cv::Size(half_win, half_win), cv::Size(-1, -1),
                     cv::TermCriteria(cv::TermCriteria::COUNT | cv::TermCriteria::EPS, 50, 0.005));
    for (size_t i = 0; i < pts.size(); ++i)  // diverged (e.g. a corner half hidden): keep the estimate
        if (cv::norm(pts[i] - before[i]) > half_win) pts[i] = before[i];
}

Result<Detection> detect_aruco(const cv::Mat& gray, const cv::Mat& det, double sx, double sy,
                               const Target& t) {
    const auto dict = cv::aruco::getPredefinedDictionary(cv::aruco::DICT_4X4_50);
    auto params = cv::aruco::DetectorParameters::create();
    params->cornerRefinementMethod = cv::aruco::CORNER_REFINE_NONE;  // refined below at full size
    std::vector<std::vector<cv::Point2f>> corners, rejected;
    std::vector<int> ids;
    cv::aruco::detectMarkers(det, dict, corners, ids, params, rejected);
    const int n = t.cols * t.rows;
    auto valid = [n](const std::vector<int>& v) {
        return std::count_if(v.begin(), v.end(), [n](int id) { return id < n; });
    };
    if (det.size() != gray.size() && valid(ids) < n) {
        // Markers missing on the reduced copy (small in the picture?): try the full image too.
        std::vector<std::vector<cv::Point2f>> c2, r2;
        std::vector<int> i2;
        cv::aruco::detectMarkers(gray, dict, c2, i2, params, r2);
        if (valid(i2) > valid(ids)) corners = c2, ids = i2, rejected = r2, sx = sy = 1;
    }
    std::map<int, int> count;
    for (int id : ids) ++count[id];
    std::vector<int> good, foreign, twice;
    for (auto [id, k] : count) {
        if (id >= n)
            foreign.push_back(id);
        else if (k > 1)
            twice.push_back(id);
        else
            good.push_back(id);
    }
    Detection d;
    if (!foreign.empty())
        d.notes.push_back(fmt::format("markers {} are not part of a {} x {} target: ignored",
                                      join_ints(foreign), t.cols, t.rows));
    if (!twice.empty())
        d.notes.push_back(fmt::format("markers {} seen more than once: ignored", join_ints(twice)));
    if (good.size() < 4) {
        std::string msg = fmt::format("{} of {} markers found", good.size(), n);
        if (!good.empty()) msg += ": ids " + join_ints(good);
        msg += " (at least 4 needed)";
        if (!foreign.empty())
            msg +=
                fmt::format("; ids {} do not belong to a {} x {} grid", join_ints(foreign), t.cols, t.rows);
        if (!twice.empty()) msg += "; ids " + join_ints(twice) + " seen twice";
        if (!rejected.empty())
            msg += fmt::format(
                "; {} square shapes without a DICT_4X4_50 code (another dictionary? blurred, "
                "overexposed or too small?)",
                rejected.size());
        return Problem{"target_not_found", "target_photo", msg};
    }
    if (good.size() < size_t(n)) d.notes.push_back(fmt::format("{} of {} markers found", good.size(), n));

    std::vector<double> sides;
    for (size_t k = 0; k < ids.size(); ++k) {
        const int id = ids[k];
        if (id >= n || count[id] != 1) continue;
        std::vector<cv::Point2f> c(4);
        for (int i = 0; i < 4; ++i) c[i] = to_full(corners[k][size_t(i)], sx, sy);
        double side = 0;
        for (int i = 0; i < 4; ++i) side += cv::norm(c[size_t(i)] - c[size_t((i + 1) % 4)]) / 4;
        sides.push_back(side);
        // The window stays inside the black border (one cell of six) and its quiet zone.
        refine(gray, c, std::clamp(int(side / 6 * 0.45), 2, 15));
        cv::Point2d mm[4];
        detail::marker_corners_mm(t, id, mm);
        for (int i = 0; i < 4; ++i) {
            d.mm.emplace_back(float(mm[i].x), float(mm[i].y));
            d.px.push_back(c[size_t(i)]);
            d.point_marker.push_back(id);
        }
        d.ids.push_back(id);
        d.marker_px.push_back(c);
    }
    std::nth_element(sides.begin(), sides.begin() + long(sides.size() / 2), sides.end());
    d.feature_px = sides[sides.size() / 2];
    return d;
}

// Mean gray in a small box around p, or -1 outside the image.
double sample(const cv::Mat& gray, cv::Point2d p, int r) {
    const cv::Rect box(int(std::lround(p.x)) - r, int(std::lround(p.y)) - r, 2 * r + 1, 2 * r + 1);
    if ((box & cv::Rect(0, 0, gray.cols, gray.rows)) != box) return -1;
    return cv::mean(gray(box))[0];
}

Result<Detection> detect_chessboard(const cv::Mat& gray, const cv::Mat& det, double sx, double sy,
                                    const Target& t) {
    const cv::Size pattern(t.cols, t.rows);
    std::vector<cv::Point2f> pts;
    bool found = cv::findChessboardCornersSB(det, pattern, pts, cv::CALIB_CB_NORMALIZE_IMAGE);
    if (!found) {
        pts.clear();
        found = cv::findChessboardCorners(
            det, pattern, pts,  // FAST_CHECK: seconds -> ms without a board
            cv::CALIB_CB_ADAPTIVE_THRESH | cv::CALIB_CB_NORMALIZE_IMAGE | cv::CALIB_CB_FAST_CHECK);
    }
    if (!found || pts.size() != size_t(t.cols * t.rows))
        return Problem{
            "target_not_found", "target_photo",
            fmt::format("no chessboard of {} x {} inner corners found (the whole board must be in view, "
                        "flat, sharp and evenly lit, and the configured counts must match the print)",
                        t.cols, t.rows)};
    for (auto& p : pts) p = to_full(p, sx, sy);
    double sq = 0;
    int k = 0;
    for (int r = 0; r < t.rows; ++r)
        for (int c = 0; c + 1 < t.cols; ++c, ++k)
            sq += cv::norm(pts[size_t(r * t.cols + c + 1)] - pts[size_t(r * t.cols + c)]);
    sq /= std::max(k, 1);
    refine(gray, pts, std::clamp(int(sq * 0.3), 3, 20));

    // The detector's ordering may start at any corner. Keep the orderings that do not mirror the
    // platen (the camera looks at it from above), then the one whose top-left square is black.
    struct Candidate {
        bool flip_c, flip_r;
        double contrast;
    };
    std::vector<Candidate> ok;
    std::vector<cv::Point2f> mm(pts.size());
    for (int fr = 0; fr < 2; ++fr)
        for (int fc = 0; fc < 2; ++fc) {
            for (int r = 0; r < t.rows; ++r)
                for (int c = 0; c < t.cols; ++c) {
                    const cv::Point2d p =
                        detail::chess_corner_mm(t, fc ? t.cols - 1 - c : c, fr ? t.rows - 1 - r : r);
                    mm[size_t(r * t.cols + c)] = cv::Point2f(float(p.x), float(p.y));
                }
            const cv::Mat Hm = cv::findHomography(mm, pts, 0);
            if (Hm.empty()) continue;
            const cv::Matx33d H(Hm);
            const cv::Point2d mid = detail::chess_corner_mm(t, (t.cols - 1) / 2.0, (t.rows - 1) / 2.0);
            const cv::Point2d a = apply(H, mid), b = apply(H, mid + cv::Point2d(1, 0)),
                              e = apply(H, mid + cv::Point2d(0, 1));
            if ((b - a).cross(e - a) <= 0) continue;  // mirrored
            double black = 0, white = 0;
            int nb = 0, nw = 0;
            const int rad = std::max(1, int(sq * 0.15));
            for (int j = 0; j <= t.rows; ++j)
                for (int i = 0; i <= t.cols; ++i) {
                    const double v =
                        sample(gray, apply(H, detail::chess_corner_mm(t, i - 0.5, j - 0.5)), rad);
                    if (v < 0) continue;
                    if ((i + j) % 2 == 0)
                        black += v, ++nb;
                    else
                        white += v, ++nw;
                }
            if (nb && nw) ok.push_back({fc == 1, fr == 1, white / nw - black / nb});
        }
    std::sort(ok.begin(), ok.end(),
              [](const Candidate& x, const Candidate& y) { return x.contrast > y.contrast; });
    if (ok.empty() || ok[0].contrast < 20)
        return Problem{
            "bad_calibration", "target_photo",
            "chessboard found but its orientation cannot be told (top-left square not clearly black; "
            "mirrored image?)"};
    Detection d;
    for (int r = 0; r < t.rows; ++r)
        for (int c = 0; c < t.cols; ++c) {
            const cv::Point2d p = detail::chess_corner_mm(t, ok[0].flip_c ? t.cols - 1 - c : c,
                                                          ok[0].flip_r ? t.rows - 1 - r : r);
            d.mm.emplace_back(float(p.x), float(p.y));
            d.px.push_back(pts[size_t(r * t.cols + c)]);
        }
    d.chess_pattern = pattern;
    d.feature_px = sq;
    return d;
}

// sRGB 8-bit -> linear light.
const std::vector<float>& srgb_to_linear() {
    static const std::vector<float> lut = [] {
        std::vector<float> v(256);
        for (int i = 0; i < 256; ++i) {
            const double c = i / 255.0;
            v[size_t(i)] = float(c <= 0.04045 ? c / 12.92 : std::pow((c + 0.055) / 1.055, 2.4));
        }
        return v;
    }();
    return lut;
}

// Gaussian blur with point-reflected (odd) borders: beyond an edge, f(-x) = 2 f(0) - f(x).
cv::Mat smooth_odd(const cv::Mat& src, double sigma) {
    const int pad = std::min({int(std::ceil(3 * sigma)), src.cols - 1, src.rows - 1});
    if (pad < 1) return src.clone();
    cv::Mat p(src.rows + 2 * pad, src.cols + 2 * pad, CV_32F);
    src.copyTo(p(cv::Rect(pad, pad, src.cols, src.rows)));
    for (int y = pad; y < pad + src.rows; ++y) {
        float* r = p.ptr<float>(y);
        const int a = pad, b = pad + src.cols - 1;
        for (int k = 1; k <= pad; ++k) {
            r[a - k] = 2 * r[a] - r[a + k];
            r[b + k] = 2 * r[b] - r[b - k];
        }
    }
    const int a = pad, b = pad + src.rows - 1;
    for (int k = 1; k <= pad; ++k) {
        for (int x = 0; x < p.cols; ++x) {
            p.at<float>(a - k, x) = 2 * p.at<float>(a, x) - p.at<float>(a + k, x);
            p.at<float>(b + k, x) = 2 * p.at<float>(b, x) - p.at<float>(b - k, x);
        }
    }
    cv::GaussianBlur(p, p, cv::Size(0, 0), sigma, sigma, cv::BORDER_REPLICATE);
    return p(cv::Rect(pad, pad, src.cols, src.rows)).clone();
}

std::optional<Problem> white_size_problem(const cv::Mat& white, cv::Size size) {
    if (white.size() == size) return std::nullopt;
    return bad("white_photo",
               fmt::format("the white photo is {} x {} px but the target photo {} x {}: take both "
                           "with the same camera and settings",
                           white.cols, white.rows, size.width, size.height));
}

Result<cv::Mat> flat_field(const cv::Mat& white, cv::Size size, int down,
                           std::vector<std::string>& warnings) {
    if (auto p = white_size_problem(white, size)) return *p;
    const cv::Mat bgr = to_bgr8(white);
    // Clipped pixels hide the fall-off.
    cv::Mat mx;
    {
        std::vector<cv::Mat> ch;
        cv::split(bgr, ch);
        cv::max(ch[0], ch[1], mx);
        cv::max(mx, ch[2], mx);
    }
    const double clipped = cv::countNonZero(mx >= 254) / double(mx.total());
    if (clipped > 0.05)
        return bad("white_photo",
                   fmt::format("{:.0f} % of the white photo is clipped at full white: lower the "
                               "exposure",
                               clipped * 100));
    if (clipped > 0.002)
        warnings.push_back(
            fmt::format("{:.1f} % of the white photo is clipped: the flat field is flatter there "
                        "than the light really is",
                        clipped * 100));
    cv::Mat lin, lum;
    cv::LUT(bgr, cv::Mat(1, 256, CV_32F, const_cast<float*>(srgb_to_linear().data())), lin);
    cv::transform(lin, lum, cv::Matx13f(0.0722f, 0.7152f, 0.2126f));  // BGR -> Y (Rec. 709)

    down = std::max(1, down);
    const cv::Size small(std::max(1, int(std::lround(size.width / double(down)))),
                         std::max(1, int(std::lround(size.height / double(down)))));
    cv::Mat s;
    cv::resize(lum, s, small, 0, 0, cv::INTER_AREA);
    const double sigma = std::max(1.5, 0.015 * std::max(small.width, small.height));
    cv::Mat g = smooth_odd(s, sigma);
    double lo = 0, hi = 0;
    cv::Point at_hi;
    cv::minMaxLoc(g, &lo, &hi, nullptr, &at_hi);
    if (!(hi > 0.03))  // about sRGB 50 of 255
        return bad("white_photo", "the white photo is too dark for a flat field: more light or exposure");
    // Marks or shadows on the board: where the photo departs from its smooth version.
    cv::Mat dev;
    cv::divide(s, cv::max(g, 1e-6), dev);
    dev = cv::abs(dev - 1.0);
    double worst = 0;
    cv::Point at_worst;
    cv::minMaxLoc(dev, nullptr, &worst, nullptr, &at_worst);
    if (cv::countNonZero(dev > 0.08) > int(dev.total() / 200))
        warnings.push_back(
            fmt::format("the white photo is not uniform (up to {:.0f} % off near px {}, {}): a mark, "
                        "fold or shadow on the board?",
                        worst * 100, (at_worst.x + 0.5) * size.width / small.width,
                        (at_worst.y + 0.5) * size.height / small.height));
    g /= hi;
    if (lo / hi < 0.3)
        warnings.push_back(
            fmt::format("strong light fall-off: the darkest part of the view gets {:.0f} % of the "
                        "brightest's light",
                        lo / hi * 100));
    cv::max(g, 0.05, g);
    return g;
}

struct Fit {
    cv::Matx33d H;
    std::vector<uchar> inlier;
    double rms = 0;
    int used = 0;
};

// Least squares (then Levenberg-Marquardt) on the points marked in `keep`.
std::optional<cv::Matx33d> refit(const std::vector<cv::Point2f>& mm, const std::vector<cv::Point2f>& px,
                                 const std::vector<uchar>& keep) {
    std::vector<cv::Point2f> a, b;
    for (size_t i = 0; i < mm.size(); ++i)
        if (keep[i]) a.push_back(mm[i]), b.push_back(px[i]);
    if (a.size() < 8) return std::nullopt;
    const cv::Mat Hm = cv::findHomography(a, b, 0);
    if (Hm.empty()) return std::nullopt;
    cv::Matx33d H(Hm);
    if (std::abs(H(2, 2)) < 1e-12) return std::nullopt;
    return H * (1.0 / H(2, 2));
}

// H from correspondences. `group` ties points together (the four corners of a marker): a group
// with one bad point goes as a whole. RANSAC with `thresh` removes gross errors (a misread
// marker); then groups whose residual is far above the typical one (4 robust sigmas, at least
// 1 px: a corner on the edge of a hand half over a marker) go, until none is left.
std::optional<Fit> fit_homography(const std::vector<cv::Point2f>& mm, const std::vector<cv::Point2f>& px,
                                  const std::vector<int>& group, double thresh) {
    cv::Mat mask;
    const cv::Mat H0 = cv::findHomography(mm, px, cv::RANSAC, thresh, mask, 4000, 0.999);
    if (H0.empty()) return std::nullopt;
    Fit f;
    f.inlier.assign(mm.size(), 1);
    auto drop_group = [&](size_t i) {
        for (size_t k = 0; k < mm.size(); ++k)
            if (group[k] == group[i]) f.inlier[k] = 0;
    };
    for (size_t i = 0; i < mm.size(); ++i)
        if (!mask.at<uchar>(int(i))) drop_group(i);
    std::vector<double> res(mm.size());
    for (int round = 0; round < 6; ++round) {
        const auto H = refit(mm, px, f.inlier);
        if (!H) return std::nullopt;
        f.H = *H;
        std::vector<double> kept;
        for (size_t i = 0; i < mm.size(); ++i) {
            res[i] = cv::norm(apply(f.H, mm[i]) - cv::Point2d(px[i]));
            if (f.inlier[i]) kept.push_back(res[i]);
        }
        std::nth_element(kept.begin(), kept.begin() + long(kept.size() / 2), kept.end());
        const double limit = std::max(1.0, 4 * 1.4826 * kept[kept.size() / 2]);
        bool dropped = false;
        for (size_t i = 0; i < mm.size(); ++i)
            if (f.inlier[i] && res[i] > limit) drop_group(i), dropped = true;
        if (!dropped) break;
    }
    double ss = 0;
    f.used = 0;
    for (size_t i = 0; i < mm.size(); ++i)
        if (f.inlier[i]) ss += res[i] * res[i], ++f.used;
    if (f.used < 8) return std::nullopt;
    f.rms = std::sqrt(ss / f.used);
    return f;
}

// A text with a dark background at `org` (its baseline's left end), moved inside the image.
void draw_label(cv::Mat& img, const std::string& text, cv::Point org, double scale, int thick,
                cv::Scalar color) {
    int base = 0;
    const cv::Size sz = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, scale, thick, &base);
    org.x = std::clamp(org.x, thick, std::max(thick, img.cols - sz.width - thick));
    org.y = std::clamp(org.y, sz.height + thick, std::max(sz.height + thick, img.rows - base - thick));
    cv::rectangle(img,
                  cv::Rect(org.x - thick, org.y - sz.height - thick, sz.width + 2 * thick,
                           sz.height + base + 2 * thick),
                  cv::Scalar(0, 0, 0), cv::FILLED);
    cv::putText(img, text, org, cv::FONT_HERSHEY_SIMPLEX, scale, color, thick, cv::LINE_AA);
}

cv::Point ipt(cv::Point2d p) { return {int(std::lround(p.x)), int(std::lround(p.y))}; }

Result<CalibrationOutput> calibrate_impl(const CalibrationInputs& in) {
    if (in.target_photo.empty())
        return Problem{"unreadable_image", "target_photo", "the target photo is empty"};
    if (auto p = detail::target_problem(in.target)) return *p;
    if (!(in.platen_width_mm > 0) || !(in.platen_height_mm > 0))
        return bad("platen", fmt::format("platen size {} x {} mm", in.platen_width_mm, in.platen_height_mm));
    const Target& t = in.target;
    CalibrationOutput out;
    out.target = t;
    out.platen_width_mm = in.platen_width_mm;
    out.platen_height_mm = in.platen_height_mm;
    out.created = std::chrono::system_clock::now();

    const cv::Mat bgr = to_bgr8(in.target_photo);
    const cv::Size size = bgr.size();
    if (!in.white_photo.empty())  // before the slow part
        if (auto p = white_size_problem(in.white_photo, size)) return *p;
    cv::Mat gray, det;
    cv::cvtColor(bgr, gray, cv::COLOR_BGR2GRAY);
    const int side = std::max(size.width, size.height);
    const int det_side = t.kind == "aruco" ? kDetectMaxSide : kDetectMaxSideChess;
    if (side > det_side) {
        const double f = double(det_side) / side;
        cv::resize(gray, det,
                   cv::Size(std::max(1, int(std::lround(size.width * f))),
                            std::max(1, int(std::lround(size.height * f)))),
                   0, 0, cv::INTER_AREA);
    } else {
        det = gray;
    }
    const double sx = double(size.width) / det.cols, sy = double(size.height) / det.rows;

    auto detected =
        t.kind == "aruco" ? detect_aruco(gray, det, sx, sy, t) : detect_chessboard(gray, det, sx, sy, t);
    if (auto* p = std::get_if<Problem>(&detected)) return *p;
    Detection& d = std::get<Detection>(detected);
    out.warnings = d.notes;

    const std::string what = t.kind == "aruco" ? fmt::format("{} markers", d.ids.size())
                                               : fmt::format("{} x {} chessboard", t.cols, t.rows);
    std::vector<int> group = d.point_marker;
    if (group.empty()) {
        group.resize(d.mm.size());
        std::iota(group.begin(), group.end(), 0);
    }
    auto fit = fit_homography(d.mm, d.px, group, std::max(2.0, 0.1 * d.feature_px));
    if (!fit)
        return bad("target_photo",
                   fmt::format("{} found but no consistent homography (degenerate: all points on "
                               "a line?)",
                               what));
    if (!d.point_marker.empty() && fit->used < 16)
        return bad("target_photo",
                   fmt::format("only {} of the {} markers found agree with each other (at "
                               "least 4 needed): does the target description (marker size, pitch) match "
                               "the print? Is the target flat?",
                               fit->used / 4, d.ids.size()));
    if (fit->used < int(0.7 * double(d.mm.size())))
        return bad("target_photo",
                   fmt::format("only {} of the {} points of the {} agree on one plane: is the target "
                               "flat, and its description (marker size, pitch, origin) right?",
                               fit->used, d.mm.size(), what));
    if (fit->used < int(d.mm.size())) {
        std::set<int> bad_markers;
        for (size_t i = 0; i < d.mm.size(); ++i)
            if (!fit->inlier[i] && !d.point_marker.empty()) bad_markers.insert(d.point_marker[i]);
        out.warnings.push_back(fmt::format(
            "{} of {} points left out as outliers{}", d.mm.size() - size_t(fit->used), d.mm.size(),
            bad_markers.empty() ? std::string()
                                : " (markers " + join_ints({bad_markers.begin(), bad_markers.end()}) + ")"));
    }
    const cv::Matx33d H = fit->H;
    out.reprojection_rms_px = fit->rms;
    out.points_used = fit->used;
    for (size_t i = 0; i < d.point_marker.size(); i += 4)
        if (fit->inlier[i]) out.markers_found.push_back(d.point_marker[i]);
    std::sort(out.markers_found.begin(), out.markers_found.end());

    // Geometry: every platen corner and target point in front of the camera, not mirrored.
    const double W = in.platen_width_mm, Hh = in.platen_height_mm;
    const cv::Point2d corners_mm[4] = {{0, 0}, {W, 0}, {W, Hh}, {0, Hh}};
    for (const auto& c : corners_mm)
        if (w_of(H, c) <= 0)
            return bad(
                "target_photo",
                fmt::format("degenerate homography: platen corner ({}, {}) mm maps to infinity", c.x, c.y));
    for (const auto& p : d.mm)
        if (w_of(H, p) <= 0) return bad("target_photo", "degenerate homography");
    const cv::Point2d mid(W / 2, Hh / 2);
    const cv::Point2d m0 = apply(H, mid), mx = apply(H, mid + cv::Point2d(1, 0)),
                      my = apply(H, mid + cv::Point2d(0, 1));
    const double jdet = (mx - m0).cross(my - m0);
    if (jdet <= 0)
        return bad("target_photo", "the image is mirrored (platen x and y swapped in the picture)");
    const double px_per_mm = std::sqrt(jdet);
    if (fit->rms > in.max_rms_px)
        return bad(
            "target_photo",
            fmt::format(
                "reprojection RMS {:.2f} px over {} points is above {:.2f} px: is the target flat, its "
                "description (sizes, origin) right, the lens free of strong distortion?",
                fit->rms, fit->used, in.max_rms_px));
    if (fit->rms > 1.0)
        out.warnings.push_back(
            fmt::format("reprojection RMS {:.2f} px: target not flat or lens distortion?", fit->rms));
    std::vector<cv::Point2d> platen_px;
    for (const auto& c : corners_mm) {
        const cv::Point2d p = apply(H, c);
        platen_px.push_back(p);
        if (p.x < 0 || p.y < 0 || p.x > size.width - 1 || p.y > size.height - 1)
            out.warnings.push_back(fmt::format(
                "platen corner ({}, {}) mm is outside the image (at {:.0f}, {:.0f} px)", c.x, c.y, p.x, p.y));
    }
    {
        std::vector<cv::Point2f> hull;
        cv::convexHull(d.mm, hull);
        const double cover = cv::contourArea(hull) / (W * Hh);
        if (cover < 0.25)
            out.warnings.push_back(
                fmt::format("the target points cover only {:.0f} % of the platen: accuracy away from "
                            "them is lower",
                            cover * 100));
    }

    Calibration& cal = out.calibration;
    cal.image_size = size;
    cal.H = H;

    if (!in.white_photo.empty()) {
        auto ff = flat_field(in.white_photo, size, in.flatfield_downscale, out.warnings);
        if (auto* p = std::get_if<Problem>(&ff)) return *p;
        cal.flatfield = std::get<cv::Mat>(ff);
    }

    // Gray card: each patch wholly inside the image, big enough to measure.
    struct Seen {
        std::vector<cv::Point> poly;
        cv::Vec3d srgb;
    };
    std::vector<Seen> seen;
    for (size_t i = 0; i < in.gray_card.size(); ++i) {
        const CardPatch& p = in.gray_card[i];
        const std::string field = fmt::format("gray_card[{}]", i);
        const RectMm& r = p.rect_mm;
        if (!(r.width > 0) || !(r.height > 0))
            return bad(field,
                       fmt::format("gray card patch \"{}\": size {} x {} mm", p.name, r.width, r.height));
        const cv::Point2d c[4] = {
            {r.x, r.y}, {r.x + r.width, r.y}, {r.x + r.width, r.y + r.height}, {r.x, r.y + r.height}};
        Seen s;
        for (const auto& q : c) {
            if (w_of(H, q) <= 0)
                return bad(field, fmt::format("gray card patch \"{}\" at ({}, {}) mm is not in view", p.name,
                                              q.x, q.y));
            const cv::Point2d v = apply(H, q);
            if (v.x < 0 || v.y < 0 || v.x > size.width - 1 || v.y > size.height - 1)
                return bad(
                    field,
                    fmt::format("gray card patch \"{}\" ({}, {}, {} x {} mm) is outside the {} x {} image: "
                                "its corner ({}, {}) mm maps to ({:.0f}, {:.0f}) px",
                                p.name, r.x, r.y, r.width, r.height, size.width, size.height, q.x, q.y, v.x,
                                v.y));
            s.poly.push_back(ipt(v));
        }
        if (cv::contourArea(s.poly) < 100)
            return bad(field,
                       fmt::format("gray card patch \"{}\" is only {:.0f} px in the image: make it bigger",
                                   p.name, cv::contourArea(s.poly)));
        // Its colour in the target photo (the inner 60 %), for the check image and a sanity check.
        std::vector<cv::Point> inner;
        for (const auto& q : c)
            inner.push_back(
                ipt(apply(H, q + (cv::Point2d(r.x + r.width / 2, r.y + r.height / 2) - q) * 0.4)));
        cv::Mat mask(size, CV_8U, cv::Scalar(0));
        cv::fillConvexPoly(mask, inner, cv::Scalar(255));
        const cv::Scalar m = cv::mean(bgr, mask);
        s.srgb = {m[2], m[1], m[0]};
        seen.push_back(s);
        cal.gray_patches.push_back(GrayPatch{p.name, p.rect_mm, p.srgb});
    }
    auto luma = [](const cv::Vec3d& v) { return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
    for (size_t i = 0; i < seen.size(); ++i)
        for (size_t k = 0; k < seen.size(); ++k)
            if (luma(in.gray_card[i].srgb) > luma(in.gray_card[k].srgb) + 40 &&
                luma(seen[i].srgb) < luma(seen[k].srgb))
                out.warnings.push_back(
                    fmt::format("gray card patch \"{}\" looks darker than \"{}\" in the photo: patches "
                                "swapped or positions wrong?",
                                in.gray_card[i].name, in.gray_card[k].name));

    // The check image.
    cv::Mat chk = bgr.clone();
    const int th = std::max(1, int(std::lround(side / 1000.0)));
    const double font = std::max(0.5, side / 2200.0);
    const int fth = std::max(1, int(std::lround(font * 1.6)));
    if (t.kind == "aruco") {
        std::set<int> outl;
        for (size_t i = 0; i < d.mm.size(); ++i)
            if (!fit->inlier[i]) outl.insert(d.point_marker[i]);
        for (size_t k = 0; k < d.ids.size(); ++k) {
            const auto& c = d.marker_px[k];
            const cv::Scalar col = outl.count(d.ids[k]) ? cv::Scalar(0, 0, 255) : cv::Scalar(0, 220, 0);
            std::vector<cv::Point> poly;
            for (const auto& p : c) poly.push_back(ipt(p));
            cv::polylines(chk, poly, true, col, th, cv::LINE_AA);
            cv::circle(chk, poly[0], 3 * th, cv::Scalar(0, 0, 255), cv::FILLED, cv::LINE_AA);
            cv::putText(chk, std::to_string(d.ids[k]),
                        ipt((c[0] + c[2]) * 0.5) - cv::Point(6 * fth, -6 * fth), cv::FONT_HERSHEY_SIMPLEX,
                        font, cv::Scalar(255, 0, 255), fth, cv::LINE_AA);
        }
    } else {
        for (int r = 0; r < t.rows; ++r) {
            const cv::Scalar col =
                cv::Scalar(r % 3 == 0 ? 255 : 0, r % 3 == 1 ? 200 : 0, r % 3 == 2 ? 255 : 0);
            for (int c = 0; c < t.cols; ++c) {
                const size_t i = size_t(r * t.cols + c);
                cv::circle(chk, ipt(d.px[i]), 4 * th, fit->inlier[i] ? col : cv::Scalar(0, 0, 255), th,
                           cv::LINE_AA);
                if (c > 0) cv::line(chk, ipt(d.px[i - 1]), ipt(d.px[i]), col, th, cv::LINE_AA);
            }
        }
    }
    // Where H puts every target point (small crosses; on the detected corners when all is well).
    for (const auto& p : d.mm)
        cv::drawMarker(chk, ipt(apply(H, p)), cv::Scalar(255, 128, 0), cv::MARKER_CROSS, 4 * th, th);
    {
        std::vector<cv::Point> poly;
        for (const auto& p : platen_px) poly.push_back(ipt(p));
        cv::polylines(chk, poly, true, cv::Scalar(0, 255, 255), 2 * th, cv::LINE_AA);
        cv::circle(chk, poly[0], 6 * th, cv::Scalar(0, 255, 255), cv::FILLED, cv::LINE_AA);
        draw_label(chk, fmt::format("platen (0,0), {} x {} mm", W, Hh), poly[0] + cv::Point(8 * th, 30 * th),
                   font, fth, cv::Scalar(0, 255, 255));
        // "top" just inside the middle of the platen's top edge (the collar side).
        const cv::Point2d top = apply(H, {W / 2, 0}), inward = apply(H, {W / 2, 25});
        int base = 0;
        const cv::Size tsz = cv::getTextSize("top", cv::FONT_HERSHEY_SIMPLEX, font, fth, &base);
        draw_label(chk, "top", ipt(top + (inward - top) * 0.5) + cv::Point(-tsz.width / 2, tsz.height / 2),
                   font, fth, cv::Scalar(0, 255, 255));
    }
    // Gray card: outlines numbered at their centre; names and measured colours in the legend.
    std::vector<std::string> legend;
    for (size_t i = 0; i < seen.size(); ++i) {
        cv::polylines(chk, seen[i].poly, true, cv::Scalar(255, 0, 255), 2 * th, cv::LINE_AA);
        const cv::Moments mo = cv::moments(seen[i].poly);
        const std::string num = std::to_string(i + 1);
        int base = 0;
        const cv::Size nsz = cv::getTextSize(num, cv::FONT_HERSHEY_SIMPLEX, font, fth, &base);
        draw_label(chk, num,
                   cv::Point(int(mo.m10 / mo.m00) - nsz.width / 2, int(mo.m01 / mo.m00) + nsz.height / 2),
                   font, fth, cv::Scalar(255, 0, 255));
        const cv::Vec3d& v = seen[i].srgb;
        const cv::Vec3d& n = in.gray_card[i].srgb;
        legend.push_back(
            fmt::format("gray card {}: \"{}\", photo sRGB ({:.0f}, {:.0f}, {:.0f}), card ({:.0f}, {:.0f}, "
                        "{:.0f})",
                        i + 1, in.gray_card[i].name, v[0], v[1], v[2], n[0], n[1], n[2]));
    }
    const std::string line = fmt::format(
        "RMS {:.3f} px | {} points used ({}{}) | {:.2f} px/mm at the platen centre{}", fit->rms, fit->used,
        what, t.kind == "aruco" ? fmt::format(" of {}", t.cols * t.rows) : std::string(), px_per_mm,
        in.white_photo.empty() ? " | no flat field" : " | flat field");
    int y = int(40 * font) + 10;
    draw_label(chk, line, cv::Point(10, y), font, fth, cv::Scalar(255, 255, 255));
    for (const auto& l : legend) {
        y += int(36 * font) + 6;
        draw_label(chk, l, cv::Point(10, y), font * 0.8, fth, cv::Scalar(255, 0, 255));
    }
    for (const auto& w : out.warnings) {
        y += int(36 * font) + 6;
        draw_label(chk, "! " + w, cv::Point(10, y), font * 0.8, fth, cv::Scalar(0, 165, 255));
    }
    out.check_image = chk;
    return out;
}

}  // namespace

Result<CalibrationOutput> calibrate(const CalibrationInputs& in) {
    try {
        return calibrate_impl(in);
    } catch (const cv::Exception& e) {
        return Problem{"bad_calibration", "", std::string("OpenCV: ") + e.what()};
    } catch (const std::bad_alloc&) {
        return Problem{"bad_calibration", "", "out of memory"};
    }
}

}  // namespace pressline::devices::qa
