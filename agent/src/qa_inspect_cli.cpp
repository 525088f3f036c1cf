// `pressline qa inspect`: re-runs the daemon's own inspection on one saved or hand-made case.
// Input (stdin): the QA case JSON (docs/qa.md); relative paths resolve against the working
// directory; an optional `tolerances` object overrides the defaults key by key.
// Output (stdout): {"verdict": "pass"|"fail", "reason": "<code>|ok", "confidence": c, "metrics": {...}}.
#include "qa_inspect_cli.hpp"

#include <filesystem>
#include <iostream>
#include <iterator>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "pressline/devices/qa/inspector.hpp"

namespace pressline::agent {

namespace {

namespace qa = pressline::devices::qa;
using nlohmann::json;

constexpr std::size_t kMaxCaseBytes = 4 << 20;

int bad_input(std::ostream& err, const std::string& field, const std::string& message) {
    err << "pressline qa inspect: " << (field.empty() ? "" : field + ": ") << message << "\n";
    return 2;
}

}  // namespace

int qa_inspect_main(std::istream& in, std::ostream& out, std::ostream& err) {
    std::string text;
    text.reserve(4096);
    std::istreambuf_iterator<char> it(in), end;
    for (; it != end && text.size() <= kMaxCaseBytes; ++it) text.push_back(*it);
    if (text.size() > kMaxCaseBytes)
        return bad_input(err, "", fmt::format("stdin: a QA case is at most {} bytes", kMaxCaseBytes));
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded())
        return bad_input(err, "", text.find_first_not_of(" \t\r\n") == std::string::npos
                                      ? "stdin is empty: expected one QA case as JSON"
                                      : "stdin is not valid JSON: expected one QA case as JSON");
    qa::Tolerances tol;
    if (j.is_object() && j.contains("tolerances")) {
        if (auto problem = qa::tolerances_from_json(j["tolerances"], tol)) return bad_input(err, problem->field, problem->message);
    }
    auto loaded = qa::load_case(j, std::filesystem::current_path());
    if (auto* p = std::get_if<qa::Problem>(&loaded)) return bad_input(err, p->field, p->message);
    auto result = qa::inspect(std::get<qa::Case>(loaded), tol);
    if (auto* p = std::get_if<qa::Problem>(&result)) {
        if (p->reason == "inspect_failed") {
            err << "pressline qa inspect: internal error: " << p->message << "\n";
            return 1;
        }
        return bad_input(err, p->field, p->message);
    }
    const auto& v = std::get<qa::Verdict>(result);
    out << json{{"verdict", v.pass ? "pass" : "fail"}, {"reason", v.reason}, {"confidence", v.confidence},
                {"metrics", v.metrics}}
               .dump()
        << "\n";
    return out.good() ? 0 : 1;
}

}  // namespace pressline::agent
