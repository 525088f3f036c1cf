// Private to the label documents (documents*.cpp): the page model both back ends draw, text
// (FreeType), barcodes (zint), images (libpng, OpenCV) and the two back ends (ZPL, PDF).
//
// A document is laid out once, in printer dots (the calibration's dpi), origin at the top-left
// corner of the label before the calibration offsets, y down. ZPL sends the dots as they are
// (the offsets become ^LH); PDF converts them to points and adds the offsets itself, so both
// put every element on the printer's dot grid at the same place.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <opencv2/core.hpp>

#include "pressline/devices/label/documents.hpp"

namespace pressline::devices::label::doc {

// ---- page model ----

// One line of text. `size` is the line height in dots: ZPL ^A0 height; the font's em is
// kEmPerSize of it and the baseline kBaselinePerSize below the top.
struct Text {
    int x = 0, y = 0;  // top-left of the line box
    int size = 0;
    bool bold = false;
    bool inverse = false;  // white on black (drawn over a filled Box)
    std::string text;      // UTF-8, one line
};
inline constexpr double kEmPerSize = 0.85;
inline constexpr double kBaselinePerSize = 0.80;

// A rectangle: filled, or an outline `line` dots thick drawn inside it (ZPL ^GB).
struct Box {
    int x = 0, y = 0, w = 0, h = 0;
    int line = 0;  // 0: filled
};

// Code 128 without interpretation line: bars start at x (the quiet zone is left free by the
// layout), `module` dots per module.
struct Code128 {
    int x = 0, y = 0, h = 0;
    int module = 2;
    std::string data;
};

// QR code (error correction M), `module` dots per module, top-left at x, y.
struct Qr {
    int x = 0, y = 0;
    int module = 4;
    std::string data;
};

// An RGB image (CV_8UC3, composited onto white) already at its size in dots.
struct Image {
    int x = 0, y = 0;
    cv::Mat rgb;
};

using Item = std::variant<Text, Box, Code128, Qr, Image>;

struct Page {
    int width = 0, height = 0;  // dots
    std::vector<Item> items;
    std::string title;  // PDF document title (ASCII)
};

// ---- calibration ----

Problem invalid(std::string field, std::string what);
// Every problem of the calibration, as "calibration.<field>: ..." messages. ZPL (zpl: true)
// moves a label up with ^LT, by at most kMaxLabelTopDots.
std::vector<std::string> calibration_problems(const Calibration& c, bool zpl);
inline constexpr int kMaxLabelTopDots = 120;
int dots(double mm, int dpi);
double dots_per_mm(int dpi);

// ---- text (FreeType) ----

// Unicode code points of UTF-8 text; nullopt when the bytes are not valid UTF-8.
std::optional<std::u32string> decode_utf8(std::string_view s);
std::string encode_utf8(std::u32string_view s);

// ZPL: may this text go to the printer as ^A0 text with ^CI28? True when every code point is in
// the set the printer's scalable font 0 is taken to cover: ASCII, Latin-1 Supplement, Latin
// Extended-A, Greek and Coptic (U+0370..U+03FF), Cyrillic (U+0400..U+04FF) and common
// punctuation (U+2010..U+2027, U+2030..U+203A, U+20AC euro sign).
bool zpl_font_covers(std::u32string_view text);

// A 1-bit-per-pixel picture, rows padded to whole bytes, MSB first, 1 = black (ZPL ^GF order).
struct Bitmap {
    int width = 0, height = 0;
    int row_bytes = 0;
    std::vector<std::uint8_t> bits;
    bool black(int x, int y) const {
        return (bits[static_cast<std::size_t>(y) * row_bytes + x / 8] >> (7 - x % 8)) & 1;
    }
};

// The fonts of one document, loaded on first use (a missing fallback font matters only when a
// glyph needs it). Not thread-safe: one per call.
class FontSet {
public:
    enum class Face { regular, bold, fallback };
    struct Run {
        Face face;
        std::string text;  // UTF-8
    };

    explicit FontSet(const Fonts& paths);
    ~FontSet();
    FontSet(const FontSet&) = delete;
    FontSet& operator=(const FontSet&) = delete;

    // The text split into runs of one face each: DejaVu (regular or bold) where it has the
    // glyph, the fallback font where it does not. font_missing names a file that cannot be read.
    Result<std::vector<Run>> runs(std::string_view utf8, bool bold);
    // Advance width in dots of the text set with em = kEmPerSize * size.
    Result<double> width(std::string_view utf8, int size, bool bold);
    // The line drawn black on white, `size` dots high (see Text), as wide as its ink needs.
    Result<Bitmap> rasterize(std::string_view utf8, int size, bool bold);

    // Glyph outlines of a run in face f (em = 1, y up, pen from 0): for faces whose glyphs a
    // PDF cannot carry intact (libharu's subsetting drops components of composite glyphs with
    // ids above 32767, which DroidSansFallbackFull has), so the PDF draws them as paths.
    struct PathOp {
        char op;  // 'M' move, 'L' line, 'C' cubic curve (x1 y1 x2 y2 to x y)
        double x1 = 0, y1 = 0, x2 = 0, y2 = 0, x = 0, y = 0;
    };
    Result<std::vector<PathOp>> outlines(std::string_view utf8, Face f, bool synthetic_bold);

    const std::string& path(Face f) const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Word-wrapped lines no wider than max_width at `size` (words longer than a line are broken
// between characters).
Result<std::vector<std::string>> wrap(FontSet& fonts, std::string_view text, int size, bool bold,
                                      int max_width);

// ---- barcodes (zint) ----

struct Symbol {
    int modules_wide = 0;  // Code 128: modules of the bars; QR: modules per side
    int rows = 0;
};
Result<Symbol> measure_code128(std::string_view data);
Result<Symbol> measure_qr(std::string_view data);

// zint's vector output: the dark rectangles, in units of one module (x, w; QR also y, h) and of
// the symbol's height (Code 128 y, h: 0..1).
struct Rect {
    double x = 0, y = 0, w = 0, h = 0;
};
struct Vector {
    Symbol symbol;
    std::vector<Rect> rects;
};
enum class Symbology { code128, qr };
Result<Vector> barcode_vector(Symbology s, std::string_view data);

// ---- images ----

// A PNG decoded to RGB composited onto white. image_invalid names `field`.
Result<cv::Mat> decode_png(const std::vector<std::uint8_t>& png, std::string_view field);
// Scaled (aspect kept) to fit inside w x h dots, at least 1 x 1.
cv::Mat fit(const cv::Mat& rgb, int w, int h);
// Threshold (carrier labels: sharp edges) or Floyd-Steinberg (photos, artwork) to 1 bit.
Bitmap to_bitmap(const cv::Mat& rgb, bool dither);

// ---- back ends ----

// Header commands of a label (^PW, ^LL, ^LH, ^LS, ^LT, ^MN, ~SD), without ^XA. Offsets: right
// and down with ^LH, left with ^LS, up with ^LT; ^LS and ^LT always (the printer keeps them).
std::string zpl_setup(const Calibration& c, bool with_size);
// The ^GFA command of a bitmap (ZPL ASCII compression), without ^FO / ^FS.
std::string zpl_graphic_field(const Bitmap& b);
Result<std::string> render_zpl(const Page& page, const Calibration& c, FontSet& fonts);
Result<std::string> render_pdf(const Page& page, const Calibration& c, FontSet& fonts);

}  // namespace pressline::devices::label::doc
