// The result type every driver returns (docs/design.md "Error rule": drivers return values, never
// throw): `value` when `code` is clear, else `code` (the driver's own error category) and a
// one-line `message` naming the device, the step and the library's or system's words.
#pragma once

#include <string>
#include <system_error>
#include <variant>

namespace pressline::drivers {

template <class T>
struct Outcome {
    T value{};
    std::error_code code;
    std::string message;
    explicit operator bool() const { return !code; }
};
using Status = Outcome<std::monostate>;

}  // namespace pressline::drivers
