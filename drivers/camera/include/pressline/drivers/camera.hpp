// Camera capture (OpenCV videoio in a module loaded on first use, libcurl for snapshot URLs,
// pressline_image for files): one still frame on request from a V4L2 device, a network camera
// (RTSP, HTTP MJPEG stream, HTTP snapshot URL), a GStreamer pipeline, or an image folder /
// numbered sequence (simulation and tests). V4L2, stream and GStreamer sources need the module
// pressline-camera-videoio.so (drivers/camera/README.md); without it they fail unsupported.
//
// Knows nothing of jobs or QA. Error rule: drivers return Outcome values, never throw (OpenCV
// and libcurl errors are caught here). Threading: a Camera is used by one thread at a time;
// grab() blocks up to the configured timeouts, so call it from the worker pool.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>

#include <opencv2/core/mat.hpp>

#include "pressline/drivers/outcome.hpp"

namespace pressline::drivers::camera {

// Source, by URI-like string:
//   v4l2:/dev/video0  or  v4l2:0          a V4L2 device by path or index
//   rtsp://...                            an RTSP stream (FFmpeg)
//   http://.../stream.mjpg, https://...   an HTTP MJPEG stream (FFmpeg)
//   snapshot:http://host/snap.jpg         one JPEG/PNG per HTTP GET (libcurl)
//   gst:<pipeline ending in appsink>      a GStreamer pipeline
//   folder:/path                          the next image file to appear in a folder (oldest
//                                         first by mtime, then name; each file used once; only
//                                         complete files: renamed in, or size stable 50 ms;
//                                         dotfiles, *.tmp, *.part ignored)
//   sequence:/path/img_%04d.png           numbered images, in order (as OpenCV's CAP_IMAGES; starts
//                                         at 0 or 1; after the last: Errc::closed, then again)
// Details, timeouts per source and example messages: drivers/camera/README.md.
struct Settings {
    std::string name;                 // for messages, as is: "camera cam-1" (empty: "camera")
    std::string source;
    int width = 0, height = 0;        // requested resolution; 0 = device default. V4L2: set, and
                                      // checked at open; GStreamer: put it in the pipeline's
                                      // caps, frames of another size are Errc::unsupported
    std::string fourcc;               // V4L2 pixel format ("MJPG", "YUYV"); empty = default
    double exposure = -1;             // V4L2 manual exposure (device units); < 0 = automatic
    std::chrono::milliseconds open_timeout{5000};
    std::chrono::milliseconds read_timeout{5000};
    int flush_frames = 2;             // streams: frames read and dropped so the still is fresh
                                      // (more are dropped while they come out of buffers)
    bool skip_existing = false;       // folder: files already there at the first open count as
                                      // used (a restarted agent must not take old captures for
                                      // new garments); false: they are grabbed, oldest first
};

struct Frame {
    cv::Mat bgr;                      // CV_8UC3
    std::int64_t captured_ms = 0;     // wall clock (ms since the epoch) when grabbed
    std::string origin;               // folder/sequence: the file; streams, V4L2, GStreamer:
                                      // "frame N" (since the (re)connection); "snapshot N"
};

// Error codes (category "camera"); every message reads "NAME (SOURCE): STEP: words"
// (passwords in URLs shown as ***):
//   absent       no such device, file, folder or host; connection refused; HTTP 404
//   busy         device in use by another process (names it when it can); HTTP 503/429
//   timeout      open or read not done within open_timeout / read_timeout; folder: no new image
//   bad_frame    undecodable or empty image (the folder file is used up: the next grab moves on)
//   unsupported  source kind or setting (unknown prefix, no GStreamer, the videoio module cannot
//                be loaded, resolution or pixel format the device does not give)
//   closed       the stream ended or broke, or the end of a sequence (the next grab reconnects,
//                or starts the sequence again)
//   io           anything else: permission denied, other HTTP status, socket error (added after
//                the first draft; new values only ever go at the end)
enum class Errc { absent = 1, busy, timeout, bad_frame, unsupported, closed, io };
const std::error_category& category();
std::error_code make_error_code(Errc e);

class Camera {
public:
    explicit Camera(Settings s);
    ~Camera();
    Camera(const Camera&) = delete;
    Camera& operator=(const Camera&) = delete;

    // Opens the source (bounded by open_timeout). Already open: no-op. Optional: grab() opens.
    Status open();
    // One fresh frame. Opens (or reopens after a failure: reconnection) as needed; blocks about
    // open_timeout + read_timeout at most (twice that when an idle connection turned out closed
    // and is reconnected once within the call). A failed grab closes a capture source, so the
    // next grab reconnects. For folder sources: the next unused file, or timeout when none
    // appears within read_timeout (files used stay used across close() and reopen).
    Outcome<Frame> grab();
    // Releases the device, connection or folder watch. The destructor calls it.
    void close();
    bool is_open() const;
    const Settings& settings() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace pressline::drivers::camera

template <>
struct std::is_error_code_enum<pressline::drivers::camera::Errc> : std::true_type {};
