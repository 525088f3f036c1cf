// Internals shared by the QA sources (not installed): colour, resolution and image helpers.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include <opencv2/core.hpp>

#include "pressline/devices/qa/inspector.hpp"

namespace pressline::devices::qa {

// The inspection works on the platen in millimetres at this resolution (pixels per mm). 2 px/mm
// resolves the smallest defect the tolerances name (9 mm^2 = 36 px) and keeps a whole 16x20 in
// platen under a megapixel; registration is sub-pixel (ECC), so placement is good to ~0.1 mm.
inline constexpr double kWorkPxPerMm = 2.0;

// How much smaller (1, 2, 4, 8) the capture may be decoded and still give at least twice the
// working resolution at the platen's centre.
int capture_reduction(const Calibration& cal, double work_px_per_mm);

// Adapts `cal` (H, image_size) to a capture of `actual` size decoded at 1/`reduce` of the
// calibrated size; a capture of another resolution with the same aspect ratio is scaled too.
// A problem when the capture cannot be this camera's (other aspect ratio).
std::optional<Problem> fit_calibration_to(Calibration& cal, cv::Size actual, int reduce);

Result<cv::Mat> read_capture_reduced(const std::filesystem::path& path, int reduce, const std::string& field);
Result<cv::Mat> read_reference(const std::filesystem::path& path, const std::string& field);

// sRGB (0..255) <-> linear light (0..1).
double srgb_to_linear(double v255);
// CIEDE2000 between two CIELAB colours (Sharma, Wu, Dalal 2005).
float ciede2000(float L1, float a1, float b1, float L2, float a2, float b2);
// CIELAB (D65) of a linear-light RGB colour (r, g, b in 0..1).
cv::Vec3f lab_of_linear_rgb(double r, double g, double b);

}  // namespace pressline::devices::qa
