// A journal that cannot take more work (disk below storage.min_free_mb, or the journal at
// storage.max_db_mb) stops intake loudly: status says "blocked" with the reason, the log says
// why, the job in hand is NOT acknowledged, and once there is room again it is accepted exactly
// once — nothing that was accepted before is lost.
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <set>

#include "pressline/testing/fixture.hpp"

using namespace pressline::testing;

namespace {

class Storage : public IntegrationTest {
protected:
    // Acceptances of `job_id`, counted once per event id: delivery is at-least-once, so an
    // event re-sent after a lost connection (same id, same sequence) is not a second acceptance.
    std::size_t acceptances(const std::string& job_id) {
        std::set<std::string> ids;
        for (const auto& e : cloud().events_for(job_id, "job.accepted")) ids.insert(e.id);
        return ids.size();
    }
};

}  // namespace

TEST_F(Storage, LowDiskBlocksIntakeUntilThereIsRoomThenAcceptsExactlyOnce) {
    auto cfg = make_config();
    start_agent(cfg);
    accept_job("J-before-full");

    // More free space required than any disk has: the journal refuses new work.
    agent().config().min_free_mb = 1'000'000;
    agent().write_config();
    const auto log_at = agent().log_size();
    agent().signal(SIGHUP);
    ASSERT_TRUE(agent().wait_log("configuration reloaded", kWait, log_at)) << agent().log();

    const auto status_from = cloud().status_count();
    cloud().publish_job(valid_job("J-while-full").dump());
    auto blocked = cloud().wait_status([](const Status& s) { return s.intake() == "blocked"; },
                                       kWait, status_from);
    ASSERT_TRUE(blocked) << agent().log();
    EXPECT_NE(blocked->json.value("blocked_reason", "").find("storage.min_free_mb"), std::string::npos)
        << blocked->json.dump();
    EXPECT_TRUE(agent().wait_log("intake blocked", kWait, log_at)) << agent().log();
    cloud().settle(1500ms);
    EXPECT_TRUE(cloud().events_for("J-while-full").empty()) << cloud().dump();
    EXPECT_TRUE(agent().running()) << agent().state();

    // Room again (the reload itself is handled on the agent's event loop while the intake
    // thread waits): the job in hand is accepted, once.
    agent().config().min_free_mb = 0;
    agent().write_config();
    agent().signal(SIGHUP);
    auto accepted = cloud().wait_event("job.accepted", "J-while-full");
    ASSERT_TRUE(accepted) << cloud().dump() << agent().log();
    auto open = cloud().wait_status([](const Status& s) { return s.intake() == "open"; }, kWait,
                                    status_from);
    EXPECT_TRUE(open) << agent().log();
    cloud().settle();
    EXPECT_EQ(acceptances("J-while-full"), 1u) << cloud().dump();
    EXPECT_EQ(acceptances("J-before-full"), 1u) << cloud().dump();
    EXPECT_TRUE(analyze_sequences(cloud().events()).gap_free()) << analyze_sequences(cloud().events()).str();
}

TEST_F(Storage, StoppingWhileBlockedDoesNotAcknowledgeTheJobInHand) {
    auto cfg = make_config();
    cfg.min_free_mb = 1'000'000;
    start_agent(cfg);
    const auto status_from = cloud().status_count();
    cloud().publish_job(valid_job("J-held-at-broker").dump());
    ASSERT_TRUE(cloud().wait_status([](const Status& s) { return s.intake() == "blocked"; }, kWait,
                                    status_from))
        << agent().log();

    auto st = agent().terminate();
    ASSERT_TRUE(st.has_value()) << "agent did not stop while intake was blocked";
    EXPECT_TRUE(agent().log().find("stays at the broker") != std::string::npos) << agent().log();

    // With room again, the broker redelivers the job that was never acknowledged.
    agent().config().min_free_mb = 0;
    const auto log_at = agent().log_size();
    agent().start();
    ASSERT_TRUE(agent().wait_log("connected", kWait, log_at)) << agent().log();
    auto accepted = cloud().wait_event("job.accepted", "J-held-at-broker");
    ASSERT_TRUE(accepted) << cloud().dump() << agent().log();
    cloud().settle();
    EXPECT_EQ(acceptances("J-held-at-broker"), 1u) << cloud().dump();
}

TEST_F(Storage, JournalSizeCapRefusesWithoutLosingAcceptedJobs) {
    auto cfg = make_config();
    cfg.max_db_mb = 16;
    start_agent(cfg);
    // Large (but valid) orders fill 16 MB quickly: a long unknown field is ignored by the
    // contract but stored with the order.
    const std::string filler(48 * 1024, 'x');
    int sent = 0;
    std::optional<Status> blocked;
    const auto status_from = cloud().status_count();
    for (; sent < 600; ++sent) {
        auto job = valid_job("J-big-" + std::to_string(sent));
        job["notes"] = filler;
        cloud().publish_job(job.dump());
        if (sent % 50 == 49) {
            blocked = cloud().wait_status([](const Status& s) { return s.intake() == "blocked"; },
                                          500ms, status_from);
            if (blocked) break;
        }
    }
    if (!blocked)
        blocked = cloud().wait_status([](const Status& s) { return s.intake() == "blocked"; }, kWait,
                                      status_from);
    ASSERT_TRUE(blocked) << "sent " << sent << "\n" << agent().log();
    EXPECT_TRUE(agent().running()) << agent().state();
    // Every job accepted before the cap is still known: a restart with room accepts the rest
    // and answers redeliveries of accepted ones as duplicates, never a second acceptance.
    agent().kill();
    agent().config().max_db_mb = 0;
    const auto log_at = agent().log_size();
    agent().start();
    ASSERT_TRUE(agent().wait_log("connected", kWait, log_at)) << agent().log();
    const int expected = std::min(sent + 1, 600);
    ASSERT_TRUE(cloud().wait_for(
        [&](const std::vector<Event>& events) {
            std::set<std::string> accepted;
            for (const auto& e : events)
                if (e.type == "job.accepted" && e.subject) accepted.insert(*e.subject);
            for (int i = 0; i < expected; ++i)
                if (!accepted.count("J-big-" + std::to_string(i))) return false;
            return true;
        },
        60s))
        << cloud().dump();
    cloud().settle();
    for (int i = 0; i < expected; ++i)
        EXPECT_EQ(acceptances("J-big-" + std::to_string(i)), 1u) << i;
    const auto seq = analyze_sequences(cloud().events());
    EXPECT_TRUE(seq.gap_free()) << seq.str();
}
