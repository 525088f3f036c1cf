// Wall-clock time as the journal stores it: milliseconds since the Unix epoch. Header-only, so
// that the benchmarks can read event times the same way without linking the agent.
#pragma once

#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <iomanip>
#include <optional>
#include <sstream>
#include <string>

namespace pressline::agent {

inline std::int64_t wall_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// RFC 3339 date-time ("2026-11-27T16:00:00Z", offsets and fractions allowed) -> ms since epoch.
inline std::optional<std::int64_t> parse_time_ms(const std::string& s) {
    std::tm tm{};
    std::istringstream in(s);
    in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%S");
    if (in.fail()) return std::nullopt;
    std::int64_t ms = static_cast<std::int64_t>(timegm(&tm)) * 1000;
    std::string rest;
    std::getline(in, rest);
    std::size_t i = 0;
    if (i < rest.size() && rest[i] == '.') {
        int digits = 0, frac = 0;
        for (++i; i < rest.size() && std::isdigit(static_cast<unsigned char>(rest[i])); ++i)
            if (digits < 3) frac = frac * 10 + (rest[i] - '0'), ++digits;
        while (digits < 3) frac *= 10, ++digits;
        ms += frac;
    }
    if (i < rest.size() && (rest[i] == '+' || rest[i] == '-') && rest.size() >= i + 6) {
        const int sign = rest[i] == '+' ? 1 : -1;
        const int h = std::atoi(rest.substr(i + 1, 2).c_str()), m = std::atoi(rest.substr(i + 4, 2).c_str());
        ms -= sign * (h * 60 + m) * 60'000LL;
    }
    return ms;
}

}  // namespace pressline::agent
