// Label and ticket documents: shipping labels and job tickets as ZPL (for ZPL printers, with
// the printer's own ^BC/^BQ barcodes) or as PDF (libharu, barcodes drawn from libzint's
// vectors, for CUPS queues), per-printer calibration, and carrier labels passed through.
// Pure functions of their inputs (no I/O except reading the fonts named in Fonts); any thread.
//
// Text is UTF-8. ZPL: text the printer's scalable font 0 can show (^CI28, Latin, Greek,
// Cyrillic...) is sent as text; anything else (e.g. CJK) is rasterised with FreeType and sent
// as a ^GF graphic. PDF: fonts are embedded (DejaVu Sans; a CJK fallback font for glyphs it
// lacks), so pdftotext gives the text back.
//
// Errors: values (Problem with a stable `reason` and a message naming the field), never
// exceptions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace pressline::devices::label {

struct Problem {
    // invalid_field (message names it), barcode_failed, image_invalid, font_missing,
    // render_failed
    std::string reason;
    std::string message;
};
template <class T>
using Result = std::variant<T, Problem>;

enum class MediaType { gap, black_mark, continuous };

// Per-printer calibration, applied to every label and ticket sent to that printer.
struct Calibration {
    int dpi = 203;                  // 152, 203, 300, 600
    double width_mm = 101.6;        // label size (4 x 6 in)
    double height_mm = 152.4;
    int darkness = -1;              // ZPL ~SD 0..30 (absolute); -1: the printer's own setting
    double x_offset_mm = 0;         // shifts everything right (ZPL ^LH; PDF: content moved)
    double y_offset_mm = 0;         // shifts everything down; both -50..50 mm, negative: left
                                    // (ZPL ^LS) and up (ZPL ^LT, at most 120 dots)
    MediaType media = MediaType::gap;
};

struct Address {
    std::string name, company, line1, line2, city, region, postal_code, country, phone;
};

struct ShippingLabel {
    std::string order_id;
    Address ship_to;
    Address ship_from;              // optional (empty name: left out)
    std::string carrier;            // e.g. "usps"
    std::string service;            // e.g. "ground_advantage"
    std::string tracking_number;    // Code 128 and the QR code's data; required
};

struct Ticket {
    std::string job_id;
    std::string order_id;
    int attempt = 1;
    std::string sku, product_type, size, garment_color;
    std::string placement;          // one line, e.g. "front, 280 mm wide, x 0 mm, y 75 mm"
    std::string platen;
    std::string priority;
    std::string due_by;             // as given (ISO 8601) or empty
    std::string device;             // the DTG printer it was released to
    // Artwork thumbnail: an encoded PNG (RGBA or RGB); empty: no thumbnail.
    std::vector<std::uint8_t> thumbnail_png;
};

// "PL:{job_id}:{attempt}": the QR code and Code 128 on every ticket (the QA station reads it).
std::string ticket_code(std::string_view job_id, int attempt);

// Fonts used for PDF text and for rasterising text for ZPL. Defaults: Debian's
// fonts-dejavu-core and fonts-droid-fallback.
struct Fonts {
    std::string regular = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
    std::string bold = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";
    std::string fallback = "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf";
};

// A complete ZPL label (^XA ... ^XZ) with calibration commands (^PW, ^LL, ^LH, ^LS, ^LT, ^MN,
// ~SD).
// Text font 0 covers (ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic, common punctuation)
// goes as ^A0 text; a line with anything else is one ^GFA graphic.
Result<std::string> zpl_shipping_label(const ShippingLabel& l, const Calibration& c,
                                       const Fonts& f = {});
Result<std::string> zpl_ticket(const Ticket& t, const Calibration& c, const Fonts& f = {});

// A one-page PDF of the calibrated label size.
Result<std::string> pdf_shipping_label(const ShippingLabel& l, const Calibration& c,
                                       const Fonts& f = {});
Result<std::string> pdf_ticket(const Ticket& t, const Calibration& c, const Fonts& f = {});

// A carrier's ZPL passed through with the printer's calibration: every format (^XA ... ^XZ)
// gets ^LH/^LS/^LT/^MN/~SD inserted after its ^XA (the carrier's own ^PW/^LL are kept; a format
// without them gets the calibrated ones; a ^LH of the carrier's gets the offsets added).
// invalid_field when the data holds no ^XA ... ^XZ format.
Result<std::string> zpl_calibrated(std::string_view carrier_zpl, const Calibration& c);

// A PNG (a carrier label image) as one ZPL label: scaled to the label width at the printer's
// dpi, thresholded to black and white, sent as ^GFA.
Result<std::string> zpl_from_png(const std::vector<std::uint8_t>& png, const Calibration& c);

// A PNG (a carrier label image) as a one-page PDF of the calibrated label size, for CUPS label
// queues: the image fitted to the page (aspect kept), at the printer's dots.
Result<std::string> pdf_from_png(const std::vector<std::uint8_t>& png, const Calibration& c,
                                 const Fonts& f = {});

}  // namespace pressline::devices::label
