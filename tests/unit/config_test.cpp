// Unit tests of pressline_config: what a technician sees when loading a config file.
#include "pressline/config/config.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using pressline::config::Config;
using pressline::config::Diagnostic;
using pressline::config::LoadResult;
using pressline::config::load_file;
using pressline::config::load_string;

namespace {

// The repository root: the tests run from tests/unit (ctest) or from anywhere (by hand).
fs::path repo_root() {
    for (fs::path p : {fs::path(__FILE__).parent_path() / ".." / "..", fs::current_path() / ".." / ".."}) {
        if (fs::exists(p / "config" / "demo.yaml")) return p.lexically_normal();
    }
    return fs::current_path();
}

std::string read_text(const fs::path& p) {
    std::ifstream in(p);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::vector<std::string> lines(const LoadResult& r) {
    std::vector<std::string> out;
    for (const auto& d : r.diagnostics) out.push_back(d.str());
    return out;
}

std::string dump(const LoadResult& r) {
    std::string out;
    for (const auto& l : lines(r)) out += "  " + l + "\n";
    return out.empty() ? "  (no diagnostics)\n" : out;
}

// The smallest valid config; tests append to or replace parts of it.
constexpr const char* kMinimal = R"(station:
  shop: acme
  id: st-1
broker:
  uri: tcp://mqtt.local
storage:
  state_dir: state
)";

class ConfigTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "pressline-config-test-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
        cfg_ = dir_ / "agent.yaml";
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    fs::path write(const fs::path& rel, std::string_view text, fs::perms mode = fs::perms(0600)) {
        const fs::path p = dir_ / rel;
        fs::create_directories(p.parent_path());
        std::ofstream(p, std::ios::binary) << text;
        fs::permissions(p, mode);
        return p;
    }

    LoadResult load(std::string_view yaml) { return load_string(yaml, cfg_); }

    // Loads text expected to have exactly one problem; returns its str().
    std::string one_error(std::string_view yaml) {
        const LoadResult r = load(yaml);
        EXPECT_FALSE(r.ok());
        EXPECT_FALSE(r.config.has_value());
        EXPECT_EQ(r.diagnostics.size(), 1u) << dump(r);
        return r.diagnostics.empty() ? std::string() : r.diagnostics.front().str();
    }

    // `yaml` must load; returns the config.
    Config ok(std::string_view yaml) {
        const LoadResult r = load(yaml);
        EXPECT_TRUE(r.ok()) << dump(r);
        return r.config.value_or(Config{});
    }

    std::string at(int line, int col, std::string_view rest) const {
        return cfg_.string() + ":" + std::to_string(line) + ":" + std::to_string(col) + ": " +
               std::string(rest);
    }

    fs::path dir_;
    fs::path cfg_;
};

// ---- what a technician sees ----

TEST_F(ConfigTest, TypoedKeyIsReportedWithPositionAndSuggestion) {
    const std::string text = R"(station:
  shop: acme
  id: st-1
broker:
  uri: tcp://mqtt.local:1883
  keepalive: 30
storage:
  state_dir: state
)";
    EXPECT_EQ(one_error(text), at(6, 3, "broker.keepalive: unknown key; did you mean 'keepalive_s'?"));

    const LoadResult r = load(text);
    ASSERT_EQ(r.diagnostics.size(), 1u);
    const Diagnostic& d = r.diagnostics[0];
    EXPECT_EQ(d.file, cfg_.string());
    EXPECT_EQ(d.line, 6);
    EXPECT_EQ(d.column, 3);
    EXPECT_EQ(d.path, "broker.keepalive");
}

TEST_F(ConfigTest, SuggestionsForSectionsTranspositionsAndCase) {
    // "stroage" -> storage; then storage.state_dir is missing, reported at the root map.
    const LoadResult r = load(R"(station: {shop: acme, id: st-1}
broker: {uri: tcp://h}
stroage:
  state_dir: /x
)");
    EXPECT_EQ(lines(r), (std::vector<std::string>{
                            at(1, 1, "storage.state_dir: required key is missing"),
                            at(3, 1, "stroage: unknown key; did you mean 'storage'?"),
                        }));
    EXPECT_EQ(one_error(std::string(kMinimal) + "log: {Level: info}\n"),
              at(8, 7, "log.Level: unknown key; did you mean 'level'?"));
    EXPECT_EQ(one_error(std::string(kMinimal) + "intake: {max_dpeth: 8}\n"),
              at(8, 10, "intake.max_dpeth: unknown key; did you mean 'max_depth'?"));
}

TEST_F(ConfigTest, UnknownKeyWithoutCloseMatchListsKnownKeysOrItsSection) {
    EXPECT_EQ(one_error(std::string(kMinimal) + "mqtt: {qos: 1}\n"),
              at(8, 8, "mqtt.qos: unknown key; known keys here: topic_prefix"));
    EXPECT_EQ(one_error(std::string(kMinimal) + "colour: red\n"),
              at(8, 1,
                 "colour: unknown key; known keys at the top level: station, broker, mqtt, "
                 "storage, intake, log, assets, printing, scheduler, platens, garment_colors, dtg_printers, "
                 "label_printers, labels, cameras, qa"));
    // A real key in the wrong section says where it belongs.
    EXPECT_EQ(one_error(std::string(kMinimal) + "  keepalive_s: 30\n"),
              at(8, 3,
                 "storage.keepalive_s: unknown key; 'keepalive_s' belongs in section 'broker' "
                 "(broker.keepalive_s)"));
    EXPECT_EQ(one_error(std::string(kMinimal) + "level: debug\n"),
              at(8, 1, "level: unknown key; 'level' belongs in section 'log' (log.level)"));
}

TEST_F(ConfigTest, EveryProblemIsReportedAtOnceInFileOrder) {
    const fs::path fixture = repo_root() / "tests/fixtures/config/several_errors.yaml";
    ASSERT_TRUE(fs::exists(fixture)) << fixture;
    const LoadResult r = load_file(fixture);
    EXPECT_FALSE(r.ok());
    EXPECT_FALSE(r.config.has_value());
    const std::string f = fixture.string();
    const std::string allowed = "use only letters, digits, '_', '.' and '-' (it becomes an MQTT topic level)";
    EXPECT_EQ(lines(r),
              (std::vector<std::string>{
                  f + ":3:3: station.id: required key is missing",
                  f + ":3:9: station.shop: 'acme leeds' contains a space; " + allowed,
                  f + ":4:17: station.pools[1]: duplicate pool 'tees' (first given at line 4)",
                  f + ":6:8: broker.uri: unsupported scheme 'http://'; use tcp://, ssl:// or mqtts://",
                  f + ":7:3: broker.keepalive: unknown key; did you mean 'keepalive_s'?",
                  f + ":8:17: broker.max_inflight: expected an integer, got 'lots'",
                  f + ":10:3: storage.state_dir: required key is missing",
                  f + ":10:20: storage.retention_hours: must be between 1 and 87600 (got 0)",
                  f + ":12:10: log.level: unknown level 'verbose'; use one of trace, debug, info, "
                      "warn, error",
              }))
        << dump(r);
}

// ---- defaults and derived values ----

TEST_F(ConfigTest, MinimalConfigGetsEveryDefault) {
    const Config c = ok(kMinimal);
    const Config d;  // the defaults declared in the header
    EXPECT_EQ(c.source, cfg_);
    EXPECT_TRUE(c.source.is_absolute());
    EXPECT_EQ(c.station.shop, "acme");
    EXPECT_EQ(c.station.id, "st-1");
    EXPECT_TRUE(c.station.pools.empty());
    EXPECT_EQ(c.broker.uri, "tcp://mqtt.local:1883");
    EXPECT_FALSE(c.broker.uses_tls());
    EXPECT_EQ(c.broker.client_id, "pressline-acme-st-1");
    EXPECT_EQ(c.broker.username, "");
    EXPECT_EQ(c.broker.password, "");
    EXPECT_TRUE(c.broker.password_file.empty());
    EXPECT_TRUE(c.broker.ca_file.empty());
    EXPECT_TRUE(c.broker.cert_file.empty());
    EXPECT_TRUE(c.broker.key_file.empty());
    EXPECT_EQ(c.broker.keepalive_s, 30);
    EXPECT_EQ(c.broker.connect_timeout_s, 10);
    EXPECT_EQ(c.broker.session_expiry_s, 604800u);
    EXPECT_EQ(c.broker.reconnect_min_s, 1);
    EXPECT_EQ(c.broker.reconnect_max_s, 30);
    EXPECT_EQ(c.broker.max_inflight, 20);
    EXPECT_EQ(c.mqtt.topic_prefix, "pressline/v1");
    EXPECT_EQ(c.storage.state_dir, dir_ / "state");
    EXPECT_EQ(c.storage.retention_hours, d.storage.retention_hours);
    EXPECT_EQ(c.storage.outbox_max_events, 1'000'000);
    EXPECT_EQ(c.storage.min_free_mb, 64);
    EXPECT_EQ(c.storage.max_db_mb, 0);
    EXPECT_EQ(c.intake.max_payload_bytes, 65536u);
    EXPECT_EQ(c.intake.max_depth, 16);
    EXPECT_EQ(c.log.level, "info");
}

TEST_F(ConfigTest, EveryKeyCanBeSet) {
    const Config c = ok(R"(station:
  shop: acme_leeds.2
  id: ST-9
  pools: [tees, hoodies]
broker:
  uri: tcp://10.0.0.5:1884
  client_id: my-client
  username: bob
  keepalive_s: 60
  connect_timeout_s: 5
  session_expiry_s: 4294967295
  reconnect_min_s: 2
  reconnect_max_s: 120
  max_inflight: 10
mqtt:
  topic_prefix: factory/eu/pressline
storage:
  state_dir: /var/lib/pressline
  retention_hours: 24
  outbox_max_events: 5000
  min_free_mb: 0
  max_db_mb: 2048
intake:
  max_payload_bytes: 1024
  max_depth: 128
log:
  level: trace
)");
    EXPECT_EQ(c.station.shop, "acme_leeds.2");
    EXPECT_EQ(c.station.id, "ST-9");
    EXPECT_EQ(c.station.pools, (std::vector<std::string>{"tees", "hoodies"}));
    EXPECT_EQ(c.broker.uri, "tcp://10.0.0.5:1884");
    EXPECT_EQ(c.broker.client_id, "my-client");
    EXPECT_EQ(c.broker.username, "bob");
    EXPECT_EQ(c.broker.keepalive_s, 60);
    EXPECT_EQ(c.broker.connect_timeout_s, 5);
    EXPECT_EQ(c.broker.session_expiry_s, 4294967295u);
    EXPECT_EQ(c.broker.reconnect_min_s, 2);
    EXPECT_EQ(c.broker.reconnect_max_s, 120);
    EXPECT_EQ(c.broker.max_inflight, 10);
    EXPECT_EQ(c.mqtt.topic_prefix, "factory/eu/pressline");
    EXPECT_EQ(c.storage.state_dir, fs::path("/var/lib/pressline"));
    EXPECT_EQ(c.storage.retention_hours, 24);
    EXPECT_EQ(c.storage.outbox_max_events, 5000);
    EXPECT_EQ(c.storage.min_free_mb, 0);
    EXPECT_EQ(c.storage.max_db_mb, 2048);
    EXPECT_EQ(c.intake.max_payload_bytes, 1024u);
    EXPECT_EQ(c.intake.max_depth, 128);
    EXPECT_EQ(c.log.level, "trace");
}

TEST_F(ConfigTest, EmptySectionsAndListsMeanDefaults) {
    // A section or list whose lines are all commented out is empty, not an error.
    const Config c = ok(std::string(kMinimal) + "  # retention_hours: 24\nmqtt:\n  # topic_prefix: x\n"
                                                "intake:\nlog:\n");
    EXPECT_EQ(c.mqtt.topic_prefix, "pressline/v1");
    EXPECT_EQ(c.log.level, "info");
    const Config c2 = ok(R"(station:
  shop: acme
  id: st-1
  pools:
    # - tees
broker: {uri: tcp://h}
storage: {state_dir: /s}
)");
    EXPECT_TRUE(c2.station.pools.empty());
    EXPECT_TRUE(ok("station: {shop: a, id: b, pools: []}\nbroker: {uri: tcp://h}\nstorage: {state_dir: /s}\n")
                    .station.pools.empty());
}

TEST_F(ConfigTest, ScalarKeyWithNoValueIsAnError) {
    EXPECT_EQ(one_error(std::string(kMinimal) + "  retention_hours:\n"),
              at(8, 3,
                 "storage.retention_hours: has no value; expected an integer (delete the line to use "
                 "the default)"));
    EXPECT_EQ(one_error(std::string(kMinimal) + "log:\n  level: ~\n"),
              at(9, 3, "log.level: has no value; expected a string (delete the line to use the default)"));
}

TEST_F(ConfigTest, ClientIdDefaultFollowsShopAndId) {
    EXPECT_EQ(ok("station: {shop: s, id: i}\nbroker: {uri: tcp://h}\nstorage: {state_dir: /s}\n").broker.client_id,
              "pressline-s-i");
    EXPECT_EQ(ok("station: {shop: s, id: i}\nbroker: {uri: tcp://h, client_id: x}\nstorage: {state_dir: /s}\n")
                  .broker.client_id,
              "x");
}

TEST_F(ConfigTest, QuotedNumbersAreAccepted) {
    EXPECT_EQ(ok(std::string(kMinimal) + "  retention_hours: \"48\"\n").storage.retention_hours, 48);
    EXPECT_EQ(ok(std::string(kMinimal) + "  retention_hours: +48\n").storage.retention_hours, 48);
    // Numeric-looking ids are strings like any other.
    EXPECT_EQ(ok("station: {shop: 42, id: 007}\nbroker: {uri: tcp://h}\nstorage: {state_dir: /s}\n").station.id,
              "007");
}

// ---- required keys, empty and malformed files ----

TEST_F(ConfigTest, MissingRequiredKeysPointAtTheirParentMap) {
    const LoadResult r = load(R"(# agent
station:
  id: st-1
broker:
  keepalive_s: 20
log: {level: info}
)");
    EXPECT_EQ(lines(r), (std::vector<std::string>{
                            at(2, 1, "storage.state_dir: required key is missing"),
                            at(3, 3, "station.shop: required key is missing"),
                            at(5, 3, "broker.uri: required key is missing"),
                        }));
    // A section written with nothing under it: the missing key points at the section's name.
    EXPECT_EQ(one_error("station: {shop: a, id: b}\nbroker: {uri: tcp://h}\nstorage:\n"),
              at(3, 1, "storage.state_dir: required key is missing"));
}

TEST_F(ConfigTest, EmptyFileIsAnError) {
    const std::string expected = at(
        1, 1,
        "the file is empty; it needs at least station.shop, station.id, broker.uri and storage.state_dir");
    EXPECT_EQ(one_error(""), expected);
    EXPECT_EQ(one_error("# only a comment\n\n"), expected);
    EXPECT_EQ(one_error("---\n"), expected);
}

TEST_F(ConfigTest, TopLevelMustBeAMap) {
    EXPECT_EQ(one_error("- station\n- broker\n"),
              at(1, 1,
                 "the top level must be a map of sections (station, broker, mqtt, storage, intake, "
                 "log, assets, printing, scheduler, platens, garment_colors, dtg_printers, label_printers, "
                 "labels, cameras, qa), got a list"));
    EXPECT_EQ(one_error("hello\n"),
              at(1, 1,
                 "the top level must be a map of sections (station, broker, mqtt, storage, intake, "
                 "log, assets, printing, scheduler, platens, garment_colors, dtg_printers, label_printers, "
                 "labels, cameras, qa), got 'hello'"));
}

TEST_F(ConfigTest, YamlSyntaxErrorIsOneDiagnosticWithPosition) {
    const LoadResult r = load("station:\n  shop: acme\n  pools: [tees, hoodies\nbroker: {}\n");
    ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
    const Diagnostic& d = r.diagnostics[0];
    EXPECT_EQ(d.path, "");
    EXPECT_EQ(d.line, 4);  // yaml-cpp notices the missing ']' where the next key starts
    EXPECT_EQ(d.column, 7);
    EXPECT_EQ(d.str(), at(4, 7, "YAML syntax error: end of sequence flow not found"));
    EXPECT_EQ(one_error("station:\n\tshop: a\n"),
              at(2, 6, "YAML syntax error: illegal map value (this line is indented with a tab; YAML needs spaces)"));

    EXPECT_EQ(one_error("station:\n  shop: a\n   id: b\n"), at(3, 6, "YAML syntax error: illegal map value"));
}

TEST_F(ConfigTest, DeepNestingDoesNotCrash) {
    const std::string deep = "station: " + std::string(5000, '[') + std::string(5000, ']') + "\n";
    const LoadResult r = load(deep);
    ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
    EXPECT_EQ(r.diagnostics[0].message, "YAML nesting is too deep");
}

TEST_F(ConfigTest, GarbageNeverThrows) {
    for (std::string_view text : {std::string_view("\x00\x01\x02", 3), std::string_view("{{{{"),
                                  std::string_view("key: [a, {b: c"), std::string_view("*alias"),
                                  std::string_view("&a [*a]"), std::string_view("? [a]\n: b\n"),
                                  std::string_view("\xff\xfe garbage")}) {
        LoadResult r;
        EXPECT_NO_THROW(r = load(text)) << text;
        EXPECT_FALSE(r.ok());
        EXPECT_FALSE(r.diagnostics.empty());
    }
}

TEST_F(ConfigTest, DuplicateKeysAndNonScalarKeysAreReported) {
    EXPECT_EQ(one_error(std::string(kMinimal) + "  state_dir: other\n"),
              at(8, 3, "storage.state_dir: duplicate key (first given at line 7); remove one of them"));
    EXPECT_EQ(one_error(std::string(kMinimal) + "log:\n  ? [a, b]\n  : c\n"),
              at(9, 5, "log: keys must be plain names, got a list as a key"));
}

TEST_F(ConfigTest, MoreThanOneDocumentIsRefused) {
    const LoadResult r = load(std::string(kMinimal) + "---\nstation: {}\n");
    ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
    EXPECT_EQ(r.diagnostics[0].message, "the file holds more than one YAML document ('---'); keep only one");
    EXPECT_EQ(r.diagnostics[0].line, 9);
}

// ---- files ----

TEST_F(ConfigTest, MissingFileIsOneDiagnosticWithoutPosition) {
    const fs::path missing = dir_ / "nope.yaml";
    const LoadResult r = load_file(missing);
    EXPECT_FALSE(r.ok());
    ASSERT_EQ(r.diagnostics.size(), 1u);
    EXPECT_EQ(r.diagnostics[0].line, 0);
    EXPECT_EQ(r.diagnostics[0].column, 0);
    EXPECT_EQ(r.diagnostics[0].str(), missing.string() + ": cannot open the config file: it does not exist");

    const LoadResult d = load_file(dir_);
    ASSERT_EQ(d.diagnostics.size(), 1u);
    EXPECT_EQ(d.diagnostics[0].str(), dir_.string() + ": cannot open the config file: it is a directory");
}

TEST_F(ConfigTest, UnreadableFileIsOneDiagnostic) {
    write("agent.yaml", kMinimal, fs::perms::none);
    fs::permissions(dir_, fs::perms(0755));
    // Root reads any file: load it as an unprivileged user (nobody) in a child process.
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::close(fds[0]);
        if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) ::_exit(3);
        const LoadResult r = load_file(cfg_);
        std::string out = std::to_string(r.diagnostics.size()) + "\n";
        for (const auto& d : r.diagnostics) out += d.str() + "\n";
        if (::write(fds[1], out.data(), out.size()) < 0) ::_exit(4);
        ::_exit(0);
    }
    ::close(fds[1]);
    std::string out;
    char buf[512];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
    EXPECT_EQ(out, "1\n" + cfg_.string() + ": cannot open the config file: Permission denied\n");
}

TEST_F(ConfigTest, LoadFileSetsAbsoluteSourceAndResolvesAgainstItsDirectory) {
    write("etc/agent.yaml", kMinimal, fs::perms(0644));
    // Load through a relative path with "..": source is absolute and normalised.
    const fs::path old = fs::current_path();
    fs::current_path(dir_);
    const LoadResult r = load_file("etc/../etc/agent.yaml");
    fs::current_path(old);
    ASSERT_TRUE(r.ok()) << dump(r);
    EXPECT_EQ(r.config->source, dir_ / "etc/agent.yaml");
    EXPECT_EQ(r.config->storage.state_dir, dir_ / "etc/state");
}

TEST_F(ConfigTest, RelativePathsResolveAgainstTheConfigDirectory) {
    write("secrets/pw", "hunter2\n");
    write("tls/ca.pem", "ca", fs::perms(0644));
    write("tls/c.crt", "cert", fs::perms(0644));
    write("tls/c.key", "key");
    const Config c = ok(R"(station: {shop: a, id: b}
broker:
  uri: ssl://h
  username: u
  password_file: secrets/pw
  ca_file: ./tls/ca.pem
  cert_file: tls/../tls/c.crt
  key_file: tls/c.key
storage: {state_dir: ../elsewhere/state/}
)");
    EXPECT_EQ(c.broker.password_file, dir_ / "secrets/pw");
    EXPECT_EQ(c.broker.ca_file, dir_ / "tls/ca.pem");
    EXPECT_EQ(c.broker.cert_file, dir_ / "tls/c.crt");
    EXPECT_EQ(c.broker.key_file, dir_ / "tls/c.key");
    EXPECT_EQ(c.storage.state_dir, dir_.parent_path() / "elsewhere/state");
    EXPECT_EQ(c.broker.password, "hunter2");
}

TEST_F(ConfigTest, TildeIsNotExpanded) {
    EXPECT_EQ(one_error("station: {shop: a, id: b}\nbroker: {uri: tcp://h}\nstorage: {state_dir: ~/state}\n"),
              at(3, 22, "storage.state_dir: '~' is not expanded; write the full path instead of '~/state'"));
}

TEST_F(ConfigTest, StateDirMustNotBeAnExistingFile) {
    write("state", "not a dir", fs::perms(0644));
    EXPECT_EQ(one_error(kMinimal),
              at(7, 14, "storage.state_dir: " + (dir_ / "state").string() + " exists and is not a directory"));
    fs::remove(dir_ / "state");
    fs::create_directory(dir_ / "state");
    EXPECT_EQ(ok(kMinimal).storage.state_dir, dir_ / "state");
    fs::remove(dir_ / "state");
    ok(kMinimal);
    EXPECT_FALSE(fs::exists(dir_ / "state")) << "the loader must not create state_dir";
}

// ---- secrets ----

constexpr const char* kWithPassword = R"(station: {shop: a, id: b}
broker:
  uri: tcp://h
  username: station
  password_file: pw
storage: {state_dir: /s}
)";

TEST_F(ConfigTest, GroupReadablePasswordFileIsRefusedWithTheFix) {
    const fs::path pw = write("pw", "secret\n", fs::perms(0644));
    EXPECT_EQ(one_error(kWithPassword),
              at(5, 18,
                 "broker.password_file: " + pw.string() + " is readable by group or others (mode 0644); run chmod 600 " +
                     pw.string()));
    fs::permissions(pw, fs::perms(0604));
    EXPECT_EQ(one_error(kWithPassword),
              at(5, 18,
                 "broker.password_file: " + pw.string() + " is readable by group or others (mode 0604); run chmod 600 " +
                     pw.string()));
    fs::permissions(pw, fs::perms(0620));
    EXPECT_EQ(one_error(kWithPassword),
              at(5, 18,
                 "broker.password_file: " + pw.string() + " is accessible by group or others (mode 0620); run chmod 600 " +
                     pw.string()));
}

TEST_F(ConfigTest, PrivatePasswordFileIsReadAndTrimmed) {
    write("pw", "  s3cr3t pass \r\n\n", fs::perms(0600));
    const Config c = ok(kWithPassword);
    EXPECT_EQ(c.broker.username, "station");
    EXPECT_EQ(c.broker.password, "  s3cr3t pass");
    EXPECT_EQ(c.broker.password_file, dir_ / "pw");
    write("pw", "x", fs::perms(0400));
    EXPECT_EQ(ok(kWithPassword).broker.password, "x");
}

TEST_F(ConfigTest, EmptyPasswordIsRefused) {
    const fs::path pw = write("pw", " \n\n");
    EXPECT_EQ(one_error(kWithPassword),
              at(5, 18, "broker.password_file: " + pw.string() + " is empty; write the password in it"));
}

TEST_F(ConfigTest, PasswordFileNeedsUsernameAndMustExist) {
    write("pw", "x");
    EXPECT_EQ(one_error("station: {shop: a, id: b}\nbroker: {uri: tcp://h, password_file: pw}\nstorage: {state_dir: /s}\n"),
              at(2, 39, "broker.password_file: needs broker.username; a password is sent with a user name"));
    fs::remove(dir_ / "pw");
    EXPECT_EQ(one_error(kWithPassword), at(5, 18, "broker.password_file: " + (dir_ / "pw").string() + " does not exist"));
    fs::create_directory(dir_ / "pw");
    EXPECT_EQ(one_error(kWithPassword),
              at(5, 18, "broker.password_file: " + (dir_ / "pw").string() + " is not a regular file"));
}

TEST_F(ConfigTest, UsernameWithoutPasswordIsAllowed) {
    const Config c = ok("station: {shop: a, id: b}\nbroker: {uri: tcp://h, username: u}\nstorage: {state_dir: /s}\n");
    EXPECT_EQ(c.broker.username, "u");
    EXPECT_EQ(c.broker.password, "");
}

// ---- TLS ----

std::string tls_config(std::string_view extra) {
    return "station: {shop: a, id: b}\nbroker:\n  uri: mqtts://mqtt.example.com\n" + std::string(extra) +
           "storage: {state_dir: /s}\n";
}

TEST_F(ConfigTest, ClientCertificateAndKeyAreAccepted) {
    write("ca.pem", "ca", fs::perms(0644));
    write("c.crt", "cert", fs::perms(0644));
    write("c.key", "key", fs::perms(0600));
    const Config c = ok(tls_config("  ca_file: ca.pem\n  cert_file: c.crt\n  key_file: c.key\n"));
    EXPECT_TRUE(c.broker.uses_tls());
    EXPECT_EQ(c.broker.uri, "ssl://mqtt.example.com:8883");
    EXPECT_EQ(c.broker.ca_file, dir_ / "ca.pem");
    EXPECT_EQ(c.broker.cert_file, dir_ / "c.crt");
    EXPECT_EQ(c.broker.key_file, dir_ / "c.key");
    // ca_file alone (server authentication only) is fine, and so is no file at all.
    EXPECT_EQ(ok(tls_config("  ca_file: ca.pem\n")).broker.ca_file, dir_ / "ca.pem");
    EXPECT_TRUE(ok(tls_config("")).broker.ca_file.empty());
}

TEST_F(ConfigTest, GroupReadableKeyIsRefused) {
    write("c.crt", "cert", fs::perms(0644));
    const fs::path key = write("c.key", "key", fs::perms(0640));
    EXPECT_EQ(one_error(tls_config("  cert_file: c.crt\n  key_file: c.key\n")),
              at(5, 13,
                 "broker.key_file: " + key.string() + " is readable by group or others (mode 0640); run chmod 600 " +
                     key.string()));
}

TEST_F(ConfigTest, CertificateAndKeyGoTogether) {
    write("c.crt", "cert", fs::perms(0644));
    write("c.key", "key");
    EXPECT_EQ(one_error(tls_config("  cert_file: c.crt\n")),
              at(4, 14, "broker.cert_file: needs broker.key_file too; a client certificate is used together with its key"));
    EXPECT_EQ(one_error(tls_config("  key_file: c.key\n")),
              at(4, 13, "broker.key_file: needs broker.cert_file too; a client key is used together with its certificate"));
}

TEST_F(ConfigTest, MissingTlsFilesAreEachReported) {
    const LoadResult r = load(tls_config("  ca_file: /nonexistent/ca.pem\n  cert_file: c.crt\n  key_file: c.key\n"));
    EXPECT_EQ(lines(r), (std::vector<std::string>{
                            at(4, 12, "broker.ca_file: /nonexistent/ca.pem does not exist"),
                            at(5, 14, "broker.cert_file: " + (dir_ / "c.crt").string() + " does not exist"),
                            at(6, 13, "broker.key_file: " + (dir_ / "c.key").string() + " does not exist"),
                        }));
}

TEST_F(ConfigTest, TlsFilesWithPlainTcpAreRefused) {
    write("ca.pem", "ca", fs::perms(0644));
    EXPECT_EQ(one_error("station: {shop: a, id: b}\nbroker:\n  uri: tcp://h\n  ca_file: ca.pem\nstorage: {state_dir: /s}\n"),
              at(4, 12,
                 "broker.ca_file: is set but broker.uri uses tcp:// (no TLS), so it would be ignored; use an "
                 "ssl:// or mqtts:// uri, or remove this key"));
}

// ---- broker.uri ----

TEST_F(ConfigTest, UriIsNormalised) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"tcp://mqtt.local", "tcp://mqtt.local:1883"},
        {"tcp://mqtt.local:1884", "tcp://mqtt.local:1884"},
        {"tcp://mqtt.local:1884/", "tcp://mqtt.local:1884"},
        {"TCP://mqtt.local", "tcp://mqtt.local:1883"},
        {"ssl://mqtt.local", "ssl://mqtt.local:8883"},
        {"mqtts://mqtt.local", "ssl://mqtt.local:8883"},
        {"mqtts://mqtt.local:443", "ssl://mqtt.local:443"},
        {"tcp://127.0.0.1:1883", "tcp://127.0.0.1:1883"},
        {"tcp://[::1]", "tcp://[::1]:1883"},
        {"ssl://[fe80::1]:9000", "ssl://[fe80::1]:9000"},
    };
    for (const auto& [in, out] : cases) {
        const Config c = ok("station: {shop: a, id: b}\nbroker: {uri: '" + in + "'}\nstorage: {state_dir: /s}\n");
        EXPECT_EQ(c.broker.uri, out) << in;
        EXPECT_EQ(c.broker.uses_tls(), out.starts_with("ssl://")) << in;
    }
}

TEST_F(ConfigTest, BadUrisAreExplained) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"http://h", "unsupported scheme 'http://'; use tcp://, ssl:// or mqtts://"},
        {"ws://h:80", "unsupported scheme 'ws://'; use tcp://, ssl:// or mqtts://"},
        {"mqtt://h", "unsupported scheme 'mqtt://'; use tcp:// (plain) or ssl:// / mqtts:// (TLS), e.g. tcp://h"},
        {"mqtt.local:1883",
         "must start with tcp://, ssl:// or mqtts:// (got 'mqtt.local:1883'), e.g. tcp://broker.example:1883"},
        {"tcp://", "has no host name (got 'tcp://')"},
        {"tcp://:1883", "has no host name (got 'tcp://:1883')"},
        {"tcp://h:", "port must be a number from 1 to 65535 (got '<empty>')"},
        {"tcp://h:0", "port must be a number from 1 to 65535 (got '0')"},
        {"tcp://h:65536", "port must be a number from 1 to 65535 (got '65536')"},
        {"tcp://h:18x3", "port must be a number from 1 to 65535 (got '18x3')"},
        {"tcp://h:1883/topic", "must be tcp://HOST:PORT with no path (got 'tcp://h:1883/topic')"},
        {"tcp://user:pw@h", "must not contain user or password; use broker.username and broker.password_file"},
        {"tcp://::1:1883", "an IPv6 address must be in brackets, e.g. tcp://[::1]:1883 (got 'tcp://::1:1883')"},
        {"tcp://[::1", "IPv6 address is missing ']' (got 'tcp://[::1')"},
        {"tcp://my host", "host name contains a space (got 'tcp://my host')"},
    };
    for (const auto& [in, message] : cases) {
        EXPECT_EQ(one_error("station: {shop: a, id: b}\nbroker: {uri: '" + in + "'}\nstorage: {state_dir: /s}\n"),
                  at(2, 15, "broker.uri: " + message))
            << in;
    }
}

TEST(BrokerTest, UsesTls) {
    pressline::config::Broker b;
    b.uri = "ssl://h:8883";
    EXPECT_TRUE(b.uses_tls());
    b.uri = "mqtts://h:8883";
    EXPECT_TRUE(b.uses_tls());
    b.uri = "tcp://h:1883";
    EXPECT_FALSE(b.uses_tls());
    b.uri = "";
    EXPECT_FALSE(b.uses_tls());
}

// ---- names that become topic levels ----

TEST_F(ConfigTest, ShopIdAndPoolsMustBeSafeTopicLevels) {
    const std::string rule = "; use only letters, digits, '_', '.' and '-' (it becomes an MQTT topic level)";
    auto with_shop = [](std::string shop) {
        return "station: {shop: '" + shop + "', id: b}\nbroker: {uri: tcp://h}\nstorage: {state_dir: /s}\n";
    };
    EXPECT_EQ(one_error(with_shop("a/b")), at(1, 17, "station.shop: 'a/b' contains '/'" + rule));
    EXPECT_EQ(one_error(with_shop("a+")), at(1, 17, "station.shop: 'a+' contains '+'" + rule));
    EXPECT_EQ(one_error(with_shop("#")), at(1, 17, "station.shop: '#' contains '#'" + rule));
    EXPECT_EQ(one_error(with_shop("my shop")), at(1, 17, "station.shop: 'my shop' contains a space" + rule));
    EXPECT_EQ(one_error(with_shop("caf\xc3\xa9")),
              at(1, 17, "station.shop: 'caf\xc3\xa9' contains a non-ASCII or control character" + rule));
    EXPECT_EQ(one_error(with_shop("")), at(1, 17, "station.shop: must not be empty"));

    const LoadResult r = load(R"(station:
  shop: a
  id: b
  pools:
    - tees
    - 'x/y'
    - [nested]
    - tees
broker: {uri: tcp://h}
storage: {state_dir: /s}
)");
    EXPECT_EQ(lines(r), (std::vector<std::string>{
                            at(6, 7, "station.pools[1]: 'x/y' contains '/'" + rule),
                            at(7, 7, "station.pools[2]: expected a string, got a list"),
                            at(8, 7, "station.pools[3]: duplicate pool 'tees' (first given at line 5)"),
                        }));
}

TEST_F(ConfigTest, PoolsMustBeAList) {
    EXPECT_EQ(one_error("station: {shop: a, id: b, pools: tees}\nbroker: {uri: tcp://h}\nstorage: {state_dir: /s}\n"),
              at(1, 34, "station.pools: expected a list of strings, got 'tees'; write [tees] for a single pool"));
}

TEST_F(ConfigTest, TopicPrefixIsChecked) {
    auto with_prefix = [](std::string p) { return std::string(kMinimal) + "mqtt: {topic_prefix: '" + p + "'}\n"; };
    EXPECT_EQ(ok(with_prefix("a/b/c")).mqtt.topic_prefix, "a/b/c");
    EXPECT_EQ(one_error(with_prefix("a/+/c")),
              at(8, 22, "mqtt.topic_prefix: must not contain the MQTT wildcards '+' or '#' (got 'a/+/c')"));
    EXPECT_EQ(one_error(with_prefix("a/#")),
              at(8, 22, "mqtt.topic_prefix: must not contain the MQTT wildcards '+' or '#' (got 'a/#')"));
    EXPECT_EQ(one_error(with_prefix("/a")), at(8, 22, "mqtt.topic_prefix: must not start or end with '/' (got '/a')"));
    EXPECT_EQ(one_error(with_prefix("a/")), at(8, 22, "mqtt.topic_prefix: must not start or end with '/' (got 'a/')"));
    EXPECT_EQ(one_error(with_prefix("a//b")),
              at(8, 22, "mqtt.topic_prefix: must not contain an empty topic level ('//') (got 'a//b')"));
    EXPECT_EQ(one_error(with_prefix("$SYS/x")),
              at(8, 22, "mqtt.topic_prefix: must not start with '$' (reserved by brokers) (got '$SYS/x')"));
    EXPECT_EQ(one_error(with_prefix("a b")),
              at(8, 22, "mqtt.topic_prefix: must not contain spaces or control characters (got 'a b')"));
}

// ---- types and ranges ----

TEST_F(ConfigTest, WrongTypesNameTheExpectedType) {
    const LoadResult r = load(R"(station:
  shop: [a, b]
  id: {x: 1}
broker:
  uri: tcp://h
  keepalive_s: abc
  max_inflight: {n: 3}
  connect_timeout_s: 1.5
  session_expiry_s: 30s
  reconnect_min_s: 0x10
mqtt: prefix
storage:
  state_dir: [a]
  retention_hours: [1]
log: [info]
)");
    EXPECT_EQ(lines(r),
              (std::vector<std::string>{
                  at(2, 9, "station.shop: expected a string, got a list"),
                  at(3, 7, "station.id: expected a string, got a map"),
                  at(6, 16, "broker.keepalive_s: expected an integer, got 'abc'"),
                  at(7, 17, "broker.max_inflight: expected an integer, got a map"),
                  at(8, 22, "broker.connect_timeout_s: expected an integer, got '1.5'"),
                  at(9, 21, "broker.session_expiry_s: expected an integer, got '30s'"),
                  at(10, 20, "broker.reconnect_min_s: expected an integer, got '0x10'"),
                  at(11, 7, "mqtt: expected a map of keys (topic_prefix), got 'prefix'"),
                  at(13, 14, "storage.state_dir: expected a string, got a list"),
                  at(14, 20, "storage.retention_hours: expected an integer, got a list"),
                  at(15, 6, "log: expected a map of keys (level), got a list"),
              }))
        << dump(r);
}

TEST_F(ConfigTest, SectionOfWrongTypeDoesNotAlsoReportItsMissingKeys) {
    EXPECT_EQ(one_error("station: {shop: a, id: b}\nbroker: tcp://h:1883\nstorage: {state_dir: /s}\n"),
              at(2, 9,
                 "broker: expected a map of keys (uri, client_id, username, password_file, ca_file, cert_file, "
                 "key_file, keepalive_s, connect_timeout_s, session_expiry_s, reconnect_min_s, reconnect_max_s, "
                 "max_inflight), got 'tcp://h:1883'"));
}

struct RangeCase {
    const char* section;
    const char* key;
    long long min;
    long long max;
};

TEST_F(ConfigTest, IntegerRangesAreEnforcedAtBothEnds) {
    const std::vector<RangeCase> cases = {
        {"broker", "keepalive_s", 5, 3600},
        {"broker", "connect_timeout_s", 1, 300},
        {"broker", "session_expiry_s", 60, 4294967295LL},
        {"broker", "max_inflight", 1, 65535},
        {"storage", "retention_hours", 1, 87600},
        {"storage", "outbox_max_events", 1000, 100000000},
        {"storage", "min_free_mb", 0, 1000000},
        {"intake", "max_payload_bytes", 1024, 16777216},
        {"intake", "max_depth", 4, 128},
    };
    for (const auto& c : cases) {
        auto with = [&](long long v) {
            const std::string kv = std::string(c.key) + ": " + std::to_string(v);
            std::string text = "station: {shop: a, id: b}\n";
            text += std::string("broker: {uri: tcp://h") + (c.section == std::string("broker") ? ", " + kv : "") + "}\n";
            text += std::string("storage: {state_dir: /s") + (c.section == std::string("storage") ? ", " + kv : "") + "}\n";
            if (c.section == std::string("intake")) text += "intake: {" + kv + "}\n";
            return text;
        };
        const std::string path = std::string(c.section) + "." + c.key;
        EXPECT_TRUE(load(with(c.min)).ok()) << path << " = " << c.min << "\n" << dump(load(with(c.min)));
        EXPECT_TRUE(load(with(c.max)).ok()) << path << " = " << c.max << "\n" << dump(load(with(c.max)));
        for (long long bad : {c.min - 1, c.max + 1}) {
            const LoadResult r = load(with(bad));
            ASSERT_EQ(r.diagnostics.size(), 1u) << path << " = " << bad << "\n" << dump(r);
            EXPECT_EQ(r.diagnostics[0].path, path);
            EXPECT_EQ(r.diagnostics[0].message, "must be between " + std::to_string(c.min) + " and " +
                                                    std::to_string(c.max) + " (got " + std::to_string(bad) + ")");
        }
    }
}

TEST_F(ConfigTest, HugeNumbersAreOutOfRangeNotWrapped) {
    EXPECT_EQ(one_error(std::string(kMinimal) + "  retention_hours: 99999999999999999999999\n"),
              at(8, 20, "storage.retention_hours: must be between 1 and 87600 (got 99999999999999999999999)"));
    EXPECT_EQ(one_error(std::string(kMinimal) + "  min_free_mb: -1\n"),
              at(8, 16, "storage.min_free_mb: must be between 0 and 1000000 (got -1)"));
    EXPECT_EQ(one_error(std::string(kMinimal) + "  min_free_mb: +-1\n"),
              at(8, 16, "storage.min_free_mb: expected an integer, got '+-1'"));
    EXPECT_EQ(one_error(std::string(kMinimal) + "  min_free_mb: '-'\n"),
              at(8, 16, "storage.min_free_mb: expected an integer, got '-'"));
}

TEST_F(ConfigTest, MaxDbIsZeroOrAtLeastSixteen) {
    EXPECT_EQ(ok(std::string(kMinimal) + "  max_db_mb: 0\n").storage.max_db_mb, 0);
    EXPECT_EQ(ok(std::string(kMinimal) + "  max_db_mb: 16\n").storage.max_db_mb, 16);
    EXPECT_EQ(one_error(std::string(kMinimal) + "  max_db_mb: 15\n"),
              at(8, 14, "storage.max_db_mb: must be 0 (no cap) or at least 16 (got 15)"));
    EXPECT_EQ(one_error(std::string(kMinimal) + "  max_db_mb: -5\n"),
              at(8, 14, "storage.max_db_mb: must be 0 (no cap) or at least 16 (got -5)"));
}

TEST_F(ConfigTest, ReconnectMaxMustNotBeBelowMin) {
    auto with = [](std::string extra) {
        return "station: {shop: a, id: b}\nbroker:\n  uri: tcp://h\n" + extra + "storage: {state_dir: /s}\n";
    };
    EXPECT_EQ(ok(with("  reconnect_min_s: 10\n  reconnect_max_s: 10\n")).broker.reconnect_max_s, 10);
    EXPECT_EQ(one_error(with("  reconnect_min_s: 10\n  reconnect_max_s: 5\n")),
              at(5, 20, "broker.reconnect_max_s: must be at least broker.reconnect_min_s (10), got 5"));
    // Against the default maximum (30) too, pointing at the key that was written.
    EXPECT_EQ(one_error(with("  reconnect_min_s: 60\n")),
              at(4, 20, "broker.reconnect_max_s: must be at least broker.reconnect_min_s (60), got 30"));
    EXPECT_EQ(one_error(with("  reconnect_max_s: 3601\n")),
              at(4, 20, "broker.reconnect_max_s: must be between 1 and 3600 (got 3601)"));
    // No follow-on complaint when one of them is itself invalid.
    EXPECT_EQ(one_error(with("  reconnect_min_s: 0\n  reconnect_max_s: 5\n")),
              at(4, 20, "broker.reconnect_min_s: must be between 1 and 3600 (got 0)"));
}

TEST_F(ConfigTest, LogLevel) {
    for (const char* level : {"trace", "debug", "info", "warn", "error"})
        EXPECT_EQ(ok(std::string(kMinimal) + "log: {level: " + level + "}\n").log.level, level);
    EXPECT_EQ(one_error(std::string(kMinimal) + "log: {level: warning}\n"),
              at(8, 14, "log.level: unknown level 'warning'; did you mean 'warn'?"));
    EXPECT_EQ(one_error(std::string(kMinimal) + "log: {level: INFO}\n"),
              at(8, 14, "log.level: unknown level 'INFO'; did you mean 'info'?"));
    EXPECT_EQ(one_error(std::string(kMinimal) + "log: {level: loud}\n"),
              at(8, 14, "log.level: unknown level 'loud'; use one of trace, debug, info, warn, error"));
}

// ---- Diagnostic::str ----

TEST(DiagnosticTest, StrFormats) {
    EXPECT_EQ((Diagnostic{"a.yaml", 3, 7, "broker.uri", "bad"}).str(), "a.yaml:3:7: broker.uri: bad");
    EXPECT_EQ((Diagnostic{"a.yaml", 0, 0, "", "cannot open"}).str(), "a.yaml: cannot open");
    EXPECT_EQ((Diagnostic{"a.yaml", 0, 0, "log", "x"}).str(), "a.yaml: log: x");
    EXPECT_EQ((Diagnostic{"a.yaml", 2, 0, "", "x"}).str(), "a.yaml:2: x");
    EXPECT_EQ((Diagnostic{"a.yaml", 1, 1, "", "empty"}).str(), "a.yaml:1:1: empty");
}

TEST(LoadStringTest, WithoutAFileNameUsesAPlaceholder) {
    const LoadResult r = load_string("", "");
    ASSERT_EQ(r.diagnostics.size(), 1u);
    EXPECT_EQ(r.diagnostics[0].file, "<config>");
}

// ---- the shipped files ----


// ---- printing: printers, platens, colours, assets, scheduler ----

TEST_F(ConfigTest, PrintersWithDefaultsPlatensAndColours) {
    const Config c = ok(std::string(kMinimal) + R"(dtg_printers:
  - name: dtg-1
    server: 127.0.0.1:8631
    options: {print-quality: "5"}
  - name: dtg-2
    driver: hotfolder
    hot_folder: rip/in
    platens: [14x16, youth]
    garment_classes: [light]
    format: pdf
platens:
  youth: {width_mm: 250, height_mm: 300}
garment_colors:
  sand: [210, 190, 150]
  slate: {srgb: [200, 200, 205], class: dark}
)");
    ASSERT_EQ(c.dtg_printers.size(), 2u);
    const auto& a = c.dtg_printers[0];
    EXPECT_EQ(a.driver, "cups");
    EXPECT_EQ(a.queue, "dtg-1");  // defaults to the name
    EXPECT_EQ(a.options.at("print-quality"), "5");
    EXPECT_EQ(a.platens, std::vector<std::string>{"16x20"});
    EXPECT_EQ(a.garment_classes, (std::vector<std::string>{"light", "dark"}));
    EXPECT_EQ(a.dpi, 300);
    EXPECT_EQ(a.format, "png");
    const auto& b = c.dtg_printers[1];
    EXPECT_EQ(b.hot_folder, dir_ / "rip/in");
    EXPECT_EQ(b.completion, "consumed");
    EXPECT_EQ(b.format, "pdf");
    ASSERT_NE(c.platen("16x20"), nullptr);
    EXPECT_DOUBLE_EQ(c.platen("16x20")->width_mm, 406.4);
    EXPECT_DOUBLE_EQ(c.platen("16x20")->height_mm, 508.0);
    ASSERT_NE(c.platen("youth"), nullptr);
    EXPECT_DOUBLE_EQ(c.platen("youth")->width_mm, 250.0);
    EXPECT_EQ(c.garment_colors.at("black").color_class, "dark");
    EXPECT_EQ(c.garment_colors.at("white").color_class, "light");
    EXPECT_EQ(c.garment_colors.at("sand").color_class, "light");
    EXPECT_EQ(c.garment_colors.at("slate").color_class, "dark");  // class given overrides luminance
    EXPECT_EQ(c.assets.cache_dir, dir_ / "state/assets");
}

TEST_F(ConfigTest, PrinterMistakesAreNamedByPath) {
    const LoadResult r = load(std::string(kMinimal) + R"(dtg_printers:
  - name: dtg-1
    driver: ipp
    platens: [huge]
    garment_classes: [drak]
  - name: dtg-1
    driver: hotfolder
    completion: folders
    colour: red
)");
    const std::string all = dump(r);
    EXPECT_NE(all.find("dtg_printers[0].driver: unknown driver 'ipp'; use cups or hotfolder"), std::string::npos) << all;
    EXPECT_NE(all.find("dtg_printers[0].platens[0]: unknown platen 'huge'"), std::string::npos) << all;
    EXPECT_NE(all.find("dtg_printers[0].garment_classes[0]: unknown value 'drak'; did you mean 'dark'?"), std::string::npos) << all;
    EXPECT_NE(all.find("dtg_printers[1].name: duplicate printer name 'dtg-1'"), std::string::npos) << all;
    EXPECT_NE(all.find("dtg_printers[1].hot_folder: required key is missing"), std::string::npos) << all;
    EXPECT_NE(all.find("dtg_printers[1].done_folder: required key is missing"), std::string::npos) << all;
    EXPECT_NE(all.find("dtg_printers[1].colour: unknown key"), std::string::npos) << all;
}

TEST_F(ConfigTest, AssetsPrintingAndSchedulerRanges) {
    const LoadResult r = load(std::string(kMinimal) + R"(assets:
  allowed_hosts: assets.example.com
  allow_private_addresses: maybe
printing:
  poll_min_ms: 500
  poll_max_ms: 100
  release: scan
scheduler:
  batch_max: 0
garment_colors:
  odd: [1, 2, 300]
)");
    const std::string all = dump(r);
    EXPECT_NE(all.find("assets.allowed_hosts: expected a list of strings, got 'assets.example.com'; write [assets.example.com]"), std::string::npos) << all;
    EXPECT_NE(all.find("assets.allow_private_addresses: expected true or false, got 'maybe'"), std::string::npos) << all;
    EXPECT_NE(all.find("printing.poll_max_ms: must not be below printing.poll_min_ms (500)"), std::string::npos) << all;
    EXPECT_NE(all.find("printing.release: unknown release mode 'scan'"), std::string::npos) << all;
    EXPECT_NE(all.find("scheduler.batch_max: must be between 1 and 10000 (got 0)"), std::string::npos) << all;
    EXPECT_NE(all.find("garment_colors.odd[2]: expected an integer 0-255, got '300'"), std::string::npos) << all;
}

TEST_F(ConfigTest, LabelPrintersAndLabels) {
    const LoadResult good = load(std::string(kMinimal) + R"(label_printers:
  - {name: zebra-a, connection: usb, vendor_id: 0a5f, product_id: 0x0181, serial: Z1, darkness: 22, media: black_mark}
  - {name: zebra-b, host: 127.0.0.1, x_offset_mm: 2.5}
  - {name: rollo, connection: cups, language: pdf}
labels:
  ticket_printer: zebra-a
  shipping_printers: [zebra-b, rollo]
  ship_from: {name: Shop, country: GB}
)");
    ASSERT_TRUE(good.ok()) << dump(good);
    const Config& c = *good.config;
    ASSERT_EQ(c.label_printers.size(), 3u);
    EXPECT_EQ(c.label_printers[0].vendor_id, 0x0a5f);
    EXPECT_EQ(c.label_printers[0].product_id, 0x0181);
    EXPECT_EQ(c.label_printers[0].media, "black_mark");
    EXPECT_EQ(c.label_printers[1].connection, "tcp");  // the default
    EXPECT_EQ(c.label_printers[1].port, 9100);
    EXPECT_DOUBLE_EQ(c.label_printers[1].x_offset_mm, 2.5);
    EXPECT_EQ(c.label_printers[2].queue, "rollo");
    EXPECT_EQ(c.labels.shipping_printers, (std::vector<std::string>{"zebra-b", "rollo"}));
    EXPECT_EQ(c.labels.ship_from.country, "GB");

    const LoadResult bad = load(std::string(kMinimal) + R"(dtg_printers:
  - {name: dtg-1}
label_printers:
  - {name: dtg-1, host: h}
  - {name: z2, connection: usb, vendor_id: zebra}
  - {name: z3, connection: tcp, language: pdf, host: h, media: gaps}
labels:
  ticket_printer: z9
)");
    const std::string all = dump(bad);
    EXPECT_NE(all.find("label_printers[0].name: duplicate printer name 'dtg-1' (a DTG printer has it)"), std::string::npos) << all;
    EXPECT_NE(all.find("label_printers[1].vendor_id: expected a USB id in hex as lsusb shows it (0a5f or 0x0a5f), got 'zebra'"), std::string::npos) << all;
    EXPECT_NE(all.find("label_printers[1].product_id: required key is missing"), std::string::npos) << all;
    EXPECT_NE(all.find("label_printers[2].language: pdf labels need connection cups"), std::string::npos) << all;
    EXPECT_NE(all.find("label_printers[2].media: unknown value 'gaps'; did you mean 'gap'?"), std::string::npos) << all;
    EXPECT_NE(all.find("labels.ticket_printer: no label printer 'z9'; label_printers has z2, z3"), std::string::npos) << all;
}

TEST_F(ConfigTest, CamerasAndQa) {
    const Config c = ok(std::string(kMinimal) + R"(dtg_printers:
  - {name: d1, queue: d1}
  - {name: d2, queue: d2}
cameras:
  - {name: cam-a, source: "folder:shots/a", calibration: cal/a.json, printers: [d1]}
  - {name: cam-b, source: "v4l2:0", calibration: /etc/cal-b.json, width: 1600, height: 1200, fourcc: MJPG}
qa:
  trigger: operator
  delay_s: 0
  spot_check_share: 1
  tolerances: {offset_mm: 4, low_confidence: 0.2}
  evidence: {dir: ev, max_total_mb: 10}
)");
    ASSERT_EQ(c.cameras.size(), 2u);
    EXPECT_EQ(c.cameras[0].source, "folder:" + (dir_ / "shots/a").string());
    EXPECT_EQ(c.cameras[0].calibration, dir_ / "cal/a.json");
    EXPECT_EQ(c.cameras[1].width, 1600);
    EXPECT_EQ(c.cameras[1].fourcc, "MJPG");
    EXPECT_EQ(c.camera_for("d1")->name, "cam-a");
    EXPECT_EQ(c.camera_for("d2")->name, "cam-b");  // an empty list watches every printer
    EXPECT_TRUE(c.qa.enabled);
    EXPECT_EQ(c.qa.trigger, "operator");
    EXPECT_EQ(c.qa.delay_s, 0);
    EXPECT_EQ(c.qa.spot_check_share, 1.0);
    EXPECT_EQ(c.qa.tolerances.offset_mm, 4.0);
    EXPECT_EQ(c.qa.tolerances.low_confidence, 0.2);
    EXPECT_EQ(c.qa.tolerances.mean_de00, 3.0);
    EXPECT_EQ(c.qa.evidence.dir, dir_ / "ev");
    EXPECT_EQ(c.qa.evidence.max_total_mb, 10);
    EXPECT_EQ(c.qa.evidence.max_age_days, 30);
    EXPECT_EQ(c.qa.qr_scan_interval_ms, 500);
    const Config q = ok(std::string(kMinimal) + "qa:\n  trigger: qr\n  qr_scan_interval_ms: 250\n");
    EXPECT_EQ(q.qa.trigger, "qr");
    EXPECT_EQ(q.qa.qr_scan_interval_ms, 250);
}

TEST_F(ConfigTest, CameraAndQaMistakesAreNamedByPath) {
    const LoadResult r = load(std::string(kMinimal) + R"(dtg_printers:
  - {name: d1, queue: d1}
cameras:
  - {name: cam a, source: "webcam", fourcc: MJPEG, printers: [d9]}
  - {name: cam-b, source: "v4l2:0", calibration: c.json, printers: [d1]}
  - {name: cam-c, source: "v4l2:1", calibration: c.json, printers: [d1], exposur: 3}
qa:
  trigger: delayed
  spot_check_share: 1.5
  tolerances: {ofset_mm: 4, mean_de00: -1}
  evidence: {max_age_days: 0}
  qr_scan_interval_ms: 10
)");
    const std::string all = dump(r);
    EXPECT_NE(all.find("cameras[0].name: "), std::string::npos) << all;
    EXPECT_NE(all.find("cameras[0].source: unknown camera source 'webcam'"), std::string::npos) << all;
    EXPECT_NE(all.find("cameras[0].fourcc: a fourcc is four characters"), std::string::npos) << all;
    EXPECT_NE(all.find("cameras[0].printers[0]: no DTG printer 'd9'; dtg_printers has d1"), std::string::npos) << all;
    EXPECT_NE(all.find("cameras[0].calibration: required key is missing"), std::string::npos) << all;
    EXPECT_NE(all.find("cameras[2].printers[0]: printer 'd1' is already watched by camera 'cam-b'"), std::string::npos) << all;
    EXPECT_NE(all.find("cameras[2].exposur: unknown key; did you mean 'exposure'?"), std::string::npos) << all;
    EXPECT_NE(all.find("qa.trigger: unknown value 'delayed'; did you mean 'delay'?"), std::string::npos) << all;
    EXPECT_NE(all.find("qa.spot_check_share: must be between 0 and 1 (got 1.5)"), std::string::npos) << all;
    EXPECT_NE(all.find("qa.tolerances.ofset_mm: unknown key; did you mean 'offset_mm'?"), std::string::npos) << all;
    EXPECT_NE(all.find("qa.tolerances.mean_de00: must be between 0 and 100 (got -1)"), std::string::npos) << all;
    EXPECT_NE(all.find("qa.evidence.max_age_days: must be between 1 and 36500 (got 0)"), std::string::npos) << all;
    EXPECT_NE(all.find("qa.qr_scan_interval_ms: must be between 50 and 60000 (got 10)"), std::string::npos) << all;
}

TEST(ShippedConfigTest, DemoLoads) {
    const fs::path demo = repo_root() / "config/demo.yaml";
    const LoadResult r = load_file(demo);
    ASSERT_TRUE(r.ok()) << dump(r);
    const Config& c = *r.config;
    EXPECT_EQ(c.source, fs::absolute(demo).lexically_normal());
    EXPECT_EQ(c.station.shop, "demo-shop");
    EXPECT_EQ(c.station.id, "station-1");
    EXPECT_EQ(c.station.pools, std::vector<std::string>{"tees"});
    EXPECT_EQ(c.broker.uri, "tcp://127.0.0.1:1883");
    EXPECT_EQ(c.broker.client_id, "pressline-demo-shop-station-1");
    EXPECT_EQ(c.storage.state_dir, fs::path("/tmp/pressline-demo/state"));
    EXPECT_EQ(c.log.level, "info");
}

TEST(ShippedConfigTest, ExampleInPlaceOnlyLacksItsSecretAndTlsFiles) {
    const fs::path example = repo_root() / "config/example.yaml";
    const LoadResult r = load_file(example);
    const fs::path dir = fs::absolute(example).lexically_normal().parent_path();
    std::vector<std::string> got;
    for (const auto& d : r.diagnostics) got.push_back(d.path + ": " + d.message);
    EXPECT_EQ(got, (std::vector<std::string>{
                       "broker.password_file: " + (dir / "secrets/broker.password").string() + " does not exist",
                       "broker.ca_file: " + (dir / "tls/ca.pem").string() + " does not exist",
                       "broker.cert_file: " + (dir / "tls/station.crt").string() + " does not exist",
                       "broker.key_file: " + (dir / "tls/station.key").string() + " does not exist",
                       "assets.ca_file: " + (dir / "tls/ca.pem").string() + " does not exist",
                   }));
}

TEST_F(ConfigTest, ExampleLoadsWhereItsFilesExistAndShowsTheTrueDefaults) {
    const std::string text = read_text(repo_root() / "config/example.yaml");
    ASSERT_FALSE(text.empty());
    write("secrets/broker.password", "example-password\n");
    write("tls/ca.pem", "ca", fs::perms(0644));
    write("tls/station.crt", "cert", fs::perms(0644));
    write("tls/station.key", "key");
    const Config c = ok(text);
    EXPECT_EQ(c.station.shop, "acme-leeds");
    EXPECT_EQ(c.broker.uri, "ssl://mqtt.example.com:8883");
    EXPECT_TRUE(c.broker.uses_tls());
    EXPECT_EQ(c.broker.client_id, "pressline-" + c.station.shop + "-" + c.station.id);
    EXPECT_EQ(c.broker.password, "example-password");
    EXPECT_EQ(c.broker.key_file, dir_ / "tls/station.key");
    // The example claims its numbers, topic_prefix and level are the defaults: keep it honest.
    const Config d;
    EXPECT_EQ(c.broker.keepalive_s, d.broker.keepalive_s);
    EXPECT_EQ(c.broker.connect_timeout_s, d.broker.connect_timeout_s);
    EXPECT_EQ(c.broker.session_expiry_s, d.broker.session_expiry_s);
    EXPECT_EQ(c.broker.reconnect_min_s, d.broker.reconnect_min_s);
    EXPECT_EQ(c.broker.reconnect_max_s, d.broker.reconnect_max_s);
    EXPECT_EQ(c.broker.max_inflight, d.broker.max_inflight);
    EXPECT_EQ(c.mqtt.topic_prefix, d.mqtt.topic_prefix);
    EXPECT_EQ(c.storage.retention_hours, d.storage.retention_hours);
    EXPECT_EQ(c.storage.outbox_max_events, d.storage.outbox_max_events);
    EXPECT_EQ(c.storage.min_free_mb, d.storage.min_free_mb);
    EXPECT_EQ(c.storage.max_db_mb, d.storage.max_db_mb);
    EXPECT_EQ(c.intake.max_payload_bytes, d.intake.max_payload_bytes);
    EXPECT_EQ(c.intake.max_depth, d.intake.max_depth);
    EXPECT_EQ(c.log.level, d.log.level);
    EXPECT_EQ(c.assets.cache_max_mb, d.assets.cache_max_mb);
    EXPECT_EQ(c.assets.max_mb, d.assets.max_mb);
    EXPECT_EQ(c.assets.max_megapixels, d.assets.max_megapixels);
    EXPECT_EQ(c.assets.connect_timeout_s, d.assets.connect_timeout_s);
    EXPECT_EQ(c.assets.timeout_s, d.assets.timeout_s);
    EXPECT_EQ(c.printing.retry_budget, d.printing.retry_budget);
    EXPECT_EQ(c.printing.retry_backoff_s, d.printing.retry_backoff_s);
    EXPECT_EQ(c.printing.poll_min_ms, d.printing.poll_min_ms);
    EXPECT_EQ(c.printing.poll_max_ms, d.printing.poll_max_ms);
    EXPECT_EQ(c.printing.failover_after_s, d.printing.failover_after_s);
    EXPECT_EQ(c.scheduler.aging_minutes, d.scheduler.aging_minutes);
    EXPECT_EQ(c.scheduler.batch_window_minutes, d.scheduler.batch_window_minutes);
    EXPECT_EQ(c.scheduler.batch_max, d.scheduler.batch_max);
    EXPECT_EQ(c.scheduler.batch_max_wait_s, d.scheduler.batch_max_wait_s);
    EXPECT_EQ(c.qa.enabled, d.qa.enabled);
    EXPECT_EQ(c.qa.trigger, d.qa.trigger);
    EXPECT_EQ(c.qa.delay_s, d.qa.delay_s);
    EXPECT_EQ(c.qa.capture_timeout_s, d.qa.capture_timeout_s);
    EXPECT_EQ(c.qa.reprint_limit, d.qa.reprint_limit);
    EXPECT_EQ(c.qa.spot_check_share, d.qa.spot_check_share);
    EXPECT_EQ(c.qa.pause_after_consecutive_failures, d.qa.pause_after_consecutive_failures);
    EXPECT_EQ(c.qa.tolerances.offset_mm, d.qa.tolerances.offset_mm);
    EXPECT_EQ(c.qa.tolerances.rotation_deg, d.qa.tolerances.rotation_deg);
    EXPECT_EQ(c.qa.tolerances.scale_pct, d.qa.tolerances.scale_pct);
    EXPECT_EQ(c.qa.tolerances.mean_de00, d.qa.tolerances.mean_de00);
    EXPECT_EQ(c.qa.tolerances.local_de00, d.qa.tolerances.local_de00);
    EXPECT_EQ(c.qa.tolerances.local_min_area_mm2, d.qa.tolerances.local_min_area_mm2);
    EXPECT_EQ(c.qa.tolerances.margin_mm, d.qa.tolerances.margin_mm);
    EXPECT_EQ(c.qa.tolerances.blank_de00, d.qa.tolerances.blank_de00);
    EXPECT_EQ(c.qa.tolerances.low_confidence, d.qa.tolerances.low_confidence);
    EXPECT_EQ(c.qa.evidence.max_age_days, d.qa.evidence.max_age_days);
    EXPECT_EQ(c.qa.evidence.max_total_mb, d.qa.evidence.max_total_mb);
    EXPECT_EQ(c.qa.evidence.dir, c.storage.state_dir / "qa");
    ASSERT_EQ(c.cameras.size(), 1u);
    EXPECT_EQ(c.cameras[0].calibration, dir_ / "calibration/cam-1.json");
    EXPECT_EQ(c.cameras[0].open_timeout_ms, pressline::config::Camera{}.open_timeout_ms);
    EXPECT_EQ(c.cameras[0].read_timeout_ms, pressline::config::Camera{}.read_timeout_ms);
    EXPECT_EQ(c.camera_for("dtg-1"), &c.cameras[0]);
    EXPECT_EQ(c.camera_for("kornit-1"), nullptr);
    ASSERT_EQ(c.dtg_printers.size(), 2u);
    EXPECT_EQ(c.dtg_printers[0].dpi, pressline::config::DtgPrinter{}.dpi);
    EXPECT_EQ(c.dtg_printers[1].rip_timeout_s, pressline::config::DtgPrinter{}.rip_timeout_s);
}

TEST(ShippedConfigTest, ReadmeDocumentsEveryKeyOfTheExample) {
    // example.yaml shows every key; each must have a row in config/README.md.
    const std::string readme = read_text(repo_root() / "config/README.md");
    ASSERT_FALSE(readme.empty());
    const YAML::Node example = YAML::LoadFile((repo_root() / "config/example.yaml").string());
    std::set<std::string> keys;
    auto check_key = [&](const std::string& section, const std::string& k) {
        keys.insert(section + "." + k);
        EXPECT_NE(readme.find("| `" + k + "` |"), std::string::npos) << "no row for " << section << "." << k;
    };
    for (const auto& section : example) {
        const std::string name = section.first.as<std::string>();
        EXPECT_NE(readme.find("## `" + name + "`"), std::string::npos) << "no heading for section " << name;
        if (section.second.IsSequence()) {  // dtg_printers: a list of maps
            for (const auto& item : section.second)
                for (const auto& key : item) check_key(name, key.first.as<std::string>());
        } else if (name == "platens" || name == "garment_colors") {  // maps of names to values
            for (const auto& entry : section.second)
                if (entry.second.IsMap())
                    for (const auto& key : entry.second) check_key(name, key.first.as<std::string>());
        } else {
            for (const auto& key : section.second) check_key(name, key.first.as<std::string>());
        }
    }
    EXPECT_EQ(keys.size(), 112u);  // every key of the schema (qa.tolerances and qa.evidence count as one each)
}

}  // namespace
