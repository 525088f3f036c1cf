// Integration tests of the camera driver's network sources against a real HTTP camera emulator
// (tests/fixtures/camera/ipcam.py, a child process per test on a free loopback port): MJPEG
// streams through OpenCV's FFmpeg backend, snapshot URLs through libcurl; and GStreamer
// pipelines when the plugins are installed. Frames carry their number as 8 black/white bands,
// and the emulator's picture follows a clock, so the tests can tell how fresh a frame is.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "pressline/drivers/camera.hpp"
#include "pressline/testing/process.hpp"
#include "pressline/testing/util.hpp"

namespace cam = pressline::drivers::camera;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using pressline::testing::poll_until;
using pressline::testing::Process;
using pressline::testing::read_file;
using pressline::testing::TempDir;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kFrames = 256;  // frame numbers 0..255, 8 bits
constexpr double kFps = 20;
constexpr int kW = 160, kH = 120;

milliseconds since(Clock::time_point t) { return std::chrono::duration_cast<milliseconds>(Clock::now() - t); }

// Frame i: 8 vertical bands, band b white when bit b of i is set, on a grey border.
cv::Mat frame_image(int i) {
    cv::Mat m(kH, kW, CV_8UC3, cv::Scalar(128, 128, 128));
    for (int b = 0; b < 8; ++b) {
        const cv::Scalar c = (i >> b) & 1 ? cv::Scalar(255, 255, 255) : cv::Scalar(0, 0, 0);
        cv::rectangle(m, cv::Rect(b * 20, 10, 20, kH - 20), c, cv::FILLED);
    }
    return m;
}

// The number a decoded frame carries; -1 if it does not look like one of ours.
int frame_number(const cv::Mat& bgr) {
    if (bgr.cols != kW || bgr.rows != kH || bgr.type() != CV_8UC3) return -1;
    cv::Mat gray;
    cv::cvtColor(bgr, gray, cv::COLOR_BGR2GRAY);
    int n = 0;
    for (int b = 0; b < 8; ++b) {
        const int v = gray.at<unsigned char>(kH / 2, b * 20 + 10);
        if (v > 200)
            n |= 1 << b;
        else if (v > 55)
            return -1;
    }
    return n;
}

std::string python() {
    if (const char* p = std::getenv("PRESSLINE_PYTHON"); p && *p) return p;
    if (::access("/usr/bin/python3", X_OK) == 0) return "/usr/bin/python3";
    return "python3";
}

// A loopback port nothing listens on (bound, then closed).
std::uint16_t free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

class NetCamera : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        frames_ = new TempDir("pressline-cam-frames");
        for (int i = 0; i < kFrames; ++i) {
            char name[32];
            std::snprintf(name, sizeof name, "frame_%03d.jpg", i);
            ASSERT_TRUE(cv::imwrite((frames_->path() / name).string(), frame_image(i),
                                    {cv::IMWRITE_JPEG_QUALITY, 90}));
        }
    }
    static void TearDownTestSuite() {
        delete frames_;
        frames_ = nullptr;
    }

    void SetUp() override {
        dir_ = std::make_unique<TempDir>("pressline-cam");
        log_ = dir_->path() / "ipcam.log";
        start_server(0);
    }

    void TearDown() override {
        server_.kill_and_wait();
        if (HasFailure()) {
            std::cerr << "--- ipcam log (" << log_ << ") ---\n"
                      << pressline::testing::tail_lines(read_file(log_), 40);
            dir_->keep();
        }
    }

    void start_server(std::uint16_t port) {
        const fs::path port_file = dir_->path() / "port";
        fs::remove(port_file);
        pressline::testing::SpawnOptions o;
        o.argv = {python(),      (pressline::testing::fixtures_dir() / "camera" / "ipcam.py").string(),
                  "--frames",    frames_->path().string(),
                  "--port-file", port_file.string(),
                  "--port",      std::to_string(port),
                  "--fps",       std::to_string(kFps)};
        o.stderr_path = log_;
        server_ = Process::spawn(o);
        ASSERT_TRUE(poll_until([&] { return fs::exists(port_file); }, 10s, 5ms))
            << "ipcam.py did not start: " << read_file(log_);
        std::istringstream in(read_file(port_file));
        in >> port_ >> start_;
    }

    // The emulator's picture now (its clock is the system clock), as frame numbers that do not
    // wrap at kFrames.
    long emulator_frame() const {
        const double now =
            std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
        return static_cast<long>(std::floor((now - start_) * kFps));
    }

    // How many frame periods `got` is behind the emulator's picture now.
    int lag(int got) const { return behind(got, emulator_frame()); }

    // How many frame periods `got` is behind `ref` (an emulator_frame()), in -128..127: negative
    // when `got` is newer than `ref`.
    static int behind(int got, long ref) {
        const int d = static_cast<int>(((ref - got) % kFrames + kFrames) % kFrames);
        return d >= kFrames / 2 ? d - kFrames : d;
    }

    std::string url(const std::string& path) const {
        return "http://127.0.0.1:" + std::to_string(port_) + path;
    }

    cam::Settings settings(const std::string& source, milliseconds open_timeout = 3000ms,
                           milliseconds read_timeout = 2000ms) const {
        cam::Settings s;
        s.name = "camera cam-net";
        s.source = source;
        s.open_timeout = open_timeout;
        s.read_timeout = read_timeout;
        return s;
    }

    static TempDir* frames_;
    std::unique_ptr<TempDir> dir_;
    fs::path log_;
    Process server_;
    std::uint16_t port_ = 0;
    double start_ = 0;
};

TempDir* NetCamera::frames_ = nullptr;

// ---- MJPEG stream (FFmpeg) ------------------------------------------------------------------

// Freshness is judged against the emulator's picture when the grab was called, not when it
// returned: on a loaded machine (CI: ctest -j2 on 2 cores) the grab itself, the emulator's
// sending and this thread's return can each be late by hundreds of ms, which says nothing about
// the frame's age. A frame may be at most kFreshSlack periods older than the picture at the call
// (the newest frame in the buffers is ~1 period old; the emulator may be late to send its next);
// and it cannot be newer than the picture at the return. A frame that waited in the buffers
// since the idle pause began is ~30 periods old and fails.
constexpr int kFreshSlack = 6;

TEST_F(NetCamera, StreamGivesTheRightFrameFresh) {
    cam::Camera c(settings(url("/stream.mjpg")));
    // open() first (it loads the videoio module and FFmpeg probes the stream, which may take
    // seconds under load); the first grab must then drain what the probe read meanwhile.
    const auto t0 = Clock::now();
    const auto st = c.open();
    ASSERT_TRUE(st) << st.message;
    std::cerr << "opened after " << since(t0).count() << " ms\n";
    const long at_a = emulator_frame();
    const auto ta = Clock::now();
    auto a = c.grab();
    const long after_a = emulator_frame();
    ASSERT_TRUE(a) << a.message;
    std::cerr << "first frame after " << since(ta).count() << " ms\n";
    ASSERT_EQ(a.value.bgr.type(), CV_8UC3);
    ASSERT_EQ(a.value.bgr.size(), cv::Size(kW, kH));
    const int na = frame_number(a.value.bgr);
    ASSERT_GE(na, 0) << "not one of the emulator's frames";
    std::cerr << "first frame " << na << ": " << behind(na, at_a) << " behind the picture at the call, "
              << behind(na, after_a) << " at the return\n";
    EXPECT_LE(behind(na, at_a), kFreshSlack) << "stale frame " << na << " (picture at the call: "
                                             << at_a % kFrames << ")";
    EXPECT_GE(behind(na, after_a), 0) << "frame " << na << " from the future";
    EXPECT_TRUE(c.is_open());
    EXPECT_EQ(a.value.origin.rfind("frame ", 0), 0u) << a.value.origin;

    // The camera keeps sending while nobody grabs: 1.5 s of frames wait in the socket buffers.
    // The next still must still be fresh, not the one buffered 1.5 s ago.
    std::this_thread::sleep_for(1500ms);
    const long at_b = emulator_frame();
    const auto tb = Clock::now();
    auto b = c.grab();
    const long after_b = emulator_frame();
    ASSERT_TRUE(b) << b.message;
    const int nb = frame_number(b.value.bgr);
    ASSERT_GE(nb, 0);
    std::cerr << "second frame " << nb << " after " << since(tb).count() << " ms: " << behind(nb, at_b)
              << " behind the picture at the call, " << behind(nb, after_b) << " at the return\n";
    EXPECT_LE(behind(nb, at_b), kFreshSlack)
        << "stale frame " << nb << " (first was " << na << ", picture at the call: " << at_b % kFrames << ")";
    EXPECT_GE(behind(nb, after_b), 0) << "frame " << nb << " from the future";
    EXPECT_GE((nb - na + kFrames) % kFrames, 25);
}

TEST_F(NetCamera, StreamServerKilledErrorsThenReconnectsWhenBack) {
    cam::Camera c(settings(url("/stream.mjpg"), 1000ms, 1000ms));
    auto a = c.grab();
    ASSERT_TRUE(a) << a.message;

    server_.kill_and_wait();
    auto t0 = Clock::now();
    auto b = c.grab();
    const auto took = since(t0);
    EXPECT_FALSE(b);
    // The stream broke; the one reconnect within the grab is refused.
    EXPECT_TRUE(b.code == cam::Errc::closed || b.code == cam::Errc::timeout || b.code == cam::Errc::absent)
        << b.message;
    EXPECT_LT(took, 1500ms) << b.message;
    EXPECT_NE(b.message.find("cam-net"), std::string::npos) << b.message;
    EXPECT_NE(b.message.find(url("/stream.mjpg")), std::string::npos) << b.message;
    EXPECT_FALSE(c.is_open()) << "a failed grab closes the stream";

    // Still down: the reconnect is refused, quickly.
    t0 = Clock::now();
    auto d = c.grab();
    EXPECT_EQ(d.code, cam::Errc::absent) << d.message;
    EXPECT_LT(since(t0), 1500ms);
    EXPECT_NE(d.message.find("open"), std::string::npos) << d.message;

    start_server(port_);
    auto e = c.grab();
    ASSERT_TRUE(e) << e.message;
    const int ne = frame_number(e.value.bgr);
    ASSERT_GE(ne, 0);
    EXPECT_LE(lag(ne), 4);
}

TEST_F(NetCamera, StreamClosedWhileIdleReconnectsWithinTheGrab) {
    cam::Camera c(settings(url("/short.mjpg")));
    auto a = c.grab();
    ASSERT_TRUE(a) << a.message;
    std::this_thread::sleep_for(500ms);  // the server closes the connection meanwhile
    auto b = c.grab();
    ASSERT_TRUE(b) << b.message;
    const int nb = frame_number(b.value.bgr);
    ASSERT_GE(nb, 0);
    EXPECT_LE(lag(nb), 4);
    const auto gets =
        pressline::testing::split_lines(pressline::testing::grep_lines(read_file(log_), "GET /short.mjpg"));
    EXPECT_EQ(gets.size(), 2u) << "one reconnect expected";
}

TEST_F(NetCamera, StalledStreamTimesOutWithinReadTimeout) {
    cam::Camera c(settings(url("/stall.mjpg"), 2000ms, 800ms));
    const auto t0 = Clock::now();
    auto f = c.grab();
    const auto took = since(t0);
    EXPECT_EQ(f.code, cam::Errc::timeout) << f.message;
    EXPECT_LT(took, 2000ms + 800ms + 700ms) << f.message;
    EXPECT_FALSE(c.is_open());
}

TEST_F(NetCamera, StreamThatNeverAnswersTimesOutWithinOpenTimeout) {
    cam::Camera c(settings(url("/hang.jpg"), 800ms, 800ms));
    const auto t0 = Clock::now();
    auto st = c.open();
    const auto took = since(t0);
    EXPECT_EQ(st.code, cam::Errc::timeout) << st.message;
    EXPECT_LT(took, 2000ms) << st.message;
    EXPECT_NE(st.message.find("open"), std::string::npos) << st.message;
}

TEST_F(NetCamera, StreamNotFoundIsAbsentWithTheStatus) {
    cam::Camera c(settings(url("/nope.mjpg")));
    auto st = c.open();
    EXPECT_EQ(st.code, cam::Errc::absent) << st.message;
    EXPECT_NE(st.message.find("404"), std::string::npos) << st.message;
}

TEST_F(NetCamera, NothingListeningIsAbsent) {
    cam::Camera c(settings("http://127.0.0.1:" + std::to_string(free_port()) + "/stream.mjpg"));
    const auto t0 = Clock::now();
    auto f = c.grab();
    EXPECT_EQ(f.code, cam::Errc::absent) << f.message;
    EXPECT_LT(since(t0), 1500ms);
}

// ---- snapshot URLs (libcurl) ----------------------------------------------------------------

TEST_F(NetCamera, SnapshotGivesTheCurrentFrame) {
    cam::Camera c(settings("snapshot:" + url("/snap.jpg")));
    for (int i = 0; i < 3; ++i) {
        auto f = c.grab();
        ASSERT_TRUE(f) << f.message;
        ASSERT_EQ(f.value.bgr.type(), CV_8UC3);
        ASSERT_EQ(f.value.bgr.size(), cv::Size(kW, kH));
        const int n = frame_number(f.value.bgr);
        ASSERT_GE(n, 0);
        EXPECT_LE(lag(n), 2);
        std::this_thread::sleep_for(100ms);
    }
}

TEST_F(NetCamera, SnapshotNotFoundIsAbsent) {
    cam::Camera c(settings("snapshot:" + url("/missing.jpg")));
    auto f = c.grab();
    EXPECT_EQ(f.code, cam::Errc::absent) << f.message;
    EXPECT_NE(f.message.find("HTTP status 404"), std::string::npos) << f.message;
    EXPECT_NE(f.message.find("cam-net"), std::string::npos) << f.message;
    EXPECT_NE(f.message.find("/missing.jpg"), std::string::npos) << f.message;
}

TEST_F(NetCamera, SnapshotThatIsNotAnImageIsBadFrame) {
    cam::Camera c(settings("snapshot:" + url("/text.jpg")));
    auto f = c.grab();
    EXPECT_EQ(f.code, cam::Errc::bad_frame) << f.message;
    EXPECT_NE(f.message.find("decode"), std::string::npos) << f.message;
}

TEST_F(NetCamera, SnapshotThatNeverAnswersTimesOutWithinReadTimeout) {
    cam::Camera c(settings("snapshot:" + url("/hang.jpg"), 2000ms, 700ms));
    const auto t0 = Clock::now();
    auto f = c.grab();
    const auto took = since(t0);
    EXPECT_EQ(f.code, cam::Errc::timeout) << f.message;
    EXPECT_GE(took, 650ms);
    EXPECT_LT(took, 1200ms) << f.message;
}

TEST_F(NetCamera, SnapshotNothingListeningIsAbsent) {
    cam::Camera c(settings("snapshot:http://127.0.0.1:" + std::to_string(free_port()) + "/snap.jpg"));
    auto f = c.grab();
    EXPECT_EQ(f.code, cam::Errc::absent) << f.message;
}

// ---- GStreamer ------------------------------------------------------------------------------

bool have_gst_plugins() {
    for (const char* dir :
         {"/usr/lib/x86_64-linux-gnu/gstreamer-1.0", "/usr/lib/aarch64-linux-gnu/gstreamer-1.0"})
        if (fs::exists(fs::path(dir) / "libgstvideotestsrc.so") &&
            fs::exists(fs::path(dir) / "libgstapp.so") &&
            fs::exists(fs::path(dir) / "libgstvideoconvertscale.so") |
                fs::exists(fs::path(dir) / "libgstvideoconvert.so"))
            return true;
    return false;
}

TEST(GstCamera, BrokenPipelineIsAnErrorNotACrash) {
    cam::Settings s;
    s.name = "camera cam-gst";
    s.source = "gst:nosuchelement ! appsink";
    s.open_timeout = 3000ms;
    cam::Camera c(s);
    auto f = c.grab();
    EXPECT_FALSE(f);
    EXPECT_TRUE(f.code == cam::Errc::absent || f.code == cam::Errc::unsupported) << f.message;
    EXPECT_NE(f.message.find("cam-gst"), std::string::npos) << f.message;
}

TEST(GstCamera, TestSourceGivesBgrFrames) {
    if (!have_gst_plugins())
        GTEST_SKIP() << "needs gstreamer1.0-plugins-base (videotestsrc, videoconvert, appsink)";
    cam::Settings s;
    s.name = "camera cam-gst";
    s.source =
        "gst:videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! "
        "videoconvert ! video/x-raw,format=BGR ! appsink drop=true max-buffers=1";
    s.width = 320;
    s.height = 240;
    cam::Camera c(s);
    for (int i = 0; i < 2; ++i) {
        auto f = c.grab();
        ASSERT_TRUE(f) << f.message;
        EXPECT_EQ(f.value.bgr.type(), CV_8UC3);
        EXPECT_EQ(f.value.bgr.size(), cv::Size(320, 240));
    }
}

}  // namespace

namespace {

// GStreamer has no read timeout of its own in OpenCV 4.6: the driver bounds the grab with a
// thread. A live source at one frame per 10 s must make a grab time out, on time.
TEST(GstCamera, SlowSourceTimesOutWithinReadTimeout) {
    if (!have_gst_plugins())
        GTEST_SKIP() << "needs gstreamer1.0-plugins-base (videotestsrc, videoconvert, appsink)";
    cam::Settings s;
    s.name = "camera cam-gst";
    s.source =
        "gst:videotestsrc is-live=true ! video/x-raw,width=64,height=48,framerate=1/10 ! "
        "videoconvert ! video/x-raw,format=BGR ! appsink";
    s.read_timeout = 500ms;
    s.flush_frames = 0;
    cam::Camera c(s);
    bool timed_out = false;
    for (int i = 0; i < 3 && !timed_out; ++i) {
        const auto t0 = Clock::now();
        auto f = c.grab();
        const auto took = since(t0);
        EXPECT_LT(took, s.open_timeout + 900ms) << f.message;
        if (!f) {
            EXPECT_EQ(f.code, cam::Errc::timeout) << f.message;
            EXPECT_LT(took, 1200ms) << f.message;
            timed_out = true;
        }
    }
    EXPECT_TRUE(timed_out);
    EXPECT_FALSE(c.is_open());
}

}  // namespace
