// bench_render: median wall time of each print-ready rendering step for a 4500 x 5400 RGBA
// artwork (15 x 18 in at 300 dpi) on a 16x20 platen. Usage: bench_render [runs=5] [out_dir].
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <unistd.h>
#include <vector>

#include <fmt/format.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "pressline/devices/render.hpp"

namespace fs = std::filesystem;
using namespace pressline::devices::render;

namespace {

// Artwork-like content: flat colour areas, a gradient, text-like strokes, a soft-alpha edge.
cv::Mat synthetic_artwork(int w, int h) {
    cv::Mat m(h, w, CV_8UC4, cv::Scalar(0, 0, 0, 0));
    cv::Mat grad(h / 3, w, CV_8UC4);
    for (int y = 0; y < grad.rows; ++y) {
        auto* p = grad.ptr<cv::Vec4b>(y);
        for (int x = 0; x < w; ++x) {
            p[x] = cv::Vec4b(static_cast<uchar>(x * 255 / w), static_cast<uchar>(y * 255 / grad.rows),
                             200, 255);
        }
    }
    grad.copyTo(m(cv::Rect(0, 0, w, grad.rows)));
    cv::circle(m, {w / 2, h / 2}, w / 3, cv::Scalar(30, 160, 240, 255), cv::FILLED, cv::LINE_AA);
    cv::circle(m, {w / 2, h / 2}, w / 4, cv::Scalar(250, 250, 250, 140), cv::FILLED, cv::LINE_AA);
    for (int i = 0; i < 40; ++i) {
        cv::putText(m, "PRESSLINE 2026", {100, h / 3 + 200 + i * 70}, cv::FONT_HERSHEY_DUPLEX, 2.5,
                    cv::Scalar(20 * (i % 12), 40, 255 - 5 * i, 255), 4, cv::LINE_AA);
    }
    return m;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    const int runs = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
    const fs::path out = argc > 2 ? fs::path(argv[2])
                                  : fs::temp_directory_path() / fmt::format("bench_render-{}", ::getpid());
    fs::create_directories(out);

    const cv::Mat art = synthetic_artwork(4500, 5400);
    const Platen platen = std::get<Platen>(platen_from_name("16x20"));
    const PrintFileMeta meta{"J-BENCH", 300, "sRGB IEC61966-2.1", "black", {0, 0, 0}};
    struct Case { const char* name; Placement p; };
    // 381 mm = 15 in: exactly the artwork's pixels (no resampling); 300 mm: INTER_AREA;
    const Case cases[] = {{"same size (381 mm)", {381, 0, 50}}, {"downscale (300 mm)", {300, 0, 50}}};

    for (const auto& c : cases) {
        std::vector<double> t_ref, t_refw, t_png, t_jpg, t_pdf;
        Reference ref;
        for (int i = 0; i < runs; ++i) {
            auto time = [](const std::function<void()>& f) {
                const auto a = std::chrono::steady_clock::now();
                f();
                return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a)
                    .count();
            };
            auto must = [](const auto& r) {
                if (const auto* p = std::get_if<Problem>(&r)) {
                    fmt::print(stderr, "{}: {}\n", p->reason, p->message);
                    std::exit(1);
                }
            };
            t_ref.push_back(time([&] {
                auto r = make_reference(art, platen, c.p, 300);
                must(r);
                ref = std::get<Reference>(std::move(r));
            }));
            t_refw.push_back(time([&] { must(write_reference(out, ref, meta)); }));
            t_png.push_back(time([&] { must(write_print_file(out / "job.png", PrintFormat::png, ref, meta)); }));
            t_jpg.push_back(time([&] { must(write_print_file(out / "job.jpg", PrintFormat::jpeg, ref, meta)); }));
            t_pdf.push_back(time([&] { must(write_print_file(out / "job.pdf", PrintFormat::pdf, ref, meta)); }));
        }
        auto size_mb = [&](const char* f) { return fs::file_size(out / f) / 1e6; };
        fmt::print("{}: artwork 4500x5400 RGBA -> {}x{} px on a {}x{} px platen, median of {} runs\n",
                   c.name, ref.box_px.width, ref.box_px.height, ref.platen_px.width,
                   ref.platen_px.height, runs);
        fmt::print("  make_reference        {:8.1f} ms\n", median(t_ref));
        fmt::print("  write_reference       {:8.1f} ms  ({:.1f} MB png)\n", median(t_refw), size_mb("reference.png"));
        fmt::print("  print file PNG        {:8.1f} ms  ({:.1f} MB)\n", median(t_png), size_mb("job.png"));
        fmt::print("  print file JPEG       {:8.1f} ms  ({:.1f} MB)\n", median(t_jpg), size_mb("job.jpg"));
        fmt::print("  print file PDF        {:8.1f} ms  ({:.1f} MB)\n", median(t_pdf), size_mb("job.pdf"));
        fmt::print("  total ref+PNG+PDF     {:8.1f} ms\n",
                   median(t_ref) + median(t_refw) + median(t_png) + median(t_pdf));
    }
    if (argc <= 2) fs::remove_all(out);
    return 0;
}
