// The label Printer device against real transports:
//   - ZPL over TCP against the simulated ZPL printer (tools/sim/pressline-zpl-printer), one
//     child process per test on a free loopback port, steered through its control directory;
//   - ZPL over USB against emulated printers under umockdev (tests/drivers/usb/fake_printer.hpp,
//     real libusb): built as it_label_printer_usb with PRESSLINE_LABEL_USB_TESTS, run with
//     LD_PRELOAD=libumockdev-preload.so.0 (set by CTest);
//   - PDF to a CUPS queue of a private cupsd with ippeveprinter (tests/fixtures/cups/cups.sh).
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "pressline/devices/label/printer.hpp"
#include "pressline/testing/util.hpp"

#ifdef PRESSLINE_LABEL_USB_TESTS
#include "fake_printer.hpp"
#include "pressline/drivers/usb.hpp"
#else
#include "pressline/testing/cups.hpp"
#include "pressline/testing/process.hpp"
#endif

namespace {

namespace fs = std::filesystem;
namespace label = pressline::devices::label;
using namespace std::chrono_literals;
using label::Delivery;
using label::State;
using pressline::testing::poll_until;
using pressline::testing::read_file;
using pressline::testing::TempDir;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using Reasons = std::vector<std::string>;

milliseconds since(Clock::time_point t) { return std::chrono::duration_cast<milliseconds>(Clock::now() - t); }

std::string zpl_label(const std::string& text) {
    return "^XA^PW812^LL1218^FO50,50^A0N,40,40^FD" + text + "^FS^BY3^FO50,120^BCN,100,Y,N,N^FD1Z999AA10123456784^FS^XZ";
}

// Readable expectations: the state name and the reasons.
std::string show(const label::Status& s) {
    std::string r = std::string(label::to_string(s.state)) + " [";
    for (std::size_t i = 0; i < s.reasons.size(); ++i) r += (i ? "," : "") + s.reasons[i];
    return r + "] " + s.message;
}
std::string show(const label::SendResult& r) {
    return std::string(label::to_string(r.delivery)) + " reason=" + r.reason + " bytes=" + std::to_string(r.bytes) +
           " job=" + r.device_job + ": " + r.message;
}

#ifndef PRESSLINE_LABEL_USB_TESTS

using pressline::testing::Process;

// A port on 127.0.0.1 nobody listens on.
std::uint16_t closed_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

// ---- settings that no transport can serve ---------------------------------------------------

TEST(LabelSettings, MisconfiguredPrinterSaysWhyAndSendsNothing) {
    struct Case {
        label::Settings s;
        std::string why;
    };
    std::vector<Case> cases;
    label::Settings s;
    s.name = "lbl-x";
    s.connection = "serial";
    cases.push_back({s, "unknown connection \"serial\""});
    s.connection = "tcp";
    s.host = "127.0.0.1";
    s.language = label::Language::pdf;
    cases.push_back({s, "pdf labels need a cups connection"});
    s.language = label::Language::zpl;
    s.status_query = "sgd";
    cases.push_back({s, "unknown status_query \"sgd\""});
    s.status_query = "auto";
    s.host.clear();
    cases.push_back({s, "tcp connection without a host"});
    s.connection = "usb";
    cases.push_back({s, "usb connection without a USB context"});
    s.connection = "cups";
    cases.push_back({s, "cups connection without a queue"});
    for (const auto& c : cases) {
        SCOPED_TRACE(c.why);
        auto p = label::make_printer(c.s);
        ASSERT_TRUE(p);
        EXPECT_EQ(p->name(), "lbl-x");
        const auto st = p->status();
        EXPECT_EQ(st.state, State::error) << show(st);
        EXPECT_EQ(st.reasons, Reasons{"misconfigured"});
        EXPECT_NE(st.message.find(c.why), std::string::npos) << st.message;
        EXPECT_NE(st.message.find("label printer lbl-x"), std::string::npos) << st.message;
        const auto r = p->send(zpl_label("x"), "pressline:L-1:1");
        EXPECT_EQ(r.delivery, Delivery::not_sent) << show(r);
        EXPECT_EQ(r.reason, "misconfigured");
    }
}

// ---- ZPL over TCP against the simulator -----------------------------------------------------

// The simulated ZPL printer, a child process on a free loopback port, steered through its
// control directory.
class ZplSim {
public:
    explicit ZplSim(const fs::path& dir) : out_(dir / "out"), control_(dir / "control"), log_(dir / "printer.log") {
        fs::create_directories(dir);
        const fs::path port_file = dir / "port";
        pressline::testing::SpawnOptions o;
        o.argv = {PRESSLINE_ZPL_PRINTER_SIM, "--port", "0", "--port-file", port_file.string(), "--out",
                  out_.string(), "--control", control_.string()};
        o.stderr_path = log_;
        proc_ = Process::spawn(o);
        if (poll_until([&] { return fs::exists(port_file); }, 10s, 10ms))
            port_ = static_cast<std::uint16_t>(std::stoi(read_file(port_file)));
    }
    ~ZplSim() {
        if (proc_.valid() && proc_.running()) {
            proc_.signal(SIGTERM);
            (void)proc_.wait_for_exit(5s);
        }
    }
    ZplSim(const ZplSim&) = delete;
    ZplSim& operator=(const ZplSim&) = delete;

    std::uint16_t port() const { return port_; }  // 0: did not start
    std::string log() const { return read_file(log_); }

    std::string applied() const { return read_file(control_ / "applied"); }
    ::testing::AssertionResult wait_applied(const std::string& fact) const {
        if (poll_until([&] { return applied().find(fact) != std::string::npos; }, 5s, 10ms))
            return ::testing::AssertionSuccess();
        return ::testing::AssertionFailure() << "the simulator did not apply " << fact << "; applied: " << applied();
    }
    ::testing::AssertionResult set_state(const std::string& s) const {
        pressline::testing::write_file(control_ / "state", s + "\n");
        return wait_applied("state=" + s + " ");
    }
    ::testing::AssertionResult set_flag(const std::string& name, const std::string& content,
                                        const std::string& fact) const {
        pressline::testing::write_file(control_ / name, content);
        return wait_applied(fact);
    }
    ::testing::AssertionResult clear_flag(const std::string& name, const std::string& fact) const {
        fs::remove(control_ / name);
        return wait_applied(fact);
    }
    // The formats it printed, in order.
    std::vector<fs::path> printed() const {
        std::vector<fs::path> v;
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(out_, ec))
            if (e.path().extension() == ".zpl" && e.path().filename().string().front() != '.') v.push_back(e.path());
        std::sort(v.begin(), v.end());
        return v;
    }
    bool wait_printed(std::size_t n) const {
        return poll_until([&] { return printed().size() >= n; }, 20s, 10ms);
    }

private:
    fs::path out_, control_, log_;
    Process proc_;
    std::uint16_t port_ = 0;
};

class LabelTcp : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_NE(sim_.port(), 0) << "the simulator did not start: " << sim_.log();
        port_ = sim_.port();
    }
    void TearDown() override {
        if (HasFailure()) std::cerr << "--- simulator log ---\n" << pressline::testing::tail_lines(sim_.log(), 40);
    }

    label::Settings settings() const {
        label::Settings s;
        s.name = "lbl-tcp";
        s.connection = "tcp";
        s.host = "127.0.0.1";
        s.port = port_;
        s.connect_timeout = 1000ms;
        s.write_timeout = 3000ms;
        // Roomy: the simulator is a Python process, slow to answer on a loaded 2-core CI machine
        // (300 ms made healthy printers look unresponsive there).
        s.status_timeout = 1500ms;
        return s;
    }
    std::unique_ptr<label::Printer> printer(label::Settings s) { return label::make_printer(std::move(s)); }
    std::unique_ptr<label::Printer> printer() { return printer(settings()); }

    std::string applied() const { return sim_.applied(); }
    void set_state(const std::string& s) { ASSERT_TRUE(sim_.set_state(s)); }
    void set_flag(const std::string& name, const std::string& content, const std::string& fact) {
        ASSERT_TRUE(sim_.set_flag(name, content, fact));
    }
    void clear_flag(const std::string& name, const std::string& fact) { ASSERT_TRUE(sim_.clear_flag(name, fact)); }
    std::vector<fs::path> printed() const { return sim_.printed(); }
    bool wait_printed(std::size_t n) const { return sim_.wait_printed(n); }
    std::string where() const { return "tcp 127.0.0.1:" + std::to_string(port_); }

    TempDir dir_{"pressline-label"};
    ZplSim sim_{dir_.path()};
    std::uint16_t port_ = 0;
};

TEST_F(LabelTcp, ReadyPrinterIsIdle) {
    auto p = printer();
    const auto s = p->status();
    EXPECT_EQ(s.state, State::idle) << show(s);
    EXPECT_EQ(s.reasons, Reasons{});
    EXPECT_TRUE(s.ready());
    EXPECT_NE(s.message.find("~HQES+~HS"), std::string::npos) << "auto asks both: " << s.message;
}

TEST_F(LabelTcp, FaultsAreErrorsWithTheirReasons) {
    auto p = printer();
    const std::pair<const char*, const char*> cases[] = {
        {"paper_out", "media-empty"}, {"head_open", "head-open"}, {"ribbon_out", "ribbon-out"}};
    for (const auto& [state, reason] : cases) {
        SCOPED_TRACE(state);
        set_state(state);
        const auto s = p->status();
        EXPECT_EQ(s.state, State::error) << show(s);
        EXPECT_EQ(s.reasons, Reasons{reason}) << show(s);
        EXPECT_FALSE(s.ready());
    }
    set_state("ok");
    EXPECT_EQ(p->status().state, State::idle);
}

TEST_F(LabelTcp, PausedPrinterIsPaused) {
    auto p = printer();
    set_state("paused");
    auto s = p->status();
    EXPECT_EQ(s.state, State::paused) << show(s);
    EXPECT_EQ(s.reasons, Reasons{"paused"});
    EXPECT_FALSE(s.ready());

    // ~HS alone sees the pause too (~HQES alone is not asked to).
    auto l = settings();
    l.status_query = "hs";
    s = printer(l)->status();
    EXPECT_EQ(s.state, State::paused) << show(s);
    EXPECT_EQ(s.reasons, Reasons{"paused"});
}

TEST_F(LabelTcp, FormatsHeldWhilePausedAreCounted) {
    auto p = printer();
    set_state("paused");
    ASSERT_EQ(p->send(zpl_label("held"), "pressline:L-1:1").delivery, Delivery::delivered);
    ASSERT_TRUE(poll_until([&] { return applied().find("buffered=1") != std::string::npos; }, 5s, 10ms))
        << applied();
    const auto s = p->status();
    EXPECT_EQ(s.state, State::paused) << "paused wins over a busy buffer: " << show(s);
    EXPECT_TRUE(printed().empty());
    set_state("ok");
    ASSERT_TRUE(wait_printed(1));
    EXPECT_EQ(read_file(printed()[0]), zpl_label("held"));
}

TEST_F(LabelTcp, SilentPrinterIsUnresponsiveWithinTheTimeouts) {
    auto p = printer();
    set_flag("silent", "", "silent=1");
    const auto t0 = Clock::now();
    const auto s = p->status();
    const auto took = since(t0);
    EXPECT_EQ(s.state, State::unresponsive) << show(s);
    EXPECT_EQ(s.reasons, Reasons{"unresponsive"});
    EXPECT_NE(s.message.find("lbl-tcp"), std::string::npos) << s.message;
    EXPECT_NE(s.message.find("no answer"), std::string::npos) << s.message;
    EXPECT_GE(took, 3000ms) << "auto waits for ~HQES and then ~HS";
    EXPECT_LT(took, 6000ms);

    // A silent printer is not mistaken for one without ~HQES: once it answers again, both are
    // asked.
    clear_flag("silent", "silent=0");
    const auto again = p->status();
    EXPECT_EQ(again.state, State::idle) << show(again);
    EXPECT_NE(again.message.find("~HQES+~HS"), std::string::npos) << again.message;
}

TEST_F(LabelTcp, RefusedConnectionIsOffline) {
    auto p = printer();
    set_flag("refuse", "", "refuse=1");
    const auto s = p->status();
    EXPECT_EQ(s.state, State::offline) << show(s);
    EXPECT_EQ(s.reasons, Reasons{"offline"});
    EXPECT_NE(s.message.find("label printer lbl-tcp (zpl over " + where() + ")"), std::string::npos) << s.message;
    EXPECT_NE(s.message.find("Connection refused"), std::string::npos) << s.message;
    clear_flag("refuse", "refuse=0");
    EXPECT_EQ(p->status().state, State::idle);
}

TEST_F(LabelTcp, NothingListeningIsOffline) {
    auto l = settings();
    l.port = closed_port();
    const auto s = printer(l)->status();
    EXPECT_EQ(s.state, State::offline) << show(s);
    EXPECT_EQ(s.reasons, Reasons{"offline"});
}

TEST_F(LabelTcp, PrinterWithoutHqesFallsBackToHsAndRemembers) {
    set_flag("hqes_unsupported", "", "hqes_unsupported=1");
    set_state("paper_out");
    auto p = printer();
    auto s = p->status();
    EXPECT_EQ(s.state, State::error) << show(s);
    EXPECT_EQ(s.reasons, Reasons{"media-empty"});
    EXPECT_NE(s.message.find("~HS"), std::string::npos) << s.message;

    // Remembered: the next poll asks ~HS only and does not wait for ~HQES first.
    set_state("paused");
    const auto t0 = Clock::now();
    s = p->status();
    EXPECT_LT(since(t0), 1200ms) << "waited for ~HQES again (status_timeout 1500 ms)";
    EXPECT_EQ(s.state, State::paused) << show(s);
    EXPECT_EQ(s.reasons, Reasons{"paused"});
    set_state("ok");
    EXPECT_EQ(p->status().state, State::idle);
}

TEST_F(LabelTcp, HqesOnlyModeReadsErrors) {
    auto l = settings();
    l.status_query = "hqes";
    auto p = printer(l);
    set_state("head_open");
    const auto s = p->status();
    EXPECT_EQ(s.state, State::error) << show(s);
    EXPECT_EQ(s.reasons, Reasons{"head-open"});

    set_flag("hqes_unsupported", "", "hqes_unsupported=1");
    const auto none = p->status();
    EXPECT_EQ(none.state, State::unresponsive) << "hqes mode never falls back: " << show(none);
}

TEST_F(LabelTcp, NoneModeKnowsOnlyTheConnection) {
    auto l = settings();
    l.status_query = "none";
    auto p = printer(l);
    set_state("paper_out");
    EXPECT_EQ(p->status().state, State::idle) << "status_query none asks nothing";
    set_flag("refuse", "", "refuse=1");
    EXPECT_EQ(p->status().state, State::offline);
}

TEST_F(LabelTcp, SentLabelArrivesByteForByte) {
    auto p = printer();
    ASSERT_EQ(p->status().state, State::idle);  // a status poll before, as the agent does
    const std::string doc = zpl_label("Pressline ORD-1001") + "\r\n" + zpl_label("second format");
    const auto r = p->send(doc, "pressline:L-1:1");
    ASSERT_EQ(r.delivery, Delivery::delivered) << show(r);
    EXPECT_EQ(r.bytes, doc.size());
    EXPECT_EQ(r.reason, "");
    ASSERT_TRUE(wait_printed(2));
    const auto files = printed();
    ASSERT_EQ(files.size(), 2u);
    EXPECT_EQ(read_file(files[0]) + "\r\n" + read_file(files[1]), doc);
    // find() cannot look a document up on a raw port.
    const auto f = p->find("pressline:L-1:1");
    EXPECT_EQ(f.delivery, Delivery::uncertain) << show(f);
}

TEST_F(LabelTcp, RefusedSendIsNotSent) {
    auto p = printer();
    set_flag("refuse", "", "refuse=1");
    const auto r = p->send(zpl_label("nope"), "pressline:L-2:1");
    EXPECT_EQ(r.delivery, Delivery::not_sent) << show(r);
    EXPECT_EQ(r.reason, "refused");
    EXPECT_EQ(r.bytes, 0u);
    EXPECT_NE(r.message.find("lbl-tcp"), std::string::npos) << r.message;
    EXPECT_NE(r.message.find(where()), std::string::npos) << r.message;
    clear_flag("refuse", "refuse=0");
    // Safe to send again: it prints once.
    ASSERT_EQ(p->send(zpl_label("nope"), "pressline:L-2:1").delivery, Delivery::delivered);
    ASSERT_TRUE(wait_printed(1));
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(printed().size(), 1u);
}

TEST_F(LabelTcp, DropMidTransferIsUncertain) {
    auto p = printer();
    set_flag("drop", "1000", "drop=1000");
    const std::string big = "^XA^FO0,0^GFA,1,1,1,:" + std::string(16u << 20, 'F') + "^FS^XZ";
    const auto r = p->send(big, "pressline:L-3:1");
    EXPECT_EQ(r.delivery, Delivery::uncertain) << show(r);
    EXPECT_EQ(r.reason, "interrupted");
    EXPECT_GE(r.bytes, 1000u);
    EXPECT_LT(r.bytes, big.size());
    EXPECT_NE(r.message.find("interrupted after"), std::string::npos) << r.message;
    EXPECT_NE(r.message.find("(closed)"), std::string::npos) << "names the transport's code: " << r.message;
    clear_flag("drop", "drop=-");
    std::this_thread::sleep_for(200ms);
    EXPECT_TRUE(printed().empty()) << "the cut-off format must not print";
}

TEST_F(LabelTcp, StalledPrinterTimesOutWithBytesSoFar) {
    auto l = settings();
    l.write_timeout = 400ms;
    auto p = printer(l);
    set_flag("stall", "", "stall=1");
    const std::string big = "^XA^FO0,0^GFA,1,1,1,:" + std::string(64u << 20, 'F') + "^FS^XZ";
    const auto t0 = Clock::now();
    const auto r = p->send(big, "pressline:L-4:1");
    EXPECT_LT(since(t0), 3000ms);
    EXPECT_EQ(r.delivery, Delivery::uncertain) << show(r);
    EXPECT_GT(r.bytes, 0u);
    EXPECT_NE(r.message.find("(timeout)"), std::string::npos) << r.message;
}

// ---- CUPS -------------------------------------------------------------------------------------

// A valid one-page PDF of 4 x 6 in with one line of text.
std::string tiny_pdf(const std::string& text) {
    const std::string content = "BT /F1 24 Tf 36 360 Td (" + text + ") Tj ET";
    const std::vector<std::string> objs = {
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 288 432] /Resources << /Font << /F1 4 0 R >> >> "
        "/Contents 5 0 R >>",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        "<< /Length " + std::to_string(content.size()) + " >>\nstream\n" + content + "\nendstream",
    };
    std::string pdf = "%PDF-1.4\n";
    std::vector<std::size_t> offsets;
    for (std::size_t i = 0; i < objs.size(); ++i) {
        offsets.push_back(pdf.size());
        pdf += std::to_string(i + 1) + " 0 obj\n" + objs[i] + "\nendobj\n";
    }
    const std::size_t xref = pdf.size();
    pdf += "xref\n0 " + std::to_string(objs.size() + 1) + "\n0000000000 65535 f \n";
    for (auto o : offsets) {
        char line[24];
        std::snprintf(line, sizeof line, "%010zu 00000 n \n", o);
        pdf += line;
    }
    pdf += "trailer\n<< /Size " + std::to_string(objs.size() + 1) + " /Root 1 0 R >>\nstartxref\n" +
           std::to_string(xref) + "\n%%EOF\n";
    return pdf;
}

class LabelCups : public ::testing::Test {
protected:
    void SetUp() override { cups_.start(); }
    void TearDown() override {
        if (HasFailure())
            std::cerr << "--- cupsd error_log (tail)\n"
                      << pressline::testing::tail_lines(read_file(cups_.error_log()), 30) << "\n";
    }
    label::Settings settings() const {
        label::Settings s;
        s.name = "lbl-pdf";
        s.connection = "cups";
        s.language = label::Language::pdf;
        s.server = cups_.server();
        s.queue = "labels";
        s.connect_timeout = 5000ms;
        return s;
    }

    TempDir tmp_{"pressline-label-cups"};
    pressline::testing::CupsServer cups_{tmp_.path(), {"labels"}};
};

TEST_F(LabelCups, PdfLabelIsPrintedAndFoundByName) {
    auto p = label::make_printer(settings());
    const auto st = p->status();
    EXPECT_EQ(st.state, State::idle) << show(st);

    const std::string pdf = tiny_pdf("ORD-1001 1Z999AA10123456784");
    const auto r = p->send(pdf, "pressline:label:ORD-1001:1");
    ASSERT_EQ(r.delivery, Delivery::delivered) << show(r);
    EXPECT_EQ(r.bytes, pdf.size());
    ASSERT_FALSE(r.device_job.empty());
    EXPECT_GT(std::stoi(r.device_job), 0);

    ASSERT_TRUE(cups_.wait_documents("labels", 1, 20s));
    const auto docs = cups_.documents("labels");
    ASSERT_EQ(docs.size(), 1u);
    EXPECT_EQ(docs[0].filename().string(), "0001-pressline_label_ORD-1001_1.pdf");
    EXPECT_EQ(read_file(docs[0]).rfind("%PDF-", 0), 0u) << "a PDF reached the printer";

    const auto f = p->find("pressline:label:ORD-1001:1");
    EXPECT_EQ(f.delivery, Delivery::delivered) << show(f);
    EXPECT_EQ(f.device_job, r.device_job);
    // Exact names only: CUPS is asked by prefix, and a prefix of a name is another document.
    const auto other = p->find("pressline:label:ORD-1001");
    EXPECT_EQ(other.delivery, Delivery::not_sent) << show(other);
    EXPECT_EQ(other.reason, "unknown_job");
    const auto unknown = p->find("pressline:label:ORD-9999:1");
    EXPECT_EQ(unknown.delivery, Delivery::not_sent) << show(unknown);
    EXPECT_EQ(unknown.device_job, "");
}

TEST_F(LabelCups, PrinterFaultIsAnErrorWhileTheJobWaits) {
    auto p = label::make_printer(settings());
    cups_.set_fault("labels", "media-empty");
    ASSERT_EQ(p->send(tiny_pdf("jam"), "pressline:label:ORD-2:1").delivery, Delivery::delivered);
    label::Status st;
    EXPECT_TRUE(poll_until([&] {
        st = p->status();
        return st.state == State::error;
    }, 20s, 100ms)) << show(st);
    EXPECT_NE(std::find(st.reasons.begin(), st.reasons.end(), "media-empty"), st.reasons.end()) << show(st);
    cups_.clear_fault("labels");
    ASSERT_TRUE(cups_.wait_documents("labels", 1, 20s));
}

TEST_F(LabelCups, ZplThroughARawQueueArrivesByteForByte) {
    // A raw queue (no PPD, no filters) whose socket backend feeds the simulated ZPL printer: a
    // ZPL printer on the network behind CUPS.
    ZplSim sim(tmp_.path() / "zpl");
    ASSERT_NE(sim.port(), 0) << sim.log();
    const auto add = pressline::testing::run_command(
        {"lpadmin", "-h", cups_.server(), "-p", "zplraw", "-E", "-v",
         "socket://127.0.0.1:" + std::to_string(sim.port())},
        10s);
    ASSERT_EQ(add.status.code(), 0) << add.out << add.err;
    for (const char* cmd : {"cupsenable", "cupsaccept"}) {
        const auto r = pressline::testing::run_command({cmd, "-h", cups_.server(), "zplraw"}, 10s);
        ASSERT_EQ(r.status.code(), 0) << cmd << ": " << r.out << r.err;
    }
    auto s = settings();
    s.name = "lbl-zpl";
    s.language = label::Language::zpl;
    s.queue = "zplraw";
    auto p = label::make_printer(s);
    const std::string doc = zpl_label("via CUPS") + "\r\n" + zpl_label("second");
    const auto r = p->send(doc, "pressline:label:ORD-4:1");
    ASSERT_EQ(r.delivery, Delivery::delivered) << show(r);
    ASSERT_TRUE(sim.wait_printed(2)) << sim.log();
    const auto files = sim.printed();
    ASSERT_EQ(files.size(), 2u);
    EXPECT_EQ(read_file(files[0]) + "\r\n" + read_file(files[1]), doc) << "CUPS passed the ZPL through unchanged";
    EXPECT_EQ(p->find("pressline:label:ORD-4:1").delivery, Delivery::delivered);
}

TEST(LabelCupsUnreachable, OfflineNotSentAndUncertain) {
    label::Settings s;
    s.name = "lbl-pdf";
    s.connection = "cups";
    s.language = label::Language::pdf;
    s.server = "127.0.0.1:" + std::to_string(closed_port());
    s.queue = "labels";
    s.connect_timeout = 1000ms;
    auto p = label::make_printer(s);
    const auto st = p->status();
    EXPECT_EQ(st.state, State::offline) << show(st);
    EXPECT_EQ(st.reasons, Reasons{"offline"});
    EXPECT_NE(st.message.find("label printer lbl-pdf (pdf over cups " + s.server + " queue labels)"),
              std::string::npos)
        << st.message;
    const auto r = p->send(tiny_pdf("x"), "pressline:label:ORD-3:1");
    EXPECT_EQ(r.delivery, Delivery::not_sent) << show(r);
    EXPECT_EQ(r.reason, "offline");
    const auto f = p->find("pressline:label:ORD-3:1");
    EXPECT_EQ(f.delivery, Delivery::uncertain) << "cannot tell without the spooler: " << show(f);
}

#else  // PRESSLINE_LABEL_USB_TESTS

// ---- ZPL over USB under umockdev ---------------------------------------------------------------

namespace usb = pressline::drivers::usb;
using pressline::testing::usb::FakePrinter;
using pressline::testing::usb::FakePrinterSpec;
using pressline::testing::usb::FakeUsbBus;
using pressline::testing::usb::zebra_host_status;

const std::string STX = "\x02", ETX = "\x03";
std::string hs(const std::string& s1, const std::string& s2) {
    return STX + s1 + ETX + "\r\n" + STX + s2 + ETX + "\r\n" + STX + "1234,0" + ETX + "\r\n";
}
const std::string kS1 = "030,0,0,1245,000,0,0,0,000,0,0,0";
const std::string kS2 = "000,0,0,0,1,2,6,0,00000000,1,000";

class LabelUsb : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(FakeUsbBus::preloaded()) << "run with LD_PRELOAD=libumockdev-preload.so.0 (ctest sets it)";
        bus_ = std::make_unique<FakeUsbBus>();
        FakePrinterSpec spec;
        spec.serial = "ZBR0001";
        fake_ = &bus_->add(spec);
        ctx_ = std::make_unique<usb::Context>();
    }
    void TearDown() override {
        printer_.reset();
        ctx_.reset();  // the libusb context goes before the testbed
        bus_.reset();
    }
    label::Settings settings() const {
        label::Settings s;
        s.name = "lbl-usb";
        s.connection = "usb";
        s.vendor_id = 0x0a5f;
        s.product_id = 0x0120;
        s.serial = "ZBR0001";
        s.write_timeout = 1000ms;
        s.status_timeout = 300ms;
        return s;
    }
    label::Printer& printer(label::Settings s) {
        printer_ = label::make_printer(std::move(s), ctx_.get());
        return *printer_;
    }
    label::Printer& printer() { return printer(settings()); }

    std::unique_ptr<FakeUsbBus> bus_;
    FakePrinter* fake_ = nullptr;
    std::unique_ptr<usb::Context> ctx_;
    std::unique_ptr<label::Printer> printer_;
};

TEST_F(LabelUsb, StatusFromHsWhenHqesGetsNoAnswer) {
    auto& p = printer();
    // The emulated printer answers ~HS only: auto falls back after one unanswered ~HQES.
    auto s = p.status();
    EXPECT_EQ(s.state, State::idle) << show(s);
    EXPECT_EQ(s.reasons, Reasons{});
    EXPECT_NE(s.message.find("~HS"), std::string::npos) << s.message;
    const std::string asked = fake_->received();
    EXPECT_NE(asked.find("~HQES"), std::string::npos) << asked;
    EXPECT_NE(asked.find("~HS"), std::string::npos) << asked;

    fake_->clear_received();
    fake_->set_reply("~HS", hs("030,1,1,1245,000,0,0,0,000,0,0,0", kS2));
    const auto t0 = Clock::now();
    s = p.status();
    EXPECT_LT(since(t0), 300ms) << "remembered: ~HQES is not asked again";
    EXPECT_EQ(fake_->received(), "~HS");
    EXPECT_EQ(s.state, State::error) << show(s);
    EXPECT_EQ(s.reasons, (Reasons{"media-empty", "paused"}));
}

TEST_F(LabelUsb, FormatsInTheBufferMeanPrinting) {
    fake_->set_reply("~HS", hs("030,0,0,1245,002,0,0,0,000,0,0,0", "000,0,0,0,1,2,6,0,00000003,1,000"));
    auto l = settings();
    l.status_query = "hs";
    const auto s = printer(l).status();
    EXPECT_EQ(s.state, State::printing) << show(s);
    EXPECT_TRUE(s.ready());
}

TEST_F(LabelUsb, HqesAndHsTogether) {
    // The emulated printer answers one trigger (~HS); the ~HQES answer is queued before it is
    // asked, so it is what the first read gets.
    fake_->set_reply("~HS", hs("030,0,1,1245,000,0,0,0,000,0,0,0", kS2));
    fake_->push_in(STX + "\r\n  PRINTER STATUS\r\n   ERRORS:         1 00000000 00000006\r\n"
                         "   WARNINGS:       1 00000000 00000008\r\n" + ETX + "\r\n");
    const auto s = printer().status();
    EXPECT_EQ(s.state, State::error) << show(s);
    EXPECT_EQ(s.reasons, (Reasons{"paused", "head-open", "ribbon-out", "media-low-warning"}));
}

TEST_F(LabelUsb, GarbledReplyIsAnErrorNamingThePart) {
    fake_->set_reply("~HS", hs("030,0,0,1245,000,0,0,0,000", kS2));
    auto l = settings();
    l.status_query = "hs";
    const auto s = printer(l).status();
    EXPECT_EQ(s.state, State::error) << show(s);
    EXPECT_EQ(s.reasons, Reasons{"status-unreadable"});
    EXPECT_NE(s.message.find("~HS string 1: expected 12 fields, got 9"), std::string::npos) << s.message;
}

TEST_F(LabelUsb, SilentPrinterIsUnresponsive) {
    fake_->set_silent(true);
    const auto s = printer().status();
    EXPECT_EQ(s.state, State::unresponsive) << show(s);
    EXPECT_EQ(s.reasons, Reasons{"unresponsive"});
}

TEST_F(LabelUsb, SentLabelArrivesByteForByte) {
    auto& p = printer();
    ASSERT_EQ(p.status().state, State::idle);
    fake_->clear_received();
    std::string doc;
    for (int i = 0; doc.size() < 100000; ++i) doc += zpl_label("label " + std::to_string(i)) + "\n";
    const auto r = p.send(doc, "pressline:L-1:1");
    ASSERT_EQ(r.delivery, Delivery::delivered) << show(r);
    EXPECT_EQ(r.bytes, doc.size());
    EXPECT_EQ(fake_->received(), doc);
    EXPECT_EQ(p.find("pressline:L-1:1").delivery, Delivery::uncertain);
}

TEST_F(LabelUsb, UnpluggedPrinterIsOfflineAndGetsNothing) {
    auto& p = printer();
    ASSERT_EQ(p.status().state, State::idle);
    fake_->unplug();
    const auto s = p.status();
    EXPECT_EQ(s.state, State::offline) << show(s);
    EXPECT_EQ(s.reasons, Reasons{"offline"});
    EXPECT_NE(s.message.find("label printer lbl-usb (zpl over usb 0a5f:0120 serial ZBR0001)"), std::string::npos)
        << s.message;
    const auto r = p.send(zpl_label("lost"), "pressline:L-2:1");
    EXPECT_EQ(r.delivery, Delivery::not_sent) << show(r);
    EXPECT_EQ(r.reason, "offline");
    EXPECT_EQ(r.bytes, 0u);

    fake_->replug();
    fake_->clear_received();
    ASSERT_TRUE(poll_until([&] { return p.status().state == State::idle; }, 5s, 100ms));
    ASSERT_EQ(p.send(zpl_label("back"), "pressline:L-2:1").delivery, Delivery::delivered);
    EXPECT_NE(fake_->received().find(zpl_label("back")), std::string::npos);
}

TEST_F(LabelUsb, PulledMidTransferIsUncertain) {
    auto& p = printer();
    ASSERT_EQ(p.status().state, State::idle);
    fake_->fail_after(40000);
    const std::string doc = "^XA^FO0,0^GFA,1,1,1,:" + std::string(200000, 'F') + "^FS^XZ";
    const auto r = p.send(doc, "pressline:L-3:1");
    EXPECT_EQ(r.delivery, Delivery::uncertain) << show(r);
    EXPECT_EQ(r.reason, "interrupted");
    EXPECT_GT(r.bytes, 0u);
    EXPECT_LT(r.bytes, doc.size());
    EXPECT_NE(r.message.find("(gone)"), std::string::npos) << r.message;
}

#endif  // PRESSLINE_LABEL_USB_TESTS

}  // namespace
