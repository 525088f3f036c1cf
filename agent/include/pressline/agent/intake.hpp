// Intake: turns one inbound MQTT message (job order or command) into one durable journal
// transaction — accepted, duplicate, rejected, or a command and its result — before the message
// is acknowledged.
//
// Threads: on_job() and on_command() run on paho's callback thread and block until the
// transaction has committed (fsync). If the journal cannot take it (disk full, outbox full, I/O
// error), returning would acknowledge a message that is not durable, and waiting would hold
// paho's global lock (nothing could be published, not even the status saying why). So intake
// calls `refuse`, which cuts the broker connection under paho's feet, and then returns: the
// PUBACK cannot go out, the broker keeps the message and redelivers it after paho reconnects.
// The hooks are called on the paho thread; except `refuse` they must only post work.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "pressline/agent/journal.hpp"
#include "pressline/agent/validation.hpp"

namespace pressline::agent {

struct IntakeHooks {
    std::function<void()> events_appended;                      // new events in the outbox
    std::function<void(const std::string& reason)> blocked;     // intake cannot commit
    std::function<void()> refuse;  // drop the broker connection now (no PUBACK may go out)
    std::function<void()> unblocked;                             // it can again
    std::function<void(bool draining)> drain_changed;
    // A new job was accepted: the pipeline looks (nothing about it can need paperwork yet).
    std::function<void(const std::string& job_id)> job_accepted;
    // A command changed a job (cancel, reprint, qa_decision): the pipeline and paperwork look.
    std::function<void(const std::string& job_id)> job_changed;
    // Whether a device of this name is configured (pause_device / resume_device).
    std::function<bool(const std::string& device)> device_known;
    std::function<void(const std::string& device, bool paused)> device_paused;
    // Validates the config file named in a reload_config command; returns the problems
    // (empty when valid, and then a reload has been scheduled).
    std::function<std::vector<std::string>()> reload_config;
    // qa_decision: records a person's verdict for a job held for QA, inside the command's
    // transaction (qa.hpp decide_qa); returns the command.result members. `source`: cloud |
    // local; `by`: who decided.
    std::function<nlohmann::json(Tx& tx, const std::string& job_id, const std::string& verdict,
                                 const std::string& by, const std::string& source, const std::string& note,
                                 const std::string& command_id)>
        qa_decision;
    // snapshot: takes the pictures (qa.hpp QaFlow::snapshot) and calls `done` once, on any
    // thread, with the command.result members. The command is answered when the pictures are
    // taken: its result is recorded then (a crash before that loses the request, never a job).
    std::function<void(const nlohmann::json& command, std::function<void(nlohmann::json)> done)> snapshot;
};

class Intake {
public:
    Intake(Journal& journal, ParseLimits limits, IntakeHooks hooks);

    void set_limits(ParseLimits limits);  // any thread

    // paho thread. Returns once the outcome is durable.
    void on_job(const std::string& topic, const std::string& payload);
    void on_command(const std::string& topic, const std::string& payload);

    // A command from the station itself (the local control channel, `pressline qa decide`):
    // validated and executed exactly like the MQTT command of the same type (same transaction,
    // same command.result event), with source "local". Never refused for admission (it is no new
    // work). Returns the command.result data. Any thread.
    nlohmann::json on_local_command(const std::string& payload);

    bool is_blocked() const { return blocked_.load(); }

private:
    // Commits `fn` (Admission::intake). Returns false, after refusing the message, when the
    // journal cannot take it.
    bool commit(const char* what, const std::string& key, const std::function<void(Tx&)>& fn);
    nlohmann::json execute(Tx& tx, const Command& cmd, const std::string& source = "cloud");
    void after_command(const Command& cmd, const nlohmann::json& result, bool repeated);
    // The snapshot command (asynchronous: answered once the pictures are taken).
    void start_snapshot(const Command& cmd);

    Journal& journal_;
    ParseLimits current_limits() const;  // a copy, under limits_mu_
    mutable std::mutex limits_mu_;
    ParseLimits limits_;
    IntakeHooks hooks_;
    std::mutex snapshots_mu_;
    std::set<std::string> snapshots_in_flight_;  // command ids of snapshots being taken
    std::atomic<bool> blocked_{false};
    std::chrono::steady_clock::time_point last_report_{};  // paho thread only
};

}  // namespace pressline::agent
