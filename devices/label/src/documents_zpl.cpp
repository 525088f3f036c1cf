// ZPL II back end: our own labels and tickets, carrier ZPL passed through with the printer's
// calibration, and PNG labels as one graphic field.
//
// Choices (Zebra ZPL II Programming Guide):
// - Darkness is ~SD (absolute, 00..30), not ^MD (relative to the printer's setting, -30..30):
//   Calibration::darkness is absolute.
// - Media: ^MNY (gap / web), ^MNM (black mark), ^MNN (continuous).
// - Offsets: right / down with ^LH; left with ^LS (shift left), up with ^LT (label top, at most
//   120 dot rows). ^LS and ^LT persist in the printer, so every format sets both (0 if unused).
// - Text: ^CI28 (UTF-8) and font 0 (^A0) for what zpl_font_covers() accepts; any other line
//   is rasterised with FreeType and sent as ^GFA (a line is text or graphic as a whole).
// - Graphics: ^GFA with ZPL's ASCII compression (repeat counts G..Y / g..z, ',' for a row's
//   trailing zeros, ':' for a repeated row); never '!' (some decoders fill it wrongly).
// - Code 128: ^BC mode A (the printer picks subsets, C for digit runs), no interpretation line
//   (our own text is printed under it). QR: ^BQN,2 (model 2), error correction M, "MA," data.
#include <algorithm>
#include <cctype>
#include <cstdio>

#include <fmt/format.h>

#include "documents_detail.hpp"

namespace pressline::devices::label {
namespace doc {
namespace {

char media_letter(MediaType m) {
    switch (m) {
        case MediaType::gap: return 'Y';
        case MediaType::black_mark: return 'M';
        case MediaType::continuous: return 'N';
    }
    return 'Y';
}

// ^FD of text: ^FH (hex escapes with _) only when the text holds ^ or ~.
std::string field_data(std::string_view text) {
    if (text.find_first_of("^~") == std::string_view::npos) return fmt::format("^FD{}", text);
    std::string out = "^FH^FD";
    for (char ch : text) {
        switch (ch) {
            case '^': out += "_5E"; break;
            case '~': out += "_7E"; break;
            case '_': out += "_5F"; break;
            default: out.push_back(ch);
        }
    }
    return out;
}

void repeat_count(std::string& out, int n) {
    while (n >= 20) {
        const int k = std::min(n / 20, 20);  // g = 20 ... z = 400
        out.push_back(static_cast<char>('g' + k - 1));
        n -= 20 * k;
    }
    if (n > 0) out.push_back(static_cast<char>('G' + n - 1));  // G = 1 ... Y = 19
}

void compress_row(std::string& out, std::string_view hex) {
    std::size_t end = hex.size();
    while (end > 0 && hex[end - 1] == '0') --end;
    std::size_t i = 0;
    while (i < end) {
        std::size_t j = i + 1;
        while (j < end && hex[j] == hex[i]) ++j;
        const int n = static_cast<int>(j - i);
        if (n > 1) repeat_count(out, n);
        out.push_back(hex[i]);
        i = j;
    }
    if (end < hex.size()) out.push_back(',');
}

bool starts_with_ci(std::string_view s, std::size_t at, std::string_view cmd) {
    if (at + cmd.size() > s.size()) return false;
    for (std::size_t k = 0; k < cmd.size(); ++k) {
        if (std::toupper(static_cast<unsigned char>(s[at + k])) != cmd[k]) return false;
    }
    return true;
}

// Position of the next "^" + cmd (case-insensitive) at or after `from`.
std::size_t find_command(std::string_view s, std::string_view cmd, std::size_t from) {
    for (std::size_t at = s.find('^', from); at != std::string_view::npos; at = s.find('^', at + 1)) {
        if (starts_with_ci(s, at + 1, cmd)) return at;
    }
    return std::string_view::npos;
}

// A carrier's ^LHx,y gets the calibration's offsets added.
std::string shift_label_home(std::string_view body, int dx, int dy) {
    std::string out;
    std::size_t pos = 0;
    for (std::size_t at = find_command(body, "LH", 0); at != std::string_view::npos;
         at = find_command(body, "LH", pos)) {
        std::size_t end = at + 3;
        while (end < body.size() && body[end] != '^' && body[end] != '~' && body[end] != '\n' &&
               body[end] != '\r') {
            ++end;
        }
        const std::string_view params = body.substr(at + 3, end - at - 3);
        int x = 0, y = 0;
        bool ok = true;
        const auto comma = params.find(',');
        auto parse = [&ok](std::string_view v, int& into) {
            std::string t;
            for (char ch : v) {
                if (ch != ' ') t.push_back(ch);
            }
            if (t.empty()) return;
            if (!std::all_of(t.begin(), t.end(), [](char ch) { return ch >= '0' && ch <= '9'; }) ||
                t.size() > 5) {
                ok = false;
                return;
            }
            into = std::stoi(t);
        };
        parse(params.substr(0, comma), x);
        if (comma != std::string_view::npos) parse(params.substr(comma + 1), y);
        out.append(body.substr(pos, at - pos));
        if (ok) {
            out += fmt::format("^LH{},{}", x + dx, y + dy);
        } else {
            out.append(body.substr(at, end - at));  // not ours to guess: passed through
        }
        pos = end;
    }
    out.append(body.substr(pos));
    return out;
}

}  // namespace

std::string zpl_setup(const Calibration& c, bool with_size) {
    std::string s;
    if (with_size) {
        s += fmt::format("^PW{}^LL{}", dots(c.width_mm, c.dpi), dots(c.height_mm, c.dpi));
    }
    const int dx = dots(c.x_offset_mm, c.dpi);
    const int dy = dots(c.y_offset_mm, c.dpi);
    s += fmt::format("^LH{},{}^LS{}^LT{}^MN{}", std::max(dx, 0), std::max(dy, 0), std::max(-dx, 0),
                     std::min(dy, 0), media_letter(c.media));
    if (c.darkness >= 0) s += fmt::format("~SD{:02d}", c.darkness);
    return s;
}

std::string zpl_graphic_field(const Bitmap& b) {
    const std::size_t total = static_cast<std::size_t>(b.row_bytes) * b.height;
    std::string out = fmt::format("^GFA,{},{},{},", total, total, b.row_bytes);
    std::string hex;
    std::string previous;
    static constexpr char kHex[] = "0123456789ABCDEF";
    for (int y = 0; y < b.height; ++y) {
        hex.clear();
        for (int k = 0; k < b.row_bytes; ++k) {
            const std::uint8_t v = b.bits[static_cast<std::size_t>(y) * b.row_bytes + k];
            hex.push_back(kHex[v >> 4]);
            hex.push_back(kHex[v & 15]);
        }
        if (y > 0 && hex == previous) {
            out.push_back(':');
        } else {
            compress_row(out, hex);
        }
        previous.swap(hex);
    }
    return out;
}

Result<std::string> render_zpl(const Page& page, const Calibration& c, FontSet& fonts) {
    // ^PON ^LRN: nothing inherited from an earlier format (a carrier's) turns or inverts ours.
    std::string z = "^XA\n^CI28^PON^LRN\n" + zpl_setup(c, true) + "\n";
    for (const Item& item : page.items) {
        if (const auto* t = std::get_if<Text>(&item)) {
            const auto cps = decode_utf8(t->text);
            if (!cps) return Problem{"invalid_field", "text is not valid UTF-8"};
            const char* reverse = t->inverse ? "^FR" : "";
            if (zpl_font_covers(*cps)) {
                z += fmt::format("^FO{},{}^A0N,{},{}{}{}^FS\n", t->x, t->y, t->size, t->size,
                                 reverse, field_data(t->text));
            } else {
                auto bm = fonts.rasterize(t->text, t->size, t->bold);
                if (auto* p = std::get_if<Problem>(&bm)) return *p;
                z += fmt::format("^FO{},{}{}{}^FS\n", t->x, t->y, reverse,
                                 zpl_graphic_field(std::get<Bitmap>(bm)));
            }
        } else if (const auto* b = std::get_if<Box>(&item)) {
            const int thick = b->line > 0 ? b->line : std::min(b->w, b->h);
            z += fmt::format("^FO{},{}^GB{},{},{},B,0^FS\n", b->x, b->y, b->w, b->h, thick);
        } else if (const auto* bc = std::get_if<Code128>(&item)) {
            z += fmt::format("^FO{},{}^BY{}^BCN,{},N,N,N,A^FD{}^FS\n", bc->x, bc->y, bc->module,
                             bc->h, bc->data);
        } else if (const auto* q = std::get_if<Qr>(&item)) {
            z += fmt::format("^FO{},{}^BQN,2,{}^FDMA,{}^FS\n", q->x, q->y, q->module, q->data);
        } else if (const auto* img = std::get_if<Image>(&item)) {
            z += fmt::format("^FO{},{}{}^FS\n", img->x, img->y,
                             zpl_graphic_field(to_bitmap(img->rgb, true)));
        }
    }
    z += "^PQ1\n^XZ\n";
    return z;
}

}  // namespace doc

Result<std::string> zpl_calibrated(std::string_view carrier_zpl, const Calibration& c) {
    if (auto problems = doc::calibration_problems(c, true); !problems.empty()) {
        std::string msg;
        for (const auto& m : problems) msg += (msg.empty() ? "" : "; ") + m;
        return Problem{"invalid_field", msg};
    }
    // A carrier's own ^LH gets the offsets to the right and down; left and up are ^LS / ^LT.
    const int dx = std::max(0, doc::dots(c.x_offset_mm, c.dpi));
    const int dy = std::max(0, doc::dots(c.y_offset_mm, c.dpi));
    std::string out;
    out.reserve(carrier_zpl.size() + 64);
    std::size_t pos = 0;
    int formats = 0;
    for (;;) {
        const std::size_t xa = doc::find_command(carrier_zpl, "XA", pos);
        if (xa == std::string_view::npos) break;
        const std::size_t xz = doc::find_command(carrier_zpl, "XZ", xa + 3);
        if (xz == std::string_view::npos) {
            return doc::invalid("carrier_zpl",
                                fmt::format("the format starting at byte {} has no ^XZ", xa));
        }
        const std::size_t next_xa = doc::find_command(carrier_zpl, "XA", xa + 3);
        if (next_xa < xz) {
            return doc::invalid("carrier_zpl", fmt::format("^XA at byte {} inside the format "
                                                           "starting at byte {} (no ^XZ between)",
                                                           next_xa, xa));
        }
        const std::string_view body = carrier_zpl.substr(xa + 3, xz - xa - 3);
        out.append(carrier_zpl.substr(pos, xa + 3 - pos));
        // The carrier's ^PW/^LL are kept; a format without them gets the calibrated size.
        if (doc::find_command(body, "PW", 0) == std::string_view::npos) {
            out += fmt::format("^PW{}", doc::dots(c.width_mm, c.dpi));
        }
        if (doc::find_command(body, "LL", 0) == std::string_view::npos) {
            out += fmt::format("^LL{}", doc::dots(c.height_mm, c.dpi));
        }
        out += doc::zpl_setup(c, false);
        out += doc::shift_label_home(body, dx, dy);
        pos = xz;
        ++formats;
    }
    if (formats == 0) {
        return doc::invalid("carrier_zpl", "no ^XA ... ^XZ label format in the data");
    }
    out.append(carrier_zpl.substr(pos));
    return out;
}

Result<std::string> zpl_from_png(const std::vector<std::uint8_t>& png, const Calibration& c) {
    if (auto problems = doc::calibration_problems(c, true); !problems.empty()) {
        std::string msg;
        for (const auto& m : problems) msg += (msg.empty() ? "" : "; ") + m;
        return Problem{"invalid_field", msg};
    }
    auto rgb = doc::decode_png(png, "png");
    if (auto* p = std::get_if<Problem>(&rgb)) return *p;
    const cv::Mat label = doc::fit(std::get<cv::Mat>(rgb), doc::dots(c.width_mm, c.dpi),
                                   doc::dots(c.height_mm, c.dpi));
    // Carrier labels are black and white with sharp edges: a threshold keeps bars bars.
    const doc::Bitmap bm = doc::to_bitmap(label, false);
    return fmt::format("^XA\n^PON^LRN\n{}\n^FO0,0{}^FS\n^PQ1\n^XZ\n", doc::zpl_setup(c, true),
                       doc::zpl_graphic_field(bm));
}

Result<std::string> pdf_from_png(const std::vector<std::uint8_t>& png, const Calibration& c, const Fonts& f) {
    if (auto problems = doc::calibration_problems(c, false); !problems.empty()) {
        std::string msg;
        for (const auto& m : problems) msg += (msg.empty() ? "" : "; ") + m;
        return Problem{"invalid_field", msg};
    }
    auto rgb = doc::decode_png(png, "png");
    if (auto* p = std::get_if<Problem>(&rgb)) return *p;
    doc::Page page;
    page.width = doc::dots(c.width_mm, c.dpi);
    page.height = doc::dots(c.height_mm, c.dpi);
    page.title = "carrier label";
    page.items.push_back(doc::Image{0, 0, doc::fit(std::get<cv::Mat>(rgb), page.width, page.height)});
    doc::FontSet fonts(f);  // no text: no font is loaded
    return doc::render_pdf(page, c, fonts);
}

}  // namespace pressline::devices::label
