// gtest glue for the integration tests: one private broker per test process (per mode),
// started on first use and stopped at exit, and a test fixture that owns a work directory,
// the agent under test and the "cloud" client watching it. Everything a test starts is
// stopped in TearDown (or by destructors if the test throws); on failure the agent log, the
// broker's lines about the agent and the events seen are printed, and the work directory is
// kept for inspection.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "pressline/testing/agent.hpp"
#include "pressline/testing/broker.hpp"
#include "pressline/testing/mqtt_client.hpp"
#include "pressline/testing/station.hpp"
#include "pressline/testing/util.hpp"

namespace pressline::testing {

// The shared broker of this test process for `mode` (started on first call).
Broker& shared_broker(BrokerMode mode = BrokerMode::plain);
// Keep the shared brokers' directories at exit (called when a test fails).
void keep_shared_broker_dirs();

// Client options for `broker` with its credentials (TLS client cert / user+password).
ClientOptions client_options(const Broker& broker, const std::string& client_id = "");

class IntegrationTest : public ::testing::Test {
protected:
    void SetUp() override;
    void TearDown() override;

    // The broker this test uses; default: the shared plain broker.
    virtual Broker& broker() { return shared_broker(BrokerMode::plain); }

    // A station name unique to this test ("st-<suite>-<test>", sanitized).
    std::string station_name(const std::string& suffix = "") const;
    // A config for this test's station against broker(), state under the work directory.
    AgentConfig make_config(const std::string& suffix = "");

    // Creates the agent (not started) in work()/agent[-suffix].
    Agent& create_agent(AgentConfig config);
    // Creates the cloud client for `topics` (connected and subscribed; persistent session).
    StationClient& create_cloud(const StationTopics& topics);
    // create_cloud + create_agent + start + wait_ready. The usual start of a test.
    Agent& start_agent(AgentConfig config);
    // Waits until the agent (re)connected after `broker_log_offset`, subscribed to its
    // topics, and a status "online" with index >= `status_from` arrived. Asserts (fatal).
    void wait_ready(std::size_t broker_log_offset = 0, std::size_t status_from = 0);

    // cloud().wait_for(pred), but gives up early when the agent process has ended (a crash
    // would otherwise cost the whole timeout); the message then says how it ended.
    bool wait_while_agent_runs(const std::function<bool(const std::vector<Event>&)>& pred,
                               std::chrono::milliseconds timeout = kWait);

    // Publishes a valid job and waits for its job.accepted; returns it.
    Event accept_job(const std::string& job_id, const std::string& priority = "");

    Agent& agent() { return *agent_; }
    StationClient& cloud() { return *cloud_; }
    const TempDir& work() const { return *work_; }

    std::unique_ptr<TempDir> work_;
    std::unique_ptr<StationClient> cloud_;
    std::unique_ptr<Agent> agent_;
};

}  // namespace pressline::testing
