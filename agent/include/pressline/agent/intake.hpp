// Intake: turns one inbound MQTT message (job order or command) into one durable journal
// transaction — accepted, duplicate, rejected, or a command and its result — before the message
// is acknowledged.
//
// Threads: on_job() and on_command() run on paho's callback thread and block until the
// transaction has committed (fsync). If the journal cannot take it (disk full, outbox full, I/O
// error) they keep retrying and never return without a commit: returning would acknowledge a
// message that is not durable. The hooks are called on the same thread, after the commit; they
// must only post work to the io_context.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "pressline/agent/journal.hpp"
#include "pressline/agent/validation.hpp"

namespace pressline::agent {

struct IntakeHooks {
    std::function<void()> events_appended;                      // new events in the outbox
    std::function<void(const std::string& reason)> blocked;     // intake cannot commit
    std::function<void()> unblocked;                             // it can again
    std::function<void(bool draining)> drain_changed;
    // Validates the config file named in a reload_config command; returns the problems
    // (empty when valid, and then a reload has been scheduled).
    std::function<std::vector<std::string>()> reload_config;
};

class Intake {
public:
    Intake(Journal& journal, ParseLimits limits, IntakeHooks hooks);

    void set_limits(ParseLimits limits);  // any thread

    // paho thread. Returns once the outcome is durable.
    void on_job(const std::string& topic, const std::string& payload);
    void on_command(const std::string& topic, const std::string& payload);

    // Makes a blocked on_*() give up: the process must then exit without acknowledging.
    // Returns true if a call was blocked at that moment. Any thread.
    bool abandon();
    bool is_blocked() const { return blocked_.load(); }

private:
    // Commits `fn` (Admission::intake), retrying while the journal cannot take it.
    void commit(const char* what, const std::string& key, const std::function<void(Tx&)>& fn);
    nlohmann::json execute(Tx& tx, const Command& cmd);

    Journal& journal_;
    std::mutex limits_mu_;
    ParseLimits limits_;
    IntakeHooks hooks_;
    std::atomic<bool> blocked_{false};
    std::mutex wait_mu_;
    std::condition_variable wait_cv_;
    bool abandoned_ = false;  // guarded by wait_mu_
};

}  // namespace pressline::agent
