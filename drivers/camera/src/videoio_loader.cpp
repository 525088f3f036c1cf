// Finds and loads pressline-camera-videoio.so for the camera driver (see videoio_module.hpp).
#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>

#include <fmt/format.h>

#include "videoio_module.hpp"

#ifndef PRESSLINE_MODULE_INSTALL_DIR
#error "PRESSLINE_MODULE_INSTALL_DIR must be defined (drivers/camera/CMakeLists.txt)"
#endif
#ifndef PRESSLINE_MODULE_BUILD_DIR
#error "PRESSLINE_MODULE_BUILD_DIR must be defined (drivers/camera/CMakeLists.txt)"
#endif

namespace pressline::drivers::camera::videoio {

namespace {

std::string dl_error() {
    const char* e = ::dlerror();
    return e ? e : "unknown dlopen error";
}

// The file to load: the override, the installed module, or the build tree's.
std::string module_path() {
    const std::string file = kModuleFile;
    if (const char* dir = std::getenv("PRESSLINE_MODULE_DIR"); dir && *dir) return std::string(dir) + "/" + file;
    const std::string installed = std::string(PRESSLINE_MODULE_INSTALL_DIR) + "/" + file;
    if (::access(installed.c_str(), F_OK) == 0) return installed;
    const std::string built = std::string(PRESSLINE_MODULE_BUILD_DIR) + "/" + file;
    if (::access(built.c_str(), F_OK) == 0) return built;
    return installed;  // named in the error: where it should be
}

}  // namespace

const Module* load_module(std::string& why) {
    static std::mutex m;
    static const Module* loaded = nullptr;
    std::lock_guard lk(m);
    if (loaded) return loaded;
    const std::string path = module_path();
    const auto hint = "; it serves v4l2:, rtsp://, http(s):// and gst: cameras (install it, or set "
                      "PRESSLINE_MODULE_DIR to its directory)";
    // RTLD_LOCAL: OpenCV's videoio and what it pulls in stay out of the global namespace.
    void* h = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        why = fmt::format("cannot load the video module {}: {}{}", path, dl_error(), hint);
        return nullptr;
    }
    ::dlerror();
    auto* entry = reinterpret_cast<const Module* (*)()>(::dlsym(h, kEntryPoint));
    if (!entry) {
        why = fmt::format("cannot load the video module {}: {}", path, dl_error());
        ::dlclose(h);
        return nullptr;
    }
    const Module* mod = entry();
    if (!mod || mod->abi_version != kAbiVersion) {
        why = fmt::format("cannot load the video module {}: built for another version of pressline "
                          "(interface {}, this build needs {})",
                          path, mod ? mod->abi_version : 0, kAbiVersion);
        ::dlclose(h);
        return nullptr;
    }
    loaded = mod;  // never unloaded: OpenCV's and FFmpeg's threads may outlive any Camera
    return loaded;
}

}  // namespace pressline::drivers::camera::videoio
