// Internals shared by calibration.cpp (detection, fitting) and calibration_io.cpp (rendering,
// JSON, files).
#pragma once

#include <opencv2/core/types.hpp>
#include <optional>
#include <string>

#include "pressline/devices/qa/calibration.hpp"

namespace pressline::devices::qa::detail {

// The first problem of a target description (bad_calibration, field "target.<key>"), if any.
std::optional<Problem> target_problem(const Target& t);

// ArUco marker `id`'s corners in platen mm, in OpenCV's order: top-left, top-right,
// bottom-right, bottom-left (as the marker is printed).
void marker_corners_mm(const Target& t, int id, cv::Point2d out[4]);

// Chessboard: inner corner (c, r) in platen mm.
inline cv::Point2d chess_corner_mm(const Target& t, double c, double r) {
    return {t.origin_mm.x + c * t.square_mm, t.origin_mm.y + r * t.square_mm};
}

// The target's bounding box in platen mm (markers or squares, quiet zone excluded).
cv::Rect2d target_box_mm(const Target& t);

}  // namespace pressline::devices::qa::detail
