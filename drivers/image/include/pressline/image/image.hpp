// PNG and JPEG image files and buffers to and from cv::Mat, with libpng and libjpeg only.
//
// Why not cv::imread/imwrite: Debian's libopencv_imgcodecs pulls in GDAL, GDCM, OpenEXR, HDF5,
// poppler and more, all bound at load time: ~38 MB of resident pages in a daemon that reads
// and writes only PNG and JPEG (see drivers/image/README.md). The decoder follows what
// OpenCV 4.6's imread does with the same libraries (same libpng transforms, same libjpeg
// settings), so a decode here gives the same pixels as cv::imdecode of the same bytes
// (tests/drivers/image checks it).
//
// Knows nothing of jobs or QA. Error rule: Outcome values whose message names the file (or
// "image buffer (N bytes)") and what is wrong; nothing throws except std::bad_alloc.
// Thread-safe: no shared state; CPU-bound, so call it from a worker thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "pressline/drivers/outcome.hpp"

namespace pressline::image {

using drivers::Outcome;
using drivers::Status;

// Error codes (category "image"); every message reads "WHAT: words", WHAT being the file's path
// or "image buffer (N bytes)":
//   not_found    no such file (or a directory where a file was expected)
//   io           the file cannot be opened, read or written (permissions, disk full)
//   corrupt      not a PNG or JPEG, or damaged/truncated data (the library's words added)
//   unsupported  a format, layout or option this module does not do (CMYK JPEG, 16-bit JPEG,
//                2 channels, float pixels, an unknown file extension)
//   too_large    more pixels than ReadOptions::max_pixels
enum class Errc { not_found = 1, io, corrupt, unsupported, too_large };
const std::error_category& category();
std::error_code make_error_code(Errc e);

enum class Format { unknown, png, jpeg };
// From the first bytes (magic), not the name.
Format sniff(std::span<const std::uint8_t> bytes);
// From the file name's extension (.png; .jpg, .jpeg, .jpe): for writing.
Format format_of(const std::filesystem::path& file);

enum class Color {
    as_stored,  // gray stays 1 channel, colour becomes BGR (BGRA with keep_alpha)
    gray,       // 1 channel (colour converted: PNG by libpng 0.299/0.587/0.114, JPEG its Y)
    bgr,        // 3 channels (BGRA with keep_alpha when the file has alpha)
};

// What cv::imread's flags ask, as options:
//   IMREAD_UNCHANGED                    {as_stored, keep_alpha, keep_16bit}
//   IMREAD_COLOR                        {bgr}
//   IMREAD_ANYDEPTH | IMREAD_ANYCOLOR   {as_stored, keep_16bit}
//   IMREAD_ANYDEPTH | IMREAD_GRAYSCALE  {gray, keep_16bit}
//   IMREAD_REDUCED_COLOR_N              {bgr, reduce = N}
// EXIF orientation is never applied (as IMREAD_IGNORE_ORIENTATION): the camera's pixels as
// they are.
struct ReadOptions {
    Color color = Color::as_stored;
    bool keep_alpha = false;   // PNG alpha channel or tRNS -> 4th channel (BGRA); else dropped
    bool keep_16bit = false;   // 16-bit PNG -> CV_16U; else its high byte (CV_8U)
    int reduce = 1;            // 1, 2, 4 or 8: JPEG decoded at that scale by libjpeg; PNG
                               // resized after decoding (INTER_LINEAR_EXACT), as imread does
    std::int64_t max_pixels = std::int64_t{1} << 30;  // larger: too_large, nothing decoded
};

// Decodes a PNG or JPEG file (format from its bytes). CV_8UC1/3/4 or CV_16UC1/3/4 (PNG).
Outcome<cv::Mat> read(const std::filesystem::path& file, const ReadOptions& opt = {});
// Decodes an in-memory PNG or JPEG. `what` names it in messages (default "image buffer (N
// bytes)").
Outcome<cv::Mat> decode(std::span<const std::uint8_t> bytes, const ReadOptions& opt = {},
                        const std::string& what = {});

struct WriteOptions {
    int jpeg_quality = 95;     // 0..100
    int png_compression = -1;  // zlib level 0..9; -1: level 1, SUB filter, RLE (imwrite's default)
};

// Encodes `img` as PNG (CV_8U or CV_16U; 1, 3 (BGR) or 4 (BGRA) channels) or JPEG (CV_8U; 1 or
// 3 channels; 4: alpha dropped). The bytes, or unsupported/corrupt with a message.
Outcome<std::vector<std::uint8_t>> encode(Format format, const cv::Mat& img,
                                          const WriteOptions& opt = {});
// Encodes by the file's extension and writes the file (created or truncated; no rename: the
// caller writes a temp name and renames when it needs atomicity).
Status write(const std::filesystem::path& file, const cv::Mat& img, const WriteOptions& opt = {});

}  // namespace pressline::image

template <>
struct std::is_error_code_enum<pressline::image::Errc> : std::true_type {};
