// PNG (libpng) and JPEG (libjpeg-turbo) decoding into cv::Mat, following OpenCV 4.6's
// PngDecoder/JpegDecoder step for step so the pixels are the same as cv::imdecode's.
//
// libpng and libjpeg report errors by longjmp. Each setjmp sits in a function whose state lives
// in a context struct reached through an unchanging pointer; every C++ object in it is built
// before the setjmp by the caller, so the jump skips no destructor and reads no clobbered local.
#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include <fmt/format.h>
#include <opencv2/imgproc.hpp>

#include "internal.hpp"

namespace pressline::image {

namespace {

using detail::fail_as;

// Output layout from the file's own (OpenCV's decoder type) and the options (imread's flags).
struct Layout {
    int channels = 0;  // 1, 3 or 4
    bool sixteen = false;
};

Layout choose(int stored_channels, bool stored_16, const ReadOptions& opt) {
    Layout l;
    l.sixteen = stored_16 && opt.keep_16bit;
    switch (opt.color) {
        case Color::gray: l.channels = 1; break;
        case Color::bgr: l.channels = (opt.keep_alpha && stored_channels == 4) ? 4 : 3; break;
        case Color::as_stored:
            l.channels = stored_channels == 1 ? 1 : (opt.keep_alpha && stored_channels == 4) ? 4 : 3;
            break;
    }
    return l;
}

// ---- PNG ---------------------------------------------------------------------------------------

struct PngCtx {
    std::span<const std::uint8_t> in;
    std::size_t pos = 0;
    ReadOptions opt;
    cv::Mat out;                    // sized by png_decode once the header is read
    std::vector<png_bytep> rows;    // reserved by the caller
    char message[256] = "";
    bool too_large = false;
    std::int64_t pixels = 0;
};

void png_fail(png_structp png, png_const_charp msg) {
    auto* c = static_cast<PngCtx*>(png_get_error_ptr(png));
    std::snprintf(c->message, sizeof c->message, "%s", msg);
    png_longjmp(png, 1);
}
void png_warn(png_structp, png_const_charp) {}

void png_read_mem(png_structp png, png_bytep dst, png_size_t size) {
    auto* c = static_cast<PngCtx*>(png_get_io_ptr(png));
    if (c->pos + size > c->in.size()) png_error(png, "the data ends early (truncated file)");
    std::memcpy(dst, c->in.data() + c->pos, size);
    c->pos += size;
}

// The part that may longjmp: pointers and PODs only.
bool png_decode(PngCtx* c) {
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, c, png_fail, png_warn);
    png_infop info = png ? png_create_info_struct(png) : nullptr;
    png_infop end = png && info ? png_create_info_struct(png) : nullptr;
    if (!png || !info || !end) {
        png_destroy_read_struct(&png, &info, &end);
        std::snprintf(c->message, sizeof c->message, "libpng could not start");
        return false;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, &end);
        return false;
    }
    png_set_read_fn(png, c, png_read_mem);
    png_read_info(png, info);
    png_uint_32 w = 0, h = 0;
    int bit_depth = 0, color_type = 0;
    png_get_IHDR(png, info, &w, &h, &bit_depth, &color_type, nullptr, nullptr, nullptr);
    c->pixels = std::int64_t{w} * std::int64_t{h};
    if (c->pixels > c->opt.max_pixels) {
        c->too_large = true;
        png_destroy_read_struct(&png, &info, &end);
        return false;
    }
    // OpenCV's decoder type: RGB/palette with tRNS and *_ALPHA are 4 channels, gray (with or
    // without tRNS) 1, others 3.
    int stored = 1;
    if (color_type == PNG_COLOR_TYPE_RGB || color_type == PNG_COLOR_TYPE_PALETTE) {
        png_bytep trans = nullptr;
        int num_trans = 0;
        png_color_16p trans_values = nullptr;
        png_get_tRNS(png, info, &trans, &num_trans, &trans_values);
        stored = num_trans > 0 ? 4 : 3;
    } else if (color_type == PNG_COLOR_TYPE_GRAY_ALPHA || color_type == PNG_COLOR_TYPE_RGB_ALPHA) {
        stored = 4;
    }
    const Layout l = choose(stored, bit_depth == 16, c->opt);
    const bool color = l.channels > 1;
    c->out.create(static_cast<int>(h), static_cast<int>(w), CV_MAKETYPE(l.sixteen ? CV_16U : CV_8U, l.channels));

    // The transforms OpenCV 4.6's PngDecoder::readData sets, in its order.
    if (!l.sixteen && bit_depth == 16)
        png_set_strip_16(png);
    else if (bit_depth == 16)
        png_set_swap(png);  // little-endian host
    if (l.channels < 4)
        png_set_strip_alpha(png);
    else
        png_set_tRNS_to_alpha(png);
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if ((color_type & PNG_COLOR_MASK_COLOR) == 0 && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if ((color_type & PNG_COLOR_MASK_COLOR) && color)
        png_set_bgr(png);
    else if (color)
        png_set_gray_to_rgb(png);
    else
        png_set_rgb_to_gray(png, 1, 0.299, 0.587);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    for (int y = 0; y < c->out.rows; ++y) c->rows[static_cast<std::size_t>(y)] = c->out.ptr<png_byte>(y);
    png_read_image(png, c->rows.data());
    png_read_end(png, end);
    png_destroy_read_struct(&png, &info, &end);
    return true;
}

Outcome<cv::Mat> decode_png(std::span<const std::uint8_t> bytes, const ReadOptions& opt,
                            const std::string& what) {
    // The row pointers need the height before png_decode runs: read it from IHDR (bytes 16..23).
    if (bytes.size() < 33) return fail_as<cv::Mat>(Errc::corrupt, what + ": PNG data ends inside its header");
    const auto be32 = [&](std::size_t at) {
        return std::uint32_t{bytes[at]} << 24 | std::uint32_t{bytes[at + 1]} << 16 |
               std::uint32_t{bytes[at + 2]} << 8 | std::uint32_t{bytes[at + 3]};
    };
    const std::int64_t w = be32(16), h = be32(20);
    if (w <= 0 || h <= 0 || h > PNG_USER_HEIGHT_MAX || w > PNG_USER_WIDTH_MAX)
        return fail_as<cv::Mat>(Errc::corrupt, fmt::format("{}: not a decodable PNG (image size {} x {} in its header)", what, w, h));
    if (w * h > opt.max_pixels)
        return fail_as<cv::Mat>(Errc::too_large, fmt::format("{}: {} x {} pixels, more than the {} allowed", what,
                                                             w, h, opt.max_pixels));
    auto c = std::make_unique<PngCtx>();
    c->in = bytes;
    c->opt = opt;
    c->rows.resize(static_cast<std::size_t>(h));
    if (!png_decode(c.get())) {
        if (c->too_large)
            return fail_as<cv::Mat>(Errc::too_large,
                                    fmt::format("{}: {} pixels, more than the {} allowed", what, c->pixels, opt.max_pixels));
        return fail_as<cv::Mat>(Errc::corrupt, fmt::format("{}: not a decodable PNG (libpng: {})", what, c->message));
    }
    Outcome<cv::Mat> o;
    o.value = std::move(c->out);
    return o;
}

// ---- JPEG --------------------------------------------------------------------------------------

struct JpegErr {
    jpeg_error_mgr mgr;
    std::jmp_buf jump;
    char message[JMSG_LENGTH_MAX] = "";
    bool truncated = false;
};

void jpeg_fail(j_common_ptr cinfo) {
    auto* err = reinterpret_cast<JpegErr*>(cinfo->err);
    (*cinfo->err->format_message)(cinfo, err->message);
    std::longjmp(err->jump, 1);
}

// Warnings are not printed (libjpeg's default writes to stderr). A premature end of the data is
// remembered: libjpeg fills the rest with gray and goes on, which for a QA photo would look like
// missing ink; here it is an error.
void jpeg_message(j_common_ptr cinfo, int level) {
    if (level >= 0) return;  // trace messages
    auto* err = reinterpret_cast<JpegErr*>(cinfo->err);
    if (cinfo->err->msg_code == JWRN_JPEG_EOF && !err->truncated) {
        err->truncated = true;
        (*cinfo->err->format_message)(cinfo, err->message);
    }
    cinfo->err->num_warnings++;
}

struct JpegCtx {
    std::span<const std::uint8_t> in;
    ReadOptions opt;
    cv::Mat out;
    JpegErr err;
    bool cmyk = false;
    bool too_large = false;
    std::int64_t pixels = 0;
};

// The part that may longjmp: pointers and PODs only.
bool jpeg_decode(JpegCtx* c) {
    jpeg_decompress_struct* cinfo = new jpeg_decompress_struct{};
    cinfo->err = jpeg_std_error(&c->err.mgr);
    c->err.mgr.error_exit = jpeg_fail;
    c->err.mgr.emit_message = jpeg_message;
    if (setjmp(c->err.jump)) {
        jpeg_destroy_decompress(cinfo);
        delete cinfo;
        return false;
    }
    jpeg_create_decompress(cinfo);
    jpeg_mem_src(cinfo, c->in.data(), static_cast<unsigned long>(c->in.size()));
    jpeg_read_header(cinfo, TRUE);
    c->pixels = std::int64_t{cinfo->image_width} * std::int64_t{cinfo->image_height};
    if (cinfo->num_components == 4) c->cmyk = true;
    if (c->pixels > c->opt.max_pixels) c->too_large = true;
    if (c->cmyk || c->too_large) {
        jpeg_destroy_decompress(cinfo);
        delete cinfo;
        return false;
    }
    cinfo->scale_num = 1;
    cinfo->scale_denom = static_cast<unsigned>(c->opt.reduce);
    const Layout l = choose(cinfo->num_components > 1 ? 3 : 1, false, c->opt);
    if (l.channels > 1) {
        cinfo->out_color_space = JCS_EXT_BGR;
        cinfo->out_color_components = 3;
    } else {
        cinfo->out_color_space = JCS_GRAYSCALE;
        cinfo->out_color_components = 1;
    }
    jpeg_calc_output_dimensions(cinfo);
    c->out.create(static_cast<int>(cinfo->output_height), static_cast<int>(cinfo->output_width),
                  l.channels > 1 ? CV_8UC3 : CV_8UC1);
    jpeg_start_decompress(cinfo);
    while (cinfo->output_scanline < cinfo->output_height) {
        JSAMPROW row = c->out.ptr<JSAMPLE>(static_cast<int>(cinfo->output_scanline));
        jpeg_read_scanlines(cinfo, &row, 1);
    }
    jpeg_finish_decompress(cinfo);
    jpeg_destroy_decompress(cinfo);
    delete cinfo;
    return true;
}

Outcome<cv::Mat> decode_jpeg(std::span<const std::uint8_t> bytes, const ReadOptions& opt,
                             const std::string& what) {
    auto c = std::make_unique<JpegCtx>();
    c->in = bytes;
    c->opt = opt;
    const bool ok = jpeg_decode(c.get());
    if (c->cmyk) return fail_as<cv::Mat>(Errc::unsupported, what + ": a CMYK JPEG (only gray and colour are read)");
    if (c->too_large)
        return fail_as<cv::Mat>(Errc::too_large,
                                fmt::format("{}: {} pixels, more than the {} allowed", what, c->pixels, opt.max_pixels));
    if (!ok)
        return fail_as<cv::Mat>(Errc::corrupt, fmt::format("{}: not a decodable JPEG (libjpeg: {})", what, c->err.message));
    if (c->err.truncated)
        return fail_as<cv::Mat>(Errc::corrupt, fmt::format("{}: truncated JPEG (libjpeg: {})", what, c->err.message));
    Outcome<cv::Mat> o;
    o.value = std::move(c->out);
    return o;
}

}  // namespace

Outcome<cv::Mat> decode(std::span<const std::uint8_t> bytes, const ReadOptions& opt, const std::string& what_in) {
    const std::string what = what_in.empty() ? fmt::format("image buffer ({} bytes)", bytes.size()) : what_in;
    if (opt.reduce != 1 && opt.reduce != 2 && opt.reduce != 4 && opt.reduce != 8)
        return fail_as<cv::Mat>(Errc::unsupported, fmt::format("{}: reduce must be 1, 2, 4 or 8, not {}", what, opt.reduce));
    if (bytes.empty()) return fail_as<cv::Mat>(Errc::corrupt, what + ": empty (0 bytes), not an image");
    try {
        switch (sniff(bytes)) {
            case Format::jpeg: return decode_jpeg(bytes, opt, what);
            case Format::png: {
                auto r = decode_png(bytes, opt, what);
                if (r && opt.reduce > 1) {
                    // As imread: PNG has no reduced decoding, so the image is resized after.
                    cv::Mat small;
                    cv::resize(r.value, small, cv::Size(r.value.cols / opt.reduce, r.value.rows / opt.reduce), 0, 0,
                               cv::INTER_LINEAR_EXACT);
                    r.value = small;
                }
                return r;
            }
            case Format::unknown: break;
        }
    } catch (const cv::Exception& e) {
        return fail_as<cv::Mat>(Errc::corrupt, fmt::format("{}: OpenCV: {}", what, e.what()));
    }
    std::string head;
    for (std::size_t i = 0; i < std::min<std::size_t>(bytes.size(), 8); ++i) head += fmt::format(" {:02x}", bytes[i]);
    return fail_as<cv::Mat>(Errc::corrupt, fmt::format("{}: not a PNG or JPEG image (first bytes{})", what, head));
}

Outcome<cv::Mat> read(const std::filesystem::path& file, const ReadOptions& opt) {
    std::vector<std::uint8_t> bytes;
    if (auto st = detail::read_whole_file(file, bytes); !st) return detail::relay<cv::Mat>(st);
    return decode(bytes, opt, file.string());
}

}  // namespace pressline::image
