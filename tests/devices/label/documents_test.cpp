// Label and ticket documents, checked the way the factory checks them: barcodes decoded by a
// scanner (zbarimg) from rendered pixels, text read back from the PDF (pdftotext), ZPL rendered
// offline (tests/tools/zpl-render: zpl-renderer-js under Node 20) at the printer's resolution.
//
// Needs on PATH: pdftoppm, pdftotext, pdfinfo, pdfimages (poppler-utils), zbarimg (zbar-tools),
// node; and `npm ci --prefix tests/tools/zpl-render` once ($PRESSLINE_ZPL_RENDER_DIR overrides
// where the tool is). $PRESSLINE_KEEP_TEST_FILES=1 keeps every test's files (failed tests keep
// theirs anyway) for a look at the labels.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <zint.h>

#include "pressline/devices/label/documents.hpp"

namespace fs = std::filesystem;
using namespace pressline::devices::label;

namespace {

// ---- processes and files ----

struct Output {
    int status = -1;
    std::string out;
};

// Runs a shell command, returns its exit status and stdout.
Output run(const std::string& cmd) {
    Output o;
    std::FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) return o;
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) o.out.append(buf, n);
    const int st = ::pclose(p);
    o.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return o;
}

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

bool on_path(const std::string& tool) {
    return run(fmt::format("command -v {} >/dev/null 2>&1", tool)).status == 0;
}

fs::path zpl_render_dir() {
    if (const char* env = std::getenv("PRESSLINE_ZPL_RENDER_DIR"); env != nullptr && *env) return env;
    return PRESSLINE_ZPL_RENDER_DIR;
}

void spit(const fs::path& p, std::string_view data) {
    std::ofstream out(p, std::ios::binary);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

std::vector<std::string> lines_sorted(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string line; std::getline(in, line);) {
        if (!line.empty()) out.push_back(line);
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
}

// A field of pdfinfo's output ("Page size" -> "288 x 432 pts").
std::string pdfinfo_field(const std::string& info, const std::string& name) {
    std::istringstream in(info);
    for (std::string line; std::getline(in, line);) {
        if (line.rfind(name + ":", 0) != 0) continue;
        const auto v = line.find_first_not_of(' ', name.size() + 1);
        return v == std::string::npos ? "" : line.substr(v);
    }
    return "";
}

std::string describe(const Problem& p) { return p.reason + ": " + p.message; }

// The document, or a test failure naming the problem.
#define ASSERT_DOC(var, expr)                                                            \
    auto var##_result = (expr);                                                          \
    ASSERT_TRUE(std::holds_alternative<std::string>(var##_result))                       \
        << describe(std::get<Problem>(var##_result));                                    \
    const std::string var = std::get<std::string>(var##_result)

template <class T>
Problem problem_of(const Result<T>& r) {
    if (const auto* p = std::get_if<Problem>(&r)) return *p;
    return Problem{"(none)", "(no problem: a document was made)"};
}

// ---- sample data ----

ShippingLabel sample_label() {
    ShippingLabel l;
    l.order_id = "O-2026-0042";
    l.ship_to = {"Анна Петрова", "Γιώργος Παπαδόπουλος", "ул. Тверская, д. 7", "кв. 12",
                 "Москва", "", "125009", "RU", "+7 495 000-00-00"};
    l.ship_from = {"山田太郎", "Pressline Factory", "1 Print Way", "", "Portland", "OR", "97201",
                   "US", ""};
    l.carrier = "ups";
    l.service = "worldwide_saver";
    l.tracking_number = "1Z999AA10123456784";
    return l;
}

// An artwork thumbnail: colours, a transparent background, a dark shape.
std::vector<std::uint8_t> sample_thumbnail() {
    cv::Mat bgra(300, 240, CV_8UC4, cv::Scalar(0, 0, 0, 0));
    cv::circle(bgra, {120, 120}, 90, cv::Scalar(30, 60, 200, 255), cv::FILLED);
    cv::rectangle(bgra, {40, 200}, {200, 280}, cv::Scalar(20, 20, 20, 255), cv::FILLED);
    for (int x = 0; x < 240; ++x) cv::line(bgra, {x, 0}, {x, 30}, cv::Scalar(x, 255 - x, 128, 255));
    std::vector<std::uint8_t> png;
    cv::imencode(".png", bgra, png);
    return png;
}

Ticket sample_ticket() {
    Ticket t;
    t.job_id = "J-2026-000123-1";
    t.order_id = "O-2026-0042";
    t.attempt = 2;
    t.sku = "TEE-ORG-BLK-L";
    t.product_type = "t-shirt, organic cotton";
    t.size = "L";
    t.garment_color = "black";
    t.placement = "front, 280 mm wide, x 0 mm, y 75 mm";
    t.platen = "adult 16x18";
    t.priority = "express";
    t.due_by = "2026-11-27T12:00:00Z";
    t.device = "dtg-hall-a-2";
    t.thumbnail_png = sample_thumbnail();
    return t;
}

// ---- pictures ----

struct Box {
    int x = 0, y = 0, w = 0, h = 0;
};

// The Code 128: the tallest band of identical pixel rows that each cross the bars many times
// (text rows differ from one row to the next, dithered pictures too). Bounding box of its ink.
std::optional<Box> find_code128(const cv::Mat& gray) {
    cv::Mat bw;
    cv::threshold(gray, bw, 128, 255, cv::THRESH_BINARY);
    auto transitions = [&bw](int y) {
        int n = 0;
        const auto* r = bw.ptr<std::uint8_t>(y);
        for (int x = 1; x < bw.cols; ++x) n += r[x] != r[x - 1];
        return n;
    };
    int best_y = -1, best_len = 0, run_y = -1, run_len = 0;
    for (int y = 0; y < bw.rows; ++y) {
        const bool bars = transitions(y) >= 40;
        const bool same = y > 0 && run_len > 0 &&
                          cv::countNonZero(bw.row(y) != bw.row(y - 1)) == 0;
        if (bars && same) {
            ++run_len;
        } else if (bars) {
            run_y = y;
            run_len = 1;
        } else {
            run_len = 0;
        }
        if (run_len > best_len) {
            best_len = run_len;
            best_y = run_y;
        }
    }
    if (best_len < 40) return std::nullopt;
    const auto* r = bw.ptr<std::uint8_t>(best_y);
    int x0 = -1, x1 = -1;
    for (int x = 0; x < bw.cols; ++x) {
        if (r[x] == 0) {
            if (x0 < 0) x0 = x;
            x1 = x;
        }
    }
    return Box{x0, best_y, x1 - x0 + 1, best_len};
}

int dark_pixels(const cv::Mat& gray, Box b) {
    const cv::Rect r = cv::Rect(b.x, b.y, b.w, b.h) & cv::Rect(0, 0, gray.cols, gray.rows);
    cv::Mat roi = gray(r);
    return static_cast<int>(roi.total()) - cv::countNonZero(roi >= 128);
}

// ---- ZPL ^GFA (ASCII hex with ZPL compression), decoded independently of the encoder ----

struct Graphic {
    int x = 0, y = 0;  // ^FO before it
    std::size_t total = 0;
    int row_bytes = 0;
    std::vector<std::uint8_t> bytes;  // decompressed
};

std::vector<Graphic> graphics(const std::string& zpl) {
    std::vector<Graphic> out;
    // ^FOx,y[^FR]^GFA,total,total,row_bytes,data (no std::regex: it recurses per character).
    for (std::size_t at = zpl.find("^GFA,"); at != std::string::npos; at = zpl.find("^GFA,", at + 1)) {
        Graphic g;
        const std::size_t fo = zpl.rfind("^FO", at);
        EXPECT_NE(fo, std::string::npos) << "^GFA without ^FO";
        if (fo == std::string::npos) break;
        std::sscanf(zpl.c_str() + fo, "^FO%d,%d", &g.x, &g.y);
        std::size_t total2 = 0;
        int consumed = 0;
        EXPECT_EQ(std::sscanf(zpl.c_str() + at, "^GFA,%zu,%zu,%d,%n", &g.total, &total2,
                              &g.row_bytes, &consumed),
                  3);
        EXPECT_EQ(total2, g.total) << "^GFA byte count and field count differ";
        const std::size_t data_at = at + static_cast<std::size_t>(consumed);
        const std::string data = zpl.substr(data_at, zpl.find('^', data_at) - data_at);
        const std::size_t row_hex = static_cast<std::size_t>(g.row_bytes) * 2;
        std::string hex, line, prev;
        int count = 0;
        auto flush_if_full = [&] {
            if (line.size() >= row_hex) {
                hex += line;
                prev = line;
                line.clear();
            }
        };
        for (char ch : data) {
            if (ch == '\n' || ch == '\r') continue;
            if (ch >= 'G' && ch <= 'Y') {
                count += ch - 'G' + 1;
            } else if (ch >= 'g' && ch <= 'z') {
                count += 20 * (ch - 'g' + 1);
            } else if (ch == ',') {
                line.append(row_hex - line.size(), '0');
                flush_if_full();
            } else if (ch == '!') {
                line.append(row_hex - line.size(), 'F');
                flush_if_full();
            } else if (ch == ':') {
                line = prev;
                flush_if_full();
            } else {
                line.append(static_cast<std::size_t>(std::max(count, 1)), ch);
                count = 0;
                flush_if_full();
            }
        }
        EXPECT_TRUE(line.empty()) << "^GFA data ends inside a row";
        for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
            g.bytes.push_back(static_cast<std::uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
        }
        out.push_back(std::move(g));
    }
    return out;
}

// ---- the fixture ----

class Documents : public ::testing::Test {
protected:
    void SetUp() override {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        dir_ = fs::temp_directory_path() /
               fmt::format("pressline-documents-{}-{}.{}", ::getpid(), info->test_suite_name(),
                           info->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override {
        const char* keep = std::getenv("PRESSLINE_KEEP_TEST_FILES");
        if (HasFailure() || (keep != nullptr && *keep && std::string(keep) != "0")) {
            std::cerr << "test files kept in " << dir_.string() << "\n";
        } else {
            std::error_code ec;
            fs::remove_all(dir_, ec);
        }
    }

    fs::path file(const std::string& name) const { return dir_ / name; }

    fs::path save(const std::string& name, std::string_view data) const {
        spit(file(name), data);
        return file(name);
    }

    static void require_tools(std::initializer_list<const char*> tools) {
        for (const char* t : tools) {
            ASSERT_TRUE(on_path(t)) << t << " not found on PATH (tools/setup installs it)";
        }
    }

    // PDF page as an 8-bit gray PNG at dpi (a thermal printer's raster).
    fs::path pdf_to_png(const fs::path& pdf, int dpi = 203) const {
        const fs::path prefix = pdf.parent_path() / (pdf.stem().string() + fmt::format("-{}", dpi));
        const auto o = run(fmt::format("pdftoppm -r {} -gray -png -singlefile {} {} 2>&1", dpi,
                                       q(pdf), q(prefix)));
        EXPECT_EQ(o.status, 0) << "pdftoppm: " << o.out;
        return prefix.string() + ".png";
    }

    static std::string pdf_text(const fs::path& pdf) {
        // libharu's ToUnicode CMaps draw a harmless syntax warning from poppler on stderr.
        const auto o = run(fmt::format("pdftotext -enc UTF-8 {} - 2>/dev/null", q(pdf)));
        EXPECT_EQ(o.status, 0) << "pdftotext failed on " << pdf;
        return o.out;
    }

    // What a scanner reads from the picture, one entry per symbol, sorted.
    static std::vector<std::string> scan(const fs::path& png) {
        return lines_sorted(run(fmt::format("zbarimg --nodbus -q --raw {} 2>/dev/null", q(png))).out);
    }

    struct RenderJob {
        fs::path zpl;
        fs::path png;
        double width_mm = 101.6, height_mm = 152.4;
        int dpmm = 8;
    };

    // Renders ZPL files to PNG in one Node process (start-up and wasm init paid once).
    void render(const std::vector<RenderJob>& jobs) const {
        ASSERT_NO_FATAL_FAILURE(require_tools({"node"}));
        const fs::path tool = zpl_render_dir();
        ASSERT_TRUE(fs::exists(tool / "render.cjs")) << "no render.cjs in " << tool;
        ASSERT_TRUE(fs::exists(tool / "node_modules" / "zpl-renderer-js" / "package.json"))
            << "the ZPL renderer is not installed in " << tool
            << ": run `npm ci --prefix tests/tools/zpl-render` (from the repository root)";
        std::string list;
        for (const auto& j : jobs) {
            list += fmt::format("{} {} {} {} {}\n", j.zpl.string(), j.png.string(), j.width_mm,
                                j.height_mm, j.dpmm);
        }
        const fs::path list_file = save("render-jobs.txt", list);
        const auto o = run(fmt::format("node {} --batch {} 2>&1", q(tool / "render.cjs"), q(list_file)));
        ASSERT_EQ(o.status, 0) << "zpl-render failed: " << o.out;
        std::cerr << o.out;  // timings
        for (const auto& j : jobs) ASSERT_TRUE(fs::exists(j.png)) << j.png << " not rendered";
    }

    fs::path dir_;
};

// ---- ticket_code ----

TEST(TicketCode, IsPlJobAttempt) {
    EXPECT_EQ(ticket_code("J-2026-000123-1", 2), "PL:J-2026-000123-1:2");
    EXPECT_EQ(ticket_code("A", 1), "PL:A:1");
}

// ---- shipping label: PDF ----

TEST_F(Documents, ShippingLabelPdfScansAndReadsBackInEveryScript) {
    ASSERT_NO_FATAL_FAILURE(require_tools({"pdftoppm", "pdftotext", "pdfinfo", "zbarimg"}));
    ShippingLabel l = sample_label();
    l.ship_from.company = "Pressline 東京 Factory";  // DejaVu, fallback font, DejaVu in one line
    ASSERT_DOC(pdf, pdf_shipping_label(l, Calibration{}));
    ASSERT_EQ(pdf.rfind("%PDF-", 0), 0u);
    const fs::path f = save("label.pdf", pdf);

    EXPECT_EQ(scan(pdf_to_png(f)), sorted({l.tracking_number, l.tracking_number}))
        << "Code 128 and QR code must both give the tracking number";

    const std::string text = pdf_text(f);
    for (const std::string& s :
         {std::string("Анна Петрова"), std::string("Γιώργος Παπαδόπουλος"), std::string("山田太郎"),
          std::string("ул. Тверская, д. 7"), std::string("125009 Москва"), l.tracking_number,
          std::string("UPS WORLDWIDE SAVER"), l.order_id, std::string("Pressline 東京 Factory")}) {
        EXPECT_NE(text.find(s), std::string::npos) << "pdftotext lacks \"" << s << "\":\n" << text;
    }
    const auto info = run(fmt::format("pdfinfo {} 2>/dev/null", q(f))).out;
    EXPECT_EQ(pdfinfo_field(info, "Page size"), "288 x 432 pts") << info;
    EXPECT_EQ(pdfinfo_field(info, "Pages"), "1") << info;
}

TEST_F(Documents, ShippingLabelPdfDigitTrackingNumberAt300Dpi) {
    ASSERT_NO_FATAL_FAILURE(require_tools({"pdftoppm", "zbarimg"}));
    ShippingLabel l = sample_label();
    l.tracking_number = "9400111899223197428490";  // USPS: 22 digits
    Calibration c;
    c.dpi = 300;
    ASSERT_DOC(pdf, pdf_shipping_label(l, c));
    const fs::path f = save("label300.pdf", pdf);
    EXPECT_EQ(scan(pdf_to_png(f, 300)), sorted({l.tracking_number, l.tracking_number}));
    EXPECT_EQ(scan(pdf_to_png(f, 203)), sorted({l.tracking_number, l.tracking_number}));
}

// ---- shipping label: ZPL ----

TEST_F(Documents, ShippingLabelZplScansAt203And300DpiAndSendsTextAsTextOrGraphic) {
    const ShippingLabel l = sample_label();
    ASSERT_DOC(zpl, zpl_shipping_label(l, Calibration{}));
    ASSERT_EQ(zpl.rfind("^XA", 0), 0u);
    EXPECT_NE(zpl.find("^XZ"), std::string::npos);
    EXPECT_NE(zpl.find("^CI28"), std::string::npos) << "UTF-8 field data needs ^CI28";
    // The printer's own barcodes.
    EXPECT_NE(zpl.find("^BCN,"), std::string::npos);
    EXPECT_NE(zpl.find("^FD" + l.tracking_number + "^FS"), std::string::npos);
    EXPECT_NE(zpl.find("^BQN,2,"), std::string::npos);
    EXPECT_NE(zpl.find("^FDMA," + l.tracking_number + "^FS"), std::string::npos);
    // Latin, Cyrillic and Greek go as font-0 text; Japanese as a graphic.
    EXPECT_NE(zpl.find("^FDАнна Петрова^FS"), std::string::npos) << zpl.substr(0, 1500);
    EXPECT_NE(zpl.find("^FDΓιώργος Παπαδόπουλος^FS"), std::string::npos);
    EXPECT_NE(zpl.find("^FDPressline Factory^FS"), std::string::npos);
    EXPECT_EQ(zpl.find("山田"), std::string::npos) << "CJK text must not go to the printer font";
    EXPECT_NE(zpl.find("^A0N,"), std::string::npos);

    const auto gfs = graphics(zpl);
    ASSERT_EQ(gfs.size(), 1u) << "one rasterised line (the Japanese name) expected";
    const Graphic& name = gfs.front();
    ASSERT_GT(name.row_bytes, 0);
    EXPECT_EQ(name.bytes.size(), name.total) << "^GFA byte count must match its data";
    EXPECT_EQ(name.total % static_cast<std::size_t>(name.row_bytes), 0u);
    const int name_h = static_cast<int>(name.total / static_cast<std::size_t>(name.row_bytes));
    const int ink = static_cast<int>(std::count_if(name.bytes.begin(), name.bytes.end(),
                                                   [](std::uint8_t b) { return b != 0; }));
    EXPECT_GT(ink, 20) << "the rasterised name is blank";

    // The same label for a 300 dpi printer, with a digits-only (USPS) tracking number.
    ShippingLabel usps = l;
    usps.tracking_number = "9400111899223197428490";
    Calibration c300;
    c300.dpi = 300;
    ASSERT_DOC(zpl300, zpl_shipping_label(usps, c300));
    EXPECT_NE(zpl300.find("^PW1200^LL1800"), std::string::npos);

    const RenderJob job{save("label.zpl", zpl), file("label.png")};
    const RenderJob job300{save("label300.zpl", zpl300), file("label300.png"), 101.6, 152.4, 12};
    ASSERT_NO_FATAL_FAILURE(render({job, job300}));
    EXPECT_EQ(scan(job300.png), sorted({usps.tracking_number, usps.tracking_number}));
    const cv::Mat png = cv::imread(job.png.string(), cv::IMREAD_GRAYSCALE);
    ASSERT_FALSE(png.empty());
    EXPECT_EQ(scan(job.png), sorted({l.tracking_number, l.tracking_number}));
    // The rendered graphic is where the ZPL put it, and it is not blank.
    const Box where{name.x, name.y, name.row_bytes * 8, name_h};
    EXPECT_GT(dark_pixels(png, where), 100) << "no ink where the Japanese name was placed";
    const auto bar = find_code128(png);
    ASSERT_TRUE(bar.has_value());
    EXPECT_GT(bar->w, 400) << "the Code 128 should be large (module >= 0.25 mm)";
}

// ---- job ticket ----

TEST_F(Documents, TicketPdfScansReadsBackAndCarriesTheThumbnail) {
    ASSERT_NO_FATAL_FAILURE(require_tools({"pdftoppm", "pdftotext", "pdfimages", "zbarimg"}));
    const Ticket t = sample_ticket();
    const std::string code = ticket_code(t.job_id, t.attempt);
    ASSERT_DOC(pdf, pdf_ticket(t, Calibration{}));
    const fs::path f = save("ticket.pdf", pdf);
    EXPECT_EQ(scan(pdf_to_png(f)), sorted({code, code})) << "QR and Code 128 carry " << code;
    const std::string text = pdf_text(f);
    for (const std::string& s :
         {"JOB " + t.job_id, "Order " + t.order_id, std::string("ATTEMPT 2"), std::string("EXPRESS"),
          t.sku, t.product_type, std::string("Size L"), std::string("Colour black"),
          "Placement: " + t.placement, "Platen: " + t.platen, "Due " + t.due_by,
          "Printer: " + t.device, code}) {
        EXPECT_NE(text.find(s), std::string::npos) << "pdftotext lacks \"" << s << "\":\n" << text;
    }
    const auto images = run(fmt::format("pdfimages -list {} 2>/dev/null", q(f))).out;
    EXPECT_EQ(std::count(images.begin(), images.end(), '\n'), 3) << "one image expected:\n" << images;
}

TEST_F(Documents, TicketWithLongTextsStillFitsAndScans) {
    // A demo order's placement wrapped to two lines and did not fit 4x6 in: the compact layout
    // (one line per detail row, a smaller QR code) must take it.
    ASSERT_NO_FATAL_FAILURE(require_tools({"pdftoppm", "pdftotext", "zbarimg"}));
    Ticket t = sample_ticket();
    t.placement = "left_chest, 90 mm wide, x +60 mm, y 60 mm";
    t.product_type = "hoodie, heavyweight organic cotton fleece, pullover";
    t.order_id = "ORD-DEMO-0003";
    t.job_id = "J-DEMO-0003-1";
    const std::string code = ticket_code(t.job_id, t.attempt);
    ASSERT_DOC(pdf, pdf_ticket(t, Calibration{}));
    const fs::path f = save("long-ticket.pdf", pdf);
    EXPECT_EQ(scan(pdf_to_png(f)), sorted({code, code}));
    EXPECT_NE(pdf_text(f).find("JOB " + t.job_id), std::string::npos);
    ASSERT_DOC(zpl, zpl_ticket(t, Calibration{}));
    EXPECT_NE(zpl.find("^FD" + code + "^FS"), std::string::npos);
}

TEST_F(Documents, TicketZplScansAfterRenderingWithDitheredThumbnail) {
    const Ticket t = sample_ticket();
    const std::string code = ticket_code(t.job_id, t.attempt);
    ASSERT_DOC(zpl, zpl_ticket(t, Calibration{}));
    EXPECT_NE(zpl.find("^FD" + code + "^FS"), std::string::npos);
    EXPECT_NE(zpl.find("^FDMA," + code + "^FS"), std::string::npos);
    EXPECT_NE(zpl.find("^FDJOB " + t.job_id + "^FS"), std::string::npos);
    EXPECT_NE(zpl.find("^FR^FDEXPRESS^FS"), std::string::npos) << "express in reverse";
    const auto gfs = graphics(zpl);
    ASSERT_EQ(gfs.size(), 1u) << "the thumbnail is the only graphic";
    const Graphic& thumb = gfs.front();
    EXPECT_EQ(thumb.bytes.size(), thumb.total);
    const int thumb_h = static_cast<int>(thumb.total / static_cast<std::size_t>(thumb.row_bytes));
    EXPECT_GT(thumb.row_bytes * 8, 200) << "thumbnail should be ~ 40 mm wide";

    const RenderJob job{save("ticket.zpl", zpl), file("ticket.png")};
    ASSERT_NO_FATAL_FAILURE(render({job}));
    const cv::Mat png = cv::imread(job.png.string(), cv::IMREAD_GRAYSCALE);
    EXPECT_EQ(scan(job.png), sorted({code, code}));
    const Box where{thumb.x, thumb.y, thumb.row_bytes * 8, thumb_h};
    const int dark = dark_pixels(png, where);
    const int area = where.w * where.h;
    // Dithered: a mix of black and white, neither blank nor solid.
    EXPECT_GT(dark, area / 10) << "thumbnail nearly blank";
    EXPECT_LT(dark, area * 9 / 10) << "thumbnail nearly solid";
}

TEST_F(Documents, TicketWithoutThumbnailAndMinimalFields) {
    ASSERT_NO_FATAL_FAILURE(require_tools({"pdftoppm", "zbarimg"}));
    Ticket t;
    t.job_id = "7";
    ASSERT_DOC(pdf, pdf_ticket(t, Calibration{}));
    EXPECT_EQ(scan(pdf_to_png(save("t.pdf", pdf))), sorted({"PL:7:1", "PL:7:1"}));
    ASSERT_DOC(zpl, zpl_ticket(t, Calibration{}));
    EXPECT_TRUE(graphics(zpl).empty());
}

// ---- calibration ----

TEST_F(Documents, CalibrationOffsetsMoveTheBarcodeInZpl) {
    const ShippingLabel l = sample_label();
    Calibration moved;  // content near the bottom edge moves off the label: y only 2 mm
    moved.x_offset_mm = 5;
    moved.y_offset_mm = 2;
    ASSERT_DOC(plain, zpl_shipping_label(l, Calibration{}));
    ASSERT_DOC(shifted, zpl_shipping_label(l, moved));
    EXPECT_NE(plain.find("^LH0,0"), std::string::npos);
    EXPECT_NE(shifted.find("^LH40,16"), std::string::npos) << "5 mm, 2 mm at 203 dpi: 40, 16 dots";
    const RenderJob a{save("plain.zpl", plain), file("plain.png")};
    const RenderJob b{save("shifted.zpl", shifted), file("shifted.png")};
    ASSERT_NO_FATAL_FAILURE(render({a, b}));
    const auto pa = find_code128(cv::imread(a.png.string(), cv::IMREAD_GRAYSCALE));
    const auto pb = find_code128(cv::imread(b.png.string(), cv::IMREAD_GRAYSCALE));
    ASSERT_TRUE(pa && pb);
    EXPECT_NEAR(pb->x - pa->x, 40, 1);
    EXPECT_NEAR(pb->y - pa->y, 16, 1);
    EXPECT_EQ(pb->w, pa->w);
    EXPECT_EQ(scan(b.png), sorted({l.tracking_number, l.tracking_number}));
}

TEST_F(Documents, CalibrationOffsetsMoveTheBarcodeInPdfAndSizeThePage) {
    ASSERT_NO_FATAL_FAILURE(require_tools({"pdftoppm", "pdfinfo", "zbarimg"}));
    const ShippingLabel l = sample_label();
    Calibration moved;  // content near the bottom edge moves off the label: y only 2 mm
    moved.x_offset_mm = 5;
    moved.y_offset_mm = 2;
    ASSERT_DOC(plain, pdf_shipping_label(l, Calibration{}));
    ASSERT_DOC(shifted, pdf_shipping_label(l, moved));
    const fs::path fa = pdf_to_png(save("plain.pdf", plain));
    const fs::path fb = pdf_to_png(save("shifted.pdf", shifted));
    const auto pa = find_code128(cv::imread(fa.string(), cv::IMREAD_GRAYSCALE));
    const auto pb = find_code128(cv::imread(fb.string(), cv::IMREAD_GRAYSCALE));
    ASSERT_TRUE(pa && pb);
    EXPECT_NEAR(pb->x - pa->x, 40, 1);
    EXPECT_NEAR(pb->y - pa->y, 16, 1);
    EXPECT_EQ(scan(fb), sorted({l.tracking_number, l.tracking_number}));

    Calibration back;  // left and up
    back.x_offset_mm = -2;
    back.y_offset_mm = -2;
    ASSERT_DOC(moved_back, pdf_shipping_label(l, back));
    const fs::path fc = pdf_to_png(save("back.pdf", moved_back));
    const auto pc = find_code128(cv::imread(fc.string(), cv::IMREAD_GRAYSCALE));
    ASSERT_TRUE(pc);
    EXPECT_NEAR(pc->x - pa->x, -16, 1);
    EXPECT_NEAR(pc->y - pa->y, -16, 1);

    Calibration other;  // 100 x 150 mm: the page follows the calibration
    other.width_mm = 100;
    other.height_mm = 150;
    ASSERT_DOC(sized, pdf_shipping_label(l, other));
    const auto info = run(fmt::format("pdfinfo {} 2>/dev/null", q(save("sized.pdf", sized)))).out;
    EXPECT_EQ(pdfinfo_field(info, "Page size"), "283.465 x 425.197 pts") << info;
}

TEST_F(Documents, CalibrationCommandsAsConfigured) {
    const ShippingLabel l = sample_label();
    Calibration c;
    ASSERT_DOC(defaults, zpl_shipping_label(l, c));
    EXPECT_NE(defaults.find("^PW812^LL1218^LH0,0^LS0^LT0^MNY"), std::string::npos);
    EXPECT_EQ(defaults.find("~SD"), std::string::npos) << "darkness -1: the printer's own";
    EXPECT_EQ(defaults.find("^MD"), std::string::npos);

    c.darkness = 25;
    c.media = MediaType::black_mark;
    ASSERT_DOC(mark, zpl_shipping_label(l, c));
    EXPECT_NE(mark.find("^MNM"), std::string::npos);
    EXPECT_NE(mark.find("~SD25"), std::string::npos);

    c.darkness = 0;
    c.media = MediaType::continuous;
    c.dpi = 300;
    c.height_mm = 200;
    c.x_offset_mm = 2.5;
    ASSERT_DOC(cont, zpl_ticket(sample_ticket(), c));
    EXPECT_NE(cont.find("^PW1200^LL2362^LH30,0^LS0^LT0^MNN~SD00"), std::string::npos)
        << cont.substr(0, 80);

    // Left and up: ^LS (shift left) and ^LT (label top), which move whole formats.
    c = Calibration{};
    c.x_offset_mm = -2;
    c.y_offset_mm = -2;
    ASSERT_DOC(back, zpl_shipping_label(l, c));
    EXPECT_NE(back.find("^LH0,0^LS16^LT-16^MNY"), std::string::npos) << back.substr(0, 80);
    c.y_offset_mm = -20;  // ^LT moves at most 120 dots; a PDF can do it
    const Problem too_far = problem_of(zpl_shipping_label(l, c));
    EXPECT_EQ(too_far.reason, "invalid_field");
    EXPECT_NE(too_far.message.find("calibration.y_offset_mm: "), std::string::npos) << too_far.message;
    EXPECT_TRUE(std::holds_alternative<std::string>(pdf_shipping_label(l, c)));
}

// ---- carrier ZPL passed through ----

TEST_F(Documents, ZplCalibratedInsertsAfterEveryXaAndKeepsTheCarrierContent) {
    const std::string first =
        "^XA\n^CI28\n^PW812\n^LL1218\n"
        "^FO40,40^A0N,40,40^FDSHIP TO: ACME Corp^FS\n"
        "^FO40,200^BY3,3,150^BCN,150,Y,N,N^FD1Z999AA10123456784^FS\n"
        "^XZ\n";
    const std::string second =
        "^XA^LH10,20\n"
        "^FO40,500^BQN,2,8^FDMA,https://example.com/t/2^FS\n"
        "^XZ\n";
    const std::string carrier = "~JA\n" + first + second;
    Calibration c;
    c.x_offset_mm = 5;
    c.darkness = 20;
    c.media = MediaType::black_mark;
    ASSERT_DOC(out, zpl_calibrated(carrier, c));
    // First format: its own ^PW/^LL stay and nothing overrides them.
    EXPECT_EQ(out.rfind("~JA\n^XA^LH40,0^LS0^LT0^MNM~SD20\n^CI28\n^PW812\n^LL1218\n", 0), 0u) << out;
    // Second format: no ^PW/^LL of its own, so the calibrated ones; its ^LH shifted by 40 dots.
    EXPECT_NE(out.find("^XA^PW812^LL1218^LH40,0^LS0^LT0^MNM~SD20^LH50,20\n"), std::string::npos) << out;
    for (const std::string& kept :
         {std::string("^FO40,40^A0N,40,40^FDSHIP TO: ACME Corp^FS"),
          std::string("^FO40,200^BY3,3,150^BCN,150,Y,N,N^FD1Z999AA10123456784^FS"),
          std::string("^FO40,500^BQN,2,8^FDMA,https://example.com/t/2^FS")}) {
        EXPECT_NE(out.find(kept), std::string::npos) << kept;
    }
    auto commands = [](const std::string& z) {
        return std::count(z.begin(), z.end(), '^') + std::count(z.begin(), z.end(), '~');
    };
    EXPECT_EQ(commands(out) - commands(carrier), 5 + 7) << "^LH ^LS ^LT ^MN ~SD (+ ^PW ^LL) per format";

    const RenderJob job{save("carrier.zpl", out), file("carrier.png")};
    ASSERT_NO_FATAL_FAILURE(render({job}));
    ASSERT_TRUE(fs::exists(file("carrier-2.png"))) << "one picture per format";
    EXPECT_EQ(scan(job.png), std::vector<std::string>{"1Z999AA10123456784"});
    EXPECT_EQ(scan(file("carrier-2.png")), std::vector<std::string>{"https://example.com/t/2"});
}

TEST(ZplCalibrated, RefusesDataWithoutAFormat) {
    for (const char* bad : {"", "hello", "^FO10,10^FDx^FS", "^XA^FDx^FS", "^XA^XA^XZ"}) {
        const auto r = zpl_calibrated(bad, Calibration{});
        const Problem p = problem_of(r);
        EXPECT_EQ(p.reason, "invalid_field") << "for \"" << bad << "\"";
        EXPECT_NE(p.message.find("carrier_zpl"), std::string::npos) << p.message;
    }
}

// ---- PNG labels ----

// A carrier label image at 300 dpi: a Code 128 and a QR code drawn by zint, 6 px modules.
std::vector<std::uint8_t> carrier_png(const std::string& code128, const std::string& qr) {
    cv::Mat label(1800, 1200, CV_8UC3, cv::Scalar(255, 255, 255));
    auto draw = [&label](int symbology, const std::string& data, float scale, int x, int y) {
        zint_symbol* s = ZBarcode_Create();
        s->symbology = symbology;
        s->scale = scale;  // 2 * scale pixels per module
        s->show_hrt = 0;
        s->height = 50;
        const int rc = ZBarcode_Encode_and_Buffer(
            s, reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()), 0);
        EXPECT_LT(rc, ZINT_ERROR) << s->errtxt;
        const cv::Rect where(x, y, s->bitmap_width, s->bitmap_height);
        EXPECT_EQ(where & cv::Rect(0, 0, label.cols, label.rows), where) << "symbol off the label";
        if (rc < ZINT_ERROR && (where & cv::Rect(0, 0, label.cols, label.rows)) == where) {
            cv::Mat rgb(s->bitmap_height, s->bitmap_width, CV_8UC3, s->bitmap);
            cv::Mat bgr;
            cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
            bgr.copyTo(label(where));
        }
        ZBarcode_Delete(s);
    };
    draw(BARCODE_CODE128, code128, 2.5f, 60, 300);  // 5 px modules at 300 dpi: 3.4 dots at 203
    draw(BARCODE_QRCODE, qr, 4.f, 100, 900);       // 8 px modules
    cv::putText(label, "CARRIER LABEL", {100, 150}, cv::FONT_HERSHEY_SIMPLEX, 3, cv::Scalar(0, 0, 0), 8);
    std::vector<std::uint8_t> png;
    cv::imencode(".png", label, png);
    return png;
}

TEST_F(Documents, ZplFromPngRendersBackToTheSameBarcodes) {
    const std::string tracking = "1Z999AA10123456784";
    const std::string url = "https://example.com/t/1Z999AA10123456784";
    const auto png = carrier_png(tracking, url);
    ASSERT_FALSE(png.empty());
    Calibration c;
    c.darkness = 18;
    ASSERT_DOC(zpl, zpl_from_png(png, c));
    EXPECT_EQ(zpl.rfind("^XA", 0), 0u);
    EXPECT_NE(zpl.find("^PW812^LL1218^LH0,0^LS0^LT0^MNY~SD18"), std::string::npos);
    const auto gfs = graphics(zpl);
    ASSERT_EQ(gfs.size(), 1u);
    EXPECT_EQ(gfs[0].row_bytes, 102) << "812 dots wide";
    EXPECT_EQ(gfs[0].total, 102u * 1218u) << "1800 px at 300 dpi -> 1218 dots";
    EXPECT_EQ(gfs[0].bytes.size(), gfs[0].total);
    EXPECT_LT(zpl.size(), gfs[0].total) << "ASCII compression expected to beat plain hex";

    const RenderJob job{save("png.zpl", zpl), file("png.png")};
    ASSERT_NO_FATAL_FAILURE(render({job}));
    EXPECT_EQ(scan(job.png), sorted({tracking, url}));
}

TEST_F(Documents, PdfFromPngScansBackOnAPageOfTheLabelSize) {
    ASSERT_NO_FATAL_FAILURE(require_tools({"pdftoppm", "pdfinfo", "zbarimg"}));
    const std::string tracking = "1Z999AA10123456784";
    const std::string url = "https://example.com/t/1Z999AA10123456784";
    const auto png = carrier_png(tracking, url);
    ASSERT_FALSE(png.empty());
    ASSERT_DOC(pdf, pdf_from_png(png, Calibration{}));
    const fs::path f = save("carrier.pdf", pdf);
    const auto info = run(fmt::format("pdfinfo {} 2>/dev/null", q(f))).out;
    EXPECT_EQ(pdfinfo_field(info, "Page size"), "288 x 432 pts") << info;
    EXPECT_EQ(scan(pdf_to_png(f)), sorted({tracking, url}));
    EXPECT_EQ(problem_of(pdf_from_png({1, 2, 3}, Calibration{})).reason, "image_invalid");
}

TEST(ZplFromPng, GraphicIsPixelExactAtTheLabelResolution) {
    // 812 px wide = 4 in at 203 dpi: no scaling, so every pixel must survive the compression:
    // blank rows, repeated rows, full rows, long runs, single pixels, trailing zeros.
    cv::Mat img(60, 812, CV_8UC1, cv::Scalar(255));
    cv::rectangle(img, {0, 10}, {811, 14}, cv::Scalar(0), cv::FILLED);      // full black rows
    cv::rectangle(img, {100, 20}, {700, 29}, cv::Scalar(0), cv::FILLED);    // repeated rows
    for (int x = 0; x < 812; x += 3) img.at<std::uint8_t>(35, x) = 0;     // single pixels
    cv::line(img, {0, 59}, {811, 40}, cv::Scalar(0), 1);                   // a slope
    img.at<std::uint8_t>(45, 811) = 0;                                     // last pixel
    std::vector<std::uint8_t> png;
    cv::imencode(".png", img, png);
    Calibration c;
    c.height_mm = 20;
    const auto r = zpl_from_png(png, c);
    ASSERT_TRUE(std::holds_alternative<std::string>(r)) << describe(problem_of(r));
    const auto gfs = graphics(std::get<std::string>(r));
    ASSERT_EQ(gfs.size(), 1u);
    const Graphic& g = gfs[0];
    ASSERT_EQ(g.row_bytes, 102);
    ASSERT_EQ(g.total, 102u * 60u);
    ASSERT_EQ(g.bytes.size(), g.total);
    int wrong = 0;
    for (int y = 0; y < 60; ++y) {
        for (int x = 0; x < 812; ++x) {
            const bool black = (g.bytes[static_cast<std::size_t>(y) * 102 + x / 8] >> (7 - x % 8)) & 1;
            wrong += black != (img.at<std::uint8_t>(y, x) < 128);
        }
    }
    EXPECT_EQ(wrong, 0);
}

// ---- invalid input ----

TEST(Validation, ShippingLabelProblemsNameTheirFields) {
    ShippingLabel l = sample_label();
    l.tracking_number.clear();
    l.ship_to.name.clear();
    l.ship_to.line1.clear();
    l.ship_to.country.clear();
    l.ship_to.postal_code = "12\n345";
    for (const auto& r : {zpl_shipping_label(l, Calibration{}), pdf_shipping_label(l, Calibration{})}) {
        const Problem p = problem_of(r);
        EXPECT_EQ(p.reason, "invalid_field");
        for (const char* field : {"tracking_number: required", "ship_to.name: required",
                                  "ship_to.line1: required", "ship_to.country: required",
                                  "ship_to.postal_code: contains a control character"}) {
            EXPECT_NE(p.message.find(field), std::string::npos) << field << " in: " << p.message;
        }
    }
}

TEST(Validation, TrackingNumberMustBeCode128Data) {
    for (const std::string& bad : std::vector<std::string>{"1Z 999", "1Zé99", "1Z^XZ", "1Z~JR", "1Z>99",
                                                           std::string(51, '9')}) {
        ShippingLabel l = sample_label();
        l.tracking_number = bad;
        const Problem p = problem_of(zpl_shipping_label(l, Calibration{}));
        EXPECT_EQ(p.reason, "invalid_field") << bad;
        EXPECT_EQ(p.message.rfind("tracking_number: ", 0), 0u) << p.message;
    }
}

TEST(Validation, TextMustBeUtf8AndCalibrationInRange) {
    ShippingLabel l = sample_label();
    l.ship_to.city = "M\xC3\x28nchen";
    Calibration c;
    c.dpi = 50;
    c.darkness = 31;
    c.x_offset_mm = -60;
    const Problem p = problem_of(pdf_shipping_label(l, c));
    EXPECT_EQ(p.reason, "invalid_field");
    for (const char* field : {"ship_to.city: not valid UTF-8", "calibration.dpi", "calibration.darkness",
                              "calibration.x_offset_mm"}) {
        EXPECT_NE(p.message.find(field), std::string::npos) << field << " in: " << p.message;
    }
    const Problem q2 = problem_of(zpl_calibrated("^XA^XZ", c));
    EXPECT_NE(q2.message.find("calibration.dpi"), std::string::npos) << q2.message;
}

TEST(Validation, TicketProblems) {
    Ticket t = sample_ticket();
    t.job_id = "job 1";
    t.attempt = 0;
    const Problem p = problem_of(zpl_ticket(t, Calibration{}));
    EXPECT_EQ(p.reason, "invalid_field");
    EXPECT_NE(p.message.find("job_id: "), std::string::npos) << p.message;
    EXPECT_NE(p.message.find("attempt: "), std::string::npos) << p.message;
    t.job_id.clear();
    t.attempt = 1;
    EXPECT_NE(problem_of(pdf_ticket(t, Calibration{})).message.find("job_id: required"),
              std::string::npos);

    t = sample_ticket();
    t.thumbnail_png = {0x89, 'P', 'N', 'G', 1, 2, 3};
    for (const auto& r : {zpl_ticket(t, Calibration{}), pdf_ticket(t, Calibration{})}) {
        const Problem bad = problem_of(r);
        EXPECT_EQ(bad.reason, "image_invalid");
        EXPECT_NE(bad.message.find("thumbnail_png"), std::string::npos) << bad.message;
    }
    const Problem not_png = problem_of(zpl_from_png({1, 2, 3}, Calibration{}));
    EXPECT_EQ(not_png.reason, "image_invalid");
}

TEST(Validation, LabelTooSmallForTheContentIsAProblem) {
    Calibration c;
    c.height_mm = 80;
    const Problem p = problem_of(pdf_shipping_label(sample_label(), c));
    EXPECT_EQ(p.reason, "render_failed");
    EXPECT_NE(p.message.find("does not fit"), std::string::npos) << p.message;
    c = Calibration{};
    c.width_mm = 30;  // no room for a readable Code 128
    EXPECT_EQ(problem_of(zpl_shipping_label(sample_label(), c)).reason, "barcode_failed");
}

// ---- fonts ----

TEST(Fonts, MissingFontFileIsFontMissingNamingThePath) {
    Fonts f;
    f.regular = "/nonexistent/DejaVuSans.ttf";
    for (const auto& r : {zpl_shipping_label(sample_label(), Calibration{}, f),
                          pdf_shipping_label(sample_label(), Calibration{}, f)}) {
        const Problem p = problem_of(r);
        EXPECT_EQ(p.reason, "font_missing");
        EXPECT_NE(p.message.find("/nonexistent/DejaVuSans.ttf"), std::string::npos) << p.message;
    }
}

TEST(Fonts, FallbackFontIsNeededOnlyForTextDejaVuLacks) {
    Fonts f;
    f.fallback = "/nonexistent/Fallback.ttf";
    ShippingLabel l = sample_label();
    l.ship_from.name = "Pressline";  // no CJK left
    EXPECT_TRUE(std::holds_alternative<std::string>(pdf_shipping_label(l, Calibration{}, f)));
    EXPECT_TRUE(std::holds_alternative<std::string>(zpl_shipping_label(l, Calibration{}, f)));
    l.ship_from.name = "山田太郎";
    const Problem p = problem_of(zpl_shipping_label(l, Calibration{}, f));
    EXPECT_EQ(p.reason, "font_missing");
    EXPECT_NE(p.message.find("/nonexistent/Fallback.ttf"), std::string::npos) << p.message;
}

}  // namespace
