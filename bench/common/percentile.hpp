// Percentiles for the benchmarks' reports: one definition, so that a "p99" means the same in
// every table (nearest rank: the smallest sample with at least q of all samples at or below it).
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

namespace pressline::bench {

// q in [0, 1]; 0.5 the median, 1 the maximum. NaN for no samples.
template <class T>
double percentile(std::vector<T> v, double q) {
    if (v.empty()) return NAN;
    std::sort(v.begin(), v.end());
    const auto rank = static_cast<std::size_t>(std::ceil(std::clamp(q, 0.0, 1.0) * static_cast<double>(v.size())));
    return static_cast<double>(v[rank == 0 ? 0 : rank - 1]);
}

}  // namespace pressline::bench
