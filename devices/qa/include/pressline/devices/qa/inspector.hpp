// Visual QA of one printed garment: rectify a capture into platen millimetres, register the print
// against its reference, measure placement, colour and local defects, decide pass or fail.
//
// Knows platens, references and calibration, nothing of jobs, MQTT or the journal.
// Error rule: bad input (unreadable images, inconsistent calibration) is a Problem value; OpenCV
// exceptions are caught here. A Case that loads always gets a verdict (pass or fail).
// Threading: inspect() is reentrant (no shared state but a thread-safe pool of scratch buffers,
// up to 160 MB kept between calls; it uses cv::parallel_for_ internally) and CPU-heavy: call it
// from the worker pool, never from the io_context thread.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core/mat.hpp>
#include <opencv2/core/matx.hpp>

#include "pressline/devices/qa/tolerances.hpp"

namespace pressline::devices::qa {

// Why a case could not be inspected. `field` is the case's JSON path ("calibration.flatfield",
// "capture"...) when the problem belongs to one input, else empty.
struct Problem {
    std::string reason;   // bad_case | unreadable_image | bad_calibration | inspect_failed
    std::string field;
    std::string message;
};
template <class T>
using Result = std::variant<T, Problem>;

// A rectangle in platen millimetres: origin at the platen's top-left corner, x right, y down
// (seen from above, collar at the top). May lie partly or wholly outside the platen (gray card).
struct RectMm {
    double x = 0, y = 0, width = 0, height = 0;
};

struct GrayPatch {
    std::string name;             // "white", "gray", "black", ...
    RectMm rect_mm;
    cv::Vec3d srgb;               // r, g, b, 0..255 (the patch's known colour)
};

// The station's calibration: where the platen is in the camera image, the lens/light fall-off,
// the gray card. Produced by `pressline calibrate` (calibration.hpp), stored as JSON.
struct Calibration {
    cv::Size image_size;          // the camera image this calibration was made for (px)
    cv::Matx33d H;                // platen mm -> image px (homogeneous, row-major)
    cv::Mat flatfield;            // CV_32F gain at any size (stretched to image_size), 1.0 =
                                  // no change; empty = none. Capture (linear light) / gain.
    std::vector<GrayPatch> gray_patches;  // empty = no exposure / white-balance normalisation
};

// One inspection's inputs. Images are decoded; see load_case() for the JSON form.
struct Case {
    cv::Mat capture;              // CV_8UC3 BGR as photographed (sRGB-encoded)
    cv::Mat reference;            // CV_8UC4 BGRA, straight alpha = ink coverage
    double reference_px_per_mm = 0;
    RectMm placement_mm;          // the artwork box on the platen
    cv::Vec3d garment_srgb_nominal;  // r, g, b 0..255
    Calibration calibration;
};

// A connected region of local defects, in platen mm.
struct Defect {
    std::string kind;             // missing_ink | smudge
    RectMm bbox_mm;
    double area_mm2 = 0;
    double mean_de00 = 0;
    double max_de00 = 0;
};

struct Verdict {
    bool pass = false;
    std::string reason;           // "ok" or a contract code: color_shift, misaligned, missing_ink,
                                  // smudge, wrong_design, missing_underbase, wrong_blank
    double confidence = 0;        // 0..1: how far the deciding measurements are from tolerance
    nlohmann::json metrics;       // every measurement (see docs/qa.md)
    std::vector<Defect> defects;
};

// Images for evidence (filled when requested; all in platen mm at the working resolution).
struct Evidence {
    cv::Mat rectified;            // BGR 8-bit: the capture rectified and normalised
    cv::Mat expected;             // BGR 8-bit: the reference composited on the garment, registered
    cv::Mat heatmap;              // BGR 8-bit: ΔE00 heat map with defect regions outlined
    double px_per_mm = 0;
    RectMm area_mm;               // the platen area these images show
};

// Runs the inspection. Problems only for inputs that cannot be used (empty images, a
// singular homography, the area outside the capture); otherwise always a verdict.
Result<Verdict> inspect(const Case& c, const Tolerances& tol = {}, Evidence* evidence = nullptr);

// The QA case as JSON (the `pressline qa inspect` input; docs/qa.md): capture, reference,
// reference_px_per_mm, placement_mm, garment_srgb_nominal, calibration {image_size_px,
// H_platen_mm_to_image_px, flatfield, gray_card {rect_mm, patches}}. Relative paths resolve
// against `base`. Unknown fields are ignored. Problems name the field (bad_case,
// unreadable_image).
Result<Case> load_case(const nlohmann::json& j, const std::filesystem::path& base);

// The same with the station's calibration already loaded (calibration_from_json once, the flat
// field PNG decoded once; the daemon keeps it): the case's `calibration` field is not read and
// may be absent. Copies of a Calibration share its flat field (cv::Mat), so neither this nor
// Case::calibration = preloaded copies pixels; inspect() only reads it. A calibration that cannot
// be used (no image size, singular homography) is a bad_calibration problem.
Result<Case> load_case(const nlohmann::json& j, const std::filesystem::path& base,
                       const Calibration& calibration);

// Gives the scratch buffers kept between inspections (up to 160 MB) back to the system. The
// daemon calls it when no inspection is pending, so that an idle agent stays small; the next
// inspection is then ~15 % slower (fresh pages). Thread-safe; buffers in use are not touched.
void release_scratch_memory();

// Calibration JSON (the `calibration` object of a case; also what `pressline calibrate`
// writes). Relative paths resolve against `base`.
Result<Calibration> calibration_from_json(const nlohmann::json& j, const std::filesystem::path& base,
                                          const std::string& field = "calibration");

// Decodes an image for inspection as BGR 8-bit; 16-bit input is reduced, gray expanded,
// EXIF orientation ignored (the calibration is in sensor coordinates).
Result<cv::Mat> read_capture(const std::filesystem::path& path, const std::string& field = "capture");

}  // namespace pressline::devices::qa
