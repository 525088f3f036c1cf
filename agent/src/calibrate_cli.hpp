// `pressline calibrate`: station calibration for visual QA from photos (docs/calibration.md).
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

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
};

// Exit codes: 0 done; 2 bad input or the target was not found (the message says why);
// 1 the files could not be written.
int calibrate_main(const CalibrateOptions& o, std::ostream& out, std::ostream& err);

}  // namespace pressline::agent
