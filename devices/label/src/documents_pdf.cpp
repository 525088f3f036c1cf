// PDF back end (libharu): a one-page PDF of the calibrated label size for CUPS queues.
// Text in embedded TrueType fonts with UTF-8 encoding (DejaVu; the fallback font for the runs
// DejaVu has no glyphs for), so the text can be extracted again; barcodes from zint's vector
// output as filled rectangles; images as RGB. Positions come from the page model in dots, so
// everything sits on the printer's dot grid, shifted by the calibration offsets.
#include <map>

#include <fmt/format.h>
#include <hpdf.h>

#include "documents_detail.hpp"
#include "pressline/devices/hpdf.hpp"

namespace pressline::devices::label::doc {

Result<std::string> render_pdf(const Page& page, const Calibration& c, FontSet& fonts) {
    hpdf::Errors err;
    const hpdf::Doc doc = hpdf::new_doc(err);
    if (!doc) return Problem{"render_failed", "libharu: HPDF_New failed"};
    auto failed = [&err](std::string_view step) { return Problem{"render_failed", err.describe(step)}; };
    HPDF_Doc pdf = doc.get();
    if (HPDF_SetCompressionMode(pdf, HPDF_COMP_ALL) != HPDF_OK) return failed("SetCompressionMode");
    if (HPDF_UseUTFEncodings(pdf) != HPDF_OK) return failed("UseUTFEncodings");
    if (HPDF_SetInfoAttr(pdf, HPDF_INFO_TITLE, page.title.c_str()) != HPDF_OK ||
        HPDF_SetInfoAttr(pdf, HPDF_INFO_CREATOR, "pressline") != HPDF_OK) {
        return failed("SetInfoAttr");
    }

    HPDF_Page pg = HPDF_AddPage(pdf);
    if (pg == nullptr) return failed("AddPage");
    const double page_w = c.width_mm / 25.4 * 72.0;
    const double page_h = c.height_mm / 25.4 * 72.0;
    if (HPDF_Page_SetWidth(pg, static_cast<HPDF_REAL>(page_w)) != HPDF_OK ||
        HPDF_Page_SetHeight(pg, static_cast<HPDF_REAL>(page_h)) != HPDF_OK) {
        return failed("Page_SetWidth/Height");
    }

    const double k = 72.0 / c.dpi;  // points per dot
    const int ox = dots(c.x_offset_mm, c.dpi);
    const int oy = dots(c.y_offset_mm, c.dpi);
    auto X = [&](double x_dots) { return static_cast<HPDF_REAL>((x_dots + ox) * k); };
    // PDF's origin is the bottom-left corner, y up: a y in dots (down) maps to this.
    auto Y = [&](double y_dots) { return static_cast<HPDF_REAL>(page_h - (y_dots + oy) * k); };
    auto fill_rect = [&](double x, double y, double w, double h) {  // dots, top-left
        return HPDF_Page_Rectangle(pg, X(x), Y(y + h), static_cast<HPDF_REAL>(w * k),
                                   static_cast<HPDF_REAL>(h * k)) == HPDF_OK &&
               HPDF_Page_Fill(pg) == HPDF_OK;
    };

    std::map<FontSet::Face, HPDF_Font> loaded;
    auto font = [&](FontSet::Face f) -> Result<HPDF_Font> {
        if (auto it = loaded.find(f); it != loaded.end()) return it->second;
        const char* name = HPDF_LoadTTFontFromFile(pdf, fonts.path(f).c_str(), HPDF_TRUE);
        if (name == nullptr) {
            return Problem{"font_missing",
                           fmt::format("libharu cannot load the TrueType font {} (error 0x{:04X})",
                                       fonts.path(f), static_cast<unsigned>(err.error))};
        }
        HPDF_Font hf = HPDF_GetFont(pdf, name, "UTF-8");
        if (hf == nullptr) return failed(fmt::format("GetFont({}, UTF-8)", name));
        loaded.emplace(f, hf);
        return hf;
    };

    if (HPDF_Page_SetGrayFill(pg, 0) != HPDF_OK) return failed("SetGrayFill");
    for (const Item& item : page.items) {
        if (const auto* t = std::get_if<Text>(&item)) {
            auto runs_r = fonts.runs(t->text, t->bold);
            if (auto* p = std::get_if<Problem>(&runs_r)) return *p;
            const auto& runs = std::get<std::vector<FontSet::Run>>(runs_r);
            const double em = kEmPerSize * t->size * k;  // points
            const double baseline = Y(t->y + kBaselinePerSize * t->size);
            std::vector<double> xs;  // where each run starts
            double x = X(t->x);
            for (const FontSet::Run& run : runs) {
                auto hf = font(run.face);
                if (auto* p = std::get_if<Problem>(&hf)) return *p;
                xs.push_back(x);
                const HPDF_TextWidth tw =
                    HPDF_Font_TextWidth(std::get<HPDF_Font>(hf),
                                        reinterpret_cast<const HPDF_BYTE*>(run.text.data()),
                                        static_cast<HPDF_UINT>(run.text.size()));
                x += tw.width * em / 1000.0;
            }
            if (t->inverse && HPDF_Page_SetGrayFill(pg, 1) != HPDF_OK) return failed("SetGrayFill");
            // Runs in the fallback font are drawn as paths (see FontSet::outlines) and set as
            // invisible text on top, so the text can still be extracted.
            bool any_path = false;
            for (std::size_t i = 0; i < runs.size(); ++i) {
                if (runs[i].face != FontSet::Face::fallback) continue;
                auto ops = fonts.outlines(runs[i].text, runs[i].face, t->bold);
                if (auto* p = std::get_if<Problem>(&ops)) return *p;
                for (const FontSet::PathOp& op : std::get<std::vector<FontSet::PathOp>>(ops)) {
                    auto px = [&](double v) { return static_cast<HPDF_REAL>(xs[i] + v * em); };
                    auto py = [&](double v) { return static_cast<HPDF_REAL>(baseline + v * em); };
                    HPDF_STATUS st = HPDF_OK;
                    if (op.op == 'M') {
                        st = HPDF_Page_MoveTo(pg, px(op.x), py(op.y));
                    } else if (op.op == 'L') {
                        st = HPDF_Page_LineTo(pg, px(op.x), py(op.y));
                    } else {
                        st = HPDF_Page_CurveTo(pg, px(op.x1), py(op.y1), px(op.x2), py(op.y2),
                                               px(op.x), py(op.y));
                    }
                    if (st != HPDF_OK) return failed("glyph path");
                    any_path = true;
                }
            }
            if (any_path && HPDF_Page_Fill(pg) != HPDF_OK) return failed("Fill (glyph paths)");
            if (HPDF_Page_BeginText(pg) != HPDF_OK) return failed("BeginText");
            for (std::size_t i = 0; i < runs.size(); ++i) {
                const bool invisible = runs[i].face == FontSet::Face::fallback;
                if (HPDF_Page_SetTextRenderingMode(pg, invisible ? HPDF_INVISIBLE : HPDF_FILL) !=
                        HPDF_OK ||
                    HPDF_Page_SetFontAndSize(pg, std::get<HPDF_Font>(font(runs[i].face)),
                                             static_cast<HPDF_REAL>(em)) != HPDF_OK ||
                    HPDF_Page_TextOut(pg, static_cast<HPDF_REAL>(xs[i]),
                                      static_cast<HPDF_REAL>(baseline),
                                      runs[i].text.c_str()) != HPDF_OK) {
                    return failed("TextOut");
                }
            }
            if (HPDF_Page_SetTextRenderingMode(pg, HPDF_FILL) != HPDF_OK ||
                HPDF_Page_EndText(pg) != HPDF_OK) {
                return failed("EndText");
            }
            if (t->inverse && HPDF_Page_SetGrayFill(pg, 0) != HPDF_OK) return failed("SetGrayFill");
        } else if (const auto* b = std::get_if<Box>(&item)) {
            bool ok = true;
            if (b->line <= 0 || 2 * b->line >= std::min(b->w, b->h)) {
                ok = fill_rect(b->x, b->y, b->w, b->h);
            } else {  // an outline inside the box, as ZPL's ^GB draws it
                const int l = b->line;
                ok = fill_rect(b->x, b->y, b->w, l) && fill_rect(b->x, b->y + b->h - l, b->w, l) &&
                     fill_rect(b->x, b->y + l, l, b->h - 2 * l) &&
                     fill_rect(b->x + b->w - l, b->y + l, l, b->h - 2 * l);
            }
            if (!ok) return failed("Rectangle/Fill");
        } else if (const auto* bc = std::get_if<Code128>(&item)) {
            auto v = barcode_vector(Symbology::code128, bc->data);
            if (auto* p = std::get_if<Problem>(&v)) return *p;
            for (const Rect& r : std::get<Vector>(v).rects) {
                if (!fill_rect(bc->x + r.x * bc->module, bc->y + r.y * bc->h, r.w * bc->module,
                               r.h * bc->h)) {
                    return failed("Rectangle/Fill (Code 128)");
                }
            }
        } else if (const auto* q = std::get_if<Qr>(&item)) {
            auto v = barcode_vector(Symbology::qr, q->data);
            if (auto* p = std::get_if<Problem>(&v)) return *p;
            for (const Rect& r : std::get<Vector>(v).rects) {
                if (!fill_rect(q->x + r.x * q->module, q->y + r.y * q->module, r.w * q->module,
                               r.h * q->module)) {
                    return failed("Rectangle/Fill (QR)");
                }
            }
        } else if (const auto* img = std::get_if<Image>(&item)) {
            const cv::Mat rgb = img->rgb.isContinuous() ? img->rgb : img->rgb.clone();
            HPDF_Image image = HPDF_LoadRawImageFromMem(pdf, rgb.data, static_cast<HPDF_UINT>(rgb.cols),
                                                        static_cast<HPDF_UINT>(rgb.rows),
                                                        HPDF_CS_DEVICE_RGB, 8);
            if (image == nullptr) return failed("LoadRawImageFromMem");
            if (HPDF_Page_DrawImage(pg, image, X(img->x), Y(img->y + rgb.rows),
                                    static_cast<HPDF_REAL>(rgb.cols * k),
                                    static_cast<HPDF_REAL>(rgb.rows * k)) != HPDF_OK) {
                return failed("Page_DrawImage");
            }
        }
    }

    if (HPDF_SaveToStream(pdf) != HPDF_OK) return failed("SaveToStream");
    std::string out(HPDF_GetStreamSize(pdf), '\0');
    HPDF_UINT32 size = static_cast<HPDF_UINT32>(out.size());
    const HPDF_STATUS read = HPDF_ReadFromStream(pdf, reinterpret_cast<HPDF_BYTE*>(out.data()), &size);
    if (read != HPDF_OK && read != HPDF_STREAM_EOF) return failed("ReadFromStream");
    out.resize(size);
    return out;
}

}  // namespace pressline::devices::label::doc
