// ZPL printer status replies (~HQES and ~HS), parsed strictly. Pure; any thread.
//
// ~HQES ("host query, extended status") is answered by Link-OS printers:
//   <STX>\r\n PRINTER STATUS\r\n   ERRORS:         1 00000000 00000005\r\n
//   WARNINGS:       0 00000000 00000000\r\n<ETX>\r\n
// ~HS ("host status") by every ZPL II printer: three <STX>...<ETX>\r\n strings of 12, 11 and 2
// comma-separated fields (Zebra ZPL II Programming Guide, ~HS).
// A reply that does not have exactly that shape is an error naming the part that is wrong
// (never a guessed status). Bytes before the first <STX> are skipped (a CR LF left over from
// an earlier reply, line noise); CR, LF and spaces around the strings are allowed; anything
// else outside <STX>...<ETX> is an error.
#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace pressline::devices::label {

struct ParseError {
    std::string message;  // e.g. "~HS string 1: expected 12 fields, got 9"
};

struct ZplStatus {
    bool paper_out = false;
    bool paused = false;         // ~HS; ~HQES only where the firmware sets "Paused" (00010000)
    bool head_open = false;
    bool ribbon_out = false;
    bool buffer_full = false;
    bool cutter_fault = false;
    bool head_over_temp = false;
    bool head_under_temp = false;
    bool motor_over_temp = false;
    bool head_fault = false;     // bad element, detection error, thermistor
    bool corrupt_ram = false;
    bool paper_near_end = false; // warning
    bool needs_calibration = false;  // warning
    bool clean_head = false;     // warning
    bool replace_head = false;   // warning (~HQES)
    // ~HQES bits this parser does not name (group 2 << 32 | group 1), e.g. the kiosk printers'
    // presenter and black-mark errors: an error all the same (reason "other").
    unsigned long long other_errors = 0;
    unsigned long long other_warnings = 0;  // reason "other-warning"
    int formats_in_buffer = -1;  // ~HS: formats received and not yet printed; -1 unknown
    int labels_remaining = -1;   // ~HS: labels remaining in the batch; -1 unknown
    // IPP-style reasons for device.state: media-empty, paused, head-open, ribbon-out,
    // buffer-full, cutter-fault, head-over-temp, head-under-temp, motor-over-temp, head-fault,
    // memory-corrupt, other (errors); media-low, calibration-needed, clean-head, replace-head,
    // other (warnings, with the suffix "-warning"). A full receive buffer (buffer-full) does not
    // stop printing: it is reported but is no error.
    std::vector<std::string> reasons() const;
    // Nothing stops printing (warnings and a full buffer allowed; paused stops it).
    bool ready() const;
    // Any error flag (not paused, not warnings, not buffer-full).
    bool has_error() const;
};

using StatusResult = std::variant<ZplStatus, ParseError>;

StatusResult parse_hqes(std::string_view reply);
StatusResult parse_hs(std::string_view reply);

// Whether `received` holds a complete reply yet (to end a read early).
bool hqes_complete(std::string_view received);
bool hs_complete(std::string_view received);

}  // namespace pressline::devices::label
