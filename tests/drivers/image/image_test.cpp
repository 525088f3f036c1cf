// Unit tests of pressline::image (drivers/image): decoding gives the same pixels as OpenCV's
// imdecode with the imread flags each option set stands for, encoding gives what imencode
// gives, 16-bit PNGs round-trip, and every problem is an error naming the file.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "pressline/image/image.hpp"
#include "pressline/image/rows.hpp"
#include "pressline/testing/util.hpp"

namespace img = pressline::image;
namespace fs = std::filesystem;
using pressline::testing::TempDir;

namespace {

// A photo-like picture: gradients, edges and noise, so JPEG's DCT and chroma paths all work.
cv::Mat picture(int w, int h, int type) {
    cv::Mat m(h, w, CV_8UC3);
    cv::RNG rng(12345);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            m.at<cv::Vec3b>(y, x) = cv::Vec3b(static_cast<uchar>(x * 255 / w), static_cast<uchar>(y * 255 / h),
                                              static_cast<uchar>((x * y) % 251));
    cv::circle(m, {w / 2, h / 3}, h / 4, cv::Scalar(20, 200, 90), -1, cv::LINE_AA);
    cv::Mat noise(h, w, CV_8UC3);
    rng.fill(noise, cv::RNG::UNIFORM, 0, 24);
    m += noise;
    cv::Mat out;
    const int depth = CV_MAT_DEPTH(type), ch = CV_MAT_CN(type);
    if (ch == 1) cv::cvtColor(m, out, cv::COLOR_BGR2GRAY);
    else if (ch == 4) {
        cv::cvtColor(m, out, cv::COLOR_BGR2BGRA);
        for (int y = 0; y < h; ++y)
            for (int x = 0; x < w; ++x) out.at<cv::Vec4b>(y, x)[3] = static_cast<uchar>((x + 3 * y) % 256);
    } else out = m;
    if (depth == CV_16U) out.convertTo(out, CV_16U, 257.0, 3.0);
    return out;
}

std::vector<std::uint8_t> cv_encode(const std::string& ext, const cv::Mat& m, std::vector<int> params = {}) {
    std::vector<uchar> out;
    EXPECT_TRUE(cv::imencode(ext, m, out, params));
    return {out.begin(), out.end()};
}

bool identical(const cv::Mat& a, const cv::Mat& b) {
    if (a.size() != b.size() || a.type() != b.type()) return false;
    return cv::norm(a.reshape(1), b.reshape(1), cv::NORM_INF) == 0;
}

std::string describe(const cv::Mat& m) {
    return std::to_string(m.cols) + "x" + std::to_string(m.rows) + " type " + std::to_string(m.type());
}

struct Mode {
    const char* name;
    int flags;
    img::ReadOptions opt;
};

const std::vector<Mode>& modes() {
    static const std::vector<Mode> m = {
        {"UNCHANGED", cv::IMREAD_UNCHANGED, {img::Color::as_stored, true, true, 1}},
        {"COLOR", cv::IMREAD_COLOR | cv::IMREAD_IGNORE_ORIENTATION, {img::Color::bgr, false, false, 1}},
        {"ANYDEPTH|ANYCOLOR", cv::IMREAD_ANYDEPTH | cv::IMREAD_ANYCOLOR | cv::IMREAD_IGNORE_ORIENTATION,
         {img::Color::as_stored, false, true, 1}},
        {"ANYDEPTH|GRAYSCALE", cv::IMREAD_ANYDEPTH | cv::IMREAD_GRAYSCALE | cv::IMREAD_IGNORE_ORIENTATION,
         {img::Color::gray, false, true, 1}},
        {"GRAYSCALE", cv::IMREAD_GRAYSCALE | cv::IMREAD_IGNORE_ORIENTATION, {img::Color::gray, false, false, 1}},
        {"REDUCED_COLOR_2", cv::IMREAD_REDUCED_COLOR_2 | cv::IMREAD_IGNORE_ORIENTATION, {img::Color::bgr, false, false, 2}},
        {"REDUCED_COLOR_4", cv::IMREAD_REDUCED_COLOR_4 | cv::IMREAD_IGNORE_ORIENTATION, {img::Color::bgr, false, false, 4}},
        {"REDUCED_COLOR_8", cv::IMREAD_REDUCED_COLOR_8 | cv::IMREAD_IGNORE_ORIENTATION, {img::Color::bgr, false, false, 8}},
    };
    return m;
}

void expect_same_as_opencv(const std::vector<std::uint8_t>& bytes, const std::string& label) {
    for (const auto& mode : modes()) {
        const cv::Mat want = cv::imdecode(cv::Mat(1, static_cast<int>(bytes.size()), CV_8U,
                                                  const_cast<std::uint8_t*>(bytes.data())),
                                          mode.flags);
        ASSERT_FALSE(want.empty()) << label << " " << mode.name;
        auto got = img::decode(bytes, mode.opt);
        ASSERT_TRUE(got) << label << " " << mode.name << ": " << got.message;
        EXPECT_TRUE(identical(got.value, want))
            << label << " " << mode.name << ": ours " << describe(got.value) << ", OpenCV " << describe(want);
    }
}

}  // namespace

TEST(ImageDecode, JpegSameAsOpenCV) {
    for (int q : {95, 90, 60}) {
        expect_same_as_opencv(cv_encode(".jpg", picture(333, 251, CV_8UC3), {cv::IMWRITE_JPEG_QUALITY, q}),
                              "colour JPEG q" + std::to_string(q));
    }
    expect_same_as_opencv(cv_encode(".jpg", picture(160, 120, CV_8UC1)), "gray JPEG");
    expect_same_as_opencv(cv_encode(".jpg", picture(200, 100, CV_8UC3), {cv::IMWRITE_JPEG_PROGRESSIVE, 1}),
                          "progressive JPEG");
}

TEST(ImageDecode, PngSameAsOpenCV) {
    for (int type : {CV_8UC1, CV_8UC3, CV_8UC4, CV_16UC1, CV_16UC3, CV_16UC4})
        expect_same_as_opencv(cv_encode(".png", picture(97, 61, type)), "PNG type " + std::to_string(type));
}

TEST(ImageDecode, GrayAlphaPngSameAsOpenCV) {
    // Gray + alpha: imencode cannot write it; our row encoder can.
    const cv::Mat ga = [] {
        cv::Mat g = picture(50, 40, CV_8UC1), a = picture(50, 40, CV_8UC3), m;
        cv::extractChannel(a, a, 2);
        cv::merge(std::vector<cv::Mat>{g, a}, m);
        return m;
    }();
    std::vector<std::uint8_t> bytes;
    img::PngRowSpec spec;
    spec.width = ga.cols;
    spec.height = ga.rows;
    spec.channels = 2;
    ASSERT_FALSE(img::write_png_rows(bytes, spec, [&](int y, std::uint8_t*) { return ga.ptr<std::uint8_t>(y); }));
    expect_same_as_opencv(bytes, "gray+alpha PNG");
}

TEST(ImageEncode, SameBytesAsOpenCV) {
    const cv::Mat bgr = picture(123, 77, CV_8UC3), gray = picture(123, 77, CV_8UC1);
    for (int q : {95, 90}) {
        auto ours = img::encode(img::Format::jpeg, bgr, {q, -1});
        ASSERT_TRUE(ours) << ours.message;
        EXPECT_EQ(ours.value, cv_encode(".jpg", bgr, {cv::IMWRITE_JPEG_QUALITY, q})) << "JPEG q" << q;
    }
    auto g = img::encode(img::Format::jpeg, gray);
    ASSERT_TRUE(g);
    EXPECT_EQ(g.value, cv_encode(".jpg", gray));
    for (int type : {CV_8UC1, CV_8UC3, CV_8UC4, CV_16UC1, CV_16UC3}) {
        const cv::Mat m = picture(64, 33, type);
        auto p = img::encode(img::Format::png, m);
        ASSERT_TRUE(p) << p.message;
        EXPECT_EQ(p.value, cv_encode(".png", m)) << "PNG type " << type;
        auto p3 = img::encode(img::Format::png, m, {95, 3});
        ASSERT_TRUE(p3) << p3.message;
        EXPECT_EQ(p3.value, cv_encode(".png", m, {cv::IMWRITE_PNG_COMPRESSION, 3})) << "PNG level 3 type " << type;
    }
}

TEST(ImageEncode, Png16RoundTrips) {
    TempDir dir("pressline-image");
    for (int type : {CV_16UC1, CV_16UC3, CV_16UC4}) {
        cv::Mat m(29, 31, type);
        cv::randu(m, 0, 65536);
        const fs::path f = dir / "flat.png";
        ASSERT_TRUE(img::write(f, m)) << type;
        auto back = img::read(f, {img::Color::as_stored, true, true});
        ASSERT_TRUE(back) << back.message;
        EXPECT_TRUE(identical(back.value, m)) << describe(back.value);
        EXPECT_TRUE(identical(cv::imread(f.string(), cv::IMREAD_UNCHANGED), m));
    }
    // Gray 16-bit read as gray keeps its depth (the flat field).
    cv::Mat flat(20, 30, CV_16UC1);
    cv::randu(flat, 0, 65536);
    auto bytes = img::encode(img::Format::png, flat);
    ASSERT_TRUE(bytes);
    auto g = img::decode(bytes.value, {img::Color::gray, false, true});
    ASSERT_TRUE(g);
    EXPECT_TRUE(identical(g.value, flat));
}

TEST(ImageErrors, NameTheFileAndTheProblem) {
    TempDir dir("pressline-image");
    auto missing = img::read(dir / "nope.jpg");
    EXPECT_EQ(missing.code, img::Errc::not_found);
    EXPECT_NE(missing.message.find((dir / "nope.jpg").string()), std::string::npos) << missing.message;
    EXPECT_NE(missing.message.find("no such file"), std::string::npos) << missing.message;

    auto isdir = img::read(dir.path());
    EXPECT_EQ(isdir.code, img::Errc::not_found);
    EXPECT_NE(isdir.message.find("directory"), std::string::npos) << isdir.message;

    const fs::path html = dir / "login.jpg";
    std::ofstream(html) << "<html>login</html>";
    auto h = img::read(html);
    EXPECT_EQ(h.code, img::Errc::corrupt);
    EXPECT_NE(h.message.find("login.jpg"), std::string::npos) << h.message;
    EXPECT_NE(h.message.find("not a PNG or JPEG"), std::string::npos) << h.message;

    const fs::path empty = dir / "empty.png";
    std::ofstream(empty).flush();
    EXPECT_EQ(img::read(empty).code, img::Errc::corrupt);

    auto jpeg = cv_encode(".jpg", picture(200, 150, CV_8UC3));
    jpeg.resize(jpeg.size() / 2);
    auto t = img::decode(jpeg, {}, "cut.jpg");
    EXPECT_EQ(t.code, img::Errc::corrupt);
    EXPECT_NE(t.message.find("cut.jpg: truncated JPEG"), std::string::npos) << t.message;

    auto png = cv_encode(".png", picture(200, 150, CV_8UC3));
    png.resize(png.size() / 2);
    auto tp = img::decode(png);
    EXPECT_EQ(tp.code, img::Errc::corrupt);
    EXPECT_NE(tp.message.find("image buffer ("), std::string::npos) << tp.message;
    EXPECT_NE(tp.message.find("libpng"), std::string::npos) << tp.message;

    auto big = img::decode(cv_encode(".png", picture(100, 100, CV_8UC3)), {img::Color::bgr, false, false, 1, 9999});
    EXPECT_EQ(big.code, img::Errc::too_large) << big.message;

    auto nodir = img::write(dir / "no" / "such" / "x.png", picture(10, 10, CV_8UC3));
    EXPECT_EQ(nodir.code, img::Errc::not_found);
    EXPECT_NE(nodir.message.find("cannot create"), std::string::npos) << nodir.message;
    auto ext = img::write(dir / "x.bmp", picture(10, 10, CV_8UC3));
    EXPECT_EQ(ext.code, img::Errc::unsupported) << ext.message;
    auto f32 = img::write(dir / "x.png", cv::Mat(4, 4, CV_32FC1, cv::Scalar(0.5)));
    EXPECT_EQ(f32.code, img::Errc::unsupported) << f32.message;
    EXPECT_FALSE(fs::exists(dir / "x.png"));
}
