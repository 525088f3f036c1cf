// Internal helpers of pressline_render shared by its translation units (not installed).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "pressline/devices/render.hpp"

namespace pressline::devices::render::detail {

// Supplies row `y` of an image: returns a pointer to `bytes_per_row` bytes, either into the
// source image or into `scratch` (which the provider may keep state in between calls: the same
// buffer is passed for every row, rows are requested in order 0..height-1).
using RowFn = std::function<const std::uint8_t*(int y, std::uint8_t* scratch)>;

struct PngSpec {
    int width = 0;
    int height = 0;
    double dpi = 0;
    int compression = 1;
    std::vector<std::pair<std::string, std::string>> text;   // tEXt key, value (Latin-1)
};

// Writes an 8-bit RGBA PNG whose rows are given in B,G,R,A order. Returns an error message.
std::optional<std::string> write_png_bgra(const std::filesystem::path& file, const PngSpec& spec,
                                          const RowFn& rows);

struct JpegSpec {
    int width = 0;
    int height = 0;
    double dpi = 0;
    int quality = 95;
};

// Writes a baseline JPEG whose rows are given in R,G,B order. Returns an error message.
std::optional<std::string> write_jpeg_rgb(const std::filesystem::path& file, const JpegSpec& spec,
                                          const RowFn& rows);

// Writes the PDF print file (see write_print_file). Returns an error message.
std::optional<std::string> write_pdf(const std::filesystem::path& file, const Reference& ref,
                                     const PrintFileMeta& meta, bool compress);

// Writes `final_path` through `writer(temporary path in the same directory)`, then fsyncs the
// temporary file, renames it over `final_path` and fsyncs the directory. The temporary file is
// removed on failure. Returns an error message.
std::optional<std::string> write_atomically(
    const std::filesystem::path& final_path,
    const std::function<std::optional<std::string>(const std::filesystem::path&)>& writer);

// "#rrggbb".
std::string hex_srgb(const std::array<std::uint8_t, 3>& rgb);

// "black (#000000)" or "#000000" when the name is empty.
std::string garment_label(const PrintFileMeta& meta);

// Geometry, platen and job metadata as JSON (shared by reference.json and the sidecars).
nlohmann::json describe(const Reference& ref, const PrintFileMeta& meta);

}  // namespace pressline::devices::render::detail
