// pressline-qa-dataset: synthetic QA captures with known truth (generate) and the demo's simulated
// station camera (photo). See tools/qa-dataset/README.md.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/core/utility.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "pressline/qa_dataset/dataset.hpp"

namespace fs = std::filesystem;
namespace qd = pressline::qa_dataset;

namespace {

bool parse_pair(const std::string& s, char sep, double& a, double& b) {
    const auto pos = s.find(sep);
    if (pos == std::string::npos) return false;
    try {
        std::size_t n1 = 0, n2 = 0;
        a = std::stod(s.substr(0, pos), &n1);
        b = std::stod(s.substr(pos + 1), &n2);
        return n1 == pos && n2 == s.size() - pos - 1 && a > 0 && b > 0;
    } catch (const std::exception&) {
        return false;
    }
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, sep))
        if (!item.empty()) out.push_back(item);
    return out;
}

int generate(const fs::path& out, int per_type, int good, std::uint64_t seed, const std::string& size,
             const std::string& types, bool png, double ref_dpi, bool quiet, bool preview) {
    qd::Options opt;
    double w = 0, h = 0;
    if (!parse_pair(size, 'x', w, h)) {
        std::cerr << "pressline-qa-dataset: --size must be WIDTHxHEIGHT, e.g. 4000x3000\n";
        return 2;
    }
    opt.image_size = cv::Size(static_cast<int>(w), static_cast<int>(h));
    opt.png_capture = png;
    opt.reference_px_per_mm = ref_dpi / 25.4;
    std::vector<std::string> type_list = split(types, ',');
    for (const auto& t : type_list)
        if (std::find(qd::defect_types().begin(), qd::defect_types().end(), t) == qd::defect_types().end()) {
            std::cerr << "pressline-qa-dataset: --types: unknown type '" << t << "'\n";
            return 2;
        }
    const auto specs = qd::dataset_specs(per_type, good, seed, type_list);
    fs::create_directories(out);
    nlohmann::json index = {{"seed", seed},
                            {"size", {opt.image_size.width, opt.image_size.height}},
                            {"reference_px_per_mm", opt.reference_px_per_mm},
                            {"cases", nlohmann::json::array()}};
    std::map<std::string, int> counters;
    const auto t0 = std::chrono::steady_clock::now();
    for (const auto& spec : specs) {
        const std::string key = spec.type + qd::to_string(spec.severity);
        const std::string id = qd::case_id(spec, counters[key]++);
        const auto c0 = std::chrono::steady_clock::now();
        qd::GeneratedCase c = qd::generate_case(spec, opt);
        qd::write_case(c, out / id, opt);
        if (preview) {
            cv::Mat small;
            cv::resize(c.capture, small, cv::Size(1000, 1000 * c.capture.rows / c.capture.cols), 0, 0, cv::INTER_AREA);
            cv::imwrite((out / id / "preview.png").string(), small);
        }
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - c0).count();
        index["cases"].push_back({{"id", id}, {"truth", c.truth}});
        if (!quiet)
            std::fprintf(stderr, "%-32s %-5s %-14s %6.0f ms\n", id.c_str(), c.truth["verdict"].get<std::string>().c_str(),
                         c.truth["garment"].get<std::string>().c_str(), ms);
    }
    std::ofstream f(out / "index.json");
    f << index.dump(1) << '\n';
    if (!f) {
        std::cerr << "pressline-qa-dataset: cannot write " << (out / "index.json") << '\n';
        return 1;
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "%zu cases in %.1f s (%.2f s per case) -> %s\n", specs.size(), s,
                 specs.empty() ? 0.0 : s / static_cast<double>(specs.size()), out.c_str());
    return 0;
}

int photo(const fs::path& print_file, const std::string& platen, const std::string& garment, const fs::path& cal,
          const fs::path& out, const std::string& defect, std::uint64_t seed, const std::string& size) {
    qd::PhotoRequest req;
    if (!parse_pair(platen, 'x', req.platen_width_mm, req.platen_height_mm)) {
        std::cerr << "pressline-qa-dataset: --platen-mm must be WIDTHxHEIGHT in mm, e.g. 406.4x508\n";
        return 2;
    }
    const auto g = split(garment, ',');
    if (g.size() != 3) {
        std::cerr << "pressline-qa-dataset: --garment must be r,g,b (0..255)\n";
        return 2;
    }
    try {
        for (int i = 0; i < 3; ++i) req.garment_srgb[i] = std::stod(g[static_cast<std::size_t>(i)]);
    } catch (const std::exception&) {
        std::cerr << "pressline-qa-dataset: --garment must be r,g,b (0..255)\n";
        return 2;
    }
    req.print_bgra = cv::imread(print_file.string(), cv::IMREAD_UNCHANGED);
    if (req.print_bgra.empty()) {
        std::cerr << "pressline-qa-dataset: --print-file: cannot read " << print_file << '\n';
        return 2;
    }
    if (req.print_bgra.depth() == CV_16U) req.print_bgra.convertTo(req.print_bgra, CV_8U, 1.0 / 257.0);
    if (req.print_bgra.channels() == 3) cv::cvtColor(req.print_bgra, req.print_bgra, cv::COLOR_BGR2BGRA);
    if (req.print_bgra.channels() != 4) {
        std::cerr << "pressline-qa-dataset: --print-file: expected an RGBA image\n";
        return 2;
    }
    req.defect = defect;
    req.seed = seed;
    qd::Options opt;
    double w = 0, h = 0;
    if (!parse_pair(size, 'x', w, h)) {
        std::cerr << "pressline-qa-dataset: --size must be WIDTHxHEIGHT\n";
        return 2;
    }
    opt.image_size = cv::Size(static_cast<int>(w), static_cast<int>(h));
    qd::Camera cam;
    if (fs::exists(cal)) {
        std::ifstream f(cal);
        cam = qd::camera_from_json(nlohmann::json::parse(f), cal.parent_path());
    } else {
        cam = qd::make_camera(opt.image_size, 0x57a710);  // one fixed camera per station
        const std::string flat_name = cal.stem().string() + "-flatfield.png";
        const fs::path dir = cal.parent_path().empty() ? fs::path(".") : cal.parent_path();
        fs::create_directories(dir);
        if (!cv::imwrite((dir / flat_name).string(), cam.flatfield16)) {
            std::cerr << "pressline-qa-dataset: cannot write " << (dir / flat_name) << '\n';
            return 1;
        }
        std::ofstream f(cal);
        f << qd::camera_to_json(cam, flat_name).dump(2) << '\n';
        if (!f) {
            std::cerr << "pressline-qa-dataset: cannot write " << cal << '\n';
            return 1;
        }
    }
    opt.image_size = cam.image_size;
    qd::Photo p = qd::photograph(req, cam, opt);
    if (out.has_parent_path()) fs::create_directories(out.parent_path());
    const fs::path tmp = out.parent_path() / ("." + out.filename().string() + ".tmp" + out.extension().string());
    if (!cv::imwrite(tmp.string(), p.capture, {cv::IMWRITE_JPEG_QUALITY, 90})) {
        std::cerr << "pressline-qa-dataset: cannot write " << out << '\n';
        return 1;
    }
    fs::rename(tmp, out);  // a watcher of the camera folder sees only complete images
    std::cout << p.truth.dump() << '\n';
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Synthetic QA captures with known truth, and the demo's simulated station camera"};
    app.require_subcommand(1);

    auto* gen = app.add_subcommand("generate", "Generate a dataset: DIR/<case-id>/{capture.jpg, reference.png, "
                                               "flatfield.png, case.json, truth.json} and DIR/index.json");
    std::string out_dir, size = "4000x3000", types;
    int per_type = 2, good = 4;
    std::uint64_t seed = 1;
    bool png = false, quiet = false, preview = false;
    double ref_dpi = 150;
    gen->add_option("--out", out_dir, "Output directory")->required();
    gen->add_option("--per-type", per_type, "Cases per defect type (about 70 % clear, the rest just inside)")
        ->check(CLI::NonNegativeNumber);
    gen->add_option("--good", good, "Good cases")->check(CLI::NonNegativeNumber);
    gen->add_option("--seed", seed, "Seed (the dataset is deterministic for a seed)");
    gen->add_option("--size", size, "Capture size WIDTHxHEIGHT")->capture_default_str();
    gen->add_option("--types", types, "Comma-separated defect types (default: all)");
    gen->add_option("--ref-dpi", ref_dpi, "Resolution of reference.png")->check(CLI::Range(20.0, 600.0))
        ->capture_default_str();
    gen->add_flag("--png", png, "Write capture.png instead of capture.jpg");
    gen->add_flag("--quiet", quiet, "No line per case");
    gen->add_flag("--preview", preview, "Also write preview.png (1000 px wide) per case");

    auto* ph = app.add_subcommand("photo", "Photograph a print file on a garment (the demo's simulated camera)");
    std::string print_file, platen = "406.4x508", garment, cal, out_img, defect;
    std::uint64_t pseed = 1;
    std::string psize = "4000x3000";
    ph->add_option("--print-file", print_file, "Platen-sized RGBA PNG (the agent's print file)")->required();
    ph->add_option("--platen-mm", platen, "Platen WIDTHxHEIGHT in mm")->capture_default_str();
    ph->add_option("--garment", garment, "Garment colour r,g,b")->required();
    ph->add_option("--calibration-out", cal, "Station calibration JSON: read, or written (with its flat field) "
                                             "when missing")->required();
    ph->add_option("--out", out_img, "The photo (JPEG)")->required();
    ph->add_option("--defect", defect, "Inject a defect of this type");
    ph->add_option("--seed", pseed, "Seed");
    ph->add_option("--size", psize, "Image size for a new calibration")->capture_default_str();

    CLI11_PARSE(app, argc, argv);
    try {
        if (*gen) return generate(out_dir, per_type, good, seed, size, types, png, ref_dpi, quiet, preview);
        return photo(print_file, platen, garment, cal, out_img, defect, pseed, psize);
    } catch (const std::exception& e) {
        std::cerr << "pressline-qa-dataset: " << e.what() << '\n';
        return 1;
    }
}
