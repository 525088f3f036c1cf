// Barcodes through zint: module counts for the layout and vector rectangles for the PDF.
#include <memory>

#include <fmt/format.h>
#include <zint.h>

#include "documents_detail.hpp"

namespace pressline::devices::label::doc {
namespace {

struct ZintFree {
    void operator()(zint_symbol* s) const { ZBarcode_Delete(s); }
};

}  // namespace

Result<Vector> barcode_vector(Symbology s, std::string_view data) {
    const char* name = s == Symbology::code128 ? "Code 128" : "QR code";
    if (data.empty()) return Problem{"barcode_failed", fmt::format("{}: no data", name)};
    std::unique_ptr<zint_symbol, ZintFree> sym(ZBarcode_Create());
    if (!sym) return Problem{"barcode_failed", fmt::format("{}: zint: out of memory", name)};
    sym->symbology = s == Symbology::code128 ? BARCODE_CODE128 : BARCODE_QRCODE;
    sym->input_mode = DATA_MODE;
    sym->show_hrt = 0;
    sym->output_options |= BARCODE_NO_QUIET_ZONES;  // the layout leaves the quiet zones
    if (s == Symbology::qr) sym->option_1 = 2;     // error correction level M
    const int rc = ZBarcode_Encode_and_Buffer_Vector(
        sym.get(), reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()),
        0);
    if (rc >= ZINT_ERROR) {
        return Problem{"barcode_failed", fmt::format("{} of \"{}\": zint: {}", name, data, sym->errtxt)};
    }
    const zint_vector* vec = sym->vector;
    if (vec == nullptr || sym->width <= 0 || vec->width <= 0 || vec->height <= 0) {
        return Problem{"barcode_failed", fmt::format("{} of \"{}\": zint gave no vector", name, data)};
    }
    Vector out;
    out.symbol = Symbol{sym->width, sym->rows};
    const double unit = static_cast<double>(vec->width) / sym->width;  // vector units per module
    for (const zint_vector_rect* r = vec->rectangles; r != nullptr; r = r->next) {
        if (r->colour != -1) continue;  // foreground only
        Rect rect;
        rect.x = r->x / unit;
        rect.w = r->width / unit;
        if (s == Symbology::code128) {
            rect.y = r->y / vec->height;
            rect.h = r->height / vec->height;
        } else {
            rect.y = r->y / unit;
            rect.h = r->height / unit;
        }
        out.rects.push_back(rect);
    }
    if (out.rects.empty()) {
        return Problem{"barcode_failed", fmt::format("{} of \"{}\": zint drew nothing", name, data)};
    }
    return out;
}

Result<Symbol> measure_code128(std::string_view data) {
    auto v = barcode_vector(Symbology::code128, data);
    if (auto* p = std::get_if<Problem>(&v)) return *p;
    return std::get<Vector>(v).symbol;
}

Result<Symbol> measure_qr(std::string_view data) {
    auto v = barcode_vector(Symbology::qr, data);
    if (auto* p = std::get_if<Problem>(&v)) return *p;
    return std::get<Vector>(v).symbol;
}

}  // namespace pressline::devices::label::doc
