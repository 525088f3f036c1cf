// Station calibration for visual QA: from photos of a target on the platen, compute where the
// platen is in the camera image (homography platen mm -> image px), the flat-field gain map and
// where the gray card sits. Used by `pressline calibrate`; the technician's guide is
// docs/calibration.md.
//
// Conventions: platen mm with the origin at the platen's top-left corner, x right, y down (seen
// from above, collar at the top). Image px as OpenCV: the centre of pixel (0,0) is at (0,0).
// Error rule: Problem values (inspector.hpp), never exceptions; cv::Exception is caught here.
// Reasons: target_not_found, bad_calibration, unreadable_image (empty photo), write_failed.
// Threading: reentrant (no shared state), CPU-heavy: worker pool or CLI only.
#pragma once

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <opencv2/core/mat.hpp>
#include <string>
#include <vector>

#include "pressline/devices/qa/inspector.hpp"

namespace pressline::devices::qa {

// The calibration target, in platen mm.
//  aruco: a grid of ArUco markers (dictionary DICT_4X4_50), marker `id` i at row i / cols, column
//         i % cols; marker side `marker_mm` (the black border included), pitch `pitch_mm`
//         (between the top-left corners of neighbours; pitch - marker is the white quiet zone,
//         at least one sixth of the marker); the grid's top-left corner at `origin_mm` on the
//         platen. cols * rows <= 50.
//  chessboard: `cols` x `rows` inner corners (one count odd, the other even, so that the board's
//         orientation can be told), square `square_mm`, the first inner corner at `origin_mm`;
//         the square at the board's top-left corner is black.
// The defaults fill a 406.4 x 508 mm (16 x 20 in) platen, centred.
struct Target {
    std::string kind = "aruco";  // aruco | chessboard
    int cols = 5, rows = 6;      // aruco: markers; chessboard: inner corners
    double marker_mm = 40;       // aruco
    double pitch_mm = 80;        // aruco: distance between marker top-left corners
    double square_mm = 40;       // chessboard
    cv::Point2d origin_mm{23.2, 34};
};

// The target as JSON ({"kind", "dictionary" (aruco), "cols", "rows", "marker_mm", "pitch_mm" |
// "square_mm", "origin_mm": [x, y]}), as written into the calibration file; and back (missing
// fields keep the defaults above; problems name the field under `field`).
nlohmann::json target_to_json(const Target& t);
Result<Target> target_from_json(const nlohmann::json& j, const std::string& field = "target");

// A gray card patch as configured (known colour, where it sits on/next to the platen).
struct CardPatch {
    std::string name;
    RectMm rect_mm;
    cv::Vec3d srgb;  // r, g, b 0..255
};

// Gray card patches from JSON: the `gray_card` object of a calibration file ({"patches": [...]},
// other keys ignored) or the bare list; each patch {"name", "rect_mm": [x, y, w, h], "srgb":
// [r, g, b]}. Problems (bad_calibration) name the field ("gray_card.patches[1].srgb").
Result<std::vector<CardPatch>> gray_card_from_json(const nlohmann::json& j,
                                                   const std::string& field = "gray_card");

// One patch from a command-line spec "NAME:X,Y,W,H:R,G,B" (mm; sRGB 0..255), e.g.
// "white:-60,150,30,30:243,243,242". Problems (bad_calibration) name `field`.
Result<CardPatch> card_patch_from_string(const std::string& spec, const std::string& field = "--patch");

struct CalibrationInputs {
    cv::Mat target_photo;  // BGR 8-bit (gray, BGRA and 16-bit accepted): the target lying
                           // flat on the platen
    Target target;
    cv::Mat white_photo;               // BGR 8-bit: a uniform white board filling the view, same
                                       // camera settings; empty = no flat field
    std::vector<CardPatch> gray_card;  // may be empty
    double platen_width_mm = 406.4, platen_height_mm = 508;
    double max_rms_px = 2.0;      // reprojection RMS above this = bad_calibration
    int flatfield_downscale = 8;  // the gain map is stored at 1/this of the image size
};

struct CalibrationOutput {
    Calibration calibration;         // H, image size, flat field (gain, CV_32F, 1/8 size,
                                     // brightest 1.0, >= 0.05), gray patches
    double reprojection_rms_px = 0;  // of the target points used (outliers left out)
    int points_used = 0;
    std::vector<int> markers_found;     // aruco: ids used, ascending; chessboard: empty
    std::vector<std::string> warnings;  // things a technician should look at (lens distortion,
                                        // platen partly outside the image, clipped white photo...)
    cv::Mat check_image;                // BGR: detected markers/corners, platen outline, gray card,
                                        // a line with RMS and points used
    Target target;                      // copied from the inputs (written into the JSON)
    double platen_width_mm = 0, platen_height_mm = 0;
    std::chrono::system_clock::time_point created;  // when calibrate() ran
};

// Detects the target and computes everything. Problems: unreadable_image (empty photo),
// target_not_found (names what was seen, e.g. "3 of 30 markers found: ids 1, 2, 7"),
// bad_calibration (bad target description, too few or inconsistent points, reprojection RMS over
// max_rms_px, degenerate geometry, white photo of another size or unusable, a gray card patch
// outside the image).
Result<CalibrationOutput> calibrate(const CalibrationInputs& in);

// Renders the target at `px_per_mm` on a white, platen-sized, 8-bit gray image (pixel (u, v)
// covers platen mm [u, u+1) / px_per_mm; edges are area-antialiased, so they sit exactly where the
// target says): print it, or warp it to make synthetic calibration photos in tests.
// `annotate` adds, in the margins, "TOP (collar side)", a description, a 100 mm scale bar to check
// the print scale and a thin platen outline (for printing; tests leave it off). Empty Mat on a
// bad target.
cv::Mat render_target(const Target& t, double platen_width_mm, double platen_height_mm, double px_per_mm,
                      bool annotate = false);

// Writes the calibration as JSON (the `calibration` object of a QA case: image_size_px,
// H_platen_mm_to_image_px, flatfield, gray_card; plus reprojection_rms_px, points_used,
// markers_found, warnings, created, target, platen_mm) and the flat field as a 16-bit grayscale PNG
// `<json stem>.flatfield.png` next to `json_path` (65535 = gain 1.0; "flatfield" names it relative
// to the JSON's directory; null without a flat field). "gray_card" is null without patches. Both
// files are written atomically (temp file, fsync, rename), the PNG first. Returns the JSON
// written. Problems: write_failed.
Result<nlohmann::json> write_calibration(const CalibrationOutput& out,
                                         const std::filesystem::path& json_path);

}  // namespace pressline::devices::qa
