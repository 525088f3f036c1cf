// Row-by-row PNG and JPEG encoders, for images produced a row at a time (devices/render's
// platen-sized print files) and for pressline::image::encode/write.
//
// The caller owns the FILE* (or the vector) and reports file errors in its own words; these
// return the library's words ("libpng: ..."-free: just libpng's or libjpeg's message) or nothing.
// Thread-safe: no shared state.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pressline::image {

// Row `y` of the image in the layout the spec names, either written into `scratch` (sized for
// one row by the encoder) or pointing at the caller's memory. Called once per row, in order.
using RowFn = std::function<const std::uint8_t*(int y, std::uint8_t* scratch)>;

struct PngRowSpec {
    int width = 0, height = 0;
    int channels = 4;            // 1 gray, 2 gray + alpha, 3 colour, 4 colour + alpha
    int depth = 8;               // 8 or 16 (16: native-endian uint16 samples)
    bool bgr = true;             // colour rows are B,G,R(,A); false: R,G,B(,A)
    int compression = 1;         // zlib level 0..9
    int filter = -1;             // PNG_FILTER_* mask for png_set_filter; -1: libpng's choice
    int strategy = -1;           // zlib strategy (Z_RLE...); -1: libpng's default
    double dpi = 0;              // > 0: a pHYs chunk (pixels per metre)
    std::vector<std::pair<std::string, std::string>> text;  // tEXt chunks, key -> value
};

struct JpegRowSpec {
    int width = 0, height = 0;
    enum class Input { gray, rgb, bgr } input = Input::bgr;  // 1, 3 or 3 bytes per pixel
    int quality = 95;            // 0..100
    double dpi = 0;              // > 0: JFIF density in dots per inch; else libjpeg's (1:1 aspect)
};

// Encode to an open file (not closed, not flushed) or append to `out`. nullopt on success,
// else the library's message.
std::optional<std::string> write_png_rows(std::FILE* f, const PngRowSpec& spec, const RowFn& rows);
std::optional<std::string> write_png_rows(std::vector<std::uint8_t>& out, const PngRowSpec& spec,
                                          const RowFn& rows);
std::optional<std::string> write_jpeg_rows(std::FILE* f, const JpegRowSpec& spec, const RowFn& rows);
std::optional<std::string> write_jpeg_rows(std::vector<std::uint8_t>& out, const JpegRowSpec& spec,
                                           const RowFn& rows);

}  // namespace pressline::image
