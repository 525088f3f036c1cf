// PNG (libpng), JPEG (libjpeg) and PDF (libharu) encoders, fed row by row to avoid building
// platen-sized copies of the image.
//
// libpng and libjpeg report errors by longjmp. The setjmp sits in the function that calls them;
// only the libraries' own C frames are jumped over, and every C++ object of that function is
// constructed before setjmp and not reassigned after it, so the jump skips no destructor and
// reads no clobbered local.
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <hpdf.h>
#include <jpeglib.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <png.h>

#include "detail.hpp"
#include "pressline/devices/hpdf.hpp"

namespace pressline::devices::render::detail {
namespace {

struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

// ---- PNG ----

struct PngErr {
    char message[256] = {};
};

void png_error_fn(png_structp png, png_const_charp msg) {
    auto* err = static_cast<PngErr*>(png_get_error_ptr(png));
    std::snprintf(err->message, sizeof err->message, "%s", msg);
    png_longjmp(png, 1);
}
void png_warning_fn(png_structp, png_const_charp) {}

// The part of the PNG writer that may longjmp: POD locals and pointers only.
bool png_encode(std::FILE* fp, const PngSpec& spec, const RowFn& rows, std::uint8_t* scratch,
                png_text* text, int n_text, PngErr* err) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, err, png_error_fn,
                                              png_warning_fn);
    if (png == nullptr) {
        std::snprintf(err->message, sizeof err->message, "png_create_write_struct failed");
        return false;
    }
    png_infop info = png_create_info_struct(png);
    if (info == nullptr) {
        png_destroy_write_struct(&png, nullptr);
        std::snprintf(err->message, sizeof err->message, "png_create_info_struct failed");
        return false;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return false;
    }
    png_init_io(png, fp);
    png_set_IHDR(png, info, static_cast<png_uint_32>(spec.width),
                 static_cast<png_uint_32>(spec.height), 8, PNG_COLOR_TYPE_RGB_ALPHA,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    const auto ppm = static_cast<png_uint_32>(spec.dpi / 0.0254 + 0.5);
    png_set_pHYs(png, info, ppm, ppm, PNG_RESOLUTION_METER);
    if (n_text > 0) png_set_text(png, info, text, n_text);
    png_set_compression_level(png, spec.compression);
    png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_SUB);
    png_write_info(png, info);
    png_set_bgr(png);
    for (int y = 0; y < spec.height; ++y) {
        const std::uint8_t* row = rows(y, scratch);
        png_write_row(png, row);
    }
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    return true;
}

// ---- JPEG ----

struct JpegErr {
    jpeg_error_mgr pub;
    std::jmp_buf jump;
    char message[JMSG_LENGTH_MAX] = {};
};

void jpeg_error_exit(j_common_ptr cinfo) {
    auto* err = reinterpret_cast<JpegErr*>(cinfo->err);
    (*cinfo->err->format_message)(cinfo, err->message);
    std::longjmp(err->jump, 1);
}
void jpeg_output_message(j_common_ptr) {}

bool jpeg_encode(std::FILE* fp, const JpegSpec& spec, const RowFn& rows, std::uint8_t* scratch,
                 JpegErr* err) {
    jpeg_compress_struct cinfo;
    cinfo.err = jpeg_std_error(&err->pub);
    err->pub.error_exit = jpeg_error_exit;
    err->pub.output_message = jpeg_output_message;
    if (setjmp(err->jump)) {
        jpeg_destroy_compress(&cinfo);
        return false;
    }
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, fp);
    cinfo.image_width = static_cast<JDIMENSION>(spec.width);
    cinfo.image_height = static_cast<JDIMENSION>(spec.height);
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, spec.quality, TRUE);
    cinfo.write_JFIF_header = TRUE;
    cinfo.density_unit = 1;   // dots per inch
    cinfo.X_density = static_cast<UINT16>(spec.dpi + 0.5);
    cinfo.Y_density = cinfo.X_density;
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = const_cast<JSAMPROW>(rows(static_cast<int>(cinfo.next_scanline), scratch));
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    return true;
}

// ---- PDF ----

double mm_to_pt(double mm) { return mm / 25.4 * 72.0; }

}  // namespace

std::optional<std::string> write_png_bgra(const std::filesystem::path& file, const PngSpec& spec,
                                          const RowFn& rows) {
    File fp(std::fopen(file.c_str(), "wb"));
    if (!fp) return fmt::format("cannot create {}: {}", file.string(), std::strerror(errno));
    std::vector<std::uint8_t> scratch(static_cast<std::size_t>(spec.width) * 4);
    std::vector<png_text> text(spec.text.size());
    for (std::size_t i = 0; i < spec.text.size(); ++i) {
        text[i].compression = PNG_TEXT_COMPRESSION_NONE;
        text[i].key = const_cast<char*>(spec.text[i].first.c_str());
        text[i].text = const_cast<char*>(spec.text[i].second.c_str());
        text[i].text_length = spec.text[i].second.size();
    }
    PngErr err;
    if (!png_encode(fp.get(), spec, rows, scratch.data(), text.data(),
                    static_cast<int>(text.size()), &err)) {
        return fmt::format("libpng: {}", err.message);
    }
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
    std::vector<std::uint8_t> scratch(static_cast<std::size_t>(spec.width) * 3);
    auto err = std::make_unique<JpegErr>();
    if (!jpeg_encode(fp.get(), spec, rows, scratch.data(), err.get())) {
        return fmt::format("libjpeg: {}", err->message);
    }
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
