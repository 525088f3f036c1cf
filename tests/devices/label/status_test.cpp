// ZPL status replies (~HQES, ~HS): what a printer says is read exactly, and a reply of the
// wrong shape is an error naming the wrong part, never a guessed status.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "pressline/devices/label/status.hpp"

namespace {

using namespace pressline::devices::label;

const std::string STX = "\x02";
const std::string ETX = "\x03";

// A ~HQES reply as a Link-OS printer sends it.
std::string hqes(const std::string& errors, const std::string& warnings, const std::string& eol = "\r\n") {
    return STX + eol + "  PRINTER STATUS" + eol + "   ERRORS:         " + errors + eol +
           "   WARNINGS:       " + warnings + eol + ETX + eol;
}
const std::string kHqesOk = hqes("0 00000000 00000000", "0 00000000 00000000");

// A ~HS reply: three strings of 12, 11 and 2 fields.
const std::string kS1 = "030,0,0,1245,000,0,0,0,000,0,0,0";
const std::string kS2 = "001,0,0,0,1,2,6,0,00000000,1,000";
const std::string kS3 = "1234,0";
std::string hs(const std::string& s1 = kS1, const std::string& s2 = kS2, const std::string& s3 = kS3,
               const std::string& eol = "\r\n") {
    return STX + s1 + ETX + eol + STX + s2 + ETX + eol + STX + s3 + ETX + eol;
}

// Field `field` (1-based) of a comma-separated string replaced by `value`.
std::string with_field(const std::string& s, int field, const std::string& value) {
    std::vector<std::string> f;
    std::size_t b = 0;
    for (;;) {
        const auto c = s.find(',', b);
        f.push_back(s.substr(b, c == std::string::npos ? std::string::npos : c - b));
        if (c == std::string::npos) break;
        b = c + 1;
    }
    f.at(static_cast<std::size_t>(field - 1)) = value;
    std::string out;
    for (std::size_t i = 0; i < f.size(); ++i) out += (i ? "," : "") + f[i];
    return out;
}

ZplStatus ok(const StatusResult& r) {
    if (const auto* e = std::get_if<ParseError>(&r)) {
        ADD_FAILURE() << "unexpected parse error: " << e->message;
        return {};
    }
    return std::get<ZplStatus>(r);
}

std::string error_of(const StatusResult& r) {
    if (const auto* e = std::get_if<ParseError>(&r)) return e->message;
    ADD_FAILURE() << "expected a parse error, got a status with reasons "
                  << ::testing::PrintToString(std::get<ZplStatus>(r).reasons());
    return {};
}

using Reasons = std::vector<std::string>;

// ---- ~HQES ------------------------------------------------------------------------------

TEST(Hqes, NoErrorsIsReady) {
    const ZplStatus s = ok(parse_hqes(kHqesOk));
    EXPECT_TRUE(s.ready());
    EXPECT_FALSE(s.has_error());
    EXPECT_EQ(s.reasons(), Reasons{});
    EXPECT_FALSE(s.paused) << "~HQES does not report pause";
    EXPECT_EQ(s.formats_in_buffer, -1) << "unknown from ~HQES";
    EXPECT_EQ(s.labels_remaining, -1);
}

TEST(Hqes, ManualExampleMediaOutAndHeadOpen) {
    const ZplStatus s = ok(parse_hqes(hqes("1 00000000 00000005", "0 00000000 00000000")));
    EXPECT_TRUE(s.paper_out);
    EXPECT_TRUE(s.head_open);
    EXPECT_FALSE(s.ribbon_out);
    EXPECT_FALSE(s.ready());
    EXPECT_EQ(s.reasons(), (Reasons{"media-empty", "head-open"}));
}

struct Bit {
    const char* group1;
    const char* reason;
};

TEST(Hqes, EachErrorBitHasItsReason) {
    const Bit bits[] = {
        {"00000001", "media-empty"},    {"00000002", "ribbon-out"},      {"00000004", "head-open"},
        {"00000008", "cutter-fault"},   {"00000010", "head-over-temp"},  {"00000020", "motor-over-temp"},
        {"00000040", "head-fault"},     {"00000080", "head-fault"},      {"00000200", "head-fault"},
        {"00000100", "other"},          {"00001000", "other"},           {"80000000", "other"},
    };
    for (const auto& b : bits) {
        SCOPED_TRACE(b.group1);
        const ZplStatus s = ok(parse_hqes(hqes(std::string("1 00000000 ") + b.group1, "0 00000000 00000000")));
        EXPECT_EQ(s.reasons(), Reasons{b.reason});
        EXPECT_TRUE(s.has_error());
        EXPECT_FALSE(s.ready());
    }
}

TEST(Hqes, PausedBitIsAPauseNotAnError) {
    // Recent firmware sets 00010000 ("Paused") with the error flag; it is no fault.
    const ZplStatus s = ok(parse_hqes(hqes("1 00000000 00010000", "0 00000000 00000000")));
    EXPECT_TRUE(s.paused);
    EXPECT_FALSE(s.has_error());
    EXPECT_FALSE(s.ready());
    EXPECT_EQ(s.reasons(), Reasons{"paused"});
    EXPECT_EQ(ok(parse_hqes(hqes("1 00000000 00010001", "0 00000000 00000000"))).reasons(),
              (Reasons{"media-empty", "paused"}));
}

TEST(Hqes, ErrorBitsInGroupTwoAreStillAnError) {
    const ZplStatus s = ok(parse_hqes(hqes("1 00000001 00000000", "0 00000000 00000000")));
    EXPECT_EQ(s.other_errors, 1ull << 32);
    EXPECT_EQ(s.reasons(), Reasons{"other"});
    EXPECT_FALSE(s.ready());
}

TEST(Hqes, AllNamedErrorsAtOnce) {
    const ZplStatus s = ok(parse_hqes(hqes("1 00000000 000002FF", "0 00000000 00000000")));
    EXPECT_EQ(s.reasons(), (Reasons{"media-empty", "head-open", "ribbon-out", "cutter-fault", "head-over-temp",
                                    "motor-over-temp", "head-fault"}));
    EXPECT_EQ(s.other_errors, 0u);
}

TEST(Hqes, WarningsDoNotStopPrinting) {
    const Bit bits[] = {
        {"00000001", "calibration-needed-warning"},
        {"00000002", "clean-head-warning"},
        {"00000004", "replace-head-warning"},
        {"00000008", "media-low-warning"},
        {"00000010", "other-warning"},
    };
    for (const auto& b : bits) {
        SCOPED_TRACE(b.group1);
        const ZplStatus s = ok(parse_hqes(hqes("0 00000000 00000000", std::string("1 00000000 ") + b.group1)));
        EXPECT_EQ(s.reasons(), Reasons{b.reason});
        EXPECT_TRUE(s.ready());
        EXPECT_FALSE(s.has_error());
    }
    const ZplStatus s = ok(parse_hqes(hqes("0 00000000 00000000", "1 00000000 0000000A")));
    EXPECT_TRUE(s.clean_head);
    EXPECT_TRUE(s.paper_near_end);
    EXPECT_FALSE(s.needs_calibration);
    EXPECT_FALSE(s.replace_head);
}

TEST(Hqes, ErrorsAndWarningsTogether) {
    const ZplStatus s = ok(parse_hqes(hqes("1 00000000 00000002", "1 00000000 00000008")));
    EXPECT_EQ(s.reasons(), (Reasons{"ribbon-out", "media-low-warning"}));
    EXPECT_FALSE(s.ready());
}

TEST(Hqes, HexDigitsInEitherCase) {
    EXPECT_EQ(ok(parse_hqes(hqes("1 00000000 0000001a", "0 00000000 00000000"))).reasons(),
              (Reasons{"ribbon-out", "cutter-fault", "head-over-temp"}));
    EXPECT_EQ(ok(parse_hqes(hqes("1 00000000 0000001A", "0 00000000 00000000"))).reasons(),
              (Reasons{"ribbon-out", "cutter-fault", "head-over-temp"}));
}

TEST(Hqes, LineEndVariations) {
    for (const std::string eol : {"\r\n", "\n", "\r", "\n\r", "\r\n\r\n"}) {
        SCOPED_TRACE(::testing::PrintToString(eol));
        const ZplStatus s = ok(parse_hqes(hqes("1 00000000 00000001", "1 00000000 00000008", eol)));
        EXPECT_EQ(s.reasons(), (Reasons{"media-empty", "media-low-warning"}));
    }
    // Nothing after <ETX>, no indentation, tabs.
    const std::string bare = STX + "PRINTER STATUS\nERRORS: 1 00000000 00000004\nWARNINGS:\t0 00000000 00000000\n" + ETX;
    EXPECT_EQ(ok(parse_hqes(bare)).reasons(), Reasons{"head-open"});
}

TEST(Hqes, BytesBeforeTheReplyAreSkipped) {
    // The CR LF of an earlier reply, or a NUL, arriving first.
    EXPECT_TRUE(ok(parse_hqes("\r\n" + kHqesOk)).ready());
    EXPECT_TRUE(ok(parse_hqes(std::string("\0\r\n", 3) + kHqesOk)).ready());
    EXPECT_TRUE(ok(parse_hqes("garbage" + kHqesOk)).ready());
}

struct Bad {
    std::string reply;
    std::string expect;  // substring of the message
};

TEST(Hqes, MalformedRepliesNameTheWrongPart) {
    const std::string W = "0 00000000 00000000";
    const Bad cases[] = {
        {"", "~HQES: empty reply"},
        {"PRINTER STATUS\r\nERRORS: 0 00000000 00000000\r\n", "~HQES: no <STX>"},
        {STX + "\r\n  PRINTER STATUS\r\n   ERRORS:         1 00000000 00000005\r\n", "~HQES: no <ETX>"},
        {kHqesOk.substr(0, kHqesOk.size() - 3), "~HQES: no <ETX>"},
        {STX + ETX, "~HQES: empty status"},
        {STX + "\r\n" + ETX + "\r\n", "~HQES: empty status"},
        {hqes("1 00000000 00000005", W).replace(3, 16, "  PRINTER STATE "), "expected the title"},
        {STX + "\r\nPRINTER STATUS\r\nERRORS: 0 00000000 00000000\r\n" + ETX, "~HQES: no WARNINGS line"},
        {STX + "\r\nPRINTER STATUS\r\nWARNINGS: 0 00000000 00000000\r\n" + ETX, "~HQES: no ERRORS line"},
        {STX + "\r\nPRINTER STATUS\r\nERRORS: 0 00000000 00000000\r\nERRORS: 0 00000000 00000000\r\n" + ETX,
         "ERRORS line twice"},
        {STX + "\r\nPRINTER STATUS\r\nERRORS: 0 00000000 00000000\r\nWARNINGS: 0 00000000 00000000\r\nSTATE: OK\r\n" + ETX,
         "unexpected line \"STATE: OK\""},
        {hqes("2 00000000 00000005", W), "~HQES ERRORS flag: expected 0 or 1, got \"2\""},
        {hqes("x 00000000 00000005", W), "~HQES ERRORS flag: expected 0 or 1"},
        {hqes("1 0000000 00000005", W), "~HQES ERRORS group 2: expected 8 hex digits, got \"0000000\""},
        {hqes("1 00000000 0000000G", W), "~HQES ERRORS group 1: expected 8 hex digits, got \"0000000G\""},
        {hqes("1 00000000 000000005", W), "~HQES ERRORS group 1: expected 8 hex digits"},
        {hqes("1 00000000", W), "~HQES ERRORS: expected a flag and two 8-digit hex groups"},
        {hqes("1 00000000 00000005 00000000", W), "~HQES ERRORS: expected a flag and two 8-digit hex groups"},
        {hqes("", W), "~HQES ERRORS: expected a flag and two 8-digit hex groups"},
        {hqes(W, "1 00000000 0000000Z"), "~HQES WARNINGS group 1"},
        {hqes("0 00000000 00000005", W), "~HQES ERRORS: flag 0 contradicts the groups"},
        {hqes("1 00000000 00000000", W), "~HQES ERRORS: flag 1 contradicts the groups"},
        {hqes(W, "0 00000000 00000008"), "~HQES WARNINGS: flag 0 contradicts"},
        {kHqesOk + "x", "~HQES: unexpected bytes after <ETX>"},
        {kHqesOk + kHqesOk, "~HQES: unexpected bytes after <ETX>"},
        {STX + STX + kHqesOk.substr(1), "~HQES: <STX> before its <ETX>"},
        {hs(), "expected the title \"PRINTER STATUS\""},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(::testing::PrintToString(c.reply));
        const std::string msg = error_of(parse_hqes(c.reply));
        EXPECT_NE(msg.find(c.expect), std::string::npos) << "message: " << msg << "\nexpected: " << c.expect;
    }
}

TEST(Hqes, MessagesShowControlBytesReadably) {
    const std::string msg = error_of(parse_hqes(hqes("1 00000000 0000\x01\x7f""05", "0 00000000 00000000")));
    EXPECT_NE(msg.find("0000\\x01\\x7f05"), std::string::npos) << msg;
}

TEST(Hqes, EveryTruncationIsAnError) {
    // A reply cut anywhere before its <ETX> never yields a status.
    const std::string full = hqes("1 00000000 00000005", "1 00000000 00000002");
    const std::size_t etx = full.find(ETX);
    for (std::size_t n = 0; n < etx; ++n) {
        SCOPED_TRACE(n);
        EXPECT_TRUE(std::holds_alternative<ParseError>(parse_hqes(full.substr(0, n))));
        EXPECT_FALSE(hqes_complete(full.substr(0, n)));
    }
    EXPECT_TRUE(hqes_complete(full.substr(0, etx + 1)));
    EXPECT_EQ(ok(parse_hqes(full.substr(0, etx + 1))).reasons(),
              (Reasons{"media-empty", "head-open", "clean-head-warning"}));
}

// ---- ~HS --------------------------------------------------------------------------------

TEST(Hs, IdlePrinterIsReady) {
    const ZplStatus s = ok(parse_hs(hs()));
    EXPECT_TRUE(s.ready());
    EXPECT_EQ(s.reasons(), Reasons{});
    EXPECT_EQ(s.formats_in_buffer, 0);
    EXPECT_EQ(s.labels_remaining, 0);
}

struct Field {
    int string;
    int field;
    const char* reason;
    bool error;  // stops printing
};

TEST(Hs, EachFlagFieldHasItsReason) {
    const Field fields[] = {
        {1, 2, "media-empty", true},      {1, 3, "paused", false},        {1, 6, "buffer-full", false},
        {1, 10, "memory-corrupt", true},  {1, 11, "head-under-temp", true}, {1, 12, "head-over-temp", true},
        {2, 3, "head-open", true},        {2, 4, "ribbon-out", true},
    };
    for (const auto& f : fields) {
        SCOPED_TRACE(std::string(f.reason));
        const std::string s1 = f.string == 1 ? with_field(kS1, f.field, "1") : kS1;
        const std::string s2 = f.string == 2 ? with_field(kS2, f.field, "1") : kS2;
        const ZplStatus s = ok(parse_hs(hs(s1, s2)));
        EXPECT_EQ(s.reasons(), Reasons{f.reason});
        EXPECT_EQ(s.has_error(), f.error);
    }
}

TEST(Hs, PausedIsNotAnErrorButNotReady) {
    const ZplStatus s = ok(parse_hs(hs(with_field(kS1, 3, "1"))));
    EXPECT_TRUE(s.paused);
    EXPECT_FALSE(s.has_error());
    EXPECT_FALSE(s.ready());
}

TEST(Hs, BufferFullIsReported) {
    const ZplStatus s = ok(parse_hs(hs(with_field(kS1, 6, "1"))));
    EXPECT_TRUE(s.buffer_full);
    EXPECT_TRUE(s.ready()) << "a full buffer does not stop printing";
}

TEST(Hs, FieldsThatAreNotFlagsAreIgnored) {
    // Communication settings, label length, print mode, graphics count: not read.
    std::string s1 = with_field(with_field(kS1, 1, "999"), 4, "0203");
    std::string s2 = with_field(with_field(kS2, 6, "K"), 11, "012");
    EXPECT_TRUE(ok(parse_hs(hs(s1, s2, "0000,1"))).ready());
}

TEST(Hs, CountsAreRead) {
    const ZplStatus s = ok(parse_hs(hs(with_field(kS1, 5, "003"), with_field(kS2, 9, "00000012"))));
    EXPECT_EQ(s.formats_in_buffer, 3);
    EXPECT_EQ(s.labels_remaining, 12);
    EXPECT_TRUE(s.ready());
}

TEST(Hs, ManyFaultsAtOnce) {
    std::string s1 = with_field(with_field(with_field(kS1, 2, "1"), 3, "1"), 5, "002");
    std::string s2 = with_field(with_field(kS2, 3, "1"), 4, "1");
    const ZplStatus s = ok(parse_hs(hs(s1, s2)));
    EXPECT_EQ(s.reasons(), (Reasons{"media-empty", "paused", "head-open", "ribbon-out"}));
    EXPECT_EQ(s.formats_in_buffer, 2);
}

TEST(Hs, LineEndVariations) {
    const std::string paper_out = with_field(kS1, 2, "1");
    for (const std::string eol : {"\r\n", "\n", "\r", "", "\r\n\r\n", " \r\n"}) {
        SCOPED_TRACE(::testing::PrintToString(eol));
        EXPECT_EQ(ok(parse_hs(hs(paper_out, kS2, kS3, eol))).reasons(), Reasons{"media-empty"});
    }
}

TEST(Hs, BytesBeforeTheReplyAreSkipped) {
    EXPECT_TRUE(ok(parse_hs("\r\n" + hs())).ready());
    EXPECT_TRUE(ok(parse_hs(std::string("\0\0", 2) + hs())).ready());
    EXPECT_TRUE(ok(parse_hs(ETX + "\r\n" + hs())).ready()) << "the tail of an earlier reply";
}

TEST(Hs, MalformedRepliesNameStringAndField) {
    const Bad cases[] = {
        {"", "~HS: empty reply"},
        {kS1 + "\r\n", "~HS: no <STX>"},
        {hs("030,0,0,1245,000,0,0,0,000"), "~HS string 1: expected 12 fields, got 9"},
        {hs(kS1 + ",0"), "~HS string 1: expected 12 fields, got 13"},
        {hs(kS1, "001,0,0,0,1,2,6,0,00000000,1"), "~HS string 2: expected 11 fields, got 10"},
        {hs(kS1, kS2, "1234"), "~HS string 3: expected 2 fields, got 1"},
        {hs(kS1, kS2, "1234,0,0"), "~HS string 3: expected 2 fields, got 3"},
        {hs(""), "~HS string 1: expected 12 fields, got 1"},
        {hs(with_field(kS1, 2, "x")), "~HS string 1 field 2 (paper out): expected 0 or 1, got \"x\""},
        {hs(with_field(kS1, 3, "2")), "~HS string 1 field 3 (pause): expected 0 or 1, got \"2\""},
        {hs(with_field(kS1, 3, "")), "~HS string 1 field 3 (pause): expected 0 or 1, got \"\""},
        {hs(with_field(kS1, 3, " 0")), "~HS string 1 field 3 (pause)"},
        {hs(with_field(kS1, 5, "0x1")), "~HS string 1 field 5 (formats in buffer): expected a number"},
        {hs(with_field(kS1, 5, "")), "~HS string 1 field 5 (formats in buffer): expected a number"},
        {hs(with_field(kS1, 5, "-1")), "~HS string 1 field 5 (formats in buffer): expected a number"},
        {hs(with_field(kS1, 5, "123456789")), "~HS string 1 field 5 (formats in buffer): expected a number"},
        {hs(with_field(kS1, 6, "Y")), "~HS string 1 field 6 (buffer full)"},
        {hs(with_field(kS1, 10, "?")), "~HS string 1 field 10 (corrupt RAM)"},
        {hs(with_field(kS1, 11, "10")), "~HS string 1 field 11 (under temperature)"},
        {hs(with_field(kS1, 12, "N")), "~HS string 1 field 12 (over temperature)"},
        {hs(kS1, with_field(kS2, 3, "u")), "~HS string 2 field 3 (head up): expected 0 or 1, got \"u\""},
        {hs(kS1, with_field(kS2, 4, "r")), "~HS string 2 field 4 (ribbon out)"},
        {hs(kS1, with_field(kS2, 9, "0000001A")), "~HS string 2 field 9 (labels remaining): expected a number"},
        {STX + kS1 + ETX + "\r\n", "~HS string 2: missing (reply truncated after string 1)"},
        {STX + kS1 + ETX + "\r\n" + STX + kS2 + ETX + "\r\n", "~HS string 3: missing (reply truncated after string 2)"},
        {STX + kS1 + ETX + "\r\n" + STX + kS2.substr(0, 7), "~HS string 2: no <ETX> (reply truncated"},
        {STX + kS1, "~HS string 1: no <ETX>"},
        // No <STX> before string 1: string 2 is read as string 1.
        {kS1 + ETX + "\r\n" + STX + kS2 + ETX + "\r\n" + STX + kS3 + ETX, "~HS string 1: expected 12 fields, got 11"},
        {STX + kS1 + "\r\n" + STX + kS2 + ETX + "\r\n" + STX + kS3 + ETX + "\r\n" + STX + kS3 + ETX,
         "~HS string 1: <STX> before its <ETX>"},
        {STX + kS1 + ETX + "x" + STX + kS2 + ETX + STX + kS3 + ETX, "~HS: unexpected bytes after string 1 (\"x\")"},
        {STX + kS1 + ETX + STX + kS2 + ETX + "\r\n,\r\n" + STX + kS3 + ETX, "~HS: unexpected bytes after string 2"},
        {hs() + "x", "~HS: unexpected bytes after string 3"},
        {hs() + STX + kS3 + ETX + "\r\n", "~HS: unexpected bytes after string 3"},
        {hs() + hs(), "~HS: unexpected bytes after string 3"},
        {kHqesOk, "~HS string 1: expected 12 fields, got 1"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(::testing::PrintToString(c.reply));
        const std::string msg = error_of(parse_hs(c.reply));
        EXPECT_NE(msg.find(c.expect), std::string::npos) << "message: " << msg << "\nexpected: " << c.expect;
    }
}

TEST(Hs, EveryTruncationIsAnError) {
    const std::string full = hs(with_field(kS1, 2, "1"));
    const std::size_t last_etx = full.rfind(ETX);
    for (std::size_t n = 0; n <= last_etx; ++n) {
        SCOPED_TRACE(n);
        EXPECT_TRUE(std::holds_alternative<ParseError>(parse_hs(full.substr(0, n))));
        EXPECT_FALSE(hs_complete(full.substr(0, n)));
    }
    EXPECT_TRUE(hs_complete(full.substr(0, last_etx + 1)));
    EXPECT_EQ(ok(parse_hs(full.substr(0, last_etx + 1))).reasons(), Reasons{"media-empty"});
}

// ---- completeness -------------------------------------------------------------------------

TEST(Complete, HqesNeedsEtxAfterStx) {
    EXPECT_FALSE(hqes_complete(""));
    EXPECT_FALSE(hqes_complete("\r\n"));
    EXPECT_FALSE(hqes_complete(ETX + "\r\n" + STX + "\r\nPRINTER STATUS"))
        << "an <ETX> left over from an earlier reply does not end this one";
    EXPECT_TRUE(hqes_complete(kHqesOk));
}

TEST(Complete, HsNeedsThreeStrings) {
    EXPECT_FALSE(hs_complete(""));
    EXPECT_FALSE(hs_complete(STX + kS1 + ETX + "\r\n" + STX + kS2 + ETX + "\r\n"));
    EXPECT_FALSE(hs_complete(ETX + ETX + ETX + STX + kS1));
    EXPECT_TRUE(hs_complete(hs()));
    EXPECT_TRUE(hs_complete(hs("", "", "", "")));
}

TEST(Reasons, ErrorsThenWarningsInAFixedOrder) {
    ZplStatus s;
    s.paper_out = s.paused = s.head_open = s.ribbon_out = s.buffer_full = s.cutter_fault = true;
    s.head_over_temp = s.head_under_temp = s.motor_over_temp = s.head_fault = s.corrupt_ram = true;
    s.other_errors = 1;
    s.paper_near_end = s.needs_calibration = s.clean_head = s.replace_head = true;
    s.other_warnings = 1;
    EXPECT_EQ(s.reasons(),
              (Reasons{"media-empty", "paused", "head-open", "ribbon-out", "buffer-full", "cutter-fault",
                       "head-over-temp", "head-under-temp", "motor-over-temp", "head-fault", "memory-corrupt",
                       "other", "media-low-warning", "calibration-needed-warning", "clean-head-warning",
                       "replace-head-warning", "other-warning"}));
}

}  // namespace
