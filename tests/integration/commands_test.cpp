// Commands as the cloud sends them: cancel (known, unknown, repeated command_id), drain and
// resume. Every command is answered by exactly one command.result per delivery; a command_id
// seen before is never executed again, its stored result is sent again (repeated: true).
#include <gtest/gtest.h>

#include "pressline/testing/fixture.hpp"

using namespace pressline::testing;
using nlohmann::json;

namespace {

class Commands : public IntegrationTest {
protected:
    // The first command.result for `command_id` with index >= from.
    std::optional<Event> result_for(const std::string& command_id, std::size_t from = 0) {
        return cloud().wait_event(
            [&](const Event& e) { return e.type == "command.result" && e.subject == command_id; }, kWait, from);
    }

    void expect_result_shape(const Event& e, const std::string& command_id, const std::string& type,
                             const std::string& status) {
        EXPECT_EQ(envelope_problems(e, agent().config().topics().source()), "") << e.raw;
        EXPECT_EQ(e.data_str("command_id"), command_id) << e.raw;
        EXPECT_EQ(e.data_str("command"), type) << e.raw;
        EXPECT_EQ(e.data_str("status"), status) << e.raw;
        EXPECT_TRUE(e.data.contains("message") && e.data["message"].is_string()) << e.raw;
    }

    static bool repeated(const Event& e) { return e.data.is_object() && e.data.value("repeated", false) == true; }
};

}  // namespace

TEST_F(Commands, CancelOfAnAcceptedJob) {
    start_agent(make_config());
    accept_job("J-cancel-1");

    cloud().publish_command(command("C-cancel-1", "cancel", "J-cancel-1").dump());
    auto cancelled = cloud().wait_event("job.cancelled", "J-cancel-1");
    ASSERT_TRUE(cancelled) << cloud().dump();
    EXPECT_EQ(envelope_problems(*cancelled, agent().config().topics().source()), "") << cancelled->raw;
    auto res = result_for("C-cancel-1");
    ASSERT_TRUE(res) << cloud().dump();
    expect_result_shape(*res, "C-cancel-1", "cancel", "ok");
    EXPECT_FALSE(repeated(*res)) << res->raw;

    cloud().settle();
    EXPECT_EQ(cloud().events_for("J-cancel-1", "job.cancelled").size(), 1u) << cloud().dump();
    EXPECT_EQ(cloud().events_for("C-cancel-1", "command.result").size(), 1u) << cloud().dump();
}

TEST_F(Commands, CancelOfAnUnknownJobIsAnError) {
    start_agent(make_config());
    cloud().publish_command(command("C-cancel-unknown", "cancel", "J-never-seen").dump());
    auto res = result_for("C-cancel-unknown");
    ASSERT_TRUE(res) << cloud().dump();
    expect_result_shape(*res, "C-cancel-unknown", "cancel", "error");
    EXPECT_FALSE(res->data_str("message").empty()) << res->raw;
    cloud().settle();
    EXPECT_TRUE(cloud().events_of("job.cancelled").empty()) << cloud().dump();
    ASSERT_TRUE(agent().running());
    accept_job("J-after-unknown-cancel");
}

TEST_F(Commands, RepeatedCommandIdIsAnsweredFromStoreAndNotExecutedAgain) {
    start_agent(make_config());
    accept_job("J-rep-1");
    accept_job("J-rep-2");

    const std::string cmd = command("C-rep-1", "cancel", "J-rep-1").dump();
    cloud().publish_command(cmd);
    auto first = result_for("C-rep-1");
    ASSERT_TRUE(first) << cloud().dump();
    expect_result_shape(*first, "C-rep-1", "cancel", "ok");
    EXPECT_FALSE(repeated(*first)) << first->raw;
    ASSERT_TRUE(cloud().wait_event("job.cancelled", "J-rep-1"));

    // The same command again (a redelivery, or the cloud retrying).
    const std::size_t mark = cloud().event_count();
    cloud().publish_command(cmd);
    auto second = result_for("C-rep-1", mark);
    ASSERT_TRUE(second) << cloud().dump();
    expect_result_shape(*second, "C-rep-1", "cancel", "ok");
    EXPECT_TRUE(repeated(*second)) << "second answer should say repeated: " << second->raw;

    // The same command_id reused for another job: still not executed, the stored result comes.
    const std::size_t mark2 = cloud().event_count();
    cloud().publish_command(command("C-rep-1", "cancel", "J-rep-2").dump());
    auto third = result_for("C-rep-1", mark2);
    ASSERT_TRUE(third) << cloud().dump();
    EXPECT_TRUE(repeated(*third)) << third->raw;
    EXPECT_EQ(third->data_str("status"), "ok") << "stored result expected: " << third->raw;

    cloud().settle();
    EXPECT_EQ(cloud().events_for("J-rep-1", "job.cancelled").size(), 1u) << cloud().dump();
    EXPECT_TRUE(cloud().events_for("J-rep-2", "job.cancelled").empty())
        << "a reused command_id was executed again: " << cloud().dump();
    EXPECT_EQ(cloud().events_for("C-rep-1", "command.result").size(), 3u) << cloud().dump();

    // J-rep-2 is still cancellable with a fresh command_id.
    cloud().publish_command(command("C-rep-2", "cancel", "J-rep-2").dump());
    auto res2 = result_for("C-rep-2");
    ASSERT_TRUE(res2) << cloud().dump();
    EXPECT_EQ(res2->data_str("status"), "ok") << res2->raw;
    EXPECT_TRUE(cloud().wait_event("job.cancelled", "J-rep-2"));
    const auto rep = analyze_sequences(cloud().events());
    EXPECT_TRUE(rep.gap_free()) << rep.str();
}

TEST_F(Commands, DrainAndResumeShowInStatus) {
    start_agent(make_config());

    std::size_t status_mark = cloud().status_count();
    cloud().publish_command(command("C-drain-1", "drain").dump());
    auto res = result_for("C-drain-1");
    ASSERT_TRUE(res) << cloud().dump();
    expect_result_shape(*res, "C-drain-1", "drain", "ok");
    auto draining = cloud().wait_status([](const Status& s) { return s.intake() == "draining"; }, kWait, status_mark);
    ASSERT_TRUE(draining) << cloud().dump();
    EXPECT_EQ(draining->state(), "online") << draining->json.dump();

    // The retained status a newcomer sees says draining too.
    auto retained = fetch_retained(client_options(broker()), agent().config().topics().status());
    ASSERT_TRUE(retained);
    EXPECT_EQ(json::parse(retained->payload, nullptr, false).value("intake", ""), "draining") << retained->payload;

    // Draining keeps accepting jobs durably (it only holds back production).
    accept_job("J-during-drain");

    status_mark = cloud().status_count();
    cloud().publish_command(command("C-resume-1", "resume").dump());
    auto res2 = result_for("C-resume-1");
    ASSERT_TRUE(res2) << cloud().dump();
    expect_result_shape(*res2, "C-resume-1", "resume", "ok");
    auto open = cloud().wait_status([](const Status& s) { return s.intake() == "open"; }, kWait, status_mark);
    ASSERT_TRUE(open) << cloud().dump();
    EXPECT_EQ(open->state(), "online");
}
