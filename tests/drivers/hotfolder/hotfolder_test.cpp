// Integration tests of the hot-folder driver against the simulated RIP (tools/sim/pressline-rip)
// running as a child process in a private temp folder per test.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "pressline/drivers/hotfolder.hpp"

extern char** environ;

namespace hf = pressline::drivers::hotfolder;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string read_text(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void write_text(const fs::path& p, const std::string& s) {
    std::ofstream out(p, std::ios::binary);
    out << s;
}

std::string ticket_for(std::size_t size) {
    return "{\"size\": " + std::to_string(size) + "}";
}

struct Outcome {
    std::error_code ec;
    std::string message;
};

class HotFolderTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "pressline-hf-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        root = tmpl;
        for (auto d : {"hot", "done", "error", "results", "state"}) fs::create_directory(root / d);
        cfg.hot_dir = root / "hot";
        cfg.done_dir = root / "done";
        cfg.error_dir = root / "error";
        cfg.result_dir = root / "results";
        cfg.state_dir = root / "state";
        cfg.take_timeout = 5s;
        cfg.finish_timeout = 5s;
    }

    void TearDown() override {
        stop_rip();
        std::error_code ignored;
        fs::remove_all(root, ignored);
    }

    const char* mode_name(hf::Completion c) {
        switch (c) {
            case hf::Completion::consumed: return "consumed";
            case hf::Completion::folders: return "folders";
            case hf::Completion::result_file: return "result_file";
        }
        return "";
    }

    // Starts the simulated RIP for cfg.completion.
    void start_rip(double delay = 0.0, const std::string& fail_pattern = "FAIL") {
        std::vector<std::string> args = {PRESSLINE_RIP_SIM,
                                         "--hot",
                                         cfg.hot_dir.string(),
                                         "--mode",
                                         mode_name(cfg.completion),
                                         "--done",
                                         cfg.done_dir.string(),
                                         "--error",
                                         cfg.error_dir.string(),
                                         "--results",
                                         cfg.result_dir.string(),
                                         "--delay",
                                         std::to_string(delay),
                                         "--fail-pattern",
                                         fail_pattern,
                                         "--log",
                                         log_path().string(),
                                         "--print-ext",
                                         cfg.print_extension,
                                         "--ticket-ext",
                                         cfg.ticket_extension,
                                         "--result-ext",
                                         cfg.result_extension};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        ASSERT_EQ(::posix_spawn(&rip_pid, argv[0], nullptr, nullptr, argv.data(), environ), 0);
        ASSERT_TRUE(wait_log("started", 5s)) << "the simulated RIP did not start";
    }

    void stop_rip() {
        if (rip_pid <= 0) return;
        ::kill(rip_pid, SIGTERM);
        int status = 0;
        for (int i = 0; i < 100; ++i) {
            if (::waitpid(rip_pid, &status, WNOHANG) == rip_pid) {
                rip_pid = -1;
                return;
            }
            std::this_thread::sleep_for(20ms);
        }
        ::kill(rip_pid, SIGKILL);
        ::waitpid(rip_pid, &status, 0);
        rip_pid = -1;
    }

    fs::path log_path() const { return root / "printed.log"; }
    std::string rip_log() const { return read_text(log_path()); }

    bool wait_log(const std::string& needle, std::chrono::milliseconds limit) {
        auto end = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < end) {
            if (rip_log().find(needle) != std::string::npos) return true;
            std::this_thread::sleep_for(20ms);
        }
        return false;
    }

    hf::HotFolder& folder() {
        if (!driver) {
            driver.emplace(io, cfg);
            auto r = driver->start();
            EXPECT_TRUE(r.ok()) << r.message;
        }
        return *driver;
    }

    // Waits for the outcome of NAME by running the io_context (at most `limit`).
    Outcome wait_for(const std::string& name, std::chrono::milliseconds limit = 10s) {
        std::optional<Outcome> out;
        folder().async_wait(name, [&](std::error_code ec, std::string msg) { out = Outcome{ec, msg}; });
        auto end = std::chrono::steady_clock::now() + limit;
        while (!out && std::chrono::steady_clock::now() < end) {
            io.restart();
            io.run_one_for(50ms);
        }
        if (!out) return Outcome{std::make_error_code(std::errc::timed_out), "test gave up waiting"};
        return *out;
    }

    hf::Result submit(const std::string& name, std::size_t size = 1000) {
        std::string data(size, 'x');
        return folder().submit(name, data, ticket_for(size));
    }

    void expect_no_violation() { EXPECT_EQ(rip_log().find("VIOLATION"), std::string::npos) << rip_log(); }

    fs::path root;
    hf::Config cfg;
    boost::asio::io_context io;
    std::optional<hf::HotFolder> driver;
    pid_t rip_pid = -1;
};

// ---- completion modes ----------------------------------------------------------------------

TEST_F(HotFolderTest, ConsumedModeSucceeds) {
    cfg.completion = hf::Completion::consumed;
    start_rip();
    auto r = submit("pressline_J-1_1_1", 4096);
    ASSERT_TRUE(r.ok()) << r.message;
    EXPECT_EQ(r.message, "pressline_J-1_1_1");
    auto o = wait_for("pressline_J-1_1_1");
    EXPECT_FALSE(o.ec) << o.ec.message() << ": " << o.message;
    EXPECT_TRUE(wait_log("printed pressline_J-1_1_1 size=4096", 2s)) << rip_log();
    // The receipt lets query() tell "consumed" from "never submitted".
    EXPECT_EQ(folder().query("pressline_J-1_1_1").state, hf::State::done);
    EXPECT_TRUE(folder().forget("pressline_J-1_1_1").ok());
    EXPECT_EQ(folder().query("pressline_J-1_1_1").state, hf::State::absent);
    expect_no_violation();
}

TEST_F(HotFolderTest, FoldersModeSucceeds) {
    cfg.completion = hf::Completion::folders;
    start_rip(0.1);
    ASSERT_TRUE(submit("job-ok").ok());
    auto o = wait_for("job-ok");
    EXPECT_FALSE(o.ec) << o.message;
    EXPECT_TRUE(fs::exists(cfg.done_dir / "job-ok.prn"));
    EXPECT_EQ(folder().query("job-ok").state, hf::State::done);
    expect_no_violation();
}

TEST_F(HotFolderTest, FoldersModeReportsRipError) {
    cfg.completion = hf::Completion::folders;
    start_rip();
    ASSERT_TRUE(submit("job-FAIL-1").ok());
    auto o = wait_for("job-FAIL-1");
    EXPECT_EQ(o.ec, hf::Errc::rip_error);
    EXPECT_EQ(o.message, "simulated failure of job-FAIL-1");
    auto loc = folder().query("job-FAIL-1");
    EXPECT_EQ(loc.state, hf::State::error);
    EXPECT_EQ(loc.message, "simulated failure of job-FAIL-1");
}

TEST_F(HotFolderTest, ResultFileModeSucceeds) {
    cfg.completion = hf::Completion::result_file;
    start_rip();
    ASSERT_TRUE(submit("job-r1").ok());
    auto o = wait_for("job-r1");
    EXPECT_FALSE(o.ec) << o.message;
    EXPECT_EQ(folder().query("job-r1").state, hf::State::done);
    EXPECT_TRUE(folder().forget("job-r1").ok());
    EXPECT_FALSE(fs::exists(cfg.result_dir / "job-r1.result"));
    expect_no_violation();
}

TEST_F(HotFolderTest, ResultFileModeReportsRipError) {
    cfg.completion = hf::Completion::result_file;
    cfg.result_extension = "res";
    start_rip();
    ASSERT_TRUE(submit("job-FAIL-2").ok());
    auto o = wait_for("job-FAIL-2");
    EXPECT_EQ(o.ec, hf::Errc::rip_error);
    EXPECT_EQ(o.message, "simulated failure of job-FAIL-2");
}

TEST_F(HotFolderTest, TimesOutWhenNoRipRuns) {
    cfg.take_timeout = 300ms;
    auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(submit("lonely").ok());
    auto o = wait_for("lonely", 5s);
    EXPECT_EQ(o.ec, hf::Errc::timed_out) << o.message;
    EXPECT_NE(o.message.find("not taken"), std::string::npos) << o.message;
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 300ms);
    EXPECT_EQ(folder().query("lonely").state, hf::State::waiting);
}

TEST_F(HotFolderTest, CancelCompletesTheWait) {
    ASSERT_TRUE(submit("cancel-me").ok());
    std::optional<std::error_code> got;
    folder().async_wait("cancel-me", [&](std::error_code ec, std::string) { got = ec; });
    io.run_for(50ms);
    folder().cancel("cancel-me");
    io.restart();
    io.run_for(50ms);
    ASSERT_TRUE(got);
    EXPECT_EQ(*got, std::errc::operation_canceled);
}

// ---- atomicity -----------------------------------------------------------------------------

TEST_F(HotFolderTest, RipNeverSeesAPartialFile) {
    cfg.completion = hf::Completion::consumed;
    start_rip();
    constexpr int n = 20;
    for (int i = 0; i < n; ++i) {
        auto r = submit("bulk-" + std::to_string(i), 256 * 1024 + static_cast<std::size_t>(i));
        ASSERT_TRUE(r.ok()) << r.message;
    }
    for (int i = 0; i < n; ++i) {
        auto o = wait_for("bulk-" + std::to_string(i));
        EXPECT_FALSE(o.ec) << o.message;
    }
    // Consumed mode reports done once the file left the hot folder; the log line follows.
    for (int i = 0; i < n; ++i)
        EXPECT_TRUE(
            wait_log("printed bulk-" + std::to_string(i) + " size=" + std::to_string(256 * 1024 + i), 2s))
            << rip_log();
    expect_no_violation();
}

// Control for the test above: the simulator does notice a file written in place.
TEST_F(HotFolderTest, SimulatorDetectsNonAtomicWrites) {
    cfg.completion = hf::Completion::consumed;
    start_rip(0.5);
    write_text(cfg.hot_dir / "sloppy.json", ticket_for(2000));
    {
        std::ofstream out(cfg.hot_dir / "sloppy.prn", std::ios::binary);
        out << std::string(1000, 'x') << std::flush;
        std::this_thread::sleep_for(200ms);
        out << std::string(1000, 'x');
    }
    EXPECT_TRUE(wait_log("VIOLATION size sloppy", 3s)) << rip_log();
    write_text(cfg.hot_dir / "orphan.prn", "x");
    EXPECT_TRUE(wait_log("VIOLATION ticket-missing orphan", 3s)) << rip_log();
}

// ---- reconciliation after a crash ----------------------------------------------------------

TEST_F(HotFolderTest, QueryCleansUpAnInterruptedSubmission) {
    // Crash between the two renames: the ticket is visible, the print file still a temp.
    write_text(cfg.hot_dir / ".crashed.prn.pressline-tmp", "half");
    write_text(cfg.hot_dir / "crashed.json", ticket_for(10));
    write_text(cfg.state_dir / "crashed.submitted", "");
    auto loc = folder().query("crashed");
    EXPECT_EQ(loc.state, hf::State::partial);
    EXPECT_NE(loc.message.find(".crashed.prn.pressline-tmp"), std::string::npos) << loc.message;
    EXPECT_TRUE(fs::is_empty(cfg.hot_dir));
    EXPECT_TRUE(fs::is_empty(cfg.state_dir));
    EXPECT_EQ(folder().query("crashed").state, hf::State::absent);
    // The name can be submitted again.
    EXPECT_TRUE(submit("crashed").ok());
}

TEST_F(HotFolderTest, QueryAfterRestartSeesWaitingDoneAndError) {
    cfg.completion = hf::Completion::folders;
    ASSERT_TRUE(submit("q-done").ok());
    ASSERT_TRUE(submit("q-FAIL").ok());
    EXPECT_EQ(folder().query("q-done").state, hf::State::waiting);
    EXPECT_EQ(folder().query("never").state, hf::State::absent);
    start_rip();
    EXPECT_FALSE(wait_for("q-done").ec);
    EXPECT_EQ(wait_for("q-FAIL").ec, hf::Errc::rip_error);
    stop_rip();
    ASSERT_TRUE(submit("q-later").ok());

    // "Restart": a fresh driver object over the same folders.
    driver.reset();
    EXPECT_EQ(folder().query("q-later").state, hf::State::waiting);
    EXPECT_EQ(folder().query("q-done").state, hf::State::done);
    auto err = folder().query("q-FAIL");
    EXPECT_EQ(err.state, hf::State::error);
    EXPECT_EQ(err.message, "simulated failure of q-FAIL");
    // Waiting again after the restart sees the outcome that is already there.
    EXPECT_FALSE(wait_for("q-done").ec);
}

TEST_F(HotFolderTest, QueryReportsTakenWhileTheRipHoldsIt) {
    cfg.completion = hf::Completion::result_file;
    ASSERT_TRUE(submit("in-rip").ok());
    // What the RIP does when it takes a file: move it into its own spool.
    fs::create_directory(root / "spool");
    fs::rename(cfg.hot_dir / "in-rip.prn", root / "spool" / "in-rip.prn");
    EXPECT_EQ(folder().query("in-rip").state, hf::State::taken);
    EXPECT_EQ(folder().withdraw("in-rip").ec, hf::Errc::already_taken);
}

// ---- withdrawal ----------------------------------------------------------------------------

TEST_F(HotFolderTest, WithdrawBeforeTheRipTakesIt) {
    cfg.completion = hf::Completion::consumed;
    ASSERT_TRUE(submit("wd-1").ok());
    auto r = folder().withdraw("wd-1");
    EXPECT_TRUE(r.ok()) << r.message;
    EXPECT_TRUE(fs::is_empty(cfg.hot_dir));
    EXPECT_EQ(folder().query("wd-1").state, hf::State::absent);
    start_rip();
    std::this_thread::sleep_for(300ms);  // six scans of the simulator
    EXPECT_EQ(rip_log().find("printed"), std::string::npos) << rip_log();
    EXPECT_EQ(folder().withdraw("wd-1").ec, hf::Errc::not_found);
}

TEST_F(HotFolderTest, WithdrawAfterTheRipTookIt) {
    cfg.completion = hf::Completion::consumed;
    start_rip();
    ASSERT_TRUE(submit("wd-2").ok());
    EXPECT_FALSE(wait_for("wd-2").ec);
    auto r = folder().withdraw("wd-2");
    EXPECT_EQ(r.ec, hf::Errc::already_taken) << r.message;
    EXPECT_TRUE(wait_log("printed wd-2", 1s));
}

// ---- errors and names ----------------------------------------------------------------------

TEST_F(HotFolderTest, MissingFolderIsNamed) {
    cfg.completion = hf::Completion::folders;
    cfg.error_dir = root / "no-such-dir";
    auto r = hf::check_config(cfg);
    EXPECT_EQ(r.ec, hf::Errc::folder_missing);
    EXPECT_NE(r.message.find((root / "no-such-dir").string()), std::string::npos) << r.message;
    hf::HotFolder bad(io, cfg);
    EXPECT_EQ(bad.start().ec, hf::Errc::folder_missing);

    cfg.completion = hf::Completion::consumed;
    cfg.hot_dir = root / "gone";
    cfg.state_dir.clear();
    hf::HotFolder gone(io, cfg);
    auto s = gone.submit("x", "data", "{}");
    EXPECT_EQ(s.ec, hf::Errc::folder_missing);
    EXPECT_NE(s.message.find((root / "gone").string()), std::string::npos) << s.message;
}

TEST_F(HotFolderTest, NamesAreMadeSafeAndNotReused) {
    EXPECT_EQ(hf::safe_name("pressline_J-1_1_1"), "pressline_J-1_1_1");
    EXPECT_EQ(hf::safe_name("J/1 x*"), "J_1_x_");
    EXPECT_EQ(hf::safe_name(".hidden"), "_hidden");
    EXPECT_EQ(hf::safe_name(std::string(300, 'a')).size(), 200u);
    auto r = submit("J/1");
    ASSERT_TRUE(r.ok()) << r.message;
    EXPECT_EQ(r.message, "J_1");
    EXPECT_TRUE(fs::exists(cfg.hot_dir / "J_1.prn"));
    EXPECT_TRUE(fs::exists(cfg.hot_dir / "J_1.json"));
    EXPECT_EQ(submit("J/1").ec, hf::Errc::already_exists);
    EXPECT_EQ(folder().submit("", "x", "y").ec, hf::Errc::invalid_name);
}

TEST_F(HotFolderTest, SubmitFileCopiesAndWorksWithoutTicket) {
    cfg.completion = hf::Completion::consumed;
    cfg.ticket_extension.clear();
    write_text(root / "art.bin", std::string(100000, 'a'));
    auto r = folder().submit_file("from-file", root / "art.bin", "ignored");
    ASSERT_TRUE(r.ok()) << r.message;
    EXPECT_EQ(fs::file_size(cfg.hot_dir / "from-file.prn"), 100000u);
    start_rip();
    EXPECT_FALSE(wait_for("from-file").ec);
    EXPECT_TRUE(wait_log("printed from-file size=100000", 1s)) << rip_log();
    EXPECT_EQ(folder().submit_file("nope", root / "missing.bin", "").ec,
              std::errc::no_such_file_or_directory);
}

}  // namespace
