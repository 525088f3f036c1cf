// The configuration as a technician meets it: `pressline check-config` points at every
// mistake with FILE:LINE:COL and exits 2; `pressline run` refuses a bad file before touching
// the broker; SIGHUP reloads a good file and keeps the old configuration when the new one is bad.
#include <signal.h>

#include <gtest/gtest.h>

#include <regex>
#include <thread>

#include "pressline/testing/fixture.hpp"

using namespace pressline::testing;
using nlohmann::json;

namespace {

class Config : public IntegrationTest {};

std::string regex_escape(const std::string& s) {
    return std::regex_replace(s, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)");
}

// 1-based number of the line of `text` that contains `needle`.
int line_of(const std::string& text, const std::string& needle) {
    const auto lines = split_lines(text);
    for (std::size_t i = 0; i < lines.size(); ++i)
        if (lines[i].find(needle) != std::string::npos) return static_cast<int>(i + 1);
    return 0;
}

// `text` with the first occurrence of `from` replaced by `to`.
std::string replaced(std::string text, const std::string& from, const std::string& to) {
    const auto p = text.find(from);
    EXPECT_NE(p, std::string::npos) << "'" << from << "' not in the config";
    if (p != std::string::npos) text.replace(p, from.size(), to);
    return text;
}

// Whether `out` has a diagnostic "FILE:LINE:COL: PATH: ..." for `file`, `line` and `path`.
bool has_diagnostic(const std::string& out, const std::string& file, int line, const std::string& path) {
    const std::regex re("(^|\n)" + regex_escape(file) + ":" + std::to_string(line) + R"(:\d+: )" + regex_escape(path) + ": ");
    return std::regex_search(out, re);
}

}  // namespace

TEST_F(Config, CheckConfigAcceptsAValidFile) {
    Agent& a = create_agent(make_config());
    a.write_config();
    auto r = run_pressline({"check-config", a.config_path().string()});
    EXPECT_EQ(r.status.code(), 0) << r.status.str() << "\n" << r.out << r.err;
}

TEST_F(Config, CheckConfigPointsAtATypoedKey) {
    Agent& a = create_agent(make_config());
    const std::string yaml = replaced(a.config().yaml(), "  keepalive_s: 10", "  keepalive: 10");
    a.write_config_text(yaml);
    const int line = line_of(yaml, "keepalive: 10");
    auto r = run_pressline({"check-config", a.config_path().string()});
    const std::string out = r.out + r.err;
    EXPECT_EQ(r.status.code(), 2) << r.status.str() << "\n" << out;
    EXPECT_TRUE(has_diagnostic(out, a.config_path().string(), line, "broker.keepalive"))
        << "expected " << a.config_path().string() << ":" << line << ":COL: broker.keepalive: ...\n" << out;
    EXPECT_TRUE(icontains(out, "keepalive_s")) << "a suggestion of the right key would help:\n" << out;
}

TEST_F(Config, CheckConfigPointsAtAWrongType) {
    Agent& a = create_agent(make_config());
    const std::string yaml = replaced(a.config().yaml(), "  reconnect_min_s: 1", "  reconnect_min_s: soon");
    a.write_config_text(yaml);
    const int line = line_of(yaml, "reconnect_min_s: soon");
    auto r = run_pressline({"check-config", a.config_path().string()});
    const std::string out = r.out + r.err;
    EXPECT_EQ(r.status.code(), 2) << r.status.str() << "\n" << out;
    EXPECT_TRUE(has_diagnostic(out, a.config_path().string(), line, "broker.reconnect_min_s"))
        << "expected " << a.config_path().string() << ":" << line << ":COL: broker.reconnect_min_s: ...\n" << out;
}

TEST_F(Config, CheckConfigReportsEveryProblemAtOnce) {
    auto cfg = make_config();
    cfg.log_level = "verbose";  // not a level
    Agent& a = create_agent(cfg);
    std::string yaml = replaced(a.config().yaml(), "  keepalive_s: 10", "  keepalive_s: [10]");
    yaml = replaced(yaml, "station:\n", "station:\n  colour: blue\n");
    a.write_config_text(yaml);
    auto r = run_pressline({"check-config", a.config_path().string()});
    const std::string out = r.out + r.err;
    EXPECT_EQ(r.status.code(), 2) << r.status.str() << "\n" << out;
    const std::string file = a.config_path().string();
    EXPECT_TRUE(has_diagnostic(out, file, line_of(yaml, "colour: blue"), "station.colour")) << out;
    EXPECT_TRUE(has_diagnostic(out, file, line_of(yaml, "keepalive_s: [10]"), "broker.keepalive_s")) << out;
    EXPECT_TRUE(has_diagnostic(out, file, line_of(yaml, "level: \"verbose\""), "log.level")) << out;
}

TEST_F(Config, CheckConfigOfAMissingFileFails) {
    auto r = run_pressline({"check-config", (work() / "nope.yaml").string()});
    EXPECT_NE(r.status.code(), 0) << r.status.str();
    EXPECT_TRUE(icontains(r.out + r.err, "nope.yaml")) << r.out << r.err;
}

TEST_F(Config, RunWithABadConfigExitsWithoutTouchingTheBroker) {
    auto cfg = make_config();
    Agent& a = create_agent(cfg);
    const std::string yaml = replaced(a.config().yaml(), "  keepalive_s: 10", "  keepalive_s: often");
    a.write_config_text(yaml);
    create_cloud(cfg.topics());
    const auto offset = broker().log_size();
    a.start(false);
    auto st = a.wait_exit(15s);
    ASSERT_TRUE(st) << "pressline run kept running with an invalid config\n" << tail_lines(a.log(), 20);
    EXPECT_NE(st->code(), 0) << st->str();
    EXPECT_FALSE(st->signaled()) << st->str();
    const std::string log = a.log();
    EXPECT_TRUE(std::regex_search(log, std::regex(regex_escape(a.config_path().string()) + ":" +
                                                  std::to_string(line_of(yaml, "keepalive_s: often")) +
                                                  R"(:\d+: broker\.keepalive_s: )")))
        << "the diagnostic should be in the log:\n" << log;
    // Not a connection attempt, not a status.
    EXPECT_EQ(read_file_from(broker().log_path(), offset).find(cfg.effective_client_id()), std::string::npos);
    EXPECT_FALSE(fetch_retained(client_options(broker()), cfg.topics().status(), 1s).has_value());
    EXPECT_EQ(cloud().event_count(), 0u) << cloud().dump();
    EXPECT_FALSE(std::filesystem::exists(cfg.state_dir / "journal.db")) << "a refused config created the journal";
}

TEST_F(Config, SighupWithABrokenConfigKeepsTheOldOne) {
    auto cfg = make_config();
    start_agent(cfg);
    accept_job("J-hup-before");

    const std::string broken = replaced(agent().config().yaml(), "  keepalive_s: 10", "  keepalive_s: often");
    agent().write_config_text(broken);
    const auto log_mark = agent().log_size();
    const auto broker_mark = broker().log_size();
    ASSERT_TRUE(agent().signal(SIGHUP));
    // The problem is logged (with where it is)...
    EXPECT_TRUE(agent().wait_log("broker.keepalive_s", kWait, log_mark))
        << "the reload problem was not logged\n" << tail_lines(agent().log(), 20);
    // ...and the agent goes on with the old config: running, connected, accepting.
    std::this_thread::sleep_for(500ms);
    ASSERT_EQ(agent().state(), "running") << tail_lines(agent().log(), 20);
    accept_job("J-hup-after-broken");
    EXPECT_EQ(broker().connect_line(cfg.effective_client_id(), broker_mark), "")
        << "a failed reload should not reconnect";
    auto st = fetch_retained(client_options(broker()), cfg.topics().status());
    ASSERT_TRUE(st);
    EXPECT_EQ(json::parse(st->payload, nullptr, false).value("state", ""), "online") << st->payload;
}

TEST_F(Config, SighupWithAValidChangeIsApplied) {
    auto cfg = make_config();
    start_agent(cfg);

    // A ~2 KB job fits the default intake.max_payload_bytes (64 KiB).
    auto big_job = [](const std::string& id) {
        json j = valid_job(id);
        j["notes"] = std::string(2000, 'n');
        return j.dump();
    };
    cloud().publish_job(big_job("J-big-before"));
    ASSERT_TRUE(cloud().wait_event("job.accepted", "J-big-before")) << cloud().dump();

    // At log.level info, accepting a job is logged (with its job_id).
    const bool info_logs_jobs = agent().wait_log("J-big-before", 5s);

    // Reload with a 1 KiB limit and a quieter log level.
    agent().config().max_payload_bytes = 1024;
    agent().config().log_level = "warn";
    agent().write_config();
    const auto log_mark = agent().log_size();
    ASSERT_TRUE(agent().signal(SIGHUP));

    // Probe until the new limit is in force: the same kind of job is now too large.
    std::optional<Event> rejected;
    int n = 0;
    poll_until(
        [&] {
            const std::size_t mark = cloud().event_count();
            cloud().publish_job(big_job("J-big-after-" + std::to_string(++n)));
            auto e = cloud().wait_event([](const Event& ev) { return ev.type == "job.rejected" || ev.type == "job.accepted"; },
                                        5s, mark);
            if (e && e->type == "job.rejected") rejected = e;
            return rejected.has_value();
        },
        20s, 200ms);
    ASSERT_TRUE(rejected) << "intake.max_payload_bytes was not applied by SIGHUP\n" << cloud().dump()
                          << tail_lines(agent().log(), 20);
    EXPECT_EQ(rejected->data_str("reason"), "payload_too_large") << rejected->raw;
    EXPECT_EQ(agent().state(), "running");
    // Small jobs still go through, and at level warn an accepted job is no longer logged.
    accept_job("J-small-after-reload");
    if (info_logs_jobs) {
        std::this_thread::sleep_for(500ms);
        EXPECT_EQ(read_file_from(agent().log_path(), log_mark).find("J-small-after-reload"), std::string::npos)
            << "log.level: warn did not take effect (an info-level line appeared)\n"
            << tail_lines(agent().log(), 10);
    } else {
        std::cout << "[ info ] accepted jobs are not logged at info level; log.level change not observable\n";
    }
}
