// ZPL status replies (~HQES, ~HS), parsed strictly: a reply of the wrong shape is a ParseError
// naming the string, line or field that is wrong, never a guessed status.
#include "pressline/devices/label/status.hpp"

#include <algorithm>
#include <cstdint>
#include <optional>

#include <fmt/format.h>

namespace pressline::devices::label {

namespace {

constexpr char STX = '\x02';
constexpr char ETX = '\x03';

bool is_blank(char c) { return c == '\r' || c == '\n' || c == ' ' || c == '\t'; }

bool all_blank(std::string_view s) { return std::all_of(s.begin(), s.end(), is_blank); }

// A short, printable rendering of untrusted bytes for messages.
std::string show(std::string_view s, std::size_t max = 24) {
    std::string out;
    for (std::size_t i = 0; i < s.size() && i < max; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == STX) out += "<STX>";
        else if (c == ETX) out += "<ETX>";
        else if (c == '\r') out += "\\r";
        else if (c == '\n') out += "\\n";
        else if (c < 0x20 || c >= 0x7f) out += fmt::format("\\x{:02x}", c);
        else out += static_cast<char>(c);
    }
    if (s.size() > max) out += "...";
    return out;
}

ParseError fail(std::string message) { return ParseError{std::move(message)}; }

// ---- ~HQES ------------------------------------------------------------------------------

// ERRORS group 1 bits (Zebra ZPL II Programming Guide, ~HQ, "Error Flags").
constexpr std::uint32_t kMediaOut = 0x00000001;
constexpr std::uint32_t kRibbonOut = 0x00000002;
constexpr std::uint32_t kHeadOpen = 0x00000004;
constexpr std::uint32_t kCutterFault = 0x00000008;
constexpr std::uint32_t kHeadOverTemp = 0x00000010;
constexpr std::uint32_t kMotorOverTemp = 0x00000020;
constexpr std::uint32_t kBadHeadElement = 0x00000040;
constexpr std::uint32_t kHeadDetection = 0x00000080;
constexpr std::uint32_t kHeadThermistorOpen = 0x00000200;
// "Paused" (nibble 5, value 1) in recent editions of the guide; older firmware never sets it,
// which is why ~HQES alone cannot be trusted to show a pause (the device also asks ~HS).
constexpr std::uint32_t kPaused = 0x00010000;
constexpr std::uint32_t kKnownErrors = kMediaOut | kRibbonOut | kHeadOpen | kCutterFault | kHeadOverTemp |
                                       kMotorOverTemp | kBadHeadElement | kHeadDetection |
                                       kHeadThermistorOpen | kPaused;
// WARNINGS group 1 bits.
constexpr std::uint32_t kNeedCalibration = 0x00000001;
constexpr std::uint32_t kCleanHead = 0x00000002;
constexpr std::uint32_t kReplaceHead = 0x00000004;
constexpr std::uint32_t kPaperNearEnd = 0x00000008;
constexpr std::uint32_t kKnownWarnings = kNeedCalibration | kCleanHead | kReplaceHead | kPaperNearEnd;

struct Flags {
    bool flag = false;
    std::uint32_t group2 = 0;
    std::uint32_t group1 = 0;
};

std::vector<std::string_view> split_ws(std::string_view s) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && is_blank(s[i])) ++i;
        const std::size_t b = i;
        while (i < s.size() && !is_blank(s[i])) ++i;
        if (i > b) out.push_back(s.substr(b, i - b));
    }
    return out;
}

bool parse_hex8(std::string_view s, std::uint32_t& v) {
    if (s.size() != 8) return false;
    v = 0;
    for (char c : s) {
        int d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else return false;
        v = v << 4 | static_cast<std::uint32_t>(d);
    }
    return true;
}

// "1 00000000 00000005" after "ERRORS:" / "WARNINGS:".
std::variant<Flags, ParseError> parse_flags(std::string_view what, std::string_view rest) {
    const auto t = split_ws(rest);
    if (t.size() != 3)
        return fail(fmt::format("~HQES {}: expected a flag and two 8-digit hex groups, got \"{}\"", what,
                                show(rest, 60)));
    Flags f;
    if (t[0] != "0" && t[0] != "1")
        return fail(fmt::format("~HQES {} flag: expected 0 or 1, got \"{}\"", what, show(t[0])));
    f.flag = t[0] == "1";
    if (!parse_hex8(t[1], f.group2))
        return fail(fmt::format("~HQES {} group 2: expected 8 hex digits, got \"{}\"", what, show(t[1])));
    if (!parse_hex8(t[2], f.group1))
        return fail(fmt::format("~HQES {} group 1: expected 8 hex digits, got \"{}\"", what, show(t[2])));
    if (f.flag != (f.group1 != 0 || f.group2 != 0))
        return fail(fmt::format("~HQES {}: flag {} contradicts the groups {} {}", what, t[0], t[1], t[2]));
    return f;
}

// The body between <STX> and <ETX>, or an error. `name` is "~HQES" or "~HS string N".
struct Frame {
    std::string_view body;
    std::size_t end = 0;  // index after the <ETX>
};

std::variant<Frame, ParseError> frame_at(std::string_view reply, std::size_t start, std::string_view name) {
    // reply[start] == STX
    const std::size_t etx = reply.find(ETX, start + 1);
    const std::size_t stx = reply.find(STX, start + 1);
    if (etx == std::string_view::npos) {
        if (stx != std::string_view::npos)
            return fail(fmt::format("{}: <STX> before its <ETX>", name));
        return fail(fmt::format("{}: no <ETX> (reply truncated after {} bytes)", name, reply.size() - start));
    }
    if (stx != std::string_view::npos && stx < etx) return fail(fmt::format("{}: <STX> before its <ETX>", name));
    return Frame{reply.substr(start + 1, etx - start - 1), etx + 1};
}

// ---- ~HS --------------------------------------------------------------------------------

std::vector<std::string_view> split_commas(std::string_view s) {
    std::vector<std::string_view> out;
    std::size_t b = 0;
    for (;;) {
        const std::size_t c = s.find(',', b);
        if (c == std::string_view::npos) {
            out.push_back(s.substr(b));
            return out;
        }
        out.push_back(s.substr(b, c - b));
        b = c + 1;
    }
}

bool all_digits(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::vector<std::string> ZplStatus::reasons() const {
    std::vector<std::string> r;
    if (paper_out) r.emplace_back("media-empty");
    if (paused) r.emplace_back("paused");
    if (head_open) r.emplace_back("head-open");
    if (ribbon_out) r.emplace_back("ribbon-out");
    if (buffer_full) r.emplace_back("buffer-full");
    if (cutter_fault) r.emplace_back("cutter-fault");
    if (head_over_temp) r.emplace_back("head-over-temp");
    if (head_under_temp) r.emplace_back("head-under-temp");
    if (motor_over_temp) r.emplace_back("motor-over-temp");
    if (head_fault) r.emplace_back("head-fault");
    if (corrupt_ram) r.emplace_back("memory-corrupt");
    if (other_errors) r.emplace_back("other");
    if (paper_near_end) r.emplace_back("media-low-warning");
    if (needs_calibration) r.emplace_back("calibration-needed-warning");
    if (clean_head) r.emplace_back("clean-head-warning");
    if (replace_head) r.emplace_back("replace-head-warning");
    if (other_warnings) r.emplace_back("other-warning");
    return r;
}

bool ZplStatus::has_error() const {
    return paper_out || head_open || ribbon_out || cutter_fault || head_over_temp || head_under_temp ||
           motor_over_temp || head_fault || corrupt_ram || other_errors != 0;
}

bool ZplStatus::ready() const { return !has_error() && !paused; }

StatusResult parse_hqes(std::string_view reply) {
    const std::size_t stx = reply.find(STX);
    if (stx == std::string_view::npos)
        return fail(reply.empty() ? "~HQES: empty reply"
                                  : fmt::format("~HQES: no <STX> in the reply (\"{}\")", show(reply)));
    auto fr = frame_at(reply, stx, "~HQES");
    if (auto* e = std::get_if<ParseError>(&fr)) return *e;
    const Frame frame = std::get<Frame>(fr);

    // Lines, whatever the line ends (CR LF, LF, CR); blank lines and indentation ignored.
    std::vector<std::string_view> lines;
    {
        const std::string_view b = frame.body;
        std::size_t i = 0;
        while (i < b.size()) {
            std::size_t e = i;
            while (e < b.size() && b[e] != '\r' && b[e] != '\n') ++e;
            std::string_view line = b.substr(i, e - i);
            while (!line.empty() && is_blank(line.front())) line.remove_prefix(1);
            while (!line.empty() && is_blank(line.back())) line.remove_suffix(1);
            if (!line.empty()) lines.push_back(line);
            i = e + 1;
        }
    }
    if (lines.empty()) return fail("~HQES: empty status (nothing between <STX> and <ETX>)");
    if (lines[0] != "PRINTER STATUS")
        return fail(fmt::format("~HQES: expected the title \"PRINTER STATUS\", got \"{}\"", show(lines[0], 40)));
    std::optional<Flags> errors, warnings;
    for (std::size_t i = 1; i < lines.size(); ++i) {
        const std::string_view line = lines[i];
        const std::size_t colon = line.find(':');
        const std::string_view label = colon == std::string_view::npos ? std::string_view{} : line.substr(0, colon);
        std::optional<Flags>* slot = label == "ERRORS" ? &errors : label == "WARNINGS" ? &warnings : nullptr;
        if (!slot) return fail(fmt::format("~HQES: unexpected line \"{}\"", show(line, 40)));
        if (slot->has_value()) return fail(fmt::format("~HQES: {} line twice", label));
        auto f = parse_flags(label, line.substr(colon + 1));
        if (auto* e = std::get_if<ParseError>(&f)) return *e;
        *slot = std::get<Flags>(f);
    }
    if (!errors) return fail("~HQES: no ERRORS line");
    if (!warnings) return fail("~HQES: no WARNINGS line");
    if (!all_blank(reply.substr(frame.end)))
        return fail(fmt::format("~HQES: unexpected bytes after <ETX> (\"{}\")", show(reply.substr(frame.end))));

    ZplStatus s;
    const std::uint32_t e = errors->group1;
    s.paper_out = e & kMediaOut;
    s.ribbon_out = e & kRibbonOut;
    s.head_open = e & kHeadOpen;
    s.cutter_fault = e & kCutterFault;
    s.head_over_temp = e & kHeadOverTemp;
    s.motor_over_temp = e & kMotorOverTemp;
    s.head_fault = e & (kBadHeadElement | kHeadDetection | kHeadThermistorOpen);
    s.paused = e & kPaused;
    s.other_errors = static_cast<unsigned long long>(errors->group2) << 32 | (e & ~kKnownErrors);
    const std::uint32_t w = warnings->group1;
    s.needs_calibration = w & kNeedCalibration;
    s.clean_head = w & kCleanHead;
    s.replace_head = w & kReplaceHead;
    s.paper_near_end = w & kPaperNearEnd;
    s.other_warnings = static_cast<unsigned long long>(warnings->group2) << 32 | (w & ~kKnownWarnings);
    return s;
}

StatusResult parse_hs(std::string_view reply) {
    std::size_t pos = reply.find(STX);
    if (pos == std::string_view::npos)
        return fail(reply.empty() ? "~HS: empty reply"
                                  : fmt::format("~HS: no <STX> in the reply (\"{}\")", show(reply)));
    constexpr std::size_t kFields[3] = {12, 11, 2};
    std::vector<std::string_view> f[3];
    for (int n = 0; n < 3; ++n) {
        const std::string name = fmt::format("~HS string {}", n + 1);
        if (n > 0) {
            // Between strings: CR LF (or any mix of CR, LF, spaces) only.
            const std::size_t next = reply.find(STX, pos);
            const std::string_view gap = reply.substr(pos, next == std::string_view::npos ? reply.size() - pos : next - pos);
            if (!all_blank(gap))
                return fail(fmt::format("~HS: unexpected bytes after string {} (\"{}\")", n, show(gap)));
            if (next == std::string_view::npos)
                return fail(fmt::format("{}: missing (reply truncated after string {})", name, n));
            pos = next;
        }
        auto fr = frame_at(reply, pos, name);
        if (auto* e = std::get_if<ParseError>(&fr)) return *e;
        const Frame frame = std::get<Frame>(fr);
        f[n] = split_commas(frame.body);
        if (f[n].size() != kFields[n])
            return fail(fmt::format("{}: expected {} fields, got {}", name, kFields[n], f[n].size()));
        pos = frame.end;
    }
    if (!all_blank(reply.substr(pos)))
        return fail(fmt::format("~HS: unexpected bytes after string 3 (\"{}\")", show(reply.substr(pos))));

    ZplStatus s;
    std::optional<ParseError> err;
    // Field numbers are 1-based, as in Zebra's manual.
    auto flag = [&](int str, std::size_t field, const char* what, bool& out) {
        if (err) return;
        const std::string_view v = f[str - 1][field - 1];
        if (v == "0" || v == "1") out = v == "1";
        else err = fail(fmt::format("~HS string {} field {} ({}): expected 0 or 1, got \"{}\"", str, field, what, show(v)));
    };
    auto number = [&](int str, std::size_t field, const char* what, int& out) {
        if (err) return;
        const std::string_view v = f[str - 1][field - 1];
        if (!all_digits(v) || v.size() > 8) {
            err = fail(fmt::format("~HS string {} field {} ({}): expected a number, got \"{}\"", str, field, what, show(v)));
            return;
        }
        int x = 0;
        for (char c : v) x = x * 10 + (c - '0');
        out = x;
    };
    flag(1, 2, "paper out", s.paper_out);
    flag(1, 3, "pause", s.paused);
    number(1, 5, "formats in buffer", s.formats_in_buffer);
    flag(1, 6, "buffer full", s.buffer_full);
    flag(1, 10, "corrupt RAM", s.corrupt_ram);
    flag(1, 11, "under temperature", s.head_under_temp);
    flag(1, 12, "over temperature", s.head_over_temp);
    flag(2, 3, "head up", s.head_open);
    flag(2, 4, "ribbon out", s.ribbon_out);
    number(2, 9, "labels remaining", s.labels_remaining);
    if (err) return *err;
    return s;
}

bool hqes_complete(std::string_view received) {
    const std::size_t stx = received.find(STX);
    return stx != std::string_view::npos && received.find(ETX, stx + 1) != std::string_view::npos;
}

bool hs_complete(std::string_view received) {
    const std::size_t stx = received.find(STX);
    if (stx == std::string_view::npos) return false;
    return std::count(received.begin() + static_cast<std::ptrdiff_t>(stx), received.end(), ETX) >= 3;
}

}  // namespace pressline::devices::label
