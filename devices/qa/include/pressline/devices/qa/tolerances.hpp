// The inspector's tolerances and their JSON form: the `tolerances` object of a QA case
// (`pressline qa inspect`, the daemon's evidence case.json). The config's `qa.tolerances` has the
// same keys and defaults (config/README.md); the agent copies one into the other (qa.cpp).
// Error rule: tolerances_from_json reports a problem as a value naming the key.
#pragma once

#include <array>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace pressline::devices::qa {

// Defaults from issue 5.
struct Tolerances {
    double offset_mm = 5.0;             // centre offset
    double rotation_deg = 2.0;
    double scale_pct = 3.0;
    double mean_de00 = 3.0;             // mean CIEDE2000 over inked pixels
    double local_de00 = 10.0;           // a local defect: ΔE00 above this ...
    double local_min_area_mm2 = 9.0;    // ... over at least this area
    double margin_mm = 20.0;            // search area: the artwork box grown by this
    double blank_de00 = 10.0;           // garment outside the print vs the job's garment colour
    double low_confidence = 0.15;       // confidence below this = "ask a person" (metrics only)
};

// Every tolerance by its key, with the largest value that makes sense.
struct ToleranceField {
    const char* key;
    double Tolerances::*member;
    double max;
};
inline constexpr std::array<ToleranceField, 9> kToleranceFields = {{
    {"offset_mm", &Tolerances::offset_mm, 1000.0},
    {"rotation_deg", &Tolerances::rotation_deg, 180.0},
    {"scale_pct", &Tolerances::scale_pct, 100.0},
    {"mean_de00", &Tolerances::mean_de00, 100.0},
    {"local_de00", &Tolerances::local_de00, 100.0},
    {"local_min_area_mm2", &Tolerances::local_min_area_mm2, 1e6},
    {"margin_mm", &Tolerances::margin_mm, 1000.0},
    {"blank_de00", &Tolerances::blank_de00, 100.0},
    {"low_confidence", &Tolerances::low_confidence, 1.0},
}};

// {"offset_mm": 5, ...}: every key.
nlohmann::json to_json(const Tolerances& t);

// Overrides the keys present in `j` (an object); unknown keys are ignored (the case format's
// rule). A problem: {field "tolerances.KEY" (or "tolerances"), message}.
struct ToleranceProblem {
    std::string field;
    std::string message;
};
std::optional<ToleranceProblem> tolerances_from_json(const nlohmann::json& j, Tolerances& t);

}  // namespace pressline::devices::qa
