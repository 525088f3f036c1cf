// Image header probe (PNG via libpng, JPEG via libjpeg, TIFF via libtiff) before any decoding.
//
// The pixel limit is enforced on the header alone, so a decompression bomb is refused before any
// pixel buffer exists. A full decode is the renderer's job (it reports corrupt data), but one
// cheap end-of-file check is done here: a PNG must end with its IEND chunk, and the strips/tiles
// a TIFF header points to must lie inside the file, so a file truncated after its header is
// asset_corrupt here rather than a half-printed shirt later. JPEG has no such check (libjpeg pads
// truncated data with grey and only warns; trailing data after EOI is common, so the absence of
// EOI at the very end is not proof of truncation).
#include "internal.hpp"

#include <jpeglib.h>
#include <png.h>
#include <tiffio.h>
#include <zlib.h>

#include <array>
#include <climits>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <fstream>

namespace pressline::assets {
namespace {

Problem problem(const char* reason, std::string message) { return Problem{reason, std::move(message)}; }

std::uint32_t be32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         p[3];
}

std::optional<Problem> check_pixels(const std::string& name, std::uint64_t w, std::uint64_t h,
                                    std::int64_t max_pixels) {
  if (w == 0 || h == 0) return problem(reason::corrupt, name + ": image has zero width or height");
  const std::uint64_t px = w * h;  // both < 2^32: no overflow
  if (w > INT_MAX || h > INT_MAX || px > static_cast<std::uint64_t>(max_pixels))
    return problem(reason::too_many_pixels, name + ": " + std::to_string(w) + " x " +
                                                std::to_string(h) + " = " + std::to_string(px) +
                                                " pixels, over max_pixels " +
                                                std::to_string(max_pixels));
  return std::nullopt;
}

struct FileCloser {
  void operator()(FILE* f) const {
    if (f) std::fclose(f);
  }
};
using File = std::unique_ptr<FILE, FileCloser>;

// ---- PNG ----------------------------------------------------------------------------------------

struct PngState {
  char msg[256];
  png_uint_32 res_x, res_y;
  int unit, has_phys, channels, bit_depth;
};

void png_on_error(png_structp png, png_const_charp msg) {
  auto* s = static_cast<PngState*>(png_get_error_ptr(png));
  std::snprintf(s->msg, sizeof s->msg, "%s", msg);
  png_longjmp(png, 1);
}
void png_on_warning(png_structp, png_const_charp) {}

// Only trivially destructible objects live in this frame (it may be left by longjmp).
bool png_read_header(FILE* f, PngState* s) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, s, png_on_error, png_on_warning);
  if (png == nullptr) return false;
  png_infop info = png_create_info_struct(png);
  if (info == nullptr) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    return false;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  png_set_user_limits(png, 0x7fffffffU, 0x7fffffffU);  // max_pixels decides, not libpng
  png_set_chunk_malloc_max(png, 8U * 1024 * 1024);
  png_init_io(png, f);
  png_read_info(png, info);  // reads up to the first IDAT; decodes nothing
  int unit = 0;
  s->has_phys = png_get_pHYs(png, info, &s->res_x, &s->res_y, &unit) != 0;
  s->unit = unit;
  s->channels = png_get_channels(png, info);
  s->bit_depth = png_get_bit_depth(png, info);
  png_destroy_read_struct(&png, &info, nullptr);
  return true;
}

std::variant<ImageInfo, Problem> probe_png(const std::filesystem::path& file, const std::string& name,
                                           std::int64_t max_pixels) {
  File f(std::fopen(file.c_str(), "rb"));
  if (!f) return problem(reason::not_found, name + ": cannot open: " + std::strerror(errno));
  // Signature (8) + IHDR chunk (4 length, 4 type, 13 data, 4 CRC), checked by hand first so the
  // pixel limit is enforced even if the rest of the file is broken.
  std::array<unsigned char, 33> h{};
  if (std::fread(h.data(), 1, h.size(), f.get()) != h.size())
    return problem(reason::corrupt, name + ": PNG truncated inside its header");
  if (be32(&h[8]) != 13 || std::memcmp(&h[12], "IHDR", 4) != 0)
    return problem(reason::corrupt, name + ": PNG does not start with an IHDR chunk");
  if (crc32(crc32(0, nullptr, 0), &h[12], 17) != be32(&h[29]))
    return problem(reason::corrupt, name + ": PNG IHDR CRC mismatch");
  const std::uint32_t w = be32(&h[16]), ht = be32(&h[20]);
  if (w > 0x7fffffffU || ht > 0x7fffffffU)
    return problem(reason::corrupt, name + ": PNG IHDR dimensions out of range");
  if (auto p = check_pixels(name, w, ht, max_pixels)) return *p;

  // Truncation: a complete PNG ends with the IEND chunk (length 0, "IEND", CRC ae426082).
  static const unsigned char iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
  unsigned char tail[12];
  if (std::fseek(f.get(), -12, SEEK_END) != 0 || std::fread(tail, 1, 12, f.get()) != 12 ||
      std::memcmp(tail, iend, 12) != 0)
    return problem(reason::corrupt, name + ": PNG does not end with IEND (truncated?)");
  std::rewind(f.get());

  PngState s{};
  if (!png_read_header(f.get(), &s))
    return problem(reason::corrupt, name + ": bad PNG header: " + (s.msg[0] ? s.msg : "libpng error"));
  ImageInfo info;
  info.format = "png";
  info.width = static_cast<int>(w);
  info.height = static_cast<int>(ht);
  info.channels = s.channels;
  info.bit_depth = s.bit_depth;
  if (s.has_phys && s.unit == PNG_RESOLUTION_METER) {
    info.dpi_x = s.res_x * 0.0254;
    info.dpi_y = s.res_y * 0.0254;
  }
  return info;
}

// ---- JPEG ---------------------------------------------------------------------------------------

struct JpegErr {
  jpeg_error_mgr pub;
  std::jmp_buf jb;
  char msg[JMSG_LENGTH_MAX];
};

void jpeg_on_error(j_common_ptr c) {
  auto* e = reinterpret_cast<JpegErr*>(c->err);
  (*c->err->format_message)(c, e->msg);
  std::longjmp(e->jb, 1);
}
void jpeg_on_message(j_common_ptr) {}

struct JpegHeader {
  unsigned width, height;
  int components, precision, saw_jfif, unit;
  unsigned x_density, y_density;
};

bool jpeg_read_hdr(FILE* f, JpegErr* err, JpegHeader* out) {
  jpeg_decompress_struct cinfo;
  cinfo.err = jpeg_std_error(&err->pub);
  err->pub.error_exit = jpeg_on_error;
  err->pub.output_message = jpeg_on_message;
  if (setjmp(err->jb)) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_stdio_src(&cinfo, f);
  jpeg_read_header(&cinfo, TRUE);  // markers up to SOS; no scan data is decoded
  out->width = cinfo.image_width;
  out->height = cinfo.image_height;
  out->components = cinfo.num_components;
  out->precision = cinfo.data_precision;
  out->saw_jfif = cinfo.saw_JFIF_marker;
  out->unit = cinfo.density_unit;
  out->x_density = cinfo.X_density;
  out->y_density = cinfo.Y_density;
  jpeg_destroy_decompress(&cinfo);
  return true;
}

std::variant<ImageInfo, Problem> probe_jpeg(const std::filesystem::path& file,
                                            const std::string& name, std::int64_t max_pixels) {
  File f(std::fopen(file.c_str(), "rb"));
  if (!f) return problem(reason::not_found, name + ": cannot open: " + std::strerror(errno));
  JpegErr err{};
  JpegHeader h{};
  if (!jpeg_read_hdr(f.get(), &err, &h))
    return problem(reason::corrupt, name + ": bad JPEG header: " + err.msg);
  if (auto p = check_pixels(name, h.width, h.height, max_pixels)) return *p;
  ImageInfo info;
  info.format = "jpeg";
  info.width = static_cast<int>(h.width);
  info.height = static_cast<int>(h.height);
  info.channels = h.components;
  info.bit_depth = h.precision;
  if (h.saw_jfif && h.unit == 1) {
    info.dpi_x = h.x_density;
    info.dpi_y = h.y_density;
  } else if (h.saw_jfif && h.unit == 2) {
    info.dpi_x = h.x_density * 2.54;
    info.dpi_y = h.y_density * 2.54;
  }
  return info;
}

// ---- TIFF ---------------------------------------------------------------------------------------

int tiff_on_error(TIFF*, void* user, const char* module, const char* fmt, va_list ap) {
  auto* msg = static_cast<std::string*>(user);
  if (msg->empty()) {
    char buf[256];
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    *msg = std::string(module ? module : "libtiff") + ": " + buf;
  }
  return 1;  // handled: the global handler (stderr) is not called
}
int tiff_on_warning(TIFF*, void*, const char*, const char*, va_list) { return 1; }

std::variant<ImageInfo, Problem> probe_tiff(const std::filesystem::path& file,
                                            const std::string& name, std::int64_t max_pixels,
                                            std::uintmax_t file_size) {
  std::string err;
  std::unique_ptr<TIFFOpenOptions, void (*)(TIFFOpenOptions*)> opts(TIFFOpenOptionsAlloc(),
                                                                     TIFFOpenOptionsFree);
  TIFFOpenOptionsSetErrorHandlerExtR(opts.get(), tiff_on_error, &err);
  TIFFOpenOptionsSetWarningHandlerExtR(opts.get(), tiff_on_warning, nullptr);
  TIFFOpenOptionsSetMaxSingleMemAlloc(opts.get(), 64 * 1024 * 1024);
  std::unique_ptr<TIFF, void (*)(TIFF*)> tif(TIFFOpenExt(file.c_str(), "r", opts.get()), TIFFClose);
  if (!tif) return problem(reason::corrupt, name + ": bad TIFF header: " + err);
  std::uint32_t w = 0, h = 0;
  if (TIFFGetField(tif.get(), TIFFTAG_IMAGEWIDTH, &w) != 1 ||
      TIFFGetField(tif.get(), TIFFTAG_IMAGELENGTH, &h) != 1)
    return problem(reason::corrupt, name + ": TIFF without image width/length");
  if (auto p = check_pixels(name, w, h, max_pixels)) return *p;
  std::uint16_t spp = 1, bps = 1, unit = RESUNIT_INCH;
  TIFFGetFieldDefaulted(tif.get(), TIFFTAG_SAMPLESPERPIXEL, &spp);
  TIFFGetFieldDefaulted(tif.get(), TIFFTAG_BITSPERSAMPLE, &bps);
  TIFFGetFieldDefaulted(tif.get(), TIFFTAG_RESOLUTIONUNIT, &unit);
  float xres = 0, yres = 0;
  const bool has_x = TIFFGetField(tif.get(), TIFFTAG_XRESOLUTION, &xres) == 1;
  const bool has_y = TIFFGetField(tif.get(), TIFFTAG_YRESOLUTION, &yres) == 1;

  // Truncation: every strip or tile the header points to must lie inside the file.
  const std::uint32_t striles =
      TIFFIsTiled(tif.get()) ? TIFFNumberOfTiles(tif.get()) : TIFFNumberOfStrips(tif.get());
  for (std::uint32_t i = 0; i < striles; ++i) {
    int ferr = 0;
    const std::uint64_t off = TIFFGetStrileOffsetWithErr(tif.get(), i, &ferr);
    const std::uint64_t len = TIFFGetStrileByteCountWithErr(tif.get(), i, &ferr);
    if (ferr != 0 || off > file_size || len > file_size - off)
      return problem(reason::corrupt,
                     name + ": TIFF strip/tile " + std::to_string(i) + " lies beyond the end of the file (truncated?)");
  }
  ImageInfo info;
  info.format = "tiff";
  info.width = static_cast<int>(w);
  info.height = static_cast<int>(h);
  info.channels = spp;
  info.bit_depth = bps;
  const double scale = unit == RESUNIT_INCH ? 1.0 : unit == RESUNIT_CENTIMETER ? 2.54 : 0.0;
  if (has_x) info.dpi_x = xres * scale;
  if (has_y) info.dpi_y = yres * scale;
  return info;
}

}  // namespace

std::variant<ImageInfo, Problem> probe_image(const std::filesystem::path& file,
                                             std::int64_t max_pixels) {
  const std::string name = file.filename().string();
  std::error_code ec;
  const auto size = std::filesystem::file_size(file, ec);
  if (ec) return problem(reason::not_found, name + ": " + ec.message());
  std::array<unsigned char, 12> m{};
  {
    std::ifstream in(file, std::ios::binary);
    in.read(reinterpret_cast<char*>(m.data()), m.size());
  }
  auto starts = [&](std::initializer_list<unsigned char> magic) {
    return size >= magic.size() && std::equal(magic.begin(), magic.end(), m.begin());
  };
  if (starts({0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a})) return probe_png(file, name, max_pixels);
  if (starts({0xff, 0xd8, 0xff})) return probe_jpeg(file, name, max_pixels);
  if (starts({'I', 'I', 42, 0}) || starts({'M', 'M', 0, 42}) || starts({'I', 'I', 43, 0}) ||
      starts({'M', 'M', 0, 43}))
    return probe_tiff(file, name, max_pixels, size);
  std::string what = "unknown";
  if (starts({'G', 'I', 'F', '8'})) what = "GIF";
  else if (starts({'R', 'I', 'F', 'F'}) && std::memcmp(&m[8], "WEBP", 4) == 0) what = "WebP";
  else if (starts({'B', 'M'})) what = "BMP";
  else if (starts({'%', 'P', 'D', 'F'})) what = "PDF";
  else if (size == 0) what = "empty file";
  return problem(reason::unsupported_format,
                 name + ": format " + what + " is not supported (PNG, JPEG, TIFF only)");
}

std::variant<std::string, Problem> sha256_file(const std::filesystem::path& file) {
  File f(std::fopen(file.c_str(), "rb"));
  if (!f) return problem(reason::not_found, file.string() + ": " + std::strerror(errno));
  detail::Sha256 sha;
  std::vector<char> buf(1 << 16);
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f.get())) > 0) sha.update(buf.data(), n);
  if (std::ferror(f.get())) return problem(reason::fetch_failed, "read error: " + file.string());
  return sha.hex();
}

}  // namespace pressline::assets
