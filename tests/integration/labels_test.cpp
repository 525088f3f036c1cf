// Tickets and shipping labels end to end, with the real binary, a private mosquitto, a private
// cupsd with an ippeveprinter DTG printer (and a PDF label queue), and the simulated ZPL label
// printer tools/sim/pressline-zpl-printer on 127.0.0.1: a released attempt gets its ticket, an
// order gets one label after its last item, a label printer out of paper makes the label wait,
// a crash after sending never prints twice, a ticket printer fault never stops the garment.
// (What the labels look like to a scanner is tested in tests/devices/label.)
#include <signal.h>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <fstream>
#include <thread>

#include "pressline/testing/cups.hpp"
#include "pressline/testing/fixture.hpp"
#include "pressline/testing/process.hpp"
#include "pressline/testing/util.hpp"

using namespace pressline::testing;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string sha256_of(const fs::path& p) { return sha256_hex(p); }

// The simulated ZPL printer (tools/sim/pressline-zpl-printer), steered through its control dir.
class ZplSim {
public:
    explicit ZplSim(fs::path dir) : dir_(std::move(dir)) {
        fs::create_directories(dir_ / "out");
        fs::create_directories(dir_ / "control");
        const fs::path sim = fixtures_dir() / ".." / ".." / "tools" / "sim" / "pressline-zpl-printer";
        SpawnOptions o;
        // /usr/bin/python3 directly: a pyenv shim in PATH adds ~0.4 s to every start.
        o.argv = {"/usr/bin/python3", sim.string(), "--port", "0", "--port-file", (dir_ / "port").string(),
                  "--out", (dir_ / "out").string(), "--control", (dir_ / "control").string(),
                  "--pid-file", (dir_ / "pid").string()};
        o.stdout_path = o.stderr_path = dir_ / "sim.log";
        proc_ = Process::spawn(o);
        for (int i = 0; i < 500 && !fs::exists(dir_ / "port"); ++i) std::this_thread::sleep_for(10ms);
        port_ = std::stoi(read_file(dir_ / "port"));
    }
    int port() const { return port_; }
    void set_state(const std::string& s) {
        std::ofstream(dir_ / "control" / "state.tmp") << s << "\n";
        fs::rename(dir_ / "control" / "state.tmp", dir_ / "control" / "state");
    }
    void set_flag(const std::string& name, bool on) {
        if (on) std::ofstream(dir_ / "control" / name) << "";
        else fs::remove(dir_ / "control" / name);
    }
    // Every format the printer printed, in order.
    std::vector<std::string> printed() const {
        std::vector<fs::path> files;
        for (const auto& e : fs::directory_iterator(dir_ / "out"))
            if (e.path().extension() == ".zpl") files.push_back(e.path());
        std::sort(files.begin(), files.end());
        std::vector<std::string> out;
        for (const auto& f : files) out.push_back(read_file(f));
        return out;
    }
    std::size_t count_containing(const std::string& needle) const {
        std::size_t n = 0;
        for (const auto& z : printed()) n += z.find(needle) != std::string::npos;
        return n;
    }
    std::string log() const { return read_file(dir_ / "sim.log"); }

private:
    fs::path dir_;
    Process proc_;
    int port_ = 0;
};

class Labels : public IntegrationTest {
protected:
    void SetUp() override {
        IntegrationTest::SetUp();
        fs::permissions(work().path(), fs::perms(0755));  // cupsd's lp user reads below us
        cups_ = std::make_unique<CupsServer>(work().path() / "cups", std::vector<std::string>{"dtg1", "labelpdf"});
        cups_->start();
        art_dir_ = work().path() / "art";
        fs::create_directories(art_dir_);
        artwork_ = art_dir_ / "design.png";
        // A small artwork is enough here: the label and ticket contents are tested elsewhere.
        cv::Mat img(200, 300, CV_8UC3, cv::Scalar(0, 128, 255));
        cv::putText(img, "PL", {60, 140}, cv::FONT_HERSHEY_SIMPLEX, 4, cv::Scalar(40, 40, 40), 8);
        cv::imwrite(artwork_.string(), img);
        tickets_ = std::make_unique<ZplSim>(work().path() / "zebra-tickets");
        labels_ = std::make_unique<ZplSim>(work().path() / "zebra-labels");
    }
    void TearDown() override {
        if (::testing::Test::HasFailure() && tickets_ && labels_) {
            std::cout << "[ tickets sim ]\n" << tail_lines(tickets_->log(), 15) << "[ labels sim ]\n"
                      << tail_lines(labels_->log(), 15);
        }
        IntegrationTest::TearDown();
        tickets_.reset();
        labels_.reset();
        cups_.reset();
    }

    // shipping: "zpl" (the label sim) or "pdf" (the CUPS queue labelpdf).
    AgentConfig label_config(const std::string& shipping = "zpl", bool tickets = true) {
        auto cfg = make_config();
        std::string y = "assets:\n  file_root: " + art_dir_.string() +
                        "\nprinting:\n  poll_min_ms: 50\n  poll_max_ms: 300\n  retry_backoff_s: 0\n"
                        "dtg_printers:\n  - name: dtg1\n    server: " + cups_->server() + "\n    queue: dtg1\n" +
                        "label_printers:\n"
                        "  - {name: zebra-t, host: 127.0.0.1, port: " + std::to_string(tickets_->port()) +
                        ", status_timeout_ms: 1500, connect_timeout_ms: 1000}\n"
                        "  - {name: zebra-l, host: 127.0.0.1, port: " + std::to_string(labels_->port()) +
                        ", status_timeout_ms: 1500, connect_timeout_ms: 1000, darkness: 20, x_offset_mm: 1}\n"
                        "  - {name: pdf-l, connection: cups, language: pdf, server: " + cups_->server() +
                        ", queue: labelpdf}\n"
                        "labels:\n  retry_s: 1\n";
        if (tickets) y += "  ticket_printer: zebra-t\n";
        y += "  shipping_printers: [" + std::string(shipping == "pdf" ? "pdf-l" : "zebra-l") + "]\n";
        cfg.extra_yaml = y;
        return cfg;
    }

    json job(const std::string& id, const std::string& order, int items, bool qa = false) {
        json j = valid_job(id, order);
        j["order_items"] = items;
        j["print"]["artwork"]["uri"] = "file://" + artwork_.string();
        j["print"]["artwork"]["sha256"] = sha256_of(artwork_);
        j["qa"]["required"] = qa;
        j["shipping"] = {{"ship_to", {{"name", "Анна Петрова"}, {"line1", "1 Main St"}, {"city", "Springfield"},
                                      {"postal_code", "12345"}, {"country", "US"}}},
                         {"carrier", "usps"}, {"service", "ground_advantage"},
                         {"tracking_number", "9400100000000000" + std::to_string(100000 + items * 1000 + id.size())}};
        return j;
    }

    std::optional<Event> wait_type(const std::string& type, const std::string& subject,
                                   std::chrono::milliseconds t = 30s) {
        return cloud().wait_event(type, subject, t);
    }

    void send_command(const json& c) {
        cloud().publish_command(c.dump());
        auto res = cloud().wait_event("command.result", c["command_id"].get<std::string>());
        ASSERT_TRUE(res) << cloud().dump();
        ASSERT_EQ(res->data["status"], "ok") << res->data.dump();
    }

    std::unique_ptr<CupsServer> cups_;
    std::unique_ptr<ZplSim> tickets_, labels_;
    fs::path art_dir_, artwork_;
};

bool is_device_state(const Event& e, const std::string& device, const std::string& state) {
    return e.type == "device.state" && e.data.value("device", "") == device && e.data.value("state", "") == state;
}

}  // namespace

TEST_F(Labels, EachReleasedAttemptGetsOneTicketWithItsCode) {
    start_agent(label_config());
    cloud().publish_job(job("J-t-1", "ORD-t", 1, /*qa=*/true).dump());
    auto ticket = wait_type("ticket.printed", "J-t-1");
    ASSERT_TRUE(ticket) << cloud().dump();
    EXPECT_EQ(ticket->data["printer"], "zebra-t");
    EXPECT_EQ(ticket->data["attempt"], 1);
    EXPECT_EQ(ticket->data["code"], "PL:J-t-1:1");
    ASSERT_TRUE(wait_type("job.printed", "J-t-1")) << cloud().dump();
    cloud().settle(1s);
    // One ticket, carrying its code; QA is required, so no label and no completion yet.
    EXPECT_EQ(tickets_->printed().size(), 1u);
    EXPECT_EQ(tickets_->count_containing("PL:J-t-1:1"), 1u) << tickets_->printed().front();
    EXPECT_TRUE(labels_->printed().empty());
    EXPECT_TRUE(cloud().events_for("J-t-1", "job.completed").empty()) << cloud().dump();
    // A reprint of the garment is a new attempt, and it gets its own ticket.
    json rp = command("C-rp-1", "reprint", "J-t-1");
    rp["what"] = "garment";
    send_command(rp);
    auto second = cloud().wait_event([](const Event& e) {
        return e.type == "ticket.printed" && e.subject == "J-t-1" && e.data.value("attempt", 0) == 2;
    });
    ASSERT_TRUE(second) << cloud().dump();
    EXPECT_EQ(tickets_->count_containing("PL:J-t-1:2"), 1u);
    EXPECT_EQ(tickets_->printed().size(), 2u);
}

TEST_F(Labels, ATwoItemOrderGetsOneLabelAfterTheSecondItem) {
    start_agent(label_config("zpl", /*tickets=*/false));
    const json a = job("J-o-1", "ORD-two", 2), b = job("J-o-2", "ORD-two", 2);
    cloud().publish_job(a.dump());
    ASSERT_TRUE(wait_type("job.printed", "J-o-1")) << cloud().dump();
    cloud().settle(1s);
    EXPECT_TRUE(labels_->printed().empty()) << "a label before the order's second item";
    EXPECT_TRUE(cloud().events_for("ORD-two", "order.ready_to_ship").empty()) << cloud().dump();

    cloud().publish_job(b.dump());
    auto ready = wait_type("order.ready_to_ship", "ORD-two");
    ASSERT_TRUE(ready) << cloud().dump();
    EXPECT_EQ(ready->data["jobs"], json::array({"J-o-1", "J-o-2"}));
    auto printed = wait_type("label.printed", "ORD-two");
    ASSERT_TRUE(printed) << cloud().dump();
    EXPECT_EQ(printed->data["printer"], "zebra-l");
    ASSERT_TRUE(wait_type("job.completed", "J-o-1")) << cloud().dump();
    ASSERT_TRUE(wait_type("job.completed", "J-o-2")) << cloud().dump();
    cloud().settle(1s);
    // Exactly one label, for the second item's tracking number, with the printer's calibration.
    ASSERT_EQ(labels_->printed().size(), 1u);
    const std::string zpl = labels_->printed().front();
    const std::string tracking = b["shipping"]["tracking_number"];
    EXPECT_NE(zpl.find(tracking), std::string::npos) << zpl;
    EXPECT_NE(zpl.find("~SD20"), std::string::npos) << zpl;
    EXPECT_NE(zpl.find("^LH8,0"), std::string::npos) << zpl;  // 1 mm at 203 dpi
    EXPECT_EQ(cloud().events_for("ORD-two", "label.printed").size(), 1u);
    // The events of each job end in job.completed, in order, without gaps.
    EXPECT_TRUE(analyze_sequences(cloud().events()).gap_free());
}

TEST_F(Labels, PaperOutMakesTheLabelWaitAndItPrintsAfterRecovery) {
    labels_->set_state("paper_out");
    start_agent(label_config("zpl", false));
    cloud().publish_job(job("J-p-1", "ORD-paper", 1).dump());
    ASSERT_TRUE(wait_type("order.ready_to_ship", "ORD-paper")) << cloud().dump();
    auto out = cloud().wait_event([](const Event& e) { return is_device_state(e, "zebra-l", "error"); });
    ASSERT_TRUE(out) << cloud().dump();
    EXPECT_NE(out->data["reasons"].dump().find("media-empty"), std::string::npos) << out->data.dump();
    cloud().settle(2500ms);
    EXPECT_TRUE(labels_->printed().empty());
    EXPECT_TRUE(cloud().events_for("ORD-paper", "label.printed").empty());

    labels_->set_state("ok");
    ASSERT_TRUE(wait_type("label.printed", "ORD-paper")) << cloud().dump();
    EXPECT_TRUE(cloud().wait_event([](const Event& e) { return is_device_state(e, "zebra-l", "idle"); })) << cloud().dump();
    ASSERT_TRUE(wait_type("job.completed", "J-p-1")) << cloud().dump();
    cloud().settle(500ms);
    EXPECT_EQ(labels_->printed().size(), 1u);
}

TEST_F(Labels, KilledAfterTheLabelWasSentItIsHeldNotPrintedTwice) {
    auto cfg = label_config("zpl", false);
    start_agent(cfg);
    agent().terminate();
    agent().env() = {"PRESSLINE_CRASH_AT=paper_sent"};
    auto mark = cloud().status_count();
    agent().start();
    wait_ready(0, mark);
    cloud().publish_job(job("J-k-1", "ORD-kill", 1).dump());
    auto ended = agent().wait_exit(30s);
    ASSERT_TRUE(ended) << "the agent did not reach paper_sent\n" << tail_lines(agent().log(), 30);
    EXPECT_TRUE(ended->signaled() && ended->signal() == SIGKILL) << ended->str();
    std::this_thread::sleep_for(300ms);
    ASSERT_EQ(labels_->printed().size(), 1u);  // it went out before the kill

    agent().env().clear();
    mark = cloud().status_count();
    agent().start();
    wait_ready(0, mark);
    auto held = wait_type("job.held", "J-k-1");
    ASSERT_TRUE(held) << cloud().dump() << tail_lines(agent().log(), 20);
    EXPECT_EQ(held->data["reason"], "label_outcome_uncertain") << held->data.dump();
    cloud().settle(2s);
    EXPECT_EQ(labels_->printed().size(), 1u) << "printed twice after a restart";
    EXPECT_TRUE(cloud().events_for("J-k-1", "job.completed").empty());

    // A person looked: the label is lost. A reprint prints copy 2 and completes the job.
    json c = command("C-lbl-1", "reprint", "J-k-1");
    c["what"] = "label";
    send_command(c);
    auto printed = wait_type("label.printed", "ORD-kill");
    ASSERT_TRUE(printed) << cloud().dump();
    EXPECT_EQ(printed->data["copy"], 2);
    ASSERT_TRUE(wait_type("job.completed", "J-k-1")) << cloud().dump();
    EXPECT_EQ(labels_->printed().size(), 2u);
    EXPECT_TRUE(analyze_sequences(cloud().events()).gap_free());
}

TEST_F(Labels, ATicketPrinterFaultDoesNotStopTheGarment) {
    tickets_->set_flag("refuse", true);
    start_agent(label_config());
    cloud().publish_job(job("J-f-1", "ORD-fault", 1, true).dump());
    ASSERT_TRUE(wait_type("job.printed", "J-f-1")) << cloud().dump();
    EXPECT_TRUE(cloud().wait_event([](const Event& e) { return is_device_state(e, "zebra-t", "offline"); }))
        << cloud().dump();
    EXPECT_TRUE(cloud().events_for("J-f-1", "ticket.printed").empty());
    tickets_->set_flag("refuse", false);
    ASSERT_TRUE(wait_type("ticket.printed", "J-f-1")) << cloud().dump();
    EXPECT_EQ(tickets_->count_containing("PL:J-f-1:1"), 1u);
}

TEST_F(Labels, ASilentPrinterIsUnresponsiveNotOffline) {
    tickets_->set_flag("silent", true);
    start_agent(label_config());
    cloud().publish_job(job("J-s-1", "ORD-silent", 1, true).dump());
    auto st = cloud().wait_event([](const Event& e) { return is_device_state(e, "zebra-t", "unresponsive"); });
    ASSERT_TRUE(st) << cloud().dump();
    ASSERT_TRUE(wait_type("job.printed", "J-s-1")) << cloud().dump();
    EXPECT_TRUE(tickets_->printed().empty());
    tickets_->set_flag("silent", false);
    ASSERT_TRUE(wait_type("ticket.printed", "J-s-1")) << cloud().dump();
}

TEST_F(Labels, APdfLabelGoesToTheCupsQueue) {
    start_agent(label_config("pdf", false));
    const json j = job("J-pdf-1", "ORD-pdf", 1);
    cloud().publish_job(j.dump());
    auto printed = wait_type("label.printed", "ORD-pdf");
    ASSERT_TRUE(printed) << cloud().dump();
    EXPECT_EQ(printed->data["printer"], "pdf-l");
    ASSERT_TRUE(wait_type("job.completed", "J-pdf-1")) << cloud().dump();
    std::vector<fs::path> docs;
    for (int i = 0; i < 100 && docs.empty(); ++i) {
        docs = cups_->documents("labelpdf");
        std::this_thread::sleep_for(100ms);
    }
    ASSERT_EQ(docs.size(), 1u);
    EXPECT_EQ(docs[0].extension(), ".pdf");
    auto text = run_command({"pdftotext", docs[0].string(), "-"}, 20s);
    EXPECT_NE(text.out.find(j["shipping"]["tracking_number"].get<std::string>()), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("Анна Петрова"), std::string::npos) << text.out;
}

TEST_F(Labels, ACarrierZplLabelPassesThroughWithCalibration) {
    const fs::path carrier = art_dir_ / "carrier.zpl";
    std::ofstream(carrier) << "^XA^FO50,50^A0N,40,40^FDCARRIER LABEL 1Z999^FS^BY3^FO50,120^BCN,100,Y,N,N^FD1Z999AA10123456784^FS^XZ\n";
    start_agent(label_config("zpl", false));
    json j = job("J-c-1", "ORD-carrier", 1);
    j["shipping"]["label"] = {{"format", "zpl"}, {"uri", "file://" + carrier.string()}, {"sha256", sha256_of(carrier)}};
    cloud().publish_job(j.dump());
    ASSERT_TRUE(wait_type("label.printed", "ORD-carrier")) << cloud().dump();
    cloud().settle(500ms);
    ASSERT_EQ(labels_->printed().size(), 1u);
    const std::string zpl = labels_->printed().front();
    EXPECT_NE(zpl.find("^FDCARRIER LABEL 1Z999^FS"), std::string::npos) << zpl;
    EXPECT_NE(zpl.find("~SD20"), std::string::npos) << zpl;
}

// A CUPS queue keeps names: a label left "sending" by a crash is looked up there, so it is
// printed exactly once whether the crash came before or after the bytes went out.
class LCrash : public Labels, public ::testing::WithParamInterface<const char*> {};

TEST_P(LCrash, CupsOnce) {
    const std::string point = GetParam();
    start_agent(label_config("pdf", false));
    agent().terminate();
    agent().env() = {"PRESSLINE_CRASH_AT=" + point};
    auto mark = cloud().status_count();
    agent().start();
    wait_ready(0, mark);
    const std::string order = "ORD-crash-" + point;
    cloud().publish_job(job("J-cc-" + point, order, 1).dump());
    auto ended = agent().wait_exit(30s);
    ASSERT_TRUE(ended) << "the agent did not reach " << point << "\n" << tail_lines(agent().log(), 30);
    EXPECT_TRUE(ended->signaled() && ended->signal() == SIGKILL) << ended->str();

    agent().env().clear();
    mark = cloud().status_count();
    agent().start();
    wait_ready(0, mark);
    auto printed = wait_type("label.printed", order);
    ASSERT_TRUE(printed) << cloud().dump() << tail_lines(agent().log(), 20);
    EXPECT_EQ(printed->data["copy"], 1);
    EXPECT_EQ(printed->data.value("confirmed_after_restart", false), std::string(point) == "paper_sent")
        << printed->data.dump();
    ASSERT_TRUE(wait_type("job.completed", "J-cc-" + point)) << cloud().dump();
    cloud().settle(1500ms);
    EXPECT_EQ(cups_->documents("labelpdf").size(), 1u) << "crash at " << point;
    EXPECT_TRUE(cloud().events_for("J-cc-" + point, "job.held").empty()) << cloud().dump();
}

INSTANTIATE_TEST_SUITE_P(N, LCrash, ::testing::Values("paper_sending", "paper_sent"));

TEST_F(Labels, AnItemArrivingAfterItsOrdersLabelCompletesWithoutASecondLabel) {
    // The dispatcher said one item, then sent a second job of the same order.
    start_agent(label_config("zpl", false));
    cloud().publish_job(job("J-late-1", "ORD-late", 1).dump());
    ASSERT_TRUE(wait_type("job.completed", "J-late-1")) << cloud().dump();
    cloud().publish_job(job("J-late-2", "ORD-late", 1).dump());
    ASSERT_TRUE(wait_type("job.completed", "J-late-2")) << cloud().dump();
    cloud().settle(1s);
    EXPECT_EQ(labels_->printed().size(), 1u);
    EXPECT_EQ(cloud().events_for("ORD-late", "order.ready_to_ship").size(), 1u) << cloud().dump();
    EXPECT_EQ(cloud().events_for("ORD-late", "label.printed").size(), 1u) << cloud().dump();
}
