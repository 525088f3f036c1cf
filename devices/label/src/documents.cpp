// Label and ticket documents: validation, then one layout (documents_detail.hpp: a Page in
// printer dots) drawn by the ZPL or the PDF back end.
#include "pressline/devices/label/documents.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>
#include <utility>

#include <fmt/format.h>

#include "documents_detail.hpp"

namespace pressline::devices::label {

std::string ticket_code(std::string_view job_id, int attempt) {
    return fmt::format("PL:{}:{}", job_id, attempt);
}

namespace doc {

Problem invalid(std::string field, std::string what) {
    return Problem{"invalid_field", fmt::format("{}: {}", field, what)};
}

double dots_per_mm(int dpi) { return dpi / 25.4; }
int dots(double mm, int dpi) { return static_cast<int>(std::lround(mm * dots_per_mm(dpi))); }

std::vector<std::string> calibration_problems(const Calibration& c, bool zpl) {
    // The ranges of the configuration (config: label_printers).
    std::vector<std::string> out;
    auto in = [](double v, double lo, double hi) { return v >= lo && v <= hi; };  // false for NaN
    const bool dpi_ok = c.dpi >= 100 && c.dpi <= 600;
    if (!dpi_ok) out.push_back(fmt::format("calibration.dpi: {} is outside 100..600", c.dpi));
    if (!in(c.width_mm, 10, 300)) {
        out.push_back(fmt::format("calibration.width_mm: {} is outside 10..300 mm", c.width_mm));
    }
    if (!in(c.height_mm, 10, 1000)) {
        out.push_back(fmt::format("calibration.height_mm: {} is outside 10..1000 mm", c.height_mm));
    }
    if (c.darkness < -1 || c.darkness > 30) {
        out.push_back(fmt::format("calibration.darkness: {} is outside 0..30 (-1: the printer's own)",
                                  c.darkness));
    }
    if (!in(c.x_offset_mm, -50, 50)) {
        out.push_back(fmt::format("calibration.x_offset_mm: {} is outside -50..50 mm", c.x_offset_mm));
    }
    if (!in(c.y_offset_mm, -50, 50)) {
        out.push_back(fmt::format("calibration.y_offset_mm: {} is outside -50..50 mm", c.y_offset_mm));
    } else if (zpl && dpi_ok && dots(c.y_offset_mm, c.dpi) < -kMaxLabelTopDots) {
        // Up is ZPL's ^LT, which moves a format at most 120 dot rows.
        out.push_back(fmt::format("calibration.y_offset_mm: {} mm is further up than ZPL's ^LT "
                                  "moves a label ({} dots = {:.1f} mm at {} dpi)",
                                  c.y_offset_mm, kMaxLabelTopDots,
                                  kMaxLabelTopDots / dots_per_mm(c.dpi), c.dpi));
    }
    if (c.media != MediaType::gap && c.media != MediaType::black_mark &&
        c.media != MediaType::continuous) {
        out.push_back("calibration.media: not gap, black_mark or continuous");
    }
    return out;
}

}  // namespace doc

namespace {

using doc::FontSet;
using doc::Page;

// ---- validation ----

class Problems {
public:
    void add(std::string field, std::string what) {
        list_.push_back(fmt::format("{}: {}", field, what));
    }
    void add_all(const std::vector<std::string>& messages) {
        list_.insert(list_.end(), messages.begin(), messages.end());
    }
    std::optional<Problem> problem() const {
        if (list_.empty()) return std::nullopt;
        std::string msg;
        for (const auto& m : list_) {
            if (!msg.empty()) msg += "; ";
            msg += m;
        }
        return Problem{"invalid_field", msg};
    }

    // Free text printed on the label: UTF-8 without control characters.
    void text(const std::string& field, const std::string& value, bool required,
              std::size_t max_chars) {
        if (value.empty()) {
            if (required) add(field, "required");
            return;
        }
        const auto cps = doc::decode_utf8(value);
        if (!cps) {
            add(field, "not valid UTF-8");
            return;
        }
        for (char32_t cp : *cps) {
            if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029) {
                add(field, fmt::format("contains a control character (U+{:04X}); one line of text "
                                       "expected",
                                       static_cast<unsigned>(cp)));
                return;
            }
        }
        if (cps->size() > max_chars) {
            add(field, fmt::format("{} characters, at most {}", cps->size(), max_chars));
        }
    }

    // Data of a Code 128 that a ZPL printer gets in ^FD: printable ASCII without space and
    // without the characters ZPL reads as commands or Code 128 invocation codes (^ ~ >).
    void code128_data(const std::string& field, const std::string& value, std::size_t max_chars) {
        if (value.empty()) {
            add(field, "required");
            return;
        }
        if (value.size() > max_chars) {
            add(field, fmt::format("{} characters, at most {}", value.size(), max_chars));
            return;
        }
        for (char ch : value) {
            const auto u = static_cast<unsigned char>(ch);
            if (u < 0x21 || u > 0x7E || ch == '^' || ch == '~' || ch == '>') {
                add(field, fmt::format("'{}' cannot go into a Code 128 (printable ASCII without "
                                       "spaces and without ^ ~ > expected)",
                                       u >= 0x21 && u <= 0x7E ? std::string(1, ch)
                                                              : fmt::format("\\x{:02X}", u)));
                return;
            }
        }
    }

private:
    std::vector<std::string> list_;
};

void check_address(Problems& p, const std::string& prefix, const Address& a, bool required) {
    p.text(prefix + ".name", a.name, required, 80);
    p.text(prefix + ".company", a.company, false, 80);
    p.text(prefix + ".line1", a.line1, required, 80);
    p.text(prefix + ".line2", a.line2, false, 80);
    p.text(prefix + ".city", a.city, false, 60);
    p.text(prefix + ".region", a.region, false, 60);
    p.text(prefix + ".postal_code", a.postal_code, false, 20);
    p.text(prefix + ".country", a.country, required, 60);
    p.text(prefix + ".phone", a.phone, false, 30);
}

std::optional<Problem> validate(const ShippingLabel& l, const Calibration& c, bool zpl) {
    Problems p;
    p.add_all(doc::calibration_problems(c, zpl));
    p.code128_data("tracking_number", l.tracking_number, 50);
    p.text("order_id", l.order_id, false, 128);
    p.text("carrier", l.carrier, false, 40);
    p.text("service", l.service, false, 60);
    check_address(p, "ship_to", l.ship_to, true);
    if (!l.ship_from.name.empty()) check_address(p, "ship_from", l.ship_from, false);
    return p.problem();
}

bool id_char(char ch) {
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == ':' || ch == '-';
}

std::optional<Problem> validate(const Ticket& t, const Calibration& c, bool zpl) {
    Problems p;
    p.add_all(doc::calibration_problems(c, zpl));
    // The job order's id rule (docs/schemas/job.schema.json): it goes into the Code 128.
    if (t.job_id.empty()) {
        p.add("job_id", "required");
    } else if (t.job_id.size() > 128 || !std::all_of(t.job_id.begin(), t.job_id.end(), id_char) ||
               !std::isalnum(static_cast<unsigned char>(t.job_id.front()))) {
        p.add("job_id", "1 to 128 letters, digits, '.', '_', ':' or '-', starting with a letter "
                        "or digit, expected");
    }
    if (t.attempt < 1 || t.attempt > 9999) {
        p.add("attempt", fmt::format("{} is outside 1..9999", t.attempt));
    }
    p.text("order_id", t.order_id, false, 128);
    p.text("sku", t.sku, false, 80);
    p.text("product_type", t.product_type, false, 80);
    p.text("size", t.size, false, 40);
    p.text("garment_color", t.garment_color, false, 60);
    p.text("placement", t.placement, false, 200);
    p.text("platen", t.platen, false, 60);
    p.text("priority", t.priority, false, 40);
    p.text("due_by", t.due_by, false, 64);
    p.text("device", t.device, false, 80);
    return p.problem();
}

// ---- layout ----

std::string ascii_upper(std::string s) {
    for (char& ch : s) {
        if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
    }
    return s;
}

std::string words_of(std::string s) {  // "ground_advantage" -> "ground advantage"
    std::replace(s.begin(), s.end(), '_', ' ');
    return s;
}

std::string join(std::initializer_list<std::string> parts, std::string_view sep) {
    std::string out;
    for (const auto& s : parts) {
        if (s.empty()) continue;
        if (!out.empty()) out += sep;
        out += s;
    }
    return out;
}

enum class Align { left, center, right };

class Layout {
public:
    Layout(const Calibration& c, FontSet& fonts) : c_(c), fonts_(fonts) {
        page.width = doc::dots(c.width_mm, c.dpi);
        page.height = doc::dots(c.height_mm, c.dpi);
        margin = mm(3);
    }

    int mm(double v) const { return doc::dots(v, c_.dpi); }

    template <class T>
    void add(T item) {
        page.items.emplace_back(std::in_place_type<T>, std::move(item));
    }
    int width() const { return page.width; }
    int height() const { return page.height; }
    int dpi() const { return c_.dpi; }

    // Text in one or more lines at x..x+max_w from y down: the largest size from `size` down to
    // `min_size` at which it takes at most `max_lines` lines (else min_size, as many lines as it
    // takes). Returns the y below the last line.
    Result<int> paragraph(std::string_view text, int x, int y, int max_w, double size_mm,
                          double min_size_mm, bool bold, int max_lines,
                          Align align = Align::left) {
        if (text.empty()) return y;
        std::vector<std::string> lines;
        int size = mm(size_mm);
        const int min_size = std::max(1, mm(min_size_mm));
        for (;;) {
            auto w = doc::wrap(fonts_, text, size, bold, max_w);
            if (auto* p = std::get_if<Problem>(&w)) return *p;
            lines = std::move(std::get<std::vector<std::string>>(w));
            if (static_cast<int>(lines.size()) <= max_lines || size <= min_size) break;
            size = std::max(min_size, static_cast<int>(size * 0.9));
        }
        for (const auto& line : lines) {
            int lx = x;
            if (align != Align::left) {
                auto lw = fonts_.width(line, size, bold);
                if (auto* p = std::get_if<Problem>(&lw)) return *p;
                const int free = max_w - static_cast<int>(std::ceil(std::get<double>(lw)));
                lx += align == Align::center ? std::max(0, free / 2) : std::max(0, free);
            }
            add(doc::Text{lx, y, size, bold, false, line});
            y += line_step(size);
        }
        return y;
    }

    // One line in white on a black box; returns the box width.
    Result<int> inverse(std::string_view text, int x, int y, double size_mm, bool right_aligned) {
        const int size = mm(size_mm);
        auto w = fonts_.width(text, size, true);
        if (auto* p = std::get_if<Problem>(&w)) return *p;
        const int pad = mm(1.2);
        const int box_w = static_cast<int>(std::ceil(std::get<double>(w))) + 2 * pad;
        const int bx = right_aligned ? x - box_w : x;
        add(doc::Box{bx, y - mm(0.6), box_w, size + mm(1.2), 0});
        add(doc::Text{bx + pad, y, size, true, true, std::string(text)});
        return box_w;
    }

    void rule(int y, double thick_mm = 0.5) {
        add(doc::Box{margin, y, page.width - 2 * margin, std::max(1, mm(thick_mm)), 0});
    }

    static int line_step(int size) { return size + std::max(1, size / 5); }

    // Module width in dots for a Code 128 of `modules` modules (plus 10-module quiet zones) in
    // `avail` dots: at least 0.25 mm (10 mil, what any scanner reads), at most 0.5 mm.
    std::optional<int> code128_module(int modules, int avail) const {
        const int lo = std::max(2, static_cast<int>(std::ceil(0.25 * doc::dots_per_mm(c_.dpi) - 0.01)));
        const int hi = std::max(lo, mm(0.5));
        const int m = std::min(hi, avail / (modules + 20));
        if (m < lo) return std::nullopt;
        return m;
    }

    Result<int> code128(std::string_view field, const std::string& data, int y, int h) {
        auto sym = doc::measure_code128(data);
        if (auto* p = std::get_if<Problem>(&sym)) return *p;
        const int modules = std::get<doc::Symbol>(sym).modules_wide;
        const auto module = code128_module(modules, page.width - 2 * margin);
        if (!module) {
            return Problem{"barcode_failed",
                           fmt::format("{}: a Code 128 of \"{}\" ({} modules) does not fit on a "
                                       "{} mm wide label at 0.25 mm per module",
                                       field, data, modules, c_.width_mm)};
        }
        const int bw = modules * *module;
        add(doc::Code128{(page.width - bw) / 2, y, h, *module, data});
        return y + h;
    }

    // A QR code close to `side_mm` wide (not placed yet) and its side in dots.
    Result<std::pair<doc::Qr, int>> qr(const std::string& data, double side_mm) {
        auto sym = doc::measure_qr(data);
        if (auto* p = std::get_if<Problem>(&sym)) return *p;
        const int n = std::get<doc::Symbol>(sym).modules_wide;
        const int module = std::clamp(mm(side_mm) / n, 1, 10);  // ZPL ^BQ magnifies 1..10 times
        return std::pair{doc::Qr{0, 0, module, data}, n * module};
    }

    // The page if the content between the top (down to `top_end`) and the bottom block (from
    // `bottom_start`) did not collide.
    Result<Page> finish(int top_end, int bottom_start, std::string_view what) {
        if (top_end > bottom_start) {
            const double need = c_.height_mm + (top_end - bottom_start) / doc::dots_per_mm(c_.dpi);
            return Problem{"render_failed",
                           fmt::format("the {} does not fit on {} x {} mm: it needs about {:.0f} mm "
                                       "of height (shorter texts or a longer label)",
                                       what, c_.width_mm, c_.height_mm, need)};
        }
        return std::move(page);
    }

    Page page;
    int margin = 0;

private:
    const Calibration& c_;
    FontSet& fonts_;
};

#define PL_TRY(var, expr)                                              \
    auto var##_r = (expr);                                             \
    if (auto* var##_p = std::get_if<Problem>(&var##_r)) return *var##_p; \
    auto var = std::move(std::get<0>(var##_r))

std::string city_line(const Address& a) {
    // "City, REGION 12345" where that is the custom (US, CA, AU), else "12345 City, Region".
    const std::string country = ascii_upper(a.country);
    const bool us_style = country == "US" || country == "USA" || country == "UNITED STATES" ||
                          country == "CA" || country == "CANADA" || country == "AU" ||
                          country == "AUSTRALIA";
    if (us_style) {
        return join({join({a.city, a.region}, ", "), a.postal_code}, " ");
    }
    return join({join({a.postal_code, a.city}, " "), a.region}, ", ");
}

Result<Page> layout_shipping(const ShippingLabel& l, const Calibration& c, FontSet& fonts) {
    Layout L(c, fonts);
    const int m = L.margin;
    const int W = L.width();
    const int H = L.height();
    const int text_w = W - 2 * m;
    int y = m;

    if (!l.ship_from.name.empty()) {
        const Address& a = l.ship_from;
        PL_TRY(y1, L.paragraph("FROM", m, y, text_w, 2.6, 2.6, true, 1));
        y = y1;
        for (const std::string& line :
             {a.name, a.company, join({a.line1, a.line2}, ", "), city_line(a), a.country}) {
            PL_TRY(yn, L.paragraph(line, m, y, text_w, 3.0, 2.2, false, 1));
            y = yn;
        }
        y += L.mm(1);
        L.rule(y);
        y += L.mm(2);
    }

    if (!l.carrier.empty() || !l.service.empty()) {
        const std::string band = join({ascii_upper(l.carrier), ascii_upper(words_of(l.service))}, "  ");
        PL_TRY(y1, L.paragraph(band, m, y, text_w, 6.0, 4.0, true, 1));
        y = y1 + L.mm(0.5);
        L.rule(y, 1.0);
        y += L.mm(2.5);
    }

    {
        const Address& a = l.ship_to;
        PL_TRY(y1, L.paragraph("SHIP TO", m, y, text_w, 3.0, 3.0, true, 1));
        y = y1 + L.mm(0.5);
        PL_TRY(y2, L.paragraph(a.name, m, y, text_w, 6.0, 4.0, true, 2));
        y = y2;
        for (const std::string& line : {a.company, a.line1, a.line2, city_line(a)}) {
            PL_TRY(yn, L.paragraph(line, m, y, text_w, 4.6, 3.4, false, 2));
            y = yn;
        }
        PL_TRY(y3, L.paragraph(ascii_upper(a.country), m, y, text_w, 4.6, 3.4, true, 1));
        y = y3;
        if (!a.phone.empty()) {
            PL_TRY(y4, L.paragraph("Tel. " + a.phone, m, y, text_w, 3.4, 3.0, false, 1));
            y = y4;
        }
    }
    const int top_end = y + L.mm(1.5);

    // Bottom block, from the bottom up: QR code with the order beside it, then the tracking
    // number's Code 128 with its digits.
    PL_TRY(qr_and_side, L.qr(l.tracking_number, 24));
    auto [qr, qr_side] = qr_and_side;
    const int quiet = 4 * qr.module;
    qr.x = std::max(m, quiet);
    qr.y = H - std::max(m, quiet) - qr_side;
    L.add(qr);
    {
        const int tx = qr.x + qr_side + quiet;
        const int tw = W - m - tx;
        int ty = qr.y;
        if (!l.order_id.empty()) {
            PL_TRY(y1, L.paragraph("ORDER", tx, ty, tw, 3.0, 3.0, true, 1));
            PL_TRY(y2, L.paragraph(l.order_id, tx, y1, tw, 5.0, 3.0, true, 2));
            ty = y2 + L.mm(1);
        }
        if (!l.carrier.empty()) {
            PL_TRY(y3, L.paragraph(join({ascii_upper(l.carrier), words_of(l.service)}, " "), tx, ty,
                                   tw, 3.4, 2.6, false, 2));
            ty = y3;
        }
    }
    int yb = qr.y - quiet - L.mm(1);
    L.rule(yb - L.mm(0.5));
    yb -= L.mm(2.5);
    const int digits_size_mm = 4;
    const int digits_y = yb - L.mm(digits_size_mm);
    PL_TRY(yd, L.paragraph(l.tracking_number, m, digits_y, text_w, digits_size_mm, 3.0, true, 1,
                           Align::center));
    (void)yd;
    const int bar_h = L.mm(20);
    const int bar_y = digits_y - L.mm(1.5) - bar_h;
    PL_TRY(yc, L.code128("tracking_number", l.tracking_number, bar_y, bar_h));
    (void)yc;
    const int label_y = bar_y - L.mm(1.5) - L.mm(3);
    PL_TRY(yl, L.paragraph("TRACKING #", m, label_y, text_w, 3.0, 3.0, true, 1));
    (void)yl;
    const int bottom_start = label_y - L.mm(1.5);
    L.rule(bottom_start, 1.0);

    L.page.title = fmt::format("Shipping label {}", l.tracking_number);
    return L.finish(top_end, bottom_start, "shipping label");
}

// `compact`: the second try when the normal layout does not fit (long placement or product
// texts): detail rows shrink to one line each and the QR code gets smaller.
Result<Page> layout_ticket_as(const Ticket& t, const Calibration& c, FontSet& fonts, bool compact) {
    Layout L(c, fonts);
    const int m = L.margin;
    const int W = L.width();
    const int H = L.height();
    const int text_w = W - 2 * m;
    const std::string code = ticket_code(t.job_id, t.attempt);
    int y = m;

    PL_TRY(y1, L.paragraph("JOB " + t.job_id, m, y, text_w, 7.0, 4.5, true, 2));
    y = y1;
    if (!t.order_id.empty()) {
        PL_TRY(y2, L.paragraph("Order " + t.order_id, m, y, text_w, 5.0, 3.5, true, 2));
        y = y2;
    }
    y += L.mm(1);
    {
        // Attempt on the left, priority on the right (express in white on black).
        const double size = 5.0;
        PL_TRY(aw, L.inverse(fmt::format("ATTEMPT {}", t.attempt), m, y, size, false));
        (void)aw;
        if (!t.priority.empty()) {
            if (ascii_upper(t.priority) == "EXPRESS") {
                PL_TRY(pw, L.inverse(ascii_upper(t.priority), W - m, y, size, true));
                (void)pw;
            } else {
                PL_TRY(yp, L.paragraph(ascii_upper(t.priority), m, y, text_w, size, size, true, 1,
                                       Align::right));
                (void)yp;
            }
        }
        y += L.mm(size) + L.mm(2.5);
    }
    if (!t.due_by.empty()) {
        PL_TRY(y3, L.paragraph("Due " + t.due_by, m, y, text_w, 4.2, 3.0, true, 1));
        y = y3;
    }
    y += L.mm(0.5);
    L.rule(y, 0.8);
    y += L.mm(2);

    const std::pair<std::string, std::pair<double, bool>> rows[] = {
        {t.sku, {6.0, true}},
        {t.product_type, {4.5, false}},
        {t.size.empty() ? "" : "Size " + t.size, {6.0, true}},
        {t.garment_color.empty() ? "" : "Colour " + t.garment_color, {6.0, true}},
        {t.placement.empty() ? "" : "Placement: " + t.placement, {4.0, false}},
        {t.platen.empty() ? "" : "Platen: " + t.platen, {4.5, false}},
        {t.device.empty() ? "" : "Printer: " + t.device, {4.5, false}},
    };
    for (const auto& [text, style] : rows) {
        PL_TRY(yn, L.paragraph(text, m, y, text_w, style.first, compact ? 2.5 : 3.0, style.second,
                               compact ? 1 : 2));
        y = yn;
    }
    const int top_end = y + L.mm(1);

    // Bottom block from the bottom up: the code in text, its Code 128, then thumbnail and QR.
    const int code_size_mm = 4;
    const int code_y = H - m - L.mm(code_size_mm);
    PL_TRY(yc, L.paragraph(code, m, code_y, text_w, code_size_mm, 3.0, true, 1, Align::center));
    (void)yc;
    const int bar_h = L.mm(12);
    const int bar_y = code_y - L.mm(1.5) - bar_h;
    PL_TRY(yb, L.code128("job_id", code, bar_y, bar_h));
    (void)yb;

    PL_TRY(qr_and_side, L.qr(code, compact ? 24 : 30));
    auto [qr, qr_side] = qr_and_side;
    const int quiet = 4 * qr.module;
    // The QR code's quiet zone above the Code 128, plus room for ZPL printers placing ^BQ a few
    // dots below its ^FO.
    const int row_bottom = bar_y - std::max(quiet, L.mm(3)) - L.mm(1.5);
    qr.x = W - std::max(m, quiet) - qr_side;
    qr.y = row_bottom - qr_side;
    L.add(qr);

    int bottom_start = qr.y - quiet;
    if (!t.thumbnail_png.empty()) {
        PL_TRY(rgb, doc::decode_png(t.thumbnail_png, "thumbnail_png"));
        const int box_w = std::min(qr.x - quiet - m - L.mm(2), L.mm(45));
        const int box_h = std::min(box_w, row_bottom - top_end);
        if (box_w > L.mm(10) && box_h > L.mm(10)) {
            const int border = std::max(1, L.mm(0.3));
            const int bx = m;
            const int by = row_bottom - box_h;
            L.add(doc::Box{bx, by, box_w, box_h, border});
            const int pad = border + L.mm(1);
            cv::Mat thumb = doc::fit(rgb, box_w - 2 * pad, box_h - 2 * pad);
            const int ix = bx + pad + (box_w - 2 * pad - thumb.cols) / 2;
            const int iy = by + pad + (box_h - 2 * pad - thumb.rows) / 2;
            L.add(doc::Image{ix, iy, std::move(thumb)});
            bottom_start = std::min(bottom_start, by);
        }
    }
    L.page.title = fmt::format("Job ticket {}", code);
    return L.finish(top_end, bottom_start - L.mm(1), "job ticket");
}

Result<Page> layout_ticket(const Ticket& t, const Calibration& c, FontSet& fonts) {
    auto page = layout_ticket_as(t, c, fonts, false);
    if (const auto* p = std::get_if<Problem>(&page); p && p->reason == "render_failed")
        return layout_ticket_as(t, c, fonts, true);
    return page;
}

#undef PL_TRY

template <class Doc, class LayoutFn, class RenderFn>
Result<std::string> build(const Doc& d, const Calibration& c, const Fonts& f, LayoutFn layout,
                          RenderFn render, bool zpl) {
    if (auto p = validate(d, c, zpl)) return *p;
    FontSet fonts(f);
    auto page = layout(d, c, fonts);
    if (auto* p = std::get_if<Problem>(&page)) return *p;
    return render(std::get<Page>(page), c, fonts);
}

}  // namespace

Result<std::string> zpl_shipping_label(const ShippingLabel& l, const Calibration& c,
                                       const Fonts& f) {
    return build(l, c, f, layout_shipping, doc::render_zpl, true);
}

Result<std::string> pdf_shipping_label(const ShippingLabel& l, const Calibration& c,
                                       const Fonts& f) {
    return build(l, c, f, layout_shipping, doc::render_pdf, false);
}

Result<std::string> zpl_ticket(const Ticket& t, const Calibration& c, const Fonts& f) {
    return build(t, c, f, layout_ticket, doc::render_zpl, true);
}

Result<std::string> pdf_ticket(const Ticket& t, const Calibration& c, const Fonts& f) {
    return build(t, c, f, layout_ticket, doc::render_pdf, false);
}

}  // namespace pressline::devices::label
