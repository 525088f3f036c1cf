// `pressline qa inspect` as a technician runs it: one case JSON on stdin, one verdict JSON on
// stdout and exit 0; bad input exits 2 with a message on stderr naming the field. Runs the built
// binary (PRESSLINE_BIN, or $PRESSLINE_BIN at run time) in the case's directory, since relative
// paths resolve against the working directory.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "pressline/qa_dataset/dataset.hpp"

namespace qd = pressline::qa_dataset;
namespace fs = std::filesystem;

namespace {

struct CliResult {
    int code = -1;
    std::string out, err;
};

std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

std::string pressline_bin() {
    if (const char* e = std::getenv("PRESSLINE_BIN")) return e;
    return PRESSLINE_BIN;
}

// Runs `pressline qa inspect` in `cwd` with `input` on stdin.
CliResult inspect(const fs::path& cwd, const std::string& input) {
    const fs::path in = cwd / ".stdin", out = cwd / ".stdout", err = cwd / ".stderr";
    {
        std::ofstream f(in, std::ios::binary);
        f << input;
    }
    const std::string bin = pressline_bin();
    const pid_t pid = ::fork();
    if (pid == 0) {
        const int i = ::open(in.c_str(), O_RDONLY);
        const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (i < 0 || o < 0 || e < 0 || ::dup2(i, 0) < 0 || ::dup2(o, 1) < 0 || ::dup2(e, 2) < 0 ||
            ::chdir(cwd.c_str()) != 0)
            ::_exit(126);
        ::execl(bin.c_str(), bin.c_str(), "qa", "inspect", static_cast<char*>(nullptr));
        ::_exit(127);
    }
    CliResult r;
    int status = 0;
    if (pid > 0 && ::waitpid(pid, &status, 0) == pid && WIFEXITED(status)) r.code = WEXITSTATUS(status);
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
}

class QaInspectCli : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = fs::temp_directory_path() / ("qa-cli-test-" + std::to_string(::getpid()));
        qd::Options opt;
        opt.image_size = {2000, 1500};
        const auto c = qd::generate_case({"good", qd::Severity::none, 77}, opt);
        qd::write_case(c, dir_, opt);
        case_ = c.case_json;
    }
    static void TearDownTestSuite() {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    static inline fs::path dir_;
    static inline nlohmann::json case_;
};

}  // namespace

TEST_F(QaInspectCli, GoodCasePrintsOneVerdict) {
    const CliResult r = inspect(dir_, case_.dump());
    ASSERT_EQ(r.code, 0) << r.err;
    nlohmann::json j;
    ASSERT_NO_THROW(j = nlohmann::json::parse(r.out)) << r.out;
    ASSERT_TRUE(j.is_object());
    EXPECT_EQ(j["verdict"], "pass") << r.out;
    EXPECT_EQ(j["reason"], "ok") << r.out;
    EXPECT_TRUE(j["metrics"].is_object());
    EXPECT_TRUE(j["metrics"].contains("offset_mm"));
    EXPECT_TRUE(j["metrics"].contains("mean_de00"));
}

TEST_F(QaInspectCli, MissingCaptureNamesIt) {
    auto c = case_;
    c.erase("capture");
    const CliResult r = inspect(dir_, c.dump());
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("capture"), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST_F(QaInspectCli, CaptureThatDoesNotExistNamesIt) {
    auto c = case_;
    c["capture"] = "no-such-capture.jpg";
    const CliResult r = inspect(dir_, c.dump());
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("capture"), std::string::npos) << r.err;
}

TEST_F(QaInspectCli, CorruptImageIsBadInput) {
    {
        std::ofstream f(dir_ / "corrupt.jpg", std::ios::binary);
        f << "\xff\xd8\xff\xe0 this is not a JPEG, only its first bytes";
    }
    auto c = case_;
    c["capture"] = "corrupt.jpg";
    const CliResult r = inspect(dir_, c.dump());
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("capture"), std::string::npos) << r.err;
}

TEST_F(QaInspectCli, WrongTypeForPxPerMmNamesIt) {
    auto c = case_;
    c["reference_px_per_mm"] = "11.8";
    const CliResult r = inspect(dir_, c.dump());
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("reference_px_per_mm"), std::string::npos) << r.err;
}

TEST_F(QaInspectCli, HomographyNotNineNumbersNamesIt) {
    auto c = case_;
    c["calibration"]["H_platen_mm_to_image_px"].erase(8);
    const CliResult r = inspect(dir_, c.dump());
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("calibration.H_platen_mm_to_image_px"), std::string::npos) << r.err;
}

TEST_F(QaInspectCli, NotJsonIsBadInput) {
    const CliResult r = inspect(dir_, "{\"capture\": \"capture.jpg\", oops");
    EXPECT_EQ(r.code, 2);
    EXPECT_FALSE(r.err.empty());
    EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST_F(QaInspectCli, UnknownFieldsAreIgnored) {
    auto c = case_;
    c["operator_note"] = "re-run from evidence";
    const CliResult r = inspect(dir_, c.dump());
    EXPECT_EQ(r.code, 0) << r.err;
}

// The case's `tolerances` override the defaults key by key (a re-run with the station's own):
// a tolerance tighter than what this good print measures fails it, with that reason.
TEST_F(QaInspectCli, ToleranceOverridesDecide) {
    const CliResult base = inspect(dir_, case_.dump());
    ASSERT_EQ(base.code, 0) << base.err;
    const double de = nlohmann::json::parse(base.out)["metrics"]["mean_de00"].get<double>();
    ASSERT_GT(de, 0.05) << base.out;
    auto c = case_;
    c["tolerances"] = {{"mean_de00", de / 2}};
    const CliResult r = inspect(dir_, c.dump());
    ASSERT_EQ(r.code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["verdict"], "fail") << r.out;
    EXPECT_EQ(j["reason"], "color_shift") << r.out;
}

TEST_F(QaInspectCli, BadToleranceNamesIt) {
    auto c = case_;
    c["tolerances"] = {{"offset_mm", "5"}};
    CliResult r = inspect(dir_, c.dump());
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("tolerances.offset_mm"), std::string::npos) << r.err;
    c["tolerances"] = {{"low_confidence", 3}};
    r = inspect(dir_, c.dump());
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("tolerances.low_confidence: must be a number from 0 to 1"), std::string::npos) << r.err;
    c["tolerances"] = 5;
    r = inspect(dir_, c.dump());
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("tolerances: must be an object"), std::string::npos) << r.err;
}
