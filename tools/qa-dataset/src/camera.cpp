// The simulated station camera of the QA dataset: geometry (platen mm -> image px), flat field,
// gray card, and its JSON form (the `calibration` object of a case).
#include <cmath>
#include <fstream>
#include <numbers>
#include <stdexcept>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "detail.hpp"
#include "pressline/qa_dataset/dataset.hpp"

namespace pressline::qa_dataset {

using namespace detail;

Camera make_camera(cv::Size image_size, std::uint64_t seed) {
    Rng rng(mix_seed(seed, 0xca3e7a));
    Camera cam;
    cam.image_size = image_size;
    // Platen ~72-82 % of the frame height; world point (230, 254) mm (between the platen's centre
    // and the gray card) near the image centre; small roll; keystone from a slightly tilted view.
    const double p = uniform(rng, 0.72, 0.82) * image_size.height / kPlatenHeightMm;
    const double th = uniform(rng, -2.0, 2.0) * std::numbers::pi / 180.0;
    const double k1 = uniform(rng, -4e-5, 4e-5), k2 = uniform(rng, -4e-5, 4e-5);
    const double cx = image_size.width * (0.5 + uniform(rng, -0.015, 0.015));
    const double cy = image_size.height * (0.5 + uniform(rng, -0.015, 0.015));
    const cv::Matx33d centre(1, 0, -230.0, 0, 1, -254.0, 0, 0, 1);
    const cv::Matx33d m(p * std::cos(th), -p * std::sin(th), 0, p * std::sin(th), p * std::cos(th), 0, k1, k2, 1);
    const cv::Matx33d to_img(1, 0, cx, 0, 1, cy, 0, 0, 1);
    cam.H = to_img * m * centre;
    cam.H = cam.H * (1.0 / cam.H(2, 2));

    // Flat field: vignetting (radial fall-off about a slightly off-centre optical axis) times a
    // linear lighting gradient, 65535 = gain 1.0; about a tenth of the image size.
    const cv::Size fs(std::max(40, image_size.width / 10), std::max(30, image_size.height / 10));
    const double g0 = uniform(rng, 0.86, 0.9);
    const double a = uniform(rng, 0.12, 0.28), b = uniform(rng, 0.0, 0.08);
    const double ox = uniform(rng, -0.08, 0.08), oy = uniform(rng, -0.08, 0.08);
    const double gx = uniform(rng, -0.08, 0.08), gy = uniform(rng, -0.08, 0.08);
    cam.flatfield16.create(fs, CV_16U);
    for (int y = 0; y < fs.height; ++y)
        for (int x = 0; x < fs.width; ++x) {
            const double u = (x + 0.5) / fs.width - 0.5, v = (y + 0.5) / fs.height - 0.5;
            const double r2 = ((u - ox) * (u - ox) + (v - oy) * (v - oy)) / 0.5;
            const double gain = g0 * (1 - a * r2 - b * r2 * r2) * (1 + gx * u + gy * v);
            cam.flatfield16.at<std::uint16_t>(y, x) = cv::saturate_cast<std::uint16_t>(gain * 65535.0);
        }

    cam.gray_card_rect_mm = {438, 183, 54, 140};
    cam.patches = {{"white", {445, 190, 40, 38}, {243, 243, 242}},
                   {"gray", {445, 235, 40, 38}, {160, 160, 160}},
                   {"black", {445, 280, 40, 38}, {30, 30, 30}}};
    return cam;
}

nlohmann::json camera_to_json(const Camera& cam, const std::string& flatfield_path) {
    nlohmann::json h = nlohmann::json::array();
    for (int r = 0; r < 3; ++r)
        for (int c = 0; c < 3; ++c) h.push_back(cam.H(r, c));
    nlohmann::json patches = nlohmann::json::array();
    for (const auto& p : cam.patches)
        patches.push_back({{"name", p.name},
                           {"rect_mm", {p.rect_mm[0], p.rect_mm[1], p.rect_mm[2], p.rect_mm[3]}},
                           {"srgb", {p.srgb[0], p.srgb[1], p.srgb[2]}}});
    const auto& g = cam.gray_card_rect_mm;
    return {{"image_size_px", {cam.image_size.width, cam.image_size.height}},
            {"H_platen_mm_to_image_px", h},
            {"flatfield", flatfield_path.empty() ? nlohmann::json(nullptr) : nlohmann::json(flatfield_path)},
            {"gray_card", {{"rect_mm", {g[0], g[1], g[2], g[3]}}, {"patches", patches}}}};
}

Camera camera_from_json(const nlohmann::json& j, const std::filesystem::path& base) {
    try {
        Camera cam;
        cam.image_size = {j.at("image_size_px").at(0).get<int>(), j.at("image_size_px").at(1).get<int>()};
        const auto& h = j.at("H_platen_mm_to_image_px");
        if (!h.is_array() || h.size() != 9) throw std::runtime_error("H_platen_mm_to_image_px: not 9 numbers");
        for (int i = 0; i < 9; ++i) cam.H(i / 3, i % 3) = h.at(i).get<double>();
        if (j.contains("flatfield") && j.at("flatfield").is_string()) {
            std::filesystem::path f = j.at("flatfield").get<std::string>();
            if (f.is_relative()) f = base / f;
            cam.flatfield16 = cv::imread(f.string(), cv::IMREAD_UNCHANGED);
            if (cam.flatfield16.empty() || cam.flatfield16.type() != CV_16U)
                throw std::runtime_error("flatfield: cannot read a 16-bit gray PNG at " + f.string());
        } else {
            cam.flatfield16 = cv::Mat(30, 40, CV_16U, cv::Scalar(65535));
        }
        const auto& gc = j.at("gray_card");
        for (int i = 0; i < 4; ++i) cam.gray_card_rect_mm[i] = gc.at("rect_mm").at(i).get<double>();
        for (const auto& p : gc.at("patches")) {
            GrayPatchSpec s;
            s.name = p.at("name").get<std::string>();
            for (int i = 0; i < 4; ++i) s.rect_mm[i] = p.at("rect_mm").at(i).get<double>();
            for (int i = 0; i < 3; ++i) s.srgb[i] = p.at("srgb").at(i).get<double>();
            cam.patches.push_back(s);
        }
        return cam;
    } catch (const nlohmann::json::exception& e) {
        throw std::runtime_error(std::string("calibration JSON: ") + e.what());
    }
}

}  // namespace pressline::qa_dataset
