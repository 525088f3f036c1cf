// PNG (libpng) and JPEG (libjpeg-turbo) encoding, row by row, to a FILE* or memory; and
// encode()/write() of a whole cv::Mat on top, with OpenCV 4.6 imwrite's settings.
//
// libpng and libjpeg report errors by longjmp. The setjmp sits in a function with POD locals and
// pointers only; the C++ objects it uses are built by its caller, so the jump skips no
// destructor and reads no clobbered local.
#include <zlib.h>

#include <algorithm>
#include <csetjmp>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <jpeglib.h>
#include <png.h>

#include <fmt/format.h>
#include <opencv2/imgproc.hpp>

#include "internal.hpp"
#include "pressline/image/rows.hpp"

namespace pressline::image {

namespace {

// ---- PNG ---------------------------------------------------------------------------------------

struct PngOut {
    std::FILE* file = nullptr;
    std::vector<std::uint8_t>* mem = nullptr;
    char message[256] = "";
};

void png_error_fn(png_structp png, png_const_charp msg) {
    auto* o = static_cast<PngOut*>(png_get_error_ptr(png));
    std::snprintf(o->message, sizeof o->message, "%s", msg);
    png_longjmp(png, 1);
}
void png_warning_fn(png_structp, png_const_charp) {}

void png_write_mem(png_structp png, png_bytep data, png_size_t n) {
    auto* o = static_cast<PngOut*>(png_get_io_ptr(png));
    o->mem->insert(o->mem->end(), data, data + n);
}
void png_flush_mem(png_structp) {}

// The part that may longjmp: POD locals and pointers only.
bool png_encode(PngOut* out, const PngRowSpec* spec, const RowFn* rows, std::uint8_t* scratch,
                png_text* text, int n_text) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, out, png_error_fn, png_warning_fn);
    if (png == nullptr) {
        std::snprintf(out->message, sizeof out->message, "png_create_write_struct failed");
        return false;
    }
    png_infop info = png_create_info_struct(png);
    if (info == nullptr) {
        png_destroy_write_struct(&png, nullptr);
        std::snprintf(out->message, sizeof out->message, "png_create_info_struct failed");
        return false;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return false;
    }
    if (out->file)
        png_init_io(png, out->file);
    else
        png_set_write_fn(png, out, png_write_mem, png_flush_mem);
    const int color_type = spec->channels == 1   ? PNG_COLOR_TYPE_GRAY
                           : spec->channels == 2 ? PNG_COLOR_TYPE_GRAY_ALPHA
                           : spec->channels == 3 ? PNG_COLOR_TYPE_RGB
                                                 : PNG_COLOR_TYPE_RGB_ALPHA;
    png_set_IHDR(png, info, static_cast<png_uint_32>(spec->width), static_cast<png_uint_32>(spec->height),
                 spec->depth, color_type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (spec->dpi > 0) {
        const auto ppm = static_cast<png_uint_32>(spec->dpi / 0.0254 + 0.5);
        png_set_pHYs(png, info, ppm, ppm, PNG_RESOLUTION_METER);
    }
    if (n_text > 0) png_set_text(png, info, text, n_text);
    png_set_compression_level(png, spec->compression);
    if (spec->filter >= 0) png_set_filter(png, PNG_FILTER_TYPE_BASE, spec->filter);
    if (spec->strategy >= 0) png_set_compression_strategy(png, spec->strategy);
    png_write_info(png, info);
    if (spec->bgr && spec->channels >= 3) png_set_bgr(png);
    if (spec->depth == 16) png_set_swap(png);  // little-endian host
    for (int y = 0; y < spec->height; ++y) {
        const std::uint8_t* row = (*rows)(y, scratch);
        png_write_row(png, row);
    }
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    return true;
}

std::optional<std::string> png_rows(PngOut& out, const PngRowSpec& spec, const RowFn& rows) {
    // Sizes are checked by libpng, in its words.
    if (spec.channels < 1 || spec.channels > 4) return fmt::format("{} channels", spec.channels);
    if (spec.depth != 8 && spec.depth != 16) return fmt::format("{}-bit samples", spec.depth);
    std::vector<std::uint8_t> scratch(static_cast<std::size_t>(std::max(spec.width, 0)) * static_cast<std::size_t>(spec.channels) *
                                      static_cast<std::size_t>(spec.depth / 8));
    std::vector<png_text> text(spec.text.size());
    for (std::size_t i = 0; i < spec.text.size(); ++i) {
        text[i].compression = PNG_TEXT_COMPRESSION_NONE;
        text[i].key = const_cast<char*>(spec.text[i].first.c_str());
        text[i].text = const_cast<char*>(spec.text[i].second.c_str());
        text[i].text_length = spec.text[i].second.size();
    }
    if (!png_encode(&out, &spec, &rows, scratch.data(), text.data(), static_cast<int>(text.size())))
        return std::string(out.message);
    return std::nullopt;
}

// ---- JPEG --------------------------------------------------------------------------------------

struct JpegOut {
    jpeg_error_mgr pub;
    std::jmp_buf jump;
    char message[JMSG_LENGTH_MAX] = "";
    std::FILE* file = nullptr;
    unsigned char* mem = nullptr;  // jpeg_mem_dest's buffer (malloc'ed by libjpeg)
    unsigned long mem_size = 0;
};

void jpeg_error_exit(j_common_ptr cinfo) {
    auto* o = reinterpret_cast<JpegOut*>(cinfo->err);
    (*cinfo->err->format_message)(cinfo, o->message);
    std::longjmp(o->jump, 1);
}
void jpeg_output_message(j_common_ptr) {}

// The part that may longjmp: POD locals and pointers only.
bool jpeg_encode(JpegOut* out, const JpegRowSpec* spec, const RowFn* rows, std::uint8_t* scratch) {
    jpeg_compress_struct* cinfo = new jpeg_compress_struct{};
    cinfo->err = jpeg_std_error(&out->pub);
    out->pub.error_exit = jpeg_error_exit;
    out->pub.output_message = jpeg_output_message;
    if (setjmp(out->jump)) {
        jpeg_destroy_compress(cinfo);
        delete cinfo;
        return false;
    }
    jpeg_create_compress(cinfo);
    if (out->file)
        jpeg_stdio_dest(cinfo, out->file);
    else
        jpeg_mem_dest(cinfo, &out->mem, &out->mem_size);
    cinfo->image_width = static_cast<JDIMENSION>(spec->width);
    cinfo->image_height = static_cast<JDIMENSION>(spec->height);
    switch (spec->input) {
        case JpegRowSpec::Input::gray: cinfo->input_components = 1; cinfo->in_color_space = JCS_GRAYSCALE; break;
        case JpegRowSpec::Input::rgb: cinfo->input_components = 3; cinfo->in_color_space = JCS_RGB; break;
        case JpegRowSpec::Input::bgr: cinfo->input_components = 3; cinfo->in_color_space = JCS_EXT_BGR; break;
    }
    jpeg_set_defaults(cinfo);
    jpeg_set_quality(cinfo, spec->quality, TRUE);
    if (spec->dpi > 0) {
        cinfo->write_JFIF_header = TRUE;
        cinfo->density_unit = 1;  // dots per inch
        cinfo->X_density = static_cast<UINT16>(spec->dpi + 0.5);
        cinfo->Y_density = cinfo->X_density;
    }
    jpeg_start_compress(cinfo, TRUE);
    while (cinfo->next_scanline < cinfo->image_height) {
        JSAMPROW row = const_cast<JSAMPROW>((*rows)(static_cast<int>(cinfo->next_scanline), scratch));
        jpeg_write_scanlines(cinfo, &row, 1);
    }
    jpeg_finish_compress(cinfo);
    jpeg_destroy_compress(cinfo);
    delete cinfo;
    return true;
}

std::optional<std::string> jpeg_rows(JpegOut& out, const JpegRowSpec& spec, const RowFn& rows) {
    // Sizes are checked by libjpeg, in its words.
    std::vector<std::uint8_t> scratch(static_cast<std::size_t>(std::max(spec.width, 0)) *
                                      (spec.input == JpegRowSpec::Input::gray ? 1u : 3u));
    if (!jpeg_encode(&out, &spec, &rows, scratch.data())) return std::string(out.message);
    return std::nullopt;
}

RowFn mat_rows(const cv::Mat& m) {
    return [&m](int y, std::uint8_t*) { return m.ptr<std::uint8_t>(y); };
}

}  // namespace

std::optional<std::string> write_png_rows(std::FILE* f, const PngRowSpec& spec, const RowFn& rows) {
    PngOut out;
    out.file = f;
    return png_rows(out, spec, rows);
}

std::optional<std::string> write_png_rows(std::vector<std::uint8_t>& bytes, const PngRowSpec& spec,
                                          const RowFn& rows) {
    PngOut out;
    out.mem = &bytes;
    return png_rows(out, spec, rows);
}

std::optional<std::string> write_jpeg_rows(std::FILE* f, const JpegRowSpec& spec, const RowFn& rows) {
    auto out = std::make_unique<JpegOut>();
    out->file = f;
    return jpeg_rows(*out, spec, rows);
}

std::optional<std::string> write_jpeg_rows(std::vector<std::uint8_t>& bytes, const JpegRowSpec& spec,
                                           const RowFn& rows) {
    auto out = std::make_unique<JpegOut>();
    auto r = jpeg_rows(*out, spec, rows);
    if (out->mem) {
        if (!r) bytes.insert(bytes.end(), out->mem, out->mem + out->mem_size);
        std::free(out->mem);
    }
    return r;
}

Outcome<std::vector<std::uint8_t>> encode(Format format, const cv::Mat& img_in, const WriteOptions& opt) {
    using V = std::vector<std::uint8_t>;
    const std::string what = fmt::format("{} x {} image", img_in.cols, img_in.rows);
    if (img_in.empty()) return detail::fail_as<V>(Errc::unsupported, "empty image: nothing to encode");
    const int ch = img_in.channels();
    // Rows are read straight from the Mat: make it continuous-per-row (any Mat is) and 8/16 bit.
    Outcome<V> o;
    try {
        if (format == Format::png) {
            if (img_in.depth() != CV_8U && img_in.depth() != CV_16U)
                return detail::fail_as<V>(Errc::unsupported, what + ": PNG takes 8- or 16-bit pixels only");
            if (ch != 1 && ch != 3 && ch != 4)
                return detail::fail_as<V>(Errc::unsupported, fmt::format("{}: PNG takes 1, 3 or 4 channels, not {}", what, ch));
            PngRowSpec spec;
            spec.width = img_in.cols;
            spec.height = img_in.rows;
            spec.channels = ch;
            spec.depth = img_in.depth() == CV_16U ? 16 : 8;
            if (opt.png_compression >= 0) {  // as imwrite with IMWRITE_PNG_COMPRESSION
                spec.compression = std::min(opt.png_compression, 9);
                spec.strategy = Z_DEFAULT_STRATEGY;
            } else {  // imwrite's default: tuned for speed
                spec.compression = Z_BEST_SPEED;
                spec.filter = PNG_FILTER_SUB;
                spec.strategy = Z_RLE;
            }
            if (auto e = write_png_rows(o.value, spec, mat_rows(img_in)))
                return detail::fail_as<V>(Errc::corrupt, fmt::format("{}: libpng: {}", what, *e));
            return o;
        }
        if (format == Format::jpeg) {
            if (img_in.depth() != CV_8U)
                return detail::fail_as<V>(Errc::unsupported, what + ": JPEG takes 8-bit pixels only");
            if (ch != 1 && ch != 3 && ch != 4)
                return detail::fail_as<V>(Errc::unsupported, fmt::format("{}: JPEG takes 1 or 3 channels, not {}", what, ch));
            cv::Mat img = img_in;
            if (ch == 4) cv::cvtColor(img_in, img, cv::COLOR_BGRA2BGR);  // as imwrite: alpha dropped
            JpegRowSpec spec;
            spec.width = img.cols;
            spec.height = img.rows;
            spec.input = ch == 1 ? JpegRowSpec::Input::gray : JpegRowSpec::Input::bgr;
            spec.quality = std::clamp(opt.jpeg_quality, 0, 100);
            if (auto e = write_jpeg_rows(o.value, spec, mat_rows(img)))
                return detail::fail_as<V>(Errc::corrupt, fmt::format("{}: libjpeg: {}", what, *e));
            return o;
        }
    } catch (const cv::Exception& e) {
        return detail::fail_as<V>(Errc::corrupt, fmt::format("{}: OpenCV: {}", what, e.what()));
    }
    return detail::fail_as<V>(Errc::unsupported, what + ": unknown format (PNG or JPEG)");
}

Status write(const std::filesystem::path& file, const cv::Mat& img, const WriteOptions& opt) {
    const Format f = format_of(file);
    if (f == Format::unknown)
        return detail::fail(Errc::unsupported,
                            fmt::format("{}: unknown image extension (.png, .jpg or .jpeg)", file.string()));
    auto bytes = encode(f, img, opt);
    if (!bytes) return detail::fail(static_cast<Errc>(bytes.code.value()), file.string() + ": " + bytes.message);
    std::FILE* fp = std::fopen(file.c_str(), "wb");
    if (!fp) {
        const int e = errno;
        return detail::fail(e == ENOENT || e == ENOTDIR ? Errc::not_found : Errc::io,
                            fmt::format("cannot create {}: {}", file.string(), std::strerror(e)));
    }
    const bool wrote = std::fwrite(bytes.value.data(), 1, bytes.value.size(), fp) == bytes.value.size() &&
                       std::fflush(fp) == 0;
    const int e = errno;
    const bool closed = std::fclose(fp) == 0;
    if (!wrote || !closed)
        return detail::fail(Errc::io, fmt::format("writing {}: {}", file.string(), std::strerror(wrote ? errno : e)));
    return {};
}

}  // namespace pressline::image
