// Broker outages: the broker stops while the agent runs (mid-stream), and the agent is
// restarted while the broker is down. The agent keeps running, keeps its outbox, reconnects
// when the broker is back on the same port, and the cloud ends up with every event exactly
// once by sequence, without gaps. Each test owns its broker (it stops it).
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <thread>

#include "pressline/testing/fixture.hpp"

using namespace pressline::testing;

namespace {

class Outage : public IntegrationTest {
protected:
    void SetUp() override {
        IntegrationTest::SetUp();
        broker_dir_ = std::make_unique<TempDir>("pressline-it-outage-broker");
        own_broker_ = std::make_unique<Broker>(broker_dir_->path(), BrokerMode::plain);
        own_broker_->start();
    }
    void TearDown() override {
        const bool failed = HasFailure();
        if (failed) {
            std::cerr << "---- broker log (kept): " << own_broker_->log_path().string() << "\n";
            broker_dir_->keep();
        }
        IntegrationTest::TearDown();  // stops the agent, drops the client
        own_broker_.reset();
        broker_dir_.reset();
    }
    Broker& broker() override { return *own_broker_; }

    // Restarts the stopped broker on its port and waits until both the agent and the cloud
    // client are connected again.
    void bring_broker_back() {
        const auto offset = broker().log_size();
        const int cloud_connects = cloud().mqtt().connect_count();
        const int port = broker().port();
        broker().restart();
        ASSERT_EQ(broker().port(), port);
        ASSERT_TRUE(broker().wait_connected(agent().config().effective_client_id(), 30s, offset))
            << "agent did not reconnect\n" << tail_lines(agent().log(), 40);
        ASSERT_TRUE(cloud().mqtt().wait_connect_count(cloud_connects + 1, 30s)) << "the test's client did not reconnect";
    }

    // Checks over everything the cloud received: gap-free sequence from 1, and each of
    // `jobs` accepted exactly once (by distinct sequence) and never rejected.
    void expect_complete(const std::vector<std::string>& jobs) {
        const auto events = cloud().events();
        // Every copy the cloud got is a valid CloudEvent (re-sends included).
        int bad = 0;
        for (const auto& e : events) {
            const std::string p = envelope_problems(e, agent().config().topics().source());
            if (!p.empty() && ++bad <= 5) ADD_FAILURE() << "malformed event #" << e.index << ": " << p;
        }
        EXPECT_EQ(bad, 0) << "malformed events received";
        const auto rep = analyze_sequences(events);
        EXPECT_TRUE(rep.gap_free()) << rep.str();
        EXPECT_TRUE(rep.distinct.count(1)) << rep.str();
        std::map<std::string, int> accepted;
        for (const auto& [seq, e] : rep.distinct) {
            if (e.type == "job.accepted" && e.subject) ++accepted[*e.subject];
            EXPECT_NE(e.type, "job.rejected") << e.raw;
        }
        for (const auto& id : jobs) EXPECT_EQ(accepted[id], 1) << id << " accepted " << accepted[id] << " times";
    }

    std::unique_ptr<TempDir> broker_dir_;
    std::unique_ptr<Broker> own_broker_;
};

std::size_t accepted_among(const std::vector<Event>& evs, const std::set<std::string>& ids) {
    std::set<std::string> seen;
    for (const auto& e : evs)
        if (e.type == "job.accepted" && e.subject && ids.count(*e.subject)) seen.insert(*e.subject);
    return seen.size();
}

}  // namespace

TEST_F(Outage, BrokerStopsMidStreamAndComesBackOnSamePort) {
    // Several outages: what goes wrong at a connection loss often depends on the exact moment
    // (a PUBLISH half-written, in flight, or queued), so one outage catches little.
    constexpr int kOutages = 5;
    constexpr int kBurst = 150;
    auto cfg = make_config();
    start_agent(cfg);
    const auto topics = cfg.topics();

    std::vector<std::string> jobs;
    for (int i = 0; i < 3; ++i) {
        jobs.push_back("J-out-warm-" + std::to_string(i));
        accept_job(jobs.back());
    }

    // Outages, each in the middle of a burst: the broker goes away while the agent is
    // still accepting jobs and publishing their events (some of them in flight).
    for (int cycle = 0; cycle < kOutages; ++cycle) {
        SCOPED_TRACE("outage " + std::to_string(cycle + 1));
        std::vector<std::pair<std::string, std::string>> burst;
        std::set<std::string> burst_ids;
        for (int i = 0; i < kBurst; ++i) {
            jobs.push_back("J-out-" + std::to_string(cycle) + "-" + std::to_string(i));
            burst_ids.insert(jobs.back());
            burst.emplace_back(topics.jobs(), valid_job(jobs.back()).dump());
        }
        cloud().mqtt().publish_many(burst);
        ASSERT_TRUE(wait_while_agent_runs([&](const auto& evs) { return accepted_among(evs, burst_ids) >= 10; }));
        broker().stop();
        std::cout << "[ info ] outage " << cycle + 1 << ": broker stopped after " << accepted_among(cloud().events(), burst_ids)
                  << " of the burst were seen accepted\n";

        // The agent rides out the outage.
        std::this_thread::sleep_for(2s);
        ASSERT_EQ(agent().state(), "running") << "agent ended while the broker was down\n" << tail_lines(agent().log(), 40);

        const std::size_t status_mark = cloud().status_count();
        bring_broker_back();
        if (HasFatalFailure()) return;
        EXPECT_TRUE(cloud().wait_status([](const Status& s) { return s.state() == "online"; }, kWait, status_mark))
            << "no status online after the reconnect\n" << cloud().dump();
    }

    // New work after the outages.
    std::vector<std::pair<std::string, std::string>> after;
    for (int i = 0; i < 20; ++i) {
        jobs.push_back("J-out-after-" + std::to_string(i));
        after.emplace_back(topics.jobs(), valid_job(jobs.back()).dump());
    }
    const std::set<std::string> all_ids(jobs.begin(), jobs.end());
    cloud().mqtt().publish_many(after);
    const bool all = wait_while_agent_runs([&](const auto& evs) { return accepted_among(evs, all_ids) >= all_ids.size(); }, 60s);
    cloud().settle(2s);
    ASSERT_TRUE(all) << accepted_among(cloud().events(), all_ids) << " of " << all_ids.size() << " accepted\n"
                     << cloud().dump();
    expect_complete(jobs);
}

// The broker hangs (SIGSTOP) in the middle of a burst, so the agent's writes pile up unread,
// and is then restarted: the connection dies with PUBLISH packets half-written or unacknowledged.
TEST_F(Outage, BrokerHangsMidStreamThenRestarts) {
    auto cfg = make_config();
    start_agent(cfg);
    const auto topics = cfg.topics();

    std::vector<std::string> jobs;
    for (int i = 0; i < 3; ++i) {
        jobs.push_back("J-hang-warm-" + std::to_string(i));
        accept_job(jobs.back());
    }
    for (int cycle = 0; cycle < 2; ++cycle) {
        SCOPED_TRACE("hang " + std::to_string(cycle + 1));
        std::vector<std::pair<std::string, std::string>> burst;
        std::set<std::string> burst_ids;
        for (int i = 0; i < 300; ++i) {
            jobs.push_back("J-hang-" + std::to_string(cycle) + "-" + std::to_string(i));
            burst_ids.insert(jobs.back());
            burst.emplace_back(topics.jobs(), valid_job(jobs.back()).dump());
        }
        cloud().mqtt().publish_many(burst);
        ASSERT_TRUE(wait_while_agent_runs([&](const auto& evs) { return accepted_among(evs, burst_ids) >= 10; }));
        broker().freeze();
        std::this_thread::sleep_for(1500ms);
        broker().stop();
        std::cout << "[ info ] hang " << cycle + 1 << ": " << accepted_among(cloud().events(), burst_ids)
                  << " of the burst seen accepted before the broker hung\n";
        std::this_thread::sleep_for(1s);
        ASSERT_EQ(agent().state(), "running") << tail_lines(agent().log(), 40);
        bring_broker_back();
        if (HasFatalFailure()) return;
    }
    const std::set<std::string> all_ids(jobs.begin(), jobs.end());
    const bool all = wait_while_agent_runs([&](const auto& evs) { return accepted_among(evs, all_ids) >= all_ids.size(); }, 60s);
    cloud().settle(2s);
    ASSERT_TRUE(all) << accepted_among(cloud().events(), all_ids) << " of " << all_ids.size() << " accepted\n"
                     << cloud().dump();
    expect_complete(jobs);
}

TEST_F(Outage, AgentRestartedWhileBrokerIsDownLosesNothing) {
    auto cfg = make_config();
    start_agent(cfg);
    const auto topics = cfg.topics();

    std::vector<std::string> jobs;
    for (int i = 0; i < 3; ++i) {
        jobs.push_back("J-down-before-" + std::to_string(i));
        accept_job(jobs.back());
    }

    broker().stop();
    ASSERT_TRUE(agent().running());
    // SIGTERM while it cannot reach the broker: still prompt, still exit 0.
    const auto t0 = Clock::now();
    auto st = agent().terminate(15s);
    ASSERT_TRUE(st) << "agent did not stop within 15 s of SIGTERM with the broker down\n"
                    << tail_lines(agent().log(), 40);
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
    EXPECT_EQ(st->code(), 0) << st->str();
    EXPECT_LE(took.count(), 10000) << "SIGTERM took " << took.count() << " ms with the broker down";

    // Started again while the broker is still down: it waits for the broker, it does not exit.
    agent().start(false);
    std::this_thread::sleep_for(3s);
    ASSERT_TRUE(agent().running()) << "agent exited with the broker down\n" << tail_lines(agent().log(), 40);

    const std::size_t status_mark = cloud().status_count();
    bring_broker_back();
    if (HasFatalFailure()) return;
    EXPECT_TRUE(cloud().wait_status([](const Status& s) { return s.state() == "online"; }, kWait, status_mark))
        << cloud().dump();

    // The first run's agent.stopping and the second run's agent.started were kept and sent.
    EXPECT_TRUE(cloud().wait_count([](const Event& e) { return e.type == "agent.started"; }, 2, kWait))
        << cloud().dump();
    EXPECT_TRUE(cloud().wait_count([](const Event& e) { return e.type == "agent.stopping"; }, 1, kWait))
        << cloud().dump();

    for (int i = 0; i < 3; ++i) {
        jobs.push_back("J-down-after-" + std::to_string(i));
        accept_job(jobs.back());
    }
    cloud().settle(2s);
    expect_complete(jobs);
    std::size_t stopping = 0, started = 0;
    for (const auto& [seq, e] : analyze_sequences(cloud().events()).distinct) {
        stopping += e.type == "agent.stopping";
        started += e.type == "agent.started";
    }
    EXPECT_EQ(stopping, 1u) << cloud().dump();
    EXPECT_EQ(started, 2u) << cloud().dump();
}
