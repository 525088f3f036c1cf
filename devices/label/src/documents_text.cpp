// Text for labels and tickets: UTF-8, the ZPL font-0 coverage rule, and FreeType for glyph
// presence (which font draws a character), widths (layout) and rasterised lines (ZPL ^GF).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <system_error>

#include <fmt/format.h>
#include <ft2build.h>
#include FT_FREETYPE_H
#include FT_ADVANCES_H
#include FT_OUTLINE_H

#include "documents_detail.hpp"

namespace pressline::devices::label::doc {

std::optional<std::u32string> decode_utf8(std::string_view s) {
    std::u32string out;
    out.reserve(s.size());
    std::size_t i = 0;
    while (i < s.size()) {
        const auto b0 = static_cast<unsigned char>(s[i]);
        char32_t cp = 0;
        int extra = 0;
        if (b0 < 0x80) {
            cp = b0;
        } else if (b0 >= 0xC2 && b0 <= 0xDF) {
            cp = b0 & 0x1F;
            extra = 1;
        } else if (b0 >= 0xE0 && b0 <= 0xEF) {
            cp = b0 & 0x0F;
            extra = 2;
        } else if (b0 >= 0xF0 && b0 <= 0xF4) {
            cp = b0 & 0x07;
            extra = 3;
        } else {
            return std::nullopt;
        }
        if (i + static_cast<std::size_t>(extra) >= s.size() && extra > 0) return std::nullopt;
        for (int k = 1; k <= extra; ++k) {
            const auto b = static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]);
            if ((b & 0xC0) != 0x80) return std::nullopt;
            cp = (cp << 6) | (b & 0x3F);
        }
        // Overlong forms, surrogates and values above U+10FFFF are not UTF-8.
        if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF)) {
            return std::nullopt;
        }
        out.push_back(cp);
        i += static_cast<std::size_t>(extra) + 1;
    }
    return out;
}

std::string encode_utf8(std::u32string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char32_t cp : s) {
        if (cp < 0x80) {
            out.push_back(static_cast<char>(cp));
        } else if (cp < 0x800) {
            out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        } else if (cp < 0x10000) {
            out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        } else {
            out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        }
    }
    return out;
}

bool zpl_font_covers(std::u32string_view text) {
    auto covered = [](char32_t cp) {
        return (cp >= 0x20 && cp <= 0x7E) ||      // ASCII
               (cp >= 0xA0 && cp <= 0x17F) ||     // Latin-1 Supplement, Latin Extended-A
               (cp >= 0x370 && cp <= 0x3FF) ||    // Greek and Coptic
               (cp >= 0x400 && cp <= 0x4FF) ||    // Cyrillic
               (cp >= 0x2010 && cp <= 0x2027) ||  // dashes, quotes, bullet, ellipsis
               (cp >= 0x2030 && cp <= 0x203A) ||  // per mille, primes, angle quotes
               cp == 0x20AC;                      // euro sign
    };
    return std::all_of(text.begin(), text.end(), covered);
}

// ---- FontSet ----

struct FontSet::Impl {
    Fonts paths;
    FT_Library library = nullptr;
    FT_Error library_error = 0;
    FT_Face faces[3] = {nullptr, nullptr, nullptr};
    std::optional<Problem> failed[3];

    ~Impl() {
        for (FT_Face f : faces) {
            if (f != nullptr) FT_Done_Face(f);
        }
        if (library != nullptr) FT_Done_FreeType(library);
    }

    const std::string& path(Face f) const {
        switch (f) {
            case Face::regular: return paths.regular;
            case Face::bold: return paths.bold;
            case Face::fallback: return paths.fallback;
        }
        return paths.regular;
    }

    Result<FT_Face> face(Face f) {
        const auto i = static_cast<std::size_t>(f);
        if (faces[i] != nullptr) return faces[i];
        if (failed[i]) return *failed[i];
        if (library == nullptr) {
            library_error = FT_Init_FreeType(&library);
            if (library_error != 0) {
                library = nullptr;
                return Problem{"render_failed",
                               fmt::format("FreeType: FT_Init_FreeType failed (error {})",
                                           library_error)};
            }
        }
        static constexpr const char* kNames[] = {"regular", "bold", "fallback"};
        const std::string& p = path(f);
        std::error_code ec;
        if (p.empty() || !std::filesystem::is_regular_file(p, ec)) {
            failed[i] = Problem{"font_missing",
                                fmt::format("font file {} (fonts.{}) not found: install "
                                            "fonts-dejavu-core and fonts-droid-fallback",
                                            p.empty() ? "\"\"" : p, kNames[i])};
            return *failed[i];
        }
        FT_Face face = nullptr;
        const FT_Error err = FT_New_Face(library, p.c_str(), 0, &face);
        if (err != 0 || face == nullptr) {
            failed[i] = Problem{"font_missing",
                                fmt::format("font file {} (fonts.{}) cannot be loaded by "
                                            "FreeType (error {})",
                                            p, kNames[i], err)};
            return *failed[i];
        }
        if (face->charmap == nullptr || !FT_IS_SCALABLE(face)) {
            FT_Done_Face(face);
            failed[i] = Problem{"font_missing",
                                fmt::format("font file {} (fonts.{}) is not a scalable Unicode "
                                            "font",
                                            p, kNames[i])};
            return *failed[i];
        }
        faces[i] = face;
        return face;
    }
};

FontSet::FontSet(const Fonts& paths) : impl_(std::make_unique<Impl>()) { impl_->paths = paths; }
FontSet::~FontSet() = default;

const std::string& FontSet::path(Face f) const { return impl_->path(f); }

Result<std::vector<FontSet::Run>> FontSet::runs(std::string_view utf8, bool bold) {
    const auto cps = decode_utf8(utf8);
    if (!cps) return Problem{"invalid_field", "text is not valid UTF-8"};
    const Face primary_kind = bold ? Face::bold : Face::regular;
    auto primary = impl_->face(primary_kind);
    if (auto* p = std::get_if<Problem>(&primary)) return *p;
    FT_Face main_face = std::get<FT_Face>(primary);

    std::vector<Run> out;
    std::u32string current;
    Face current_face = primary_kind;
    auto flush = [&] {
        if (!current.empty()) out.push_back(Run{current_face, encode_utf8(current)});
        current.clear();
    };
    for (char32_t cp : *cps) {
        Face want = primary_kind;
        if (cp == U' ' && !current.empty()) {
            want = current_face;  // a space stays with its run (fewer font switches)
        } else if (FT_Get_Char_Index(main_face, cp) == 0) {
            auto fb = impl_->face(Face::fallback);
            if (auto* p = std::get_if<Problem>(&fb)) return *p;
            if (FT_Get_Char_Index(std::get<FT_Face>(fb), cp) != 0) want = Face::fallback;
        }
        if (want != current_face) flush();
        current_face = want;
        current.push_back(cp);
    }
    flush();
    return out;
}

Result<double> FontSet::width(std::string_view utf8, int size, bool bold) {
    auto r = runs(utf8, bold);
    if (auto* p = std::get_if<Problem>(&r)) return *p;
    const double em = kEmPerSize * size;
    double total = 0;
    for (const Run& run : std::get<std::vector<Run>>(r)) {
        FT_Face face = std::get<FT_Face>(impl_->face(run.face));  // loaded by runs()
        const double per_unit = em / face->units_per_EM;
        const auto cps = decode_utf8(run.text);  // valid: runs() made it
        for (char32_t cp : *cps) {
            FT_Fixed advance = 0;
            if (FT_Get_Advance(face, FT_Get_Char_Index(face, cp), FT_LOAD_NO_SCALE, &advance) == 0) {
                total += static_cast<double>(advance) * per_unit;
            }
        }
    }
    return total;
}

Result<Bitmap> FontSet::rasterize(std::string_view utf8, int size, bool bold) {
    auto r = runs(utf8, bold);
    if (auto* p = std::get_if<Problem>(&r)) return *p;
    auto w = width(utf8, size, bold);
    if (auto* p = std::get_if<Problem>(&w)) return *p;
    const double em = kEmPerSize * size;
    const int height = std::max(1, size);
    const int canvas_w = std::max(1, static_cast<int>(std::ceil(std::get<double>(w))) + 2);
    const int baseline = static_cast<int>(std::lround(kBaselinePerSize * size));
    cv::Mat ink(height, canvas_w, CV_8UC1, cv::Scalar(0));

    FT_Pos pen = 0;  // 26.6
    for (const Run& run : std::get<std::vector<Run>>(r)) {
        FT_Face face = std::get<FT_Face>(impl_->face(run.face));
        const auto em26 = static_cast<FT_F26Dot6>(std::lround(em * 64));
        if (FT_Set_Char_Size(face, 0, em26, 72, 72) != 0) {
            return Problem{"render_failed",
                           fmt::format("FreeType: cannot set {} dots on {}", em, path(run.face))};
        }
        // DroidSansFallback has no bold face: bold runs in it are emboldened synthetically.
        const bool synthetic_bold = bold && run.face == Face::fallback;
        const auto cps = decode_utf8(run.text);
        for (char32_t cp : *cps) {
            const FT_UInt index = FT_Get_Char_Index(face, cp);
            if (FT_Load_Glyph(face, index, FT_LOAD_DEFAULT | FT_LOAD_NO_BITMAP) != 0) continue;
            FT_GlyphSlot slot = face->glyph;
            FT_Pos advance = slot->advance.x;
            if (synthetic_bold && slot->format == FT_GLYPH_FORMAT_OUTLINE) {
                const auto strength = static_cast<FT_Pos>(em26 / 24);
                FT_Outline_Embolden(&slot->outline, strength);
            }
            if (FT_Render_Glyph(slot, FT_RENDER_MODE_NORMAL) == 0) {
                const FT_Bitmap& bm = slot->bitmap;
                const int ox = static_cast<int>((pen + 32) >> 6) + slot->bitmap_left + 1;
                const int oy = baseline - slot->bitmap_top;
                for (unsigned row = 0; row < bm.rows; ++row) {
                    const int y = oy + static_cast<int>(row);
                    if (y < 0 || y >= height) continue;
                    const unsigned char* src = bm.buffer + static_cast<std::ptrdiff_t>(row) * bm.pitch;
                    for (unsigned col = 0; col < bm.width; ++col) {
                        const int x = ox + static_cast<int>(col);
                        if (x < 0 || x >= canvas_w) continue;
                        auto& dst = ink.at<std::uint8_t>(y, x);
                        dst = std::max<std::uint8_t>(dst, src[col]);
                    }
                }
            }
            pen += advance;
        }
    }

    Bitmap out;
    out.width = canvas_w;
    out.height = height;
    out.row_bytes = (canvas_w + 7) / 8;
    out.bits.assign(static_cast<std::size_t>(out.row_bytes) * height, 0);
    for (int y = 0; y < height; ++y) {
        for (int x = 0; x < canvas_w; ++x) {
            if (ink.at<std::uint8_t>(y, x) >= 128) {
                out.bits[static_cast<std::size_t>(y) * out.row_bytes + x / 8] |=
                    static_cast<std::uint8_t>(0x80 >> (x % 8));
            }
        }
    }
    return out;
}

namespace {

struct Decompose {
    std::vector<FontSet::PathOp>* ops;
    double scale;  // 1 / units per em
    double pen;    // em
    double cx = 0, cy = 0;  // current point, em
    double X(const FT_Vector* v) const { return pen + v->x * scale; }
    double Y(const FT_Vector* v) const { return v->y * scale; }
};

int move_to(const FT_Vector* to, void* user) {
    auto* d = static_cast<Decompose*>(user);
    d->cx = d->X(to);
    d->cy = d->Y(to);
    d->ops->push_back({'M', 0, 0, 0, 0, d->cx, d->cy});
    return 0;
}
int line_to(const FT_Vector* to, void* user) {
    auto* d = static_cast<Decompose*>(user);
    d->cx = d->X(to);
    d->cy = d->Y(to);
    d->ops->push_back({'L', 0, 0, 0, 0, d->cx, d->cy});
    return 0;
}
int conic_to(const FT_Vector* control, const FT_Vector* to, void* user) {
    auto* d = static_cast<Decompose*>(user);  // quadratic as cubic
    const double qx = d->X(control), qy = d->Y(control);
    const double x = d->X(to), y = d->Y(to);
    d->ops->push_back({'C', d->cx + 2.0 / 3.0 * (qx - d->cx), d->cy + 2.0 / 3.0 * (qy - d->cy),
                       x + 2.0 / 3.0 * (qx - x), y + 2.0 / 3.0 * (qy - y), x, y});
    d->cx = x;
    d->cy = y;
    return 0;
}
int cubic_to(const FT_Vector* c1, const FT_Vector* c2, const FT_Vector* to, void* user) {
    auto* d = static_cast<Decompose*>(user);
    d->cx = d->X(to);
    d->cy = d->Y(to);
    d->ops->push_back({'C', d->X(c1), d->Y(c1), d->X(c2), d->Y(c2), d->cx, d->cy});
    return 0;
}

}  // namespace

Result<std::vector<FontSet::PathOp>> FontSet::outlines(std::string_view utf8, Face f,
                                                       bool synthetic_bold) {
    auto loaded = impl_->face(f);
    if (auto* p = std::get_if<Problem>(&loaded)) return *p;
    FT_Face face = std::get<FT_Face>(loaded);
    const auto cps = decode_utf8(utf8);
    if (!cps) return Problem{"invalid_field", "text is not valid UTF-8"};
    std::vector<PathOp> ops;
    Decompose d{&ops, 1.0 / face->units_per_EM, 0.0};
    FT_Outline_Funcs funcs{};
    funcs.move_to = move_to;
    funcs.line_to = line_to;
    funcs.conic_to = conic_to;
    funcs.cubic_to = cubic_to;
    for (char32_t cp : *cps) {
        if (FT_Load_Glyph(face, FT_Get_Char_Index(face, cp),
                          FT_LOAD_NO_SCALE | FT_LOAD_NO_HINTING | FT_LOAD_NO_BITMAP) != 0) {
            continue;
        }
        FT_GlyphSlot slot = face->glyph;
        if (slot->format == FT_GLYPH_FORMAT_OUTLINE) {
            if (synthetic_bold) FT_Outline_Embolden(&slot->outline, face->units_per_EM / 24);
            FT_Outline_Decompose(&slot->outline, &funcs, &d);
        }
        d.pen += static_cast<double>(slot->advance.x) * d.scale;  // font units when unscaled
    }
    return ops;
}

Result<std::vector<std::string>> wrap(FontSet& fonts, std::string_view text, int size, bool bold,
                                      int max_width) {
    std::vector<std::string> lines;
    auto fits = [&](const std::string& s) -> Result<bool> {
        auto w = fonts.width(s, size, bold);
        if (auto* p = std::get_if<Problem>(&w)) return *p;
        return std::get<double>(w) <= max_width;
    };
    std::vector<std::string> words;
    {
        std::string word;
        for (char ch : text) {
            if (ch == ' ') {
                if (!word.empty()) words.push_back(std::move(word));
                word.clear();
            } else {
                word.push_back(ch);
            }
        }
        if (!word.empty()) words.push_back(std::move(word));
    }
    std::string line;
    for (const std::string& word : words) {
        const std::string candidate = line.empty() ? word : line + " " + word;
        auto ok = fits(candidate);
        if (auto* p = std::get_if<Problem>(&ok)) return *p;
        if (std::get<bool>(ok)) {
            line = candidate;
            continue;
        }
        if (!line.empty()) lines.push_back(std::move(line));
        line.clear();
        auto word_ok = fits(word);
        if (auto* p = std::get_if<Problem>(&word_ok)) return *p;
        if (std::get<bool>(word_ok)) {
            line = word;
            continue;
        }
        // A word wider than the line (CJK text has no spaces): break between characters.
        const auto cps = decode_utf8(word);
        if (!cps) return Problem{"invalid_field", "text is not valid UTF-8"};
        std::u32string piece;
        for (char32_t cp : *cps) {
            std::u32string longer = piece + cp;
            auto piece_ok = fits(encode_utf8(longer));
            if (auto* p = std::get_if<Problem>(&piece_ok)) return *p;
            if (!std::get<bool>(piece_ok) && !piece.empty()) {
                lines.push_back(encode_utf8(piece));
                piece.assign(1, cp);
            } else {
                piece = std::move(longer);
            }
        }
        line = encode_utf8(piece);
    }
    if (!line.empty()) lines.push_back(std::move(line));
    return lines;
}

}  // namespace pressline::devices::label::doc
