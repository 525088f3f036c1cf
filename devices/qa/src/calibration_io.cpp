// Station calibration, the parts around detection: the target description (validation, JSON),
// rendering the printable target, writing the calibration file and its flat-field PNG.
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <opencv2/aruco.hpp>
#include <opencv2/imgproc.hpp>
#include <set>

#include "calibration_detail.hpp"
#include "pressline/devices/qa/calibration.hpp"
#include "pressline/image/image.hpp"

namespace pressline::devices::qa {
namespace fs = std::filesystem;
using nlohmann::json;

namespace detail {

std::optional<Problem> target_problem(const Target& t) {
    auto bad = [](const std::string& key, const std::string& msg) {
        return Problem{"bad_calibration", "target." + key, "target." + key + ": " + msg};
    };
    if (t.kind != "aruco" && t.kind != "chessboard")
        return bad("kind", fmt::format("\"{}\" is neither aruco nor chessboard", t.kind));
    if (!std::isfinite(t.origin_mm.x) || !std::isfinite(t.origin_mm.y))
        return bad("origin_mm", "not a number");
    if (t.kind == "aruco") {
        if (t.cols < 1 || t.rows < 1 || t.cols * t.rows < 4)
            return bad("cols", fmt::format("{} x {} markers: at least 4 are needed", t.cols, t.rows));
        if (t.cols * t.rows > 50)
            return bad("cols", fmt::format("{} x {} markers: DICT_4X4_50 has only 50", t.cols, t.rows));
        if (!(t.marker_mm > 0) || !std::isfinite(t.marker_mm)) return bad("marker_mm", "must be > 0");
        if (!(t.pitch_mm >= t.marker_mm * 7.0 / 6.0) || !std::isfinite(t.pitch_mm))
            return bad("pitch_mm", fmt::format("{} mm leaves no quiet zone between {} mm markers (pitch >= "
                                               "marker * 7/6)",
                                               t.pitch_mm, t.marker_mm));
    } else {
        if (t.cols < 2 || t.rows < 2)
            return bad("cols", fmt::format("{} x {} inner corners: at least 2 x 2", t.cols, t.rows));
        if ((t.cols + t.rows) % 2 == 0)
            return bad("cols", fmt::format("{} x {} inner corners: one count must be odd and the other even, "
                                           "else the board looks the same turned by 180 degrees",
                                           t.cols, t.rows));
        if (!(t.square_mm > 0) || !std::isfinite(t.square_mm)) return bad("square_mm", "must be > 0");
    }
    return std::nullopt;
}

void marker_corners_mm(const Target& t, int id, cv::Point2d out[4]) {
    const double x = t.origin_mm.x + (id % t.cols) * t.pitch_mm;
    const double y = t.origin_mm.y + (id / t.cols) * t.pitch_mm;
    const double m = t.marker_mm;
    out[0] = {x, y};
    out[1] = {x + m, y};
    out[2] = {x + m, y + m};
    out[3] = {x, y + m};
}

cv::Rect2d target_box_mm(const Target& t) {
    if (t.kind == "aruco")
        return {t.origin_mm.x, t.origin_mm.y, (t.cols - 1) * t.pitch_mm + t.marker_mm,
                (t.rows - 1) * t.pitch_mm + t.marker_mm};
    return {t.origin_mm.x - t.square_mm, t.origin_mm.y - t.square_mm, (t.cols + 1) * t.square_mm,
            (t.rows + 1) * t.square_mm};
}

}  // namespace detail

// ---- target JSON ----

json target_to_json(const Target& t) {
    json j{{"kind", t.kind}, {"cols", t.cols}, {"rows", t.rows}};
    if (t.kind == "aruco") {
        j["dictionary"] = "DICT_4X4_50";
        j["marker_mm"] = t.marker_mm;
        j["pitch_mm"] = t.pitch_mm;
    } else {
        j["square_mm"] = t.square_mm;
    }
    j["origin_mm"] = {t.origin_mm.x, t.origin_mm.y};
    return j;
}

Result<Target> target_from_json(const json& j, const std::string& field) {
    Target t;
    auto bad = [&](const std::string& key, const std::string& msg) {
        const std::string f = key.empty() ? field : field + "." + key;
        return Problem{"bad_calibration", f, f + ": " + msg};
    };
    if (!j.is_object()) return bad("", "must be an object");
    if (j.contains("kind")) {
        if (!j["kind"].is_string()) return bad("kind", "must be a string");
        t.kind = j["kind"].get<std::string>();
    }
    if (j.contains("dictionary") && j["dictionary"] != "DICT_4X4_50")
        return bad("dictionary", "only DICT_4X4_50 is supported");
    for (auto [key, dst] : {std::pair{"cols", &t.cols}, std::pair{"rows", &t.rows}}) {
        if (!j.contains(key)) continue;
        if (!j[key].is_number_integer()) return bad(key, "must be an integer");
        *dst = j[key].get<int>();
    }
    for (auto [key, dst] : {std::pair{"marker_mm", &t.marker_mm}, std::pair{"pitch_mm", &t.pitch_mm},
                            std::pair{"square_mm", &t.square_mm}}) {
        if (!j.contains(key)) continue;
        if (!j[key].is_number()) return bad(key, "must be a number");
        *dst = j[key].get<double>();
    }
    if (j.contains("origin_mm")) {
        const json& o = j["origin_mm"];
        if (!o.is_array() || o.size() != 2 || !o[0].is_number() || !o[1].is_number())
            return bad("origin_mm", "must be [x, y] in mm");
        t.origin_mm = {o[0].get<double>(), o[1].get<double>()};
    }
    if (auto p = detail::target_problem(t)) {
        p->field = field + p->field.substr(std::string("target").size());
        p->message = field + p->message.substr(std::string("target").size());
        return *p;
    }
    return t;
}

Result<std::vector<CardPatch>> gray_card_from_json(const json& j, const std::string& field) {
    auto bad = [](const std::string& f, const std::string& msg) {
        return Problem{"bad_calibration", f, f + ": " + msg};
    };
    const json* list = &j;
    std::string base = field;
    if (j.is_object()) {
        if (!j.contains("patches")) return bad(field, "has no \"patches\"");
        list = &j["patches"];
        base += ".patches";
    }
    if (!list->is_array()) return bad(base, "must be a list of patches");
    std::vector<CardPatch> out;
    std::set<std::string> names;
    for (size_t i = 0; i < list->size(); ++i) {
        const json& p = (*list)[i];
        const std::string f = fmt::format("{}[{}]", base, i);
        if (!p.is_object()) return bad(f, "must be an object {name, rect_mm, srgb}");
        CardPatch c;
        if (!p.contains("name") || !p["name"].is_string() || p["name"].get<std::string>().empty())
            return bad(f + ".name", "must be a non-empty string");
        c.name = p["name"].get<std::string>();
        if (!names.insert(c.name).second) return bad(f + ".name", "\"" + c.name + "\" appears twice");
        auto numbers = [&](const char* key, size_t n, double* dst) -> std::optional<Problem> {
            if (!p.contains(key) || !p[key].is_array() || p[key].size() != n)
                return bad(f + "." + key, fmt::format("must be a list of {} numbers", n));
            for (size_t k = 0; k < n; ++k) {
                if (!p[key][k].is_number())
                    return bad(f + "." + key, fmt::format("must be a list of {} numbers", n));
                dst[k] = p[key][k].get<double>();
            }
            return std::nullopt;
        };
        double r[4], s[3];
        if (auto e = numbers("rect_mm", 4, r)) return *e;
        if (auto e = numbers("srgb", 3, s)) return *e;
        if (!(r[2] > 0) || !(r[3] > 0)) return bad(f + ".rect_mm", "width and height must be > 0");
        for (double v : s)
            if (!(v >= 0 && v <= 255)) return bad(f + ".srgb", "values are 0..255");
        c.rect_mm = RectMm{r[0], r[1], r[2], r[3]};
        c.srgb = cv::Vec3d(s[0], s[1], s[2]);
        out.push_back(c);
    }
    return out;
}

Result<CardPatch> card_patch_from_string(const std::string& spec, const std::string& field) {
    const Problem bad{"bad_calibration", field,
                      fmt::format("{}: \"{}\" is not NAME:X,Y,W,H:R,G,B (mm, sRGB 0..255), e.g. "
                                  "white:-60,150,30,30:243,243,242",
                                  field, spec)};
    const size_t a = spec.find(':'), b = a == std::string::npos ? a : spec.find(':', a + 1);
    if (a == 0 || b == std::string::npos || spec.find(':', b + 1) != std::string::npos) return bad;
    auto numbers = [](const std::string& s, size_t n) -> std::optional<std::vector<double>> {
        std::vector<double> v;
        size_t pos = 0;
        while (pos <= s.size()) {
            const size_t end = std::min(s.find(',', pos), s.size());
            const std::string item = s.substr(pos, end - pos);
            char* stop = nullptr;
            const double x = std::strtod(item.c_str(), &stop);
            if (item.empty() || *stop != '\0' || !std::isfinite(x)) return std::nullopt;
            v.push_back(x);
            pos = end + 1;
        }
        if (v.size() != n) return std::nullopt;
        return v;
    };
    const auto r = numbers(spec.substr(a + 1, b - a - 1), 4), c = numbers(spec.substr(b + 1), 3);
    if (!r || !c || !((*r)[2] > 0) || !((*r)[3] > 0)) return bad;
    for (double v : *c)
        if (!(v >= 0 && v <= 255)) return bad;
    return CardPatch{spec.substr(0, a), RectMm{(*r)[0], (*r)[1], (*r)[2], (*r)[3]},
                     cv::Vec3d((*c)[0], (*c)[1], (*c)[2])};
}

// ---- rendering ----

namespace {

// Adds the area coverage of the rectangle [x0, x1) x [y0, y1) (in pixel-edge coordinates: pixel
// (u, v) covers [u, u+1) x [v, v+1)) to `cover`.
void add_rect(cv::Mat& cover, double x0, double y0, double x1, double y1) {
    x0 = std::max(x0, 0.0), y0 = std::max(y0, 0.0);
    x1 = std::min(x1, double(cover.cols)), y1 = std::min(y1, double(cover.rows));
    if (x1 <= x0 || y1 <= y0) return;
    const int u0 = int(std::floor(x0)), u1 = int(std::ceil(x1));
    const int v0 = int(std::floor(y0)), v1 = int(std::ceil(y1));
    for (int v = v0; v < v1; ++v) {
        const float cy = float(std::min(y1, v + 1.0) - std::max(y0, double(v)));
        float* row = cover.ptr<float>(v);
        for (int u = u0; u < u1; ++u) {
            const float cx = float(std::min(x1, u + 1.0) - std::max(x0, double(u)));
            row[u] += cx * cy;
        }
    }
}

}  // namespace

cv::Mat render_target(const Target& t, double platen_width_mm, double platen_height_mm, double px_per_mm,
                      bool annotate) {
    if (detail::target_problem(t)) return {};
    if (!(platen_width_mm > 0) || !(platen_height_mm > 0) || !(px_per_mm > 0)) return {};
    const double wd = platen_width_mm * px_per_mm, hd = platen_height_mm * px_per_mm;
    if (!(wd * hd < 4.0e8)) return {};  // 400 Mpx: a mistake, not a target
    const int w = std::max(1, int(std::lround(wd))), h = std::max(1, int(std::lround(hd)));
    const double s = px_per_mm;
    cv::Mat cover(h, w, CV_32F, cv::Scalar(0));
    try {
        if (t.kind == "aruco") {
            const auto dict = cv::aruco::getPredefinedDictionary(cv::aruco::DICT_4X4_50);
            const double cell = t.marker_mm / 6.0;
            for (int id = 0; id < t.cols * t.rows; ++id) {
                cv::Mat bits;
                cv::aruco::drawMarker(dict, id, 6, bits, 1);  // 6 x 6 cells: 0 black, 255 white
                cv::Point2d c[4];
                detail::marker_corners_mm(t, id, c);
                for (int r = 0; r < 6; ++r)
                    for (int q = 0; q < 6; ++q)
                        if (bits.at<uchar>(r, q) < 128)
                            add_rect(cover, (c[0].x + q * cell) * s, (c[0].y + r * cell) * s,
                                     (c[0].x + (q + 1) * cell) * s, (c[0].y + (r + 1) * cell) * s);
            }
        } else {
            const double sq = t.square_mm;
            for (int j = 0; j <= t.rows; ++j)
                for (int i = 0; i <= t.cols; ++i)
                    if ((i + j) % 2 == 0) {
                        const cv::Point2d p = detail::chess_corner_mm(t, i - 1, j - 1);
                        add_rect(cover, p.x * s, p.y * s, (p.x + sq) * s, (p.y + sq) * s);
                    }
        }
        // Annotations go in the margins: a 100 mm scale bar (area-exact like the target) and text
        // under the target, "TOP" above it, a thin platen outline.
        const cv::Rect2d box = detail::target_box_mm(t);
        const double bottom = box.y + box.height, margin = platen_height_mm - bottom;
        const double left = std::max(8.0, box.x);
        const bool bar = annotate && margin >= 14 && left + 100 <= platen_width_mm - 2;
        const double y0 = bottom + std::max(5.0, margin * 0.3);  // the bar's top edge
        if (bar) {
            add_rect(cover, left * s, y0 * s, (left + 100) * s, (y0 + 1.5) * s);
            for (int k = 0; k <= 10; ++k)  // ticks every 10 mm, longer every 50
                add_rect(cover, (left + 10 * k - 0.2) * s, (y0 - (k % 5 == 0 ? 3 : 1.5)) * s,
                         (left + 10 * k + 0.2) * s, y0 * s);
        }
        cv::Mat out;
        cv::min(cover, 1.0, cover);
        cover.convertTo(out, CV_8U, -255.0, 255.0);
        cover.release();
        if (!annotate) return out;

        const int line = std::max(1, int(std::lround(0.3 * s)));
        cv::rectangle(out, cv::Rect(0, 0, w, h), cv::Scalar(128), line);
        if (bar) {
            const double font = 3.0 * s / 22.0;  // Hershey simplex: ~22 px high at scale 1
            const int thick = std::max(1, int(std::lround(0.35 * s)));
            const std::string desc =
                t.kind == "aruco"
                    ? fmt::format(
                          "Pressline calibration target: ArUco DICT_4X4_50, {} x {} markers, marker {} mm, "
                          "pitch {} mm, origin ({}, {}) mm",
                          t.cols, t.rows, t.marker_mm, t.pitch_mm, t.origin_mm.x, t.origin_mm.y)
                    : fmt::format(
                          "Pressline calibration target: chessboard {} x {} inner corners, square {} mm, "
                          "first corner ({}, {}) mm",
                          t.cols, t.rows, t.square_mm, t.origin_mm.x, t.origin_mm.y);
            cv::putText(out, "100 mm: print at 100 %, check this bar",
                        cv::Point(int((left + 104) * s), int((y0 + 1.5) * s)), cv::FONT_HERSHEY_SIMPLEX, font,
                        cv::Scalar(0), thick, cv::LINE_AA);
            cv::putText(out, desc, cv::Point(int(left * s), int((y0 + 7.5) * s)), cv::FONT_HERSHEY_SIMPLEX,
                        font, cv::Scalar(0), thick, cv::LINE_AA);
            cv::putText(out,
                        fmt::format("platen {} x {} mm: the sheet's edges are the platen's edges",
                                    platen_width_mm, platen_height_mm),
                        cv::Point(int(left * s), int((y0 + 12.5) * s)), cv::FONT_HERSHEY_SIMPLEX, font,
                        cv::Scalar(0), thick, cv::LINE_AA);
        }
        if (box.y >= 10) {  // "TOP" centred in the top margin, clear of the target's quiet zone
            const std::string top = "TOP (collar side)";
            const double font = 4.0 * s / 22.0;
            const int thick = std::max(1, int(std::lround(0.4 * s)));
            int base = 0;
            const cv::Size sz = cv::getTextSize(top, cv::FONT_HERSHEY_SIMPLEX, font, thick, &base);
            cv::putText(
                out, top,
                cv::Point((w - sz.width) / 2, int(std::min(box.y * 0.5, box.y - 5) * s) + sz.height / 2),
                cv::FONT_HERSHEY_SIMPLEX, font, cv::Scalar(0), thick, cv::LINE_AA);
        }
        return out;
    } catch (const cv::Exception&) {
        return {};
    }
}

// ---- writing ----

namespace {

// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename,
// fsync of the directory. Returns an error message, empty on success.
std::string write_atomically(const fs::path& path, const void* bytes, size_t size) {
    const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
    const fs::path tmp = dir / fmt::format(".{}.tmp-{}", path.filename().string(), ::getpid());
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return fmt::format("cannot create {}: {}", tmp.string(), std::strerror(errno));
    const char* p = static_cast<const char*>(bytes);
    size_t left = size;
    std::string err;
    while (left > 0) {
        const ssize_t n = ::write(fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            err = fmt::format("cannot write {}: {}", tmp.string(), std::strerror(errno));
            break;
        }
        p += n, left -= size_t(n);
    }
    if (err.empty() && ::fsync(fd) != 0)
        err = fmt::format("cannot fsync {}: {}", tmp.string(), std::strerror(errno));
    if (::close(fd) != 0 && err.empty())
        err = fmt::format("cannot close {}: {}", tmp.string(), std::strerror(errno));
    if (err.empty() && ::rename(tmp.c_str(), path.c_str()) != 0)
        err = fmt::format("cannot rename {} to {}: {}", tmp.string(), path.string(), std::strerror(errno));
    if (!err.empty()) {
        ::unlink(tmp.c_str());
        return err;
    }
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);  // best effort: the file itself is complete either way
        ::close(dfd);
    }
    return {};
}

std::string iso_utc(std::chrono::system_clock::time_point t) {
    const std::time_t tt = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

json rect_json(const RectMm& r) { return json::array({r.x, r.y, r.width, r.height}); }

}  // namespace

Result<json> write_calibration(const CalibrationOutput& out, const fs::path& json_path) {
    auto failed = [&](const std::string& msg) { return Problem{"write_failed", json_path.string(), msg}; };
    const Calibration& c = out.calibration;
    if (json_path.filename().empty())
        return failed("calibration path has no file name: " + json_path.string());
    json j;
    j["image_size_px"] = {c.image_size.width, c.image_size.height};
    json h = json::array();
    for (int r = 0; r < 3; ++r)
        for (int q = 0; q < 3; ++q) h.push_back(c.H(r, q));
    j["H_platen_mm_to_image_px"] = h;

    j["flatfield"] = nullptr;
    if (!c.flatfield.empty()) {
        const std::string name = json_path.stem().string() + ".flatfield.png";
        cv::Mat gain, png16;
        std::vector<std::uint8_t> bytes;
        try {
            c.flatfield.convertTo(gain, CV_32F);
            if (gain.channels() != 1) return failed("flat field must have one channel");
            cv::min(cv::max(gain, 0.0), 1.0, gain);
            gain.convertTo(png16, CV_16U, 65535.0);  // rounds
            auto encoded = pressline::image::encode(pressline::image::Format::png, png16);
            if (!encoded) return failed("cannot encode the flat field as PNG: " + encoded.message);
            bytes = std::move(encoded.value);
        } catch (const cv::Exception& e) {
            return failed(std::string("cannot encode the flat field: ") + e.what());
        }
        const fs::path png_path =
            json_path.has_parent_path() ? json_path.parent_path() / name : fs::path(name);
        if (auto err = write_atomically(png_path, bytes.data(), bytes.size()); !err.empty())
            return failed(err);
        j["flatfield"] = name;
    }

    if (c.gray_patches.empty()) {
        j["gray_card"] = nullptr;
    } else {
        double x0 = INFINITY, y0 = INFINITY, x1 = -INFINITY, y1 = -INFINITY;
        json patches = json::array();
        for (const GrayPatch& p : c.gray_patches) {
            x0 = std::min(x0, p.rect_mm.x), y0 = std::min(y0, p.rect_mm.y);
            x1 = std::max(x1, p.rect_mm.x + p.rect_mm.width),
            y1 = std::max(y1, p.rect_mm.y + p.rect_mm.height);
            patches.push_back({{"name", p.name},
                               {"rect_mm", rect_json(p.rect_mm)},
                               {"srgb", {p.srgb[0], p.srgb[1], p.srgb[2]}}});
        }
        j["gray_card"] = {{"rect_mm", rect_json(RectMm{x0, y0, x1 - x0, y1 - y0})}, {"patches", patches}};
    }

    j["reprojection_rms_px"] = out.reprojection_rms_px;
    j["points_used"] = out.points_used;
    j["markers_found"] = out.markers_found;
    j["warnings"] = out.warnings;
    j["created"] = iso_utc(out.created);
    j["target"] = target_to_json(out.target);
    j["platen_mm"] = {out.platen_width_mm, out.platen_height_mm};

    std::string text;
    try {
        text = j.dump(2) + "\n";
    } catch (const json::exception& e) {  // e.g. a patch name that is not UTF-8
        return failed(std::string("cannot write the calibration as JSON: ") + e.what());
    }
    if (auto err = write_atomically(json_path, text.data(), text.size()); !err.empty()) return failed(err);
    return j;
}

}  // namespace pressline::devices::qa
