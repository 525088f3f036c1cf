// The integration-test support library on its own, without the agent: the private broker
// (plain, password, TLS; restart keeps sessions and queues beyond mosquitto's default limit),
// the MQTT test client and the process runner. If these fail, no other result means much.
#include <signal.h>

#include <gtest/gtest.h>

#include "pressline/testing/fixture.hpp"

using namespace pressline::testing;

namespace {

bool has_payload(const std::vector<Message>& ms, const std::string& topic, const std::string& payload) {
    for (const auto& m : ms)
        if (m.topic == topic && m.payload == payload) return true;
    return false;
}

}  // namespace

TEST(SupportProcess, CapturesOutputAndExitCode) {
    auto r = run_command({"sh", "-c", "echo out; echo err >&2; exit 3"}, 5s);
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.status.code(), 3);
    EXPECT_EQ(r.out, "out\n");
    EXPECT_EQ(r.err, "err\n");
}

TEST(SupportProcess, TimeoutKillsAndSignalsAreReported) {
    auto r = run_command({"sleep", "30"}, 200ms);
    EXPECT_TRUE(r.timed_out);
    EXPECT_EQ(r.status.signal(), SIGKILL);

    SpawnOptions o;
    o.argv = {"sleep", "30"};
    Process p = Process::spawn(o);
    EXPECT_TRUE(p.running());
    EXPECT_FALSE(p.wait_for_exit(100ms).has_value());
    p.signal(SIGTERM);
    auto st = p.wait_for_exit(5s);
    ASSERT_TRUE(st);
    EXPECT_EQ(st->signal(), SIGTERM) << st->str();
}

TEST(SupportProcess, MissingProgramIsAnError) {
    SpawnOptions o;
    o.argv = {"/nonexistent/program"};
    EXPECT_THROW(Process::spawn(o), std::runtime_error);
}

TEST(SupportBroker, PublishSubscribeAndLogParsing) {
    Broker& b = shared_broker(BrokerMode::plain);
    MqttClient sub(client_options(b, "support-sub"));
    sub.connect();
    sub.subscribe("t/a", 1);
    sub.subscribe("$share/g/t/pool", 1);
    EXPECT_TRUE(b.has_subscription("support-sub", "t/a"));
    EXPECT_TRUE(b.has_subscription("support-sub", "$share/g/t/pool"));
    EXPECT_FALSE(b.has_subscription("support-sub", "t/b"));
    EXPECT_NE(b.connect_line("support-sub").find("(p5, c0"), std::string::npos) << b.connect_line("support-sub");

    MqttClient pub(client_options(b));
    pub.connect();
    pub.publish("t/a", "hello");
    pub.publish("t/pool", "shared");
    pub.publish("t/a", "");  // empty payloads are fine
    EXPECT_TRUE(sub.wait_for([](const auto& ms) { return ms.size() >= 3; }, 5s));
    auto ms = sub.messages();
    EXPECT_TRUE(has_payload(ms, "t/a", "hello"));
    EXPECT_TRUE(has_payload(ms, "t/pool", "shared"));
    EXPECT_TRUE(has_payload(ms, "t/a", ""));
}

TEST(SupportBroker, RetainedMessagesAreFetched) {
    Broker& b = shared_broker(BrokerMode::plain);
    MqttClient pub(client_options(b));
    pub.connect();
    pub.publish("t/status", R"({"state":"online"})", 1, true);
    auto m = fetch_retained(client_options(b), "t/status");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, R"({"state":"online"})");
}

// The broker keeps a persistent session's subscription and its queued QoS 1 messages across
// a restart, beyond mosquitto's default max_queued_messages of 1000; a connected client with
// automatic reconnect gets messages published after the restart.
TEST(SupportBroker, RestartKeepsSessionsAndLongQueues) {
    TempDir dir("pressline-it-support-broker");
    Broker b(dir.path(), BrokerMode::plain);
    b.start();
    const int port = b.port();

    MqttClient offline(client_options(b, "support-offline"));
    offline.connect();
    offline.subscribe("q/x", 1);
    offline.disconnect();

    MqttClient online(client_options(b, "support-online"));
    online.connect();
    online.subscribe("q/y", 1);

    MqttClient pub(client_options(b, "support-pub"));
    pub.connect();
    std::vector<std::pair<std::string, std::string>> msgs;
    const int n = 1500;
    for (int i = 0; i < n; ++i) msgs.emplace_back("q/x", std::to_string(i));
    pub.publish_many(msgs);

    b.restart();
    EXPECT_EQ(b.port(), port);
    ASSERT_TRUE(online.wait_connect_count(2, 10s)) << "online client did not reconnect";
    ASSERT_TRUE(pub.wait_connect_count(2, 10s));
    pub.publish("q/y", "after-restart");
    EXPECT_TRUE(online.wait_for([](const auto& ms) { return has_payload(ms, "q/y", "after-restart"); }, 10s));

    MqttClient back(client_options(b, "support-offline"));
    back.connect();
    EXPECT_TRUE(back.wait_for([&](const auto& ms) { return ms.size() >= static_cast<std::size_t>(n); }, 20s))
        << "received " << back.message_count() << " of " << n;
    auto ms = back.messages();
    std::vector<bool> seen(n);
    for (const auto& m : ms) seen.at(std::stoul(m.payload)) = true;
    EXPECT_EQ(std::count(seen.begin(), seen.end(), false), 0);

    b.kill();
    EXPECT_FALSE(b.running());
    b.start();
    EXPECT_TRUE(b.running());
}

TEST(SupportBroker, PasswordBroker) {
    Broker& b = shared_broker(BrokerMode::pw);
    MqttClient ok(client_options(b));
    EXPECT_NO_THROW(ok.connect());
    ClientOptions bad = client_options(b);
    bad.credentials.password = "wrong";
    bad.auto_reconnect = false;
    MqttClient no(bad);
    EXPECT_THROW(no.connect(5s), std::runtime_error);
}

TEST(SupportBroker, TlsBrokerRequiresClientCertificateFromItsCa) {
    Broker& b = shared_broker(BrokerMode::tls);
    EXPECT_TRUE(b.uri().starts_with("ssl://"));
    MqttClient ok(client_options(b));
    EXPECT_NO_THROW(ok.connect());

    ClientOptions wrong = client_options(b);
    wrong.credentials.cert_file = b.certs_dir() / "wrong-client.crt";
    wrong.credentials.key_file = b.certs_dir() / "wrong-client.key";
    wrong.auto_reconnect = false;
    MqttClient no(wrong);
    EXPECT_THROW(no.connect(5s), std::runtime_error);

    ClientOptions none = client_options(b);
    none.credentials.cert_file.clear();
    none.credentials.key_file.clear();
    none.auto_reconnect = false;
    MqttClient no2(none);
    EXPECT_THROW(no2.connect(5s), std::runtime_error);
}

TEST(SupportEvents, SequenceAnalysis) {
    auto ev = [](int seq, const std::string& id) {
        Message m;
        m.payload = nlohmann::json{{"specversion", "1.0"},
                                   {"id", id},
                                   {"source", "pressline://s/t"},
                                   {"type", "com.pressline.job.accepted"},
                                   {"subject", "J"},
                                   {"time", "2026-11-26T10:02:11.532Z"},
                                   {"datacontenttype", "application/json"},
                                   {"sequence", (std::string(20, '0') + std::to_string(seq)).substr(std::to_string(seq).size())},
                                   {"data", {{"order_id", "O"}}}}
                        .dump();
        return parse_event(m, 0);
    };
    EXPECT_EQ(envelope_problems(ev(1, "a"), "pressline://s/t"), "");
    EXPECT_EQ(ev(42, "a").seq, 42);
    auto r = analyze_sequences({ev(1, "a"), ev(2, "b"), ev(2, "b"), ev(4, "d")});
    EXPECT_EQ(r.missing, std::vector<std::int64_t>{3});
    EXPECT_TRUE(r.conflicts.empty());
    auto r2 = analyze_sequences({ev(1, "a"), ev(1, "x")});
    EXPECT_FALSE(r2.conflicts.empty());
    EXPECT_FALSE(r2.gap_free());
}
