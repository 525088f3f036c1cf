// Integration tests of the raw TCP driver against the simulated ZPL printer
// (tools/sim/pressline-zpl-printer), started as a child process per test on a free loopback
// port, steered through its control directory.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "pressline/drivers/tcp.hpp"
#include "pressline/testing/process.hpp"
#include "pressline/testing/util.hpp"

namespace tcp = pressline::drivers::tcp;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using pressline::testing::Process;
using pressline::testing::TempDir;
using pressline::testing::poll_until;
using pressline::testing::read_file;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

milliseconds since(Clock::time_point t) {
    return std::chrono::duration_cast<milliseconds>(Clock::now() - t);
}

// Replies are complete after their last <ETX><CR><LF>: three for ~HS, one for ~HQES.
bool hs_complete(std::string_view s) {
    std::size_t n = 0;
    for (auto p = s.find("\x03\r\n"); p != std::string_view::npos; p = s.find("\x03\r\n", p + 3)) ++n;
    return n >= 3;
}
bool hqes_complete(std::string_view s) { return s.find("\x03\r\n") != std::string_view::npos; }

const std::string kHsOk =
    "\x02" "030,0,0,1218,000,0,0,0,000,0,0,0\x03\r\n"
    "\x02" "001,0,0,0,1,2,6,0,00000000,1,000\x03\r\n"
    "\x02" "1234,0\x03\r\n";

std::string hqes(const std::string& error_field) {
    return "\x02\r\nPRINTER STATUS\r\n   ERRORS:         " + error_field +
           "\r\n   WARNINGS:       0 00000000 00000000\r\n\x03\r\n";
}

// The comma-separated fields of each <STX>...<ETX><CR><LF> string of a ~HS reply.
std::vector<std::vector<std::string>> hs_strings(const std::string& reply) {
    std::vector<std::vector<std::string>> out;
    std::size_t pos = 0;
    while (pos < reply.size()) {
        if (reply[pos] != '\x02') return {};
        const auto end = reply.find("\x03\r\n", pos);
        if (end == std::string::npos) return {};
        std::vector<std::string> fields;
        std::string body = reply.substr(pos + 1, end - pos - 1);
        std::size_t start = 0;
        for (std::size_t c; (c = body.find(',', start)) != std::string::npos; start = c + 1)
            fields.push_back(body.substr(start, c - start));
        fields.push_back(body.substr(start));
        out.push_back(fields);
        pos = end + 3;
    }
    return out;
}

std::string label(const std::string& text) { return "^XA^FO50,50^A0N,40,40^FD" + text + "^FS^XZ"; }

// The interpreter for the simulator: $PRESSLINE_PYTHON, else the system's python3 (a version
// manager's shim in PATH can cost ~0.4 s per start), else python3 from PATH.
std::string python() {
    if (const char* p = std::getenv("PRESSLINE_PYTHON"); p && *p) return p;
    if (::access("/usr/bin/python3", X_OK) == 0) return "/usr/bin/python3";
    return "python3";
}

class TcpDriverTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = std::make_unique<TempDir>("pressline-tcp");
        out_ = dir_->path() / "out";
        control_ = dir_->path() / "control";
        log_ = dir_->path() / "printer.log";
        start_printer();
    }

    void TearDown() override {
        if (printer_.valid() && printer_.running()) {
            printer_.signal(SIGTERM);
            auto st = printer_.wait_for_exit(5s);
            EXPECT_TRUE(st.has_value()) << "the simulator did not stop on SIGTERM";
            if (st) {
                EXPECT_EQ(st->code(), 0) << st->str();
            }
            EXPECT_FALSE(fs::exists(dir_->path() / "pid")) << "pid file left behind";
        }
        if (HasFailure()) {
            std::cerr << "--- simulator log (" << log_ << ") ---\n"
                      << pressline::testing::tail_lines(read_file(log_), 60);
            dir_->keep();
        }
    }

    void start_printer() {
        const fs::path port_file = dir_->path() / "port";
        fs::remove(port_file);
        pressline::testing::SpawnOptions o;
        o.argv = {python(), PRESSLINE_ZPL_PRINTER_SIM, "--port", "0", "--port-file", port_file.string(),
                  "--out", out_.string(), "--control", control_.string(),
                  "--pid-file", (dir_->path() / "pid").string()};
        o.stderr_path = log_;
        printer_ = Process::spawn(o);
        ASSERT_TRUE(poll_until([&] { return fs::exists(port_file); }, 10s, 10ms))
            << "the simulator did not start: " << read_file(log_);
        port_ = static_cast<std::uint16_t>(std::stoi(read_file(port_file)));
    }

    tcp::Endpoint endpoint() const {
        tcp::Endpoint ep;
        ep.host = "127.0.0.1";
        ep.port = port_;
        ep.connect_timeout = 1000ms;
        ep.write_timeout = 3000ms;
        ep.read_timeout = 1000ms;
        return ep;
    }
    std::string host_port() const { return "127.0.0.1:" + std::to_string(port_); }

    // What the simulator reports it has applied (CONTROL/applied).
    std::string applied() const { return read_file(control_ / "applied"); }
    void wait_applied(const std::string& fact) {
        ASSERT_TRUE(poll_until([&] { return applied().find(fact) != std::string::npos; }, 5s, 10ms))
            << "the simulator did not apply " << fact << "; applied: " << applied();
    }
    void set_state(const std::string& s) {
        pressline::testing::write_file(control_ / "state", s + "\n");
        wait_applied("state=" + s + " ");
    }
    void set_flag(const std::string& name, const std::string& content, const std::string& fact) {
        pressline::testing::write_file(control_ / name, content);
        wait_applied(fact);
    }
    void clear_flag(const std::string& name, const std::string& fact) {
        fs::remove(control_ / name);
        wait_applied(fact);
    }

    std::vector<fs::path> printed() const {
        std::vector<fs::path> v;
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(out_, ec))
            if (e.path().extension() == ".zpl" && e.path().filename().string().front() != '.') v.push_back(e.path());
        std::sort(v.begin(), v.end());
        return v;
    }
    bool wait_printed(std::size_t n, milliseconds timeout = 5s) const {
        return poll_until([&] { return printed().size() >= n; }, timeout, 10ms);
    }
    bool log_has(const std::string& s) const { return read_file(log_).find(s) != std::string::npos; }

    std::unique_ptr<TempDir> dir_;
    fs::path out_, control_, log_;
    Process printer_;
    std::uint16_t port_ = 0;
};

TEST_F(TcpDriverTest, LabelBytesArriveExactly) {
    tcp::Client c(endpoint());
    const std::string l = label("Hello 9100");
    auto w = c.write(l);
    ASSERT_TRUE(w) << w.message;
    EXPECT_EQ(w.value.bytes, l.size());
    EXPECT_TRUE(c.connected());
    ASSERT_TRUE(wait_printed(1));
    EXPECT_EQ(read_file(out_ / "0001.zpl"), l);
}

TEST_F(TcpDriverTest, HostStatusGetsThreeStrings) {
    tcp::Client c(endpoint());
    auto r = c.request("~HS", hs_complete);
    ASSERT_TRUE(r) << r.message;
    EXPECT_EQ(r.value, kHsOk);
    const auto s = hs_strings(r.value);
    ASSERT_EQ(s.size(), 3u);
    EXPECT_EQ(s[0].size(), 12u);
    EXPECT_EQ(s[1].size(), 11u);
    EXPECT_EQ(s[2].size(), 2u);
}

TEST_F(TcpDriverTest, SimulatorHqesReplyFormat) {
    tcp::Client c(endpoint());
    auto r = c.request("~HQES", hqes_complete);
    ASSERT_TRUE(r) << r.message;
    EXPECT_EQ(r.value, hqes("0 00000000 00000000"));

    const std::pair<const char*, const char*> cases[] = {{"paper_out", "1 00000000 00000001"},
                                                         {"ribbon_out", "1 00000000 00000002"},
                                                         {"head_open", "1 00000000 00000004"},
                                                         {"paused", "1 00000000 00010000"}};
    for (const auto& [state, field] : cases) {
        set_state(state);
        r = c.request("~HQES", hqes_complete);
        ASSERT_TRUE(r) << r.message;
        EXPECT_EQ(r.value, hqes(field)) << state;
    }
    // ~HS reports the same conditions in its flags: paper out (1/b), pause (1/c), head up (2/o),
    // ribbon out (2/p).
    set_state("head_open");
    r = c.request("~HS", hs_complete);
    ASSERT_TRUE(r) << r.message;
    auto s = hs_strings(r.value);
    ASSERT_EQ(s.size(), 3u);
    EXPECT_EQ(s[1][2], "1");
    EXPECT_EQ(s[1][3], "0");

    // An older printer: ~HQES goes unanswered, ~HS still works.
    set_state("ok");
    set_flag("hqes_unsupported", "", "hqes_unsupported=1");
    r = c.request("~HQES", hqes_complete, 300ms);
    EXPECT_EQ(r.code, tcp::Errc::timeout) << r.message;
    EXPECT_TRUE(r.value.empty());
    r = c.request("~HS", hs_complete);
    ASSERT_TRUE(r) << r.message;
    EXPECT_EQ(r.value, kHsOk);
}

TEST_F(TcpDriverTest, PaperOutHoldsTheLabelUntilOkThenPrintsItOnce) {
    set_state("paper_out");
    tcp::Client c(endpoint());
    const std::string l = label("held");
    ASSERT_TRUE(c.write(l));
    auto r = c.request("~HS", hs_complete);
    ASSERT_TRUE(r) << r.message;
    auto s = hs_strings(r.value);
    ASSERT_EQ(s.size(), 3u);
    EXPECT_EQ(s[0][1], "1") << "paper out flag";
    EXPECT_EQ(s[0][4], "001") << "formats in the buffer";
    std::this_thread::sleep_for(300ms);
    EXPECT_TRUE(printed().empty()) << "printed while out of paper";

    set_state("ok");
    ASSERT_TRUE(wait_printed(1));
    std::this_thread::sleep_for(300ms);
    ASSERT_EQ(printed().size(), 1u);
    EXPECT_EQ(read_file(out_ / "0001.zpl"), l);
    r = c.request("~HS", hs_complete);
    ASSERT_TRUE(r) << r.message;
    EXPECT_EQ(r.value, kHsOk);
}

TEST_F(TcpDriverTest, SilentPrinterTimesOutWithinTheTimeoutAndTheDriverStillWorks) {
    tcp::Client c(endpoint());
    ASSERT_TRUE(c.connect());
    set_flag("silent", "", "silent=1");
    const auto t0 = Clock::now();
    auto r = c.request("~HS", hs_complete, 400ms);
    const auto took = since(t0);
    EXPECT_EQ(r.code, tcp::Errc::timeout) << r.message;
    EXPECT_GE(took, 390ms);
    EXPECT_LT(took, 1500ms);
    EXPECT_NE(r.message.find(host_port()), std::string::npos) << r.message;
    EXPECT_NE(r.message.find("read"), std::string::npos) << r.message;
    EXPECT_TRUE(c.connected()) << "a read timeout keeps the connection";

    clear_flag("silent", "silent=0");
    r = c.request("~HS", hs_complete);
    ASSERT_TRUE(r) << r.message;
    EXPECT_EQ(r.value, kHsOk);
}

TEST_F(TcpDriverTest, RefusedConnectFailsFastNamingHostAndPort) {
    set_flag("refuse", "", "refuse=1");
    tcp::Client c(endpoint());
    const auto t0 = Clock::now();
    auto st = c.connect();
    EXPECT_LT(since(t0), 500ms);
    EXPECT_EQ(st.code, tcp::Errc::refused) << st.message;
    EXPECT_EQ(st.message, "tcp " + host_port() + ": connect: Connection refused");
    EXPECT_FALSE(c.connected());

    auto w = c.write(label("not now"));
    EXPECT_EQ(w.code, tcp::Errc::refused) << w.message;
    EXPECT_EQ(w.value.bytes, 0u);

    clear_flag("refuse", "refuse=0");
    ASSERT_TRUE(c.connect());
    ASSERT_TRUE(c.write(label("now")));
    ASSERT_TRUE(wait_printed(1));
}

TEST_F(TcpDriverTest, DroppedConnectionReportsClosedAndTheNextWriteReconnects) {
    set_flag("drop", "", "drop=all");
    tcp::Client c(endpoint());
    ASSERT_TRUE(c.connect()) << "the kernel completes the handshake before the printer drops it";
    ASSERT_TRUE(poll_until([&] { return log_has("dropped conn=1"); }, 5s, 10ms));
    // request() notices the closed connection and reconnects once; that one is dropped too,
    // so the reply cannot come: closed, not a timeout.
    auto r = c.request("~HS", hs_complete);
    EXPECT_EQ(r.code, tcp::Errc::closed) << r.message;
    EXPECT_NE(r.message.find(host_port()), std::string::npos) << r.message;
    EXPECT_FALSE(c.connected());

    clear_flag("drop", "drop=-");
    const std::string l = label("after the drop");
    auto w = c.write(l);
    ASSERT_TRUE(w) << w.message;
    ASSERT_TRUE(wait_printed(1));
    EXPECT_EQ(read_file(out_ / "0001.zpl"), l);
}

TEST_F(TcpDriverTest, WriteIntoAnIdleConnectionThePrinterClosedReconnectsFirst) {
    tcp::Client c(endpoint());
    ASSERT_TRUE(c.connect());
    set_flag("drop", "", "drop=all");  // closes the open connection too
    ASSERT_TRUE(poll_until([&] { return log_has("dropped (drop) conn=1"); }, 5s, 10ms));
    clear_flag("drop", "drop=-");
    EXPECT_TRUE(c.connected()) << "not noticed yet";
    const std::string l = label("not into the void");
    auto w = c.write(l);
    ASSERT_TRUE(w) << w.message;
    ASSERT_TRUE(wait_printed(1)) << "the label went into the closed connection";
    EXPECT_EQ(read_file(out_ / "0001.zpl"), l);
    EXPECT_TRUE(log_has("accepted conn=2"));
}

TEST_F(TcpDriverTest, DropMidTransferReportsClosedWithBytesSoFar) {
    set_flag("drop", "1000", "drop=1000");
    tcp::Client c(endpoint());
    const std::string big = "^XA^FD" + std::string(32u << 20, 'x') + "^FS^XZ";
    auto w = c.write(big);
    ASSERT_FALSE(w) << "32 MB accepted although the printer closed after 1000 bytes";
    EXPECT_EQ(w.code, tcp::Errc::closed) << w.message;
    EXPECT_GE(w.value.bytes, 1000u);
    EXPECT_LT(w.value.bytes, big.size());
    EXPECT_NE(w.message.find("write"), std::string::npos) << w.message;
    EXPECT_FALSE(c.connected());

    clear_flag("drop", "drop=-");
    const std::string l = label("whole");
    ASSERT_TRUE(c.write(l));
    ASSERT_TRUE(wait_printed(1));
    std::this_thread::sleep_for(200ms);
    ASSERT_EQ(printed().size(), 1u) << "the cut-off format must not print";
    EXPECT_EQ(read_file(out_ / "0001.zpl"), l);
}

TEST_F(TcpDriverTest, StalledPrinterMakesTheWriteTimeOutWithBytesSoFar) {
    set_flag("stall", "", "stall=1");
    auto ep = endpoint();
    ep.write_timeout = 400ms;
    tcp::Client c(ep);
    const std::string big = "^XA^FD" + std::string(64u << 20, 'y') + "^FS^XZ";
    const auto t0 = Clock::now();
    auto w = c.write(big);
    const auto took = since(t0);
    EXPECT_EQ(w.code, tcp::Errc::timeout) << w.message;
    EXPECT_GT(w.value.bytes, 0u);
    EXPECT_LT(w.value.bytes, big.size());
    EXPECT_GE(took, 390ms);
    EXPECT_LT(took, 2000ms);
    EXPECT_FALSE(c.connected()) << "a failed write closes the connection";
    std::cout << "[ info     ] kernel accepted " << w.value.bytes << " bytes before the write timed out\n";

    clear_flag("stall", "stall=0");
    const std::string l = label("after the stall");
    ASSERT_TRUE(c.write(l));
    ASSERT_TRUE(wait_printed(1));
    std::this_thread::sleep_for(200ms);
    ASSERT_EQ(printed().size(), 1u);
    EXPECT_EQ(read_file(out_ / "0001.zpl"), l);
}

TEST_F(TcpDriverTest, ConnectTimesOutOnAListenerWithAFullBacklog) {
    // A loopback listener that never accepts, with backlog 0: once its queue holds one
    // connection, the kernel drops further SYNs and connects hang until their timeout.
    const int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(lfd, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(lfd, 0), 0);
    socklen_t len = sizeof a;
    ASSERT_EQ(::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len), 0);
    std::vector<int> fillers;
    for (int i = 0; i < 2; ++i) {
        const int f = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        (void)::connect(f, reinterpret_cast<sockaddr*>(&a), sizeof a);
        fillers.push_back(f);
    }
    std::this_thread::sleep_for(50ms);

    tcp::Endpoint ep;
    ep.host = "127.0.0.1";
    ep.port = ntohs(a.sin_port);
    ep.connect_timeout = 300ms;
    tcp::Client c(ep);
    const auto t0 = Clock::now();
    auto st = c.connect();
    const auto took = since(t0);
    EXPECT_EQ(st.code, tcp::Errc::timeout) << st.message;
    EXPECT_EQ(st.message, "tcp 127.0.0.1:" + std::to_string(ep.port) + ": connect: no answer within 300 ms");
    EXPECT_GE(took, 290ms);
    EXPECT_LT(took, 1500ms);
    EXPECT_FALSE(c.connected());
    for (int f : fillers) ::close(f);
    ::close(lfd);
}

TEST_F(TcpDriverTest, OneMegabyteLabelArrivesWhole) {
    std::string data;
    data.reserve(1u << 20);
    for (std::size_t i = 0; data.size() < (1u << 20) - 16; ++i) data += static_cast<char>('A' + i % 26);
    const std::string l = "^XA^FD" + data + "^FS^XZ";
    tcp::Client c(endpoint());
    ASSERT_TRUE(c.connect());
    const auto t0 = Clock::now();
    auto w = c.write(l);
    ASSERT_TRUE(w) << w.message;
    EXPECT_EQ(w.value.bytes, l.size());
    c.close();  // a job ends with the connection; the kernel still sends what it holds
    ASSERT_TRUE(wait_printed(1, 10s));
    const auto took = since(t0);
    EXPECT_EQ(read_file(out_ / "0001.zpl"), l);
    std::cout << "[ info     ] " << l.size() << " bytes written and printed in " << took.count() << " ms ("
              << (took.count() > 0 ? static_cast<double>(l.size()) / 1048.576 / static_cast<double>(took.count()) : 0.0)
              << " MB/s)\n";
}

TEST_F(TcpDriverTest, UnreadBytesAreKeptForTheNextRead) {
    tcp::Client c(endpoint());
    ASSERT_TRUE(c.write("~HS~HQES"));
    ASSERT_TRUE(poll_until([&] { return log_has("status ~HQES conn=1 answered"); }, 5s, 10ms));
    auto r1 = c.read(hs_complete);
    ASSERT_TRUE(r1) << r1.message;
    EXPECT_EQ(r1.value, kHsOk) << "only the first reply";
    auto r2 = c.read(hqes_complete);
    ASSERT_TRUE(r2) << r2.message;
    EXPECT_EQ(r2.value, hqes("0 00000000 00000000"));
    auto r3 = c.read(hs_complete, 100ms);
    EXPECT_EQ(r3.code, tcp::Errc::timeout);
    EXPECT_TRUE(r3.value.empty());
}

TEST_F(TcpDriverTest, StatusQueryInsideAFormatIsAnsweredAndNotPrinted) {
    tcp::Client c(endpoint());
    auto r = c.request("^XA^FO10,10^FDone~HS^FS^XZ", hs_complete);
    ASSERT_TRUE(r) << r.message;
    auto s = hs_strings(r.value);
    ASSERT_EQ(s.size(), 3u);
    EXPECT_EQ(s[0][7], "1") << "partial format in progress";
    ASSERT_TRUE(wait_printed(1));
    EXPECT_EQ(read_file(out_ / "0001.zpl"), "^XA^FO10,10^FDone^FS^XZ");
}

TEST_F(TcpDriverTest, HostNameIsResolvedAndConcurrentClientsWork) {
    auto ep = endpoint();
    ep.host = "localhost";  // /etc/hosts; no DNS server is asked
    tcp::Client a(ep), b(endpoint());
    ASSERT_TRUE(a.connect()) << a.connect().message;
    ASSERT_TRUE(b.connect());
    ASSERT_TRUE(a.write("^XA^FDa"));
    auto r = a.request("~HS", hs_complete);  // answered once the printer has read a's bytes
    ASSERT_TRUE(r) << r.message;
    ASSERT_EQ(hs_strings(r.value).size(), 3u);
    EXPECT_EQ(hs_strings(r.value)[0][7], "1") << "partial format in progress";
    ASSERT_TRUE(b.write(label("b")));  // while a's format is still open
    ASSERT_TRUE(wait_printed(1));
    ASSERT_TRUE(a.write("^FS^XZ"));
    ASSERT_TRUE(wait_printed(2));
    EXPECT_EQ(read_file(out_ / "0001.zpl"), label("b"));
    EXPECT_EQ(read_file(out_ / "0002.zpl"), "^XA^FDa^FS^XZ");
}

TEST_F(TcpDriverTest, ErrorsAreValuesWithTheirCategory) {
    tcp::Endpoint ep;
    ep.host = "";
    tcp::Client c(ep);
    auto st = c.connect();
    EXPECT_EQ(st.code, tcp::Errc::resolve);
    EXPECT_STREQ(st.code.category().name(), "pressline.tcp");
    EXPECT_EQ(st.message, "tcp :9100: resolve: no host name given");

    tcp::Client d(endpoint());
    auto r = d.read(hs_complete);
    EXPECT_EQ(r.code, tcp::Errc::closed);
    EXPECT_EQ(r.message, "tcp " + host_port() + ": read: not connected");
    EXPECT_EQ(tcp::make_error_code(tcp::Errc::timeout).message(), "timed out");
}

}  // namespace
