// Tests of pressline_assets: header probe, file:// and https:// fetch, sha256, cache, LRU.
#include <pressline/assets/assets.hpp>

#include "internal.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <jpeglib.h>
#include <netinet/in.h>
#include <png.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <tiffio.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace pa = pressline::assets;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    std::string t = (fs::temp_directory_path() / "pressline-assets-XXXXXX").string();
    path = ::mkdtemp(t.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string sha_of(const fs::path& p) { return std::get<std::string>(pa::sha256_file(p)); }

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}
void write_all(const fs::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << data;
}

// A real PNG written by libpng: w x h RGB, optional pHYs (dpi), optional tEXt padding.
void write_png(const fs::path& p, int w, int h, double dpi, std::size_t pad = 0, char fill = 'a') {
  FILE* f = std::fopen(p.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  png_init_io(png, f);
  png_set_IHDR(png, info, static_cast<png_uint_32>(w), static_cast<png_uint_32>(h), 8,
               PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (dpi > 0) {
    auto ppm = static_cast<png_uint_32>(dpi / 0.0254 + 0.5);
    png_set_pHYs(png, info, ppm, ppm, PNG_RESOLUTION_METER);
  }
  std::string padding(pad, fill);
  png_text text{};
  if (pad > 0) {
    text.compression = PNG_TEXT_COMPRESSION_NONE;
    text.key = const_cast<char*>("Comment");
    text.text = padding.data();
    text.text_length = padding.size();
    png_set_text(png, info, &text, 1);
  }
  png_write_info(png, info);
  std::vector<unsigned char> row(static_cast<std::size_t>(w) * 3, 0x80);
  for (int y = 0; y < h; ++y) png_write_row(png, row.data());
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  std::fclose(f);
}

void write_jpeg(const fs::path& p, int w, int h, int unit, int xd, int yd) {
  FILE* f = std::fopen(p.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  jpeg_stdio_dest(&c, f);
  c.image_width = static_cast<JDIMENSION>(w);
  c.image_height = static_cast<JDIMENSION>(h);
  c.input_components = 3;
  c.in_color_space = JCS_RGB;
  jpeg_set_defaults(&c);
  c.density_unit = static_cast<UINT8>(unit);
  c.X_density = static_cast<UINT16>(xd);
  c.Y_density = static_cast<UINT16>(yd);
  jpeg_start_compress(&c, TRUE);
  std::vector<unsigned char> row(static_cast<std::size_t>(w) * 3, 0x40);
  while (c.next_scanline < c.image_height) {
    JSAMPROW r = row.data();
    jpeg_write_scanlines(&c, &r, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  std::fclose(f);
}

void write_tiff(const fs::path& p, int w, int h, float xres, float yres, std::uint16_t unit) {
  TIFF* t = TIFFOpen(p.c_str(), "w");
  ASSERT_NE(t, nullptr);
  TIFFSetField(t, TIFFTAG_IMAGEWIDTH, static_cast<std::uint32_t>(w));
  TIFFSetField(t, TIFFTAG_IMAGELENGTH, static_cast<std::uint32_t>(h));
  TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 4);
  TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
  TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_SEPARATED);  // CMYK, as print shops send
  TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
  TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, 4);
  TIFFSetField(t, TIFFTAG_XRESOLUTION, xres);
  TIFFSetField(t, TIFFTAG_YRESOLUTION, yres);
  TIFFSetField(t, TIFFTAG_RESOLUTIONUNIT, unit);
  std::vector<unsigned char> row(static_cast<std::size_t>(w) * 4, 0x10);
  for (int y = 0; y < h; ++y) TIFFWriteScanline(t, row.data(), static_cast<std::uint32_t>(y), 0);
  TIFFClose(t);
}

void put32(std::string& s, std::uint32_t v) {
  for (int i = 3; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void chunk(std::string& s, const char* type, const std::string& data) {
  put32(s, static_cast<std::uint32_t>(data.size()));
  std::string td = std::string(type, 4) + data;
  s += td;
  put32(s, static_cast<std::uint32_t>(
               crc32(0, reinterpret_cast<const Bytef*>(td.data()), static_cast<uInt>(td.size()))));
}
// Hand-crafted PNG whose IHDR claims w x h; IDAT holds 16 bytes of junk, never decoded.
std::string bomb_png(std::uint32_t w, std::uint32_t h) {
  std::string s = "\x89PNG\r\n\x1a\n";
  std::string ihdr;
  put32(ihdr, w);
  put32(ihdr, h);
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);
  chunk(s, "IHDR", ihdr);
  chunk(s, "IDAT", std::string(16, '\x01'));
  chunk(s, "IEND", "");
  return s;
}

template <class T>
const T& ok(const std::variant<T, pa::Problem>& v) {
  if (auto* p = std::get_if<pa::Problem>(&v)) ADD_FAILURE() << p->reason << ": " << p->message;
  static T empty{};
  return std::holds_alternative<T>(v) ? std::get<T>(v) : empty;
}
template <class T>
pa::Problem bad(const std::variant<T, pa::Problem>& v) {
  if (auto* p = std::get_if<pa::Problem>(&v)) return *p;
  ADD_FAILURE() << "expected a problem";
  return {};
}

// ---- probe --------------------------------------------------------------------------------------

TEST(Probe, PngSizeDpiChannels) {
  TempDir d;
  write_png(d.path / "a.png", 40, 30, 300);
  auto info = ok(pa::probe_image(d.path / "a.png", 1'000'000));
  EXPECT_EQ(info.format, "png");
  EXPECT_EQ(info.width, 40);
  EXPECT_EQ(info.height, 30);
  EXPECT_NEAR(info.dpi_x, 300.0, 0.01);
  EXPECT_NEAR(info.dpi_y, 300.0, 0.01);
  EXPECT_EQ(info.channels, 3);
  EXPECT_EQ(info.bit_depth, 8);
}

TEST(Probe, PngWithoutPhysHasNoDpi) {
  TempDir d;
  write_png(d.path / "a.png", 8, 8, 0);
  EXPECT_EQ(ok(pa::probe_image(d.path / "a.png", 1000)).dpi_x, 0.0);
}

TEST(Probe, JpegSizeAndJfifDensity) {
  TempDir d;
  write_jpeg(d.path / "a.jpg", 64, 32, 1, 300, 150);
  auto info = ok(pa::probe_image(d.path / "a.jpg", 1'000'000));
  EXPECT_EQ(info.format, "jpeg");
  EXPECT_EQ(info.width, 64);
  EXPECT_EQ(info.height, 32);
  EXPECT_DOUBLE_EQ(info.dpi_x, 300);
  EXPECT_DOUBLE_EQ(info.dpi_y, 150);
  EXPECT_EQ(info.channels, 3);
  EXPECT_EQ(info.bit_depth, 8);
  write_jpeg(d.path / "cm.jpg", 8, 8, 2, 100, 100);  // dots per cm
  EXPECT_NEAR(ok(pa::probe_image(d.path / "cm.jpg", 1000)).dpi_x, 254.0, 1e-9);
}

TEST(Probe, TiffSizeAndResolution) {
  TempDir d;
  write_tiff(d.path / "a.tif", 20, 10, 600, 300, RESUNIT_INCH);
  auto info = ok(pa::probe_image(d.path / "a.tif", 1'000'000));
  EXPECT_EQ(info.format, "tiff");
  EXPECT_EQ(info.width, 20);
  EXPECT_EQ(info.height, 10);
  EXPECT_DOUBLE_EQ(info.dpi_x, 600);
  EXPECT_DOUBLE_EQ(info.dpi_y, 300);
  EXPECT_EQ(info.channels, 4);
  EXPECT_EQ(info.bit_depth, 8);
  write_tiff(d.path / "cm.tif", 4, 4, 100, 100, RESUNIT_CENTIMETER);
  EXPECT_NEAR(ok(pa::probe_image(d.path / "cm.tif", 1000)).dpi_y, 254.0, 1e-3);
}

TEST(Probe, FormatComesFromMagicNotExtension) {
  TempDir d;
  write_png(d.path / "really-a-png.jpg", 4, 4, 0);
  EXPECT_EQ(ok(pa::probe_image(d.path / "really-a-png.jpg", 1000)).format, "png");
}

TEST(Probe, HugePngRefusedBeforeDecoding) {
  TempDir d;
  write_all(d.path / "bomb.png", bomb_png(100000, 100000));
  const auto t0 = std::chrono::steady_clock::now();
  auto p = bad(pa::probe_image(d.path / "bomb.png", 400'000'000));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 200ms);
  EXPECT_EQ(p.reason, pa::reason::too_many_pixels);
  EXPECT_NE(p.message.find("100000 x 100000"), std::string::npos) << p.message;
}

TEST(Probe, TooManyPixelsForJpegAndTiff) {
  TempDir d;
  write_jpeg(d.path / "a.jpg", 64, 32, 0, 1, 1);
  EXPECT_EQ(bad(pa::probe_image(d.path / "a.jpg", 1000)).reason, pa::reason::too_many_pixels);
  write_tiff(d.path / "a.tif", 40, 40, 300, 300, RESUNIT_INCH);
  EXPECT_EQ(bad(pa::probe_image(d.path / "a.tif", 1000)).reason, pa::reason::too_many_pixels);
}

TEST(Probe, TruncatedPngIsCorrupt) {
  TempDir d;
  write_png(d.path / "a.png", 64, 64, 300);
  const std::string full = read_all(d.path / "a.png");
  write_all(d.path / "after-ihdr.png", full.substr(0, 33));         // IHDR only
  write_all(d.path / "mid-data.png", full.substr(0, full.size() - 20));  // inside IDAT
  write_all(d.path / "in-header.png", full.substr(0, 20));
  for (const char* n : {"after-ihdr.png", "mid-data.png", "in-header.png"}) {
    auto p = bad(pa::probe_image(d.path / n, 1'000'000));
    EXPECT_EQ(p.reason, pa::reason::corrupt) << n << ": " << p.message;
  }
  std::string bad_crc = full;
  bad_crc[20] ^= 0x01;  // height byte of IHDR, CRC no longer matches
  write_all(d.path / "crc.png", bad_crc);
  EXPECT_EQ(bad(pa::probe_image(d.path / "crc.png", 1'000'000)).reason, pa::reason::corrupt);
}

TEST(Probe, TruncatedJpegAndTiffHeadersAreCorrupt) {
  TempDir d;
  write_jpeg(d.path / "a.jpg", 64, 32, 1, 300, 300);
  write_all(d.path / "t.jpg", read_all(d.path / "a.jpg").substr(0, 100));
  EXPECT_EQ(bad(pa::probe_image(d.path / "t.jpg", 1'000'000)).reason, pa::reason::corrupt);
  write_tiff(d.path / "a.tif", 64, 64, 300, 300, RESUNIT_INCH);
  const std::string tif = read_all(d.path / "a.tif");
  write_all(d.path / "t.tif", tif.substr(0, 6));
  EXPECT_EQ(bad(pa::probe_image(d.path / "t.tif", 1'000'000)).reason, pa::reason::corrupt);
}

TEST(Probe, UnsupportedFormats) {
  TempDir d;
  write_all(d.path / "a.gif", std::string("GIF89a\x01\x00\x01\x00\x00\x00\x00;", 14));
  auto p = bad(pa::probe_image(d.path / "a.gif", 1000));
  EXPECT_EQ(p.reason, pa::reason::unsupported_format);
  EXPECT_NE(p.message.find("GIF"), std::string::npos);
  write_all(d.path / "empty.png", "");
  EXPECT_EQ(bad(pa::probe_image(d.path / "empty.png", 1000)).reason, pa::reason::unsupported_format);
}

// ---- policy pieces ------------------------------------------------------------------------------

bool priv(const char* text) {
  sockaddr_storage ss{};
  if (::inet_pton(AF_INET, text, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr) == 1) {
    ss.ss_family = AF_INET;
  } else {
    EXPECT_EQ(::inet_pton(AF_INET6, text, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr), 1);
    ss.ss_family = AF_INET6;
  }
  return pa::detail::is_private_address(reinterpret_cast<sockaddr*>(&ss));
}

TEST(Policy, PrivateAddresses) {
  for (const char* a : {"127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
                        "169.254.169.254", "0.0.0.0", "::1", "::", "fe80::1", "fd00::1",
                        "fc12::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1"})
    EXPECT_TRUE(priv(a)) << a;
  for (const char* a : {"8.8.8.8", "172.32.0.1", "93.184.216.34", "2606:4700::1111",
                        "::ffff:8.8.8.8"})
    EXPECT_FALSE(priv(a)) << a;
}

TEST(Policy, HostAllowListAndSchemes) {
  pa::FetchPolicy pol;
  pol.allowed_hosts = {"art.example.com", "*.cdn.example.net"};
  auto allowed = [&](const std::string& uri) {
    return std::holds_alternative<std::monostate>(pa::detail::check_uri(uri, pol));
  };
  EXPECT_TRUE(allowed("https://art.example.com/a.png"));
  EXPECT_TRUE(allowed("https://ART.Example.com:8443/a.png"));
  EXPECT_TRUE(allowed("https://eu.cdn.example.net/a.png"));
  EXPECT_TRUE(allowed("https://a.b.cdn.example.net/a.png"));
  EXPECT_FALSE(allowed("https://cdn.example.net/a.png"));
  EXPECT_FALSE(allowed("https://evilcdn.example.net/a.png"));
  EXPECT_FALSE(allowed("https://art.example.com.evil.org/a.png"));
  EXPECT_FALSE(allowed("http://art.example.com/a.png"));
  EXPECT_FALSE(allowed("ftp://art.example.com/a.png"));
  EXPECT_FALSE(allowed("file:///etc/passwd"));  // no file_root
  EXPECT_FALSE(allowed("not a uri"));
  pol.allow_http = true;
  EXPECT_TRUE(allowed("http://art.example.com/a.png"));
}

TEST(Policy, RedactsSecretsInMessages) {
  EXPECT_EQ(pa::detail::redact_uri("https://user:pw@h.example.com/a.png?X-Amz-Signature=abc#f"),
            "https://h.example.com/a.png");
}

// ---- store over file:// -------------------------------------------------------------------------

struct FileStore : ::testing::Test {
  TempDir dir;
  fs::path root, cache;
  pa::FetchPolicy pol;
  void SetUp() override {
    root = dir.path / "art";
    cache = dir.path / "cache";
    fs::create_directories(root / "sub");
    pol.file_root = root;
    pol.max_pixels = 10'000'000;
  }
  std::string uri(const fs::path& p) { return "file://" + p.string(); }
};

TEST_F(FileStore, FetchVerifyProbeThenCacheHit) {
  write_png(root / "sub" / "a.png", 16, 16, 300);
  const std::string sha = sha_of(root / "sub" / "a.png");
  pa::Store store(cache, 1 << 20, pol);
  auto a = ok(store.get(uri(root / "sub" / "a.png"), sha));
  EXPECT_FALSE(a.from_cache);
  EXPECT_EQ(a.sha256, sha);
  EXPECT_EQ(a.path, cache / "objects" / sha);
  EXPECT_EQ(read_all(a.path), read_all(root / "sub" / "a.png"));
  EXPECT_EQ(a.info.width, 16);
  EXPECT_EQ(a.bytes, static_cast<std::int64_t>(fs::file_size(a.path)));
  // Upper-case hash and the source gone: still served from the cache.
  fs::remove(root / "sub" / "a.png");
  std::string upper = sha;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto b = ok(store.get(uri(root / "sub" / "a.png"), upper));
  EXPECT_TRUE(b.from_cache);
  EXPECT_EQ(b.info.dpi_x, a.info.dpi_x);
  auto s = store.stats();
  EXPECT_EQ(s.fetches, 1);
  EXPECT_EQ(s.hits, 1);
  EXPECT_EQ(s.entries, 1);
  EXPECT_EQ(s.bytes, a.bytes);
}

TEST_F(FileStore, WrongShaIsMismatchNamingBoth) {
  write_png(root / "a.png", 4, 4, 0);
  const std::string sha = sha_of(root / "a.png");
  const std::string wrong(64, 'a');
  pa::Store store(cache, 1 << 20, pol);
  auto p = bad(store.get(uri(root / "a.png"), wrong));
  EXPECT_EQ(p.reason, pa::reason::checksum_mismatch);
  EXPECT_NE(p.message.find(wrong), std::string::npos) << p.message;
  EXPECT_NE(p.message.find(sha), std::string::npos) << p.message;
  EXPECT_TRUE(fs::is_empty(cache / "objects"));
  EXPECT_TRUE(fs::is_empty(cache / "tmp"));
  EXPECT_EQ(bad(store.get(uri(root / "a.png"), "abc")).reason, pa::reason::checksum_mismatch);
  EXPECT_EQ(bad(store.get(uri(root / "a.png"), "../../../../etc/passwd")).reason,
            pa::reason::checksum_mismatch);
}

TEST_F(FileStore, DotDotEscapeRefused) {
  write_png(dir.path / "outside.png", 4, 4, 0);
  pa::Store store(cache, 1 << 20, pol);
  auto p = bad(store.get(uri(root) + "/sub/../../outside.png", sha_of(dir.path / "outside.png")));
  EXPECT_EQ(p.reason, pa::reason::path_not_allowed) << p.message;
  p = bad(store.get(uri(root) + "/%2e%2e/outside.png", sha_of(dir.path / "outside.png")));
  EXPECT_EQ(p.reason, pa::reason::path_not_allowed) << p.message;
  p = bad(store.get(uri(dir.path / "outside.png"), sha_of(dir.path / "outside.png")));
  EXPECT_EQ(p.reason, pa::reason::path_not_allowed) << p.message;
}

TEST_F(FileStore, SymlinkOutOfRootRefused) {
  write_png(dir.path / "outside.png", 4, 4, 0);
  fs::create_directories(dir.path / "elsewhere");
  write_png(dir.path / "elsewhere" / "b.png", 4, 4, 0);
  fs::create_symlink(dir.path / "outside.png", root / "link.png");
  fs::create_directory_symlink(dir.path / "elsewhere", root / "dirlink");
  pa::Store store(cache, 1 << 20, pol);
  auto p = bad(store.get(uri(root / "link.png"), sha_of(dir.path / "outside.png")));
  EXPECT_EQ(p.reason, pa::reason::path_not_allowed) << p.message;
  p = bad(store.get(uri(root / "dirlink" / "b.png"), sha_of(dir.path / "elsewhere" / "b.png")));
  EXPECT_EQ(p.reason, pa::reason::path_not_allowed) << p.message;
}

TEST_F(FileStore, MissingFileAndDirectory) {
  pa::Store store(cache, 1 << 20, pol);
  EXPECT_EQ(bad(store.get(uri(root / "nope.png"), std::string(64, '0'))).reason,
            pa::reason::not_found);
  EXPECT_EQ(bad(store.get(uri(root / "nodir" / "x.png"), std::string(64, '0'))).reason,
            pa::reason::not_found);
  EXPECT_EQ(bad(store.get(uri(root / "sub"), std::string(64, '0'))).reason,
            pa::reason::path_not_allowed);
}

TEST_F(FileStore, OverMaxBytesAndBadImagesAreNotCached) {
  write_png(root / "a.png", 32, 32, 0, 4000);
  write_all(root / "b.gif", "GIF89a-not-really");
  write_all(root / "bomb.png", bomb_png(100000, 100000));
  pol.max_bytes = 1000;
  pa::Store store(cache, 1 << 20, pol);
  EXPECT_EQ(bad(store.get(uri(root / "a.png"), sha_of(root / "a.png"))).reason,
            pa::reason::too_large);
  EXPECT_EQ(bad(store.get(uri(root / "b.gif"), sha_of(root / "b.gif"))).reason,
            pa::reason::unsupported_format);
  EXPECT_EQ(bad(store.get(uri(root / "bomb.png"), sha_of(root / "bomb.png"))).reason,
            pa::reason::too_many_pixels);
  EXPECT_EQ(store.stats().entries, 0);
  EXPECT_TRUE(fs::is_empty(cache / "objects"));
}

TEST_F(FileStore, LruEvictionUnderTheCap) {
  std::string sha[4];
  for (int i = 0; i < 4; ++i) {
    write_png(root / (std::to_string(i) + ".png"), 8, 8, 0, 1000, static_cast<char>('a' + i));
    sha[i] = sha_of(root / (std::to_string(i) + ".png"));
  }
  const auto one = static_cast<std::int64_t>(fs::file_size(root / "0.png"));
  pa::Store store(cache, 3 * one + one / 2, pol);  // room for three
  auto get = [&](int i) {
    auto a = ok(store.get(uri(root / (std::to_string(i) + ".png")), sha[i]));
    return a.from_cache;
  };
  EXPECT_FALSE(get(0));
  EXPECT_FALSE(get(1));
  EXPECT_FALSE(get(2));
  EXPECT_TRUE(get(0));   // 0 is now the most recently used, 1 the least
  EXPECT_FALSE(get(3));  // evicts 1
  EXPECT_EQ(store.stats().evictions, 1);
  EXPECT_FALSE(fs::exists(cache / "objects" / sha[1]));
  for (int i : {0, 2, 3}) EXPECT_TRUE(fs::exists(cache / "objects" / sha[i])) << i;
  EXPECT_LE(store.stats().bytes, 3 * one + one / 2);
  EXPECT_FALSE(get(1));  // fetched again, evicts 2
  EXPECT_FALSE(fs::exists(cache / "objects" / sha[2]));
  EXPECT_EQ(store.stats().fetches, 5);

  // A restarted store keeps the order (file mtime): 0 < 3 < 1 remain; touch 3, then 0 is oldest.
  {
    pa::Store again(cache, 3 * one + one / 2, pol);
    EXPECT_EQ(again.stats().entries, 3);
    EXPECT_TRUE(ok(again.get(uri(root / "3.png"), sha[3])).from_cache);
    EXPECT_FALSE(ok(again.get(uri(root / "2.png"), sha[2])).from_cache);  // evicts 0
    EXPECT_FALSE(fs::exists(cache / "objects" / sha[0]));
  }
}

TEST_F(FileStore, LeasedEntryIsNotEvicted) {
  std::string sha[2];
  for (int i = 0; i < 2; ++i) {
    write_png(root / (std::to_string(i) + ".png"), 8, 8, 0, 1000, static_cast<char>('a' + i));
    sha[i] = sha_of(root / (std::to_string(i) + ".png"));
  }
  const auto one = static_cast<std::int64_t>(fs::file_size(root / "0.png"));
  pa::Store store(cache, one + one / 2, pol);  // room for one
  auto held = ok(store.get(uri(root / "0.png"), sha[0]));
  auto other = ok(store.get(uri(root / "1.png"), sha[1]));
  EXPECT_TRUE(fs::exists(held.path));  // over the cap while both are held
  EXPECT_EQ(store.stats().evictions, 0);
  held = pa::Asset{};
  other = pa::Asset{};
  write_png(root / "2.png", 8, 8, 0, 1000, 'z');
  ok(store.get(uri(root / "2.png"), sha_of(root / "2.png")));
  EXPECT_EQ(store.stats().evictions, 2);
  EXPECT_EQ(store.stats().entries, 1);
}

TEST_F(FileStore, CorruptedCacheEntryIsDroppedAndRefetched) {
  write_png(root / "a.png", 8, 8, 0);
  const std::string sha = sha_of(root / "a.png");
  pa::Store store(cache, 1 << 20, pol);
  auto a = ok(store.get(uri(root / "a.png"), sha));
  std::string bytes = read_all(a.path);
  bytes[bytes.size() / 2] ^= 0x55;
  fs::permissions(a.path, fs::perms::owner_write, fs::perm_options::add);
  write_all(a.path, bytes);
  auto b = ok(store.get(uri(root / "a.png"), sha));
  EXPECT_FALSE(b.from_cache);
  EXPECT_EQ(sha_of(b.path), sha);
  EXPECT_EQ(store.stats().dropped, 1);
  EXPECT_EQ(store.stats().fetches, 2);
}

TEST_F(FileStore, NoFileRootMeansNoFileUris) {
  write_png(root / "a.png", 8, 8, 0);
  pol.file_root.clear();
  pa::Store store(cache, 1 << 20, pol);
  EXPECT_EQ(bad(store.get(uri(root / "a.png"), sha_of(root / "a.png"))).reason,
            pa::reason::uri_not_allowed);
}

// ---- https:// against a real local TLS server ---------------------------------------------------

class HttpsServer {
 public:
  TempDir dir;
  fs::path files, log, pki;
  int port = 0;
  pid_t pid = -1;

  HttpsServer() {
    files = dir.path / "files";
    pki = PRESSLINE_ASSETS_PKI;  // generated at build time (tests/assets/CMakeLists.txt)
    log = dir.path / "requests.log";
    fs::create_directories(files);
    int out[2];
    if (::pipe(out) != 0) throw std::runtime_error("pipe");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    const std::string script = std::string(PRESSLINE_SOURCE_DIR) + "/tests/fixtures/https/server.py";
    const std::string crt = (pki / "server.crt").string(), key = (pki / "server.key").string();
    const std::string root = files.string(), logs = log.string();
    const char* argv[] = {"python3", script.c_str(), "--cert", crt.c_str(), "--key", key.c_str(),
                          "--root", root.c_str(), "--log", logs.c_str(), nullptr};
    if (posix_spawnp(&pid, "python3", &fa, nullptr, const_cast<char* const*>(argv), environ) != 0)
      throw std::runtime_error("cannot start python3");
    posix_spawn_file_actions_destroy(&fa);
    ::close(out[1]);
    std::string line;
    pollfd p{out[0], POLLIN, 0};
    while (line.find('\n') == std::string::npos && ::poll(&p, 1, 10'000) > 0) {
      char buf[64];
      ssize_t n = ::read(out[0], buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<std::size_t>(n));
    }
    ::close(out[0]);
    if (std::sscanf(line.c_str(), "PORT %d", &port) != 1)
      throw std::runtime_error("https fixture did not start: " + line);
  }
  ~HttpsServer() {
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
  }
  std::string url(const std::string& host, const std::string& path) const {
    return "https://" + host + ":" + std::to_string(port) + path;
  }
  int requests(const std::string& path) const {
    std::ifstream in(log);
    int n = 0;
    for (std::string l; std::getline(in, l);) n += l == path;
    return n;
  }
  int total_requests() const {
    std::ifstream in(log);
    int n = 0;
    for (std::string l; std::getline(in, l);) ++n;
    return n;
  }
};

struct Https : ::testing::Test {
  static inline std::unique_ptr<HttpsServer> server;
  static void SetUpTestSuite() { server = std::make_unique<HttpsServer>(); }
  static void TearDownTestSuite() { server.reset(); }

  TempDir cache;
  pa::FetchPolicy pol;
  std::string sha_a;
  void SetUp() override {
    pol.allowed_hosts = {"localhost"};
    pol.allow_private_addresses = true;  // the fixture is on loopback
    pol.ca_file = server->pki / "ca.crt";
    pol.connect_timeout = 2s;
    pol.total_timeout = 10s;
    if (!fs::exists(server->files / "a.png")) write_png(server->files / "a.png", 24, 12, 300);
    sha_a = sha_of(server->files / "a.png");
  }
  std::string url(const std::string& path) const { return server->url("localhost", path); }
};

TEST_F(Https, FetchVerifyThenCacheHitWithOneRequest) {
  pa::Store store(cache.path, 1 << 20, pol);
  auto a = ok(store.get(url("/files/a.png?sig=1"), sha_a));
  EXPECT_FALSE(a.from_cache);
  EXPECT_EQ(a.info.format, "png");
  EXPECT_EQ(a.info.width, 24);
  EXPECT_NEAR(a.info.dpi_x, 300, 0.01);
  auto b = ok(store.get(url("/files/a.png?sig=1"), sha_a));
  EXPECT_TRUE(b.from_cache);
  EXPECT_EQ(server->requests("/files/a.png?sig=1"), 1);
  EXPECT_EQ(store.stats().fetches, 1);
  EXPECT_EQ(store.stats().hits, 1);
}

TEST_F(Https, WrongSha256) {
  pa::Store store(cache.path, 1 << 20, pol);
  auto p = bad(store.get(url("/files/a.png?X-Amz-Signature=secret"), std::string(64, 'b')));
  EXPECT_EQ(p.reason, pa::reason::checksum_mismatch);
  EXPECT_NE(p.message.find(sha_a), std::string::npos) << p.message;
  EXPECT_EQ(p.message.find("secret"), std::string::npos) << p.message;
}

TEST_F(Https, NotFoundAndServerError) {
  pa::Store store(cache.path, 1 << 20, pol);
  auto p = bad(store.get(url("/files/missing.png"), sha_a));
  EXPECT_EQ(p.reason, pa::reason::not_found);
  EXPECT_NE(p.message.find("404"), std::string::npos) << p.message;
  p = bad(store.get(url("/status/503"), sha_a));
  EXPECT_EQ(p.reason, pa::reason::fetch_failed);
  EXPECT_NE(p.message.find("503"), std::string::npos) << p.message;
}

TEST_F(Https, DisallowedHostAndSchemeNeverConnect) {
  pa::Store store(cache.path, 1 << 20, pol);
  const int before = server->total_requests();
  EXPECT_EQ(bad(store.get(server->url("127.0.0.1", "/files/a.png"), sha_a)).reason,
            pa::reason::uri_not_allowed);
  EXPECT_EQ(bad(store.get("http://localhost:" + std::to_string(server->port) + "/files/a.png",
                          sha_a)).reason,
            pa::reason::uri_not_allowed);
  EXPECT_EQ(server->total_requests(), before);
}

TEST_F(Https, LoopbackRefusedByDefault) {
  pol.allow_private_addresses = false;
  pa::Store store(cache.path, 1 << 20, pol);
  const int before = server->total_requests();
  auto p = bad(store.get(url("/files/a.png"), sha_a));
  EXPECT_EQ(p.reason, pa::reason::uri_not_allowed);
  EXPECT_NE(p.message.find("private address"), std::string::npos) << p.message;
  EXPECT_EQ(server->total_requests(), before);
}

TEST_F(Https, UntrustedCertificateFails) {
  pol.ca_file.clear();  // system store only: the test CA is unknown
  pa::Store store(cache.path, 1 << 20, pol);
  EXPECT_EQ(bad(store.get(url("/files/a.png"), sha_a)).reason, pa::reason::fetch_failed);
}

TEST_F(Https, SameHostRedirectFollowedOtherHostRefused) {
  pa::Store store(cache.path, 1 << 20, pol);
  auto p = bad(store.get(url("/redirect-other/a.png"), sha_a));
  EXPECT_EQ(p.reason, pa::reason::uri_not_allowed);
  EXPECT_NE(p.message.find("127.0.0.1"), std::string::npos) << p.message;
  EXPECT_EQ(server->requests("/files/a.png"), 0);
  EXPECT_EQ(bad(store.get(url("/redirect-loop"), sha_a)).reason, pa::reason::fetch_failed);
  auto a = ok(store.get(url("/redirect-same/a.png"), sha_a));
  EXPECT_EQ(a.info.width, 24);
}

TEST_F(Https, BodyOverMaxBytes) {
  pol.max_bytes = 256 * 1024;
  pa::Store store(cache.path, 1 << 20, pol);
  auto p = bad(store.get(url("/big-declared"), sha_a));
  EXPECT_EQ(p.reason, pa::reason::too_large) << p.message;
  p = bad(store.get(url("/big-undeclared"), sha_a));
  EXPECT_EQ(p.reason, pa::reason::too_large) << p.message;
  EXPECT_TRUE(fs::is_empty(cache.path / "tmp"));
}

TEST_F(Https, SlowServerHitsTheLowSpeedLimit) {
  pol.low_speed_bytes_per_s = 100;
  pol.low_speed_time = 1s;
  pa::Store store(cache.path, 1 << 20, pol);
  const auto t0 = std::chrono::steady_clock::now();
  auto p = bad(store.get(url("/slow"), sha_a));
  EXPECT_EQ(p.reason, pa::reason::fetch_failed) << p.message;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}

TEST_F(Https, ConcurrentGetOfOneKeyFetchesOnce) {
  pa::Store store(cache.path, 1 << 20, pol);
  const std::string u = url("/delay/400/a.png");
  std::atomic<int> ok_count{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&] {
      auto r = store.get(u, sha_a);
      if (std::holds_alternative<pa::Asset>(r)) ++ok_count;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok_count, 4);
  EXPECT_EQ(server->requests("/delay/400/a.png"), 1);
  auto s = store.stats();
  EXPECT_EQ(s.fetches, 1);
  EXPECT_EQ(s.hits, 3);    // the others are served from the cache once the fetch is in
  EXPECT_GE(s.joined, 1);  // and at least one of them waited for it (the fetch takes 400 ms)
}

}  // namespace

// ---- decode_image: libpng / libjpeg / libtiff, compared with OpenCV's own decoders ----------

namespace {

// A test pattern: colour gradients and an alpha ramp (0..255 across the width).
cv::Mat pattern_bgra(int w, int h) {
  cv::Mat m(h, w, CV_8UC4);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      m.at<cv::Vec4b>(y, x) = cv::Vec4b(static_cast<uchar>(x * 255 / (w - 1)), static_cast<uchar>(y * 255 / (h - 1)),
                                        static_cast<uchar>((x + y) % 256), static_cast<uchar>(x * 255 / (w - 1)));
  return m;
}

cv::Mat decoded(const fs::path& p) {
  auto r = pa::decode_image(p, 1'000'000'000);
  if (auto* prob = std::get_if<pa::Problem>(&r)) ADD_FAILURE() << prob->reason << ": " << prob->message;
  return std::holds_alternative<cv::Mat>(r) ? std::get<cv::Mat>(r) : cv::Mat();
}

double max_diff(const cv::Mat& a, const cv::Mat& b, const cv::Mat& mask = {}) {
  double m = 0;
  cv::minMaxLoc(cv::abs(a - b), nullptr, &m, nullptr, nullptr, mask);
  return m;
}

}  // namespace

TEST(Decode, PngWithAlphaMatchesOpenCV) {
  TempDir d;
  const fs::path p = d.path / "a.png";
  const cv::Mat src = pattern_bgra(257, 131);
  ASSERT_TRUE(cv::imwrite(p.string(), src));
  const cv::Mat got = decoded(p);
  ASSERT_EQ(got.type(), CV_8UC4);
  EXPECT_EQ(max_diff(got, src), 0.0);  // straight alpha, exact
}

TEST(Decode, SixteenBitGrayPngBecomesEightBitBgra) {
  TempDir d;
  const fs::path p = d.path / "g16.png";
  cv::Mat g16(64, 300, CV_16UC1);
  for (int x = 0; x < g16.cols; ++x) g16.col(x).setTo(x * 65535 / (g16.cols - 1));
  ASSERT_TRUE(cv::imwrite(p.string(), g16));
  const cv::Mat got = decoded(p);
  ASSERT_EQ(got.type(), CV_8UC4);
  cv::Mat g8;
  g16.convertTo(g8, CV_8U, 1.0 / 257);
  std::vector<cv::Mat> ch;
  cv::split(got, ch);
  for (int c = 0; c < 3; ++c) EXPECT_LE(max_diff(ch[c], g8), 1.0) << "channel " << c;
  EXPECT_EQ(cv::countNonZero(ch[3] != 255), 0);  // opaque
}

TEST(Decode, JpegMatchesOpenCVAndIsOpaque) {
  TempDir d;
  const fs::path p = d.path / "a.jpg";
  cv::Mat bgr;
  cv::cvtColor(pattern_bgra(320, 200), bgr, cv::COLOR_BGRA2BGR);
  ASSERT_TRUE(cv::imwrite(p.string(), bgr, {cv::IMWRITE_JPEG_QUALITY, 90}));
  const cv::Mat ref = cv::imread(p.string(), cv::IMREAD_COLOR);
  const cv::Mat got = decoded(p);
  ASSERT_EQ(got.type(), CV_8UC4);
  cv::Mat got_bgr;
  cv::cvtColor(got, got_bgr, cv::COLOR_BGRA2BGR);
  EXPECT_LE(max_diff(got_bgr, ref), 1.0);
  std::vector<cv::Mat> ch;
  cv::split(got, ch);
  EXPECT_EQ(cv::countNonZero(ch[3] != 255), 0);
}

TEST(Decode, TiffWithAlphaComesBackWithStraightAlpha) {
  TempDir d;
  const fs::path p = d.path / "a.tif";
  const cv::Mat src = pattern_bgra(200, 100);
  ASSERT_TRUE(cv::imwrite(p.string(), src));
  const cv::Mat got = decoded(p);
  ASSERT_EQ(got.type(), CV_8UC4);
  std::vector<cv::Mat> gs, ss;
  cv::split(got, gs);
  cv::split(src, ss);
  EXPECT_EQ(max_diff(gs[3], ss[3]), 0.0);  // alpha exact
  // Colours where the ink is at least half: libtiff premultiplies, we undo it (rounding).
  const cv::Mat half = ss[3] >= 128;
  for (int c = 0; c < 3; ++c) EXPECT_LE(max_diff(gs[c], ss[c], half), 2.0) << "channel " << c;
}

TEST(Decode, BrokenImageDataIsCorruptNotACrash) {
  TempDir d;
  const fs::path p = d.path / "broken.png";
  const cv::Mat src = pattern_bgra(300, 300);
  std::vector<uchar> buf;
  ASSERT_TRUE(cv::imencode(".png", src, buf));
  // Damage the middle of the compressed data but keep the header and IEND intact.
  for (std::size_t i = buf.size() / 2; i < buf.size() / 2 + 64; ++i) buf[i] ^= 0x5a;
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(buf.data()), static_cast<std::streamsize>(buf.size()));
  auto r = pa::decode_image(p, 1'000'000'000);
  ASSERT_TRUE(std::holds_alternative<pa::Problem>(r));
  EXPECT_EQ(std::get<pa::Problem>(r).reason, "asset_corrupt") << std::get<pa::Problem>(r).message;
}

TEST(Decode, TiffWithUnassociatedAlphaIsNotPremultiplied) {
  // Written with libtiff as design tools do: RGBA, ExtraSamples = unassociated alpha.
  TempDir d;
  const fs::path p = d.path / "ua.tif";
  {
    TIFF* t = TIFFOpen(p.c_str(), "w");
    ASSERT_NE(t, nullptr);
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, 4u);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, 1u);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 4);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB);
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    const std::uint16_t extra[] = {EXTRASAMPLE_UNASSALPHA};
    TIFFSetField(t, TIFFTAG_EXTRASAMPLES, 1, extra);
    unsigned char row[16] = {200, 100, 50, 255, 200, 100, 50, 128, 200, 100, 50, 64, 200, 100, 50, 0};
    ASSERT_EQ(TIFFWriteScanline(t, row, 0, 0), 1);
    TIFFClose(t);
  }
  const cv::Mat got = decoded(p);
  ASSERT_EQ(got.type(), CV_8UC4);
  for (int x = 0; x < 3; ++x) {  // alpha 255, 128, 64: the colour stays (R 200, G 100, B 50)
    const auto px = got.at<cv::Vec4b>(0, x);
    EXPECT_NEAR(px[2], 200, 2) << x;
    EXPECT_NEAR(px[1], 100, 2) << x;
    EXPECT_NEAR(px[0], 50, 2) << x;
  }
  EXPECT_EQ(got.at<cv::Vec4b>(0, 1)[3], 128);
}
