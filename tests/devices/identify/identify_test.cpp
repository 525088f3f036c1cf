// Job ticket QR codes found in camera frames: parsing, and detection in a photo-like frame
// (the code encoded by OpenCV's encoder, printed at ticket size, photographed at an angle).
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

#include "pressline/devices/qa/identify.hpp"

namespace qa = pressline::devices::qa;

TEST(TicketCode, ParsesJobAndAttempt) {
    auto c = qa::parse_ticket_code("PL:J-2026-000123-1:2");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->job_id, "J-2026-000123-1");
    EXPECT_EQ(c->attempt, 2);
    auto colon = qa::parse_ticket_code("PL:shop:a:b:12");  // a job id with colons
    ASSERT_TRUE(colon);
    EXPECT_EQ(colon->job_id, "shop:a:b");
    EXPECT_EQ(colon->attempt, 12);
}

TEST(TicketCode, RejectsAnythingElse) {
    for (const char* text : {"", "PL:", "PL:J-1", "PL:J-1:", "PL::3", "PL:J-1:0", "PL:J-1:x", "PL:J-1:2x",
                             "pl:J-1:2", "https://example.com/PL:J-1:2", "PL:J-1:-1"})
        EXPECT_FALSE(qa::parse_ticket_code(text)) << text;
}

namespace {

// A white ticket with the code, on a textured dark garment, photographed in perspective.
cv::Mat photo_with_codes(const std::vector<std::string>& texts) {
    cv::Mat scene(1500, 2000, CV_8UC3, cv::Scalar(60, 40, 30));
    cv::Mat noise(scene.size(), CV_8UC3);
    cv::randn(noise, 0, 6);
    scene += noise;
    int x = 200;
    for (const auto& text : texts) {
        cv::Mat qr;
        cv::QRCodeEncoder::create()->encode(text, qr);
        cv::resize(qr, qr, {}, 6, 6, cv::INTER_NEAREST);  // ~6 px per module
        cv::Mat ticket(qr.rows + 80, qr.cols + 80, CV_8UC3, cv::Scalar(245, 245, 245));
        cv::Mat qr3;
        cv::cvtColor(qr, qr3, cv::COLOR_GRAY2BGR);
        qr3.copyTo(ticket(cv::Rect(40, 40, qr.cols, qr.rows)));
        ticket.copyTo(scene(cv::Rect(x, 400, ticket.cols, ticket.rows)));
        x += ticket.cols + 250;
    }
    const std::vector<cv::Point2f> from{{0, 0}, {2000, 0}, {2000, 1500}, {0, 1500}},
        to{{60, 30}, {1950, 90}, {1990, 1480}, {20, 1420}};
    cv::Mat photo;
    cv::warpPerspective(scene, photo, cv::getPerspectiveTransform(from, to), scene.size());
    cv::GaussianBlur(photo, photo, {0, 0}, 0.8);
    std::vector<std::uint8_t> jpeg;
    cv::imencode(".jpg", photo, jpeg, {cv::IMWRITE_JPEG_QUALITY, 88});
    return cv::imdecode(jpeg, cv::IMREAD_COLOR);
}

}  // namespace

TEST(TicketCode, FoundInAPhotoOfTheTicket) {
    auto codes = qa::find_ticket_codes(photo_with_codes({"PL:J-2026-000777-1:3"}));
    ASSERT_EQ(codes.size(), 1u);
    EXPECT_EQ(codes[0].job_id, "J-2026-000777-1");
    EXPECT_EQ(codes[0].attempt, 3);
    EXPECT_EQ(codes[0].corners.size(), 4u);
}

TEST(TicketCode, OtherCodesInTheFrameAreIgnored) {
    auto codes = qa::find_ticket_codes(photo_with_codes({"https://carrier.example/track/9400", "PL:J-9:1"}));
    ASSERT_EQ(codes.size(), 1u);
    EXPECT_EQ(codes[0].job_id, "J-9");
    EXPECT_EQ(codes[0].attempt, 1);
}

TEST(TicketCode, NoCodeNoGuess) {
    EXPECT_TRUE(qa::find_ticket_codes(photo_with_codes({})).empty());
    EXPECT_TRUE(qa::find_ticket_codes(photo_with_codes({"ORDER-123"})).empty());
    EXPECT_TRUE(qa::find_ticket_codes(cv::Mat()).empty());
}
