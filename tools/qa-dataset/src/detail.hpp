// Internals of the QA dataset generator shared by its source files.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

namespace pressline::qa_dataset::detail {

using Rng = std::mt19937_64;

inline double uniform(Rng& rng, double lo, double hi) {
    return std::uniform_real_distribution<double>(lo, hi)(rng);
}
inline int uniform_int(Rng& rng, int lo, int hi) {  // inclusive
    return std::uniform_int_distribution<int>(lo, hi)(rng);
}
inline bool chance(Rng& rng, double p) { return uniform(rng, 0.0, 1.0) < p; }
std::uint64_t mix_seed(std::uint64_t a, std::uint64_t b);

// Artwork kinds: "logo", "text", "gradient", "photo".
const std::vector<std::string>& artwork_kinds();
// A procedural artwork of `size` pixels (at px_per_mm), CV_8UC4 BGRA straight alpha; its ink
// colours differ visibly from the garment.
cv::Mat make_artwork(cv::Size size, double px_per_mm, const std::string& kind,
                     const cv::Vec3d& garment_srgb, Rng& rng);
// A smooth random field in [0, 1] (CV_32F) with features about `feature_px` across.
cv::Mat smooth_noise(cv::Size size, double feature_px, Rng& rng);

}  // namespace pressline::qa_dataset::detail
