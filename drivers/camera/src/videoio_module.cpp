// pressline-camera-videoio.so: cv::VideoCapture for the camera driver, loaded by it with dlopen
// only when a V4L2, stream or GStreamer camera is opened (see videoio_module.hpp).
#include "videoio_module.hpp"

#include <opencv2/videoio.hpp>
#include <opencv2/videoio/registry.hpp>

namespace pressline::drivers::camera::videoio {
namespace {

cv::VideoCapture& vc(void* p) { return *static_cast<cv::VideoCapture*>(p); }
const cv::VideoCapture& vc(const void* p) { return *static_cast<const cv::VideoCapture*>(p); }

const Module kModule{
    kAbiVersion,
    []() -> void* { return new cv::VideoCapture(); },
    [](void* p) { delete static_cast<cv::VideoCapture*>(p); },
    [](void* p, const std::string& source, int api, const std::vector<int>& params) {
        return vc(p).open(source, api, params);
    },
    [](const void* p) { return vc(p).isOpened(); },
    [](void* p) { return vc(p).grab(); },
    [](void* p, cv::Mat& frame) { return vc(p).retrieve(frame); },
    [](void* p, int prop, double value) { return vc(p).set(prop, value); },
    [](const void* p, int prop) { return vc(p).get(prop); },
    [](void* p) { vc(p).release(); },
    [](int api) { return cv::videoio_registry::hasBackend(static_cast<cv::VideoCaptureAPIs>(api)); },
};

}  // namespace
}  // namespace pressline::drivers::camera::videoio

extern "C" __attribute__((visibility("default"))) const pressline::drivers::camera::videoio::Module*
pressline_camera_videoio_module() {
    return &pressline::drivers::camera::videoio::kModule;
}
