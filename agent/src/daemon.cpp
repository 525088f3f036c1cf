// The daemon's wiring, lifecycle and housekeeping.
#include "pressline/agent/daemon.hpp"

#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <atomic>
#include <csignal>
#include <map>
#include <mutex>

#include <fmt/format.h>

#include "pressline/agent/clock.hpp"
#include "pressline/agent/control.hpp"
#include "pressline/agent/intake.hpp"
#include "pressline/agent/journal.hpp"
#include "pressline/agent/log.hpp"
#include "pressline/agent/mqtt_link.hpp"
#include "pressline/agent/outbox.hpp"
#include "pressline/agent/paperwork.hpp"
#include "pressline/agent/printing.hpp"
#include "pressline/agent/qa.hpp"
#include "pressline/agent/topics.hpp"

#ifndef PRESSLINE_VERSION
#define PRESSLINE_VERSION "0.0.0"
#endif

namespace pressline::agent {

const char* version() { return PRESSLINE_VERSION; }

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

JournalOptions journal_options(const config::Config& cfg) {
    const auto topics = Topics::from(cfg);
    return {topics.source, topics.events, cfg.storage.outbox_max_events, cfg.storage.min_free_mb,
            cfg.storage.max_db_mb};
}

ParseLimits parse_limits(const config::Config& cfg) {
    return {cfg.intake.max_payload_bytes, cfg.intake.max_depth};
}

// The parts of the config that need a new broker connection when they change.
bool same_connection(const config::Config& a, const config::Config& b) {
    const auto &x = a.broker, &y = b.broker;
    return x.uri == y.uri && x.client_id == y.client_id && x.username == y.username &&
           x.password == y.password && x.ca_file == y.ca_file && x.cert_file == y.cert_file &&
           x.key_file == y.key_file && x.keepalive_s == y.keepalive_s &&
           x.connect_timeout_s == y.connect_timeout_s && x.session_expiry_s == y.session_expiry_s &&
           x.reconnect_min_s == y.reconnect_min_s && x.reconnect_max_s == y.reconnect_max_s &&
           x.max_inflight == y.max_inflight && a.mqtt.topic_prefix == b.mqtt.topic_prefix &&
           a.station.shop == b.station.shop && a.station.id == b.station.id &&
           a.station.pools == b.station.pools;
}

}  // namespace

struct Daemon::Impl {
    // Member order matters for destruction: the link (paho threads that call into intake and
    // journal) goes before intake and journal; the worker pool is joined before the journal.
    config::Config cfg;
    asio::io_context io;
    std::unique_ptr<Journal> journal;
    std::unique_ptr<Intake> intake;
    asio::thread_pool workers{2};
    asio::thread_pool device_io{2};       // printer calls (printing.hpp)
    asio::thread_pool label_io{2};        // label printer calls: a silent Zebra never delays a DTG printer
    std::shared_ptr<Outbox> outbox;
    std::unique_ptr<PrintFlow> printing;  // io thread; its pool work holds its own state alive
    std::unique_ptr<Paperwork> paperwork; // io thread; tickets and shipping labels
    std::unique_ptr<QaFlow> qa;           // io thread; visual QA of printed garments
    std::unique_ptr<ControlServer> control;  // io thread; {state_dir}/control.sock
    std::map<std::string, std::string> device_status;  // device -> retained status payload
    // Used from paho's threads: declared before the link so that they outlive it.
    std::mutex link_mu;                   // guards link_for_paho (read on paho's thread)
    std::weak_ptr<MqttLink> link_for_paho;
    std::mutex accepted_mu;               // guards accepted_jobs (filled on paho's thread)
    std::vector<std::string> accepted_jobs;
    std::atomic<bool> kick_queued{false};  // intake (paho thread) -> io: an outbox kick is posted
    std::shared_ptr<MqttLink> link;
    asio::signal_set signals{io};
    asio::steady_timer watchdog{io};
    asio::steady_timer checkpoint_timer{io};
    asio::steady_timer prune_timer{io};
    asio::steady_timer stop_timer{io};
    std::chrono::microseconds watchdog_period{0};
    std::string started_at;
    bool draining = false;
    std::string blocked_reason;  // non-empty while intake is blocked
    bool checkpoint_armed = false;
    bool stopping = false;
    int local_commands = 0;

    explicit Impl(config::Config c) : cfg(std::move(c)) {}

    std::string intake_state() const {
        if (!blocked_reason.empty()) return "blocked";
        return draining ? "draining" : "open";
    }

    std::string status_json(const std::string& state) const {
        nlohmann::json s{{"state", state},
                         {"version", version()},
                         {"started_at", started_at},
                         {"shop", cfg.station.shop},
                         {"station", cfg.station.id},
                         {"pools", cfg.station.pools},
                         {"intake", intake_state()},
                         {"time", format_time(std::chrono::system_clock::now())}};
        if (!blocked_reason.empty()) s["blocked_reason"] = blocked_reason;
        return s.dump();
    }

    void notify_status() {
        std::string text = fmt::format("broker {}; intake {}{}",
                                       link && link->connected() ? "connected" : "disconnected",
                                       intake_state(),
                                       blocked_reason.empty() ? "" : " (" + blocked_reason + ")");
        sd_notify(0, ("STATUS=" + text).c_str());
    }

    void publish_status() {
        notify_status();
        if (link && link->connected())
            link->publish(link->topics().status, status_json("online"), true, nullptr);
    }

    // ---- start-up ------------------------------------------------------------------------
    int run() {
        auto log = logger("daemon");
        started_at = format_time(std::chrono::system_clock::now());
        try {
            journal = std::make_unique<Journal>(cfg.storage.state_dir, journal_options(cfg));
        } catch (const JournalError& e) {
            log->critical("cannot open the journal: {}", e.what());
            sd_notifyf(0, "STATUS=journal error: %s", e.what());
            return exit_failure;
        }
        draining = journal->meta("draining").value_or("0") == "1";
        log->info("journal open path={} schema={} last_seq={} outbox={}", journal->path().string(),
                  Journal::schema_version(), journal->last_sequence(), journal->outbox_count());

        try {
            printing = std::make_unique<PrintFlow>(io, workers, device_io, *journal, cfg, make_printing_hooks());
            PaperworkHooks ph;
            ph.events_appended = [this] {
                if (outbox) outbox->kick();
                schedule_checkpoint();
            };
            ph.device_status = make_printing_hooks().device_status;
            paperwork = std::make_unique<Paperwork>(io, workers, label_io, *journal, cfg, std::move(ph));
            qa = std::make_unique<QaFlow>(io, workers, *journal, cfg, make_qa_hooks());
        } catch (const std::exception& e) {
            log->critical("cannot set up printing: {}", e.what());
            sd_notifyf(0, "STATUS=printing set-up failed: %s", e.what());
            return exit_failure;
        }
        intake = std::make_unique<Intake>(*journal, parse_limits(cfg), make_hooks());
        outbox = std::make_shared<Outbox>(io, workers, *journal, cfg.broker.max_inflight);
        try {
            journal->transact(Admission::internal, [&](Tx& tx) {
                tx.append({"agent.started", std::nullopt,
                           {{"version", version()}, {"started_at", started_at},
                            {"pid", static_cast<long>(getpid())}}});
            });
        } catch (const JournalError& e) {
            log->error("cannot record agent.started: {}", e.what());
        }

        signals.add(SIGTERM);
        signals.add(SIGINT);
        signals.add(SIGHUP);
        wait_signal();
        start_link();
        printing->start();
        paperwork->start();
        qa->start();
        start_control();
        start_watchdog();
        schedule_prune(1min);

        // READY once the journal is open and the config valid; never waits for the broker.
        sd_notify(0, "READY=1");
        notify_status();
        log->info("pressline {} running shop={} station={} pools={} state_dir={}", version(),
                  cfg.station.shop, cfg.station.id, fmt::join(cfg.station.pools, ","),
                  cfg.storage.state_dir.string());
        io.run();
        return finish();
    }

    QaHooks make_qa_hooks() {
        QaHooks h;
        h.events_appended = [this] {
            if (outbox) outbox->kick();
            schedule_checkpoint();
        };
        h.device_status = make_printing_hooks().device_status;
        h.paperwork_changed = [this] {
            if (paperwork) paperwork->changed();
        };
        h.requeued = [this](const std::string& job_id) {
            if (printing) printing->job_changed(job_id);
        };
        h.pause_device = [this](const std::string& device) {
            if (printing) printing->set_paused(device, true, "qa-failures");
        };
        return h;
    }

    // The local control channel: technicians' commands while the cloud is unreachable.
    void start_control() {
        control = std::make_unique<ControlServer>(io, cfg.storage.state_dir / "control.sock",
                                                  [this](const nlohmann::json& req, ControlServer::Reply reply) {
                                                      if (req.value("type", "") == "snapshot") return local_snapshot(req, std::move(reply));
                                                      reply(on_control(req));
                                                  });
        std::string error;
        if (!control->start(error)) {
            logger("daemon")->error("local control channel not available: {}", error);
            control.reset();
        }
    }

    // `pressline snapshot`: pictures now, answered once taken; no event (nothing changed).
    void local_snapshot(const nlohmann::json& req, ControlServer::Reply reply) {
        if (!qa) return reply({{"status", "error"}, {"reason", "not_supported"}, {"message", "no QA flow"}});
        const std::string camera = req.value("camera", "");
        logger("daemon")->info("local snapshot camera={} by={}", camera.empty() ? "(all)" : camera, req.value("by", ""));
        qa->snapshot(camera, [reply = std::move(reply)](nlohmann::json r) {
            r["source"] = "local";
            reply(std::move(r));
        });
    }

    nlohmann::json on_control(const nlohmann::json& req) {
        const std::string type = req.value("type", "");
        if (type == "ping") return {{"status", "ok"}, {"version", version()}};
        if (type == "qa_trigger") {
            if (!qa) return {{"status", "error"}, {"reason", "not_supported"}, {"message", "no QA flow"}};
            auto r = qa->trigger(req.value("job_id", ""), req.value("printer", ""));
            logger("daemon")->info("local qa trigger job_id={} printer={} by={}: {}", req.value("job_id", ""),
                                   req.value("printer", ""), req.value("by", ""), r.value("message", ""));
            return r;
        }
        if (type == "qa_decision") {
            // Handled exactly like the MQTT command, with source "local".
            nlohmann::json cmd = req;
            if (!cmd.contains("command_id"))
                cmd["command_id"] = fmt::format("L-{}-{}", wall_ms(), ++local_commands);
            return intake->on_local_command(cmd.dump());
        }
        return {{"status", "error"}, {"reason", "unknown_request"},
                {"message", "unknown request type '" + type + "'; use qa_decision, qa_trigger, snapshot or ping"}};
    }

    PrintingHooks make_printing_hooks() {
        PrintingHooks h;
        h.events_appended = [this] {
            if (outbox) outbox->kick();
            schedule_checkpoint();
        };
        h.device_status = [this](const std::string& device, const std::string& payload) {
            device_status[device] = payload;
            if (link && link->connected())
                link->publish(link->topics().device_status_prefix + device + "/status", payload, true, nullptr);
        };
        h.paperwork_changed = [this] {
            if (paperwork) paperwork->changed();
        };
        h.inspecting = [this](const std::string& job_id) {
            if (qa) qa->printed(job_id);
        };
        return h;
    }

    IntakeHooks make_hooks() {
        IntakeHooks h;
        h.events_appended = [this] {
            // One queued kick serves every commit made before it runs: it clears the flag
            // before the outbox reads, so a commit that finds the flag set is read by it.
            if (kick_queued.exchange(true)) return;
            asio::post(io, [this] {
                kick_queued.exchange(false);  // an RMW: pairs with the hook's exchange
                if (outbox) outbox->kick();
                schedule_checkpoint();
            });
        };
        h.blocked = [this](const std::string& reason) {
            asio::post(io, [this, reason] {
                blocked_reason = reason;
                if (link) link->set_offline_status(status_json("offline"));
                publish_status();
            });
        };
        h.refuse = [this] {
            std::lock_guard lock(link_mu);
            if (auto l = link_for_paho.lock()) l->drop_connection();
        };
        h.unblocked = [this] {
            asio::post(io, [this] {
                blocked_reason.clear();
                if (link) link->set_offline_status(status_json("offline"));
                publish_status();
            });
        };
        // Jobs accepted while the io_context is busy are handed over together: one wake-up per
        // batch instead of one per job under a stream of orders.
        h.job_accepted = [this](const std::string& job_id) {
            bool first = false;
            {
                std::lock_guard lock(accepted_mu);
                first = accepted_jobs.empty();
                accepted_jobs.push_back(job_id);
            }
            if (!first) return;
            asio::post(io, [this] {
                std::vector<std::string> ids;
                {
                    std::lock_guard lock(accepted_mu);
                    ids.swap(accepted_jobs);
                }
                for (const auto& id : ids) {
                    if (qa) qa->job_changed(id);
                    if (printing) printing->job_changed(id);
                }
            });
        };
        h.job_changed = [this](const std::string& job_id) {
            asio::post(io, [this, job_id] {
                if (qa) qa->job_changed(job_id);
                if (printing) printing->job_changed(job_id);
                if (paperwork) paperwork->changed();
            });
        };
        // The device list is fixed for the daemon's life: safe to read from paho's thread.
        h.device_known = [this](const std::string& device) {
            return (printing && printing->has_device(device)) || (paperwork && paperwork->has_device(device));
        };
        h.device_paused = [this](const std::string& device, bool paused) {
            asio::post(io, [this, device, paused] {
                if (printing) printing->set_paused(device, paused);
                if (paperwork) paperwork->set_paused(device, paused);
            });
        };
        h.drain_changed = [this](bool d) {
            asio::post(io, [this, d] {
                draining = d;
                if (printing) printing->set_draining(d);
                logger("daemon")->info("intake {}", d ? "draining" : "open");
                publish_status();
            });
        };
        // The decision uses the start-up config (like printing and paperwork): paho's thread never
        // reads a config that a reload replaces.
        h.qa_decision = [qcfg = cfg](Tx& tx, const std::string& job_id, const std::string& verdict,
                                     const std::string& by, const std::string& source, const std::string& note,
                                     const std::string& command_id) {
            return decide_qa(tx, job_id, verdict, by, source, note, command_id, qcfg);
        };
        h.snapshot = [this](const nlohmann::json& cmd, std::function<void(nlohmann::json)> done) {
            asio::post(io, [this, camera = cmd.value("camera", std::string()), done = std::move(done)] {
                if (!qa) return done({{"status", "error"}, {"reason", "camera_unavailable"}, {"message", "the agent is stopping"}});
                qa->snapshot(camera, done);
            });
        };
        h.reload_config = [this] {
            auto res = config::load_file(cfg.source);
            std::vector<std::string> problems;
            for (const auto& d : res.diagnostics) problems.push_back(d.str());
            if (problems.empty()) asio::post(io, [this] { reload(); });
            return problems;
        };
        return h;
    }

    void start_link() {
        auto topics = Topics::from(cfg);
        MqttHandlers handlers;
        handlers.connected = [this] {
            publish_status();
            for (const auto& [device, payload] : device_status)
                link->publish(link->topics().device_status_prefix + device + "/status", payload, true, nullptr);
            outbox->on_connected();
        };
        handlers.disconnected = [this](const std::string&) {
            outbox->on_disconnected();
            notify_status();
        };
        handlers.on_message = [this, topics](const std::string& topic, const std::string& payload) {
            if (topic == topics.commands)
                intake->on_command(topic, payload);
            else
                intake->on_job(topic, payload);
        };
        link = std::make_shared<MqttLink>(io, cfg, topics, std::move(handlers), status_json("offline"));
        {
            std::lock_guard lock(link_mu);
            link_for_paho = link;
        }
        outbox->set_link(link);
        link->start();
    }

    // ---- signals, reload, stop -----------------------------------------------------------
    void wait_signal() {
        signals.async_wait([this](const boost::system::error_code& ec, int sig) {
            if (ec) return;
            if (sig == SIGHUP) {
                logger("daemon")->info("SIGHUP: reloading {}", cfg.source.string());
                reload();
                wait_signal();
            } else {
                logger("daemon")->info("{}: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
                stop();
            }
        });
    }

    void reload() {
        auto log = logger("daemon");
        sd_notify(0, "RELOADING=1");
        auto res = config::load_file(cfg.source);
        if (!res.ok()) {
            for (const auto& d : res.diagnostics) log->error("reload refused: {}", d.str());
            log->error("reload refused: {} problem(s) in {}; keeping the running configuration",
                       res.diagnostics.size(), cfg.source.string());
            sd_notify(0, "READY=1");
            notify_status();
            return;
        }
        config::Config next = std::move(*res.config);
        if (next.storage.state_dir != cfg.storage.state_dir)
            log->warn("storage.state_dir changed to {}: takes effect at the next start",
                      next.storage.state_dir.string());
        next.storage.state_dir = cfg.storage.state_dir;
        if (next.station.shop != cfg.station.shop || next.station.id != cfg.station.id) {
            // The event sequence belongs to the journal: a station's identity changes only with
            // a restart, never in the middle of a stream of events.
            log->warn("station.shop/station.id changed to {}/{}: takes effect at the next start",
                      next.station.shop, next.station.id);
            next.station.shop = cfg.station.shop;
            next.station.id = cfg.station.id;
        }
        const bool reconnect = !same_connection(cfg, next);
        set_log_level(next.log.level);
        journal->set_options(journal_options(next));
        intake->set_limits(parse_limits(next));
        outbox->set_max_inflight(next.broker.max_inflight);
        cfg = std::move(next);
        if (reconnect) {
            log->info("broker or station settings changed: reconnecting");
            link->stop(2s);
            outbox->on_disconnected();
            start_link();
        }
        log->info("configuration reloaded from {}", cfg.source.string());
        sd_notify(0, "READY=1");
        publish_status();
    }

    void stop() {
        if (stopping) return;
        stopping = true;
        sd_notify(0, "STOPPING=1");
        auto log = logger("daemon");
        if (printing) printing->stop();
        if (paperwork) paperwork->stop();
        if (qa) qa->stop();
        if (control) control->stop();
        if (intake->is_blocked())
            log->warn("stopping while intake is blocked ({}); the refused message stays at the "
                      "broker", blocked_reason);
        try {
            journal->transact(Admission::internal, [&](Tx& tx) {
                tx.append({"agent.stopping", std::nullopt, {{"version", version()}}});
            });
            outbox->kick();
        } catch (const JournalError& e) {
            log->warn("cannot record agent.stopping: {}", e.what());
        }
        // Give the outbox a moment to deliver what it has, then leave; the rest goes next time.
        wait_for_outbox(std::chrono::steady_clock::now() + 1500ms);
    }

    void wait_for_outbox(std::chrono::steady_clock::time_point deadline) {
        if (outbox->unacknowledged() == 0 || !link->connected() ||
            std::chrono::steady_clock::now() >= deadline) {
            shutdown();
            return;
        }
        stop_timer.expires_after(20ms);
        stop_timer.async_wait([this, deadline](const boost::system::error_code& ec) {
            if (!ec) wait_for_outbox(deadline);
        });
    }

    void shutdown() {
        const auto pending = outbox->unacknowledged();
        link->stop(2s, status_json("offline"));
        signals.cancel();
        watchdog.cancel();
        checkpoint_timer.cancel();
        prune_timer.cancel();
        logger("daemon")->info("stopped; {} event(s) wait in the outbox for the next start", pending);
        io.stop();
    }

    int finish() {
        outbox->flush_deletes();
        link.reset();  // joins paho's threads: no callback runs after this
        workers.join();
        device_io.join();
        label_io.join();
        control.reset();
        qa.reset();
        printing.reset();
        paperwork.reset();
        const auto st = journal->commit_stats();
        logger("journal")->info("{} commits this run, {} of them {} ms or slower (slowest {:.1f} ms; longest "
                                "wait for the writer {:.1f} ms)",
                               st.commits, st.slow, Journal::kSlowCommit.count(), st.worst_ms, st.worst_wait_ms);
        return exit_ok;
    }

    // ---- timers --------------------------------------------------------------------------
    void start_watchdog() {
        uint64_t usec = 0;
        if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return;
        watchdog_period = std::chrono::microseconds(usec / 4);
        logger("daemon")->info("systemd watchdog every {} ms", usec / 4000);
        pet_watchdog();
    }

    void pet_watchdog() {
        sd_notify(0, "WATCHDOG=1");
        watchdog.expires_after(watchdog_period);
        watchdog.async_wait([this](const boost::system::error_code& ec) {
            if (!ec) pet_watchdog();
        });
    }

    // WAL checkpoints run a little after activity, on a worker, never in an intake commit.
    void schedule_checkpoint() {
        if (checkpoint_armed) return;
        checkpoint_armed = true;
        checkpoint_timer.expires_after(2s);
        checkpoint_timer.async_wait([this](const boost::system::error_code& ec) {
            checkpoint_armed = false;
            if (ec) return;
            asio::post(workers, [j = journal.get()] {
                try {
                    j->checkpoint();
                } catch (const JournalError& e) {
                    logger("journal")->warn("checkpoint failed: {}", e.what());
                }
            });
        });
    }

    void schedule_prune(std::chrono::steady_clock::duration after) {
        prune_timer.expires_after(after);
        prune_timer.async_wait([this](const boost::system::error_code& ec) {
            if (ec) return;
            const std::int64_t retention_ms = std::int64_t{cfg.storage.retention_hours} * 3600 * 1000;
            const auto cutoff = wall_ms() - retention_ms;
            // Tombstones (job ids only) are kept 10x longer, to recognise late redeliveries.
            const auto tomb_cutoff = wall_ms() - 10 * retention_ms;
            asio::post(workers, [j = journal.get(), cutoff, tomb_cutoff] {
                try {
                    // Commits wait while a prune holds the journal: say for how long.
                    const auto t0 = std::chrono::steady_clock::now();
                    if (int n = j->prune(cutoff, tomb_cutoff); n > 0)
                        logger("journal")->info("pruned finished jobs count={} in {} ms", n,
                                                std::chrono::duration_cast<std::chrono::milliseconds>(
                                                    std::chrono::steady_clock::now() - t0).count());
                } catch (const JournalError& e) {
                    logger("journal")->warn("prune failed: {}", e.what());
                }
            });
            schedule_prune(1h);
        });
    }
};

Daemon::Daemon(config::Config cfg) : impl_(std::make_unique<Impl>(std::move(cfg))) {}
Daemon::~Daemon() = default;
int Daemon::run() { return impl_->run(); }

}  // namespace pressline::agent
