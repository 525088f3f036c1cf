// Crash safety: a stream of jobs, the agent SIGKILLed in the middle of it and restarted on the
// same state directory. Whatever the crash interrupted, every job is accepted exactly once
// across both runs (a redelivered one may add a job.duplicate), none is missing, and the
// events' sequence is gap-free from 1; an event re-sent after the restart keeps its id.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "pressline/testing/fixture.hpp"

using namespace pressline::testing;

namespace {

class Crash : public IntegrationTest {};

std::string job_id(int i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "J-crash-%04d", i);
    return buf;
}

// Distinct job_ids with a job.accepted among `events`.
std::size_t accepted_jobs(const std::vector<Event>& events) {
    std::set<std::string> ids;
    for (const auto& e : events)
        if (e.type == "job.accepted" && e.subject) ids.insert(*e.subject);
    return ids.size();
}

}  // namespace

TEST_F(Crash, SigkillMidStreamLosesNothingAndSequenceStaysGapFree) {
    constexpr int kJobs = 500;
    constexpr std::size_t kKillAfter = 200;
    auto cfg = make_config();
    start_agent(cfg);
    const auto topics = cfg.topics();

    // A separate publisher streams the jobs (~250/s) while this thread watches and kills.
    std::atomic<int> published{0};
    std::string publish_error;
    std::thread publisher([&] {
        try {
            MqttClient pub(client_options(broker(), "publisher-" + topics.station));
            pub.connect();
            for (int i = 0; i < kJobs; i += 10) {
                std::vector<std::pair<std::string, std::string>> batch;
                for (int k = i; k < std::min(i + 10, kJobs); ++k)
                    batch.emplace_back(topics.jobs(), valid_job(job_id(k), "ORD-CRASH-" + std::to_string(k / 3)).dump());
                pub.publish_many(batch, 10);
                published += static_cast<int>(batch.size());
                std::this_thread::sleep_for(40ms);
            }
        } catch (const std::exception& e) {
            publish_error = e.what();
        }
    });
    struct Joiner {
        std::thread& t;
        ~Joiner() {
            if (t.joinable()) t.join();
        }
    } joiner{publisher};

    ASSERT_TRUE(wait_while_agent_runs([&](const auto& evs) { return accepted_jobs(evs) >= kKillAfter; }, 60s))
        << "only " << accepted_jobs(cloud().events()) << " jobs accepted\n" << cloud().dump();
    const auto st = agent().kill();
    const std::size_t accepted_at_kill = accepted_jobs(cloud().events());
    const int published_at_kill = published.load();
    std::cout << "[ info ] SIGKILL after " << accepted_at_kill << " job.accepted seen, " << published_at_kill
              << " jobs published (" << st.str() << ")\n";

    agent().start(false);  // same config, same state dir
    publisher.join();
    ASSERT_EQ(publish_error, "");
    ASSERT_EQ(published.load(), kJobs);

    const bool all = wait_while_agent_runs([&](const auto& evs) { return accepted_jobs(evs) >= kJobs; }, 90s);
    cloud().settle(2s);  // late re-sends of events from before the crash
    const auto events = cloud().events();
    ASSERT_TRUE(all) << "accepted " << accepted_jobs(events) << " of " << kJobs << "\n" << cloud().dump();
    ASSERT_TRUE(agent().running()) << tail_lines(agent().log(), 40);

    // Sequence: one event per number, 1..max, copies identical.
    const auto rep = analyze_sequences(events);
    EXPECT_TRUE(rep.gap_free()) << rep.str();
    EXPECT_TRUE(rep.distinct.count(1)) << rep.str();

    // Per job: exactly one job.accepted (counted by distinct sequence), never rejected.
    std::map<std::string, int> accepted, duplicates;
    for (const auto& [seq, e] : rep.distinct) {
        if (!e.subject) continue;
        if (e.type == "job.accepted") ++accepted[*e.subject];
        if (e.type == "job.duplicate") ++duplicates[*e.subject];
        EXPECT_NE(e.type, "job.rejected") << e.raw;
    }
    int missing = 0, twice = 0;
    for (int i = 0; i < kJobs; ++i) {
        const int n = accepted[job_id(i)];
        if (n == 0) ++missing;
        if (n > 1) {
            ++twice;
            ADD_FAILURE() << job_id(i) << " accepted " << n << " times";
        }
    }
    EXPECT_EQ(missing, 0);
    EXPECT_EQ(twice, 0);
    std::size_t dup_total = 0;
    for (const auto& [id, n] : duplicates) dup_total += static_cast<std::size_t>(n);
    std::cout << "[ info ] " << events.size() << " events received, " << rep.distinct.size()
              << " distinct sequences, " << dup_total << " job.duplicate (redeliveries)\n";

    // Both runs announced themselves.
    std::size_t started = 0;
    for (const auto& [seq, e] : rep.distinct) started += e.type == "agent.started";
    EXPECT_EQ(started, 2u);
}
