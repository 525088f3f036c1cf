// Synthetic QA cases with known truth: a procedural artwork printed (well or with one defect) on a
// textured garment on a 16x20 in platen, photographed by a simulated station camera (perspective,
// vignetting = the flat field written with the case, exposure and white-balance error that the
// gray card undoes, blur, sensor noise, JPEG). Independent of devices/qa on purpose.
//
// Conventions of the truth (truth.json), all in platen millimetres (origin top-left of the
// platen, x right, y down, seen from above with the collar at the top):
//   offset_mm {x, y}  centre of the printed artwork minus centre of placement_mm
//   rotation_deg      rotation of the print about its centre; positive turns +x towards +y
//                     (clockwise on the platen seen from above, as on screen)
//   scale_pct         (printed size / intended size - 1) * 100
//   mean_de00         mean CIEDE2000 over inked reference pixels (alpha >= 128) between the
//                     intended printed colour (reference composited on the nominal garment) and
//                     the colour actually printed there, before any camera effect
// Threading: everything here is reentrant; generate_case() uses cv::parallel_for_ internally.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core/mat.hpp>
#include <opencv2/core/matx.hpp>

namespace pressline::qa_dataset {

inline constexpr double kPlatenWidthMm = 406.4;   // 16 in
inline constexpr double kPlatenHeightMm = 508.0;  // 20 in

// The defect types (the contract's reason codes) in generation order.
const std::vector<std::string>& defect_types();

struct Garment {
    std::string name;
    cv::Vec3d srgb;   // r, g, b 0..255
};
// white, black, navy, heather_grey, red, royal, forest.
const std::vector<Garment>& garments();

struct Options {
    cv::Size image_size{4000, 3000};
    double reference_px_per_mm = 150.0 / 25.4;   // reference.png resolution
    bool png_capture = false;                    // capture.png instead of capture.jpg
    int jpeg_quality = 90;
    double residual_gradient = 0.01;             // lighting not in the flat field, max +-fraction
};

enum class Severity { none, clear, just_inside };
std::string to_string(Severity s);

struct CaseSpec {
    std::string type = "good";       // "good" or one of defect_types()
    Severity severity = Severity::none;
    std::uint64_t seed = 1;
};

struct GrayPatchSpec {
    std::string name;
    cv::Vec4d rect_mm;               // x, y, w, h
    cv::Vec3d srgb;
};

// A station's fixed camera: where the platen is in the image, the light fall-off, the gray card.
struct Camera {
    cv::Size image_size;
    cv::Matx33d H;                   // platen mm -> image px (pixel centres at integers)
    cv::Mat flatfield16;             // CV_16U gain map (65535 = 1.0), smaller than the image
    cv::Vec4d gray_card_rect_mm;
    std::vector<GrayPatchSpec> patches;
};
Camera make_camera(cv::Size image_size, std::uint64_t seed);
// The `calibration` object of a case (flatfield given as `flatfield_path`, may be relative).
nlohmann::json camera_to_json(const Camera& cam, const std::string& flatfield_path);
// Reads back what camera_to_json wrote; the flat field is read from `base` / its path.
// Throws std::runtime_error naming the problem.
Camera camera_from_json(const nlohmann::json& j, const std::filesystem::path& base);

struct GeneratedCase {
    std::string id;
    cv::Mat capture;                 // CV_8UC3 BGR
    cv::Mat reference;               // CV_8UC4 BGRA, straight alpha
    cv::Mat flatfield16;             // CV_16U
    nlohmann::json case_json;        // the CLI input (relative file names)
    nlohmann::json truth;
};

// Deterministic for (spec, options).
GeneratedCase generate_case(const CaseSpec& spec, const Options& options = {});

// Writes capture.jpg|png, reference.png, flatfield.png, case.json and truth.json into `dir`
// (created). Throws std::runtime_error when a file cannot be written.
void write_case(const GeneratedCase& c, const std::filesystem::path& dir, const Options& options = {});

// The cases of a dataset, in order: for each type per_type cases (about 70 % clear, the rest
// just inside tolerance where the type has such a variant), then `good` good cases.
std::vector<CaseSpec> dataset_specs(int per_type, int good, std::uint64_t seed,
                                    const std::vector<std::string>& types = {});
std::string case_id(const CaseSpec& spec, int index);

// The demo's simulated camera: photographs a platen-sized RGBA print file (as the agent's
// renderer writes it) printed on a garment of colour `garment_srgb`, optionally with a defect.
struct PhotoRequest {
    cv::Mat print_bgra;              // CV_8UC4, the whole platen
    double platen_width_mm = kPlatenWidthMm;
    double platen_height_mm = kPlatenHeightMm;
    cv::Vec3d garment_srgb{245, 245, 242};
    std::string defect;              // "" = a good print, else one of defect_types()
    std::uint64_t seed = 1;
};
struct Photo {
    cv::Mat capture;                 // CV_8UC3 BGR
    nlohmann::json truth;
};
Photo photograph(const PhotoRequest& request, const Camera& cam, const Options& options = {});

}  // namespace pressline::qa_dataset
