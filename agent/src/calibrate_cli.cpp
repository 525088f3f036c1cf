// `pressline calibrate`: print the target, or compute a station's calibration from a photo of the
// target on the platen (+ a white board photo for the flat field, + gray card patches) and write
// the calibration JSON, its flat-field PNG and a check image (docs/calibration.md).
#include "calibrate_cli.hpp"

#include <fstream>
#include <memory>
#include <sstream>
#include <iostream>

#include <fmt/format.h>

#include "pressline/agent/control.hpp"
#include "pressline/devices/qa/calibration.hpp"
#include "pressline/devices/qa/inspector.hpp"
#include "pressline/devices/render.hpp"
#include "pressline/image/image.hpp"

namespace pressline::agent {

namespace {

namespace qa = pressline::devices::qa;

int fail(std::ostream& err, const qa::Problem& p) {
    err << "pressline calibrate: " << (p.field.empty() ? "" : p.field + ": ") << p.message << "\n";
    return p.reason == "write_failed" ? 1 : 2;
}

// A photo by the configured camera, saved as `save_as`: through the running agent (which holds
// the camera) or, with `direct` (no agent runs), by the camera opened here. The technician is
// asked to set up `what` first and presses Enter.
bool camera_photo(const CalibrateOptions& o, const std::string& what, const std::filesystem::path& save_as,
                  std::istream& in, std::ostream& err, drivers::camera::Camera* direct) {
    namespace fs = std::filesystem;
    err << "pressline calibrate: " << what << "; then press Enter" << std::endl;
    std::string line;
    std::getline(in, line);
    std::error_code ec;
    fs::create_directories(save_as.parent_path(), ec);
    if (!direct) {
        std::string error;
        const nlohmann::json req{{"type", "snapshot"}, {"camera", o.camera_name}, {"by", "pressline calibrate"}};
        auto res = control_request(o.control_socket, req, error, 180'000);
        if (!res) {
            err << "pressline calibrate: camera " << o.camera_name << " (through the running agent): " << error << "\n";
            return false;
        }
        const auto& shots = res->value("snapshots", nlohmann::json::array());
        const std::string path = shots.empty() ? "" : shots[0].value("path", "");
        if (res->value("status", "") != "ok" || path.empty()) {
            err << "pressline calibrate: camera " << o.camera_name << " (through the running agent): "
                << res->value("message", std::string("no picture")) << "\n";
            return false;
        }
        if (!fs::copy_file(path, save_as, fs::copy_options::overwrite_existing, ec)) {
            err << "pressline calibrate: cannot copy " << path << " to " << save_as.string() << ": " << ec.message() << "\n";
            return false;
        }
    } else {
        auto frame = direct->grab();
        if (!frame) {
            err << "pressline calibrate: " << frame.message << "\n";
            return false;
        }
        if (auto st = pressline::image::write(save_as, frame.value.bgr, {.jpeg_quality = 95}); !st) {
            err << "pressline calibrate: " << st.message << "\n";
            return false;
        }
    }
    err << "pressline calibrate: photo " << save_as.string() << "\n";
    return true;
}

}  // namespace

int calibrate_main(CalibrateOptions o, std::istream& console, std::ostream& out, std::ostream& err) {
    auto platen = pressline::devices::render::platen_from_name(o.platen);
    if (auto* p = std::get_if<pressline::devices::render::Problem>(&platen)) {
        err << "pressline calibrate: --platen: " << p->message << "\n";
        return 2;
    }
    const auto& pl = std::get<pressline::devices::render::Platen>(platen);

    qa::Target t;
    t.kind = o.target;
    if (o.target == "chessboard") t.cols = 9, t.rows = 12, t.square_mm = 30, t.origin_mm = {83.2, 89};
    if (o.cols) t.cols = o.cols;
    if (o.rows) t.rows = o.rows;
    if (o.marker_mm > 0) t.marker_mm = o.marker_mm;
    if (o.pitch_mm > 0) t.pitch_mm = o.pitch_mm;
    if (o.square_mm > 0) t.square_mm = o.square_mm;
    if (!o.origin_mm.empty()) {
        double x = 0, y = 0;
        char comma = 0;
        std::istringstream is(o.origin_mm);
        if (!(is >> x >> comma >> y) || comma != ',') {
            err << "pressline calibrate: --origin-mm: expected X,Y in mm, got '" << o.origin_mm << "'\n";
            return 2;
        }
        t.origin_mm = {x, y};
    }
    // Validated through the same reader the calibration file uses.
    auto checked = qa::target_from_json(qa::target_to_json(t), "target");
    if (auto* p = std::get_if<qa::Problem>(&checked)) return fail(err, *p);

    if (!o.print_target.empty()) {
        const cv::Mat img = qa::render_target(t, pl.width_mm, pl.height_mm, o.px_per_mm, true);
        const auto st = img.empty() ? pressline::image::Status{} : pressline::image::write(o.print_target, img);
        if (img.empty() || !st) {
            err << "pressline calibrate: "
                << (img.empty() ? "cannot write " + o.print_target + ": the target could not be drawn" : st.message) << "\n";
            return 1;
        }
        out << fmt::format("{}: {} target for a {} platen at {:.3f} px/mm ({}x{} px); print it at 100 %\n",
                           o.print_target, t.kind, pl.name, o.px_per_mm, img.cols, img.rows);
        return 0;
    }

    if (o.target_photo.empty() && !o.camera) {
        err << "pressline calibrate: --target-photo is required (a photo of the target on the platen), or --camera "
               "with --config to take it\n";
        return 2;
    }
    if (o.out.empty()) {
        err << "pressline calibrate: --out is required (where the calibration JSON goes; the camera's "
               "`calibration` path in the config)\n";
        return 2;
    }
    if (o.camera) {
        // Through the running agent when one answers (it holds the camera); else the camera is
        // opened here, before the first photo is asked for: a folder camera then takes the images
        // that appear from now on (an old garment photo in the folder is no calibration photo).
        std::unique_ptr<drivers::camera::Camera> direct;
        std::string why;
        if (!control_request(o.control_socket, {{"type", "ping"}}, why, 5'000)) {
            err << "pressline calibrate: no agent answers (" << why << "); opening camera " << o.camera_name << " here\n";
            auto settings = *o.camera;
            settings.skip_existing = true;
            direct = std::make_unique<drivers::camera::Camera>(settings);
            if (auto st = direct->open(); !st) {
                err << "pressline calibrate: " << st.message << "\n";
                return 2;
            }
        }
        // The photos are kept next to the calibration (what it was computed from).
        const std::filesystem::path outp(o.out);
        const auto base = outp.parent_path() / outp.stem();
        if (o.target_photo.empty()) {
            o.target_photo = base.string() + ".target.jpg";
            if (!camera_photo(o, "lay the target on the platen (the whole platen and the gray card in view)",
                              o.target_photo, console, err, direct.get()))
                return 2;
        }
        if (o.white_photo.empty()) {
            o.white_photo = base.string() + ".white.jpg";
            if (!camera_photo(o, "replace the target with the white board (platen and gray card covered)",
                              o.white_photo, console, err, direct.get()))
                return 2;
        }
    }
    qa::CalibrationInputs in;
    in.target = t;
    in.platen_width_mm = pl.width_mm;
    in.platen_height_mm = pl.height_mm;
    auto photo = qa::read_capture(o.target_photo, "--target-photo");
    if (auto* p = std::get_if<qa::Problem>(&photo)) return fail(err, *p);
    in.target_photo = std::get<cv::Mat>(photo);
    if (!o.white_photo.empty()) {
        auto white = qa::read_capture(o.white_photo, "--white-photo");
        if (auto* p = std::get_if<qa::Problem>(&white)) return fail(err, *p);
        in.white_photo = std::get<cv::Mat>(white);
    }
    if (!o.gray_card_file.empty()) {
        std::ifstream f(o.gray_card_file);
        auto j = nlohmann::json::parse(f, nullptr, false);
        if (!f.good() && !f.eof()) {
            err << "pressline calibrate: --gray-card: cannot read " << o.gray_card_file << "\n";
            return 2;
        }
        if (j.is_discarded()) {
            err << "pressline calibrate: --gray-card: " << o.gray_card_file << " is not JSON\n";
            return 2;
        }
        auto card = qa::gray_card_from_json(j, "--gray-card");
        if (auto* p = std::get_if<qa::Problem>(&card)) return fail(err, *p);
        in.gray_card = std::get<std::vector<qa::CardPatch>>(card);
    }
    for (const auto& spec : o.patches) {
        auto patch = qa::card_patch_from_string(spec, "--patch");
        if (auto* p = std::get_if<qa::Problem>(&patch)) return fail(err, *p);
        in.gray_card.push_back(std::get<qa::CardPatch>(patch));
    }

    auto result = qa::calibrate(in);
    if (auto* p = std::get_if<qa::Problem>(&result)) return fail(err, *p);
    const auto& cal = std::get<qa::CalibrationOutput>(result);
    auto written = qa::write_calibration(cal, o.out);
    if (auto* p = std::get_if<qa::Problem>(&written)) return fail(err, *p);
    std::string check = o.check_image;
    if (check.empty()) check = (std::filesystem::path(o.out).parent_path() / (std::filesystem::path(o.out).stem().string() + ".check.jpg")).string();
    if (auto st = cal.check_image.empty() ? pressline::image::Status{} : pressline::image::write(check, cal.check_image); !st) {
        err << "pressline calibrate: cannot write the check image: " << st.message << "\n";
        return 1;
    }
    out << fmt::format("{}: calibrated from {} target points, reprojection RMS {:.2f} px; flat field {}; "
                       "{} gray card patch(es)\ncheck image: {}\n",
                       o.out, cal.points_used, cal.reprojection_rms_px,
                       cal.calibration.flatfield.empty() ? "none" : "recorded", cal.calibration.gray_patches.size(),
                       check);
    for (const auto& w : cal.warnings) out << "warning: " << w << "\n";
    return 0;
}

}  // namespace pressline::agent
