// Shared between the image module's source files (not installed).
#pragma once

#include <string>

#include "pressline/image/image.hpp"

namespace pressline::image::detail {

inline Status fail(Errc e, std::string message) {
    Status s;
    s.code = make_error_code(e);
    s.message = std::move(message);
    return s;
}

template <class T>
Outcome<T> fail_as(Errc e, std::string message) {
    Outcome<T> o;
    o.code = make_error_code(e);
    o.message = std::move(message);
    return o;
}

template <class T>
Outcome<T> relay(const Status& st) {
    Outcome<T> o;
    o.code = st.code;
    o.message = st.message;
    return o;
}

// The whole file into `out`; not_found / io with "FILE: words".
Status read_whole_file(const std::filesystem::path& file, std::vector<std::uint8_t>& out);

}  // namespace pressline::image::detail
