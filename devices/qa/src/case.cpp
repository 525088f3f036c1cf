// Loading a QA case and a calibration from JSON (the `pressline qa inspect` input, docs/qa.md).
// Every problem names the field it belongs to; nothing here throws.
#include <cmath>
#include <fstream>

#include <fmt/format.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "pressline/devices/qa/inspector.hpp"
#include "pressline/image/image.hpp"
#include "qa_internal.hpp"

namespace pressline::devices::qa {

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

Problem bad(std::string field, std::string message) {
    return Problem{"bad_case", std::move(field), std::move(message)};
}

const char* type_name(const json& v) {
    return v.is_null() ? "null" : v.type_name();
}

// A finite number at j[key]; `problem` set when missing or wrong.
std::optional<double> number(const json& j, const std::string& key, const std::string& path,
                             std::optional<Problem>& problem, bool required = true) {
    if (problem) return std::nullopt;
    auto it = j.find(key);
    if (it == j.end() || (!required && it->is_null())) {
        if (required) problem = bad(path, "is missing (a number)");
        return std::nullopt;
    }
    if (!it->is_number()) {
        problem = bad(path, fmt::format("must be a number, not {}", type_name(*it)));
        return std::nullopt;
    }
    const double v = it->get<double>();
    if (!std::isfinite(v)) {
        problem = bad(path, "must be a finite number");
        return std::nullopt;
    }
    return v;
}

// An array of exactly n finite numbers.
std::optional<std::vector<double>> numbers(const json& v, std::size_t n, const std::string& path,
                                           std::optional<Problem>& problem) {
    if (problem) return std::nullopt;
    if (!v.is_array()) {
        problem = bad(path, fmt::format("must be an array of {} numbers, not {}", n, type_name(v)));
        return std::nullopt;
    }
    std::vector<double> out;
    for (const auto& e : v) {
        if (e.is_array()) {  // a 3x3 matrix given as rows
            for (const auto& f : e) {
                if (!f.is_number()) {
                    problem = bad(path, fmt::format("must hold numbers only; found {}", type_name(f)));
                    return std::nullopt;
                }
                out.push_back(f.get<double>());
            }
            continue;
        }
        if (!e.is_number()) {
            problem = bad(path, fmt::format("must hold numbers only; found {}", type_name(e)));
            return std::nullopt;
        }
        out.push_back(e.get<double>());
    }
    if (out.size() != n) {
        problem = bad(path, fmt::format("must be {} numbers; got {}", n, out.size()));
        return std::nullopt;
    }
    for (double d : out)
        if (!std::isfinite(d)) {
            problem = bad(path, "must hold finite numbers only");
            return std::nullopt;
        }
    return out;
}

// A rectangle as [x, y, w, h] or {x, y, width, height}, with positive width and height.
std::optional<RectMm> rect(const json& v, const std::string& path, std::optional<Problem>& problem) {
    if (problem) return std::nullopt;
    RectMm r;
    if (v.is_object()) {
        auto x = number(v, "x", path + ".x", problem);
        auto y = number(v, "y", path + ".y", problem);
        auto w = number(v, "width", path + ".width", problem);
        auto h = number(v, "height", path + ".height", problem);
        if (problem) return std::nullopt;
        r = {*x, *y, *w, *h};
    } else {
        auto a = numbers(v, 4, path, problem);
        if (!a) {
            if (problem && !v.is_array())
                problem->message = fmt::format("must be [x, y, width, height] or an object, not {}", type_name(v));
            return std::nullopt;
        }
        r = {(*a)[0], (*a)[1], (*a)[2], (*a)[3]};
    }
    if (r.width <= 0 || r.height <= 0) {
        problem = bad(path, fmt::format("width and height must be positive; got {} x {}", r.width, r.height));
        return std::nullopt;
    }
    return r;
}

std::optional<cv::Vec3d> srgb(const json& v, const std::string& path, std::optional<Problem>& problem) {
    auto a = numbers(v, 3, path, problem);
    if (!a) return std::nullopt;
    for (double c : *a)
        if (c < 0 || c > 255) {
            problem = bad(path, fmt::format("values must be 0..255; got {}", c));
            return std::nullopt;
        }
    return cv::Vec3d((*a)[0], (*a)[1], (*a)[2]);
}

std::optional<fs::path> path_field(const json& j, const std::string& key, const std::string& path,
                                   const fs::path& base, std::optional<Problem>& problem) {
    if (problem) return std::nullopt;
    auto it = j.find(key);
    if (it == j.end()) {
        problem = bad(path, "is missing (a file path)");
        return std::nullopt;
    }
    if (!it->is_string() || it->get<std::string>().empty()) {
        problem = bad(path, fmt::format("must be a file path (string), not {}", it->is_string() ? "empty" : type_name(*it)));
        return std::nullopt;
    }
    fs::path p = it->get<std::string>();
    if (p.is_relative()) p = base / p;
    return p;
}

Problem unreadable(const std::string& field, const fs::path& p, const std::string& why) {
    return Problem{"unreadable_image", field, fmt::format("{}: {}", p.string(), why)};
}

// Why an image could not be read: missing, unreadable, or not an image (and the decoder's words).
std::string read_failure(const fs::path& p, const pressline::image::Outcome<cv::Mat>& r) {
    using pressline::image::Errc;
    std::error_code ec;
    if (!fs::exists(p, ec)) return "no such file";
    if (fs::is_directory(p, ec)) return "is a directory, not an image";
    if (r.code == Errc::io) return "cannot be opened (permissions?)";
    if (r.code == Errc::too_large) return "too large: " + r.message;
    // The decoder's message starts with the path, which the caller already names.
    std::string words = r.message;
    if (words.rfind(p.string() + ": ", 0) == 0) words = words.substr(p.string().size() + 2);
    return "not a decodable image (corrupt or unsupported format: " + words + ")";
}

// Images are read with drivers/image (libpng, libjpeg), not cv::imread: see its header.
// The options stand for the imread flags named beside them.
Result<cv::Mat> read_image(const std::string& field, const fs::path& p, const pressline::image::ReadOptions& opt) {
    auto r = pressline::image::read(p, opt);
    if (!r) return unreadable(field, p, read_failure(p, r));
    return std::move(r.value);
}

}  // namespace

Result<cv::Mat> read_capture(const fs::path& path, const std::string& field) {
    return read_capture_reduced(path, 1, field);
}

Result<cv::Mat> read_capture_reduced(const fs::path& path, int reduce, const std::string& field) {
    // IMREAD_COLOR | IMREAD_IGNORE_ORIENTATION, or IMREAD_REDUCED_COLOR_<reduce>.
    pressline::image::ReadOptions opt;
    opt.color = pressline::image::Color::bgr;
    opt.reduce = (reduce == 2 || reduce == 4 || reduce == 8) ? reduce : 1;
    return read_image(field, path, opt);
}

Result<cv::Mat> read_reference(const fs::path& path, const std::string& field) {
    // IMREAD_UNCHANGED: gray, BGR or BGRA, 8 or 16 bits as stored.
    auto read = read_image(field, path, {.color = pressline::image::Color::as_stored, .keep_alpha = true, .keep_16bit = true});
    if (auto* p = std::get_if<Problem>(&read)) return *p;
    cv::Mat m = std::get<cv::Mat>(read);
    try {
        if (m.depth() == CV_16U) m.convertTo(m, CV_8U, 1.0 / 257.0);
        else if (m.depth() != CV_8U) return unreadable(field, path, "must be an 8- or 16-bit image");
        cv::Mat bgra;
        switch (m.channels()) {
            case 1: cv::cvtColor(m, bgra, cv::COLOR_GRAY2BGRA); break;
            case 2: {
                std::vector<cv::Mat> ch;
                cv::split(m, ch);
                cv::merge(std::vector<cv::Mat>{ch[0], ch[0], ch[0], ch[1]}, bgra);
                break;
            }
            case 3: cv::cvtColor(m, bgra, cv::COLOR_BGR2BGRA); break;
            case 4: bgra = m; break;
            default: return unreadable(field, path, fmt::format("has {} channels", m.channels()));
        }
        return bgra;
    } catch (const cv::Exception& e) {
        return unreadable(field, path, e.what());
    }
}

Result<Calibration> calibration_from_json(const json& j, const fs::path& base, const std::string& field) {
    if (!j.is_object()) return bad(field, fmt::format("must be an object, not {}", type_name(j)));
    std::optional<Problem> problem;
    Calibration c;
    auto size_it = j.find("image_size_px");
    if (size_it == j.end()) return bad(field + ".image_size_px", "is missing ([width, height] in pixels)");
    auto size = numbers(*size_it, 2, field + ".image_size_px", problem);
    if (problem) return *problem;
    if ((*size)[0] < 1 || (*size)[1] < 1 || (*size)[0] != std::floor((*size)[0]) || (*size)[1] != std::floor((*size)[1]))
        return bad(field + ".image_size_px", "must be two positive whole numbers [width, height]");
    c.image_size = cv::Size(static_cast<int>((*size)[0]), static_cast<int>((*size)[1]));

    auto h_it = j.find("H_platen_mm_to_image_px");
    if (h_it == j.end())
        return bad(field + ".H_platen_mm_to_image_px", "is missing (3x3 homography, 9 numbers row-major)");
    auto h = numbers(*h_it, 9, field + ".H_platen_mm_to_image_px", problem);
    if (problem) return *problem;
    for (int i = 0; i < 9; ++i) c.H(i / 3, i % 3) = (*h)[static_cast<std::size_t>(i)];
    if (std::abs(cv::determinant(c.H)) < 1e-12)
        return bad(field + ".H_platen_mm_to_image_px", "is singular (determinant 0): not a homography");

    if (auto ff = j.find("flatfield"); ff != j.end() && !ff->is_null()) {
        auto p = path_field(j, "flatfield", field + ".flatfield", base, problem);
        if (problem) return *problem;
        // IMREAD_ANYDEPTH | IMREAD_GRAYSCALE: 8 or 16-bit gray.
        auto read = read_image(field + ".flatfield", *p, {.color = pressline::image::Color::gray, .keep_16bit = true});
        if (auto* pr = std::get_if<Problem>(&read)) return *pr;
        cv::Mat g = std::get<cv::Mat>(read);
        const double scale = g.depth() == CV_16U ? 1.0 / 65535.0 : g.depth() == CV_8U ? 1.0 / 255.0 : 1.0;
        g.convertTo(c.flatfield, CV_32F, scale);
        cv::max(c.flatfield, 0.02, c.flatfield);  // a dead pixel in the map must not divide by 0
    }

    if (auto gc = j.find("gray_card"); gc != j.end() && !gc->is_null()) {
        const std::string gpath = field + ".gray_card";
        if (!gc->is_object()) return bad(gpath, fmt::format("must be an object or null, not {}", type_name(*gc)));
        auto pit = gc->find("patches");
        if (pit == gc->end()) return bad(gpath + ".patches", "is missing (a list of patches)");
        if (!pit->is_array()) return bad(gpath + ".patches", fmt::format("must be a list, not {}", type_name(*pit)));
        for (std::size_t i = 0; i < pit->size(); ++i) {
            const auto& pj = (*pit)[i];
            const std::string pp = fmt::format("{}.patches[{}]", gpath, i);
            if (!pj.is_object()) return bad(pp, fmt::format("must be an object, not {}", type_name(pj)));
            GrayPatch patch;
            if (auto n = pj.find("name"); n != pj.end() && n->is_string()) patch.name = n->get<std::string>();
            else patch.name = fmt::format("patch {}", i);
            auto r = pj.find("rect_mm");
            if (r == pj.end()) return bad(pp + ".rect_mm", "is missing ([x, y, width, height] in platen mm)");
            auto rr = rect(*r, pp + ".rect_mm", problem);
            auto s = pj.find("srgb");
            if (!problem && s == pj.end()) return bad(pp + ".srgb", "is missing ([r, g, b], 0..255)");
            auto ss = problem ? std::nullopt : srgb(*s, pp + ".srgb", problem);
            if (problem) return *problem;
            patch.rect_mm = *rr;
            patch.srgb = *ss;
            c.gray_patches.push_back(std::move(patch));
        }
    }
    return c;
}

namespace {

// The rest of a case, its calibration given (it says how much of the capture's resolution is
// needed).
Result<Case> load_case_with(const json& j, const fs::path& base, Calibration calibration) {
    std::optional<Problem> problem;
    Case c;
    c.calibration = std::move(calibration);

    auto capture_path = path_field(j, "capture", "capture", base, problem);
    auto reference_path = path_field(j, "reference", "reference", base, problem);
    auto ppm = number(j, "reference_px_per_mm", "reference_px_per_mm", problem);
    if (problem) return *problem;
    if (*ppm <= 0) return bad("reference_px_per_mm", fmt::format("must be positive; got {}", *ppm));
    c.reference_px_per_mm = *ppm;

    auto pl = j.find("placement_mm");
    if (pl == j.end()) return bad("placement_mm", "is missing ({x, y, width, height} in platen mm)");
    auto box = rect(*pl, "placement_mm", problem);
    if (problem) return *problem;
    c.placement_mm = *box;

    auto g = j.find("garment_srgb_nominal");
    if (g == j.end()) return bad("garment_srgb_nominal", "is missing ([r, g, b], 0..255)");
    auto garment = srgb(*g, "garment_srgb_nominal", problem);
    if (problem) return *problem;
    c.garment_srgb_nominal = *garment;

    // A JPEG much sharper than the inspection needs is decoded at 1/2, 1/4 or 1/8 size by
    // libjpeg itself (DCT scaling: several times faster, and a proper low-pass).
    const int reduce = capture_reduction(c.calibration, kWorkPxPerMm);
    auto capture = read_capture_reduced(*capture_path, reduce, "capture");
    if (auto* p = std::get_if<Problem>(&capture)) return *p;
    c.capture = std::move(std::get<cv::Mat>(capture));
    if (auto p = fit_calibration_to(c.calibration, c.capture.size(), reduce)) return *p;

    auto reference = read_reference(*reference_path, "reference");
    if (auto* p = std::get_if<Problem>(&reference)) return *p;
    c.reference = std::move(std::get<cv::Mat>(reference));
    return c;
}

}  // namespace

Result<Case> load_case(const json& j, const fs::path& base) {
    if (!j.is_object()) return bad("", fmt::format("a QA case must be a JSON object, not {}", type_name(j)));
    auto cal_it = j.find("calibration");
    if (cal_it == j.end()) return bad("calibration", "is missing (an object)");
    auto cal = calibration_from_json(*cal_it, base, "calibration");
    if (auto* p = std::get_if<Problem>(&cal)) return *p;
    return load_case_with(j, base, std::move(std::get<Calibration>(cal)));
}

Result<Case> load_case(const json& j, const fs::path& base, const Calibration& calibration) {
    if (!j.is_object()) return bad("", fmt::format("a QA case must be a JSON object, not {}", type_name(j)));
    if (calibration.image_size.width < 1 || calibration.image_size.height < 1)
        return Problem{"bad_calibration", "calibration.image_size_px", "the preloaded calibration has no image size"};
    if (!(std::abs(cv::determinant(calibration.H)) >= 1e-12))
        return Problem{"bad_calibration", "calibration.H_platen_mm_to_image_px",
                       "the preloaded calibration's homography is singular (determinant 0)"};
    return load_case_with(j, base, calibration);
}

}  // namespace pressline::devices::qa
