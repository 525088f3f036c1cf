// `pressline calibrate`: station calibration for visual QA from photos (docs/calibration.md).
#pragma once

#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "pressline/drivers/camera.hpp"

namespace pressline::agent {

struct CalibrateOptions {
    std::string print_target;            // write the printable target here and stop
    double px_per_mm = 11.811;           // of the printable target (300 dpi)
    std::string target_photo, white_photo, out, check_image, gray_card_file;
    std::vector<std::string> patches;    // NAME:X,Y,W,H:R,G,B
    std::string target = "aruco";
    int cols = 0, rows = 0;              // 0 = the target kind's default
    double marker_mm = 0, pitch_mm = 0, square_mm = 0;
    std::string origin_mm;               // "X,Y"; empty = default
    std::string platen = "16x20";
    // --camera NAME (with --config): photos not given as files are taken by this camera, through
    // the running agent (`pressline snapshot` over control_socket) or, when no agent answers,
    // by opening the camera here.
    std::string camera_name;
    std::optional<drivers::camera::Settings> camera;
    std::filesystem::path control_socket;
};

// Exit codes: 0 done; 2 bad input or the target was not found (the message says why);
// 1 the files could not be written.
// `in`: the technician's Enter between the camera photos.
int calibrate_main(CalibrateOptions o, std::istream& in, std::ostream& out, std::ostream& err);

}  // namespace pressline::agent
