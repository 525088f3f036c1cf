// Unit tests of the camera driver's file sources (folder:, sequence:) and of errors that need no
// hardware (absent V4L2 device, unknown source). Real files in a temporary folder, real inotify,
// real OpenCV decoding; writers run on a thread of the test.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "pressline/drivers/camera.hpp"
#include "pressline/testing/util.hpp"

namespace cam = pressline::drivers::camera;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using pressline::testing::TempDir;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

milliseconds since(Clock::time_point t) { return std::chrono::duration_cast<milliseconds>(Clock::now() - t); }

// A small image whose colour says which one it is.
cv::Mat numbered(int i, int w = 64, int h = 48) {
    return cv::Mat(h, w, CV_8UC3, cv::Scalar(i * 10 % 256, 255 - i * 10 % 256, 7));
}

std::vector<unsigned char> png(const cv::Mat& m) {
    std::vector<unsigned char> out;
    EXPECT_TRUE(cv::imencode(".png", m, out));
    return out;
}

void write_bytes(const fs::path& p, const void* data, std::size_t n) {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
}

// Written as producers should: a temp name in the same folder, then rename.
void write_renamed(const fs::path& p, const std::vector<unsigned char>& bytes) {
    const fs::path tmp = p.parent_path() / ("." + p.filename().string() + ".tmp");
    write_bytes(tmp, bytes.data(), bytes.size());
    fs::rename(tmp, p);
}

void set_mtime(const fs::path& p, int seconds_ago) {
    fs::last_write_time(p, fs::file_time_type::clock::now() - std::chrono::seconds(seconds_ago));
}

bool same(const cv::Mat& a, const cv::Mat& b) {
    return a.size() == b.size() && a.type() == b.type() && cv::norm(a, b, cv::NORM_INF) == 0;
}

cam::Settings settings(const std::string& source, milliseconds read_timeout = 2000ms) {
    cam::Settings s;
    s.name = "camera cam-test";
    s.source = source;
    s.read_timeout = read_timeout;
    s.open_timeout = 2000ms;
    return s;
}

std::string name_of(const cam::Frame& f) { return fs::path(f.origin).filename().string(); }

}  // namespace

TEST(CameraFolder, FilesAppearingAreGrabbedInOrderEachOnce) {
    TempDir dir("pressline-cam");
    cam::Camera c(settings("folder:" + dir.path().string(), 2000ms));
    ASSERT_TRUE(c.open()) << c.open().message;

    write_renamed(dir / "a.png", png(numbered(1)));
    std::this_thread::sleep_for(20ms);  // distinct mtimes
    write_renamed(dir / "b.png", png(numbered(2)));
    std::this_thread::sleep_for(20ms);
    // c.png is written in place, slowly: 6 chunks 120 ms apart (longer than the 50 ms size check,
    // so only inotify's "created, not closed yet" keeps it from being read half-written).
    cv::Mat noise(256, 256, CV_8UC3);
    cv::randu(noise, 0, 256);
    const auto slow = png(noise);
    std::thread writer([&] {
        FILE* f = std::fopen((dir / "c.png").c_str(), "wb");
        const std::size_t chunk = slow.size() / 6 + 1;
        for (std::size_t off = 0; off < slow.size(); off += chunk) {
            std::fwrite(slow.data() + off, 1, std::min(chunk, slow.size() - off), f);
            std::fflush(f);
            std::this_thread::sleep_for(120ms);
        }
        std::fclose(f);
    });

    auto a = c.grab();
    ASSERT_TRUE(a) << a.message;
    EXPECT_EQ(name_of(a.value), "a.png");
    EXPECT_TRUE(same(a.value.bgr, numbered(1)));
    EXPECT_GT(a.value.captured_ms, 0);
    auto b = c.grab();
    ASSERT_TRUE(b) << b.message;
    EXPECT_EQ(name_of(b.value), "b.png");
    EXPECT_TRUE(same(b.value.bgr, numbered(2)));
    const auto t0 = Clock::now();
    auto s = c.grab();
    const auto waited = since(t0);
    writer.join();
    ASSERT_TRUE(s) << s.message;
    EXPECT_EQ(name_of(s.value), "c.png");
    EXPECT_TRUE(same(s.value.bgr, noise)) << "the slowly written file was read before it was complete";
    EXPECT_GE(waited, 300ms) << "c.png was taken while still being written";
    EXPECT_EQ(s.value.bgr.type(), CV_8UC3);

    // Nothing new: each file was used once.
    auto none = c.grab();
    EXPECT_EQ(none.code, cam::Errc::timeout);
}

TEST(CameraFolder, ExistingFilesOldestFirstThenByNameIgnoringTempAndHidden) {
    TempDir dir("pressline-cam");
    write_bytes(dir / "z.png", png(numbered(1)).data(), png(numbered(1)).size());
    write_bytes(dir / "c.png", png(numbered(3)).data(), png(numbered(3)).size());
    write_bytes(dir / "b.png", png(numbered(2)).data(), png(numbered(2)).size());
    write_bytes(dir / "a.png", png(numbered(4)).data(), png(numbered(4)).size());
    for (const char* ignored : {".hidden.png", "x.png.tmp", "y.PART", "w.tmp"})
        write_bytes(dir / ignored, png(numbered(9)).data(), png(numbered(9)).size());
    fs::create_directory(dir / "sub.png");
    set_mtime(dir / "z.png", 30);
    set_mtime(dir / "b.png", 20);
    fs::last_write_time(dir / "c.png", fs::last_write_time(dir / "b.png"));  // same mtime: by name
    set_mtime(dir / "a.png", 10);

    cam::Camera c(settings("folder:" + dir.path().string(), 400ms));
    std::vector<std::string> order;
    for (int i = 0; i < 4; ++i) {
        auto f = c.grab();
        ASSERT_TRUE(f) << f.message;
        order.push_back(name_of(f.value));
    }
    EXPECT_EQ(order, (std::vector<std::string>{"z.png", "b.png", "c.png", "a.png"}));
    auto none = c.grab();
    EXPECT_EQ(none.code, cam::Errc::timeout) << none.message;

    // A file replaced under the same name (new inode, new mtime) is a new image.
    write_renamed(dir / "b.png", png(numbered(5)));
    auto again = c.grab();
    ASSERT_TRUE(again) << again.message;
    EXPECT_EQ(name_of(again.value), "b.png");
    EXPECT_TRUE(same(again.value.bgr, numbered(5)));
}

TEST(CameraFolder, AnOlderFileInItsSizeCheckKeepsItsTurn) {
    TempDir dir("pressline-cam");
    write_bytes(dir / "old.png", png(numbered(1)).data(), png(numbered(1)).size());
    set_mtime(dir / "old.png", 10);
    cam::Camera c(settings("folder:" + dir.path().string(), 1000ms));
    ASSERT_TRUE(c.open());
    write_renamed(dir / "new.png", png(numbered(2)));  // ready at once, but newer
    auto a = c.grab();
    ASSERT_TRUE(a) << a.message;
    EXPECT_EQ(name_of(a.value), "old.png");
    auto b = c.grab();
    ASSERT_TRUE(b) << b.message;
    EXPECT_EQ(name_of(b.value), "new.png");
}

TEST(CameraFolder, SkipExistingTakesOnlyNewFiles) {
    TempDir dir("pressline-cam");
    write_renamed(dir / "old.png", png(numbered(1)));
    auto s = settings("folder:" + dir.path().string(), 300ms);
    s.skip_existing = true;
    cam::Camera c(s);
    ASSERT_TRUE(c.open());
    write_renamed(dir / "new.png", png(numbered(2)));
    auto f = c.grab();
    ASSERT_TRUE(f) << f.message;
    EXPECT_EQ(name_of(f.value), "new.png");
    // Reopening does not bring the old file back.
    c.close();
    auto none = c.grab();
    EXPECT_EQ(none.code, cam::Errc::timeout) << none.message;
}

TEST(CameraFolder, EmptyFolderTimesOutAfterReadTimeout) {
    TempDir dir("pressline-cam");
    cam::Camera c(settings("folder:" + dir.path().string(), 300ms));
    const auto t0 = Clock::now();
    auto f = c.grab();
    const auto took = since(t0);
    EXPECT_EQ(f.code, cam::Errc::timeout);
    EXPECT_EQ(f.code.category().name(), std::string("pressline.camera"));
    EXPECT_EQ(f.message.rfind("camera cam-test (folder:" + dir.path().string() + "): grab: ", 0), 0u)
        << f.message;
    EXPECT_NE(f.message.find("grab"), std::string::npos) << f.message;
    EXPECT_GE(took, 290ms);
    EXPECT_LT(took, 1000ms);
    EXPECT_TRUE(c.is_open()) << "a timeout keeps the folder open";
}

TEST(CameraFolder, WaitWakesUpWhenAFileArrives) {
    TempDir dir("pressline-cam");
    cam::Camera c(settings("folder:" + dir.path().string(), 5000ms));
    ASSERT_TRUE(c.open());
    std::thread later([&] {
        std::this_thread::sleep_for(200ms);
        write_renamed(dir / "late.png", png(numbered(3)));
    });
    const auto t0 = Clock::now();
    auto f = c.grab();
    const auto took = since(t0);
    later.join();
    ASSERT_TRUE(f) << f.message;
    EXPECT_EQ(name_of(f.value), "late.png");
    EXPECT_LT(took, 1500ms) << "a renamed file should be taken at once";
}

TEST(CameraFolder, CorruptFileIsBadFrameAndTheNextGoodOneStillComes) {
    TempDir dir("pressline-cam");
    cam::Camera c(settings("folder:" + dir.path().string(), 2000ms));
    ASSERT_TRUE(c.open());
    auto good = png(numbered(6));
    std::vector<unsigned char> corrupt(good.begin(), good.begin() + static_cast<long>(good.size() / 2));
    corrupt[0] = 'X';  // not even a PNG signature
    write_renamed(dir / "1-corrupt.jpg", corrupt);
    std::this_thread::sleep_for(20ms);
    write_renamed(dir / "2-good.png", good);

    auto bad = c.grab();
    EXPECT_EQ(bad.code, cam::Errc::bad_frame) << bad.message;
    EXPECT_NE(bad.message.find("1-corrupt.jpg"), std::string::npos) << bad.message;
    EXPECT_NE(bad.message.find("cam-test"), std::string::npos) << bad.message;
    auto next = c.grab();
    ASSERT_TRUE(next) << next.message;
    EXPECT_EQ(name_of(next.value), "2-good.png");
    EXPECT_TRUE(same(next.value.bgr, numbered(6)));
}

TEST(CameraFolder, MissingFolderIsAbsent) {
    TempDir dir("pressline-cam");
    const fs::path missing = dir / "no-such-folder";
    cam::Camera c(settings("folder:" + missing.string()));
    auto st = c.open();
    EXPECT_EQ(st.code, cam::Errc::absent);
    EXPECT_NE(st.message.find(missing.string()), std::string::npos) << st.message;
    auto f = c.grab();
    EXPECT_EQ(f.code, cam::Errc::absent);
    EXPECT_FALSE(c.is_open());
}

TEST(CameraFolder, RemovedFolderIsAbsent) {
    TempDir dir("pressline-cam");
    const fs::path sub = dir / "in";
    fs::create_directory(sub);
    cam::Camera c(settings("folder:" + sub.string(), 2000ms));
    ASSERT_TRUE(c.open());
    fs::remove(sub);
    const auto t0 = Clock::now();
    auto f = c.grab();
    EXPECT_EQ(f.code, cam::Errc::absent) << f.message;
    EXPECT_LT(since(t0), 1000ms);
}

TEST(CameraFolder, GraySixteenBitAndAlphaBecomeBgr8) {
    TempDir dir("pressline-cam");
    cv::Mat gray16(40, 50, CV_16UC1, cv::Scalar(65535));
    cv::Mat bgra(40, 50, CV_8UC4, cv::Scalar(10, 20, 30, 40));
    cv::Mat gray8(40, 50, CV_8UC1, cv::Scalar(99));
    write_renamed(dir / "1.png", png(gray16));
    std::this_thread::sleep_for(20ms);
    write_renamed(dir / "2.png", png(bgra));
    std::this_thread::sleep_for(20ms);
    write_renamed(dir / "3.png", png(gray8));
    cam::Camera c(settings("folder:" + dir.path().string(), 1000ms));
    std::vector<cv::Vec3b> want = {{255, 255, 255}, {10, 20, 30}, {99, 99, 99}};
    for (const auto& w : want) {
        auto f = c.grab();
        ASSERT_TRUE(f) << f.message;
        EXPECT_EQ(f.value.bgr.type(), CV_8UC3);
        EXPECT_EQ(f.value.bgr.size(), cv::Size(50, 40));
        EXPECT_EQ(f.value.bgr.at<cv::Vec3b>(5, 5), w) << f.value.origin;
    }
}

TEST(CameraSequence, NumberedImagesInOrderThenEndThenAgain) {
    TempDir dir("pressline-cam");
    for (int i = 1; i <= 3; ++i) {
        char name[32];
        std::snprintf(name, sizeof name, "img_%04d.png", i);
        ASSERT_TRUE(cv::imwrite((dir / name).string(), numbered(i)));
    }
    cam::Camera c(settings("sequence:" + (dir / "img_%04d.png").string()));
    ASSERT_TRUE(c.open()) << c.open().message;
    for (int i = 1; i <= 3; ++i) {
        auto f = c.grab();
        ASSERT_TRUE(f) << f.message;
        char name[32];
        std::snprintf(name, sizeof name, "img_%04d.png", i);
        EXPECT_EQ(name_of(f.value), name);
        EXPECT_TRUE(same(f.value.bgr, numbered(i))) << name;
    }
    auto end = c.grab();
    EXPECT_EQ(end.code, cam::Errc::closed) << end.message;
    EXPECT_NE(end.message.find("end of the sequence"), std::string::npos) << end.message;
    EXPECT_NE(end.message.find("cam-test"), std::string::npos) << end.message;
    EXPECT_FALSE(c.is_open());
    // The next grab starts the sequence again (a simulated camera loops).
    auto first = c.grab();
    ASSERT_TRUE(first) << first.message;
    EXPECT_EQ(name_of(first.value), "img_0001.png");
}

TEST(CameraSequence, StartsAtZeroWhenThereIsOne) {
    TempDir dir("pressline-cam");
    for (int i = 0; i <= 1; ++i)
        ASSERT_TRUE(cv::imwrite((dir / ("f" + std::to_string(i) + ".png")).string(), numbered(i + 1)));
    cam::Camera c(settings("sequence:" + (dir / "f%d.png").string()));
    auto a = c.grab();
    ASSERT_TRUE(a) << a.message;
    EXPECT_EQ(name_of(a.value), "f0.png");
    auto b = c.grab();
    ASSERT_TRUE(b) << b.message;
    EXPECT_EQ(name_of(b.value), "f1.png");
}

TEST(CameraSequence, MissingFirstImageIsAbsent) {
    TempDir dir("pressline-cam");
    cam::Camera c(settings("sequence:" + (dir / "img_%04d.png").string()));
    auto st = c.open();
    EXPECT_EQ(st.code, cam::Errc::absent) << st.message;
    EXPECT_NE(st.message.find("img_0001.png"), std::string::npos) << st.message;
}

TEST(CameraSequence, CorruptImageInTheMiddleIsBadFrame) {
    TempDir dir("pressline-cam");
    ASSERT_TRUE(cv::imwrite((dir / "s_01.png").string(), numbered(1)));
    write_bytes(dir / "s_02.png", "garbage", 7);
    ASSERT_TRUE(cv::imwrite((dir / "s_03.png").string(), numbered(3)));
    cam::Camera c(settings("sequence:" + (dir / "s_%02d.png").string()));
    auto a = c.grab();
    ASSERT_TRUE(a) << a.message;
    auto b = c.grab();
    EXPECT_FALSE(b);
    EXPECT_NE(b.message.find("s_02.png"), std::string::npos) << b.message;
}

TEST(CameraV4l2, AbsentDeviceByPathOrIndex) {
    for (const std::string src : {"v4l2:/dev/video57", "v4l2:57"}) {
        cam::Camera c(settings(src));
        auto st = c.open();
        EXPECT_EQ(st.code, cam::Errc::absent) << st.message;
        EXPECT_NE(st.message.find("/dev/video57"), std::string::npos) << st.message;
        EXPECT_NE(st.message.find("cam-test"), std::string::npos) << st.message;
        auto f = c.grab();
        EXPECT_EQ(f.code, cam::Errc::absent) << f.message;
    }
}

TEST(CameraV4l2, NotADeviceNodeIsUnsupported) {
    TempDir dir("pressline-cam");
    write_bytes(dir / "video0", "x", 1);
    cam::Camera c(settings("v4l2:" + (dir / "video0").string()));
    auto st = c.open();
    EXPECT_EQ(st.code, cam::Errc::unsupported) << st.message;
}

TEST(CameraSource, UnknownKindIsUnsupported) {
    for (const std::string src :
         {"ftp://x/y.jpg", "", "folder:", "snapshot:file:///etc/passwd", "sequence:/tmp/img.png",
          "sequence:/tmp/%s_%d.png", "sequence:/tmp/%d_%d.png", "v4l2:"}) {
        cam::Camera c(settings(src));
        auto f = c.grab();
        EXPECT_EQ(f.code, cam::Errc::unsupported) << src << ": " << f.message;
        EXPECT_FALSE(f.message.empty());
    }
}

TEST(CameraSource, PasswordsAreNotInMessages) {
    cam::Camera c(settings("snapshot:http://admin:s3cret@127.0.0.1:1/snap.jpg", 500ms));
    auto f = c.grab();
    EXPECT_FALSE(f);
    EXPECT_EQ(f.message.find("s3cret"), std::string::npos) << f.message;
    EXPECT_NE(f.message.find("admin:***@127.0.0.1"), std::string::npos) << f.message;
}
