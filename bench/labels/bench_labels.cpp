// bench_labels: how long making and sending paperwork takes (numbers for issue notes).
//   bench_labels [runs]                       documents only
//   bench_labels [runs] --tcp PORT OUTDIR     also send labels to tools/sim/pressline-zpl-printer
//   BENCH_THUMBNAIL_PNG=FILE                  also tickets with FILE as the artwork thumbnail
//                                             (the agent passes the job's reference.png)
// Prints median and max per step in milliseconds.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <fmt/format.h>

#include "pressline/devices/label/documents.hpp"
#include "pressline/drivers/tcp.hpp"

namespace label = pressline::devices::label;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

void report(const std::string& what, std::vector<double> v, std::size_t bytes) {
    std::sort(v.begin(), v.end());
    fmt::print("{:<34} median {:8.2f} ms   max {:8.2f} ms   ({} bytes)\n", what, v[v.size() / 2], v.back(), bytes);
}

template <class F>
void time_doc(const std::string& what, int runs, F make) {
    std::vector<double> t;
    std::size_t bytes = 0;
    for (int i = 0; i < runs; ++i) {
        const auto t0 = Clock::now();
        auto r = make();
        t.push_back(ms_since(t0));
        if (auto* p = std::get_if<label::Problem>(&r)) {
            fmt::print(stderr, "{}: {}: {}\n", what, p->reason, p->message);
            std::exit(1);
        }
        bytes = std::get<std::string>(r).size();
    }
    report(what, t, bytes);
}

}  // namespace

int main(int argc, char** argv) {
    const int runs = argc > 1 ? std::max(1, std::atoi(argv[1])) : 20;
    label::ShippingLabel l;
    l.order_id = "ORD-BENCH-1";
    l.ship_to = {"Анна Петрова", "", "1 Main St", "Apt 2", "Springfield", "IL", "62701", "US", ""};
    l.ship_from = {"Pressline Demo Shop", "", "1 Print Way", "", "Leeds", "", "LS1 1AA", "GB", ""};
    l.carrier = "usps";
    l.service = "ground_advantage";
    l.tracking_number = "9400100000000000123456";
    label::ShippingLabel cjk = l;
    cjk.ship_to.name = "山田太郎";
    label::Ticket t;
    t.job_id = "J-2026-000123-1";
    t.order_id = "ORD-000123";
    t.attempt = 1;
    t.sku = "TEE-BLK-L";
    t.product_type = "tshirt";
    t.size = "L";
    t.garment_color = "black";
    t.placement = "front, 280 mm wide, x +0 mm, y 75 mm";
    t.platen = "16x20";
    t.priority = "express";
    t.due_by = "2026-11-27T16:00:00Z";
    t.device = "dtg-1";
    label::Calibration c;  // 203 dpi, 4x6 in

    fmt::print("bench_labels: {} runs each, 203 dpi 4x6 in\n", runs);
    time_doc("shipping label ZPL (Cyrillic)", runs, [&] { return label::zpl_shipping_label(l, c); });
    time_doc("shipping label ZPL (CJK as ^GFA)", runs, [&] { return label::zpl_shipping_label(cjk, c); });
    time_doc("shipping label PDF", runs, [&] { return label::pdf_shipping_label(l, c); });
    time_doc("ticket ZPL (no thumbnail)", runs, [&] { return label::zpl_ticket(t, c); });
    time_doc("ticket PDF (no thumbnail)", runs, [&] { return label::pdf_ticket(t, c); });

    if (const char* thumb = std::getenv("BENCH_THUMBNAIL_PNG")) {
        std::ifstream in(thumb, std::ios::binary);
        t.thumbnail_png.assign(std::istreambuf_iterator<char>(in), {});
        const std::string what = fmt::format("ticket ZPL + thumbnail ({} KB PNG)", t.thumbnail_png.size() / 1024);
        time_doc(what, runs, [&] { return label::zpl_ticket(t, c); });
        time_doc("ticket PDF + thumbnail", runs, [&] { return label::pdf_ticket(t, c); });
    }

    if (argc >= 5 && std::string(argv[2]) == "--tcp") {
        const auto port = static_cast<std::uint16_t>(std::atoi(argv[3]));
        const fs::path out = argv[4];
        const std::string zpl = std::get<std::string>(label::zpl_shipping_label(l, c));
        std::vector<double> sent, printed;
        for (int i = 0; i < runs; ++i) {
            std::size_t before = 0;
            for ([[maybe_unused]] const auto& e : fs::directory_iterator(out)) ++before;
            pressline::drivers::tcp::Client client({"127.0.0.1", port});
            const auto t0 = Clock::now();
            auto w = client.write(zpl);
            sent.push_back(ms_since(t0));
            if (!w) {
                fmt::print(stderr, "send: {}\n", w.message);
                return 1;
            }
            client.close();
            for (;;) {
                std::size_t n = 0;
                for ([[maybe_unused]] const auto& e : fs::directory_iterator(out)) ++n;
                if (n > before) break;
                std::this_thread::sleep_for(std::chrono::microseconds(200));
            }
            printed.push_back(ms_since(t0));
        }
        report("label sent over TCP (connect+write)", sent, zpl.size());
        report("label sent -> file at the printer", printed, zpl.size());
    }
    return 0;
}
