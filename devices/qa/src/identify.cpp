// Finding job tickets' QR codes in a camera frame. zbar decodes them: Debian's OpenCV is built
// without quirc, so cv::QRCodeDetector detects codes there but cannot read them.
#include "pressline/devices/qa/identify.hpp"

#include <algorithm>
#include <charconv>

#include <opencv2/imgproc.hpp>
#include <zbar.h>

namespace pressline::devices::qa {

std::optional<TicketCode> parse_ticket_code(std::string_view text) {
    constexpr std::string_view prefix = "PL:";
    if (text.substr(0, prefix.size()) != prefix) return std::nullopt;
    text.remove_prefix(prefix.size());
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 >= text.size()) return std::nullopt;
    const std::string_view digits = text.substr(colon + 1);
    int attempt = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), attempt);
    if (ec != std::errc{} || end != digits.data() + digits.size() || attempt < 1) return std::nullopt;
    TicketCode code;
    code.job_id = std::string(text.substr(0, colon));
    code.attempt = attempt;
    return code;
}

std::vector<TicketCode> find_ticket_codes(const cv::Mat& frame) {
    std::vector<TicketCode> found;
    if (frame.empty()) return found;
    cv::Mat gray;
    try {
        if (frame.channels() == 3) cv::cvtColor(frame, gray, cv::COLOR_BGR2GRAY);
        else if (frame.channels() == 4) cv::cvtColor(frame, gray, cv::COLOR_BGRA2GRAY);
        else gray = frame;
        if (gray.depth() != CV_8U) gray.convertTo(gray, CV_8U, gray.depth() == CV_16U ? 1.0 / 257 : 255.0);
        if (!gray.isContinuous()) gray = gray.clone();
    } catch (const cv::Exception&) {
        return found;
    }
    zbar::zbar_image_scanner_t* scanner = zbar::zbar_image_scanner_create();
    zbar::zbar_image_scanner_set_config(scanner, zbar::ZBAR_NONE, zbar::ZBAR_CFG_ENABLE, 0);
    zbar::zbar_image_scanner_set_config(scanner, zbar::ZBAR_QRCODE, zbar::ZBAR_CFG_ENABLE, 1);
    zbar::zbar_image_t* image = zbar::zbar_image_create();
    zbar::zbar_image_set_format(image, zbar_fourcc('Y', '8', '0', '0'));
    zbar::zbar_image_set_size(image, static_cast<unsigned>(gray.cols), static_cast<unsigned>(gray.rows));
    zbar::zbar_image_set_data(image, gray.data, gray.total(), nullptr);  // not owned
    if (zbar::zbar_scan_image(scanner, image) > 0) {
        for (const zbar::zbar_symbol_t* sym = zbar::zbar_image_first_symbol(image); sym;
             sym = zbar::zbar_symbol_next(sym)) {
            const char* data = zbar::zbar_symbol_get_data(sym);
            auto code = parse_ticket_code(std::string_view(data, zbar::zbar_symbol_get_data_length(sym)));
            if (!code) continue;
            for (unsigned i = 0, n = zbar::zbar_symbol_get_loc_size(sym); i < n; ++i)
                code->corners.emplace_back(float(zbar::zbar_symbol_get_loc_x(sym, i)), float(zbar::zbar_symbol_get_loc_y(sym, i)));
            const bool seen = std::any_of(found.begin(), found.end(), [&](const TicketCode& c) {
                return c.job_id == code->job_id && c.attempt == code->attempt;
            });
            if (!seen) found.push_back(std::move(*code));
        }
    }
    zbar::zbar_image_destroy(image);
    zbar::zbar_image_scanner_destroy(scanner);
    return found;
}

}  // namespace pressline::devices::qa
