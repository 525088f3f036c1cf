// Parsing and validation of inbound MQTT payloads against the embedded contract schemas.
//
// Pipeline (parse_json): size limit -> one pass over the bytes (strict UTF-8, lone surrogate
// escapes, nesting depth, "\u0000" escapes) -> nlohmann parse (duplicate keys counted) -> top
// level must be an object. parse_job / parse_command then validate with valijson against
// docs/schemas/*.schema.json (compiled in by agent/cmake/EmbedSchemas.cmake) and turn valijson's
// error list into one Rejection.
//
// Decisions (also tested in tests/unit/validation_test.cpp):
// - Invalid UTF-8 (including overlong forms, UTF-8-encoded surrogates, > U+10FFFF) anywhere in the
//   payload: invalid_utf8. A \uXXXX escape that is a lone surrogate (e.g. "\ud800") cannot be
//   turned into UTF-8 either: invalid_utf8 too (nlohmann would reject it as a syntax error).
// - Duplicate keys in one object: rejected (malformed_json, field = path of the repeated key).
//   nlohmann would silently keep the last one; other parsers keep the first, so a signed order
//   could mean different things to the cloud and to us.
// - A string or key containing "\u0000": invalid_value with the path. No field needs NUL and C
//   APIs downstream (CUPS, SQLite text, ZPL) would silently truncate at it. A raw NUL byte is
//   never valid JSON: malformed_json (nlohmann alone would treat it as end of input and accept
//   "{...}\0<anything>").
// - Field paths: keys joined with '.', array indices as [n]; control characters in keys are shown
//   as \u00XX and keys longer than 64 characters are cut.
// - A number outside the double range (1e999): invalid_value with the path (nlohmann refuses it).
// - Depth: the top-level object is depth 1; more than ParseLimits::max_depth nested [ and { is
//   too_deeply_nested, found by the byte pass before nlohmann builds anything.
//
// Thread safety: the schemas are parsed once (function-local statics) and only read afterwards;
// each thread has its own valijson::Validator (it caches compiled std::regex objects).
#include "pressline/agent/validation.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#ifndef VALIJSON_USE_EXCEPTIONS
#define VALIJSON_USE_EXCEPTIONS 1  // schema errors must throw (caught here), never abort()
#endif
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include <pressline/schemas.hpp>  // generated from docs/schemas

namespace pressline::agent {
namespace {

using json = nlohmann::json;

constexpr std::size_t kMaxShownChars = 40;  // of an offending value, in a message
constexpr std::size_t kMaxKeyChars = 64;    // of one key, in a field path

Rejection reject(std::string reason, std::string field, std::string message) {
    return Rejection{std::move(reason), std::move(field), std::move(message)};
}

// ---------------------------------------------------------------------------------------------
// Text helpers

// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is not valid (Unicode 15,
// table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF).
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
    const auto byte = [&](std::size_t k) -> unsigned {
        return k < s.size() ? static_cast<unsigned char>(s[k]) : 0x100U;
    };
    const auto in = [](unsigned b, unsigned lo, unsigned hi) { return b >= lo && b <= hi; };
    const unsigned b0 = byte(i);
    if (b0 < 0x80) {
        return 1;
    }
    if (in(b0, 0xC2, 0xDF)) {
        return in(byte(i + 1), 0x80, 0xBF) ? 2 : 0;
    }
    if (in(b0, 0xE0, 0xEF)) {
        const unsigned lo = b0 == 0xE0 ? 0xA0 : 0x80;
        const unsigned hi = b0 == 0xED ? 0x9F : 0xBF;
        return in(byte(i + 1), lo, hi) && in(byte(i + 2), 0x80, 0xBF) ? 3 : 0;
    }
    if (in(b0, 0xF0, 0xF4)) {
        const unsigned lo = b0 == 0xF0 ? 0x90 : 0x80;
        const unsigned hi = b0 == 0xF4 ? 0x8F : 0xBF;
        return in(byte(i + 1), lo, hi) && in(byte(i + 2), 0x80, 0xBF) &&
                       in(byte(i + 3), 0x80, 0xBF)
                   ? 4
                   : 0;
    }
    return 0;
}

// The first `max_chars` code points of valid UTF-8 `s` (all of it if shorter).
std::string_view utf8_prefix(std::string_view s, std::size_t max_chars, bool* truncated) {
    std::size_t chars = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if ((static_cast<unsigned char>(s[i]) & 0xC0U) != 0x80U) {
            if (chars == max_chars) {
                *truncated = true;
                return s.substr(0, i);
            }
            ++chars;
        }
    }
    *truncated = false;
    return s;
}

std::size_t utf8_length(std::string_view s) {
    return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xC0U) != 0x80U;
    }));
}

std::string dump(const json& value) {
    return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

// A short rendering of an offending value for a message: "urgent" (quoted), 42, true, an object.
std::string show(const json& value) {
    switch (value.type()) {
        case json::value_t::object:
            return "an object";
        case json::value_t::array:
            return "an array of " + std::to_string(value.size()) + " items";
        case json::value_t::string: {
            const auto& s = value.get_ref<const std::string&>();
            bool truncated = false;
            std::string shown = dump(json(std::string(utf8_prefix(s, kMaxShownChars, &truncated))));
            if (truncated) {
                shown.insert(shown.size() - 1, "...");
                shown += " (" + std::to_string(utf8_length(s)) + " characters)";
            }
            return shown;
        }
        default:
            return dump(value);
    }
}

std::string type_phrase(std::string_view type) {
    if (type == "string") return "a string";
    if (type == "integer") return "an integer";
    if (type == "number") return "a number";
    if (type == "boolean") return "true or false";
    if (type == "object") return "an object";
    if (type == "array") return "an array";
    if (type == "null") return "null";
    return std::string(type);
}

// Text of a schema value in a message: strings bare, anything else as JSON.
std::string bare(const json& value) {
    return value.is_string() ? value.get<std::string>() : dump(value);
}

// ---------------------------------------------------------------------------------------------
// Paths

struct PathSegment {
    std::string key;  // used when !is_index
    std::size_t index = 0;
    bool is_index = false;
};
using Path = std::vector<PathSegment>;

std::string field_of(const Path& path) {
    std::string out;
    for (const auto& seg : path) {
        if (seg.is_index) {
            out += '[' + std::to_string(seg.index) + ']';
            continue;
        }
        if (!out.empty()) {
            out += '.';
        }
        bool truncated = false;
        for (const char c : utf8_prefix(seg.key, kMaxKeyChars, &truncated)) {
            const auto u = static_cast<unsigned char>(c);
            if (u < 0x20 || u == 0x7F) {  // keys may hold escaped control characters
                char escaped[8];
                std::snprintf(escaped, sizeof escaped, "\\u%04X", u);
                out += escaped;
            } else {
                out += c;
            }
        }
        if (truncated) {
            out += "...";
        }
    }
    return out;
}

std::string join_field(const std::string& parent, const std::string& key) {
    return parent.empty() ? key : parent + '.' + key;
}

// ---------------------------------------------------------------------------------------------
// Byte pass: UTF-8, surrogate escapes, depth, NUL escapes. No allocation, no recursion.

struct Scan {
    std::optional<Rejection> rejection;
    bool has_nul_escape = false;
};

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// The code unit of the \uXXXX escape starting at s[i] (the backslash), or -1.
long escape_unit(std::string_view s, std::size_t i) {
    if (i + 6 > s.size() || s[i] != '\\' || s[i + 1] != 'u') {
        return -1;
    }
    long unit = 0;
    for (std::size_t k = i + 2; k < i + 6; ++k) {
        const int h = hex_value(s[k]);
        if (h < 0) {
            return -1;
        }
        unit = unit * 16 + h;
    }
    return unit;
}

Scan scan_bytes(std::string_view s, int max_depth) {
    Scan scan;
    int depth = 0;
    bool in_string = false;
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == 0) {
            // Never valid in JSON text, and nlohmann's lexer would take it for the end of input
            // and ignore whatever follows.
            scan.rejection = reject("malformed_json", "",
                                    "payload contains a NUL byte at offset " + std::to_string(i));
            return scan;
        }
        if (c >= 0x80) {
            const std::size_t n = utf8_sequence_length(s, i);
            if (n == 0) {
                char hex[8];
                std::snprintf(hex, sizeof hex, "0x%02X", c);
                scan.rejection = reject("invalid_utf8", "",
                                        "payload is not valid UTF-8 (byte " + std::string(hex) +
                                            " at offset " + std::to_string(i) + ")");
                return scan;
            }
            i += n;
            continue;
        }
        if (in_string) {
            if (c == '"') {
                in_string = false;
            } else if (c == '\\' && i + 1 < s.size()) {
                const long unit = escape_unit(s, i);
                if (unit < 0) {  // not \uXXXX: skip the escaped ASCII char; nlohmann judges it
                    i += static_cast<unsigned char>(s[i + 1]) < 0x80 ? 2 : 1;
                    continue;
                }
                if (unit == 0) {
                    scan.has_nul_escape = true;
                }
                if (unit >= 0xD800 && unit <= 0xDFFF) {
                    const long next = escape_unit(s, i + 6);
                    if (unit >= 0xDC00 || next < 0xDC00 || next > 0xDFFF) {
                        scan.rejection = reject(
                            "invalid_utf8", "",
                            "payload contains a lone UTF-16 surrogate escape \\" +
                                std::string(s.substr(i + 1, 5)) + " at offset " +
                                std::to_string(i) + " (not a Unicode character)");
                        return scan;
                    }
                    i += 12;
                    continue;
                }
                i += 6;
                continue;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth) {
                scan.rejection = reject("too_deeply_nested", "",
                                        "payload nests arrays/objects deeper than " +
                                            std::to_string(max_depth) + " levels (at offset " +
                                            std::to_string(i) + ")");
                return scan;
            }
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        }
        ++i;
    }
    return scan;
}

// ---------------------------------------------------------------------------------------------
// Diagnostic re-parse: where did nlohmann fail, and which key is repeated? Only runs for payloads
// that are being rejected anyway.

struct Locator {
    struct Frame {
        bool is_object = false;
        std::string key;
        std::size_t index = 0;
        std::set<std::string> keys;
    };
    std::vector<Frame> frames;
    std::optional<Path> duplicate;

    Path path() const {
        Path p;
        for (const auto& f : frames) {
            p.push_back(f.is_object ? PathSegment{f.key, 0, false} : PathSegment{{}, f.index, true});
        }
        return p;
    }

    void element_done() {
        if (!frames.empty() && !frames.back().is_object) {
            ++frames.back().index;
        }
    }

    bool on_event(json::parse_event_t event, const json& parsed) {
        switch (event) {
            case json::parse_event_t::object_start:
                frames.push_back(Frame{true, {}, 0, {}});
                break;
            case json::parse_event_t::array_start:
                frames.push_back(Frame{false, {}, 0, {}});
                break;
            case json::parse_event_t::key: {
                auto& top = frames.back();
                top.key = parsed.get<std::string>();
                if (!top.keys.insert(top.key).second && !duplicate) {
                    duplicate = path();
                }
                break;
            }
            case json::parse_event_t::object_end:
            case json::parse_event_t::array_end:
                frames.pop_back();
                element_done();
                break;
            case json::parse_event_t::value:
                element_done();
                break;
        }
        return true;
    }
};

// Path of a string or key containing U+0000, if any (iterative, so no recursion on depth).
std::optional<Path> find_nul(const json& root) {
    struct Item {
        const json* node;
        Path path;
    };
    std::vector<Item> todo{{&root, {}}};
    while (!todo.empty()) {
        Item item = std::move(todo.back());
        todo.pop_back();
        const json& node = *item.node;
        if (node.is_string()) {
            if (node.get_ref<const std::string&>().find('\0') != std::string::npos) {
                return item.path;
            }
        } else if (node.is_object()) {
            for (auto it = node.begin(); it != node.end(); ++it) {
                Path p = item.path;
                p.push_back(PathSegment{it.key(), 0, false});
                if (it.key().find('\0') != std::string::npos) {
                    return p;
                }
                todo.push_back({&it.value(), std::move(p)});
            }
        } else if (node.is_array()) {
            for (std::size_t i = 0; i < node.size(); ++i) {
                Path p = item.path;
                p.push_back(PathSegment{{}, i, true});
                todo.push_back({&node[i], std::move(p)});
            }
        }
    }
    return std::nullopt;
}

// nlohmann's parse_error::what() is "[json.exception.parse_error.101] parse error at line 1,
// column 4: syntax error while parsing value - ...": keep the part after the position.
std::string parse_error_detail(const json::parse_error& e) {
    std::string what = e.what();
    const auto colon = what.find(": ");
    if (colon != std::string::npos) {
        what.erase(0, colon + 2);
    }
    bool truncated = false;
    std::string out(utf8_prefix(what, 160, &truncated));
    return truncated ? out + "..." : out;
}

Parsed<json> parse_json_impl(std::string_view payload, const ParseLimits& limits) {
    if (payload.size() > limits.max_payload_bytes) {
        return reject("payload_too_large", "",
                      "payload is " + std::to_string(payload.size()) + " bytes; the limit is " +
                          std::to_string(limits.max_payload_bytes) + " bytes");
    }
    if (payload.empty()) {
        return reject("malformed_json", "", "payload is empty");
    }
    const Scan scan = scan_bytes(payload, limits.max_depth);
    if (scan.rejection) {
        return *scan.rejection;
    }

    // Fast parse; duplicate keys show up as an object smaller than the number of keys read.
    std::vector<std::size_t> key_counts;
    bool has_duplicate = false;
    json doc;
    try {
        doc = json::parse(
            payload.begin(), payload.end(),
            [&](int, json::parse_event_t event, json& parsed) {
                switch (event) {
                    case json::parse_event_t::object_start:
                        key_counts.push_back(0);
                        break;
                    case json::parse_event_t::key:
                        ++key_counts.back();
                        break;
                    case json::parse_event_t::object_end:
                        has_duplicate |= key_counts.back() != parsed.size();
                        key_counts.pop_back();
                        break;
                    default:
                        break;
                }
                return true;
            });
    } catch (const json::parse_error& e) {
        return reject("malformed_json", "",
                      "payload is not valid JSON at byte " + std::to_string(e.byte) + ": " +
                          parse_error_detail(e));
    } catch (const json::out_of_range&) {
        // Only number overflow (out_of_range.406) is thrown while parsing. Find where.
        Locator locator;
        try {
            const json partial = json::parse(payload.begin(), payload.end(),
                                             [&](int, json::parse_event_t ev, json& parsed) {
                                                 return locator.on_event(ev, parsed);
                                             });
        } catch (const json::exception&) {
        }
        const std::string field = field_of(locator.path());
        return reject("invalid_value", field,
                      (field.empty() ? std::string("payload") : field) +
                          ": number is out of range (too large for a double)");
    }

    if (has_duplicate) {
        Locator locator;
        const json again = json::parse(payload.begin(), payload.end(),
                                       [&](int, json::parse_event_t ev, json& parsed) {
                                           return locator.on_event(ev, parsed);
                                       });
        const std::string field = locator.duplicate ? field_of(*locator.duplicate) : "";
        return reject("malformed_json", field,
                      (field.empty() ? std::string("payload") : field) +
                          ": key appears more than once in the same object");
    }
    if (!doc.is_object()) {
        std::string got = doc.is_array() ? "an array" : show(doc);
        return reject("not_an_object", "", "payload must be a JSON object (got " + got + ")");
    }
    if (scan.has_nul_escape) {
        if (auto where = find_nul(doc)) {
            const std::string field = field_of(*where);
            return reject("invalid_value", field,
                          field + ": must not contain a NUL character (\\u0000)");
        }
    }
    return doc;
}

// ---------------------------------------------------------------------------------------------
// Schemas

struct CompiledSchema {
    json document;  // the schema itself: wording of messages (enum values, bounds, x-expected)
    valijson::Schema schema;

    explicit CompiledSchema(std::string_view text) : document(json::parse(text)) {
        valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
        valijson::adapters::NlohmannJsonAdapter adapter(document);
        parser.populateSchema(adapter, schema);
    }
};

const CompiledSchema& job_schema() {
    static const CompiledSchema schema(schemas::job_schema);
    return schema;
}

const CompiledSchema& command_schema() {
    static const CompiledSchema schema(schemas::command_schema);
    return schema;
}

// Follows a local "$ref": "#/definitions/..." (the only kind our schemas use).
const json* deref(const json& root, const json* node) {
    for (int hops = 0; node && node->is_object() && hops < 8; ++hops) {
        const auto ref = node->find("$ref");
        if (ref == node->end() || !ref->is_string()) {
            return node;
        }
        const std::string& target = ref->get_ref<const std::string&>();
        if (target.rfind("#", 0) != 0) {
            return nullptr;
        }
        try {
            node = &root.at(json::json_pointer(target.substr(1)));
        } catch (const json::exception&) {
            return nullptr;
        }
    }
    return node;
}

// ---------------------------------------------------------------------------------------------
// valijson errors -> one Rejection

enum class Kind { type, required, enum_, const_, length, range, items, pattern, other, composite };

Kind kind_of(const std::string& d) {
    const auto starts = [&](std::string_view p) { return d.rfind(p, 0) == 0; };
    if (starts("Value type not permitted")) return Kind::type;
    if (starts("Missing required property '")) return Kind::required;
    if (starts("Failed to match against any enum values")) return Kind::enum_;
    if (starts("Failed to match expected value set by 'const'")) return Kind::const_;
    if (starts("String should be no")) return Kind::length;
    if (starts("Expected number")) return Kind::range;
    if (starts("Array should contain no")) return Kind::items;
    if (starts("Failed to match regex")) return Kind::pattern;
    if (starts("Failed to validate") || starts("Cannot validate item")) return Kind::composite;
    return Kind::other;
}

int rank_of(Kind k) {
    switch (k) {
        case Kind::type: return 0;
        case Kind::required: return 1;
        case Kind::enum_: return 2;
        case Kind::const_: return 2;
        case Kind::length: return 3;
        case Kind::range: return 4;
        case Kind::items: return 5;
        case Kind::pattern: return 6;
        case Kind::other: return 7;
        case Kind::composite: return 8;
    }
    return 8;
}

// Where a valijson context ("<root>", "[print]", "[artwork]", "[0]") points: instance, schema, path.
struct Located {
    const json* instance = nullptr;
    const json* schema = nullptr;
    Path path;
};

Located locate(const std::vector<std::string>& context, const json& doc, const json& schema_doc) {
    Located at{&doc, deref(schema_doc, &schema_doc), {}};
    for (std::size_t i = 1; i < context.size(); ++i) {
        const std::string& raw = context[i];
        const std::string seg =
            raw.size() >= 2 && raw.front() == '[' && raw.back() == ']' ? raw.substr(1, raw.size() - 2)
                                                                       : raw;
        const json* next_schema = nullptr;
        if (at.instance && at.instance->is_array()) {
            std::size_t index = 0;
            try {
                index = std::stoul(seg);
            } catch (const std::exception&) {
                index = at.instance->size();
            }
            at.path.push_back(PathSegment{{}, index, true});
            at.instance = index < at.instance->size() ? &(*at.instance)[index] : nullptr;
            if (at.schema && at.schema->is_object()) {
                const auto items = at.schema->find("items");
                if (items != at.schema->end() && items->is_object()) next_schema = &*items;
            }
        } else {
            at.path.push_back(PathSegment{seg, 0, false});
            if (at.instance && at.instance->is_object()) {
                const auto it = at.instance->find(seg);
                at.instance = it != at.instance->end() ? &*it : nullptr;
            } else {
                at.instance = nullptr;
            }
            if (at.schema && at.schema->is_object()) {
                const auto props = at.schema->find("properties");
                if (props != at.schema->end() && props->contains(seg)) {
                    next_schema = &(*props)[seg];
                } else {
                    const auto extra = at.schema->find("additionalProperties");
                    if (extra != at.schema->end() && extra->is_object()) next_schema = &*extra;
                }
            }
        }
        at.schema = deref(schema_doc, next_schema);
    }
    return at;
}

const json* keyword(const json* schema, const char* name) {
    if (!schema || !schema->is_object()) return nullptr;
    const auto it = schema->find(name);
    return it != schema->end() ? &*it : nullptr;
}

std::string range_phrase(const json* schema) {
    const json* min = keyword(schema, "minimum");
    const json* xmin = keyword(schema, "exclusiveMinimum");
    const json* max = keyword(schema, "maximum");
    const json* xmax = keyword(schema, "exclusiveMaximum");
    if (min && max && !xmin && !xmax) {
        return "between " + dump(*min) + " and " + dump(*max);
    }
    std::vector<std::string> parts;
    if (xmin) parts.push_back("greater than " + dump(*xmin));
    else if (min) parts.push_back("at least " + dump(*min));
    if (xmax) parts.push_back("less than " + dump(*xmax));
    else if (max) parts.push_back("at most " + dump(*max));
    if (parts.empty()) return "within the allowed range";
    return parts.size() == 1 ? parts[0] : parts[0] + " and " + parts[1];
}

std::string count_phrase(const json* min, const json* max, const char* unit) {
    const std::string u = unit;
    if (min && max && *min == *max) return "exactly " + dump(*min) + " " + u;
    if (min && max) return "between " + dump(*min) + " and " + dump(*max) + " " + u;
    if (min) return "at least " + dump(*min) + " " + u;
    if (max) return "at most " + dump(*max) + " " + u;
    return "a permitted number of " + u;
}

Rejection describe(Kind kind, const valijson::ValidationResults::Error& error,
                   const std::vector<const valijson::ValidationResults::Error*>& alternatives,
                   const json& doc, const json& schema_doc) {
    const Located at = locate(error.context, doc, schema_doc);
    const std::string field = field_of(at.path);
    const std::string got = at.instance ? " (got " + show(*at.instance) + ")" : "";
    const json* s = at.schema;

    switch (kind) {
        case Kind::required: {
            const auto& d = error.description;
            const auto open = d.find('\'');
            const auto close = d.rfind('\'');
            const std::string name =
                open != std::string::npos && close > open ? d.substr(open + 1, close - open - 1) : "";
            const std::string missing = join_field(field, name);
            if (alternatives.size() > 1) {
                std::string names;
                for (std::size_t i = 0; i < alternatives.size(); ++i) {
                    const auto& ad = alternatives[i]->description;
                    const auto o = ad.find('\'');
                    const auto c = ad.rfind('\'');
                    names += i == 0 ? "" : (i + 1 == alternatives.size() ? " or " : ", ");
                    names += join_field(field, ad.substr(o + 1, c - o - 1));
                }
                return reject("missing_field", missing,
                              names + ": one of these is required; none is present");
            }
            return reject("missing_field", missing, missing + ": required field is missing");
        }
        case Kind::type: {
            std::string expected = "of another type";
            if (const json* t = keyword(s, "type")) {
                if (t->is_string()) {
                    expected = type_phrase(t->get<std::string>());
                } else if (t->is_array()) {
                    expected.clear();
                    for (const auto& one : *t) {
                        expected += (expected.empty() ? "" : " or ") + type_phrase(bare(one));
                    }
                }
            }
            return reject("wrong_type", field, field + ": must be " + expected + got);
        }
        case Kind::enum_: {
            std::string values;
            if (const json* e = keyword(s, "enum"); e && e->is_array()) {
                for (const auto& v : *e) values += (values.empty() ? "" : ", ") + bare(v);
            }
            return reject("invalid_value", field, field + ": must be one of " + values + got);
        }
        case Kind::const_: {
            const json* c = keyword(s, "const");
            return reject("invalid_value", field,
                          field + ": must be " + (c ? bare(*c) : "the fixed value") + got);
        }
        case Kind::length: {
            const json* min = keyword(s, "minLength");
            const json* max = keyword(s, "maxLength");
            std::size_t length = 0;
            if (at.instance && at.instance->is_string()) {
                length = utf8_length(at.instance->get_ref<const std::string&>());
            }
            if (length == 0 && min) {
                return reject("invalid_value", field, field + ": must not be empty");
            }
            return reject("invalid_value", field,
                          field + ": must be " + count_phrase(min, max, "characters") + " long (got " +
                              std::to_string(length) + " characters)");
        }
        case Kind::range:
            return reject("invalid_value", field, field + ": must be " + range_phrase(s) + got);
        case Kind::items: {
            const std::size_t n = at.instance ? at.instance->size() : 0;
            return reject("invalid_value", field,
                          field + ": must have " +
                              count_phrase(keyword(s, "minItems"), keyword(s, "maxItems"), "items") +
                              " (got " + std::to_string(n) + ")");
        }
        case Kind::pattern: {
            std::string expected;
            if (const json* x = keyword(s, "x-expected"); x && x->is_string()) {
                expected = x->get<std::string>();
            } else if (const json* p = keyword(s, "pattern"); p && p->is_string()) {
                expected = "text matching " + p->get<std::string>();
            } else {
                expected = "text of the expected form";
            }
            return reject("invalid_value", field, field + ": must be " + expected + got);
        }
        case Kind::other:
        case Kind::composite:
            break;
    }
    return reject("schema_violation", field,
                  (field.empty() ? std::string("payload") : field) + ": " + error.description);
}

Rejection to_rejection(const valijson::ValidationResults& results, const json& doc,
                       const json& schema_doc) {
    using Error = valijson::ValidationResults::Error;
    std::vector<const Error*> errors;
    for (const auto& e : results) errors.push_back(&e);

    // The first leaf error fixes the node; among errors on that node, the most basic one wins
    // (a string of 500 characters fails maxLength and pattern: report the length).
    const Error* chosen = nullptr;
    Kind chosen_kind = Kind::composite;
    for (const Error* e : errors) {
        const Kind k = kind_of(e->description);
        if (k == Kind::composite) continue;
        if (!chosen) {
            chosen = e;
            chosen_kind = k;
        } else if (e->context == chosen->context && rank_of(k) < rank_of(chosen_kind)) {
            chosen = e;
            chosen_kind = k;
        }
    }
    if (!chosen) {
        if (errors.empty()) {
            return reject("schema_violation", "", "payload does not match the schema");
        }
        chosen = errors.front();
        chosen_kind = Kind::other;
    }

    // A missing property that is one branch of an anyOf ("garment_color or garment_srgb"): the
    // anyOf error at the same node directly follows its branches' errors, which valijson 1.0
    // reports as "Missing required property 'x'." + "Failed to validate against child schema #n.".
    std::vector<const Error*> alternatives;
    if (chosen_kind == Kind::required) {
        for (std::size_t i = 0; i < errors.size(); ++i) {
            const Error* e = errors[i];
            if (e->context != chosen->context ||
                e->description.rfind("Failed to validate against any schemas allowed by anyOf", 0) != 0) {
                continue;
            }
            std::vector<const Error*> branch;
            for (std::size_t j = i; j-- > 0;) {
                const Error* b = errors[j];
                if (b->context != chosen->context) break;
                if (kind_of(b->description) == Kind::required) {
                    branch.insert(branch.begin(), b);
                } else if (b->description.rfind("Failed to validate against child schema", 0) != 0) {
                    break;
                }
            }
            if (std::find(branch.begin(), branch.end(), chosen) != branch.end()) {
                alternatives = std::move(branch);
                break;
            }
        }
    }
    return describe(chosen_kind, *chosen, alternatives, doc, schema_doc);
}

std::optional<Rejection> validate(const json& doc, const CompiledSchema& compiled) {
    thread_local valijson::Validator validator(valijson::Validator::kStrongTypes);
    const valijson::adapters::NlohmannJsonAdapter target(doc);
    // Fast path: stops at the first failure and collects nothing.
    if (validator.validate(compiled.schema, target, nullptr)) {
        return std::nullopt;
    }
    valijson::ValidationResults results;
    validator.validate(compiled.schema, target, &results);
    return to_rejection(results, doc, compiled.document);
}

void set_default(json& object, const char* key, json value) {
    if (!object.contains(key)) {
        object[key] = std::move(value);
    }
}

Rejection internal_error(const char* what, const std::exception& e) {
    return reject("schema_violation", "",
                  std::string("internal error while validating ") + what + ": " + e.what());
}

}  // namespace

// ---------------------------------------------------------------------------------------------

Parsed<nlohmann::json> parse_json(std::string_view payload, const ParseLimits& limits) {
    try {
        return parse_json_impl(payload, limits);
    } catch (const std::exception& e) {
        return reject("malformed_json", "", std::string("payload could not be parsed: ") + e.what());
    }
}

Parsed<JobOrder> parse_job(std::string_view payload, const ParseLimits& limits) {
    try {
        auto parsed = parse_json_impl(payload, limits);
        if (auto* r = std::get_if<Rejection>(&parsed)) {
            return std::move(*r);
        }
        json doc = std::move(std::get<json>(parsed));
        if (auto rejection = validate(doc, job_schema())) {
            return std::move(*rejection);
        }
        // Documented defaults (docs/mqtt-api.md); the schema guarantees the parents are objects.
        set_default(doc, "priority", "standard");
        set_default(doc, "order_items", 1);
        set_default(doc, "qa", json::object());
        set_default(doc["qa"], "required", true);
        json& placement = doc["print"]["placement"];
        set_default(placement, "offset_x_mm", 0);
        set_default(placement, "offset_y_mm", 0);

        JobOrder order;
        order.job_id = doc["job_id"].get<std::string>();
        order.order_id = doc["order_id"].get<std::string>();
        order.priority = doc["priority"].get<std::string>();
        order.json = std::move(doc);
        return order;
    } catch (const std::exception& e) {
        return internal_error("a job order", e);
    }
}

Parsed<Command> parse_command(std::string_view payload, const ParseLimits& limits) {
    try {
        auto parsed = parse_json_impl(payload, limits);
        if (auto* r = std::get_if<Rejection>(&parsed)) {
            return std::move(*r);
        }
        json doc = std::move(std::get<json>(parsed));
        if (auto rejection = validate(doc, command_schema())) {
            // Members required only by some types: say which type wants them.
            const auto type = doc.find("type");
            if (rejection->reason == "missing_field" && rejection->field != "command_id" &&
                rejection->field != "type" && type != doc.end() && type->is_string()) {
                rejection->message = rejection->field + ": required for a " +
                                     type->get<std::string>() + " command but missing";
            }
            return std::move(*rejection);
        }
        Command command;
        command.command_id = doc["command_id"].get<std::string>();
        command.type = doc["type"].get<std::string>();
        command.json = std::move(doc);
        return command;
    } catch (const std::exception& e) {
        return internal_error("a command", e);
    }
}

std::string canonical_json(const nlohmann::json& order) {
    // nlohmann::json objects are std::map-backed: members come out sorted by key (bytewise).
    if (order.is_object() && order.contains("signature")) {
        nlohmann::json copy = order;
        copy.erase("signature");
        return dump(copy);
    }
    return dump(order);
}

}  // namespace pressline::agent
