// Print-ready rendering: artwork + platen + placement -> reference image and print files.
//
// Knows platens and placement, nothing of MQTT or the journal. See devices/render/README.md for
// coordinates, rounding and the file formats.
//
// Error rule: bad input and failed writes are values (Problem), never exceptions. OpenCV,
// libpng, libjpeg and libharu errors are caught where they enter this module.
// Threading: every function is reentrant (no shared state) and may run on any thread; all of
// them are CPU- and disk-heavy (a 16x20 in platen at 300 dpi is 28.8 Mpx), so call them from the
// worker pool, never from the io_context thread.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <variant>

#include <opencv2/core/mat.hpp>

namespace pressline::devices::render {

// Why something could not be rendered or written. `reason` is a stable machine code:
//   invalid_platen, invalid_placement, invalid_dpi, artwork_empty, artwork_unsupported,
//   placement_out_of_platen, render_too_large, meta_mismatch, write_failed, render_failed
// `message` is one human sentence with the facts (for placement_out_of_platen: by how many mm,
// on which edges).
struct Problem {
    std::string reason;
    std::string message;
};

template <class T>
using Result = std::variant<T, Problem>;

// A platen: a name and its printable area in mm.
struct Platen {
    std::string name;
    double width_mm = 0;
    double height_mm = 0;
};

// "16x20" -> {"16x20", 406.4, 508}: width x height in inches (decimals allowed, "14.5x16").
// invalid_platen when the name is not of that form or a side is not positive.
Result<Platen> platen_from_name(std::string_view name);

// Placement as in the MQTT contract. `width_mm` is the printed width (height follows the
// artwork's aspect ratio); `offset_x_mm` moves the artwork's centre right (+) or left (-) of the
// platen's vertical centre line, seen from above with the collar at the top; `offset_y_mm` is the
// distance from the platen's top edge down to the artwork's top edge.
struct Placement {
    double width_mm = 0;
    double offset_x_mm = 0;
    double offset_y_mm = 0;
};

// A rectangle in platen millimetres: origin at the platen's top-left corner, x right, y down.
struct BoxMm {
    double x = 0;
    double y = 0;
    double width = 0;
    double height = 0;
};

// The same rectangle in platen pixels at the reference's dpi (same origin and axes).
struct BoxPx {
    int x = 0;
    int y = 0;
    int width = 0;
    int height = 0;
};

// The artwork at its printed size, snapped to the platen's pixel grid. This pair (pixels + box)
// is what the print files are made of and what QA compares the printed garment against.
//
// Invariants: bgra.cols == box_px.width, bgra.rows == box_px.height;
// box_mm == box_px / px_per_mm exactly (box_mm.width = bgra.cols / px_per_mm, ...);
// 0 <= box_px.x, box_px.x + box_px.width <= platen_px.width (same for y).
struct Reference {
    cv::Mat bgra;               // CV_8UC4, channel order B,G,R,A (OpenCV's), straight alpha
                                // (alpha = ink coverage, 255 for opaque artwork), continuous
    BoxMm box_mm;
    BoxPx box_px;
    cv::Size platen_px;         // the platen at dpi: round(width_mm * px_per_mm) x round(...)
    double dpi = 0;
    double px_per_mm = 0;       // dpi / 25.4
    Platen platen;
    bool opaque = true;         // every alpha is 255
};

// Renders `artwork` (as decoded by cv::imread(path, cv::IMREAD_UNCHANGED): CV_8U or CV_16U with
// 1 (gray), 2 (gray + alpha), 3 (BGR) or 4 (BGRA) channels) at its printed size.
// Resampling: INTER_AREA when shrinking, INTER_CUBIC when enlarging (either axis), none when the
// size already matches; artwork with alpha is resampled premultiplied so that transparent
// pixels' colours do not bleed into the edges. 16-bit input is reduced to 8 bits (round(v/257)).
// When no conversion is needed (CV_8UC4 at its printed size) Reference::bgra shares the pixels
// of `artwork` (cv::Mat refcount, no copy): clone `artwork` before modifying it.
// Problems: invalid_dpi, invalid_placement (width <= 0 or not finite), artwork_empty,
// artwork_unsupported, placement_out_of_platen, render_too_large (a side above 50 000 px),
// render_failed (OpenCV threw, e.g. out of memory).
Result<Reference> make_reference(const cv::Mat& artwork, const Platen& platen,
                                 const Placement& placement, double dpi);

// Job metadata that travels with every file written for a job.
struct PrintFileMeta {
    std::string job_id;
    double dpi = 0;                             // must equal Reference::dpi (meta_mismatch)
    std::string color_profile;                  // name only, e.g. "sRGB IEC61966-2.1"
    std::string garment_color_name;             // e.g. "black"; may be empty with garment_srgb
    std::array<std::uint8_t, 3> garment_srgb{}; // r, g, b
};

// Writes `dir`/reference.png (RGBA, straight alpha, pHYs = dpi), `dir`/thumbnail.png (the same
// fitted into kThumbnailPx, for job tickets) and `dir`/reference.json
// ({box_mm, box_px, px_per_mm, dpi, platen, size_px, job, image, thumbnail}). Each file is written to a temporary
// name in `dir`, flushed and renamed, so a reader sees the old file or the complete new one.
// `dir` must exist. Returns the path of reference.png. Problems: meta_mismatch, write_failed.
inline constexpr int kThumbnailPx = 480;
// Above this resolution a copy for QA is written too: `dir`/reference-qa.png at this many px/mm
// (reference.json `qa_reference` {file, px_per_mm, width_px, height_px}).
inline constexpr double kQaReferencePxPerMm = 4.0;
Result<std::filesystem::path> write_reference(const std::filesystem::path& dir,
                                              const Reference& ref, const PrintFileMeta& meta);

enum class PrintFormat { png, jpeg, pdf };

struct PrintOptions {
    int png_compression = 1;   // zlib level for PNG; 1 is fast and still shrinks empty areas well
    int jpeg_quality = 95;
    bool pdf_compress = true;  // Flate-compress the PDF's image streams
};

// Writes a platen-sized print file at ref.dpi with the artwork at ref.box_px, plus the sidecar
// `file` + ".json" carrying `meta` and the geometry. Both are written atomically (temp + rename).
//   png:  RGBA 8-bit, transparent where there is no ink; pHYs = dpi; tEXt JobId, Resolution,
//         ColorProfile, GarmentColor, Software.
//   jpeg: RGB (JPEG has no alpha): the artwork composited on white, i.e. on "no ink"; JFIF
//         density = dpi. Use it only for devices that treat white as unprinted.
//   pdf:  one page the platen's size (1 pt = 1/72 in); the artwork image drawn at box_mm with its
//         alpha as a soft mask (omitted for opaque artwork); Info Title/Subject/Keywords carry
//         job id, dpi, profile and garment colour.
// Returns the path of the print file. Problems: meta_mismatch, write_failed, render_failed.
Result<std::filesystem::path> write_print_file(const std::filesystem::path& file,
                                               PrintFormat format, const Reference& ref,
                                               const PrintFileMeta& meta,
                                               const PrintOptions& options = {});

// "png" | "jpeg" | "pdf".
std::string_view to_string(PrintFormat format);

}  // namespace pressline::devices::render
