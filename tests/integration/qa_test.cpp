// Visual QA end to end, with the real binary, a private mosquitto, a private cupsd with
// ippeveprinter DTG printers and a `folder:` camera whose folder the test fills with synthetic
// photos of what was printed: the job's reference composited on the garment colour at its box
// on the platen, warped with a known homography that is also the camera's calibration. A good
// photo passes and goes on to the label path, a photo with a large area of missing ink fails and
// is reprinted, no photo fails with no_capture, a spot check waits for a person (local
// `pressline qa decide` or the MQTT qa_decision), the reprint limit fails the job, and
// consecutive failures pause the printer.
#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

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

// The camera: platen mm -> image px of a 4000 x 3000 photo (~5.6 px/mm, a slight tilt and
// perspective).
const cv::Matx33d kH(5.6, 0.1, 850.0,   //
                     0.04, 5.6, 60.0,   //
                     0.0, 0.00001, 1.0);
const cv::Size kImage(4000, 3000);

class Qa : public IntegrationTest {
protected:
    void SetUp() override {
        IntegrationTest::SetUp();
        fs::permissions(work().path(), fs::perms(0755));  // cupsd's lp user reads below us
        cups_ = std::make_unique<CupsServer>(work().path() / "cups", std::vector<std::string>{"dtg1", "dtg2"});
        cups_->start();
        art_dir_ = work().path() / "art";
        cam_dir_ = work().path() / "cam";
        fs::create_directories(art_dir_);
        fs::create_directories(cam_dir_);
        // A design with structure (the inspector registers it): bands, circles, text.
        artwork_ = art_dir_ / "design.png";
        cv::Mat img(400, 600, CV_8UC3, cv::Scalar(30, 140, 240));
        for (int x = 0; x < 600; x += 100) cv::rectangle(img, {x, 0, 50, 400}, cv::Scalar(200, 60, 20), cv::FILLED);
        cv::circle(img, {180, 200}, 120, cv::Scalar(40, 220, 250), cv::FILLED);
        cv::circle(img, {430, 150}, 90, cv::Scalar(230, 230, 230), cv::FILLED);
        cv::putText(img, "PL", {300, 360}, cv::FONT_HERSHEY_SIMPLEX, 4, cv::Scalar(20, 20, 120), 12);
        cv::imwrite(artwork_.string(), img);
        // The camera's calibration: the homography above, no flat field, no gray card.
        calibration_ = work().path() / "cal" / "cam-1.json";
        fs::create_directories(calibration_.parent_path());
        json h = json::array();
        for (int i = 0; i < 9; ++i) h.push_back(kH(i / 3, i % 3));
        std::ofstream(calibration_) << json{{"image_size_px", {kImage.width, kImage.height}},
                                            {"H_platen_mm_to_image_px", h},
                                            {"flatfield", nullptr},
                                            {"gray_card", nullptr}}
                                           .dump(2);
    }
    void TearDown() override {
        IntegrationTest::TearDown();
        cups_.reset();
    }

    // `qa`: lines of the qa section ("  key: value\n").
    AgentConfig qa_config(const std::string& qa, const std::vector<std::string>& printers = {"dtg1"}) {
        auto cfg = make_config();
        std::string y = "assets:\n  file_root: " + art_dir_.string() +
                        "\nprinting:\n  poll_min_ms: 50\n  poll_max_ms: 300\n  retry_backoff_s: 0\ndtg_printers:\n";
        for (const auto& p : printers)
            y += "  - name: " + p + "\n    server: " + cups_->server() + "\n    queue: " + p + "\n";
        y += "cameras:\n  - name: cam-1\n    source: \"folder:" + cam_dir_.string() +
             "\"\n    read_timeout_ms: 1000\n    calibration: " + calibration_.string() + "\n";
        // Test defaults, unless `qa` sets the key.
        y += "qa:\n" + qa;
        for (const char* d : {"  delay_s: 1\n", "  capture_timeout_s: 30\n", "  spot_check_share: 0\n"}) {
            const std::string line(d);
            if (qa.find(line.substr(0, line.find(':') + 1)) == std::string::npos) y += line;
        }
        cfg.extra_yaml = y;
        return cfg;
    }

    json job(const std::string& id) {
        json j = valid_job(id);
        j["print"]["artwork"]["uri"] = "file://" + artwork_.string();
        j["print"]["artwork"]["sha256"] = sha256_hex(artwork_);
        j["qa"]["required"] = true;
        return j;
    }

    fs::path state_dir() const { return agent_->config().state_dir; }

    // A synthetic photo of the printed job: the platen in the garment colour and the reference
    // (its straight alpha = ink) warped onto it by kH. `erase`: a large area of the artwork
    // missing (no ink: the garment shows).
    // `ticket`: the text of a job ticket's QR code lying beside the platen (empty: none).
    void photograph(const std::string& job_id, bool erase, const std::string& name, const std::string& ticket = "") {
        const fs::path work = state_dir() / "work" / job_id;
        const json ref = json::parse(read_file(work / "reference.json"));
        cv::Mat bgra = cv::imread((work / "reference.png").string(), cv::IMREAD_UNCHANGED);
        ASSERT_EQ(bgra.type(), CV_8UC4);
        const double ref_ppm = ref["px_per_mm"].get<double>();
        const json& box = ref["box_mm"];
        const auto& g = ref["job"]["garment_srgb"];
        const cv::Scalar garment(g[2].get<double>(), g[1].get<double>(), g[0].get<double>());
        cv::Mat photo(kImage, CV_8UC3, cv::Scalar(70, 70, 70));
        std::vector<cv::Point2d> mm{{0, 0}, {406.4, 0}, {406.4, 508}, {0, 508}}, px;
        cv::perspectiveTransform(mm, px, cv::Mat(kH));
        std::vector<cv::Point> poly;
        for (const auto& p : px) poly.emplace_back(cvRound(p.x), cvRound(p.y));
        cv::fillConvexPoly(photo, poly, garment, cv::LINE_AA);
        if (erase) {
            // Missing ink over a quarter of the design's width and 30 % of its height (~70 x 56 mm).
            cv::Mat alpha_hole = bgra(cv::Rect(bgra.cols * 35 / 100, bgra.rows * 35 / 100, bgra.cols / 4, bgra.rows * 3 / 10));
            std::vector<cv::Mat> ch;
            cv::split(alpha_hole, ch);
            ch[3].setTo(0);
            cv::merge(ch, alpha_hole);
        }
        // Anti-alias before shrinking ~2x; reference px (u, v) has its centre at platen mm
        // (box.x + (u + 0.5) / ppm, box.y + (v + 0.5) / ppm).
        cv::GaussianBlur(bgra, bgra, {0, 0}, 0.5 * ref_ppm / 5.6);
        const double bx = box["x"].get<double>(), by = box["y"].get<double>();
        const cv::Matx33d a(1 / ref_ppm, 0, bx + 0.5 / ref_ppm, 0, 1 / ref_ppm, by + 0.5 / ref_ppm, 0, 0, 1);
        cv::Mat art;
        cv::warpPerspective(bgra, art, cv::Mat(kH * a), kImage, cv::INTER_LINEAR, cv::BORDER_CONSTANT,
                            cv::Scalar(0, 0, 0, 0));
        photo.forEach<cv::Vec3b>([&](cv::Vec3b& d, const int* pos) {
            const cv::Vec4b s = art.at<cv::Vec4b>(pos[0], pos[1]);
            if (s[3] == 0) return;
            const double al = s[3] / 255.0;
            for (int c = 0; c < 3; ++c) d[c] = cv::saturate_cast<uchar>(s[c] * al + d[c] * (1 - al));
        });
        if (!ticket.empty()) add_ticket(photo, ticket);
        write_photo(photo, name);
    }

    // A ticket (white paper with the QR code, ~60 mm) right of the platen, outside the print.
    static void add_ticket(cv::Mat& photo, const std::string& text) {
        cv::Mat qr;
        cv::QRCodeEncoder::create()->encode(text, qr);
        ASSERT_FALSE(qr.empty());
        const int side = 300;
        cv::rectangle(photo, {3250, 300, side + 80, side + 80}, cv::Scalar(245, 245, 245), cv::FILLED);
        cv::Mat big;
        cv::resize(qr, big, {side, side}, 0, 0, cv::INTER_NEAREST);
        cv::cvtColor(big, big, cv::COLOR_GRAY2BGR);
        big.copyTo(photo(cv::Rect(3290, 340, side, side)));
    }

    // Into the camera's folder, atomically (as a camera's upload would).
    void write_photo(const cv::Mat& photo, const std::string& name) {
        std::vector<uchar> jpeg;
        ASSERT_TRUE(cv::imencode(".jpg", photo, jpeg, {cv::IMWRITE_JPEG_QUALITY, 95}));
        const fs::path tmp = cam_dir_ / (name + ".tmp");  // ignored by the camera until renamed
        std::ofstream(tmp, std::ios::binary).write(reinterpret_cast<const char*>(jpeg.data()),
                                                   static_cast<std::streamsize>(jpeg.size()));
        fs::rename(tmp, cam_dir_ / (name + ".jpg"));
    }

    std::optional<Event> wait_type(const std::string& type, const std::string& subject,
                                   std::chrono::milliseconds t = 60s, std::size_t from = 0) {
        return cloud().wait_event(type, subject, t, from);
    }

    // The n-th (1-based) job.printed of `job_id`.
    std::optional<Event> wait_printed(const std::string& job_id, int n, std::chrono::milliseconds t = 60s) {
        if (!cloud().wait_count([&](const Event& e) { return e.type == "job.printed" && e.subject == job_id; },
                                static_cast<std::size_t>(n), t))
            return std::nullopt;
        return cloud().events_for(job_id, "job.printed").at(static_cast<std::size_t>(n - 1));
    }

    std::unique_ptr<CupsServer> cups_;
    fs::path art_dir_, cam_dir_, artwork_, calibration_;
};

}  // namespace

TEST_F(Qa, GoodCapturePassesAndGoesOnToTheLabel) {
    start_agent(qa_config(""));
    cloud().publish_job(job("J-qa-good").dump());
    ASSERT_TRUE(wait_printed("J-qa-good", 1)) << cloud().dump();
    photograph("J-qa-good", false, "good-1");
    auto passed = wait_type("qa.passed", "J-qa-good");
    ASSERT_TRUE(passed) << cloud().dump() << agent().log();
    EXPECT_EQ(passed->data["attempt"], 1);
    EXPECT_EQ(passed->data["device"], "dtg1");
    EXPECT_EQ(passed->data["camera"], "cam-1");
    EXPECT_EQ(passed->data["reason"], "ok");
    EXPECT_EQ(passed->data["source"], "auto");
    EXPECT_TRUE(passed->data["metrics"].is_object());
    // The label path: the order is ready to ship (no shipping printer here: it completes).
    auto ready = wait_type("order.ready_to_ship", passed->data["order_id"].get<std::string>());
    ASSERT_TRUE(ready) << cloud().dump();
    ASSERT_TRUE(wait_type("job.completed", "J-qa-good")) << cloud().dump();
    // Evidence: the files, and case.json re-runs the inspection with `pressline qa inspect`.
    const json& ev = passed->data["evidence"];
    ASSERT_TRUE(ev.is_object()) << passed->data.dump();
    const fs::path dir = ev["dir"].get<std::string>();
    EXPECT_EQ(dir, state_dir() / "qa" / "J-qa-good" / "1");
    for (const char* f : {"capture.jpg", "case.json", "result.json"}) EXPECT_TRUE(fs::exists(dir / f)) << f;
    auto rerun = run_command({"sh", "-c", pressline_binary().string() + " qa inspect < " + (dir / "case.json").string()}, 60s);
    EXPECT_EQ(rerun.status.code(), 0) << rerun.err;
    const json again = json::parse(rerun.out, nullptr, false);
    EXPECT_EQ(again.value("verdict", ""), "pass") << rerun.out << rerun.err;
    // The order of the job's events.
    std::vector<std::string> types;
    for (const auto& e : cloud().events_for("J-qa-good")) types.push_back(e.type);
    EXPECT_EQ(types, (std::vector<std::string>{"job.accepted", "job.queued", "job.printing", "job.printed",
                                               "qa.passed", "job.completed"}))
        << cloud().dump();
}

TEST_F(Qa, MissingInkFailsIsReprintedAndThenPasses) {
    start_agent(qa_config(""));
    cloud().publish_job(job("J-qa-bad").dump());
    ASSERT_TRUE(wait_printed("J-qa-bad", 1)) << cloud().dump();
    photograph("J-qa-bad", true, "bad-1");
    auto failed = wait_type("qa.failed", "J-qa-bad");
    ASSERT_TRUE(failed) << cloud().dump() << agent().log();
    EXPECT_EQ(failed->data["reason"], "missing_ink") << failed->data.dump();
    EXPECT_EQ(failed->data["attempt"], 1);
    EXPECT_TRUE(failed->data["evidence"].is_object());
    auto reprint = wait_type("job.reprint", "J-qa-bad");
    ASSERT_TRUE(reprint) << cloud().dump();
    EXPECT_EQ(reprint->data["attempt"], 2);
    EXPECT_EQ(reprint->data["reason"], "qa_failed");
    auto printed2 = wait_printed("J-qa-bad", 2);
    ASSERT_TRUE(printed2) << cloud().dump();
    EXPECT_EQ(printed2->data["attempt"], 2);
    photograph("J-qa-bad", false, "good-2");
    auto passed = wait_type("qa.passed", "J-qa-bad");
    ASSERT_TRUE(passed) << cloud().dump() << agent().log();
    EXPECT_EQ(passed->data["attempt"], 2);
    // Each attempt kept its own evidence.
    EXPECT_TRUE(fs::exists(state_dir() / "qa" / "J-qa-bad" / "1" / "capture.jpg"));
    EXPECT_TRUE(fs::exists(state_dir() / "qa" / "J-qa-bad" / "2" / "capture.jpg"));
}

TEST_F(Qa, NoCaptureFailsAfterTheTimeoutNeverPasses) {
    start_agent(qa_config("  capture_timeout_s: 3\n  reprint_limit: 0\n"));
    cloud().publish_job(job("J-qa-none").dump());
    ASSERT_TRUE(wait_printed("J-qa-none", 1)) << cloud().dump();
    auto failed = wait_type("qa.failed", "J-qa-none", 30s);
    ASSERT_TRUE(failed) << cloud().dump() << agent().log();
    EXPECT_EQ(failed->data["reason"], "no_capture");
    auto job_failed = wait_type("job.failed", "J-qa-none");
    ASSERT_TRUE(job_failed) << cloud().dump();
    EXPECT_EQ(job_failed->data["reason"], "qa_failed");
    EXPECT_TRUE(cloud().events_for("J-qa-none", "qa.passed").empty());
}

TEST_F(Qa, SpotCheckWaitsForALocalDecision) {
    start_agent(qa_config("  spot_check_share: 1\n"));
    cloud().publish_job(job("J-qa-spot").dump());
    ASSERT_TRUE(wait_printed("J-qa-spot", 1)) << cloud().dump();
    photograph("J-qa-spot", false, "spot-1");
    auto held = wait_type("qa.held", "J-qa-spot");
    ASSERT_TRUE(held) << cloud().dump() << agent().log();
    EXPECT_EQ(held->data["reason"], "spot_check");
    EXPECT_EQ(held->data["verdict"], "pass");
    // A decision for an unknown job is refused with a reason.
    auto bad = run_pressline({"qa", "decide", "--config", agent().config_path().string(), "--job", "J-nope",
                              "--verdict", "pass", "--by", "alice"});
    EXPECT_NE(bad.status.code(), 0);
    EXPECT_NE(bad.out.find("unknown_job"), std::string::npos) << bad.out << bad.err;
    auto res = run_pressline({"qa", "decide", "--config", agent().config_path().string(), "--job", "J-qa-spot",
                              "--verdict", "pass", "--by", "alice", "--note", "looks fine"});
    ASSERT_EQ(res.status.code(), 0) << res.out << res.err;
    auto passed = wait_type("qa.passed", "J-qa-spot");
    ASSERT_TRUE(passed) << cloud().dump();
    EXPECT_EQ(passed->data["decided_by"], "alice");
    EXPECT_EQ(passed->data["source"], "local");
    EXPECT_EQ(passed->data["note"], "looks fine");
    EXPECT_EQ(passed->data["held_reason"], "spot_check");
    EXPECT_TRUE(passed->data.contains("decided_at"));
    ASSERT_TRUE(wait_type("job.completed", "J-qa-spot")) << cloud().dump();
    // The cloud learns of the local command like of its own (its command.result comes last in
    // the decision's transaction).
    auto local = cloud().wait_event([](const Event& e) {
        return e.type == "command.result" && e.data.value("source", "") == "local" &&
               e.data.value("status", "") == "ok" && e.data.value("job_id", "") == "J-qa-spot";
    });
    ASSERT_TRUE(local) << cloud().dump();
    EXPECT_EQ(local->data["command"], "qa_decision");
    EXPECT_EQ(local->data["verdict"], "pass");
    // A second decision finds nothing held.
    auto again = run_pressline({"qa", "decide", "--config", agent().config_path().string(), "--job", "J-qa-spot",
                                "--verdict", "fail", "--by", "bob"});
    EXPECT_NE(again.status.code(), 0);
    EXPECT_NE(again.out.find("not_held_for_qa"), std::string::npos) << again.out;
}

TEST_F(Qa, MqttDecisionFailsAHeldJobAndReprintsIt) {
    start_agent(qa_config("  spot_check_share: 1\n"));
    cloud().publish_job(job("J-qa-cmd").dump());
    ASSERT_TRUE(wait_printed("J-qa-cmd", 1)) << cloud().dump();
    photograph("J-qa-cmd", false, "cmd-1");
    ASSERT_TRUE(wait_type("qa.held", "J-qa-cmd")) << cloud().dump() << agent().log();
    json c = command("C-qa-1", "qa_decision", "J-qa-cmd");
    c["verdict"] = "fail";
    c["decided_by"] = "carol";
    cloud().publish_command(c.dump());
    auto res = wait_type("command.result", "C-qa-1");
    ASSERT_TRUE(res) << cloud().dump();
    EXPECT_EQ(res->data["status"], "ok") << res->data.dump();
    EXPECT_EQ(res->data["reprint"], true);
    auto failed = wait_type("qa.failed", "J-qa-cmd");
    ASSERT_TRUE(failed) << cloud().dump();
    EXPECT_EQ(failed->data["decided_by"], "carol");
    EXPECT_EQ(failed->data["source"], "cloud");
    EXPECT_EQ(failed->data["reason"], "operator_rejected");
    auto reprint = wait_type("job.reprint", "J-qa-cmd");
    ASSERT_TRUE(reprint) << cloud().dump();
    EXPECT_EQ(reprint->data["attempt"], 2);
    ASSERT_TRUE(wait_printed("J-qa-cmd", 2)) << cloud().dump();
    // The same command_id again: the stored result, nothing done twice.
    cloud().publish_command(c.dump());
    ASSERT_TRUE(cloud().wait_count([](const Event& e) { return e.type == "command.result" && e.subject == "C-qa-1"; }, 2));
    EXPECT_EQ(cloud().events_for("J-qa-cmd", "job.reprint").size(), 1u);
}

TEST_F(Qa, ReprintLimitReachedFailsTheJob) {
    start_agent(qa_config("  reprint_limit: 1\n  pause_after_consecutive_failures: 0\n"));
    cloud().publish_job(job("J-qa-lim").dump());
    ASSERT_TRUE(wait_printed("J-qa-lim", 1)) << cloud().dump();
    photograph("J-qa-lim", true, "lim-1");
    ASSERT_TRUE(wait_type("job.reprint", "J-qa-lim")) << cloud().dump() << agent().log();
    ASSERT_TRUE(wait_printed("J-qa-lim", 2)) << cloud().dump();
    photograph("J-qa-lim", true, "lim-2");
    auto failed = wait_type("job.failed", "J-qa-lim");
    ASSERT_TRUE(failed) << cloud().dump() << agent().log();
    EXPECT_EQ(failed->data["reason"], "qa_failed");
    EXPECT_EQ(failed->data["attempt"], 2);
    EXPECT_EQ(cloud().events_for("J-qa-lim", "qa.failed").size(), 2u);
    EXPECT_EQ(cloud().events_for("J-qa-lim", "job.reprint").size(), 1u);
}

TEST_F(Qa, ConsecutiveFailuresPauseThePrinterAndTheReprintGoesElsewhere) {
    start_agent(qa_config("  pause_after_consecutive_failures: 1\n", {"dtg1", "dtg2"}));
    cloud().publish_job(job("J-qa-pause").dump());
    auto printed = wait_printed("J-qa-pause", 1);
    ASSERT_TRUE(printed) << cloud().dump();
    const std::string first = printed->data["device"];
    const std::string other = first == "dtg1" ? "dtg2" : "dtg1";
    photograph("J-qa-pause", true, "pause-1");
    ASSERT_TRUE(wait_type("qa.failed", "J-qa-pause")) << cloud().dump() << agent().log();
    auto paused = cloud().wait_event(
        [&](const Event& e) {
            if (e.type != "device.state" || e.data.value("device", "") != first) return false;
            for (const auto& r : e.data.value("reasons", json::array()))
                if (r == "qa-failures") return true;
            return false;
        },
        30s);
    ASSERT_TRUE(paused) << cloud().dump();
    EXPECT_EQ(paused->data["state"], "paused");
    auto printed2 = wait_printed("J-qa-pause", 2);
    ASSERT_TRUE(printed2) << cloud().dump();
    EXPECT_EQ(printed2->data["device"], other);
}

TEST_F(Qa, NoCameraForThePrinterHoldsTheJob) {
    auto cfg = qa_config("");
    // The camera watches dtg2 only; the job prints on dtg1.
    cfg.extra_yaml += "";
    std::string y = cfg.extra_yaml;
    y.replace(y.find("    calibration:"), 0, "    printers: [dtg2]\n");
    y.replace(y.find("dtg_printers:\n") + 14, 0,
              "  - name: dtg2\n    server: " + cups_->server() + "\n    queue: dtg2\n    platens: [10x12]\n");
    cfg.extra_yaml = y;
    start_agent(cfg);
    cloud().publish_job(job("J-qa-nocam").dump());
    auto held = wait_type("qa.held", "J-qa-nocam");
    ASSERT_TRUE(held) << cloud().dump() << agent().log();
    EXPECT_EQ(held->data["reason"], "qa_no_camera");
    EXPECT_EQ(held->data["device"], "dtg1");
}

TEST_F(Qa, OperatorTriggerCapturesOnDemand) {
    start_agent(qa_config("  trigger: operator\n  capture_timeout_s: 5\n"));
    cloud().publish_job(job("J-qa-op").dump());
    ASSERT_TRUE(wait_printed("J-qa-op", 1)) << cloud().dump();
    // Nothing happens without the trigger (the timeout does not run either).
    std::this_thread::sleep_for(7s);
    EXPECT_TRUE(cloud().events_for("J-qa-op", "qa.failed").empty()) << cloud().dump();
    photograph("J-qa-op", false, "op-1");
    auto res = run_pressline({"qa", "trigger", "--config", agent().config_path().string(), "--printer", "dtg1"});
    ASSERT_EQ(res.status.code(), 0) << res.out << res.err;
    EXPECT_NE(res.out.find("J-qa-op"), std::string::npos) << res.out;
    ASSERT_TRUE(wait_type("qa.passed", "J-qa-op")) << cloud().dump() << agent().log();
}

TEST_F(Qa, KilledWhileInspectingPhotographsAgainAfterTheRestart) {
    start_agent(qa_config("  delay_s: 3\n"));
    cloud().publish_job(job("J-qa-crash").dump());
    ASSERT_TRUE(wait_printed("J-qa-crash", 1)) << cloud().dump();
    // A photo that arrives before the crash is of no use after it: the restarted agent takes a
    // new one (a folder camera skips the files from before its start).
    photograph("J-qa-crash", true, "before-crash");
    agent().kill();
    const auto mark = cloud().status_count();
    agent().start();
    wait_ready(0, mark);
    ASSERT_TRUE(agent().wait_log("resuming QA job_id=J-qa-crash")) << tail_lines(agent().log(), 30);
    std::this_thread::sleep_for(1s);  // the camera is open
    photograph("J-qa-crash", false, "after-crash");
    auto passed = wait_type("qa.passed", "J-qa-crash");
    ASSERT_TRUE(passed) << cloud().dump() << tail_lines(agent().log(), 30);
    EXPECT_EQ(passed->data["attempt"], 1);
    cloud().settle(1500ms);
    EXPECT_TRUE(cloud().events_for("J-qa-crash", "qa.failed").empty()) << cloud().dump();
    EXPECT_EQ(cloud().events_for("J-qa-crash", "qa.passed").size(), 1u);
    const auto report = analyze_sequences(cloud().events());
    EXPECT_TRUE(report.gap_free()) << report.str();
}

TEST_F(Qa, AGarmentThatPassedAndWaitsForItsLabelCanBeReprinted) {
    start_agent(qa_config(""));
    json j = job("J-qa-lab");
    j["order_items"] = 2;  // the other item never comes: this one waits in labeling
    cloud().publish_job(j.dump());
    ASSERT_TRUE(wait_printed("J-qa-lab", 1)) << cloud().dump();
    photograph("J-qa-lab", false, "lab-1");
    ASSERT_TRUE(wait_type("qa.passed", "J-qa-lab")) << cloud().dump() << agent().log();
    json re = command("C-qa-lab", "reprint", "J-qa-lab");
    re["what"] = "garment";
    cloud().publish_command(re.dump());
    auto res = wait_type("command.result", "C-qa-lab");
    ASSERT_TRUE(res) << cloud().dump();
    EXPECT_EQ(res->data["status"], "ok") << res->data.dump();
    EXPECT_EQ(res->data["attempt"], 2);
    auto reprint = wait_type("job.reprint", "J-qa-lab");
    ASSERT_TRUE(reprint);
    EXPECT_EQ(reprint->data["previous_state"], "labeling");
    ASSERT_TRUE(wait_printed("J-qa-lab", 2)) << cloud().dump();
    photograph("J-qa-lab", false, "lab-2");
    auto passed = cloud().wait_event(
        [](const Event& e) { return e.type == "qa.passed" && e.subject == "J-qa-lab" && e.data.value("attempt", 0) == 2; },
        60s);
    ASSERT_TRUE(passed) << cloud().dump();
}

TEST_F(Qa, EvidenceIsPrunedOldestFirstBeyondItsTotalSize) {
    start_agent(qa_config("  evidence: {max_total_mb: 1}\n"));
    for (const std::string id : {"J-qa-ev1", "J-qa-ev2"}) {
        cloud().publish_job(job(id).dump());
        ASSERT_TRUE(wait_printed(id, 1)) << cloud().dump();
        photograph(id, false, id);
        ASSERT_TRUE(wait_type("qa.passed", id)) << cloud().dump() << agent().log();
    }
    // One inspection's evidence (a 4000 x 3000 capture and the PNGs) is over 1 MB: only the
    // newest is kept.
    const fs::path qa = state_dir() / "qa";
    bool pruned = false;
    for (int i = 0; i < 100 && !pruned; ++i) {
        pruned = !fs::exists(qa / "J-qa-ev1") && fs::exists(qa / "J-qa-ev2" / "1" / "capture.jpg");
        if (!pruned) std::this_thread::sleep_for(100ms);
    }
    EXPECT_TRUE(pruned) << agent().log();
    EXPECT_TRUE(agent().wait_log("evidence pruned")) << agent().log();
}

// trigger qr: the camera is searched for the job's ticket; a frame with another ticket (a job
// that does not exist, an old attempt) is reported with the frame and never used; the frame
// with the job's own ticket is inspected.
TEST_F(Qa, QrTicketTriggersTheCaptureAndOtherTicketsAreReportedNeverUsed) {
    start_agent(qa_config("  trigger: qr\n  qr_scan_interval_ms: 100\n"));
    cloud().publish_job(job("J-qa-qr").dump());
    ASSERT_TRUE(wait_printed("J-qa-qr", 1)) << cloud().dump();
    // A frame with no ticket: nothing happens.
    photograph("J-qa-qr", true, "qr-0");
    // A ticket of a job this station does not have.
    photograph("J-qa-qr", true, "qr-1", "PL:J-nobody:1");
    auto unknown = cloud().wait_event([](const Event& e) { return e.type == "qa.unmatched"; }, 30s);
    ASSERT_TRUE(unknown) << cloud().dump() << agent().log();
    const json& d = unknown->json["data"];
    EXPECT_EQ(d["reason"], "unknown_job") << d.dump();
    EXPECT_EQ(d["job_id"], "J-nobody");
    EXPECT_EQ(d["camera"], "cam-1");
    ASSERT_TRUE(d.contains("frame")) << d.dump();
    EXPECT_EQ(cv::imread(d["frame"].get<std::string>()).size(), kImage) << d.dump();
    // The job's ticket of another attempt (an old ticket left on the table).
    photograph("J-qa-qr", true, "qr-2", "PL:J-qa-qr:2");
    auto old = cloud().wait_event([](const Event& e) { return e.type == "qa.unmatched" && e.json["data"]["job_id"] == "J-qa-qr"; }, 30s);
    ASSERT_TRUE(old) << cloud().dump() << agent().log();
    EXPECT_EQ(old->json["data"]["reason"], "other_attempt") << old->json.dump();
    EXPECT_EQ(old->json["data"]["job_state"], "inspecting");
    // Those frames (all with missing ink) were not inspected: no outcome, no evidence.
    for (const char* t : {"qa.failed", "qa.held", "qa.passed"})
        EXPECT_TRUE(cloud().events_for("J-qa-qr", t).empty()) << t << cloud().dump();
    EXPECT_FALSE(fs::exists(state_dir() / "qa" / "J-qa-qr" / "1" / "result.json"));
    // Its own ticket: inspected, from that very frame.
    photograph("J-qa-qr", false, "qr-3", "PL:J-qa-qr:1");
    auto passed = wait_type("qa.passed", "J-qa-qr");
    ASSERT_TRUE(passed) << cloud().dump() << agent().log();
    EXPECT_NE(passed->json["data"]["metrics"].value("capture_origin", "").find("qr-3.jpg"), std::string::npos)
        << passed->json.dump();
    EXPECT_TRUE(cloud().events_for("J-qa-qr", "qa.failed").empty()) << cloud().dump();
    // The camera is watched only while a job waits on it: once the job passed, a new ticket
    // frame is no longer looked at.
    cloud().settle(1s);
    const auto before = cloud().events_of("qa.unmatched").size();
    photograph("J-qa-qr", false, "qr-4", "PL:J-later:1");
    cloud().settle(2s);
    EXPECT_EQ(cloud().events_of("qa.unmatched").size(), before) << cloud().dump();
}

TEST_F(Qa, QrTicketNeverSeenFailsWithNoCapture) {
    start_agent(qa_config("  trigger: qr\n  qr_scan_interval_ms: 100\n  capture_timeout_s: 3\n"));
    cloud().publish_job(job("J-qa-noqr").dump());
    ASSERT_TRUE(wait_printed("J-qa-noqr", 1)) << cloud().dump();
    photograph("J-qa-noqr", false, "noqr-1");  // a photo, but no ticket in it
    auto failed = wait_type("qa.failed", "J-qa-noqr", 30s);
    ASSERT_TRUE(failed) << cloud().dump() << agent().log();
    EXPECT_EQ(failed->json["data"]["reason"], "no_capture");
    EXPECT_NE(failed->json["data"].value("message", "").find("PL:J-qa-noqr:1"), std::string::npos) << failed->json.dump();
    EXPECT_TRUE(wait_type("job.reprint", "J-qa-noqr")) << cloud().dump();
}

// The snapshot command: answered once the picture is taken, with where it is; an unknown camera
// and a camera with nothing to give are errors that say so.
TEST_F(Qa, SnapshotCommandAnswersWithThePicture) {
    start_agent(qa_config("  trigger: operator\n"));
    cloud().publish_command(R"({"command_id": "C-snap-1", "type": "snapshot", "camera": "cam-1"})");
    std::this_thread::sleep_for(200ms);
    cv::Mat scene(kImage, CV_8UC3, cv::Scalar(40, 90, 160));
    write_photo(scene, "snap-1");
    auto r = wait_type("command.result", "C-snap-1", 30s);
    ASSERT_TRUE(r) << cloud().dump() << agent().log();
    const json& d = r->json["data"];
    ASSERT_EQ(d["status"], "ok") << d.dump();
    ASSERT_EQ(d["snapshots"].size(), 1u) << d.dump();
    const std::string path = d["snapshots"][0].value("path", "");
    cv::Mat got = cv::imread(path);
    ASSERT_EQ(got.size(), kImage) << d.dump();
    EXPECT_NEAR(cv::mean(got)[2], 160, 3);  // the scene's colour, through JPEG
    // The same command again: answered again, no second picture.
    cloud().publish_command(R"({"command_id": "C-snap-1", "type": "snapshot", "camera": "cam-1"})");
    ASSERT_TRUE(cloud().wait_count([](const Event& e) { return e.type == "command.result" && e.subject == "C-snap-1"; }, 2, 20s));
    EXPECT_EQ(cloud().events_for("C-snap-1", "command.result").at(1).json["data"].value("repeated", false), true);
    EXPECT_EQ(std::distance(fs::directory_iterator(fs::path(path).parent_path()), fs::directory_iterator{}), 1)
        << "one picture for one command";
    // No such camera.
    cloud().publish_command(R"({"command_id": "C-snap-2", "type": "snapshot", "camera": "cam-9"})");
    auto bad = wait_type("command.result", "C-snap-2", 20s);
    ASSERT_TRUE(bad) << cloud().dump();
    EXPECT_EQ(bad->json["data"]["reason"], "unknown_camera") << bad->json.dump();
    EXPECT_NE(bad->json["data"].value("message", "").find("cam-1"), std::string::npos) << bad->json.dump();
    // Nothing arrives within the camera's read timeout (1 s): camera_unavailable, saying why.
    cloud().publish_command(R"({"command_id": "C-snap-3", "type": "snapshot"})");
    auto none = wait_type("command.result", "C-snap-3", 30s);
    ASSERT_TRUE(none) << cloud().dump();
    EXPECT_EQ(none->json["data"]["status"], "error") << none->json.dump();
    EXPECT_EQ(none->json["data"]["reason"], "camera_unavailable") << none->json.dump();
    // The same from the station: `pressline snapshot`.
    std::thread later([&] {
        std::this_thread::sleep_for(500ms);
        write_photo(scene, "snap-local");
    });
    auto res = run_pressline({"snapshot", "--config", agent().config_path().string(), "--camera", "cam-1"});
    later.join();
    ASSERT_EQ(res.status.code(), 0) << res.out << res.err;
    const json out = json::parse(res.out);
    EXPECT_EQ(cv::imread(out["snapshots"][0].value("path", "")).size(), kImage) << res.out;
}

// A camera that is not there is reported as a device (device.state, kind camera), and a QA job
// on its printer fails with no_capture saying why.
TEST_F(Qa, AbsentCameraIsReportedOffline) {
    auto cfg = qa_config("  capture_timeout_s: 2\n");
    const std::string good = "folder:" + cam_dir_.string();
    cfg.extra_yaml.replace(cfg.extra_yaml.find(good), good.size(), "folder:" + (work().path() / "no-such-dir").string());
    start_agent(cfg);
    auto st = cloud().wait_event([](const Event& e) { return e.type == "device.state" && e.json["data"]["device"] == "cam-1"; }, 30s);
    ASSERT_TRUE(st) << cloud().dump() << agent().log();
    EXPECT_EQ(st->json["data"]["kind"], "camera");
    EXPECT_EQ(st->json["data"]["state"], "offline") << st->json.dump();
    EXPECT_NE(st->json["data"].value("message", "").find("no-such-dir"), std::string::npos) << st->json.dump();
    cloud().publish_job(job("J-qa-nocam").dump());
    auto failed = wait_type("qa.failed", "J-qa-nocam", 60s);
    ASSERT_TRUE(failed) << cloud().dump();
    EXPECT_EQ(failed->json["data"]["reason"], "no_capture");
    EXPECT_NE(failed->json["data"].value("message", "").find("no-such-dir"), std::string::npos) << failed->json.dump();
}

// `pressline calibrate --camera`: the photos are taken by the configured camera, directly when no
// agent runs and through the running agent's snapshot otherwise; the homography found is the
// camera's true one.
TEST_F(Qa, CalibrateTakesThePhotosWithTheConfiguredCamera) {
    const fs::path target_png = work().path() / "target.png";
    auto printed = run_pressline({"calibrate", "--print-target", target_png.string(), "--px-per-mm", "4"});
    ASSERT_EQ(printed.status.code(), 0) << printed.out << printed.err;
    // The printed target lying on the platen, as the camera (kH) sees it, and a white board.
    cv::Mat target = cv::imread(target_png.string(), cv::IMREAD_GRAYSCALE);
    ASSERT_FALSE(target.empty());
    const double ppm = 4;
    const cv::Matx33d a(1 / ppm, 0, 0.5 / ppm, 0, 1 / ppm, 0.5 / ppm, 0, 0, 1);
    cv::Mat seen;
    cv::warpPerspective(target, seen, cv::Mat(kH * a), kImage, cv::INTER_AREA, cv::BORDER_CONSTANT, cv::Scalar(70));
    cv::Mat target_photo, white_photo(kImage, CV_8UC3, cv::Scalar(225, 228, 230));
    cv::cvtColor(seen, target_photo, cv::COLOR_GRAY2BGR);
    // The agent's config names cam-1 (folder camera) with its calibration file.
    auto cfg = qa_config("  trigger: operator\n");
    const std::string timeout = "read_timeout_ms: 1000";
    cfg.extra_yaml.replace(cfg.extra_yaml.find(timeout), timeout.size(), "read_timeout_ms: 15000");
    fs::remove(calibration_);
    auto check_calibration = [&](const std::string& when) {
        std::ifstream f(calibration_);
        const json cal = json::parse(f, nullptr, false);
        ASSERT_TRUE(cal.is_object()) << when;
        cv::Matx33d h;
        for (int i = 0; i < 9; ++i) h(i / 3, i % 3) = cal["H_platen_mm_to_image_px"][static_cast<std::size_t>(i)].get<double>();
        std::vector<cv::Point2d> mm{{0, 0}, {406.4, 0}, {406.4, 508}, {0, 508}, {203, 254}}, want, got;
        cv::perspectiveTransform(mm, want, cv::Mat(kH));
        cv::perspectiveTransform(mm, got, cv::Mat(h));
        for (std::size_t i = 0; i < mm.size(); ++i)
            EXPECT_LT(cv::norm(want[i] - got[i]), 2.0) << when << ": platen " << mm[i] << " -> " << got[i] << ", truth " << want[i];
        EXPECT_FALSE(cal["flatfield"].is_null()) << when << ": the white board photo gives a flat field";
    };

    // The camera takes the target, then the white board, as they appear (an image that was in the
    // folder before is an old photo, not the calibration's).
    auto photographer = [&](const std::string& first, const std::string& second) {
        return std::thread([&, first, second] {
            std::this_thread::sleep_for(1500ms);
            write_photo(target_photo, first);
            std::this_thread::sleep_for(3000ms);
            write_photo(white_photo, second);
        });
    };
    write_photo(white_photo, "0-old-garment");

    // 1. No agent running: the camera is opened by the command itself.
    start_agent(cfg);  // writes the config file...
    ASSERT_TRUE(agent().terminate());  // ...and leaves no agent answering
    std::thread first = photographer("1-target", "2-white");
    auto direct = run_pressline({"calibrate", "--config", agent().config_path().string(), "--camera", "cam-1"}, 60s);
    first.join();
    ASSERT_EQ(direct.status.code(), 0) << direct.out << direct.err;
    EXPECT_NE(direct.err.find("no agent answers"), std::string::npos) << direct.err;
    check_calibration("direct");
    EXPECT_TRUE(fs::exists(calibration_.parent_path() / "cam-1.target.jpg"));

    // 2. With the agent running (it holds the camera): through its snapshot.
    fs::remove(calibration_);
    const auto log_from = agent().log_size();
    agent().start();
    ASSERT_TRUE(agent().wait_log("camera cam-1 open", 20s, log_from)) << agent().log();
    std::thread second = photographer("3-target", "4-white");
    auto through = run_pressline({"calibrate", "--config", agent().config_path().string(), "--camera", "cam-1"}, 60s);
    second.join();
    ASSERT_EQ(through.status.code(), 0) << through.out << through.err << agent().log();
    EXPECT_EQ(through.err.find("no agent answers"), std::string::npos) << through.err;
    check_calibration("through the agent");
}
