// Which garment is this? Job tickets carry a QR code "PL:{job_id}:{attempt}" (devices/label);
// when the ticket lies on the garment under the camera, the capture names its job itself.
//
// Decoded with zbar (Debian's OpenCV lacks quirc, so its QR detector cannot read codes).
// Error rule: nothing to report but "no code found" (an empty list); OpenCV errors are caught.
// Threading: reentrant; tens to hundreds of ms on a 12 Mpx frame: worker pool only.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <opencv2/core/mat.hpp>
#include <opencv2/core/types.hpp>

namespace pressline::devices::qa {

struct TicketCode {
    std::string job_id;
    int attempt = 0;
    std::vector<cv::Point2f> corners;  // of the QR code in the frame (px)
};

// "PL:{job_id}:{attempt}" -> {job_id, attempt}; nullopt for anything else (other QR codes on
// garments and boxes are ignored, never guessed at). The job id may itself contain ':'; the
// attempt is the part after the last one.
std::optional<TicketCode> parse_ticket_code(std::string_view text);

// Every Pressline ticket code in the frame (BGR or gray, 8-bit), each once.
std::vector<TicketCode> find_ticket_codes(const cv::Mat& frame);

}  // namespace pressline::devices::qa
