// The agent's life as seen from outside: SIGTERM stops it promptly with exit 0 after a
// retained "offline" status and agent.stopping; SIGKILL leaves the Last Will "offline"; jobs
// sent while it is stopped wait in its persistent session and are accepted after a restart.
#include <signal.h>

#include <gtest/gtest.h>

#include <thread>

#include "pressline/testing/fixture.hpp"

using namespace pressline::testing;
using nlohmann::json;

namespace {

class Lifecycle : public IntegrationTest {};

}  // namespace

TEST_F(Lifecycle, SigtermStopsPromptlyWithExitZeroAndRetainedOffline) {
    auto cfg = make_config();
    start_agent(cfg);
    accept_job("J-term-1");

    const std::size_t status_mark = cloud().status_count();
    const auto t0 = Clock::now();
    auto st = agent().terminate(10s);
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
    ASSERT_TRUE(st) << "still running 10 s after SIGTERM\n" << tail_lines(agent().log(), 20);
    EXPECT_EQ(st->code(), 0) << st->str() << "\n" << tail_lines(agent().log(), 20);
    EXPECT_LE(took.count(), 5000) << "SIGTERM took " << took.count() << " ms";
    std::cout << "[ info ] SIGTERM to exit: " << took.count() << " ms\n";

    auto offline = cloud().wait_status([](const Status& s) { return s.state() == "offline"; }, 5s, status_mark);
    EXPECT_TRUE(offline) << cloud().dump();
    EXPECT_TRUE(cloud().wait_event([](const Event& e) { return e.type == "agent.stopping"; }, 5s))
        << "no agent.stopping event\n" << cloud().dump();

    // What a newcomer sees: retained offline.
    auto retained = fetch_retained(client_options(broker()), cfg.topics().status());
    ASSERT_TRUE(retained) << "no retained status";
    const json s = json::parse(retained->payload, nullptr, false);
    EXPECT_EQ(s.value("state", ""), "offline") << retained->payload;

    const auto rep = analyze_sequences(cloud().events());
    EXPECT_TRUE(rep.gap_free()) << rep.str();
}

TEST_F(Lifecycle, SigkillLeavesLastWillOffline) {
    auto cfg = make_config();
    cfg.keepalive_s = 5;
    start_agent(cfg);
    const std::size_t status_mark = cloud().status_count();
    const auto t0 = Clock::now();
    agent().kill();
    // The broker publishes the will when it notices the connection is gone: at the latest
    // after 1.5 keepalive periods (7.5 s); a killed process closes its socket, so usually at once.
    auto offline = cloud().wait_status([](const Status& s) { return s.state() == "offline"; }, 9s, status_mark);
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
    ASSERT_TRUE(offline) << "no Last Will within 9 s (keepalive 5 s x 1.5 + margin)\n" << cloud().dump();
    std::cout << "[ info ] Last Will after " << took.count() << " ms\n";
    auto retained = fetch_retained(client_options(broker()), cfg.topics().status());
    ASSERT_TRUE(retained);
    EXPECT_EQ(json::parse(retained->payload, nullptr, false).value("state", ""), "offline") << retained->payload;
}

TEST_F(Lifecycle, JobsSentWhileStoppedAreAcceptedAfterRestart) {
    auto cfg = make_config();
    start_agent(cfg);
    accept_job("J-life-1");
    ASSERT_TRUE(agent().terminate(10s));

    // The agent's persistent session keeps these at the broker.
    for (int i = 0; i < 5; ++i) cloud().publish_job(valid_job("J-while-stopped-" + std::to_string(i)).dump());

    const std::size_t status_mark = cloud().status_count();
    const auto offset = broker().log_size();
    agent().start(false);
    wait_ready(offset, status_mark);
    for (int i = 0; i < 5; ++i) {
        const std::string id = "J-while-stopped-" + std::to_string(i);
        EXPECT_TRUE(cloud().wait_event("job.accepted", id)) << id << "\n" << cloud().dump();
    }
    // The session was resumed, not recreated.
    const std::string line = broker().connect_line(cfg.effective_client_id(), offset);
    EXPECT_NE(line.find("c0"), std::string::npos) << line;
    cloud().settle();
    const auto rep = analyze_sequences(cloud().events());
    EXPECT_TRUE(rep.gap_free()) << rep.str();
    std::size_t accepted = 0;
    for (const auto& [seq, e] : rep.distinct) accepted += e.type == "job.accepted";
    EXPECT_EQ(accepted, 6u) << cloud().dump();
}
