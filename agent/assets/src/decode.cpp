// Artwork decoding with libpng, libjpeg and libtiff straight into an 8-bit BGRA cv::Mat.
//
// Why not cv::imread: Debian's OpenCV imgcodecs links GDAL, GDCM, xerces and more. Loading them
// cost the idle agent ~40 MB of resident library pages, and every one of them is decoder code
// that untrusted artwork would reach. The three libraries here are the ones probe.cpp already
// uses to read headers, and only the formats the contract allows are decoded.
//
// Not drivers/image (the shared PNG/JPEG codec, which follows imread): artwork is always straight
// BGRA (a gray PNG's tRNS becomes alpha here, imread ignores it), a truncated JPEG is decoded as
// libjpeg gives it, and its messages are the asset contract's. TIFF is artwork-only.
#include <csetjmp>
#include <cstdio>
#include <memory>

#include <jpeglib.h>
#include <png.h>
#include <tiffio.h>

#include <fmt/format.h>
#include <opencv2/imgproc.hpp>

#include "pressline/assets/assets.hpp"

namespace pressline::assets {
namespace {

namespace fs = std::filesystem;

std::variant<cv::Mat, Problem> corrupt(const fs::path& file, const std::string& what) {
    return Problem{reason::corrupt, fmt::format("artwork {} cannot be decoded: {}", file.filename().string(), what)};
}

struct PngRead {
    std::jmp_buf jump;
    char message[256] = "";
};

void png_fail(png_structp png, png_const_charp msg) {
    auto* r = static_cast<PngRead*>(png_get_error_ptr(png));
    std::snprintf(r->message, sizeof r->message, "%s", msg);
    std::longjmp(r->jump, 1);
}

// The classic API, so that sample values stay as stored: libpng's simplified API takes 16-bit
// data for linear light and gamma-encodes it on the way to 8 bits, which would brighten a
// 16-bit sRGB artwork. Here 16-bit is cut to its high byte, as the renderer does.
// Written without objects that need destructors between setjmp and longjmp.
std::variant<cv::Mat, Problem> decode_png(const fs::path& file) {
    std::FILE* f = std::fopen(file.c_str(), "rb");
    if (!f) return corrupt(file, "cannot open");
    PngRead r;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r, png_fail, nullptr);
    png_infop info = png ? png_create_info_struct(png) : nullptr;
    cv::Mat* out = new cv::Mat();
    if (!png || !info || setjmp(r.jump)) {
        png_destroy_read_struct(&png, &info, nullptr);
        std::fclose(f);
        delete out;
        return corrupt(file, r.message[0] ? r.message : "libpng could not start");
    }
    png_init_io(png, f);
    png_read_info(png, info);
    png_set_expand(png);          // palette -> RGB, gray < 8 bits -> 8, tRNS -> alpha
    png_set_strip_16(png);        // 16 -> 8 bits (high byte), no gamma
    png_set_gray_to_rgb(png);
    png_set_bgr(png);
    png_set_filler(png, 0xff, PNG_FILLER_AFTER);  // opaque where there is no alpha
    const int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    out->create(static_cast<int>(png_get_image_height(png, info)), static_cast<int>(png_get_image_width(png, info)), CV_8UC4);
    // Row by row (every pass for interlaced files): no row-pointer array that a longjmp would leak.
    for (int pass = 0; pass < passes; ++pass)
        for (int y = 0; y < out->rows; ++y) png_read_row(png, out->ptr<png_byte>(y), nullptr);
    png_read_end(png, nullptr);
    png_destroy_read_struct(&png, &info, nullptr);
    std::fclose(f);
    cv::Mat result = *out;
    delete out;
    return result;
}

struct JpegError {
    jpeg_error_mgr mgr;
    std::jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

void jpeg_fail(j_common_ptr cinfo) {
    auto* err = reinterpret_cast<JpegError*>(cinfo->err);
    (*cinfo->err->format_message)(cinfo, err->message);
    std::longjmp(err->jump, 1);
}

// Written without objects that need destructors between setjmp and longjmp.
std::variant<cv::Mat, Problem> decode_jpeg(const fs::path& file) {
    std::FILE* f = std::fopen(file.c_str(), "rb");
    if (!f) return corrupt(file, "cannot open");
    jpeg_decompress_struct cinfo{};
    JpegError err{};
    cinfo.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = jpeg_fail;
    cv::Mat* out = new cv::Mat();
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        std::fclose(f);
        delete out;
        return corrupt(file, err.message);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, f);
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        jpeg_destroy_decompress(&cinfo);
        std::fclose(f);
        delete out;
        return Problem{reason::unsupported_format,
                       fmt::format("artwork {} is a CMYK JPEG; send it as RGB", file.filename().string())};
    }
    cinfo.out_color_space = JCS_EXT_BGRA;  // libjpeg-turbo: straight into our layout
    jpeg_start_decompress(&cinfo);
    out->create(static_cast<int>(cinfo.output_height), static_cast<int>(cinfo.output_width), CV_8UC4);
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = out->ptr<unsigned char>(static_cast<int>(cinfo.output_scanline));
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    std::fclose(f);
    cv::Mat result = *out;
    delete out;
    cv::Mat alpha(result.size(), CV_8UC1, cv::Scalar(255));
    cv::insertChannel(alpha, result, 3);  // JPEG has no alpha: opaque
    return result;
}

std::variant<cv::Mat, Problem> decode_tiff(const fs::path& file) {
    TIFFSetWarningHandler(nullptr);
    TIFFSetErrorHandler(nullptr);
    std::unique_ptr<TIFF, void (*)(TIFF*)> tif(TIFFOpen(file.c_str(), "r"), TIFFClose);
    if (!tif) return corrupt(file, "not a readable TIFF");
    std::uint32_t w = 0, h = 0;
    TIFFGetField(tif.get(), TIFFTAG_IMAGEWIDTH, &w);
    TIFFGetField(tif.get(), TIFFTAG_IMAGELENGTH, &h);
    if (w == 0 || h == 0) return corrupt(file, "no image size");
    // RGBA, 8 bits per channel, top-left origin, unassociated alpha as stored (or 255).
    cv::Mat rgba(static_cast<int>(h), static_cast<int>(w), CV_8UC4);
    if (!TIFFReadRGBAImageOriented(tif.get(), w, h, reinterpret_cast<std::uint32_t*>(rgba.data), ORIENTATION_TOPLEFT, 0))
        return corrupt(file, "TIFF image data cannot be read");
    cv::Mat out;
    cv::cvtColor(rgba, out, cv::COLOR_RGBA2BGRA);
    // With alpha declared associated (premultiplied in the file) or unassociated (which
    // libtiff premultiplies on reading), colours come out premultiplied; the contract's
    // artwork, like PNG, has straight alpha. An undeclared extra sample is passed as is.
    std::uint16_t n_extra = 0;
    std::uint16_t* extra = nullptr;
    const bool premultiplied = TIFFGetField(tif.get(), TIFFTAG_EXTRASAMPLES, &n_extra, &extra) && n_extra > 0 &&
                               (extra[0] == EXTRASAMPLE_ASSOCALPHA || extra[0] == EXTRASAMPLE_UNASSALPHA);
    for (int y = 0; premultiplied && y < out.rows; ++y) {
        auto* px = out.ptr<cv::Vec4b>(y);
        for (int x = 0; x < out.cols; ++x) {
            const int a = px[x][3];
            if (a == 0 || a == 255) continue;
            for (int c = 0; c < 3; ++c) px[x][c] = cv::saturate_cast<uchar>((px[x][c] * 255 + a / 2) / a);
        }
    }
    return out;
}

}  // namespace

std::variant<cv::Mat, Problem> decode_image(const fs::path& file, std::int64_t max_pixels) {
    auto probed = probe_image(file, max_pixels);
    if (auto* p = std::get_if<Problem>(&probed)) return *p;
    const auto& info = std::get<ImageInfo>(probed);
    try {
        if (info.format == "png") return decode_png(file);
        if (info.format == "jpeg") return decode_jpeg(file);
        if (info.format == "tiff") return decode_tiff(file);
    } catch (const cv::Exception& e) {
        return corrupt(file, e.what());
    } catch (const std::bad_alloc&) {
        return corrupt(file, "out of memory");
    }
    return Problem{reason::unsupported_format, fmt::format("artwork {} is {}", file.filename().string(), info.format)};
}

}  // namespace pressline::assets
