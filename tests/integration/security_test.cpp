// Broker authentication: TLS with client certificates (right CA, wrong CA, untrusted server,
// a key file others can read) and user name + password file (right, wrong, readable file).
// A technician must be able to tell from the agent's log what is wrong.
#include <gtest/gtest.h>

#include <cstring>
#include <regex>
#include <thread>

#include "pressline/testing/fixture.hpp"

using namespace pressline::testing;
using nlohmann::json;

namespace {

// A log line that reports a failure about `topic_re` (e.g. TLS), ignoring mere mentions of
// the broker URI (ssl://...), of the test's own names (station, paths: they contain the
// test name) and of settings echoed at start-up.
std::string failure_line(const std::string& log, const std::vector<std::string>& noise_words,
                         const std::regex& topic_re) {
    static const std::regex failure(
        R"(fail|error|refus|reject|unable|cannot|can't|could not|invalid|alert|handshake|denied|verif|unknown ca|bad|not authori)",
        std::regex::icase);
    for (std::string line : split_lines(log)) {
        if (line.starts_with("==== [test harness]")) continue;
        std::vector<std::string> noise = noise_words;
        noise.insert(noise.end(), {"tls=true", "tls=false"});
        for (const auto& n : noise)
            for (auto p = line.find(n); !n.empty() && p != std::string::npos; p = line.find(n)) line.erase(p, n.size());
        if (std::regex_search(line, topic_re) && std::regex_search(line, failure)) return line;
    }
    return {};
}

const std::regex kTlsWords(R"(tls|ssl|certificate|x509|handshake)", std::regex::icase);
const std::regex kAuthWords(R"(password|authori[sz]|credential|user ?name)", std::regex::icase);

class SecurityTest : public IntegrationTest {
protected:
    std::string failure(const AgentConfig& cfg, const std::regex& topic_re) {
        return failure_line(agent().log(),
                            {work().path().string(), cfg.state_dir.string(), cfg.broker_uri, cfg.station}, topic_re);
    }

    // The agent must not get a session: no CONNACK success in the broker log, no online status.
    // Starts the agent with `cfg` and expects it to refuse to connect, saying why in a log line
    // that contains one of `words`; the broker never sees it connected.
    void expect_refused_with_log_line(const AgentConfig& cfg, const std::regex& words,
                                      const std::string& what) {
        create_cloud(cfg.topics());
        create_agent(cfg);
        agent().start();
        std::string line;
        poll_until([&] { return !(line = failure(cfg, words)).empty() || !agent().running(); });
        EXPECT_FALSE(line.empty()) << "no log line about " << what << "\n" << tail_lines(agent().log(), 30);
        std::cout << "[ info ] agent says: " << line << "\n";
        std::this_thread::sleep_for(2s);  // a retry or two
        expect_never_connected(cfg);
    }

    void expect_never_connected(const AgentConfig& cfg) {
        EXPECT_EQ(agent().state(), "running") << "a refused connection must be retried, not end the agent\n"
                                              << tail_lines(agent().log(), 20);
        const std::string line = broker().connect_line(cfg.effective_client_id());
        EXPECT_EQ(line, "") << "agent connected although it should not have";
        for (const auto& s : cloud().statuses()) EXPECT_NE(s.state(), "online") << s.json.dump();
        EXPECT_TRUE(cloud().events_of("agent.started").empty() ||
                    cloud().events_of("job.accepted").empty());  // nothing got through
    }
};

class Tls : public SecurityTest {
protected:
    Broker& broker() override { return shared_broker(BrokerMode::tls); }

    AgentConfig tls_config(const std::string& cert, const std::string& key, const std::string& ca = "ca.crt") {
        auto cfg = make_config();
        const auto certs = broker().certs_dir();
        cfg.ca_file = certs / ca;
        cfg.cert_file = certs / cert;
        cfg.key_file = certs / key;
        return cfg;
    }
};

class Password : public SecurityTest {
protected:
    Broker& broker() override { return shared_broker(BrokerMode::pw); }

    AgentConfig pw_config(const std::string& password, unsigned mode = 0600) {
        auto cfg = make_config();
        cfg.username = broker().credentials().username;
        cfg.password_file = work() / "secrets" / "broker.password";
        write_file(*cfg.password_file, password + "\n", mode);
        return cfg;
    }
};

}  // namespace

TEST_F(Tls, ClientCertificateFromTheBrokersCaConnectsAndAcceptsJobs) {
    auto cfg = tls_config("client.crt", "client.key");
    ASSERT_TRUE(broker().uri().starts_with("ssl://"));
    start_agent(cfg);
    accept_job("J-tls-1");
    auto st = cloud().last_status();
    ASSERT_TRUE(st);
    EXPECT_EQ(st->state(), "online");
}

TEST_F(Tls, ClientCertificateFromAnotherCaIsRefusedWithAClearLogLine) {
    expect_refused_with_log_line(tls_config("wrong-client.crt", "wrong-client.key"), kTlsWords,
                                 "a TLS/certificate failure");
}

TEST_F(Tls, UntrustedServerCertificateIsRefused) {
    // trusts the wrong CA
    expect_refused_with_log_line(tls_config("client.crt", "client.key", "other-ca.crt"), kTlsWords,
                                 "a TLS/certificate failure");
    EXPECT_TRUE(agent().running()) << "the agent must keep retrying, not crash: " << agent().state();
}

TEST_F(Tls, KeyFileReadableByOthersIsRefusedByCheckConfig) {
    auto cfg = tls_config("client.crt", "client.key");
    const auto key = work() / "station.key";
    write_file(key, read_file(broker().certs_dir() / "client.key"), 0644);
    cfg.key_file = key;
    Agent& a = create_agent(cfg);
    a.write_config();
    auto r = run_pressline({"check-config", a.config_path().string()});
    const std::string out = r.out + r.err;
    EXPECT_EQ(r.status.code(), 2) << r.status.str() << "\n" << out;
    const std::regex diag("(^|\n)" + std::regex_replace(a.config_path().string(), std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)") +
                          R"(:\d+:\d+: broker\.key_file: )");
    EXPECT_TRUE(std::regex_search(out, diag)) << "expected FILE:LINE:COL: broker.key_file: ...\n" << out;
    EXPECT_TRUE(icontains(out, "600") || icontains(out, "permission") || icontains(out, "mode"))
        << "the message should say how to fix it:\n" << out;

    // And `run` refuses it too, without connecting.
    auto run = run_pressline({"run", "--config", a.config_path().string()}, 15s);
    EXPECT_FALSE(run.timed_out) << "pressline run kept running with an unsafe key file";
    EXPECT_NE(run.status.code(), 0) << run.status.str();
    EXPECT_EQ(broker().connect_line(cfg.effective_client_id()), "");
}

TEST_F(Password, RightPasswordConnectsAndAcceptsJobs) {
    auto cfg = pw_config(broker().credentials().password);
    start_agent(cfg);
    accept_job("J-pw-1");
    const std::string line = broker().connect_line(cfg.effective_client_id());
    EXPECT_NE(line.find("u'testuser'"), std::string::npos) << line;
}

TEST_F(Password, WrongPasswordIsLoggedClearly) {
    auto cfg = pw_config("not-the-password");
    expect_refused_with_log_line(cfg, kAuthWords, "the refused user name/password");
    EXPECT_EQ(agent().log().find("not-the-password"), std::string::npos) << "the password must never be logged";
}

TEST_F(Password, PasswordFileReadableByOthersIsRefusedByCheckConfig) {
    auto cfg = pw_config(broker().credentials().password, 0644);
    Agent& a = create_agent(cfg);
    a.write_config();
    auto r = run_pressline({"check-config", a.config_path().string()});
    const std::string out = r.out + r.err;
    EXPECT_EQ(r.status.code(), 2) << r.status.str() << "\n" << out;
    EXPECT_TRUE(std::regex_search(out, std::regex(R"(:\d+:\d+: broker\.password_file: )"))) << out;
    EXPECT_EQ(out.find(broker().credentials().password), std::string::npos) << "the password must never be printed";
}
