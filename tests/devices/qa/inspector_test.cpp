// The inspector (devices/qa) against the known truth of generated cases (tools/qa-dataset):
// placement within 0.5 mm, rotation within 0.3°, scale within 0.5 %, mean ΔE00 within 0.5 on
// colour-shift and good cases, and the right verdict and reason on every case. Cases are
// generated at test time with fixed seeds (2000x1500, plus one at 4000x3000), written to a
// temporary directory and read back through load_case(), as the CLI does.
//
// These tests are not to be loosened to let an inspector pass: a failure names the case, what
// the inspector measured and the truth.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/core/utility.hpp>

#include "pressline/devices/qa/inspector.hpp"
#include "pressline/qa_dataset/dataset.hpp"

namespace qa = pressline::devices::qa;
namespace qd = pressline::qa_dataset;
namespace fs = std::filesystem;

namespace {

struct Spec {
    std::string type;
    qd::Severity severity;
    std::uint64_t seed;
    cv::Size size{2000, 1500};
};

std::string name_of(const Spec& s) {
    std::string n = s.type + "_" + qd::to_string(s.severity) + "_" + std::to_string(s.seed);
    if (s.size.width != 2000) n += "_" + std::to_string(s.size.width);
    return n;
}

// The fixed set. Seeds are arbitrary; the truth of each (the mode of a defect, the garment, the
// artwork) follows from the seed and is printed when a test fails.
const Spec kCases[] = {
    {"good", qd::Severity::none, 101},
    {"good", qd::Severity::none, 102},
    {"good", qd::Severity::none, 103},
    {"good", qd::Severity::none, 104},
    {"good", qd::Severity::none, 105, {4000, 3000}},
    {"misaligned", qd::Severity::clear, 201},
    {"misaligned", qd::Severity::clear, 202},
    {"misaligned", qd::Severity::clear, 203},
    {"misaligned", qd::Severity::just_inside, 211},
    {"misaligned", qd::Severity::just_inside, 212},
    {"misaligned", qd::Severity::just_inside, 213},
    {"color_shift", qd::Severity::clear, 301},
    {"color_shift", qd::Severity::clear, 302},
    {"color_shift", qd::Severity::just_inside, 311},
    {"missing_ink", qd::Severity::clear, 401},
    {"missing_ink", qd::Severity::clear, 402},
    {"missing_ink", qd::Severity::just_inside, 411},
    {"smudge", qd::Severity::clear, 501},
    {"smudge", qd::Severity::clear, 502},
    {"smudge", qd::Severity::just_inside, 511},
    {"wrong_design", qd::Severity::clear, 601},
    {"missing_underbase", qd::Severity::clear, 701},
    {"wrong_blank", qd::Severity::clear, 801},
    {"wrong_blank", qd::Severity::just_inside, 811},
};

void PrintTo(const Spec& s, std::ostream* os) { *os << name_of(s); }

class InspectorCase : public ::testing::TestWithParam<Spec> {};

// The metrics without the long lists (first defects only, no timings), for failure messages.
nlohmann::json brief(const nlohmann::json& m) {
    nlohmann::json b = m;
    if (b.contains("defects") && b["defects"].is_array() && b["defects"].size() > 3) {
        const auto n = b["defects"].size();
        nlohmann::json first = nlohmann::json::array();
        for (std::size_t i = 0; i < 3; ++i) first.push_back(b["defects"][i]);
        first.push_back("... " + std::to_string(n - 3) + " more");
        b["defects"] = first;
    }
    b.erase("timing_ms");
    return b;
}

double num(const nlohmann::json& j, const char* key) {
    return j.contains(key) && j[key].is_number() ? j[key].get<double>() : NAN;
}

}  // namespace

TEST_P(InspectorCase, MatchesTruth) {
    const Spec& s = GetParam();
    qd::Options opt;
    opt.image_size = s.size;
    const qd::GeneratedCase gen = qd::generate_case({s.type, s.severity, s.seed}, opt);
    const fs::path dir = fs::temp_directory_path() / ("qa-inspector-test-" + std::to_string(::getpid()) + "-" + name_of(s));
    qd::write_case(gen, dir, opt);
    const auto cleanup = [&] { std::error_code ec; fs::remove_all(dir, ec); };

    auto loaded = qa::load_case(gen.case_json, dir);
    if (auto* p = std::get_if<qa::Problem>(&loaded)) {
        cleanup();
        FAIL() << "load_case: " << p->reason << " " << p->field << ": " << p->message;
    }
    cv::setNumThreads(2);
    auto result = qa::inspect(std::get<qa::Case>(loaded));
    cleanup();
    if (auto* p = std::get_if<qa::Problem>(&result)) FAIL() << "inspect: " << p->reason << " " << p->field << ": " << p->message;
    const qa::Verdict& v = std::get<qa::Verdict>(result);
    const nlohmann::json& t = gen.truth;
    const nlohmann::json& m = v.metrics;
    std::ostringstream ctx;
    ctx << name_of(s) << "\n  truth:    " << t.dump() << "\n  verdict:  " << (v.pass ? "pass" : "fail") << " "
        << v.reason << " confidence " << v.confidence << "\n  metrics:  " << brief(m).dump();
    SCOPED_TRACE(ctx.str());

    EXPECT_EQ(v.pass ? "pass" : "fail", t["verdict"].get<std::string>());
    EXPECT_EQ(v.reason, t["reason"].get<std::string>());

    // Placement: meaningless against another design.
    if (s.type != "wrong_design") {
        ASSERT_TRUE(m.contains("offset_mm") && m["offset_mm"].is_object()) << "metrics.offset_mm missing";
        EXPECT_NEAR(num(m["offset_mm"], "x"), t["offset_mm"]["x"].get<double>(), 0.5) << "offset x (mm)";
        EXPECT_NEAR(num(m["offset_mm"], "y"), t["offset_mm"]["y"].get<double>(), 0.5) << "offset y (mm)";
        EXPECT_NEAR(num(m, "center_offset_mm"), t["center_offset_mm"].get<double>(), 0.5) << "centre offset (mm)";
        EXPECT_NEAR(num(m, "rotation_deg"), t["rotation_deg"].get<double>(), 0.3) << "rotation (deg)";
        EXPECT_NEAR(num(m, "scale_pct"), t["scale_pct"].get<double>(), 0.5) << "scale (%)";
    }
    if (s.type == "color_shift" || s.type == "good") {
        EXPECT_NEAR(num(m, "mean_de00"), t["mean_de00"].get<double>(), 0.5) << "mean ΔE00";
    }
}

INSTANTIATE_TEST_SUITE_P(Fixed, InspectorCase, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Spec>& i) { return name_of(i.param); });

// A Case that loads always gets a verdict; an unusable one is a Problem, never an exception.
TEST(Inspector, EmptyCaptureIsAProblem) {
    qa::Case c;
    c.reference = cv::Mat(10, 10, CV_8UC4, cv::Scalar::all(255));
    c.reference_px_per_mm = 1;
    c.placement_mm = {100, 100, 10, 10};
    c.calibration.image_size = {100, 100};
    c.calibration.H = cv::Matx33d::eye();
    EXPECT_NO_THROW({
        auto r = qa::inspect(c);
        EXPECT_TRUE(std::holds_alternative<qa::Problem>(r));
    });
}

TEST(Inspector, SingularHomographyIsAProblem) {
    qd::Options opt;
    opt.image_size = {1000, 750};
    const auto gen = qd::generate_case({"good", qd::Severity::none, 9}, opt);
    qa::Case c;
    c.capture = gen.capture;
    c.reference = gen.reference;
    c.reference_px_per_mm = gen.case_json["reference_px_per_mm"];
    const auto& p = gen.case_json["placement_mm"];
    c.placement_mm = {p["x"], p["y"], p["width"], p["height"]};
    c.garment_srgb_nominal = {128, 128, 128};
    c.calibration.image_size = opt.image_size;
    c.calibration.H = cv::Matx33d::zeros();
    EXPECT_NO_THROW({
        auto r = qa::inspect(c);
        EXPECT_TRUE(std::holds_alternative<qa::Problem>(r));
    });
}
