// pressline-dispatch: the cloud-dispatcher stand-in. Sends job orders and commands to an agent
// over MQTT and watches or checks the events it publishes (docs/mqtt-api.md).
//
//   pressline-dispatch send  --broker URI --shop S --station ID [--commands | --pool P] FILE...
//   pressline-dispatch watch --broker URI --shop S --station ID [--json] [--until-file F]
//   pressline-dispatch check --broker URI --shop S --station ID --expect FILE [--timeout SEC]
// (see README.md beside this file; the expectation format is in expectations.hpp)
//
// Exit codes: 0 success; 1 check failed (expectations not met in time, or a broken sequence) or
// a publish was refused; 2 bad usage, unreadable file or no broker.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "event_format.hpp"
#include "expectations.hpp"
#include "mqtt_util.hpp"

namespace fs = std::filesystem;
using namespace pressline::sim;

namespace {

std::atomic<bool> g_stop{false};

extern "C" void on_signal(int) { g_stop = true; }

void install_signal_handlers() {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
}

struct Common {
    std::string broker = "tcp://127.0.0.1:1883";
    std::string shop;
    std::string station;
    std::string prefix{kDefaultPrefix};

    Topics topics() const { return Topics{prefix, shop, station}; }
};

void add_common(CLI::App* app, Common& c, bool station_required = true) {
    app->add_option("--broker", c.broker, "broker URI")->capture_default_str();
    app->add_option("--shop", c.shop, "shop name (station.shop)")->required();
    auto* st = app->add_option("--station", c.station, "station id (station.id)");
    if (station_required) st->required();
    app->add_option("--prefix", c.prefix, "topic prefix (mqtt.topic_prefix)")->capture_default_str();
}

// Parses a payload as JSON; nullopt when it is not JSON.
std::optional<Json> parse(const std::string& payload) {
    try {
        return Json::parse(payload);
    } catch (const Json::parse_error&) {
        return std::nullopt;
    }
}

// ---- send -------------------------------------------------------------------------------------

struct SendOptions {
    Common common;
    bool commands = false;
    std::string pool;
    int qos = 1;
    int interval_ms = 0;
    std::vector<std::string> files;
};

int run_send(const SendOptions& o) {
    std::string topic = !o.pool.empty()  ? o.common.topics().pool_jobs(o.pool)
                        : o.commands     ? o.common.topics().commands()
                                         : o.common.topics().jobs();
    if (o.pool.empty() && o.common.station.empty())
        throw CLI::ValidationError("--station", "is required unless --pool is given");
    std::vector<std::pair<std::string, std::string>> payloads;  // file, bytes
    for (const auto& f : o.files) payloads.emplace_back(f, read_file_bytes(f));

    ConnectSettings cs;
    cs.auto_reconnect = false;
    Client client(o.common.broker, fresh_client_id("send"), cs);
    client.connect();

    int refused = 0;
    for (const auto& [file, bytes] : payloads) {
        auto msg = mqtt::make_message(topic, bytes, o.qos, false);
        try {
            auto tok = client->publish(msg);
            tok->wait_for(std::chrono::seconds(10));
            if (!tok->is_complete()) throw std::runtime_error("no PUBACK within 10 s");
            std::cout << "sent " << fs::path(file).filename().string() << " (" << bytes.size() << " bytes) -> "
                      << topic << std::endl;
        } catch (const std::exception& e) {
            std::cerr << "pressline-dispatch: publishing " << file << " failed: " << e.what() << std::endl;
            ++refused;
        }
        if (o.interval_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(o.interval_ms));
    }
    client.disconnect();
    return refused == 0 ? 0 : 1;
}

// ---- subscriber shared by watch and check -----------------------------------------------------

struct Subscriber {
    Client client;
    std::vector<std::string> filters;

    // Connects, subscribes (QoS 1, waits for the SUBACK) and resubscribes after reconnects when
    // the broker lost the session.
    Subscriber(const std::string& uri, const std::string& client_id, ConnectSettings cs,
               std::vector<std::string> topic_filters)
        : client(uri, client_id, cs), filters(std::move(topic_filters)) {
        client->start_consuming();
        if (!client.connect()) subscribe(true);  // a kept session keeps its subscriptions
        client->set_connected_handler([this](const std::string&) {
            // Runs on paho's thread: subscribe without waiting (waiting here would deadlock).
            try {
                subscribe(false);
            } catch (const mqtt::exception& e) {
                std::cerr << "pressline-dispatch: resubscribe failed: " << e.what() << std::endl;
            }
        });
    }

    void subscribe(bool wait) {
        for (const auto& f : filters) {
            auto tok = client->subscribe(f, 1);
            if (wait && !tok->wait_for(std::chrono::seconds(5)))
                throw std::runtime_error("no SUBACK for " + f);
        }
    }

    // Next message within `timeout`; nullptr on timeout. Notes a lost connection on stderr.
    mqtt::const_message_ptr next(std::chrono::milliseconds timeout) {
        mqtt::const_message_ptr msg;
        if (!client->try_consume_message_for(&msg, timeout)) return nullptr;
        if (!msg) std::cerr << "pressline-dispatch: connection to the broker lost, reconnecting" << std::endl;
        return msg;
    }

    ~Subscriber() {
        client->set_connected_handler({});
        client.disconnect();
    }
};

// ---- watch ------------------------------------------------------------------------------------

struct WatchOptions {
    Common common;
    bool json = false;
    std::string until_file;
    std::string ready_file;
};

int run_watch(const WatchOptions& o) {
    auto t = o.common.topics();
    ConnectSettings cs;
    Subscriber sub(o.common.broker, fresh_client_id("watch"), cs, {t.events(), t.status()});
    if (!o.ready_file.empty()) std::ofstream(o.ready_file) << "subscribed\n";
    if (!o.json)
        std::cerr << "watching " << t.events() << " and " << t.status() << " on " << o.common.broker << std::endl;
    while (!g_stop) {
        if (!o.until_file.empty() && fs::exists(o.until_file)) break;
        auto msg = sub.next(std::chrono::milliseconds(200));
        if (!msg) continue;
        const std::string& payload = msg->get_payload_str();
        auto j = parse(payload);
        if (o.json) {
            std::cout << (j ? j->dump() : payload) << std::endl;
            continue;
        }
        if (!j) {
            std::cout << utc_clock_now() << "  (not JSON on " << msg->get_topic() << ") " << payload << std::endl;
        } else if (msg->get_topic() == t.status()) {
            std::cout << format_status_line(*j, msg->is_retained()) << std::endl;
        } else {
            std::cout << format_event_line(*j) << std::endl;
        }
    }
    return 0;
}

// ---- check ------------------------------------------------------------------------------------

struct CheckOptions {
    Common common;
    std::string expect_file;
    double timeout_s = 60;
    std::string ready_file;
    bool verbose = false;
    std::string client_id;
    std::uint32_t session_expiry_s = 3600;
    bool subscribe_only = false;
};

int run_check(const CheckOptions& o) {
    auto checker = EventChecker::load(o.expect_file);
    auto t = o.common.topics();
    ConnectSettings cs;
    std::string id = o.client_id.empty() ? fresh_client_id("check") : o.client_id;
    if (!o.client_id.empty()) {  // persistent session: events published meanwhile wait at the broker
        cs.clean_start = false;
        cs.session_expiry_s = o.session_expiry_s;
    }
    Subscriber sub(o.common.broker, id, cs, {t.events()});
    if (!o.ready_file.empty()) std::ofstream(o.ready_file) << "subscribed\n";
    if (o.subscribe_only) {
        std::cout << "check: session " << id << " subscribed to " << t.events() << std::endl;
        return 0;
    }

    using clock = std::chrono::steady_clock;
    auto start = clock::now();
    auto deadline = start + std::chrono::milliseconds(static_cast<long long>(o.timeout_s * 1000));
    auto elapsed = [&] {
        return std::chrono::duration<double>(clock::now() - start).count();
    };
    while (!checker.satisfied() && !checker.failed() && !g_stop && clock::now() < deadline) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
        auto msg = sub.next(std::min(left, std::chrono::milliseconds(200)));
        if (!msg) continue;
        auto j = parse(msg->get_payload_str());
        if (!j) {
            std::cerr << "check: ignoring a non-JSON event payload: " << msg->get_payload_str() << std::endl;
            continue;
        }
        if (o.verbose) std::cout << format_event_line(*j) << std::endl;
        checker.observe(*j);
    }
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.1f", elapsed());
    if (checker.satisfied()) {
        std::cout << "check: OK, all " << checker.expectation_count() << " expectations met in " << secs << " s ("
                  << checker.stream_summary() << ", no sequence gap)" << std::endl;
        return 0;
    }
    std::cout << "check: FAILED after " << secs << " s" << (g_stop ? " (interrupted)" : "") << " ("
              << checker.stream_summary() << ")" << std::endl;
    for (const auto& f : checker.failures()) std::cout << "  FAILURE  " << f << std::endl;
    auto unmet = checker.unmet_report();
    if (!unmet.empty())
        std::cout << "  " << unmet.size() << " of " << checker.expectation_count() << " expectations not met"
                  << (checker.failed() ? " when the check stopped:" : ":") << std::endl;
    for (const auto& u : unmet) std::cout << "  " << u << std::endl;
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"pressline-dispatch: cloud-dispatcher stand-in for Pressline agents (MQTT 5)"};
    app.require_subcommand(1);

    SendOptions send;
    auto* s = app.add_subcommand("send", "publish files (raw bytes) as job orders or commands, QoS 1");
    add_common(s, send.common, false);
    s->add_flag("--commands", send.commands, "publish to the station's commands topic");
    s->add_option("--pool", send.pool, "publish to the pool jobs topic of this pool instead");
    s->add_option("--qos", send.qos, "QoS")->check(CLI::Range(0, 2))->capture_default_str();
    s->add_option("--interval-ms", send.interval_ms, "pause between files");
    s->add_option("files", send.files, "payload files ('-' = stdin)")->required();

    WatchOptions watch;
    auto* w = app.add_subcommand("watch", "print the station's events and status, one line each");
    add_common(w, watch.common);
    w->add_flag("--json", watch.json, "print the raw JSON, one message per line");
    w->add_option("--until-file", watch.until_file, "stop once this file exists");
    w->add_option("--ready-file", watch.ready_file, "written once subscribed");

    CheckOptions check;
    auto* c = app.add_subcommand("check", "wait until the events meet the expectations in a file");
    add_common(c, check.common);
    c->add_option("--expect", check.expect_file, "expectation file (JSON, see tools/demo-orders/README.md)")
        ->required();
    c->add_option("--timeout", check.timeout_s, "seconds to wait")->capture_default_str();
    c->add_option("--ready-file", check.ready_file, "written once subscribed (start sending after that)");
    c->add_flag("-v,--verbose", check.verbose, "print each event as it arrives");
    c->add_option("--client-id", check.client_id,
                  "use a persistent session with this client id (default: fresh id, clean session)");
    c->add_option("--session-expiry", check.session_expiry_s, "session expiry with --client-id, seconds")
        ->capture_default_str();
    c->add_flag("--subscribe-only", check.subscribe_only,
                "with --client-id: create the session and subscription, then exit (check later)");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    install_signal_handlers();
    try {
        if (*s) return run_send(send);
        if (*w) return run_watch(watch);
        if (*c) {
            if (check.subscribe_only && check.client_id.empty())
                throw CLI::ValidationError("--subscribe-only", "needs --client-id");
            return run_check(check);
        }
    } catch (const CLI::Error& e) {
        std::cerr << "pressline-dispatch: " << e.what() << std::endl;
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "pressline-dispatch: " << e.what() << std::endl;
        return 2;
    }
    return 2;
}
