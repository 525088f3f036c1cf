// The cloud's view of one station, for tests: its topics, its CloudEvents (parsed once, on
// arrival) and its retained status, plus checks of the contract's event format and of the
// gap-free `sequence`.
//
// Threads: as MqttClient; predicates passed to the wait functions run under the lock.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "pressline/testing/mqtt_client.hpp"

namespace pressline::testing {

struct StationTopics {
    std::string prefix = "pressline/v1";
    std::string shop;
    std::string station;

    std::string base() const { return prefix + "/" + shop + "/" + station; }
    std::string jobs() const { return base() + "/jobs"; }
    std::string commands() const { return base() + "/commands"; }
    std::string events() const { return base() + "/events"; }
    std::string status() const { return base() + "/status"; }
    std::string pool_jobs(const std::string& pool) const { return prefix + "/" + shop + "/pool/" + pool + "/jobs"; }
    std::string pool_share(const std::string& pool) const { return "$share/" + shop + "-" + pool + "/" + pool_jobs(pool); }
    std::string source() const { return "pressline://" + shop + "/" + station; }
    std::string client_id() const { return "pressline-" + shop + "-" + station; }
};

// One CloudEvent as received.
struct Event {
    std::size_t index = 0;       // arrival order on this client (0-based)
    std::string raw;             // the payload
    nlohmann::json json;         // parsed payload (discarded value if not JSON)
    std::string id;
    std::string type;            // without "com.pressline.", e.g. "job.accepted"
    std::string full_type;       // as sent
    std::string source;
    std::optional<std::string> subject;
    std::string sequence;        // as sent
    std::int64_t seq = -1;       // parsed, -1 if not a 20-digit decimal string
    nlohmann::json data;         // "data" member (null if absent)
    bool duplicate_flag = false; // MQTT DUP flag

    std::string subject_or_empty() const { return subject.value_or(""); }
    // Member of `data` as a string ("" if absent or not a string).
    std::string data_str(const std::string& key) const;
};

Event parse_event(const Message& m, std::size_t index);

// Problems with an event's envelope against the contract ("" if none): specversion 1.0, id,
// source, type com.pressline.*, time (RFC 3339 UTC), datacontenttype application/json,
// sequence (20 zero-padded decimal digits), data object.
std::string envelope_problems(const Event& e, const std::string& expected_source);

// Sequence analysis over all events received (duplicates included).
struct SequenceReport {
    std::int64_t max = 0;
    std::vector<std::int64_t> missing;        // in 1..max, never seen
    std::vector<std::string> conflicts;       // one sequence carried by different ids/payloads
    std::vector<std::string> malformed;       // events without a valid sequence
    std::map<std::int64_t, Event> distinct;   // first copy of each sequence
    bool gap_free() const { return missing.empty() && conflicts.empty() && malformed.empty(); }
    std::string str() const;                  // summary for failure messages
};
SequenceReport analyze_sequences(const std::vector<Event>& events);

struct Status {
    std::size_t index = 0;
    nlohmann::json json;
    bool retained = false;
    std::string state() const;   // json["state"] or ""
    std::string intake() const;  // json["intake"] or ""
};

class StationClient {
public:
    // Connects a persistent-session client and subscribes to the station's events and status.
    StationClient(ClientOptions options, StationTopics topics);
    ~StationClient();
    StationClient(const StationClient&) = delete;
    StationClient& operator=(const StationClient&) = delete;

    MqttClient& mqtt() { return *client_; }
    const StationTopics& topics() const { return topics_; }

    void publish_job(std::string_view payload) { client_->publish(topics_.jobs(), payload); }
    void publish_command(std::string_view payload) { client_->publish(topics_.commands(), payload); }
    void publish_pool_job(const std::string& pool, std::string_view payload) {
        client_->publish(topics_.pool_jobs(pool), payload);
    }

    std::vector<Event> events() const;
    std::size_t event_count() const;
    std::vector<Event> events_of(std::string_view type) const;
    std::vector<Event> events_for(std::string_view subject) const;
    std::vector<Event> events_for(std::string_view subject, std::string_view type) const;

    // Waits until `pred(all events)` holds; re-evaluated on every arrival.
    bool wait_for(const std::function<bool(const std::vector<Event>&)>& pred,
                  std::chrono::milliseconds timeout = kWait);
    // The first event with index >= `from` that matches.
    std::optional<Event> wait_event(const std::function<bool(const Event&)>& pred,
                                    std::chrono::milliseconds timeout = kWait, std::size_t from = 0);
    std::optional<Event> wait_event(std::string_view type, std::string_view subject,
                                    std::chrono::milliseconds timeout = kWait, std::size_t from = 0);
    // Waits until at least `n` events match.
    bool wait_count(const std::function<bool(const Event&)>& pred, std::size_t n,
                    std::chrono::milliseconds timeout = kWait);
    // Waits `quiet` and returns; for "nothing else arrives" checks after the expected events.
    void settle(std::chrono::milliseconds quiet = 1500ms);

    std::vector<Status> statuses() const;
    std::size_t status_count() const;
    std::optional<Status> last_status() const;
    // The first status message with index >= `from` that matches.
    std::optional<Status> wait_status(const std::function<bool(const Status&)>& pred,
                                      std::chrono::milliseconds timeout = kWait, std::size_t from = 0);

    // All events as text, one per line, for failure messages.
    std::string dump(std::size_t max_events = 60) const;

private:
    void on_message(const Message& m);

    StationTopics topics_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::vector<Event> events_;
    std::vector<Status> statuses_;
    std::unique_ptr<MqttClient> client_;  // last: its callbacks use the members above
};

}  // namespace pressline::testing
