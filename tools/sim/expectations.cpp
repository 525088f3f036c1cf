// Checks expectations about an agent's event stream (see expectations.hpp).
#include "expectations.hpp"

#include <algorithm>
#include <fstream>
#include <stdexcept>

namespace pressline::sim {
namespace {

std::string normalise(const std::string& type) { return short_type(type); }

std::string join(const std::vector<std::string>& v, const char* sep) {
    std::string out;
    for (const auto& s : v) {
        if (!out.empty()) out += sep;
        out += s;
    }
    return out;
}

std::vector<std::string> type_list(const Json& v, const std::string& where, const char* key) {
    if (!v.is_array() || v.empty()) throw std::runtime_error(where + ": \"" + key + "\" must be a non-empty list of event types");
    std::vector<std::string> out;
    for (const auto& t : v) {
        if (!t.is_string()) throw std::runtime_error(where + ": \"" + key + "\" must list strings");
        out.push_back(normalise(t.get<std::string>()));
    }
    return out;
}

}  // namespace

bool json_subset(const Json& want, const Json& have) {
    if (want.is_object()) {
        if (!have.is_object()) return false;
        for (auto it = want.begin(); it != want.end(); ++it) {
            auto h = have.find(it.key());
            if (h == have.end() || !json_subset(it.value(), *h)) return false;
        }
        return true;
    }
    return want == have;
}

std::string Expectation::describe() const {
    std::string who = subject ? *subject : std::string("(any subject)");
    std::string what;
    if (single_type) {
        what = (count == 1 ? "" : std::to_string(count) + " x ") + events.front();
        if (max) what += " (at most " + std::to_string(*max) + ")";
        if (!data.is_null()) what += " with data " + data.dump();
    } else if (!events.empty()) {
        what = join(events, " -> ");
    }
    if (final_type) what += std::string(what.empty() ? "" : ", ") + "ending in " + *final_type;
    if (!never.empty()) what += std::string(what.empty() ? "" : ", ") + "never " + join(never, "/");
    std::string out = who + ": " + what;
    if (!note.empty()) out += " [" + note + "]";
    return out;
}

EventChecker EventChecker::load(const std::filesystem::path& file) {
    std::ifstream in(file);
    if (!in) throw std::runtime_error("cannot read expectation file " + file.string());
    Json doc;
    try {
        doc = Json::parse(in);
    } catch (const Json::parse_error& e) {
        throw std::runtime_error(file.string() + ": not valid JSON: " + e.what());
    }
    return from_json(doc, file.string());
}

EventChecker EventChecker::from_json(const Json& doc, const std::string& origin) {
    const Json* list = &doc;
    if (doc.is_object() && doc.contains("expect")) list = &doc["expect"];
    if (!list->is_array()) throw std::runtime_error(origin + ": expected a JSON list of expectations (or {\"expect\": [...]})");
    EventChecker checker;
    static const std::vector<std::string> known = {"subject", "type", "count", "max", "data",
                                                   "events", "final", "never", "note"};
    for (std::size_t i = 0; i < list->size(); ++i) {
        const Json& j = (*list)[i];
        std::string where = origin + ": entry " + std::to_string(i + 1);
        if (!j.is_object()) throw std::runtime_error(where + ": must be an object");
        for (auto it = j.begin(); it != j.end(); ++it)
            if (std::find(known.begin(), known.end(), it.key()) == known.end())
                throw std::runtime_error(where + ": unknown key \"" + it.key() + "\"");
        Expectation e;
        if (auto s = j.find("subject"); s != j.end()) {
            if (!s->is_string()) throw std::runtime_error(where + ": \"subject\" must be a string");
            e.subject = s->get<std::string>();
        }
        if (j.contains("type") && j.contains("events"))
            throw std::runtime_error(where + ": give either \"type\" or \"events\", not both");
        if (auto t = j.find("type"); t != j.end()) {
            if (!t->is_string()) throw std::runtime_error(where + ": \"type\" must be a string");
            e.events = {normalise(t->get<std::string>())};
            e.single_type = true;
        }
        if (auto ev = j.find("events"); ev != j.end()) e.events = type_list(*ev, where, "events");
        if (!e.single_type && (j.contains("count") || j.contains("max") || j.contains("data")))
            throw std::runtime_error(where + ": \"count\", \"max\" and \"data\" go with \"type\"");
        if (auto c = j.find("count"); c != j.end()) {
            if (!c->is_number_integer() || c->get<int>() < 0) throw std::runtime_error(where + ": \"count\" must be an integer >= 0");
            e.count = c->get<int>();
        }
        if (auto m = j.find("max"); m != j.end()) {
            if (!m->is_number_integer() || m->get<int>() < 0) throw std::runtime_error(where + ": \"max\" must be an integer >= 0");
            e.max = m->get<int>();
            if (*e.max < e.count) throw std::runtime_error(where + ": \"max\" is below \"count\"");
        }
        if (auto d = j.find("data"); d != j.end()) {
            if (!d->is_object()) throw std::runtime_error(where + ": \"data\" must be an object");
            e.data = *d;
        }
        if (auto f = j.find("final"); f != j.end()) {
            if (!f->is_string()) throw std::runtime_error(where + ": \"final\" must be a string");
            if (!e.subject) throw std::runtime_error(where + ": \"final\" needs a \"subject\"");
            e.final_type = normalise(f->get<std::string>());
        }
        if (auto n = j.find("never"); n != j.end()) e.never = type_list(*n, where, "never");
        if (auto n = j.find("note"); n != j.end() && n->is_string()) e.note = n->get<std::string>();
        if (e.events.empty() && !e.final_type && e.never.empty())
            throw std::runtime_error(where + ": needs \"type\", \"events\", \"final\" or \"never\"");
        checker.expectations_.push_back(std::move(e));
    }
    return checker;
}

void EventChecker::fail(std::string why) { failures_.push_back(std::move(why)); }

void EventChecker::observe(const Json& event) {
    std::string line = format_event_line(event);
    std::string id = event.is_object() ? event.value("id", std::string()) : std::string();
    auto seq = event_sequence(event);
    if (!seq) {
        fail("event without a valid 20-digit sequence: " + line);
    } else {
        auto known = ids_by_sequence_.find(*seq);
        if (known != ids_by_sequence_.end()) {
            if (known->second == id) {  // QoS 1 redelivery or a re-send after a crash: same event
                ++redelivered_;
                return;
            }
            fail("sequence #" + std::to_string(*seq) + " used by two different events (ids " + known->second +
                 " and " + id + "): " + line);
        } else if (last_seq_ && *seq <= *last_seq_) {
            fail("sequence went backwards: #" + std::to_string(*seq) + " after #" + std::to_string(*last_seq_) +
                 ": " + line);
        } else if (last_seq_ && *seq != *last_seq_ + 1) {
            fail("sequence gap: #" + std::to_string(*last_seq_) + " then #" + std::to_string(*seq) + " (" +
                 std::to_string(*seq - *last_seq_ - 1) + " event(s) missing): " + line);
        }
        ids_by_sequence_.emplace(*seq, id);
        if (!first_seq_) first_seq_ = seq;
        if (!last_seq_ || *seq > *last_seq_) last_seq_ = seq;
    }
    ++events_;

    std::string type = normalise(event.value("type", std::string()));
    std::string subject = event.value("subject", std::string());
    const Json no_data;
    auto d = event.find("data");
    const Json& data = d != event.end() ? *d : no_data;

    last_by_subject_[subject] = Seen{type, line};
    last_by_type_[type] = Seen{type, line};

    for (auto& e : expectations_) {
        if (e.subject && *e.subject != subject) continue;
        if (std::find(e.never.begin(), e.never.end(), type) != e.never.end())
            fail("unexpected " + type + " (" + e.describe() + "): " + line);
        if (e.single_type) {
            if (type == e.events.front() && (e.data.is_null() || json_subset(e.data, data))) {
                ++e.matched;
                if (e.max && e.matched == *e.max + 1)
                    fail("too many " + type + " events (" + e.describe() + "): " + line);
            }
        } else if (e.steps_done < e.events.size() && type == e.events[e.steps_done]) {
            ++e.steps_done;
        }
    }
}

bool EventChecker::met(const Expectation& e) const {
    if (e.single_type && e.matched < e.count) return false;
    if (!e.single_type && e.steps_done < e.events.size()) return false;
    if (e.final_type) {
        auto it = last_by_subject_.find(*e.subject);
        if (it == last_by_subject_.end() || it->second.type != *e.final_type) return false;
    }
    return true;
}

bool EventChecker::satisfied() const {
    return failures_.empty() &&
           std::all_of(expectations_.begin(), expectations_.end(), [&](const auto& e) { return met(e); });
}

std::vector<std::string> EventChecker::unmet_report() const {
    std::vector<std::string> out;
    for (const auto& e : expectations_) {
        if (met(e)) continue;
        std::string line = "NOT MET  " + e.describe();
        if (e.single_type) {
            line += "; seen " + std::to_string(e.matched) + " matching";
        } else if (!e.events.empty()) {
            line += "; reached " + (e.steps_done ? e.events[e.steps_done - 1] : std::string("nothing yet")) +
                    ", waiting for " + (e.steps_done < e.events.size() ? e.events[e.steps_done] : *e.final_type);
        }
        if (e.subject) {
            auto it = last_by_subject_.find(*e.subject);
            line += it == last_by_subject_.end() ? "\n           no event seen for " + *e.subject
                                                 : "\n           last event for " + *e.subject + ": " + it->second.line;
        } else if (!e.events.empty()) {
            const auto& want = e.single_type ? e.events.front() : e.events[std::min(e.steps_done, e.events.size() - 1)];
            auto it = last_by_type_.find(want);
            line += it == last_by_type_.end() ? "\n           no " + want + " event seen at all"
                                              : "\n           last " + want + " seen: " + it->second.line;
        }
        out.push_back(std::move(line));
    }
    return out;
}

std::string EventChecker::stream_summary() const {
    std::string out = std::to_string(events_) + " event(s)";
    if (first_seq_) out += ", sequence #" + std::to_string(*first_seq_) + "..#" + std::to_string(*last_seq_);
    if (redelivered_) out += ", " + std::to_string(redelivered_) + " redelivered (ignored)";
    return out;
}

}  // namespace pressline::sim
