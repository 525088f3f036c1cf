// The tolerances' JSON form (see tolerances.hpp).
#include "pressline/devices/qa/tolerances.hpp"

#include <fmt/format.h>

namespace pressline::devices::qa {

nlohmann::json to_json(const Tolerances& t) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& f : kToleranceFields) j[f.key] = t.*f.member;
    return j;
}

std::optional<ToleranceProblem> tolerances_from_json(const nlohmann::json& j, Tolerances& t) {
    if (!j.is_object()) return ToleranceProblem{"tolerances", "must be an object"};
    for (const auto& f : kToleranceFields) {
        auto it = j.find(f.key);
        if (it == j.end()) continue;
        if (!it->is_number() || it->get<double>() < 0 || it->get<double>() > f.max)
            return ToleranceProblem{std::string("tolerances.") + f.key, fmt::format("must be a number from 0 to {:g}", f.max)};
        t.*f.member = it->get<double>();
    }
    return std::nullopt;
}

}  // namespace pressline::devices::qa
