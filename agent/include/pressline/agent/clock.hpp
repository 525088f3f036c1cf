// Wall-clock time as the journal stores it: milliseconds since the Unix epoch.
#pragma once

#include <chrono>
#include <cstdint>

namespace pressline::agent {

inline std::int64_t wall_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace pressline::agent
