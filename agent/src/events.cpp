// CloudEvents rendering, ULIDs and time stamps.
#include "pressline/agent/events.hpp"

#include <array>
#include <cstdio>
#include <ctime>
#include <random>

namespace pressline::agent {

std::string new_ulid(std::chrono::system_clock::time_point now) {
    static constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    thread_local std::mt19937_64 rng{std::random_device{}()};
    const auto ms = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count());
    // 48 bits of time + 80 bits of randomness = 128 bits, written as 26 base32 digits.
    const std::uint64_t r1 = rng();
    const std::uint64_t r2 = rng();
    std::array<std::uint8_t, 16> bytes{};
    for (int i = 0; i < 6; ++i) bytes[i] = static_cast<std::uint8_t>(ms >> (8 * (5 - i)));
    for (int i = 0; i < 8; ++i) bytes[6 + i] = static_cast<std::uint8_t>(r1 >> (8 * i));
    for (int i = 0; i < 2; ++i) bytes[14 + i] = static_cast<std::uint8_t>(r2 >> (8 * i));
    std::string out(26, '0');
    // 130 bits of output for 128 bits of input: the first digit carries the top 3 bits.
    unsigned __int128 v = 0;
    for (auto b : bytes) v = (v << 8) | b;
    for (int i = 25; i >= 0; --i) {
        out[static_cast<std::size_t>(i)] = kAlphabet[static_cast<unsigned>(v & 31u)];
        v >>= 5;
    }
    return out;
}

std::string format_time(std::chrono::system_clock::time_point t) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    const std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[96];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms % 1000));
    return buf;
}

std::string format_sequence(std::int64_t seq) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "%020lld", static_cast<long long>(seq));
    return buf;
}

std::string render_event(const EventSpec& spec, const std::string& id, const std::string& time,
                         std::int64_t sequence, const std::string& source) {
    nlohmann::ordered_json ev;
    ev["specversion"] = "1.0";
    ev["id"] = id;
    ev["source"] = source;
    ev["type"] = "com.pressline." + spec.type;
    if (spec.subject) ev["subject"] = *spec.subject;
    ev["time"] = time;
    ev["datacontenttype"] = "application/json";
    ev["sequence"] = format_sequence(sequence);
    ev["data"] = spec.data;
    return ev.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace pressline::agent
