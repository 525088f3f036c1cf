// The QA dataset generator's own truth: CIEDE2000 against Sharma, Wu & Dalal (2005), colour
// conversions, determinism and the consistency of generated cases.
#include <cmath>
#include <cstdlib>
#include <unistd.h>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "pressline/qa_dataset/color.hpp"
#include "pressline/qa_dataset/dataset.hpp"

namespace qd = pressline::qa_dataset;

namespace {

struct Pair {
    cv::Vec3d a, b;
    double de;
};
// Table 1 of Sharma, Wu & Dalal, Color Res. Appl. 30 (2005) 21-30.
const Pair kSharma[] = {
    {{50.0000, 2.6772, -79.7751}, {50.0000, 0.0000, -82.7485}, 2.0425},
    {{50.0000, 3.1571, -77.2803}, {50.0000, 0.0000, -82.7485}, 2.8615},
    {{50.0000, 2.8361, -74.0200}, {50.0000, 0.0000, -82.7485}, 3.4412},
    {{50.0000, -1.3802, -84.2814}, {50.0000, 0.0000, -82.7485}, 1.0000},
    {{50.0000, -1.1848, -84.8006}, {50.0000, 0.0000, -82.7485}, 1.0000},
    {{50.0000, -0.9009, -85.5211}, {50.0000, 0.0000, -82.7485}, 1.0000},
    {{50.0000, 0.0000, 0.0000}, {50.0000, -1.0000, 2.0000}, 2.3669},
    {{50.0000, -1.0000, 2.0000}, {50.0000, 0.0000, 0.0000}, 2.3669},
    {{50.0000, 2.4900, -0.0010}, {50.0000, -2.4900, 0.0009}, 7.1792},
    {{50.0000, 2.4900, -0.0010}, {50.0000, -2.4900, 0.0010}, 7.1792},
    {{50.0000, 2.4900, -0.0010}, {50.0000, -2.4900, 0.0011}, 7.2195},
    {{50.0000, 2.4900, -0.0010}, {50.0000, -2.4900, 0.0012}, 7.2195},
    {{50.0000, -0.0010, 2.4900}, {50.0000, 0.0009, -2.4900}, 4.8045},
    {{50.0000, -0.0010, 2.4900}, {50.0000, 0.0010, -2.4900}, 4.8045},
    {{50.0000, -0.0010, 2.4900}, {50.0000, 0.0011, -2.4900}, 4.7461},
    {{50.0000, -0.0010, 2.4900}, {50.0000, 0.0012, -2.4900}, 4.7461},
    {{50.0000, 2.5000, 0.0000}, {50.0000, 0.0000, -2.5000}, 4.3065},
    {{50.0000, 2.5000, 0.0000}, {73.0000, 25.0000, -18.0000}, 27.1492},
    {{50.0000, 2.5000, 0.0000}, {61.0000, -5.0000, 29.0000}, 22.8977},
    {{50.0000, 2.5000, 0.0000}, {56.0000, -27.0000, -3.0000}, 31.9030},
    {{50.0000, 2.5000, 0.0000}, {58.0000, 24.0000, 15.0000}, 19.4535},
    {{50.0000, 2.5000, 0.0000}, {50.0000, 3.1736, 0.5854}, 1.0000},
    {{50.0000, 2.5000, 0.0000}, {50.0000, 3.2972, 0.0000}, 1.0000},
    {{50.0000, 2.5000, 0.0000}, {50.0000, 1.8634, 0.5757}, 1.0000},
    {{50.0000, 2.5000, 0.0000}, {50.0000, 3.2592, 0.3350}, 1.0000},
    {{60.2574, -34.0099, 36.2677}, {60.4626, -34.1751, 39.4387}, 1.2644},
    {{63.0109, -31.0961, -5.8663}, {62.8187, -29.7946, -4.0864}, 1.2630},
    {{61.2901, 3.7196, -5.3901}, {61.4292, 2.2480, -4.9620}, 1.8731},
    {{35.0831, -44.1164, 3.7933}, {35.0232, -40.0716, 1.5901}, 1.8645},
    {{22.7233, 20.0904, -46.6940}, {23.0331, 14.9730, -42.5619}, 2.0373},
    {{36.4612, 47.8580, 18.3852}, {36.2715, 50.5065, 21.2231}, 1.4146},
    {{90.8027, -2.0831, 1.4410}, {91.1528, -1.6435, 0.0447}, 1.4441},
    {{90.9257, -0.5406, -0.9208}, {88.6381, -0.8985, -0.7239}, 1.5381},
    {{6.7747, -0.2908, -2.4247}, {5.8714, -0.0985, -2.2286}, 0.6377},
    {{2.0776, 0.0795, -1.1350}, {0.9033, -0.0636, -0.5514}, 0.9082},
};

}  // namespace

TEST(QaDatasetColor, Ciede2000MatchesSharma2005) {
    int i = 0;
    for (const auto& p : kSharma) {
        ++i;
        // Pairs 13-16 sit on the |Δh'| = 180° discontinuity: which side floating point lands on
        // decides between the table's 4.8045 and 4.7461. Every other pair to the table's 4 decimals.
        const double tol = (i >= 13 && i <= 16) ? 0.06 : 1e-4;
        EXPECT_NEAR(qd::ciede2000(p.a, p.b), p.de, tol) << "pair " << i;
        EXPECT_NEAR(qd::ciede2000(p.b, p.a), p.de, tol) << "pair " << i << " swapped";
    }
    EXPECT_EQ(qd::ciede2000(cv::Vec3d(50, 10, -20), cv::Vec3d(50, 10, -20)), 0.0);
}

TEST(QaDatasetColor, SrgbToLabKnownValues) {
    const cv::Vec3d white = qd::srgb8_to_lab({255, 255, 255});
    EXPECT_NEAR(white[0], 100.0, 0.01);
    EXPECT_NEAR(white[1], 0.0, 0.01);
    EXPECT_NEAR(white[2], 0.0, 0.01);
    const cv::Vec3d red = qd::srgb8_to_lab({255, 0, 0});
    EXPECT_NEAR(red[0], 53.24, 0.05);
    EXPECT_NEAR(red[1], 80.09, 0.05);
    EXPECT_NEAR(red[2], 67.20, 0.05);
    const cv::Vec3d blue = qd::srgb8_to_lab({0, 0, 255});
    EXPECT_NEAR(blue[0], 32.30, 0.05);
    EXPECT_NEAR(blue[1], 79.19, 0.05);
    EXPECT_NEAR(blue[2], -107.86, 0.05);
    for (double v : {0.0, 30.0, 128.0, 200.0}) {
        const cv::Vec3d g = qd::srgb8_to_lab({v, v, v});
        EXPECT_NEAR(g[1], 0.0, 0.01);
        EXPECT_NEAR(g[2], 0.0, 0.01);
    }
    const cv::Vec3d lin = qd::srgb8_to_linear(cv::Vec3d(12, 140, 250));
    const cv::Vec3d back = qd::lab_to_linear(qd::linear_to_lab(lin));
    for (int k = 0; k < 3; ++k) EXPECT_NEAR(back[k], lin[k], 1e-6);  // 7-digit matrices
    const cv::Vec3d enc = qd::linear_to_srgb8(lin);
    EXPECT_NEAR(enc[0], 12, 1e-9);
    EXPECT_NEAR(enc[1], 140, 1e-9);
    EXPECT_NEAR(enc[2], 250, 1e-9);
}

TEST(QaDatasetColor, ImageTablesRoundTrip) {
    cv::Mat img(1, 256, CV_8UC1);
    for (int i = 0; i < 256; ++i) img.at<uchar>(0, i) = static_cast<uchar>(i);
    const cv::Mat lin = qd::srgb8_to_linear(img);
    const cv::Mat back = qd::linear_to_srgb8(lin);
    EXPECT_EQ(cv::norm(img, back, cv::NORM_INF), 0.0);
}

namespace {
qd::Options small_options() {
    qd::Options o;
    o.image_size = {1200, 900};
    o.reference_px_per_mm = 4.0;
    return o;
}
}  // namespace

TEST(QaDatasetGenerator, DeterministicForASeed) {
    const qd::CaseSpec spec{"smudge", qd::Severity::clear, 42};
    const auto a = qd::generate_case(spec, small_options());
    const auto b = qd::generate_case(spec, small_options());
    EXPECT_EQ(a.truth, b.truth);
    EXPECT_EQ(a.case_json, b.case_json);
    EXPECT_EQ(cv::norm(a.capture, b.capture, cv::NORM_INF), 0.0);
    EXPECT_EQ(cv::norm(a.reference, b.reference, cv::NORM_INF), 0.0);
    const auto c = qd::generate_case({"smudge", qd::Severity::clear, 43}, small_options());
    EXPECT_NE(a.truth, c.truth);
}

TEST(QaDatasetGenerator, CasesCarryConsistentTruth) {
    const auto opt = small_options();
    for (const auto& spec : qd::dataset_specs(2, 2, 7)) {
        SCOPED_TRACE(spec.type + " " + qd::to_string(spec.severity));
        const auto c = qd::generate_case(spec, opt);
        ASSERT_EQ(c.capture.type(), CV_8UC3);
        EXPECT_EQ(c.capture.size(), opt.image_size);
        ASSERT_EQ(c.reference.type(), CV_8UC4);
        ASSERT_EQ(c.flatfield16.type(), CV_16U);
        EXPECT_LT(c.flatfield16.cols, opt.image_size.width);
        const auto& t = c.truth;
        const bool clear = spec.severity == qd::Severity::clear;
        EXPECT_EQ(t["verdict"], clear ? "fail" : "pass");
        EXPECT_EQ(t["reason"], clear ? spec.type : "ok");
        EXPECT_EQ(t["type"], spec.type);
        // The placement box is the reference at reference_px_per_mm.
        const auto& pl = c.case_json["placement_mm"];
        const double ppm = c.case_json["reference_px_per_mm"];
        EXPECT_NEAR(pl["width"].get<double>() * ppm, c.reference.cols, 1e-6);
        EXPECT_NEAR(pl["height"].get<double>() * ppm, c.reference.rows, 1e-6);
        EXPECT_EQ(c.case_json["calibration"]["H_platen_mm_to_image_px"].size(), 9u);
        // Tolerances: what is labelled good is inside them, what is a clear defect is beyond.
        const double off = t["center_offset_mm"], rot = t["rotation_deg"], sc = t["scale_pct"];
        const double de = t["mean_de00"];
        if (spec.type == "misaligned" && clear) {
            EXPECT_TRUE(off > 7.9 || std::abs(rot) > 2.9 || std::abs(sc) > 4.9) << t.dump();
        } else {
            EXPECT_LE(off, 5.0);
            EXPECT_LE(std::abs(rot), 2.0);
            EXPECT_LE(std::abs(sc), 3.0);
        }
        if (spec.type == "color_shift") {
            if (clear) {
                EXPECT_GE(de, 4.5) << t.dump();
            } else {
                EXPECT_LE(de, 2.5) << t.dump();
            }
        }
        if (spec.type == "good") {
            EXPECT_LT(de, 1.2) << t.dump();
            EXPECT_LT(t["max_de00"].get<double>(), 6.0) << t.dump();  // no local defect hides in a good case
        }
        if (spec.type == "missing_ink" || spec.type == "smudge") {
            if (clear) {
                EXPECT_GE(t["defect"]["area_mm2"].get<double>(), 9.0) << t.dump();
            } else {
                EXPECT_LT(t["defect"]["area_mm2"].get<double>(), 9.0) << t.dump();
            }
        }
        if (spec.type == "wrong_blank") {
            if (clear) {
                EXPECT_GT(t["defect"]["de00_vs_nominal"].get<double>(), 12.0) << t.dump();
            } else {
                EXPECT_LT(t["defect"]["de00_vs_nominal"].get<double>(), 10.0) << t.dump();
            }
        }
    }
}

TEST(QaDatasetGenerator, WritesTheCliCaseFormat) {
    const auto dir = std::filesystem::temp_directory_path() / ("qa-dataset-test-" + std::to_string(::getpid()));
    const auto c = qd::generate_case({"good", qd::Severity::none, 5}, small_options());
    qd::write_case(c, dir, small_options());
    for (const char* f : {"capture.jpg", "reference.png", "flatfield.png", "case.json", "truth.json"})
        EXPECT_TRUE(std::filesystem::exists(dir / f)) << f;
    std::ifstream in(dir / "case.json");
    const auto j = nlohmann::json::parse(in);
    EXPECT_EQ(j["capture"], "capture.jpg");
    EXPECT_EQ(j["calibration"]["flatfield"], "flatfield.png");
    EXPECT_EQ(j["calibration"]["gray_card"]["patches"].size(), 3u);
    const cv::Mat ref = cv::imread((dir / "reference.png").string(), cv::IMREAD_UNCHANGED);
    EXPECT_EQ(ref.type(), CV_8UC4);
    const cv::Mat flat = cv::imread((dir / "flatfield.png").string(), cv::IMREAD_UNCHANGED);
    EXPECT_EQ(flat.type(), CV_16U);
    const auto cam = qd::camera_from_json(j["calibration"], dir);
    EXPECT_EQ(cv::norm(cam.flatfield16, c.flatfield16, cv::NORM_INF), 0.0);
    std::filesystem::remove_all(dir);
}

namespace {
// A platen-sized print file at 100 dpi, as the agent's renderer writes it: transparent but for
// an artwork 200 mm wide, 80 mm from the top.
cv::Mat platen_print_file() {
    const double ppm = 100.0 / 25.4;
    cv::Mat print(cvRound(qd::kPlatenHeightMm * ppm), cvRound(qd::kPlatenWidthMm * ppm), CV_8UC4, cv::Scalar::all(0));
    const auto art = qd::generate_case({"good", qd::Severity::none, 11}, small_options()).reference;
    cv::Mat scaled;
    cv::resize(art, scaled, cv::Size(cvRound(200 * ppm), cvRound(200 * ppm * art.rows / art.cols)), 0, 0, cv::INTER_AREA);
    scaled.copyTo(print(cv::Rect((print.cols - scaled.cols) / 2, cvRound(80 * ppm), scaled.cols, scaled.rows)));
    return print;
}
}  // namespace

TEST(QaDatasetPhoto, PhotographsAPrintFileWithAFixedCamera) {
    const qd::Camera cam = qd::make_camera({1200, 900}, 3);
    qd::PhotoRequest req;
    req.print_bgra = platen_print_file();
    req.garment_srgb = {20, 20, 22};
    qd::Options opt;
    opt.image_size = cam.image_size;
    const qd::Photo good = qd::photograph(req, cam, opt);
    EXPECT_EQ(good.capture.size(), cam.image_size);
    EXPECT_EQ(good.truth["verdict"], "pass");
    EXPECT_EQ(good.truth["garment_nominal"], "black");
    req.defect = "smudge";
    const qd::Photo bad = qd::photograph(req, cam, opt);
    EXPECT_EQ(bad.truth["verdict"], "fail");
    EXPECT_EQ(bad.truth["reason"], "smudge");
    req.defect = "no_such_defect";
    EXPECT_THROW(qd::photograph(req, cam, opt), std::invalid_argument);
}

TEST(QaDatasetPhoto, CliWritesCalibrationOnceAndPhotos) {
    const auto dir = std::filesystem::temp_directory_path() / ("qa-photo-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    ASSERT_TRUE(cv::imwrite((dir / "print.png").string(), platen_print_file()));
    const std::string bin = QA_DATASET_BIN;
    const std::string cmd = bin + " photo --print-file " + (dir / "print.png").string() +
                            " --platen-mm 406.4x508 --garment 31,42,68 --size 1200x900 --calibration-out " +
                            (dir / "station" / "cal.json").string() + " --out " + (dir / "camera" / "a.jpg").string() +
                            " --seed 4 > " + (dir / "truth-a.json").string();
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    EXPECT_TRUE(std::filesystem::exists(dir / "camera" / "a.jpg"));
    EXPECT_TRUE(std::filesystem::exists(dir / "station" / "cal-flatfield.png"));
    std::ifstream cf(dir / "station" / "cal.json");
    const auto cal = nlohmann::json::parse(cf);
    EXPECT_EQ(cal["flatfield"], "cal-flatfield.png");
    EXPECT_EQ(cal["H_platen_mm_to_image_px"].size(), 9u);
    // The second photo uses the same station camera, with a defect.
    const std::string cmd2 = bin + " photo --print-file " + (dir / "print.png").string() +
                             " --garment 31,42,68 --calibration-out " + (dir / "station" / "cal.json").string() +
                             " --out " + (dir / "camera" / "b.jpg").string() + " --defect missing_ink --seed 5 > " +
                             (dir / "truth-b.json").string();
    ASSERT_EQ(std::system(cmd2.c_str()), 0) << cmd2;
    std::ifstream cf2(dir / "station" / "cal.json");
    EXPECT_EQ(nlohmann::json::parse(cf2), cal);
    const cv::Mat b = cv::imread((dir / "camera" / "b.jpg").string());
    EXPECT_EQ(b.size(), cv::Size(1200, 900));
    std::ifstream tb(dir / "truth-b.json");
    const auto truth = nlohmann::json::parse(tb);
    EXPECT_EQ(truth["reason"], "missing_ink");
    std::filesystem::remove_all(dir);
}
