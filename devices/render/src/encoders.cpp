// PNG and JPEG print files (the row encoders of drivers/image, pressline/image/rows.hpp) and
// PDF (libharu), fed row by row to avoid building platen-sized copies of the image.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <hpdf.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <png.h>

#include "detail.hpp"
#include "pressline/devices/hpdf.hpp"
#include "pressline/image/rows.hpp"

namespace pressline::devices::render::detail {
namespace {

struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

// ---- PDF ----

double mm_to_pt(double mm) { return mm / 25.4 * 72.0; }

}  // namespace

std::optional<std::string> write_png_bgra(const std::filesystem::path& file, const PngSpec& spec,
                                          const RowFn& rows) {
    File fp(std::fopen(file.c_str(), "wb"));
    if (!fp) return fmt::format("cannot create {}: {}", file.string(), std::strerror(errno));
    image::PngRowSpec png;
    png.width = spec.width;
    png.height = spec.height;
    png.channels = 4;
    png.depth = 8;
    png.bgr = true;
    png.compression = spec.compression;
    png.filter = PNG_FILTER_SUB;
    png.dpi = spec.dpi;
    png.text = spec.text;
    if (auto err = image::write_png_rows(fp.get(), png, rows)) return fmt::format("libpng: {}", *err);
    if (std::fflush(fp.get()) != 0 || std::ferror(fp.get())) {
        return fmt::format("writing {}: {}", file.string(), std::strerror(errno));
    }
    if (std::fclose(fp.release()) != 0) {
        return fmt::format("closing {}: {}", file.string(), std::strerror(errno));
    }
    return std::nullopt;
}

std::optional<std::string> write_jpeg_rgb(const std::filesystem::path& file, const JpegSpec& spec,
                                          const RowFn& rows) {
    File fp(std::fopen(file.c_str(), "wb"));
    if (!fp) return fmt::format("cannot create {}: {}", file.string(), std::strerror(errno));
    image::JpegRowSpec jpeg;
    jpeg.width = spec.width;
    jpeg.height = spec.height;
    jpeg.input = image::JpegRowSpec::Input::rgb;
    jpeg.quality = spec.quality;
    jpeg.dpi = spec.dpi;
    if (auto err = image::write_jpeg_rows(fp.get(), jpeg, rows)) return fmt::format("libjpeg: {}", *err);
    if (std::fflush(fp.get()) != 0 || std::ferror(fp.get())) {
        return fmt::format("writing {}: {}", file.string(), std::strerror(errno));
    }
    if (std::fclose(fp.release()) != 0) {
        return fmt::format("closing {}: {}", file.string(), std::strerror(errno));
    }
    return std::nullopt;
}

std::optional<std::string> write_pdf(const std::filesystem::path& file, const Reference& ref,
                                     const PrintFileMeta& meta, bool compress) {
    hpdf::Errors err;
    const hpdf::Doc doc = hpdf::new_doc(err);
    if (!doc) return std::string("libharu: HPDF_New failed");
    auto failed = [&err](const char* step) { return err.describe(step); };
    HPDF_Doc pdf = doc.get();
    if (compress && HPDF_SetCompressionMode(pdf, HPDF_COMP_ALL) != HPDF_OK) {
        return failed("SetCompressionMode");
    }

    const std::string title = fmt::format("Pressline print file {}", meta.job_id);
    const std::string subject =
        fmt::format("job {} | platen {} | {} dpi | profile {} | garment {}", meta.job_id,
                    ref.platen.name, ref.dpi, meta.color_profile, garment_label(meta));
    const std::string keywords =
        fmt::format("job_id={}; dpi={}; color_profile={}; garment_color={}; garment_srgb={}; "
                    "platen={}",
                    meta.job_id, ref.dpi, meta.color_profile, meta.garment_color_name,
                    hex_srgb(meta.garment_srgb), ref.platen.name);
    if (HPDF_SetInfoAttr(pdf, HPDF_INFO_TITLE, title.c_str()) != HPDF_OK ||
        HPDF_SetInfoAttr(pdf, HPDF_INFO_SUBJECT, subject.c_str()) != HPDF_OK ||
        HPDF_SetInfoAttr(pdf, HPDF_INFO_KEYWORDS, keywords.c_str()) != HPDF_OK ||
        HPDF_SetInfoAttr(pdf, HPDF_INFO_CREATOR, "pressline render") != HPDF_OK) {
        return failed("SetInfoAttr");
    }

    HPDF_Page page = HPDF_AddPage(pdf);
    if (page == nullptr) return failed("AddPage");
    const double page_w = mm_to_pt(ref.platen.width_mm);
    const double page_h = mm_to_pt(ref.platen.height_mm);
    if (HPDF_Page_SetWidth(page, static_cast<HPDF_REAL>(page_w)) != HPDF_OK ||
        HPDF_Page_SetHeight(page, static_cast<HPDF_REAL>(page_h)) != HPDF_OK) {
        return failed("Page_SetWidth/Height");
    }

    // libharu wants packed RGB and a separate gray mask; it copies both into its own streams.
    const auto w = static_cast<HPDF_UINT>(ref.bgra.cols);
    const auto h = static_cast<HPDF_UINT>(ref.bgra.rows);
    HPDF_Image image = nullptr;
    {
        cv::Mat rgb;
        cv::cvtColor(ref.bgra, rgb, cv::COLOR_BGRA2RGB);
        image = HPDF_LoadRawImageFromMem(pdf, rgb.data, w, h, HPDF_CS_DEVICE_RGB, 8);
        if (image == nullptr) return failed("LoadRawImageFromMem (colour)");
    }
    if (!ref.opaque) {
        cv::Mat alpha;
        cv::extractChannel(ref.bgra, alpha, 3);
        HPDF_Image mask = HPDF_LoadRawImageFromMem(pdf, alpha.data, w, h, HPDF_CS_DEVICE_GRAY, 8);
        if (mask == nullptr) return failed("LoadRawImageFromMem (alpha)");
        if (HPDF_Image_AddSMask(image, mask) != HPDF_OK) return failed("Image_AddSMask");
    }
    // PDF's origin is the page's bottom-left corner, y up.
    const double x_pt = mm_to_pt(ref.box_mm.x);
    const double w_pt = mm_to_pt(ref.box_mm.width);
    const double h_pt = mm_to_pt(ref.box_mm.height);
    const double y_pt = page_h - mm_to_pt(ref.box_mm.y) - h_pt;
    if (HPDF_Page_DrawImage(page, image, static_cast<HPDF_REAL>(x_pt), static_cast<HPDF_REAL>(y_pt),
                            static_cast<HPDF_REAL>(w_pt), static_cast<HPDF_REAL>(h_pt)) != HPDF_OK) {
        return failed("Page_DrawImage");
    }
    if (HPDF_SaveToFile(pdf, file.c_str()) != HPDF_OK) return failed("SaveToFile");
    return std::nullopt;
}

}  // namespace pressline::devices::render::detail
