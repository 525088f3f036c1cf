// Tests of devices/render: geometry, resampling, and the print files read back with real
// decoders (OpenCV, libpng) and rasterised with real poppler (pdftoppm, pdfinfo).
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <png.h>

#include "pressline/devices/render.hpp"

namespace fs = std::filesystem;
using namespace pressline::devices::render;

namespace {

constexpr double kDpi = 100;   // 16x20 platen -> 1600 x 2000 px: fast, still a real test
const cv::Vec4b kRed(0, 0, 255, 255);      // BGRA
const cv::Vec4b kBlue(255, 0, 0, 255);

Platen platen16x20() { return std::get<Platen>(platen_from_name("16x20")); }

PrintFileMeta meta(double dpi = kDpi) {
    return PrintFileMeta{"J-42", dpi, "sRGB IEC61966-2.1", "navy", {0x1f, 0x2a, 0x44}};
}

// Solid red with a 1-px blue border and a blue corner marker at the top-left.
cv::Mat artwork_bgra(int w, int h) {
    cv::Mat m(h, w, CV_8UC4, cv::Scalar(kRed));
    cv::rectangle(m, cv::Rect(0, 0, w, h), cv::Scalar(kBlue), 1);
    cv::rectangle(m, cv::Rect(0, 0, 10, 10), cv::Scalar(kBlue), cv::FILLED);
    return m;
}

Reference must_ref(const cv::Mat& art, const Placement& p, double dpi = kDpi) {
    auto r = make_reference(art, platen16x20(), p, dpi);
    if (auto* pr = std::get_if<Problem>(&r)) {
        ADD_FAILURE() << pr->reason << ": " << pr->message;
        return {};
    }
    return std::get<Reference>(std::move(r));
}

// Independent expectation: each edge rounded to the nearest pixel edge.
cv::Rect expected_px(const Placement& p, double aspect_h_over_w, double dpi) {
    const double ppm = dpi / 25.4;
    const double x = 406.4 / 2 + p.offset_x_mm - p.width_mm / 2;
    const double y = p.offset_y_mm;
    const double h = p.width_mm * aspect_h_over_w;
    const int x0 = static_cast<int>(std::lround(x * ppm));
    const int x1 = static_cast<int>(std::lround((x + p.width_mm) * ppm));
    const int y0 = static_cast<int>(std::lround(y * ppm));
    const int y1 = static_cast<int>(std::lround((y + h) * ppm));
    return {x0, y0, x1 - x0, y1 - y0};
}

void expect_near_rect(const cv::Rect& got, const cv::Rect& want, int tol, const std::string& what) {
    EXPECT_LE(std::abs(got.x - want.x), tol) << what << " got " << got << " want " << want;
    EXPECT_LE(std::abs(got.y - want.y), tol) << what << " got " << got << " want " << want;
    EXPECT_LE(std::abs(got.br().x - want.br().x), tol) << what << " got " << got << " want " << want;
    EXPECT_LE(std::abs(got.br().y - want.br().y), tol) << what << " got " << got << " want " << want;
}

// Bounding box of pixels that carry ink: alpha > 0 for 4 channels, "clearly not white" else.
cv::Rect ink_bbox(const cv::Mat& img) {
    cv::Mat mask;
    if (img.channels() == 4) {
        cv::extractChannel(img, mask, 3);
        mask = mask > 0;
    } else {
        cv::Mat gray;
        cv::cvtColor(img, gray, cv::COLOR_BGR2GRAY);
        mask = gray < 200;
    }
    std::vector<cv::Point> pts;
    cv::findNonZero(mask, pts);
    return pts.empty() ? cv::Rect() : cv::boundingRect(pts);
}

std::string run(const std::string& cmd) {
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) return out;
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    const int rc = ::pclose(p);
    EXPECT_EQ(rc, 0) << cmd << "\n" << out;
    return out;
}

cv::Mat rasterise_pdf(const fs::path& pdf, double dpi) {
    const auto stem = pdf.parent_path() / "raster";
    run(fmt::format("pdftoppm -r {} -png -singlefile '{}' '{}' 2>&1", dpi, pdf.string(),
                    stem.string()));
    return cv::imread(stem.string() + ".png", cv::IMREAD_COLOR);
}

std::string sanitize(std::string s) {
    for (char& c : s) if (c == '/') c = '_';
    return s;
}

class RenderTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               fmt::format("render_test-{}-{}", ::getpid(),
                           sanitize(::testing::UnitTest::GetInstance()->current_test_info()->name()));
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override {
        if (!HasFailure()) fs::remove_all(dir_);
    }
    fs::path dir_;
};


}  // namespace

// ---------------------------------------------------------------- platen and geometry

TEST(Platen, ParsesInches) {
    auto p = std::get<Platen>(platen_from_name("16x20"));
    EXPECT_DOUBLE_EQ(p.width_mm, 406.4);
    EXPECT_DOUBLE_EQ(p.height_mm, 508.0);
    auto q = std::get<Platen>(platen_from_name("14.5x16"));
    EXPECT_DOUBLE_EQ(q.width_mm, 14.5 * 25.4);
    for (const char* bad : {"", "16", "x20", "16x", "16x-2", "0x20", "abcxdef", "16x20x3"}) {
        auto r = platen_from_name(bad);
        ASSERT_TRUE(std::holds_alternative<Problem>(r)) << bad;
        EXPECT_EQ(std::get<Problem>(r).reason, "invalid_platen") << bad;
    }
}

TEST(Geometry, BoxConsistentWithPixels) {
    const Placement p{280, 12.3, 75};
    const cv::Mat art = artwork_bgra(300, 400);
    for (double dpi : {72.0, 100.0, 150.0, 300.0}) {
        const Reference ref = must_ref(art, p, dpi);
        const double ppm = dpi / 25.4;
        EXPECT_DOUBLE_EQ(ref.px_per_mm, ppm);
        EXPECT_EQ(ref.bgra.cols, ref.box_px.width);
        EXPECT_EQ(ref.bgra.rows, ref.box_px.height);
        EXPECT_DOUBLE_EQ(ref.box_mm.width, ref.bgra.cols / ppm);
        EXPECT_DOUBLE_EQ(ref.box_mm.x, ref.box_px.x / ppm);
        EXPECT_DOUBLE_EQ(ref.box_mm.y, ref.box_px.y / ppm);
        // Every edge within half a pixel of the nominal placement.
        const double half = 0.5 / ppm + 1e-9;
        EXPECT_NEAR(ref.box_mm.x, 203.2 + 12.3 - 140, half);
        EXPECT_NEAR(ref.box_mm.x + ref.box_mm.width, 203.2 + 12.3 + 140, half);
        EXPECT_NEAR(ref.box_mm.y, 75, half);
        EXPECT_NEAR(ref.box_mm.y + ref.box_mm.height, 75 + 280.0 * 4 / 3, half);
        const cv::Rect want = expected_px(p, 4.0 / 3.0, dpi);
        EXPECT_EQ(cv::Rect(ref.box_px.x, ref.box_px.y, ref.box_px.width, ref.box_px.height), want);
        EXPECT_EQ(ref.platen_px, cv::Size(static_cast<int>(std::lround(406.4 * ppm)),
                                          static_cast<int>(std::lround(508 * ppm))));
    }
}

TEST(Geometry, FullPlatenWidthFits) {
    const Reference ref = must_ref(artwork_bgra(160, 100), Placement{406.4, 0, 0});
    EXPECT_EQ(ref.box_px.x, 0);
    EXPECT_EQ(ref.box_px.width, 1600);
}

TEST(Geometry, OutOfPlatenIsAProblem) {
    const cv::Mat art = artwork_bgra(200, 200);
    struct Case { Placement p; std::string edge; std::string mm; };
    for (const auto& c : {Case{{450, 0, 0}, "left", "21.80 mm"},
                          Case{{200, 150, 0}, "right", "46.80 mm"},
                          Case{{200, -120, 10}, "left", "16.80 mm"},
                          Case{{200, 0, -5}, "top", "5.00 mm"},
                          Case{{200, 0, 400}, "bottom", "92.00 mm"}}) {
        auto r = make_reference(art, platen16x20(), c.p, kDpi);
        ASSERT_TRUE(std::holds_alternative<Problem>(r));
        const auto& pr = std::get<Problem>(r);
        EXPECT_EQ(pr.reason, "placement_out_of_platen");
        EXPECT_NE(pr.message.find(c.mm + " beyond the " + c.edge + " edge"), std::string::npos)
            << pr.message;
    }
}

TEST(Geometry, BadInputsAreProblems) {
    const cv::Mat art = artwork_bgra(20, 20);
    auto reason = [](const Result<Reference>& r) {
        return std::holds_alternative<Problem>(r) ? std::get<Problem>(r).reason : "ok";
    };
    EXPECT_EQ(reason(make_reference(cv::Mat(), platen16x20(), {100, 0, 0}, kDpi)), "artwork_empty");
    EXPECT_EQ(reason(make_reference(art, platen16x20(), {0, 0, 0}, kDpi)), "invalid_placement");
    EXPECT_EQ(reason(make_reference(art, platen16x20(), {-5, 0, 0}, kDpi)), "invalid_placement");
    EXPECT_EQ(reason(make_reference(art, platen16x20(), {NAN, 0, 0}, kDpi)), "invalid_placement");
    EXPECT_EQ(reason(make_reference(art, platen16x20(), {100, 0, 0}, 0)), "invalid_dpi");
    EXPECT_EQ(reason(make_reference(art, Platen{"bad", 0, 10}, {100, 0, 0}, kDpi)),
              "invalid_platen");
    EXPECT_EQ(reason(make_reference(cv::Mat(10, 10, CV_32FC3), platen16x20(), {100, 0, 0}, kDpi)),
              "artwork_unsupported");
    EXPECT_EQ(reason(make_reference(art, platen16x20(), {100, 0, 0}, kDpi)), "ok");
}

// ---------------------------------------------------------------- pixel formats and alpha

TEST(Pixels, SixteenBitAndGray) {
    cv::Mat g16(100, 100, CV_16UC1, cv::Scalar(65535));
    g16(cv::Rect(0, 0, 50, 100)).setTo(257 * 100);
    const Reference a = must_ref(g16, {25.4, 0, 0});   // 100 px: identity
    ASSERT_EQ(a.bgra.size(), cv::Size(100, 100));
    EXPECT_EQ(a.bgra.at<cv::Vec4b>(50, 10), cv::Vec4b(100, 100, 100, 255));
    EXPECT_EQ(a.bgra.at<cv::Vec4b>(50, 90), cv::Vec4b(255, 255, 255, 255));
    EXPECT_TRUE(a.opaque);

    cv::Mat c16(300, 300, CV_16UC3, cv::Scalar(0, 257 * 20, 65535));
    const Reference b = must_ref(c16, {25.4, 0, 0});   // 300 -> 100 px (INTER_AREA)
    ASSERT_EQ(b.bgra.size(), cv::Size(100, 100));
    EXPECT_EQ(b.bgra.at<cv::Vec4b>(50, 50), cv::Vec4b(0, 20, 255, 255));

    cv::Mat g8(40, 40, CV_8UC1, cv::Scalar(77));
    const Reference c = must_ref(g8, {25.4, 0, 0});    // 40 -> 100 px (cubic)
    ASSERT_EQ(c.bgra.size(), cv::Size(100, 100));
    EXPECT_EQ(c.bgra.at<cv::Vec4b>(50, 50), cv::Vec4b(77, 77, 77, 255));
}

TEST(Pixels, GrayAlphaAndHalfTransparentStaysHalf) {
    // Gray + alpha, 16-bit: left half alpha ~50 %, right half opaque.
    cv::Mat ga(200, 200, CV_16UC2, cv::Scalar(257 * 60, 65535));
    ga(cv::Rect(0, 0, 100, 200)).setTo(cv::Scalar(257 * 60, 257 * 128));
    for (double width : {50.8 /* identity */, 25.4 /* 2x down */, 101.6 /* 2x up */}) {
        const Reference r = must_ref(ga, {width, 0, 0});
        const int w = r.bgra.cols;
        const cv::Vec4b left = r.bgra.at<cv::Vec4b>(w / 2, w / 4);
        const cv::Vec4b right = r.bgra.at<cv::Vec4b>(w / 2, 3 * w / 4);
        EXPECT_NEAR(left[3], 128, 1) << width;
        EXPECT_EQ(right[3], 255) << width;
        EXPECT_NEAR(left[0], 60, 1) << width;   // straight alpha: colour not darkened
        EXPECT_EQ(left[0], left[1]);
        EXPECT_EQ(left[1], left[2]);
        EXPECT_FALSE(r.opaque);
    }
    // Fully transparent black surroundings must not darken a resampled edge.
    cv::Mat bgra(100, 100, CV_8UC4, cv::Scalar(0, 0, 0, 0));
    bgra(cv::Rect(25, 25, 50, 50)).setTo(cv::Scalar(255, 255, 255, 255));
    const Reference d = must_ref(bgra, {10.0, 0, 0});   // 100 -> 39 px
    for (int y = 0; y < d.bgra.rows; ++y) {
        for (int x = 0; x < d.bgra.cols; ++x) {
            const auto px = d.bgra.at<cv::Vec4b>(y, x);
            if (px[3] > 10) {
                ASSERT_GE(px[0], 250) << "dark fringe at " << x << "," << y;
            }
        }
    }
}

// ---------------------------------------------------------------- print files

struct PlacementCase {
    const char* name;
    Placement p;
};

class PrintFiles : public RenderTest, public ::testing::WithParamInterface<PlacementCase> {};

TEST_P(PrintFiles, ArtworkLandsAtItsBoxInPngJpegAndPdf) {
    const Placement p = GetParam().p;
    const cv::Mat art = artwork_bgra(400, 300);
    const Reference ref = must_ref(art, p);
    const cv::Rect want = expected_px(p, 0.75, kDpi);
    ASSERT_EQ(cv::Rect(ref.box_px.x, ref.box_px.y, ref.box_px.width, ref.box_px.height), want);

    // PNG: transparent outside, exact box inside.
    const auto png = std::get<fs::path>(write_print_file(dir_ / "job.png", PrintFormat::png, ref, meta()));
    const cv::Mat png_img = cv::imread(png.string(), cv::IMREAD_UNCHANGED);
    ASSERT_EQ(png_img.type(), CV_8UC4);
    ASSERT_EQ(png_img.size(), cv::Size(1600, 2000));
    expect_near_rect(ink_bbox(png_img), want, 0, "png");
    // The corner marker is top-left (collar at the top, seen from above: no mirroring).
    EXPECT_EQ(png_img.at<cv::Vec4b>(want.y + 1, want.x + 1), kBlue);
    EXPECT_EQ(png_img.at<cv::Vec4b>(want.y + want.height / 2, want.x + want.width / 2), kRed);

    // JPEG: white outside.
    const auto jpg = std::get<fs::path>(write_print_file(dir_ / "job.jpg", PrintFormat::jpeg, ref, meta()));
    const cv::Mat jpg_img = cv::imread(jpg.string(), cv::IMREAD_UNCHANGED);
    ASSERT_EQ(jpg_img.type(), CV_8UC3);
    ASSERT_EQ(jpg_img.size(), cv::Size(1600, 2000));
    expect_near_rect(ink_bbox(jpg_img), want, 1, "jpeg");

    // PDF, rasterised by poppler at the same dpi.
    const auto pdf = std::get<fs::path>(write_print_file(dir_ / "job.pdf", PrintFormat::pdf, ref, meta()));
    const cv::Mat raster = rasterise_pdf(pdf, kDpi);
    ASSERT_FALSE(raster.empty());
    EXPECT_EQ(raster.size(), cv::Size(1600, 2000));
    expect_near_rect(ink_bbox(raster), want, 1, "pdf");
    const cv::Vec3b centre = raster.at<cv::Vec3b>(want.y + want.height / 2, want.x + want.width / 2);
    EXPECT_LT(centre[0], 20);
    EXPECT_GT(centre[2], 235);
    const cv::Vec3b marker = raster.at<cv::Vec3b>(want.y + 4, want.x + 4);
    EXPECT_GT(marker[0], 235);
    EXPECT_LT(marker[2], 20);

    // Sidecars exist and carry the job.
    for (const char* f : {"job.png.json", "job.jpg.json", "job.pdf.json"}) {
        std::ifstream in(dir_ / f);
        const auto j = nlohmann::json::parse(in);
        EXPECT_EQ(j["job"]["job_id"], "J-42") << f;
        EXPECT_EQ(j["box_px"]["x"], want.x) << f;
    }
}

INSTANTIATE_TEST_SUITE_P(
    Offsets, PrintFiles,
    ::testing::Values(PlacementCase{"centred", {280, 0, 75}},
                      PlacementCase{"right", {150, 83.7, 20.3}},
                      PlacementCase{"left", {180, -101.9, 210.55}},
                      PlacementCase{"corner", {100, -153.2, 0}}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

TEST_F(RenderTest, HalfTransparencySurvivesEveryFormat) {
    cv::Mat art(200, 200, CV_8UC4, cv::Scalar(0, 0, 255, 128));   // red at 50 %
    const Reference ref = must_ref(art, {50.8, 0, 50});
    const cv::Point c(ref.box_px.x + 100, ref.box_px.y + 100);

    const auto png = std::get<fs::path>(write_print_file(dir_ / "a.png", PrintFormat::png, ref, meta()));
    const cv::Mat png_img = cv::imread(png.string(), cv::IMREAD_UNCHANGED);
    EXPECT_EQ(png_img.at<cv::Vec4b>(c), cv::Vec4b(0, 0, 255, 128));

    const auto jpg = std::get<fs::path>(write_print_file(dir_ / "a.jpg", PrintFormat::jpeg, ref, meta()));
    const cv::Vec3b j = cv::imread(jpg.string()).at<cv::Vec3b>(c);   // red at 50 % over white
    EXPECT_NEAR(j[0], 127, 4);
    EXPECT_NEAR(j[1], 127, 4);
    EXPECT_NEAR(j[2], 255, 4);

    const auto pdf = std::get<fs::path>(write_print_file(dir_ / "a.pdf", PrintFormat::pdf, ref, meta()));
    const cv::Vec3b r = rasterise_pdf(pdf, kDpi).at<cv::Vec3b>(c);
    EXPECT_NEAR(r[0], 127, 4);
    EXPECT_NEAR(r[1], 127, 4);
    EXPECT_NEAR(r[2], 255, 4);
}

// ---------------------------------------------------------------- metadata

TEST_F(RenderTest, PngTextAndPhys) {
    const Reference ref = must_ref(artwork_bgra(100, 100), {100, 0, 0});
    const auto png = std::get<fs::path>(write_print_file(dir_ / "m.png", PrintFormat::png, ref, meta()));
    FILE* fp = std::fopen(png.c_str(), "rb");
    ASSERT_NE(fp, nullptr);
    png_structp rd = png_create_read_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png_create_info_struct(rd);
    ASSERT_EQ(setjmp(png_jmpbuf(rd)), 0);
    png_init_io(rd, fp);
    png_read_info(rd, info);
    png_uint_32 rx = 0, ry = 0;
    int unit = 0;
    ASSERT_TRUE(png_get_pHYs(rd, info, &rx, &ry, &unit));
    EXPECT_EQ(unit, PNG_RESOLUTION_METER);
    EXPECT_EQ(rx, 3937u);   // 100 dpi
    EXPECT_EQ(ry, 3937u);
    png_textp text = nullptr;
    int n = 0;
    png_get_text(rd, info, &text, &n);
    std::map<std::string, std::string> kv;
    for (int i = 0; i < n; ++i) kv[text[i].key] = text[i].text;
    png_destroy_read_struct(&rd, &info, nullptr);
    std::fclose(fp);
    EXPECT_EQ(kv["JobId"], "J-42");
    EXPECT_EQ(kv["Resolution"], "100 dpi");
    EXPECT_EQ(kv["ColorProfile"], "sRGB IEC61966-2.1");
    EXPECT_EQ(kv["GarmentColor"], "navy (#1f2a44)");
    EXPECT_EQ(kv["Platen"], "16x20");
}

TEST_F(RenderTest, PdfInfoAndPageSize) {
    const Reference ref = must_ref(artwork_bgra(100, 100), {100, 0, 0});
    const auto pdf = std::get<fs::path>(write_print_file(dir_ / "m.pdf", PrintFormat::pdf, ref, meta()));
    const std::string info = run(fmt::format("pdfinfo '{}'", pdf.string()));
    EXPECT_TRUE(std::regex_search(info, std::regex("Title: +Pressline print file J-42\\n"))) << info;
    EXPECT_NE(info.find("job_id=J-42"), std::string::npos) << info;
    EXPECT_NE(info.find("dpi=100"), std::string::npos) << info;
    EXPECT_NE(info.find("color_profile=sRGB IEC61966-2.1"), std::string::npos) << info;
    EXPECT_NE(info.find("garment_color=navy"), std::string::npos) << info;
    EXPECT_NE(info.find("garment navy (#1f2a44)"), std::string::npos) << info;   // Subject
    EXPECT_TRUE(std::regex_search(info, std::regex("Page size: +1152 x 1440 pts"))) << info;
}

TEST_F(RenderTest, JpegDensity) {
    const Reference ref = must_ref(artwork_bgra(100, 100), {100, 0, 0});
    const auto jpg = std::get<fs::path>(write_print_file(dir_ / "m.jpg", PrintFormat::jpeg, ref, meta()));
    std::ifstream in(jpg, std::ios::binary);
    std::array<unsigned char, 18> h{};
    in.read(reinterpret_cast<char*>(h.data()), h.size());
    ASSERT_EQ(std::string(reinterpret_cast<char*>(&h[6]), 4), "JFIF");
    EXPECT_EQ(h[13], 1);                    // dots per inch
    EXPECT_EQ(h[14] * 256 + h[15], 100);    // X density
    EXPECT_EQ(h[16] * 256 + h[17], 100);    // Y density
}

TEST_F(RenderTest, WriteReferenceRoundTrips) {
    cv::Mat art = artwork_bgra(120, 90);
    art(cv::Rect(20, 20, 30, 30)).setTo(cv::Scalar(10, 200, 30, 77));
    const Reference ref = must_ref(art, {120 * 25.4 / kDpi, 5, 40});   // identity size
    const auto png = std::get<fs::path>(write_reference(dir_, ref, meta()));
    EXPECT_EQ(png, dir_ / "reference.png");
    const cv::Mat back = cv::imread(png.string(), cv::IMREAD_UNCHANGED);
    ASSERT_EQ(back.type(), CV_8UC4);
    EXPECT_EQ(cv::norm(back, ref.bgra, cv::NORM_INF), 0.0);
    std::ifstream in(dir_ / "reference.json");
    const auto j = nlohmann::json::parse(in);
    EXPECT_DOUBLE_EQ(j["box_mm"]["x"].get<double>(), ref.box_mm.x);
    EXPECT_DOUBLE_EQ(j["box_mm"]["width"].get<double>(), ref.box_mm.width);
    EXPECT_DOUBLE_EQ(j["px_per_mm"].get<double>(), ref.px_per_mm);
    EXPECT_EQ(j["dpi"], kDpi);
    EXPECT_EQ(j["platen"]["name"], "16x20");
    EXPECT_EQ(j["job"]["job_id"], "J-42");
    EXPECT_EQ(j["job"]["garment_srgb"], nlohmann::json::array({0x1f, 0x2a, 0x44}));
    // The ticket thumbnail: small artwork is kept at its size.
    const cv::Mat thumb = cv::imread((dir_ / "thumbnail.png").string(), cv::IMREAD_UNCHANGED);
    ASSERT_EQ(thumb.type(), CV_8UC4);
    EXPECT_EQ(cv::norm(thumb, ref.bgra, cv::NORM_INF), 0.0);
    EXPECT_EQ(j["thumbnail"]["file"], "thumbnail.png");
    // At 100 dpi (3.9 px/mm) the reference is small enough for QA as it is: no QA copy.
    EXPECT_FALSE(j.contains("qa_reference"));
    // Nothing but the three files: no temporaries left behind.
    int n = 0;
    for (const auto& e : fs::directory_iterator(dir_)) {
        ++n;
        const auto name = e.path().filename();
        EXPECT_TRUE(name == "reference.png" || name == "reference.json" || name == "thumbnail.png") << e.path();
    }
    EXPECT_EQ(n, 3);
}

TEST_F(RenderTest, A300DpiReferenceGetsAQaCopyAt4PxPerMm) {
    // A 100 x 60 mm artwork with a transparent hole, at 300 dpi.
    cv::Mat art(709, 1181, CV_8UC4, cv::Scalar(30, 60, 200, 255));
    cv::circle(art, {590, 354}, 150, cv::Scalar(255, 255, 255, 0), -1);
    const Placement pl{100, 0, 50};
    auto made = make_reference(art, platen16x20(), pl, 300);
    ASSERT_TRUE(std::holds_alternative<Reference>(made));
    const Reference& ref = std::get<Reference>(made);
    ASSERT_TRUE(std::holds_alternative<fs::path>(write_reference(dir_, ref, meta(300))));
    std::ifstream in(dir_ / "reference.json");
    const auto j = nlohmann::json::parse(in);
    ASSERT_TRUE(j.contains("qa_reference"));
    EXPECT_EQ(j["qa_reference"]["file"], "reference-qa.png");
    const double ppm = j["qa_reference"]["px_per_mm"].get<double>();
    EXPECT_NEAR(ppm, kQaReferencePxPerMm, 0.01);
    const cv::Mat q = cv::imread((dir_ / "reference-qa.png").string(), cv::IMREAD_UNCHANGED);
    ASSERT_EQ(q.type(), CV_8UC4);
    EXPECT_NEAR(q.cols / ppm, ref.box_mm.width, 1e-9);
    // Opaque ink keeps its colour, the hole stays transparent, and the ink beside it does not turn
    // white (premultiplied shrinking: the hole's white never bleeds into the ink; the rim's own
    // colours come from render's cubic resampling and are not checked here).
    EXPECT_EQ(q.at<cv::Vec4b>(5, 5), cv::Vec4b(30, 60, 200, 255));
    EXPECT_EQ(q.at<cv::Vec4b>(q.rows / 2, q.cols / 2)[3], 0);
    for (int x = 0; x < q.cols; ++x) {
        const cv::Vec4b p = q.at<cv::Vec4b>(q.rows / 2, x);
        if (p[3] == 255) {
            EXPECT_LE(std::abs(p[0] - 30) + std::abs(p[1] - 60) + std::abs(p[2] - 200), 3) << "x=" << x << " " << p;
        }
    }
}

TEST_F(RenderTest, ThumbnailOfALargeReferenceFitsAndKeepsTheAspect) {
    const Reference ref = must_ref(artwork_bgra(1200, 900), {200, 0, 40});
    ASSERT_TRUE(std::holds_alternative<fs::path>(write_reference(dir_, ref, meta())));
    const cv::Mat thumb = cv::imread((dir_ / "thumbnail.png").string(), cv::IMREAD_UNCHANGED);
    ASSERT_FALSE(thumb.empty());
    EXPECT_EQ(std::max(thumb.cols, thumb.rows), kThumbnailPx);
    EXPECT_NEAR(static_cast<double>(thumb.cols) / thumb.rows,
                static_cast<double>(ref.bgra.cols) / ref.bgra.rows, 0.01);
}

TEST_F(RenderTest, MetaMismatchAndUnwritableDirAreProblems) {
    const Reference ref = must_ref(artwork_bgra(100, 100), {100, 0, 0});
    auto r = write_print_file(dir_ / "x.png", PrintFormat::png, ref, meta(300));
    ASSERT_TRUE(std::holds_alternative<Problem>(r));
    EXPECT_EQ(std::get<Problem>(r).reason, "meta_mismatch");
    auto w = write_reference(dir_ / "missing" / "dir", ref, meta());
    ASSERT_TRUE(std::holds_alternative<Problem>(w));
    EXPECT_EQ(std::get<Problem>(w).reason, "write_failed");
    auto p = write_print_file(dir_ / "missing" / "x.pdf", PrintFormat::pdf, ref, meta());
    ASSERT_TRUE(std::holds_alternative<Problem>(p));
    EXPECT_EQ(std::get<Problem>(p).reason, "write_failed");
}
