// Unit tests of how the camera driver loads its videoio module (pressline-camera-videoio.so):
// a module that cannot be loaded is an error naming the file and dlerror's words, never a
// crash, and is tried again on the next open; file, sequence and snapshot sources never need it.
// Own executable: the module, once loaded, stays loaded for the process.
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "pressline/drivers/camera.hpp"
#include "pressline/testing/util.hpp"

namespace cam = pressline::drivers::camera;
using namespace std::chrono_literals;

namespace {

cam::Settings settings(const std::string& source) {
    cam::Settings s;
    s.name = "camera cam-1";
    s.source = source;
    s.open_timeout = 1000ms;
    s.read_timeout = 1000ms;
    return s;
}

}  // namespace

TEST(CameraModule, MissingModuleIsAnErrorThenLoadsWhenThere) {
    pressline::testing::TempDir dir("pressline-cam-module");
    ::setenv("PRESSLINE_MODULE_DIR", dir.path().c_str(), 1);
    for (const char* source : {"http://127.0.0.1:9/stream.mjpg", "gst:videotestsrc ! appsink"}) {
        cam::Camera c(settings(source));
        auto r = c.grab();
        ASSERT_FALSE(r) << source;
        EXPECT_EQ(r.code, cam::Errc::unsupported) << r.message;
        EXPECT_NE(r.message.find("open: cannot load the video module " + (dir.path() / "pressline-camera-videoio.so").string()),
                  std::string::npos)
            << r.message;
        EXPECT_NE(r.message.find("No such file"), std::string::npos) << r.message;  // dlerror's words
        EXPECT_FALSE(c.is_open());
    }
    // A folder camera needs no module.
    cam::Camera f(settings("folder:" + dir.path().string()));
    EXPECT_TRUE(f.open()) << "folder";

    // Not cached: with the module found (the build tree's), the same source gets past loading.
    ::unsetenv("PRESSLINE_MODULE_DIR");
    cam::Camera c(settings("http://127.0.0.1:9/stream.mjpg"));
    auto r = c.grab();
    ASSERT_FALSE(r);  // nothing listens on port 9
    EXPECT_EQ(r.message.find("video module"), std::string::npos) << r.message;
    EXPECT_NE(r.code, cam::Errc::unsupported) << r.message;
}
