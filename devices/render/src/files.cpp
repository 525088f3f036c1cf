// write_reference() and write_print_file(): atomic files, sidecars and the row providers that
// place the artwork on the platen without building a platen-sized copy.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <system_error>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "detail.hpp"

namespace pressline::devices::render {
namespace detail {
namespace {

std::optional<std::string> fsync_path(const std::filesystem::path& p, int flags) {
    const int fd = ::open(p.c_str(), flags | O_CLOEXEC);
    if (fd < 0) return fmt::format("open {}: {}", p.string(), std::strerror(errno));
    const int rc = ::fsync(fd);
    const int saved = errno;
    ::close(fd);
    if (rc != 0) return fmt::format("fsync {}: {}", p.string(), std::strerror(saved));
    return std::nullopt;
}

}  // namespace

std::optional<std::string> write_atomically(
    const std::filesystem::path& final_path,
    const std::function<std::optional<std::string>(const std::filesystem::path&)>& writer) {
    static std::atomic<unsigned> counter{0};
    const auto dir = final_path.has_parent_path() ? final_path.parent_path()
                                                  : std::filesystem::path(".");
    const auto tmp = dir / fmt::format(".{}.tmp-{}-{}", final_path.filename().string(), ::getpid(),
                                       counter.fetch_add(1));
    auto fail = [&tmp](std::string msg) {
        std::error_code ec;
        std::filesystem::remove(tmp, ec);
        return std::optional<std::string>(std::move(msg));
    };
    if (auto e = writer(tmp)) return fail(*e);
    if (auto e = fsync_path(tmp, O_RDONLY)) return fail(*e);
    if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
        return fail(fmt::format("rename to {}: {}", final_path.string(), std::strerror(errno)));
    }
    // The rename itself is durable once the directory is synced; a failure here is reported but
    // the file is in place.
    if (auto e = fsync_path(dir, O_RDONLY | O_DIRECTORY)) return e;
    return std::nullopt;
}

std::string hex_srgb(const std::array<std::uint8_t, 3>& rgb) {
    return fmt::format("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2]);
}

std::string garment_label(const PrintFileMeta& meta) {
    if (meta.garment_color_name.empty()) return hex_srgb(meta.garment_srgb);
    return fmt::format("{} ({})", meta.garment_color_name, hex_srgb(meta.garment_srgb));
}

nlohmann::json describe(const Reference& ref, const PrintFileMeta& meta) {
    using nlohmann::json;
    const auto& b = ref.box_mm;
    const auto& p = ref.box_px;
    return json{
        {"job", {{"job_id", meta.job_id},
                 {"color_profile", meta.color_profile},
                 {"garment_color", meta.garment_color_name},
                 {"garment_srgb", {meta.garment_srgb[0], meta.garment_srgb[1], meta.garment_srgb[2]}}}},
        {"dpi", ref.dpi},
        {"px_per_mm", ref.px_per_mm},
        {"platen", {{"name", ref.platen.name},
                    {"width_mm", ref.platen.width_mm},
                    {"height_mm", ref.platen.height_mm},
                    {"width_px", ref.platen_px.width},
                    {"height_px", ref.platen_px.height}}},
        {"box_mm", {{"x", b.x}, {"y", b.y}, {"width", b.width}, {"height", b.height}}},
        {"box_px", {{"x", p.x}, {"y", p.y}, {"width", p.width}, {"height", p.height}}},
        {"opaque", ref.opaque},
    };
}

}  // namespace detail

namespace {

Problem write_failed(std::string message) { return Problem{"write_failed", std::move(message)}; }

std::optional<Problem> check(const Reference& ref, const PrintFileMeta& meta) {
    if (ref.bgra.type() != CV_8UC4 || !ref.bgra.isContinuous() ||
        ref.bgra.cols != ref.box_px.width || ref.bgra.rows != ref.box_px.height) {
        return Problem{"render_failed", "the reference is not a make_reference() result"};
    }
    if (std::abs(meta.dpi - ref.dpi) > 1e-9) {
        return Problem{"meta_mismatch", fmt::format("metadata says {} dpi, the reference was "
                                                    "rendered at {} dpi", meta.dpi, ref.dpi)};
    }
    return std::nullopt;
}

std::optional<std::string> write_json(const std::filesystem::path& file, const nlohmann::json& j) {
    return detail::write_atomically(file, [&j](const std::filesystem::path& tmp)
                                              -> std::optional<std::string> {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << j.dump(2) << '\n';
        out.close();
        if (!out) return fmt::format("cannot write {}", tmp.string());
        return std::nullopt;
    });
}

std::vector<std::pair<std::string, std::string>> png_text(const Reference& ref,
                                                          const PrintFileMeta& meta) {
    return {
        {"Title", fmt::format("Pressline print file {}", meta.job_id)},
        {"JobId", meta.job_id},
        {"Resolution", fmt::format("{} dpi", ref.dpi)},
        {"ColorProfile", meta.color_profile},
        {"GarmentColor", detail::garment_label(meta)},
        {"Platen", ref.platen.name},
        {"Software", "pressline render"},
    };
}

}  // namespace

Result<std::filesystem::path> write_reference(const std::filesystem::path& dir,
                                              const Reference& ref, const PrintFileMeta& meta) {
    if (auto p = check(ref, meta)) return *p;
    const auto png_path = dir / "reference.png";
    detail::PngSpec spec{ref.bgra.cols, ref.bgra.rows, ref.dpi, 1, png_text(ref, meta)};
    const auto& m = ref.bgra;
    auto e = detail::write_atomically(png_path, [&](const std::filesystem::path& tmp) {
        return detail::write_png_bgra(tmp, spec, [&m](int y, std::uint8_t*) {
            return m.ptr<std::uint8_t>(y);
        });
    });
    if (e) return write_failed(*e);
    // A small copy for job tickets: decoding the full reference takes ~0.4 s for 11 MP.
    cv::Mat thumb;
    const double scale = std::min(1.0, static_cast<double>(kThumbnailPx) / std::max(m.cols, m.rows));
    cv::resize(m, thumb, cv::Size(std::max(1, static_cast<int>(m.cols * scale)),
                                  std::max(1, static_cast<int>(m.rows * scale))), 0, 0, cv::INTER_AREA);
    detail::PngSpec tspec{thumb.cols, thumb.rows, ref.dpi * scale, 6, png_text(ref, meta)};
    e = detail::write_atomically(dir / "thumbnail.png", [&](const std::filesystem::path& tmp) {
        return detail::write_png_bgra(tmp, tspec, [&thumb](int y, std::uint8_t*) {
            return thumb.ptr<std::uint8_t>(y);
        });
    });
    if (e) return write_failed(*e);
    // A copy at QA's resolution: the inspector works at 2 px/mm and would otherwise decode and
    // shrink the full reference (11 MP at 300 dpi, ~0.2 s) for every photo of the garment.
    // Shrunk premultiplied, so transparent pixels' colour does not bleed into the edges.
    cv::Mat qa_ref;
    double qa_ppm = 0;
    if (ref.px_per_mm > kQaReferencePxPerMm) {
        const double f = kQaReferencePxPerMm / ref.px_per_mm;
        const cv::Size qs(std::max(1, static_cast<int>(std::lround(m.cols * f))),
                          std::max(1, static_cast<int>(std::lround(m.rows * f))));
        cv::Mat pm(m.size(), CV_32FC4);
        for (int y = 0; y < m.rows; ++y) {
            const auto* p = m.ptr<cv::Vec4b>(y);
            auto* q = pm.ptr<cv::Vec4f>(y);
            for (int x = 0; x < m.cols; ++x) {
                const float a = p[x][3];
                q[x] = {p[x][0] * a, p[x][1] * a, p[x][2] * a, a};
            }
        }
        cv::Mat small;
        cv::resize(pm, small, qs, 0, 0, cv::INTER_AREA);
        qa_ref.create(qs, CV_8UC4);
        for (int y = 0; y < qs.height; ++y) {
            const auto* p = small.ptr<cv::Vec4f>(y);
            auto* q = qa_ref.ptr<cv::Vec4b>(y);
            for (int x = 0; x < qs.width; ++x) {
                const double a = p[x][3];  // alpha in 0..255
                for (int k = 0; k < 3; ++k) q[x][k] = a > 0 ? cv::saturate_cast<std::uint8_t>(p[x][k] / a) : 0;
                q[x][3] = cv::saturate_cast<std::uint8_t>(a);
            }
        }
        qa_ppm = qs.width / (m.cols / ref.px_per_mm);
        detail::PngSpec qspec{qa_ref.cols, qa_ref.rows, qa_ppm * 25.4, 1, png_text(ref, meta)};
        e = detail::write_atomically(dir / "reference-qa.png", [&](const std::filesystem::path& tmp) {
            return detail::write_png_bgra(tmp, qspec, [&qa_ref](int y, std::uint8_t*) {
                return qa_ref.ptr<std::uint8_t>(y);
            });
        });
        if (e) return write_failed(*e);
    }
    auto j = detail::describe(ref, meta);
    j["image"] = {{"file", "reference.png"}, {"format", "png"}, {"channels", "RGBA"},
                  {"alpha", "straight"}, {"width_px", m.cols}, {"height_px", m.rows}};
    j["thumbnail"] = {{"file", "thumbnail.png"}, {"width_px", thumb.cols}, {"height_px", thumb.rows}};
    if (!qa_ref.empty())
        j["qa_reference"] = {{"file", "reference-qa.png"}, {"px_per_mm", qa_ppm},
                             {"width_px", qa_ref.cols}, {"height_px", qa_ref.rows}};
    if (auto je = write_json(dir / "reference.json", j)) return write_failed(*je);
    return png_path;
}

Result<std::filesystem::path> write_print_file(const std::filesystem::path& file,
                                               PrintFormat format, const Reference& ref,
                                               const PrintFileMeta& meta,
                                               const PrintOptions& options) {
    if (auto p = check(ref, meta)) return *p;
    const auto& m = ref.bgra;
    const auto& box = ref.box_px;
    const int pw = ref.platen_px.width;
    const int ph = ref.platen_px.height;
    std::optional<std::string> e;
    try {
        switch (format) {
            case PrintFormat::png: {
                detail::PngSpec spec{pw, ph, ref.dpi, std::clamp(options.png_compression, 0, 9),
                                     png_text(ref, meta)};
                // Transparent rows are one shared zero row; inside the box, the scratch row's
                // margins stay zero (from the first call) and only the artwork span is copied.
                const std::vector<std::uint8_t> empty(static_cast<std::size_t>(pw) * 4, 0);
                e = detail::write_atomically(file, [&](const std::filesystem::path& tmp) {
                    bool cleared = false;
                    return detail::write_png_bgra(tmp, spec, [&](int y, std::uint8_t* scratch) {
                        if (y < box.y || y >= box.y + box.height) return empty.data();
                        if (!cleared) {
                            std::memset(scratch, 0, static_cast<std::size_t>(pw) * 4);
                            cleared = true;
                        }
                        std::memcpy(scratch + static_cast<std::size_t>(box.x) * 4,
                                    m.ptr<std::uint8_t>(y - box.y),
                                    static_cast<std::size_t>(box.width) * 4);
                        return static_cast<const std::uint8_t*>(scratch);
                    });
                });
                break;
            }
            case PrintFormat::jpeg: {
                detail::JpegSpec spec{pw, ph, ref.dpi, std::clamp(options.jpeg_quality, 1, 100)};
                const std::vector<std::uint8_t> white(static_cast<std::size_t>(pw) * 3, 255);
                e = detail::write_atomically(file, [&](const std::filesystem::path& tmp) {
                    bool cleared = false;
                    return detail::write_jpeg_rgb(tmp, spec, [&](int y, std::uint8_t* scratch) {
                        if (y < box.y || y >= box.y + box.height) return white.data();
                        if (!cleared) {
                            std::memset(scratch, 255, static_cast<std::size_t>(pw) * 3);
                            cleared = true;
                        }
                        // Composite straight alpha over white: c' = (c*a + 255*(255-a)) / 255.
                        const std::uint8_t* src = m.ptr<std::uint8_t>(y - box.y);
                        std::uint8_t* dst = scratch + static_cast<std::size_t>(box.x) * 3;
                        for (int x = 0; x < box.width; ++x, src += 4, dst += 3) {
                            const unsigned a = src[3];
                            const unsigned bg = 255u * (255u - a) + 127u;
                            dst[0] = static_cast<std::uint8_t>((src[2] * a + bg) / 255u);
                            dst[1] = static_cast<std::uint8_t>((src[1] * a + bg) / 255u);
                            dst[2] = static_cast<std::uint8_t>((src[0] * a + bg) / 255u);
                        }
                        return static_cast<const std::uint8_t*>(scratch);
                    });
                });
                break;
            }
            case PrintFormat::pdf:
                e = detail::write_atomically(file, [&](const std::filesystem::path& tmp) {
                    return detail::write_pdf(tmp, ref, meta, options.pdf_compress);
                });
                break;
        }
    } catch (const cv::Exception& ex) {
        return Problem{"render_failed", fmt::format("OpenCV: {}", ex.what())};
    } catch (const std::bad_alloc&) {
        return Problem{"render_failed", "out of memory writing the print file"};
    }
    if (e) return write_failed(*e);

    auto j = detail::describe(ref, meta);
    j["print_file"] = {{"file", file.filename().string()}, {"format", to_string(format)},
                       {"width_px", pw}, {"height_px", ph}};
    if (format == PrintFormat::jpeg) j["print_file"]["background"] = "white";
    auto sidecar = file;
    sidecar += ".json";
    if (auto je = write_json(sidecar, j)) return write_failed(*je);
    return file;
}

}  // namespace pressline::devices::render
