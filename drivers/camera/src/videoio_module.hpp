// The narrow interface between the camera driver (camera.cpp) and its videoio module
// (pressline-camera-videoio.so, videoio_module.cpp): a table of functions on one
// cv::VideoCapture, and whether OpenCV has a backend.
//
// Why a module: libopencv_videoio links FFmpeg and GStreamer and needs libopencv_imgcodecs
// (GDAL, GDCM, poppler...): ~60 MB resident when linked into the daemon, used only by V4L2,
// stream and GStreamer cameras. The driver dlopen()s the module on the first open of such a
// source (videoio_loader.cpp); folder:, sequence: and snapshot: sources never load it.
//
// Both sides are built together by the same compiler from this header, so C++ types (std::string,
// cv::Mat) cross the boundary; kAbiVersion is checked at load to refuse a module from another
// build. OpenCV's
// exceptions pass through unchanged (the driver catches them). The module is never unloaded.
#pragma once

#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

namespace pressline::drivers::camera::videoio {

// Raise whenever this header changes.
inline constexpr int kAbiVersion = 1;

// The file name of the module and the name of its entry point.
inline constexpr const char* kModuleFile = "pressline-camera-videoio.so";
inline constexpr const char* kEntryPoint = "pressline_camera_videoio_module";

// The module's table: plain functions on an opaque handle (one cv::VideoCapture), with the
// meanings of cv::VideoCapture's methods (api: cv::VideoCaptureAPIs, prop:
// cv::VideoCaptureProperties). Not an abstract class: the module is loaded RTLD_LOCAL, so the
// driver and the module each have their own type_info for such a class, and UBSan's vptr check
// (tools/test --sanitize) may take a call across the two for a wrong dynamic type.
// A handle is used by one thread at a time, like the VideoCapture it holds.
struct Module {
    int abi_version;
    void* (*create)();  // a new, closed capture
    void (*destroy)(void* cap);
    bool (*open)(void* cap, const std::string& source, int api, const std::vector<int>& params);
    bool (*is_opened)(const void* cap);
    bool (*grab)(void* cap);
    bool (*retrieve)(void* cap, cv::Mat& frame);
    bool (*set)(void* cap, int prop, double value);
    double (*get)(const void* cap, int prop);
    void (*release)(void* cap);
    bool (*has_backend)(int api);  // cv::videoio_registry::hasBackend
};

// The driver's handle on one capture of the module (the calls camera.cpp makes).
class Capture {
public:
    explicit Capture(const Module* m) : m_(m), cap_(m->create()) {}
    ~Capture() { m_->destroy(cap_); }
    Capture(const Capture&) = delete;
    Capture& operator=(const Capture&) = delete;
    bool open(const std::string& source, int api, const std::vector<int>& params) {
        return m_->open(cap_, source, api, params);
    }
    bool isOpened() const { return m_->is_opened(cap_); }
    bool grab() { return m_->grab(cap_); }
    bool retrieve(cv::Mat& frame) { return m_->retrieve(cap_, frame); }
    bool set(int prop, double value) { return m_->set(cap_, prop, value); }
    double get(int prop) const { return m_->get(cap_, prop); }
    void release() { m_->release(cap_); }

private:
    const Module* m_;
    void* cap_;
};

// The driver's side (videoio_loader.cpp): the module, loaded once per process on first call
// (later calls return it at once; a failure is retried on the next call). nullptr and `why`
// ("cannot load the video module FILE: dlerror's words...") when it cannot be loaded.
// Where: $PRESSLINE_MODULE_DIR if set (only there); else the install directory
// (PRESSLINE_MODULE_INSTALL_DIR, <libdir>/pressline) when the file is there; else the build
// tree's output directory (PRESSLINE_MODULE_BUILD_DIR), so tests and tools/demo run from it.
// Thread-safe.
const Module* load_module(std::string& why);

}  // namespace pressline::drivers::camera::videoio

// The module's one exported symbol: its Module table (static storage).
extern "C" const pressline::drivers::camera::videoio::Module* pressline_camera_videoio_module();
