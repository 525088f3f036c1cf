// libharu (PDF) glue shared by the devices that write PDFs (devices/render: print files,
// devices/label: labels and tickets): libharu reports errors through a callback, so a document
// is made with an Errors collector that keeps the first error (later ones are usually its
// consequences), and freed by its unique_ptr.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

#include <fmt/format.h>
#include <hpdf.h>

namespace pressline::devices::hpdf {

struct Errors {
    HPDF_STATUS error = HPDF_OK;
    HPDF_STATUS detail = 0;
    // "libharu: STEP failed (error 0x1234, detail 0)"
    std::string describe(std::string_view step) const {
        return fmt::format("libharu: {} failed (error 0x{:04X}, detail {})", step,
                           static_cast<unsigned>(error), static_cast<unsigned>(detail));
    }
};

inline void collect_error(HPDF_STATUS error_no, HPDF_STATUS detail_no, void* user) {
    auto* e = static_cast<Errors*>(user);
    if (e->error == HPDF_OK) {  // keep the first error
        e->error = error_no;
        e->detail = detail_no;
    }
}

struct DocFree {
    void operator()(HPDF_Doc d) const { HPDF_Free(d); }
};
using Doc = std::unique_ptr<std::remove_pointer_t<HPDF_Doc>, DocFree>;

// A new document reporting into `errors` (which must outlive it); null if libharu cannot start.
inline Doc new_doc(Errors& errors) { return Doc(HPDF_New(collect_error, &errors)); }

}  // namespace pressline::devices::hpdf
