// Station calibration on synthetic photos: the target rendered by render_target(), warped onto a
// camera image with a known homography (perspective, rotation, keystone), then lit unevenly,
// blurred, noisy and JPEG-compressed. Accuracy is judged where it matters: platen points over the
// whole platen, projected with the recovered and the true homography.
#include "pressline/devices/qa/calibration.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/calib3d.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>

namespace qa = pressline::devices::qa;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr double kW = 406.4, kH = 508;  // platen mm

cv::Point2d apply(const cv::Matx33d& H, cv::Point2d p) {
    const cv::Vec3d q = H * cv::Vec3d(p.x, p.y, 1.0);
    return {q[0] / q[2], q[1] / q[2]};
}

// H (platen mm -> image px) putting the platen corners TL, TR, BR, BL at `px`.
cv::Matx33d platen_to(const std::vector<cv::Point2f>& px) {
    const std::vector<cv::Point2f> mm = {{0, 0}, {float(kW), 0}, {float(kW), float(kH)}, {0, float(kH)}};
    return cv::Matx33d(cv::getPerspectiveTransform(mm, px));
}

struct Shot {
    double blur_sigma = 1.2;
    double noise_sigma = 3;
    int jpeg_quality = 85;
    double background = 60;  // the machine around the platen
};

// A photo of `render` (made at `s` px/mm) lying on the platen, through H (platen mm -> px).
cv::Mat photograph(const cv::Mat& render, double s, const cv::Matx33d& H, cv::Size size,
                   const Shot& shot = {}, unsigned seed = 1) {
    // Render pixel (u, v) is centred at platen mm ((u + 0.5) / s, (v + 0.5) / s).
    const cv::Matx33d A(1 / s, 0, 0.5 / s, 0, 1 / s, 0.5 / s, 0, 0, 1);
    cv::Mat g;
    cv::warpPerspective(render, g, H * A, size, cv::INTER_LINEAR, cv::BORDER_CONSTANT,
                        cv::Scalar(shot.background));
    cv::Mat f;
    g.convertTo(f, CV_32F);
    // Uneven light: brighter top-left, darker bottom-right, a radial fall-off (smooth: made small).
    const cv::Size small(size.width / 8, size.height / 8);
    cv::Mat light(small, CV_32F);
    for (int y = 0; y < small.height; ++y) {
        float* r = light.ptr<float>(y);
        for (int x = 0; x < small.width; ++x) {
            const double dx = (x - 0.5 * small.width) / small.width,
                         dy = (y - 0.5 * small.height) / small.width;
            r[x] = float((1.0 - 0.25 * x / small.width - 0.15 * y / small.height) /
                         (1 + 1.2 * (dx * dx + dy * dy)));
        }
    }
    cv::resize(light, light, size, 0, 0, cv::INTER_LINEAR);
    f = f.mul(light);
    cv::GaussianBlur(f, f, cv::Size(0, 0), shot.blur_sigma);
    cv::Mat noise(size, CV_32F);
    cv::theRNG().state = seed;
    cv::randn(noise, 0, shot.noise_sigma);
    f += noise;
    cv::Mat g8, out;
    f.convertTo(g8, CV_8U);
    cv::cvtColor(g8, out, cv::COLOR_GRAY2BGR);
    cv::multiply(out, cv::Scalar(0.92, 1.0, 0.97), out);  // a slightly warm light
    std::vector<uchar> jpg;
    cv::imencode(".jpg", out, jpg, {cv::IMWRITE_JPEG_QUALITY, shot.jpeg_quality});
    return cv::imdecode(jpg, cv::IMREAD_COLOR);
}

struct Error {
    double max_px = 0, rms_px = 0;
};

// Compares two homographies on a 5 mm grid over the whole platen.
Error compare(const cv::Matx33d& got, const cv::Matx33d& truth) {
    Error e;
    double ss = 0;
    int n = 0;
    for (double y = 0; y <= kH + 1e-9; y += 5)
        for (double x = 0; x <= kW + 1e-9; x += 5) {
            const double d = cv::norm(apply(got, {x, y}) - apply(truth, {x, y}));
            e.max_px = std::max(e.max_px, d);
            ss += d * d, ++n;
        }
    e.rms_px = std::sqrt(ss / n);
    return e;
}

// calibrate(), timed.
qa::Result<qa::CalibrationOutput> run(const qa::CalibrationInputs& in) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = qa::calibrate(in);
    std::printf("[time] calibrate %dx%d: %.0f ms\n", in.target_photo.cols, in.target_photo.rows,
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    return r;
}

qa::CalibrationOutput ok(const qa::Result<qa::CalibrationOutput>& r) {
    if (auto* p = std::get_if<qa::Problem>(&r)) {
        ADD_FAILURE() << p->reason << " " << p->field << ": " << p->message;
        return {};
    }
    return std::get<qa::CalibrationOutput>(r);
}

qa::Problem problem(const qa::Result<qa::CalibrationOutput>& r) {
    if (auto* p = std::get_if<qa::Problem>(&r)) return *p;
    return {"(none)", "", "calibrate() succeeded"};
}

void report(const char* what, const qa::CalibrationOutput& out, const cv::Matx33d& truth) {
    const Error e = compare(out.calibration.H, truth);
    std::printf(
        "[accuracy] %s: %d points, reprojection RMS %.3f px; platen grid vs truth: max %.3f px, RMS %.3f "
        "px\n",
        what, out.points_used, out.reprojection_rms_px, e.max_px, e.rms_px);
    EXPECT_LT(e.max_px, 0.3) << what;
}

// A 4000 x 3000 camera looking at the platen from above and a little to the side: the platen is
// turned by ~6 degrees, its far edge shorter (keystone).
cv::Matx33d camera_12mp() { return platen_to({{1010, 140}, {3275, 370}, {3060, 2890}, {760, 2720}}); }

// The same camera mounted the other way round with a strong keystone: platen turned ~180 deg.
cv::Matx33d camera_12mp_upside_down() {
    return platen_to({{3150, 2850}, {960, 2790}, {1150, 230}, {2950, 120}});
}

// A 1920 x 1080 camera, platen turned ~90 degrees (its top at the image's right).
cv::Matx33d camera_1080p() { return platen_to({{1640, 60}, {1690, 1010}, {420, 1040}, {380, 90}}); }

qa::Target chessboard() {
    qa::Target t;
    t.kind = "chessboard";
    t.cols = 9, t.rows = 12;
    t.square_mm = 30;
    t.origin_mm = {83.2, 89};  // a 10 x 13 squares board, centred
    return t;
}

}  // namespace

TEST(Calibration, RenderedTargetIsTheIdentityAtItsScale) {
    const qa::Target t;
    const double s = 2.5;
    const cv::Mat r = qa::render_target(t, kW, kH, s, /*annotate=*/true);  // as printed
    ASSERT_EQ(r.type(), CV_8UC1);
    ASSERT_EQ(r.size(), cv::Size(1016, 1270));
    qa::CalibrationInputs in;
    in.target_photo = r;
    const auto out = ok(run(in));
    EXPECT_EQ(out.markers_found.size(), 30u);
    EXPECT_EQ(out.points_used, 120);
    // Pixel centres at integer coordinates: mm x -> px x * s - 0.5.
    report("render at 2.5 px/mm", out, cv::Matx33d(s, 0, -0.5, 0, s, -0.5, 0, 0, 1));
    EXPECT_FALSE(out.check_image.empty());
}

TEST(Calibration, ArucoRecoversTheHomography12mp) {
    const qa::Target t;
    const double s = 8;
    const cv::Mat r = qa::render_target(t, kW, kH, s);
    const cv::Matx33d truth = camera_12mp();
    qa::CalibrationInputs in;
    in.target_photo = photograph(r, s, truth, {4000, 3000});
    const auto out = ok(run(in));
    EXPECT_EQ(out.markers_found.size(), 30u);
    EXPECT_EQ(out.calibration.image_size, cv::Size(4000, 3000));
    EXPECT_LT(out.reprojection_rms_px, 0.5);
    report("aruco 4000x3000", out, truth);
    EXPECT_EQ(out.check_image.size(), cv::Size(4000, 3000));
    if (const char* dir = std::getenv("PRESSLINE_TEST_KEEP")) {
        cv::imwrite(fs::path(dir) / "aruco_12mp_photo.jpg", in.target_photo);
        cv::imwrite(fs::path(dir) / "aruco_12mp_check.jpg", out.check_image);
    }
}

TEST(Calibration, ArucoUpsideDownWithStrongKeystone12mp) {
    const qa::Target t;
    const double s = 8;
    const cv::Matx33d truth = camera_12mp_upside_down();
    qa::CalibrationInputs in;
    in.target_photo = photograph(qa::render_target(t, kW, kH, s), s, truth, {4000, 3000}, {}, 2);
    report("aruco 4000x3000 upside down, keystone", ok(run(in)), truth);
}

TEST(Calibration, ArucoRecoversTheHomography1080p) {
    const qa::Target t;
    const double s = 5;
    const cv::Matx33d truth = camera_1080p();
    qa::CalibrationInputs in;
    in.target_photo =
        photograph(qa::render_target(t, kW, kH, s), s, truth, {1920, 1080}, {0.8, 2.5, 85, 60}, 3);
    const auto out = ok(run(in));
    EXPECT_EQ(out.markers_found.size(), 30u);
    report("aruco 1920x1080, turned 90 deg", out, truth);
    if (const char* dir = std::getenv("PRESSLINE_TEST_KEEP"))
        cv::imwrite(fs::path(dir) / "aruco_1080p_check.jpg", out.check_image);
}

TEST(Calibration, ArucoWithOccludedMarkers) {
    const qa::Target t;
    const double s = 8;
    const cv::Matx33d truth = camera_12mp();
    cv::Mat photo = photograph(qa::render_target(t, kW, kH, s), s, truth, {4000, 3000}, {}, 4);
    // A hand over markers 0 and 6, a tool over 17, a cable across 23 (half of it).
    auto blob = [&](cv::Point2d mm, double r_mm, cv::Scalar colour) {
        cv::circle(photo, apply(truth, mm), int(r_mm * 5.5), colour, cv::FILLED, cv::LINE_AA);
    };
    blob({43.2, 54}, 30, cv::Scalar(90, 120, 170));
    blob({123.2, 134}, 28, cv::Scalar(90, 120, 170));
    blob({223.2, 274}, 25, cv::Scalar(30, 30, 30));
    cv::line(photo, apply(truth, {303.2, 375}), apply(truth, {406, 450}), cv::Scalar(20, 20, 20), 40,
             cv::LINE_AA);
    qa::CalibrationInputs in;
    in.target_photo = photo;
    const auto out = ok(run(in));
    for (int id : {0, 6, 17, 23})
        EXPECT_EQ(std::count(out.markers_found.begin(), out.markers_found.end(), id), 0) << id;
    EXPECT_GE(out.markers_found.size(), 24u);
    EXPECT_LE(out.markers_found.size(), 26u);
    report("aruco 4000x3000, 4 markers hidden", out, truth);
}

TEST(Calibration, TooFewMarkersNamesWhatWasSeen) {
    const qa::Target t;
    const double s = 5;
    const cv::Matx33d truth = camera_1080p();
    const cv::Mat photo =
        photograph(qa::render_target(t, kW, kH, s), s, truth, {1920, 1080}, {0.8, 2.5, 85, 60}, 5);
    // Only markers 1, 2 and 7 stay visible.
    cv::Mat shown(photo.size(), photo.type(), cv::Scalar(60, 60, 60));
    for (int id : {1, 2, 7}) {
        const cv::Point2d tl(t.origin_mm.x + (id % 5) * 80 - 15, t.origin_mm.y + (id / 5) * 80 - 15);
        std::vector<cv::Point> poly;
        for (cv::Point2d d : {cv::Point2d(0, 0), {70, 0}, {70, 70}, {0, 70}})
            poly.push_back(apply(truth, tl + d));
        cv::Mat mask(photo.size(), CV_8U, cv::Scalar(0));
        cv::fillConvexPoly(mask, poly, cv::Scalar(255));
        photo.copyTo(shown, mask);
    }
    qa::CalibrationInputs in;
    in.target_photo = shown;
    const qa::Problem p = problem(qa::calibrate(in));
    EXPECT_EQ(p.reason, "target_not_found");
    EXPECT_EQ(p.field, "target_photo");
    EXPECT_NE(p.message.find("3 of 30 markers found: ids 1, 2, 7"), std::string::npos) << p.message;
}

TEST(Calibration, NoTargetInThePhoto) {
    // An empty platen: a gray gradient, some texture, noise.
    cv::Mat photo(1080, 1920, CV_8UC3);
    cv::randn(photo, cv::Scalar(120, 120, 120), cv::Scalar(20, 20, 20));
    cv::GaussianBlur(photo, photo, cv::Size(0, 0), 3);
    cv::rectangle(photo, cv::Rect(500, 200, 800, 700), cv::Scalar(200, 200, 200), cv::FILLED);
    for (const char* kind : {"aruco", "chessboard"}) {
        qa::CalibrationInputs in;
        in.target_photo = photo;
        if (std::string(kind) == "chessboard") in.target = chessboard();
        const qa::Problem p = problem(qa::calibrate(in));
        EXPECT_EQ(p.reason, "target_not_found") << kind;
        EXPECT_EQ(p.field, "target_photo");
        if (std::string(kind) == "aruco")
            EXPECT_NE(p.message.find("0 of 30 markers found"), std::string::npos) << p.message;
        else
            EXPECT_NE(p.message.find("no chessboard of 9 x 12 inner corners"), std::string::npos)
                << p.message;
    }
    qa::CalibrationInputs empty;
    EXPECT_EQ(problem(qa::calibrate(empty)).reason, "unreadable_image");
}

TEST(Calibration, Chessboard12mp) {
    const qa::Target t = chessboard();
    const double s = 8;
    const cv::Mat r = qa::render_target(t, kW, kH, s);
    ASSERT_FALSE(r.empty());
    for (bool upside_down : {false, true}) {
        const cv::Matx33d truth = upside_down ? camera_12mp_upside_down() : camera_12mp();
        qa::CalibrationInputs in;
        in.target = t;
        in.target_photo = photograph(r, s, truth, {4000, 3000}, {}, 6);
        const auto out = ok(run(in));
        EXPECT_EQ(out.points_used, 108);
        EXPECT_TRUE(out.markers_found.empty());
        report(upside_down ? "chessboard 4000x3000 upside down" : "chessboard 4000x3000", out, truth);
    }
}

TEST(Calibration, Chessboard1080p) {
    const qa::Target t = chessboard();
    const double s = 5;
    const cv::Matx33d truth = camera_1080p();
    qa::CalibrationInputs in;
    in.target = t;
    in.target_photo =
        photograph(qa::render_target(t, kW, kH, s), s, truth, {1920, 1080}, {0.8, 2.5, 85, 60}, 7);
    report("chessboard 1920x1080, turned 90 deg", ok(run(in)), truth);
}

TEST(Calibration, TargetDescriptionNotMatchingThePrintIsRefused) {
    const qa::Target printed;
    const double s = 5;
    const cv::Mat photo = photograph(qa::render_target(printed, kW, kH, s), s, camera_1080p(), {1920, 1080},
                                     {0.8, 2.5, 85, 60}, 12);
    qa::CalibrationInputs in;
    in.target_photo = photo;
    in.target.marker_mm = 45;  // printed: 40
    qa::Problem p = problem(run(in));
    EXPECT_EQ(p.reason, "bad_calibration");
    EXPECT_EQ(p.field, "target_photo");
    EXPECT_NE(p.message.find("target description"), std::string::npos) << p.message;
    in.target = printed;
    in.target.pitch_mm = 84;  // printed: 80
    p = problem(run(in));
    EXPECT_EQ(p.reason, "bad_calibration");
    EXPECT_NE(p.message.find("RMS"), std::string::npos) << p.message;
}

TEST(Calibration, BadTargetDescriptions) {
    qa::CalibrationInputs in;
    in.target_photo = cv::Mat(100, 100, CV_8UC3, cv::Scalar(255, 255, 255));
    in.target.kind = "charuco";
    EXPECT_EQ(problem(qa::calibrate(in)).field, "target.kind");
    in.target = chessboard();
    in.target.cols = 8;  // 8 x 12: the same turned by 180 degrees
    EXPECT_EQ(problem(qa::calibrate(in)).reason, "bad_calibration");
    in.target = qa::Target{};
    in.target.pitch_mm = 42;  // no quiet zone
    EXPECT_EQ(problem(qa::calibrate(in)).field, "target.pitch_mm");
    EXPECT_TRUE(qa::render_target(in.target, kW, kH, 2).empty());

    const auto back = qa::target_from_json(qa::target_to_json(chessboard()));
    ASSERT_TRUE(std::holds_alternative<qa::Target>(back));
    EXPECT_EQ(std::get<qa::Target>(back).kind, "chessboard");
    EXPECT_EQ(std::get<qa::Target>(back).cols, 9);
    EXPECT_EQ(std::get<qa::Target>(back).origin_mm, cv::Point2d(83.2, 89));
    const auto patches = qa::gray_card_from_json(json::parse(R"({"rect_mm": [0, 0, 1, 1], "patches": [
        {"name": "white", "rect_mm": [-60, 150, 30, 30], "srgb": [243, 243, 242]},
        {"name": "black", "rect_mm": [-60, 190, 30, 30], "srgb": [52, 52, 52]}]})"));
    ASSERT_TRUE(std::holds_alternative<std::vector<qa::CardPatch>>(patches));
    EXPECT_EQ(std::get<std::vector<qa::CardPatch>>(patches)[1].name, "black");
    EXPECT_EQ(std::get<std::vector<qa::CardPatch>>(patches)[1].rect_mm.y, 190);
    const auto bad_patch =
        qa::gray_card_from_json(json::parse(R"([{"name": "white", "rect_mm": [0, 0, 30, 30],
        "srgb": [243, 243]}])"));
    ASSERT_TRUE(std::holds_alternative<qa::Problem>(bad_patch));
    EXPECT_EQ(std::get<qa::Problem>(bad_patch).field, "gray_card[0].srgb");
    const auto spec = qa::card_patch_from_string("gray:-60,190.5,30,30:122,122,121");
    ASSERT_TRUE(std::holds_alternative<qa::CardPatch>(spec));
    EXPECT_EQ(std::get<qa::CardPatch>(spec).name, "gray");
    EXPECT_EQ(std::get<qa::CardPatch>(spec).rect_mm.y, 190.5);
    EXPECT_EQ(std::get<qa::CardPatch>(spec).srgb, cv::Vec3d(122, 122, 121));
    for (const char* bad : {"gray:-60,190,30:1,2,3", ":1,2,3,4:1,2,3", "gray:1,2,3,4:1,2,300",
                            "gray:1,2,0,4:1,2,3", "gray:1,2,3,4:1,2,3:x", "gray:1,2,3,x:1,2,3", "gray"})
        EXPECT_TRUE(std::holds_alternative<qa::Problem>(qa::card_patch_from_string(bad))) << bad;
    const auto wrong = qa::target_from_json(json{{"kind", "aruco"}, {"marker_mm", "40"}}, "qa.target");
    ASSERT_TRUE(std::holds_alternative<qa::Problem>(wrong));
    EXPECT_EQ(std::get<qa::Problem>(wrong).field, "qa.target.marker_mm");
}

namespace {

// Truth of the vignette test: radial fall-off off-centre and a side-to-side light gradient.
double vignette(double x, double y, cv::Size size) {
    const double dx = x - 0.45 * size.width, dy = y - 0.55 * size.height, f = 0.9 * size.width;
    const double r2 = (dx * dx + dy * dy) / (f * f);
    return (1 - 0.15 * x / size.width) / ((1 + r2) * (1 + r2));
}

// A uniform white board under the vignette, sRGB-encoded, noisy, JPEG.
cv::Mat white_photo(cv::Size size, double peak_linear) {
    cv::Mat l(size, CV_32F);
    for (int y = 0; y < size.height; ++y) {
        float* r = l.ptr<float>(y);
        for (int x = 0; x < size.width; ++x) r[x] = float(vignette(x, y, size));
    }
    double top = 0;
    cv::minMaxLoc(l, nullptr, &top);
    l *= peak_linear / top;  // every value well above sRGB's linear toe
    cv::Mat c;
    cv::pow(l, 1 / 2.4, c);  // sRGB encoding; (l * tint)^(1/2.4) = l^(1/2.4) * tint^(1/2.4)
    std::vector<cv::Mat> ch;
    for (double tint : {0.93, 0.98, 1.0})  // b, g, r: a slightly warm board
        ch.push_back((c * (1.055 * std::pow(tint, 1 / 2.4)) - 0.055) * 255);
    cv::Mat w, noise(size, CV_32FC3);
    cv::merge(ch, w);
    cv::theRNG().state = 11;
    cv::randn(noise, 0, 2.0);
    w += noise;
    cv::Mat out;
    w.convertTo(out, CV_8UC3);
    std::vector<uchar> jpg;
    cv::imencode(".jpg", out, jpg, {cv::IMWRITE_JPEG_QUALITY, 90});
    return cv::imdecode(jpg, cv::IMREAD_COLOR);
}

}  // namespace

TEST(Calibration, FlatFieldFollowsTheVignette) {
    const qa::Target t;
    const cv::Size size(4000, 3000);
    const double s = 8;
    qa::CalibrationInputs in;
    in.target_photo = photograph(qa::render_target(t, kW, kH, s), s, camera_12mp(), size, {}, 8);
    in.white_photo = white_photo(size, 0.75);
    const auto out = ok(run(in));
    const cv::Mat& g = out.calibration.flatfield;
    ASSERT_EQ(g.type(), CV_32FC1);
    EXPECT_EQ(g.size(), cv::Size(500, 375));
    double lo = 0, hi = 0;
    cv::minMaxLoc(g, &lo, &hi);
    EXPECT_NEAR(hi, 1.0, 1e-6);
    EXPECT_GE(lo, 0.05);
    // Stretched to the image size as the inspector does, against the truth normalised the same way.
    cv::Mat full;
    cv::resize(g, full, size, 0, 0, cv::INTER_LINEAR);
    double top = 0;
    for (int y = 0; y < size.height; y += 2)
        for (int x = 0; x < size.width; x += 2) top = std::max(top, vignette(x, y, size));
    double worst = 0, truth_lo = 1;
    for (int y = 0; y < size.height; y += 7)
        for (int x = 0; x < size.width; x += 7) {
            const double truth = vignette(x, y, size) / top;
            truth_lo = std::min(truth_lo, truth);
            worst = std::max(worst, std::abs(full.at<float>(y, x) / truth - 1));
        }
    std::printf("[accuracy] flat field 4000x3000 (truth %.2f..1.00): worst relative error %.2f %%\n",
                truth_lo, worst * 100);
    EXPECT_LT(truth_lo, 0.6);  // a real vignette
    EXPECT_LT(worst, 0.02);
}

TEST(Calibration, FlatFieldProblems) {
    const qa::Target t;
    const double s = 5;
    qa::CalibrationInputs in;
    in.target_photo =
        photograph(qa::render_target(t, kW, kH, s), s, camera_1080p(), {1920, 1080}, {0.8, 2.5, 85, 60}, 9);
    in.white_photo = white_photo({1280, 720}, 0.75);
    const qa::Problem p = problem(qa::calibrate(in));
    EXPECT_EQ(p.reason, "bad_calibration");
    EXPECT_EQ(p.field, "white_photo");
    EXPECT_NE(p.message.find("1280 x 720"), std::string::npos) << p.message;

    in.white_photo = cv::Mat(1080, 1920, CV_8UC3, cv::Scalar(255, 255, 255));  // overexposed
    EXPECT_EQ(problem(qa::calibrate(in)).field, "white_photo");
    in.white_photo = cv::Mat(1080, 1920, CV_8UC3, cv::Scalar(20, 20, 20));  // far too dark
    EXPECT_EQ(problem(qa::calibrate(in)).field, "white_photo");
    in.white_photo = white_photo({1920, 1080}, 0.75);
    EXPECT_EQ(ok(run(in)).calibration.flatfield.size(), cv::Size(240, 135));
}

TEST(Calibration, GrayCardPatches) {
    const qa::Target t;
    const double s = 5;
    const cv::Matx33d truth = camera_1080p();
    cv::Mat photo =
        photograph(qa::render_target(t, kW, kH, s), s, truth, {1920, 1080}, {0.8, 2.5, 85, 60}, 10);
    // The card above the platen's top edge (right of it in the image).
    const std::vector<qa::CardPatch> card = {{"white", {150, -60, 30, 30}, {243, 243, 242}},
                                             {"gray", {190, -60, 30, 30}, {122, 122, 121}},
                                             {"black", {230, -60, 30, 30}, {52, 52, 52}}};
    for (const auto& p : card) {
        std::vector<cv::Point> poly;  // painted a little darker than nominal (exposure)
        for (cv::Point2d d : {cv::Point2d(0, 0), {30, 0}, {30, 30}, {0, 30}})
            poly.push_back(apply(truth, cv::Point2d(p.rect_mm.x, p.rect_mm.y) + d));
        cv::fillConvexPoly(photo, poly, cv::Scalar(p.srgb[2] * 0.8, p.srgb[1] * 0.8, p.srgb[0] * 0.8),
                           cv::LINE_AA);
    }
    qa::CalibrationInputs in;
    in.target_photo = photo;
    in.gray_card = card;
    const auto out = ok(run(in));
    ASSERT_EQ(out.calibration.gray_patches.size(), 3u);
    EXPECT_EQ(out.calibration.gray_patches[1].name, "gray");
    EXPECT_EQ(out.calibration.gray_patches[2].rect_mm.x, 230);
    EXPECT_EQ(out.calibration.gray_patches[0].srgb, cv::Vec3d(243, 243, 242));
    for (const auto& w : out.warnings) EXPECT_EQ(w.find("gray card"), std::string::npos) << w;
    if (const char* dir = std::getenv("PRESSLINE_TEST_KEEP"))
        cv::imwrite(fs::path(dir) / "graycard_check.jpg", out.check_image);

    // Patches swapped in the configuration: calibrates, with a warning.
    std::swap(in.gray_card[0].rect_mm, in.gray_card[2].rect_mm);
    const auto swapped = ok(run(in));
    EXPECT_TRUE(std::any_of(swapped.warnings.begin(), swapped.warnings.end(), [](const std::string& w) {
        return w.find("\"white\" looks darker") != std::string::npos;
    }));

    // A patch beyond the image's edge: named.
    in.gray_card = card;
    in.gray_card[1].rect_mm.y = -130;
    const qa::Problem p = problem(qa::calibrate(in));
    EXPECT_EQ(p.reason, "bad_calibration");
    EXPECT_EQ(p.field, "gray_card[1]");
    EXPECT_NE(p.message.find("\"gray\""), std::string::npos) << p.message;
    EXPECT_NE(p.message.find("outside"), std::string::npos) << p.message;
}

TEST(Calibration, WriteCalibrationRoundTrips) {
    const fs::path dir = fs::temp_directory_path() / fmt::format("pressline-calibration-{}", ::getpid());
    fs::remove_all(dir);
    fs::create_directories(dir);
    qa::CalibrationOutput out;
    out.calibration.image_size = {4000, 3000};
    out.calibration.H = cv::Matx33d(5.4321, 0.5678, 1010.25, -0.4321, 5.1234, 140.125, 1.2e-5, -3.4e-5, 1);
    cv::Mat gain(375, 500, CV_32F);
    for (int y = 0; y < gain.rows; ++y)
        for (int x = 0; x < gain.cols; ++x)
            gain.at<float>(y, x) = float(std::max(0.05, vignette(x, y, gain.size())));
    out.calibration.flatfield = gain;
    out.calibration.gray_patches = {{"white", {-50, 150, 30, 30}, {243, 243, 242}},
                                    {"black", {-50, 230, 30, 25}, {52, 52, 52}}};
    out.reprojection_rms_px = 0.123;
    out.points_used = 120;
    out.markers_found = {0, 1, 2};
    out.target = chessboard();
    out.platen_width_mm = kW, out.platen_height_mm = kH;
    out.created = std::chrono::system_clock::time_point(std::chrono::seconds(1795000000));

    const auto written = qa::write_calibration(out, dir / "station-1.json");
    ASSERT_TRUE(std::holds_alternative<json>(written)) << std::get<qa::Problem>(written).message;
    std::ifstream f(dir / "station-1.json");
    const json j = json::parse(f);
    EXPECT_EQ(j, std::get<json>(written));
    EXPECT_EQ(j["image_size_px"], json::array({4000, 3000}));
    ASSERT_EQ(j["H_platen_mm_to_image_px"].size(), 9u);
    for (int i = 0; i < 9; ++i)
        EXPECT_EQ(j["H_platen_mm_to_image_px"][i].get<double>(), out.calibration.H.val[i]);
    EXPECT_EQ(j["flatfield"], "station-1.flatfield.png");
    EXPECT_EQ(j["gray_card"]["rect_mm"], json::array({-50, 150, 30, 105}));
    EXPECT_EQ(j["gray_card"]["patches"][1]["name"], "black");
    EXPECT_EQ(j["gray_card"]["patches"][1]["rect_mm"], json::array({-50, 230, 30, 25}));
    EXPECT_EQ(j["gray_card"]["patches"][0]["srgb"], json::array({243, 243, 242}));
    EXPECT_EQ(j["reprojection_rms_px"], 0.123);
    EXPECT_EQ(j["points_used"], 120);
    EXPECT_EQ(j["created"], "2026-11-18T11:06:40Z");
    EXPECT_EQ(j["target"]["kind"], "chessboard");
    EXPECT_EQ(j["target"]["square_mm"], 30);

    const cv::Mat png = cv::imread((dir / "station-1.flatfield.png").string(), cv::IMREAD_UNCHANGED);
    ASSERT_EQ(png.type(), CV_16UC1);
    ASSERT_EQ(png.size(), gain.size());
    cv::Mat back;
    png.convertTo(back, CV_32F, 1.0 / 65535);
    EXPECT_LE(cv::norm(back, gain, cv::NORM_INF), 0.6 / 65535);

    // What the inspector reads (case.cpp): the same calibration.
    const auto read = qa::calibration_from_json(j, dir);
    ASSERT_TRUE(std::holds_alternative<qa::Calibration>(read)) << std::get<qa::Problem>(read).message;
    const qa::Calibration& c = std::get<qa::Calibration>(read);
    EXPECT_EQ(c.image_size, out.calibration.image_size);
    EXPECT_EQ(cv::norm(cv::Mat(c.H), cv::Mat(out.calibration.H), cv::NORM_INF), 0);
    ASSERT_EQ(c.flatfield.size(), gain.size());
    EXPECT_LE(cv::norm(c.flatfield, gain, cv::NORM_INF), 0.6 / 65535);
    ASSERT_EQ(c.gray_patches.size(), 2u);
    EXPECT_EQ(c.gray_patches[1].name, "black");
    EXPECT_EQ(c.gray_patches[1].rect_mm.height, 25);
    EXPECT_EQ(c.gray_patches[0].srgb, cv::Vec3d(243, 243, 242));

    // No temporary files left; without flat field and gray card both are null.
    int files = 0;
    for (const auto& e : fs::directory_iterator(dir)) {
        ++files;
        EXPECT_NE(e.path().filename().string()[0], '.') << e.path();
    }
    EXPECT_EQ(files, 2);
    out.calibration.flatfield = cv::Mat();
    out.calibration.gray_patches.clear();
    const auto bare = qa::write_calibration(out, dir / "bare.json");
    ASSERT_TRUE(std::holds_alternative<json>(bare));
    EXPECT_TRUE(std::get<json>(bare)["flatfield"].is_null());
    EXPECT_TRUE(std::get<json>(bare)["gray_card"].is_null());
    const auto read_bare = qa::calibration_from_json(std::get<json>(bare), dir);
    ASSERT_TRUE(std::holds_alternative<qa::Calibration>(read_bare))
        << std::get<qa::Problem>(read_bare).message;
    EXPECT_TRUE(std::get<qa::Calibration>(read_bare).flatfield.empty());
    EXPECT_TRUE(std::get<qa::Calibration>(read_bare).gray_patches.empty());

    const auto fail = qa::write_calibration(out, dir / "no-such-dir" / "x.json");
    ASSERT_TRUE(std::holds_alternative<qa::Problem>(fail));
    EXPECT_EQ(std::get<qa::Problem>(fail).reason, "write_failed");
    fs::remove_all(dir);
}
