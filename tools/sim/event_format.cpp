// Readable one-line rendering of CloudEvents and status messages (see event_format.hpp).
#include "event_format.hpp"

#include <time.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <string_view>
#include <utility>
#include <vector>

namespace pressline::sim {
namespace {

// Keys shown first, in this order; "message" always goes last.
constexpr std::array<std::string_view, 16> kLeadingKeys = {
    "status", "state",  "reason",  "field",  "conflict", "command", "command_id", "verdict",
    "order_id", "priority", "attempt", "try", "device", "what", "reasons", "error"};

std::string value_text(const Json& v) {
    if (v.is_string()) {
        const auto& s = v.get_ref<const std::string&>();
        bool plain = !s.empty() && std::none_of(s.begin(), s.end(), [](char c) {
            return c == ' ' || c == '"' || c == '=' || c == '\t' || c == '\n' || c == '\\';
        });
        return plain ? s : v.dump();
    }
    return v.dump();
}

// QA events carry every measurement: the line shows the few a person reads first, the evidence
// folder, and the defects' kinds.
constexpr std::array<std::string_view, 6> kQaMetrics = {"center_offset_mm", "rotation_deg", "scale_pct",
                                                        "mean_de00", "defect_area_mm2", "inspect_ms"};

std::string number_text(const Json& v) {
    if (!v.is_number_float()) return v.dump();
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", v.get<double>());
    return buf;
}

std::string summary_text(const std::string& key, const Json& v) {
    if (key == "metrics" && v.is_object()) {
        std::string out;
        for (auto k : kQaMetrics)
            if (auto it = v.find(std::string(k)); it != v.end() && it->is_number())
                out += (out.empty() ? "" : ",") + std::string(k) + ":" + number_text(*it);
        if (auto it = v.find("capture_error"); it != v.end()) out += (out.empty() ? "" : ",") + std::string("capture_error");
        return "{" + out + "}";
    }
    if (key == "evidence" && v.is_object() && v.contains("dir")) return value_text(v["dir"]);
    if (key == "defects" && v.is_array()) {
        // "3(missing_ink:2,smudge:1)": each kind once, in order of appearance.
        std::vector<std::pair<std::string, int>> kinds;
        for (const auto& d : v) {
            if (!d.is_object() || !d.contains("kind")) continue;
            const std::string k = value_text(d["kind"]);
            auto it = std::find_if(kinds.begin(), kinds.end(), [&](const auto& e) { return e.first == k; });
            if (it == kinds.end()) kinds.emplace_back(k, 1);
            else ++it->second;
        }
        std::string out;
        for (const auto& [k, n] : kinds) out += (out.empty() ? "" : ",") + k + ":" + std::to_string(n);
        return std::to_string(v.size()) + (out.empty() ? "" : "(" + out + ")");
    }
    return value_text(v);
}

std::string pad(std::string s, std::size_t width) {
    if (s.size() < width) s.append(width - s.size(), ' ');
    return s;
}

}  // namespace

std::string short_type(const std::string& type) {
    constexpr std::string_view prefix = "com.pressline.";
    if (type.rfind(prefix, 0) == 0) return type.substr(prefix.size());
    return type;
}

std::optional<std::uint64_t> event_sequence(const Json& event) {
    auto it = event.find("sequence");
    if (it == event.end() || !it->is_string()) return std::nullopt;
    const auto& s = it->get_ref<const std::string&>();
    if (s.empty() || s.size() > 20 || !std::all_of(s.begin(), s.end(), [](char c) {
            return c >= '0' && c <= '9';
        }))
        return std::nullopt;
    try {
        return std::stoull(s);
    } catch (...) {
        return std::nullopt;
    }
}

std::string clock_part(const std::string& t) {
    auto tpos = t.find('T');
    if (tpos == std::string::npos) return t;
    auto rest = t.substr(tpos + 1);
    auto end = rest.find_first_of("Z+-");
    return end == std::string::npos ? rest : rest.substr(0, end);
}

std::string format_data(const Json& data) {
    if (data.is_null()) return "";
    if (!data.is_object()) return data.dump();
    std::string out;
    auto add = [&](const std::string& key, const Json& v) {
        if (!out.empty()) out += ' ';
        out += key + "=" + summary_text(key, v);
    };
    for (auto key : kLeadingKeys) {
        auto it = data.find(std::string(key));
        if (it != data.end()) add(std::string(key), *it);
    }
    for (auto it = data.begin(); it != data.end(); ++it) {
        if (it.key() == "message") continue;
        if (std::find(kLeadingKeys.begin(), kLeadingKeys.end(), it.key()) != kLeadingKeys.end()) continue;
        add(it.key(), it.value());
    }
    if (auto it = data.find("message"); it != data.end()) add("message", *it);
    return out;
}

std::string format_event_line(const Json& event) {
    if (!event.is_object()) return "?  (not a JSON object) " + event.dump();
    auto str = [&](const char* key) {
        auto it = event.find(key);
        return it != event.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    std::string time = str("time");
    std::string when = time.empty() ? utc_clock_now() : clock_part(time);
    auto seq = event_sequence(event);
    std::string seqtext = seq ? "#" + std::to_string(*seq) : "#?(" + value_text(event.value("sequence", Json())) + ")";
    std::string type = short_type(str("type"));
    std::string subject = str("subject");
    std::string line = pad(when, 13) + " " + pad(seqtext, 7) + " " + pad(type.empty() ? "?" : type, 18) +
                       " " + pad(subject.empty() ? "-" : subject, 18);
    auto data = event.find("data");
    if (data != event.end()) {
        auto facts = format_data(*data);
        if (!facts.empty()) line += " " + facts;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    return line;
}

std::string format_status_line(const Json& status, bool retained) {
    std::string when = utc_clock_now();
    std::string state = "?";
    Json rest = Json::object();
    if (status.is_object()) {
        for (auto it = status.begin(); it != status.end(); ++it) {
            if (it.key() == "state" && it->is_string()) state = it->get<std::string>();
            else if (it.key() == "time" && it->is_string()) when = clock_part(it->get<std::string>());
            else rest[it.key()] = it.value();
        }
    } else {
        rest = status;
    }
    std::string line = pad(when, 13) + " " + pad("", 7) + " " + pad("status", 18) + " " + pad(state, 18);
    auto facts = format_data(rest);
    if (!facts.empty()) line += " " + facts;
    if (retained) line += " (retained)";
    return line;
}

std::string utc_clock_now() {
    auto now = std::chrono::system_clock::now();
    auto secs = std::chrono::system_clock::to_time_t(now);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    tm local{};
    ::gmtime_r(&secs, &local);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%02d:%02d:%02d.%03d", local.tm_hour, local.tm_min, local.tm_sec,
                  static_cast<int>(ms));
    return buf;
}

}  // namespace pressline::sim
