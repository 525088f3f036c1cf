// The cloud's view of one station (see station.hpp).
#include "pressline/testing/station.hpp"

#include <regex>
#include <set>
#include <sstream>
#include <thread>

namespace pressline::testing {

using nlohmann::json;

std::string Event::data_str(const std::string& key) const {
    if (data.is_object() && data.contains(key) && data[key].is_string()) return data[key].get<std::string>();
    return {};
}

Event parse_event(const Message& m, std::size_t index) {
    Event e;
    e.index = index;
    e.raw = m.payload;
    e.duplicate_flag = m.duplicate;
    e.json = json::parse(m.payload, nullptr, false);
    if (!e.json.is_object()) return e;
    auto str = [&](const char* k) -> std::string {
        auto it = e.json.find(k);
        return it != e.json.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    e.id = str("id");
    e.full_type = str("type");
    e.type = e.full_type.starts_with("com.pressline.") ? e.full_type.substr(14) : e.full_type;
    e.source = str("source");
    if (auto it = e.json.find("subject"); it != e.json.end() && it->is_string()) e.subject = it->get<std::string>();
    e.sequence = str("sequence");
    if (e.sequence.size() == 20 && e.sequence.find_first_not_of("0123456789") == std::string::npos)
        e.seq = std::stoll(e.sequence);
    if (auto it = e.json.find("data"); it != e.json.end()) e.data = *it;
    return e;
}

std::string envelope_problems(const Event& e, const std::string& expected_source) {
    std::vector<std::string> p;
    const json& j = e.json;
    if (!j.is_object()) return "not a JSON object: " + e.raw.substr(0, 200);
    if (j.value("specversion", json()) != "1.0") p.push_back("specversion is not \"1.0\"");
    if (e.id.empty()) p.push_back("id missing or empty");
    if (e.source != expected_source) p.push_back("source is '" + e.source + "', expected '" + expected_source + "'");
    if (!e.full_type.starts_with("com.pressline.")) p.push_back("type '" + e.full_type + "' lacks com.pressline.");
    static const std::regex rfc3339(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2}))");
    const auto t = j.value("time", json());
    if (!t.is_string() || !std::regex_match(t.get<std::string>(), rfc3339)) p.push_back("time is not RFC 3339: " + t.dump());
    if (j.value("datacontenttype", json()) != "application/json") p.push_back("datacontenttype is not application/json");
    if (e.seq < 0) p.push_back("sequence '" + e.sequence + "' is not 20 decimal digits");
    if (!e.data.is_object()) p.push_back("data is not an object");
    std::string out;
    for (const auto& s : p) out += (out.empty() ? "" : "; ") + s;
    return out;
}

SequenceReport analyze_sequences(const std::vector<Event>& events) {
    SequenceReport r;
    for (const auto& e : events) {
        if (e.seq < 0) {
            static const char* hex = "0123456789abcdef";
            std::string head;
            for (std::size_t i = 0; i < e.raw.size() && i < 16; ++i) {
                const auto b = static_cast<unsigned char>(e.raw[i]);
                head += hex[b >> 4];
                head += hex[b & 15];
                head += ' ';
            }
            r.malformed.push_back("#" + std::to_string(e.index) + (e.duplicate_flag ? " (MQTT DUP)" : "") + " " +
                                  std::to_string(e.raw.size()) + " bytes, first bytes " + head + ": " +
                                  nlohmann::json(e.raw.substr(0, 200)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
            continue;
        }
        auto [it, inserted] = r.distinct.emplace(e.seq, e);
        if (!inserted) {
            const Event& first = it->second;
            if (first.id != e.id || first.type != e.type || first.subject != e.subject || first.data != e.data)
                r.conflicts.push_back("sequence " + e.sequence + ": '" + first.raw + "' vs '" + e.raw + "'");
        }
        r.max = std::max(r.max, e.seq);
    }
    for (std::int64_t s = 1; s <= r.max; ++s)
        if (!r.distinct.count(s)) r.missing.push_back(s);
    // The same id must never be used for two sequences either.
    std::map<std::string, std::int64_t> by_id;
    for (const auto& [seq, e] : r.distinct) {
        auto [it, inserted] = by_id.emplace(e.id, seq);
        if (!inserted)
            r.conflicts.push_back("id " + e.id + " used by sequences " + std::to_string(it->second) + " and " +
                                  std::to_string(seq));
    }
    return r;
}

std::string SequenceReport::str() const {
    std::ostringstream o;
    o << "max sequence " << max << ", distinct " << distinct.size() << ", missing " << missing.size();
    if (!missing.empty()) {
        o << " [";
        for (std::size_t i = 0; i < missing.size() && i < 30; ++i) o << (i ? " " : "") << missing[i];
        o << (missing.size() > 30 ? " ..." : "") << "]";
    }
    o << ", conflicts " << conflicts.size();
    for (std::size_t i = 0; i < conflicts.size() && i < 5; ++i) o << "\n  " << conflicts[i];
    o << ", malformed " << malformed.size();
    for (std::size_t i = 0; i < malformed.size() && i < 5; ++i) o << "\n  " << malformed[i];
    return o.str();
}

std::string Status::state() const { return json.is_object() ? json.value("state", std::string()) : ""; }
std::string Status::intake() const {
    return json.is_object() && json.contains("intake") && json["intake"].is_string() ? json["intake"].get<std::string>() : "";
}

StationClient::StationClient(ClientOptions options, StationTopics topics) : topics_(std::move(topics)) {
    client_ = std::make_unique<MqttClient>(std::move(options));
    client_->on_message([this](const Message& m) { on_message(m); });
    client_->connect();
    client_->subscribe(topics_.events(), 1);
    client_->subscribe(topics_.status(), 1);
}

StationClient::~StationClient() { client_.reset(); }

void StationClient::on_message(const Message& m) {
    {
        std::lock_guard lk(mu_);
        if (m.topic == topics_.events()) {
            events_.push_back(parse_event(m, events_.size()));
        } else if (m.topic == topics_.status()) {
            Status s;
            s.index = statuses_.size();
            s.json = json::parse(m.payload, nullptr, false);
            s.retained = m.retained;
            statuses_.push_back(std::move(s));
        }
    }
    cv_.notify_all();
}

std::vector<Event> StationClient::events() const {
    std::lock_guard lk(mu_);
    return events_;
}

std::size_t StationClient::event_count() const {
    std::lock_guard lk(mu_);
    return events_.size();
}

std::vector<Event> StationClient::events_of(std::string_view type) const {
    std::lock_guard lk(mu_);
    std::vector<Event> out;
    for (const auto& e : events_)
        if (e.type == type) out.push_back(e);
    return out;
}

std::vector<Event> StationClient::events_for(std::string_view subject) const {
    std::lock_guard lk(mu_);
    std::vector<Event> out;
    for (const auto& e : events_)
        if (e.subject && *e.subject == subject) out.push_back(e);
    return out;
}

std::vector<Event> StationClient::events_for(std::string_view subject, std::string_view type) const {
    std::lock_guard lk(mu_);
    std::vector<Event> out;
    for (const auto& e : events_)
        if (e.subject && *e.subject == subject && e.type == type) out.push_back(e);
    return out;
}

bool StationClient::wait_for(const std::function<bool(const std::vector<Event>&)>& pred,
                             std::chrono::milliseconds timeout) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, timeout, [&] { return pred(events_); });
}

std::optional<Event> StationClient::wait_event(const std::function<bool(const Event&)>& pred,
                                               std::chrono::milliseconds timeout, std::size_t from) {
    std::optional<Event> found;
    std::size_t scanned = from;
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, timeout, [&] {
        for (; scanned < events_.size(); ++scanned)
            if (pred(events_[scanned])) {
                found = events_[scanned];
                return true;
            }
        return false;
    });
    return found;
}

std::optional<Event> StationClient::wait_event(std::string_view type, std::string_view subject,
                                               std::chrono::milliseconds timeout, std::size_t from) {
    const std::string t(type), s(subject);
    return wait_event([&](const Event& e) { return e.type == t && e.subject && *e.subject == s; }, timeout, from);
}

bool StationClient::wait_count(const std::function<bool(const Event&)>& pred, std::size_t n,
                               std::chrono::milliseconds timeout) {
    std::size_t scanned = 0, count = 0;
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, timeout, [&] {
        for (; scanned < events_.size(); ++scanned)
            if (pred(events_[scanned])) ++count;
        return count >= n;
    });
}

void StationClient::settle(std::chrono::milliseconds quiet) { std::this_thread::sleep_for(quiet); }

std::vector<Status> StationClient::statuses() const {
    std::lock_guard lk(mu_);
    return statuses_;
}

std::size_t StationClient::status_count() const {
    std::lock_guard lk(mu_);
    return statuses_.size();
}

std::optional<Status> StationClient::last_status() const {
    std::lock_guard lk(mu_);
    if (statuses_.empty()) return std::nullopt;
    return statuses_.back();
}

std::optional<Status> StationClient::wait_status(const std::function<bool(const Status&)>& pred,
                                                 std::chrono::milliseconds timeout, std::size_t from) {
    std::optional<Status> found;
    std::size_t scanned = from;
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, timeout, [&] {
        for (; scanned < statuses_.size(); ++scanned)
            if (pred(statuses_[scanned])) {
                found = statuses_[scanned];
                return true;
            }
        return false;
    });
    return found;
}

std::string StationClient::dump(std::size_t max_events) const {
    std::lock_guard lk(mu_);
    std::ostringstream o;
    o << events_.size() << " events, " << statuses_.size() << " status messages\n";
    const std::size_t start = events_.size() > max_events ? events_.size() - max_events : 0;
    if (start) o << "  ... (" << start << " earlier events)\n";
    for (std::size_t i = start; i < events_.size(); ++i) {
        const auto& e = events_[i];
        o << "  #" << i << " seq=" << e.sequence << " " << e.type << " subject=" << e.subject_or_empty()
          << " data=" << (e.data.is_null() ? std::string("null") : e.data.dump()) << "\n";
    }
    for (const auto& s : statuses_) o << "  status" << (s.retained ? "(r)" : "") << ": " << s.json.dump() << "\n";
    return o.str();
}

}  // namespace pressline::testing
