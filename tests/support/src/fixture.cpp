// gtest glue for the integration tests (see fixture.hpp).
#include "pressline/testing/fixture.hpp"

#include <algorithm>
#include <cctype>
#include <iostream>
#include <map>

namespace pressline::testing {

namespace {

struct SharedBroker {
    std::unique_ptr<TempDir> dir;
    std::unique_ptr<Broker> broker;
    ~SharedBroker() {
        broker.reset();  // stop before the directory goes
        dir.reset();
    }
};

std::map<BrokerMode, SharedBroker>& shared() {
    static std::map<BrokerMode, SharedBroker> m;
    return m;
}

}  // namespace

Broker& shared_broker(BrokerMode mode) {
    auto& sb = shared()[mode];
    if (!sb.broker) {
        sb.dir = std::make_unique<TempDir>("pressline-it-broker");
        sb.broker = std::make_unique<Broker>(sb.dir->path(), mode);
        sb.broker->start();
    }
    return *sb.broker;
}

void keep_shared_broker_dirs() {
    for (auto& [mode, sb] : shared())
        if (sb.dir) sb.dir->keep();
}

ClientOptions client_options(const Broker& broker, const std::string& client_id) {
    ClientOptions o;
    o.uri = broker.uri();
    o.client_id = client_id;
    o.credentials = broker.credentials();
    return o;
}

void IntegrationTest::SetUp() {
    ASSERT_FALSE(pressline_binary().empty()) << "PRESSLINE_BIN is not set";
    ASSERT_TRUE(std::filesystem::exists(pressline_binary())) << pressline_binary() << " does not exist";
    work_ = std::make_unique<TempDir>("pressline-it-" + station_name());
}

void IntegrationTest::TearDown() {
    const bool failed = HasFailure();
    if (failed) {
        std::cerr << "---- work directory (kept): " << work_->path().string() << "\n";
        if (agent_) {
            std::cerr << "---- agent log (last 60 lines) " << agent_->log_path().string() << ":\n"
                      << tail_lines(agent_->log(), 60);
        }
        for (auto& [mode, sb] : shared()) {
            if (!sb.broker) continue;
            // Connections, subscriptions and disconnects of this test's clients (no traffic).
            std::string lines;
            for (const auto& l : split_lines(grep_lines(sb.broker->log(), station_name(), 100000))) {
                if (l.find("PUBLISH") != std::string::npos || l.find("PUBACK") != std::string::npos ||
                    l.find("PINGRE") != std::string::npos || l.find("SUBACK") != std::string::npos)
                    continue;
                lines += l + "\n";
            }
            std::cerr << "---- broker log " << sb.broker->log_path().string()
                      << ", connections and subscriptions of this test's clients:\n"
                      << tail_lines(lines, 40);
        }
        if (cloud_) std::cerr << "---- events seen by the cloud client:\n" << cloud_->dump();
        work_->keep();
        keep_shared_broker_dirs();
    }
    if (agent_ && agent_->running()) {
        // A graceful stop keeps the broker log readable; a hung agent is killed.
        if (!agent_->terminate(5s)) agent_->kill();
    }
    agent_.reset();
    cloud_.reset();
}

std::string IntegrationTest::station_name(const std::string& suffix) const {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string raw = std::string("st-") + (info ? info->name() : "x") + (suffix.empty() ? "" : "-" + suffix);
    std::string out;
    for (char c : raw) {
        const auto u = static_cast<unsigned char>(c);
        out += std::isalnum(u) ? static_cast<char>(std::tolower(u)) : '-';
    }
    if (out.size() > 60) out.resize(60);
    return out;
}

AgentConfig IntegrationTest::make_config(const std::string& suffix) {
    AgentConfig c;
    c.station = station_name(suffix);
    c.broker_uri = broker().uri();
    c.state_dir = work_->path() / (suffix.empty() ? "state" : "state-" + suffix);
    return c;
}

Agent& IntegrationTest::create_agent(AgentConfig config) {
    agent_ = std::make_unique<Agent>(work_->path() / ("agent-" + config.station), std::move(config));
    return *agent_;
}

StationClient& IntegrationTest::create_cloud(const StationTopics& topics) {
    cloud_ = std::make_unique<StationClient>(client_options(broker(), "cloud-" + topics.station), topics);
    return *cloud_;
}

Agent& IntegrationTest::start_agent(AgentConfig config) {
    create_cloud(config.topics());
    create_agent(std::move(config));
    const auto offset = broker().log_size();
    agent_->start();
    wait_ready(offset, 0);
    return *agent_;
}

void IntegrationTest::wait_ready(std::size_t broker_log_offset, std::size_t status_from) {
    const auto& cfg = agent_->config();
    const auto topics = cfg.topics();
    const std::string cid = cfg.effective_client_id();
    ASSERT_TRUE(broker().wait_connected(cid, kWait, broker_log_offset))
        << "agent " << cid << " did not connect to " << broker().uri() << "\nagent log:\n"
        << tail_lines(agent_->log(), 30);
    // Subscriptions of a resumed session need not be renewed: look in the whole log.
    ASSERT_TRUE(broker().wait_subscribed(cid, topics.jobs())) << "no subscription to " << topics.jobs();
    ASSERT_TRUE(broker().wait_subscribed(cid, topics.commands())) << "no subscription to " << topics.commands();
    for (const auto& p : cfg.pools)
        ASSERT_TRUE(broker().wait_subscribed(cid, topics.pool_share(p))) << "no subscription to " << topics.pool_share(p);
    ASSERT_TRUE(cloud_->wait_status([](const Status& s) { return s.state() == "online"; }, kWait, status_from))
        << "no status online on " << topics.status() << "\n" << cloud_->dump();
}

bool IntegrationTest::wait_while_agent_runs(const std::function<bool(const std::vector<Event>&)>& pred,
                                            std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (cloud_->wait_for(pred, std::clamp(left, 0ms, 500ms))) return true;
        if (agent_ && !agent_->running()) {
            ADD_FAILURE() << "the agent ended (" << agent_->state() << ")\n" << tail_lines(agent_->log(), 30);
            return cloud_->wait_for(pred, 0ms);
        }
        if (Clock::now() >= deadline) return false;
    }
}

Event IntegrationTest::accept_job(const std::string& job_id, const std::string& priority) {
    cloud_->publish_job(valid_job(job_id, "", priority).dump());
    auto e = cloud_->wait_event("job.accepted", job_id);
    if (!e) {
        ADD_FAILURE() << "no job.accepted for " << job_id << "\n" << cloud_->dump();
        return Event{};
    }
    return *e;
}

}  // namespace pressline::testing
