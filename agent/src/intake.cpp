// Intake: validate, dedupe and durably record job orders and commands.
#include "pressline/agent/intake.hpp"

#include <cctype>
#include <chrono>

#include "pressline/agent/log.hpp"

namespace pressline::agent {
namespace {

// Whether `s` is a well-formed id (job_id, command_id) that may be an event's subject.
bool is_id(const std::string& s) {
    if (s.empty() || s.size() > 128 || !std::isalnum(static_cast<unsigned char>(s[0]))) return false;
    for (unsigned char c : s)
        if (!std::isalnum(c) && c != '.' && c != '_' && c != ':' && c != '-') return false;
    return true;
}

// Best effort: the id (`key`) of a payload that failed validation, so that its rejection can
// name it. Only well-formed ids are used; for unreadable payloads there is none.
std::optional<std::string> id_of(const std::string& payload, const Rejection& r, const char* key) {
    if (r.reason == "payload_too_large" || r.reason == "too_deeply_nested" ||
        r.reason == "invalid_utf8" || r.reason == "malformed_json" || r.reason == "not_an_object")
        return std::nullopt;
    auto j = nlohmann::json::parse(payload, nullptr, false);
    if (j.is_object()) {
        auto it = j.find(key);
        if (it != j.end() && it->is_string() && is_id(it->get_ref<const std::string&>()))
            return it->get<std::string>();
    }
    return std::nullopt;
}

// Whether the job's attempt still has a try whose outcome is not settled (on a printer).
bool has_open_try(Tx& tx, const std::string& job_id, int attempt) {
    for (const auto& t : tx.tries(job_id, attempt))
        if (t.state == "recorded" || t.state == "created" || t.state == "handed_over") return true;
    return false;
}

nlohmann::json rejection_data(const Rejection& r, const std::string& topic, std::size_t bytes) {
    return {{"reason", r.reason}, {"field", r.field}, {"message", r.message},
            {"topic", topic}, {"payload_bytes", bytes}};
}

}  // namespace

Intake::Intake(Journal& journal, ParseLimits limits, IntakeHooks hooks)
    : journal_(journal), limits_(limits), hooks_(std::move(hooks)) {}

namespace {

// A command_id seen before is not executed again: its stored result is sent again (repeated:
// true) into `result`. Returns whether it was seen.
bool answer_again(Tx& tx, const std::string& command_id, nlohmann::json& result) {
    auto seen = tx.command(command_id);
    if (!seen) return false;
    result = seen->result;
    result["repeated"] = true;
    tx.append({"command.result", command_id, result});
    return true;
}

}  // namespace

ParseLimits Intake::current_limits() const {
    std::lock_guard lock(limits_mu_);
    return limits_;
}

void Intake::set_limits(ParseLimits limits) {
    std::lock_guard lock(limits_mu_);
    limits_ = limits;
}

bool Intake::commit(const char* what, const std::string& key, const std::function<void(Tx&)>& fn) {
    auto log = logger("intake");
    for (int tries = 0;; ++tries) {
        try {
            journal_.transact(Admission::intake, fn);
            if (blocked_.exchange(false)) {
                log->warn("intake unblocked: the journal takes work again what={} key={}", what, key);
                if (hooks_.unblocked) hooks_.unblocked();
            }
            if (hooks_.events_appended) hooks_.events_appended();
            return true;
        } catch (const JournalError& e) {
            if (e.kind() == JournalError::Kind::busy && tries < 5) continue;
            const auto now = std::chrono::steady_clock::now();
            if (!blocked_.exchange(true)) {
                log->error("intake blocked, not acknowledging {} key={}: {}. Nothing accepted is "
                           "lost; the broker keeps the message and redelivers it after reconnecting",
                           what, key, e.what());
                if (hooks_.blocked) hooks_.blocked(e.what());
                last_report_ = now;
            } else if (now - last_report_ > std::chrono::seconds(60)) {
                log->error("intake still blocked key={}: {}", key, e.what());
                last_report_ = now;
            }
            if (hooks_.refuse) {
                hooks_.refuse();
            } else {
                // Without a way to refuse, abort rather than acknowledge what is not durable.
                log->critical("cannot refuse the message; aborting");
                std::abort();
            }
            return false;
        }
    }
}

void Intake::on_job(const std::string& topic, const std::string& payload) {
    auto log = logger("intake");
    const ParseLimits limits = current_limits();
    auto parsed = parse_job(payload, limits);
    if (auto* rej = std::get_if<Rejection>(&parsed)) {
        EventSpec ev{"job.rejected", id_of(payload, *rej, "job_id"), rejection_data(*rej, topic, payload.size())};
        log->warn("job rejected job_id={} reason={} field={} message=\"{}\"",
                  ev.subject.value_or("-"), rej->reason, rej->field, rej->message);
        commit("rejection", ev.subject.value_or("-"), [&](Tx& tx) { tx.append(ev); });
        return;  // durable or refused: either way paho may go on
    }
    auto& job = std::get<JobOrder>(parsed);
    const std::string canonical = canonical_json(job.json);
    bool duplicate = false;
    bool conflict = false;
    const bool committed = commit("job", job.job_id, [&](Tx& tx) {
        duplicate = conflict = false;
        if (auto existing = tx.job(job.job_id)) {
            duplicate = true;
            conflict = !existing->pruned && existing->payload != canonical;
            nlohmann::json data{{"order_id", existing->order_id}, {"conflict", conflict},
                                {"state", std::string(to_string(existing->state))}};
            if (existing->pruned) data["pruned"] = true;
            tx.append({"job.duplicate", job.job_id, std::move(data)});
            return;
        }
        JobRow row;
        row.job_id = job.job_id;
        row.order_id = job.order_id;
        row.state = JobState::accepted;
        row.priority = job.priority;
        row.payload = canonical;
        row.topic = topic;
        tx.insert_job(row);
        tx.append({"job.accepted", job.job_id,
                   {{"order_id", job.order_id}, {"priority", job.priority}, {"topic", topic}}});
    });
    if (!committed) return;
    if (duplicate) {
        log->info("job duplicate job_id={} conflict={}", job.job_id, conflict);
    } else {
        log->info("job accepted job_id={} order_id={} priority={}", job.job_id, job.order_id, job.priority);
        if (hooks_.job_accepted) hooks_.job_accepted(job.job_id);
    }
}

nlohmann::json Intake::execute(Tx& tx, const Command& cmd, const std::string& source) {
    nlohmann::json result{{"command_id", cmd.command_id}, {"command", cmd.type}};
    auto ok = [&](std::string message) {
        result["status"] = "ok";
        result["message"] = std::move(message);
    };
    auto error = [&](std::string reason, std::string message) {
        result["status"] = "error";
        result["reason"] = std::move(reason);
        result["message"] = std::move(message);
    };
    if (cmd.type == "cancel") {
        const auto job_id = cmd.json.at("job_id").get<std::string>();
        result["job_id"] = job_id;
        auto job = tx.job(job_id);
        if (!job) {
            error("unknown_job", "no job " + job_id + " at this station");
        } else if (job->state == JobState::cancelled) {
            ok("job " + job_id + " was already cancelled");
        } else if (!is_cancellable(job->state)) {
            error("not_cancellable", "job " + job_id + " is " + std::string(to_string(job->state)) +
                                         "; it can be cancelled only before it starts printing");
        } else {
            tx.transition(job_id, JobState::cancelled, "cancelled by command " + cmd.command_id,
                          {"job.cancelled", job_id,
                           {{"order_id", job->order_id},
                            {"previous_state", std::string(to_string(job->state))},
                            {"command_id", cmd.command_id}}});
            ok("job " + job_id + " cancelled");
        }
    } else if (cmd.type == "drain" || cmd.type == "resume") {
        const bool drain = cmd.type == "drain";
        tx.set_meta("draining", drain ? "1" : "0");
        ok(drain ? "draining: jobs are still accepted durably; nothing new is released to production"
                 : "resumed: jobs are released to production again");
    } else if (cmd.type == "reprint") {
        const auto job_id = cmd.json.at("job_id").get<std::string>();
        const auto what = cmd.json.value("what", std::string("garment"));
        result["job_id"] = job_id;
        result["what"] = what;
        auto job = tx.job(job_id);
        if (!job) {
            error("unknown_job", "no job " + job_id + " at this station");
        } else if (what == "ticket" || what == "label") {
            // Paperwork is printed again only when asked, as a new copy on the same printer.
            const bool ticket = what == "ticket";
            const std::string ref = ticket ? job_id : job->order_id;
            const auto papers = tx.papers(what, ref);
            const PaperRow* last = papers.empty() ? nullptr : &papers.back();
            if (ticket) {
                last = nullptr;
                for (const auto& p : papers)
                    if (p.attempt == job->attempt) last = &p;
            }
            if (!last) {
                error(ticket ? "no_ticket" : "no_label",
                      ticket ? "job " + job_id + " has no ticket for attempt " + std::to_string(job->attempt) +
                                   " (tickets are printed when an attempt is released, with labels.ticket_printer set)"
                             : "order " + job->order_id + " has no shipping label yet (it is printed once every "
                                   "item of the order is ready to ship)");
            } else if (last->device.empty()) {
                // The order was announced without a label (none to print, or no printer takes it).
                error("no_label", "order " + job->order_id + " has no label to print again (" +
                                      (last->reason.empty() ? last->state : last->reason) + ")");
            } else if (last->state == "pending" || last->state == "sending") {
                error("already_pending", "the " + what + " " + ref + " is waiting to be printed (copy " +
                                             std::to_string(last->copy) + ")");
            } else {
                auto row = tx.insert_paper(what, ref, last->attempt, last->job_id, last->device);
                result["copy"] = row.copy;
                result["printer"] = row.device;
                ok(what + " " + ref + " queued again as copy " + std::to_string(row.copy) + " on " + row.device);
            }
        } else if (what != "garment") {
            error("invalid_command", "reprint what '" + what + "': use garment, label or ticket");
        } else if (job->state != JobState::printed && job->state != JobState::qa_failed &&
                   job->state != JobState::qa_passed && job->state != JobState::held &&
                   job->state != JobState::labeling) {
            error("not_reprintable", "job " + job_id + " is " + std::string(to_string(job->state)) +
                                         "; a garment can be reprinted once it has printed");
        } else if (has_open_try(tx, job_id, job->attempt)) {
            error("not_reprintable", "job " + job_id + " still has a garment on a printer (attempt " +
                                         std::to_string(job->attempt) +
                                         "); wait for it to finish or be withdrawn, then reprint");
        } else {
            const int attempt = job->attempt + 1;
            tx.start_attempt(job_id, attempt);
            tx.transition(job_id, JobState::queued, "reprint by command " + cmd.command_id,
                          {"job.reprint", job_id,
                           {{"order_id", job->order_id}, {"attempt", attempt},
                            {"previous_state", std::string(to_string(job->state))},
                            {"command_id", cmd.command_id}}});
            result["attempt"] = attempt;
            ok("job " + job_id + " queued again as attempt " + std::to_string(attempt));
        }
    } else if (cmd.type == "pause_device" || cmd.type == "resume_device") {
        const auto device = cmd.json.at("device").get<std::string>();
        const bool pause = cmd.type == "pause_device";
        result["device"] = device;
        if (!hooks_.device_known || !hooks_.device_known(device)) {
            error("unknown_device", "no device " + device + " at this station");
        } else {
            tx.set_meta("paused:" + device, pause ? "1" : "0");
            tx.set_meta("pause_reason:" + device, "");
            ok(pause ? "device " + device + " paused: nothing new is released to it; a garment in "
                       "hand finishes"
                     : "device " + device + " resumed");
        }
    } else if (cmd.type == "qa_decision") {
        const auto job_id = cmd.json.at("job_id").get<std::string>();
        const auto verdict = cmd.json.at("verdict").get<std::string>();
        const auto by = cmd.json.value("decided_by", std::string());
        const auto note = cmd.json.value("note", std::string());
        if (!hooks_.qa_decision) {
            result["job_id"] = job_id;
            error("not_supported", "visual QA is not available in this agent");
        } else {
            auto r = hooks_.qa_decision(tx, job_id, verdict, by, source, note, cmd.command_id);
            for (auto it = r.begin(); it != r.end(); ++it) result[it.key()] = it.value();
        }
    } else if (cmd.type == "reload_config") {
        auto problems = hooks_.reload_config ? hooks_.reload_config()
                                             : std::vector<std::string>{"reload not available"};
        if (problems.empty()) {
            ok("configuration reload scheduled");
        } else {
            error("invalid_config", problems.front());
            result["problems"] = problems;
        }
    } else {
        error("not_supported", "command " + cmd.type + " is not supported by this agent version");
    }
    return result;
}

void Intake::on_command(const std::string& topic, const std::string& payload) {
    auto log = logger("intake");
    const ParseLimits limits = current_limits();
    auto parsed = parse_command(payload, limits);
    if (auto* rej = std::get_if<Rejection>(&parsed)) {
        // A command we cannot read is answered with a command.result carrying the reason,
        // addressed by its command_id when one could be read.
        const auto id = id_of(payload, *rej, "command_id");
        nlohmann::json data = rejection_data(*rej, topic, payload.size());
        data["command_id"] = id ? nlohmann::json(*id) : nlohmann::json(nullptr);
        data["status"] = "rejected";
        log->warn("command rejected command_id={} reason={} field={} message=\"{}\"",
                  id.value_or("-"), rej->reason, rej->field, rej->message);
        commit("command rejection", id.value_or("-"),
               [&](Tx& tx) { tx.append({"command.result", id, data}); });
        return;
    }
    auto& cmd = std::get<Command>(parsed);
    if (cmd.type == "snapshot" && hooks_.snapshot) return start_snapshot(cmd);
    bool repeated = false;
    nlohmann::json result;
    const bool committed = commit("command", cmd.command_id, [&](Tx& tx) {
        repeated = answer_again(tx, cmd.command_id, result);
        if (repeated) return;
        result = execute(tx, cmd);
        tx.insert_command({cmd.command_id, cmd.type, result});
        tx.append({"command.result", cmd.command_id, result});
    });
    if (!committed) return;
    log->info("command {} command_id={} status={} repeated={} message=\"{}\"", cmd.type,
              cmd.command_id, result.value("status", ""), repeated, result.value("message", ""));
    after_command(cmd, result, repeated);
}

void Intake::start_snapshot(const Command& cmd) {
    auto log = logger("intake");
    // In flight first: the result is recorded (and the id released) on another thread, so
    // between a "not seen" check and this a redelivery could otherwise take a second picture.
    {
        std::lock_guard lock(snapshots_mu_);
        if (!snapshots_in_flight_.insert(cmd.command_id).second) {
            log->info("command snapshot command_id={} redelivered while its pictures are being taken: answered once "
                      "they are", cmd.command_id);
            return;
        }
    }
    auto release = [this, &cmd] {
        std::lock_guard lock(snapshots_mu_);
        snapshots_in_flight_.erase(cmd.command_id);
    };
    bool repeated = false;
    nlohmann::json stored;
    const bool committed = commit("command", cmd.command_id, [&](Tx& tx) {
        repeated = answer_again(tx, cmd.command_id, stored);
    });
    if (!committed || repeated) {
        release();
        if (repeated) log->info("command snapshot command_id={} repeated: answered again", cmd.command_id);
        return;
    }
    log->info("command snapshot command_id={} camera={}: taking pictures", cmd.command_id,
              cmd.json.value("camera", "(all)"));
    hooks_.snapshot(cmd.json, [this, id = cmd.command_id](nlohmann::json result) {
        result["command_id"] = id;
        result["command"] = "snapshot";
        try {
            journal_.transact(Admission::internal, [&](Tx& tx) {
                tx.insert_command({id, "snapshot", result});
                tx.append({"command.result", id, result});
            });
            if (hooks_.events_appended) hooks_.events_appended();
        } catch (const std::exception& e) {
            logger("intake")->error("journal: cannot record the snapshot result command_id={}: {}", id, e.what());
        }
        {
            std::lock_guard lock(snapshots_mu_);
            snapshots_in_flight_.erase(id);
        }
        logger("intake")->info("command snapshot command_id={} status={} message=\"{}\"", id,
                               result.value("status", ""), result.value("message", ""));
    });
}

void Intake::after_command(const Command& cmd, const nlohmann::json& result, bool repeated) {
    if (!repeated && result.value("status", "") == "ok" && (cmd.type == "drain" || cmd.type == "resume") &&
        hooks_.drain_changed)
        hooks_.drain_changed(cmd.type == "drain");
    if (repeated || result.value("status", "") != "ok") return;
    if ((cmd.type == "cancel" || cmd.type == "reprint" || cmd.type == "qa_decision") && hooks_.job_changed)
        hooks_.job_changed(cmd.json.at("job_id").get<std::string>());
    if ((cmd.type == "pause_device" || cmd.type == "resume_device") && hooks_.device_paused)
        hooks_.device_paused(cmd.json.at("device").get<std::string>(), cmd.type == "pause_device");
}

nlohmann::json Intake::on_local_command(const std::string& payload) {
    auto log = logger("intake");
    const ParseLimits limits = current_limits();
    auto parsed = parse_command(payload, limits);
    if (auto* rej = std::get_if<Rejection>(&parsed)) {
        nlohmann::json data = rejection_data(*rej, "local", payload.size());
        data["status"] = "rejected";
        data["source"] = "local";
        return data;
    }
    auto& cmd = std::get<Command>(parsed);
    bool repeated = false;
    nlohmann::json result;
    try {
        journal_.transact(Admission::internal, [&](Tx& tx) {
            repeated = answer_again(tx, cmd.command_id, result);
            if (repeated) return;
            result = execute(tx, cmd, "local");
            result["source"] = "local";
            tx.insert_command({cmd.command_id, cmd.type, result});
            tx.append({"command.result", cmd.command_id, result});
        });
    } catch (const std::exception& e) {
        log->error("local command {} command_id={} not recorded: {}", cmd.type, cmd.command_id, e.what());
        return {{"command_id", cmd.command_id}, {"command", cmd.type}, {"status", "error"},
                {"reason", "journal_error"}, {"message", e.what()}, {"source", "local"}};
    }
    if (hooks_.events_appended) hooks_.events_appended();
    log->info("local command {} command_id={} status={} repeated={} message=\"{}\"", cmd.type, cmd.command_id,
              result.value("status", ""), repeated, result.value("message", ""));
    after_command(cmd, result, repeated);
    return result;
}

}  // namespace pressline::agent
