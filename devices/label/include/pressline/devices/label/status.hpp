// ZPL printer status replies (~HQES and ~HS), parsed strictly. Pure; any thread.
//
// ~HQES ("host query, extended status") is answered by Link-OS printers:
//   <STX>\r\n PRINTER STATUS\r\n   ERRORS:         1 00000000 00000005\r\n
//   WARNINGS:       0 00000000 00000000\r\n<ETX>\r\n
// ~HS ("host status") by every ZPL II printer: three <STX>...<ETX>\r\n strings of 12, 11 and 2
// comma-separated fields (Zebra ZPL II Programming Guide, ~HS).
// A reply that does not have exactly that shape is an error naming the part that is wrong
// (never a guessed status).
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
    bool paused = false;
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
    int formats_in_buffer = -1;  // ~HS: formats received and not yet printed; -1 unknown
    int labels_remaining = -1;   // ~HS: labels remaining in the batch; -1 unknown
    // IPP-style reasons for device.state: media-empty, paused, head-open, ribbon-out,
    // buffer-full, cutter-fault, head-over-temp, head-under-temp, motor-over-temp, head-fault,
    // memory-corrupt (errors); media-low, calibration-needed, clean-head (warnings, with the
    // suffix "-warning").
    std::vector<std::string> reasons() const;
    // Nothing stops printing (warnings allowed).
    bool ready() const;
};

using StatusResult = std::variant<ZplStatus, ParseError>;

StatusResult parse_hqes(std::string_view reply);
StatusResult parse_hs(std::string_view reply);

// Whether `received` holds a complete reply yet (to end a read early).
bool hqes_complete(std::string_view received);
bool hs_complete(std::string_view received);

}  // namespace pressline::devices::label
