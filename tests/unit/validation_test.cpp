// Unit tests for agent/src/validation.cpp: job orders, commands, hostile payloads, canonical JSON.
#include "pressline/agent/validation.hpp"

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace pressline::agent {
namespace {

using json = nlohmann::json;

std::string read_fixture(const std::string& name) {
    // tests/unit/ -> tests/fixtures/payloads/, found from this file or from the working directory.
    const std::filesystem::path here = std::filesystem::path(__FILE__).parent_path();
    for (const auto& dir : {here / ".." / "fixtures" / "payloads",
                            std::filesystem::path("../fixtures/payloads"),
                            std::filesystem::path("tests/fixtures/payloads")}) {
        std::ifstream in(dir / name, std::ios::binary);
        if (in) {
            std::ostringstream text;
            text << in.rdbuf();
            return text.str();
        }
    }
    ADD_FAILURE() << "fixture not found: " << name;
    return "{}";
}

const std::string& full_job() {
    static const std::string text = read_fixture("job_full.json");
    return text;
}

const std::string& minimal_job() {
    static const std::string text = read_fixture("job_minimal.json");
    return text;
}

// The minimal order with one change applied.
std::string minimal_with(const std::function<void(json&)>& change) {
    json j = json::parse(minimal_job());
    change(j);
    return j.dump();
}

// The minimal order as text, with the first occurrence of `from` replaced by `to` (for byte-level
// corruption that json cannot express).
std::string minimal_replacing(const std::string& from, const std::string& to) {
    std::string text = json::parse(minimal_job()).dump();
    const auto at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) text.replace(at, from.size(), to);
    return text;
}

std::string nested_arrays(int depth) {
    return std::string(static_cast<std::size_t>(depth), '[') +
           std::string(static_cast<std::size_t>(depth), ']');
}

const ParseLimits kLimits{};  // 64 KiB, depth 16

// --------------------------------------------------------------------------------------------
// Valid job orders

TEST(ParseJob, AcceptsFullOrderAndKeepsGivenValues) {
    auto result = parse_job(full_job(), kLimits);
    ASSERT_TRUE(std::holds_alternative<JobOrder>(result))
        << std::get<Rejection>(result).reason << " " << std::get<Rejection>(result).message;
    const auto& job = std::get<JobOrder>(result);
    EXPECT_EQ(job.job_id, "J-2026-000123-1");
    EXPECT_EQ(job.order_id, "ORD-000123");
    EXPECT_EQ(job.priority, "express");
    EXPECT_EQ(job.json["order_items"], 2);
    EXPECT_EQ(job.json["qa"]["required"], false);  // given, so not defaulted
    EXPECT_EQ(job.json["print"]["placement"]["offset_x_mm"], -12.5);
    EXPECT_EQ(job.json["print"]["placement"]["offset_y_mm"], 75);
    EXPECT_EQ(job.json["shipping"]["ship_to"]["name"], "Zoë Müller");
    EXPECT_EQ(job.json["signature"]["alg"], "ed25519");
}

TEST(ParseJob, AcceptsMinimalOrderAndAppliesDefaults) {
    auto result = parse_job(minimal_job(), kLimits);
    ASSERT_TRUE(std::holds_alternative<JobOrder>(result))
        << std::get<Rejection>(result).message;
    const auto& job = std::get<JobOrder>(result);
    EXPECT_EQ(job.job_id, "J-1");
    EXPECT_EQ(job.order_id, "ORD-1");
    EXPECT_EQ(job.priority, "standard");
    EXPECT_EQ(job.json["priority"], "standard");
    EXPECT_EQ(job.json["order_items"], 1);
    EXPECT_EQ(job.json["qa"]["required"], true);
    EXPECT_EQ(job.json["print"]["placement"]["offset_x_mm"], 0);
    EXPECT_EQ(job.json["print"]["placement"]["offset_y_mm"], 0);
    EXPECT_EQ(job.json["product"]["garment_srgb"], json({255, 255, 255}));
}

TEST(ParseJob, DefaultsQaRequiredInsideAGivenQaObject) {
    auto result = parse_job(minimal_with([](json& j) { j["qa"] = json::object(); }), kLimits);
    ASSERT_TRUE(std::holds_alternative<JobOrder>(result));
    EXPECT_EQ(std::get<JobOrder>(result).json["qa"]["required"], true);
}

TEST(ParseJob, IgnoresUnknownFieldsEverywhere) {
    auto result = parse_job(minimal_with([](json& j) {
                                j["future_field"] = {{"anything", {1, 2, 3}}};
                                j["print"]["artwork"]["color_profile"] = "sRGB";
                                j["product"]["brand"] = "Acme";
                                j["qa"] = {{"required", false}, {"camera", "cam-2"}};
                            }),
                            kLimits);
    ASSERT_TRUE(std::holds_alternative<JobOrder>(result))
        << std::get<Rejection>(result).message;
    EXPECT_EQ(std::get<JobOrder>(result).json["future_field"]["anything"][2], 3);
}

TEST(ParseJob, AcceptsBoundaryValues) {
    auto result = parse_job(minimal_with([](json& j) {
                                j["job_id"] = std::string(128, 'a');
                                j["order_items"] = 1000;
                                j["product"]["garment_srgb"] = {0, 128, 255};
                                j["print"]["placement"]["width_mm"] = 1000;
                                j["print"]["placement"]["offset_x_mm"] = -1000;
                                j["print"]["artwork"]["dpi"] = 4800;
                                j["created_at"] = "2026-02-28t23:59:60.123456789z";
                                j["due_by"] = "2026-11-27T16:00:00-05:30";
                                j["order_id"] = "a.b_c:d-e";
                            }),
                            kLimits);
    ASSERT_TRUE(std::holds_alternative<JobOrder>(result))
        << std::get<Rejection>(result).field << ": " << std::get<Rejection>(result).message;
}

TEST(ParseJob, AcceptsSurrogatePairEscapesAndUtf8) {
    auto result = parse_job(
        minimal_replacing("\"sku\":\"TEE-WHT-M\"", "\"sku\":\"TEE-\\ud83d\\ude00-\xE2\x82\xAC\""),
        kLimits);
    ASSERT_TRUE(std::holds_alternative<JobOrder>(result))
        << std::get<Rejection>(result).message;
    EXPECT_EQ(std::get<JobOrder>(result).json["product"]["sku"], "TEE-\xF0\x9F\x98\x80-\xE2\x82\xAC");
}

TEST(ParseJson, AcceptsNestingUpToTheLimit) {
    // The top-level object is depth 1: {"a":[[...]]} with 15 arrays is depth 16.
    const std::string ok = "{\"a\":" + nested_arrays(15) + "}";
    EXPECT_TRUE(std::holds_alternative<json>(parse_json(ok, kLimits)));
    const std::string too_deep = "{\"a\":" + nested_arrays(16) + "}";
    auto result = parse_json(too_deep, kLimits);
    ASSERT_TRUE(std::holds_alternative<Rejection>(result));
    EXPECT_EQ(std::get<Rejection>(result).reason, "too_deeply_nested");
}

TEST(ParseJson, BracketsInsideStringsDoNotCountAsNesting) {
    const std::string text = "{\"a\":\"" + nested_arrays(100) + "{{{\\\"[[[\"}";
    EXPECT_TRUE(std::holds_alternative<json>(parse_json(text, kLimits)));
}

TEST(ParseJson, ExactlyTheSizeLimitIsAllowed) {
    ParseLimits limits;
    limits.max_payload_bytes = 32;
    const std::string text = "{\"a\":\"" + std::string(32 - 8, 'x') + "\"}";
    ASSERT_EQ(text.size(), 32U);
    EXPECT_TRUE(std::holds_alternative<json>(parse_json(text, limits)));
    auto result = parse_json(text + " ", limits);
    ASSERT_TRUE(std::holds_alternative<Rejection>(result));
    EXPECT_EQ(std::get<Rejection>(result).reason, "payload_too_large");
}

// --------------------------------------------------------------------------------------------
// Rejected job orders: each with the exact reason and field.

struct BadCase {
    std::string name;
    std::function<std::string()> payload;
    std::string reason;
    std::string field;
    std::string message_contains = "";
};

std::ostream& operator<<(std::ostream& os, const BadCase& c) { return os << c.name; }

std::vector<BadCase> bad_jobs() {
    return {
        {"NotJson", [] { return std::string("hello"); }, "malformed_json", "", "at byte"},
        {"Empty", [] { return std::string(); }, "malformed_json", "", "empty"},
        {"OnlyWhitespace", [] { return std::string(" \n\t "); }, "malformed_json", ""},
        {"Truncated", [] { return full_job().substr(0, full_job().size() / 2); }, "malformed_json",
         ""},
        {"TrailingGarbage", [] { return minimal_job() + " x"; }, "malformed_json", ""},
        {"TrailingComma", [] { return std::string("{\"job_id\":\"J-1\",}"); }, "malformed_json",
         ""},
        {"Comment", [] { return std::string("{/* hi */}"); }, "malformed_json", ""},
        {"JsonArray", [] { return std::string("[{\"job_id\":\"J-1\"}]"); }, "not_an_object", "",
         "got an array"},
        {"JsonString", [] { return std::string("\"J-1\""); }, "not_an_object", ""},
        {"JsonNull", [] { return std::string("null"); }, "not_an_object", ""},
        {"JobIdNumber", [] { return minimal_with([](json& j) { j["job_id"] = 42; }); },
         "wrong_type", "job_id", "job_id: must be a string (got 42)"},
        {"MissingJobId", [] { return minimal_with([](json& j) { j.erase("job_id"); }); },
         "missing_field", "job_id", "job_id: required field is missing"},
        {"MissingProduct", [] { return minimal_with([](json& j) { j.erase("product"); }); },
         "missing_field", "product"},
        {"MissingSku", [] { return minimal_with([](json& j) { j["product"].erase("sku"); }); },
         "missing_field", "product.sku"},
        {"MissingSha256",
         [] { return minimal_with([](json& j) { j["print"]["artwork"].erase("sha256"); }); },
         "missing_field", "print.artwork.sha256", "print.artwork.sha256: required field is missing"},
        {"MissingWidth",
         [] { return minimal_with([](json& j) { j["print"]["placement"].erase("width_mm"); }); },
         "missing_field", "print.placement.width_mm"},
        {"MissingPlaten", [] { return minimal_with([](json& j) { j["print"].erase("platen"); }); },
         "missing_field", "print.platen"},
        {"Sha256WrongLength",
         [] { return minimal_with([](json& j) { j["print"]["artwork"]["sha256"] = "9f2c"; }); },
         "invalid_value", "print.artwork.sha256",
         "print.artwork.sha256: must be 64 lowercase hexadecimal digits (got \"9f2c\")"},
        {"Sha256Uppercase",
         [] {
             return minimal_with([](json& j) {
                 j["print"]["artwork"]["sha256"] = std::string(64, 'A');
             });
         },
         "invalid_value", "print.artwork.sha256"},
        {"UnknownPriority", [] { return minimal_with([](json& j) { j["priority"] = "urgent"; }); },
         "invalid_value", "priority",
         "priority: must be one of express, standard, economy (got \"urgent\")"},
        {"OrderItemsZero", [] { return minimal_with([](json& j) { j["order_items"] = 0; }); },
         "invalid_value", "order_items", "order_items: must be between 1 and 1000 (got 0)"},
        {"OrderItemsTooMany", [] { return minimal_with([](json& j) { j["order_items"] = 1001; }); },
         "invalid_value", "order_items"},
        {"OrderItemsString", [] { return minimal_with([](json& j) { j["order_items"] = "2"; }); },
         "wrong_type", "order_items", "order_items: must be an integer (got \"2\")"},
        {"OrderItemsFraction", [] { return minimal_with([](json& j) { j["order_items"] = 2.5; }); },
         "wrong_type", "order_items"},
        {"WidthNegative",
         [] { return minimal_with([](json& j) { j["print"]["placement"]["width_mm"] = -5; }); },
         "invalid_value", "print.placement.width_mm",
         "print.placement.width_mm: must be greater than 0 and at most 1000 (got -5)"},
        {"WidthZero",
         [] { return minimal_with([](json& j) { j["print"]["placement"]["width_mm"] = 0; }); },
         "invalid_value", "print.placement.width_mm"},
        {"WidthString",
         [] { return minimal_with([](json& j) { j["print"]["placement"]["width_mm"] = "280"; }); },
         "wrong_type", "print.placement.width_mm", "must be a number"},
        {"OffsetOutOfRange",
         [] { return minimal_with([](json& j) { j["print"]["placement"]["offset_y_mm"] = 2000; }); },
         "invalid_value", "print.placement.offset_y_mm"},
        {"SrgbFourElements",
         [] {
             return minimal_with([](json& j) { j["product"]["garment_srgb"] = {1, 2, 3, 4}; });
         },
         "invalid_value", "product.garment_srgb",
         "product.garment_srgb: must have exactly 3 items (got 4)"},
        {"SrgbValue300",
         [] {
             return minimal_with([](json& j) { j["product"]["garment_srgb"] = {0, 300, 0}; });
         },
         "invalid_value", "product.garment_srgb[1]",
         "product.garment_srgb[1]: must be between 0 and 255 (got 300)"},
        {"SrgbNotAnArray",
         [] { return minimal_with([](json& j) { j["product"]["garment_srgb"] = "white"; }); },
         "wrong_type", "product.garment_srgb"},
        {"SrgbFloat",
         [] {
             return minimal_with([](json& j) { j["product"]["garment_srgb"] = {0, 0.5, 0}; });
         },
         "wrong_type", "product.garment_srgb[1]"},
        {"NoGarmentColour",
         [] { return minimal_with([](json& j) { j["product"].erase("garment_srgb"); }); },
         "missing_field", "product.garment_color",
         "product.garment_color or product.garment_srgb: one of these is required"},
        {"ArtworkFtp",
         [] {
             return minimal_with([](json& j) {
                 j["print"]["artwork"]["uri"] = "ftp://assets.example.com/a.png";
             });
         },
         "invalid_value", "print.artwork.uri",
         "print.artwork.uri: must be an https:// or file:// URI (got \"ftp://assets.example.com"},
        {"ArtworkHttp",
         [] {
             return minimal_with([](json& j) {
                 j["print"]["artwork"]["uri"] = "http://assets.example.com/a.png";
             });
         },
         "invalid_value", "print.artwork.uri"},
        {"MethodDtf",
         [] { return minimal_with([](json& j) { j["print"]["method"] = "dtf"; }); },
         "invalid_value", "print.method"},
        {"PrintNotAnObject", [] { return minimal_with([](json& j) { j["print"] = "dtg"; }); },
         "wrong_type", "print", "print: must be an object (got \"dtg\")"},
        {"PlatenEmpty", [] { return minimal_with([](json& j) { j["print"]["platen"] = ""; }); },
         "invalid_value", "print.platen", "print.platen: must not be empty"},
        {"QualityUnknown",
         [] {
             return minimal_with([](json& j) { j["print"]["options"] = {{"quality", "ultra"}}; });
         },
         "invalid_value", "print.options.quality"},
        {"UnderbaseString",
         [] {
             return minimal_with(
                 [](json& j) { j["print"]["options"] = {{"white_underbase", "true"}}; });
         },
         "wrong_type", "print.options.white_underbase", "must be true or false"},
        {"DpiZero",
         [] { return minimal_with([](json& j) { j["print"]["artwork"]["dpi"] = 0; }); },
         "invalid_value", "print.artwork.dpi"},
        {"PayloadOneMiB",
         [] {
             return minimal_with([](json& j) { j["padding"] = std::string(1024 * 1024, 'x'); });
         },
         "payload_too_large", "", "the limit is 65536 bytes"},
        {"TenThousandNestedArrays",
         [] { return "{\"job_id\":" + nested_arrays(10000) + "}"; }, "too_deeply_nested", ""},
        {"TenThousandUnclosedBraces", [] { return std::string(10000, '{'); }, "too_deeply_nested",
         ""},
        {"BadUtf8InString",
         [] { return minimal_replacing("TEE-WHT-M", "TEE-\xFF\xFE-M"); }, "invalid_utf8", "",
         "0xFF"},
        {"TruncatedUtf8Sequence",
         [] { return minimal_replacing("TEE-WHT-M", "TEE-\xE2\x82"); }, "invalid_utf8", ""},
        {"OverlongUtf8Slash",
         [] { return minimal_replacing("TEE-WHT-M", "TEE\xC0\xAF" "M"); }, "invalid_utf8", ""},
        {"OverlongUtf8ThreeBytes",
         [] { return minimal_replacing("TEE-WHT-M", "TEE\xE0\x80\xAF" "M"); }, "invalid_utf8", ""},
        {"Utf8EncodedSurrogate",
         [] { return minimal_replacing("TEE-WHT-M", "TEE\xED\xA0\x80" "M"); }, "invalid_utf8", ""},
        {"Utf8AboveUnicode",
         [] { return minimal_replacing("TEE-WHT-M", "TEE\xF4\x90\x80\x80" "M"); }, "invalid_utf8",
         ""},
        {"LoneHighSurrogateEscape",
         [] { return minimal_replacing("TEE-WHT-M", "TEE\\ud800M"); }, "invalid_utf8", "",
         "surrogate"},
        {"LoneLowSurrogateEscape",
         [] { return minimal_replacing("TEE-WHT-M", "TEE\\uDC00"); }, "invalid_utf8", ""},
        {"SwappedSurrogateEscapes",
         [] { return minimal_replacing("TEE-WHT-M", "\\ude00\\ud83d"); }, "invalid_utf8", ""},
        {"RawNulByteInString",
         [] { return minimal_replacing("TEE-WHT-M", std::string("TEE\0M", 5)); }, "malformed_json",
         ""},
        {"RawNulByteOutsideString",
         [] { return std::string("{\"job_id\":\"J-1\"\0}", 17); }, "malformed_json", "",
         "NUL byte at offset 15"},
        {"RawNulByteAfterValidOrder",  // nlohmann alone would stop at the NUL and accept
         [] { return minimal_job() + std::string(1, '\0') + "garbage"; }, "malformed_json", ""},
        {"EscapedNulInValue",
         [] { return minimal_replacing("TEE-WHT-M", "TEE\\u0000M"); }, "invalid_value",
         "product.sku", "NUL"},
        {"EscapedNulInUnknownKey",
         [] { return minimal_replacing("\"job_id\"", "\"x\\u0000\":1,\"job_id\""); },
         "invalid_value", "x\\u0000"},
        {"JobIdWithSlash",
         [] { return minimal_with([](json& j) { j["job_id"] = "J/../../etc"; }); },
         "invalid_value", "job_id", "job_id: must be made of letters, digits, '.', '_', ':' and '-', starting with a letter or "
         "digit (got \"J/../../etc\")"},
        {"JobIdWithSpace", [] { return minimal_with([](json& j) { j["job_id"] = "J 1"; }); },
         "invalid_value", "job_id"},
        {"JobIdLeadingDash", [] { return minimal_with([](json& j) { j["job_id"] = "-J1"; }); },
         "invalid_value", "job_id"},
        {"JobIdEmpty", [] { return minimal_with([](json& j) { j["job_id"] = ""; }); },
         "invalid_value", "job_id", "job_id: must not be empty"},
        {"JobId500Chars",
         [] { return minimal_with([](json& j) { j["job_id"] = std::string(500, 'J'); }); },
         "invalid_value", "job_id",
         "job_id: must be between 1 and 128 characters long (got 500 characters)"},
        {"JobId60KChars",  // long input against a pattern: no regex stack blow-up
         [] { return minimal_with([](json& j) { j["job_id"] = std::string(60000, 'J'); }); },
         "invalid_value", "job_id"},
        {"OrderIdNewline", [] { return minimal_with([](json& j) { j["order_id"] = "ORD-1\n"; }); },
         "invalid_value", "order_id"},
        {"DuplicateJobId",
         [] { return minimal_replacing("\"job_id\":\"J-1\"", "\"job_id\":\"J-1\",\"job_id\":\"J-2\""); },
         "malformed_json", "job_id", "more than once"},
        {"DuplicateNestedKey",
         [] { return minimal_replacing("\"platen\":\"16x20\"", "\"platen\":\"16x20\",\"platen\":\"a\""); },
         "malformed_json", "print.platen"},
        {"DueByNotADate", [] { return minimal_with([](json& j) { j["due_by"] = "tomorrow"; }); },
         "invalid_value", "due_by", "due_by: must be an RFC 3339 date-time"},
        {"DueByMonth13",
         [] { return minimal_with([](json& j) { j["due_by"] = "2026-13-01T10:00:00Z"; }); },
         "invalid_value", "due_by"},
        {"DueByNoZone",
         [] { return minimal_with([](json& j) { j["due_by"] = "2026-11-27T16:00:00"; }); },
         "invalid_value", "due_by"},
        {"CreatedAtNumber",
         [] { return minimal_with([](json& j) { j["created_at"] = 1764151200; }); }, "wrong_type",
         "created_at"},
        {"QaRequiredYes", [] { return minimal_with([](json& j) { j["qa"] = {{"required", "yes"}}; }); },
         "wrong_type", "qa.required", "qa.required: must be true or false (got \"yes\")"},
        {"QaNotAnObject", [] { return minimal_with([](json& j) { j["qa"] = true; }); },
         "wrong_type", "qa"},
        {"NumberOverflow",
         [] { return minimal_replacing("\"width_mm\":250", "\"width_mm\":1e999"); },
         "invalid_value", "print.placement.width_mm", "out of range"},
        {"NumberOverflowInArray",
         [] { return minimal_replacing("[255,255,255]", "[255,-1e999,255]"); }, "invalid_value",
         "product.garment_srgb[1]"},
        {"LabelFormatJpg",
         [] {
             return minimal_with([](json& j) { j["shipping"] = {{"label", {{"format", "jpg"}}}}; });
         },
         "invalid_value", "shipping.label.format"},
        {"ShipToNameNumber",
         [] {
             return minimal_with([](json& j) { j["shipping"] = {{"ship_to", {{"name", 5}}}}; });
         },
         "wrong_type", "shipping.ship_to.name"},
        {"SignatureValueNumber",
         [] { return minimal_with([](json& j) { j["signature"] = {{"value", 1}}; }); },
         "wrong_type", "signature.value"},
    };
}

class BadJob : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadJob, IsRejectedWithReasonAndField) {
    const BadCase& c = GetParam();
    const std::string payload = c.payload();
    auto result = parse_job(payload, kLimits);
    ASSERT_TRUE(std::holds_alternative<Rejection>(result)) << "accepted: " << c.name;
    const Rejection& r = std::get<Rejection>(result);
    EXPECT_EQ(r.reason, c.reason) << r.message;
    EXPECT_EQ(r.field, c.field) << r.message;
    EXPECT_NE(r.message.find(c.message_contains), std::string::npos) << r.message;
    EXPECT_FALSE(r.message.empty());
    EXPECT_LT(r.message.size(), 300U) << r.message;
    EXPECT_EQ(r.message.find('\n'), std::string::npos) << r.message;
}

INSTANTIATE_TEST_SUITE_P(Hostile, BadJob, ::testing::ValuesIn(bad_jobs()),
                         [](const auto& test) { return test.param.name; });

TEST(ParseJob, MessageForALongValueIsTruncated) {
    auto result = parse_job(
        minimal_with([](json& j) { j["print"]["artwork"]["uri"] = "ftp://" + std::string(5000, 'a'); }),
        kLimits);
    ASSERT_TRUE(std::holds_alternative<Rejection>(result));
    const auto& r = std::get<Rejection>(result);
    EXPECT_EQ(r.field, "print.artwork.uri");
    EXPECT_NE(r.message.find("...\" (5006 characters)"), std::string::npos) << r.message;
    EXPECT_LT(r.message.size(), 200U);
}

TEST(ParseJob, LongValidUriIsAccepted) {
    auto result = parse_job(minimal_with([](json& j) {
                                j["print"]["artwork"]["uri"] =
                                    "https://assets.example.com/" + std::string(60000, 'a');
                            }),
                            kLimits);
    EXPECT_TRUE(std::holds_alternative<JobOrder>(result)) << std::get<Rejection>(result).message;
}

TEST(ParseJob, MalformedJsonMessageGivesTheBytePosition) {
    auto result = parse_job("{\"job_id\": nope}", kLimits);
    ASSERT_TRUE(std::holds_alternative<Rejection>(result));
    EXPECT_NE(std::get<Rejection>(result).message.find("at byte 13"), std::string::npos)
        << std::get<Rejection>(result).message;
}

TEST(ParseJob, DeepNestingInsideAnUnknownFieldHonoursTheConfiguredDepth) {
    ParseLimits deep;
    deep.max_depth = 64;
    const std::string payload =
        minimal_replacing("\"job_id\"", "\"x\":" + nested_arrays(40) + ",\"job_id\"");
    EXPECT_TRUE(std::holds_alternative<JobOrder>(parse_job(payload, deep)));
    auto result = parse_job(payload, kLimits);
    ASSERT_TRUE(std::holds_alternative<Rejection>(result));
    EXPECT_EQ(std::get<Rejection>(result).reason, "too_deeply_nested");
}

// --------------------------------------------------------------------------------------------
// Commands

TEST(ParseCommand, AcceptsEveryType) {
    const std::vector<json> valid = {
        {{"command_id", "C-77"}, {"type", "cancel"}, {"job_id", "J-2026-000123-1"}},
        {{"command_id", "C-78"}, {"type", "reprint"}, {"job_id", "J-1"}, {"what", "garment"}},
        {{"command_id", "C-79"}, {"type", "reprint"}, {"job_id", "J-1"}, {"what", "label"}},
        {{"command_id", "C-80"}, {"type", "reprint"}, {"job_id", "J-1"}, {"what", "ticket"}},
        {{"command_id", "C-81"}, {"type", "pause_device"}, {"device", "dtg-1"}},
        {{"command_id", "C-82"}, {"type", "resume_device"}, {"device", "dtg-1"}},
        {{"command_id", "C-83"}, {"type", "drain"}},
        {{"command_id", "C-84"}, {"type", "resume"}},
        {{"command_id", "C-85"}, {"type", "snapshot"}, {"device", "cam-1"}},
        {{"command_id", "C-86"}, {"type", "qa_decision"}, {"job_id", "J-1"}, {"verdict", "pass"}},
        {{"command_id", "C-87"}, {"type", "qa_decision"}, {"job_id", "J-1"}, {"verdict", "fail"}},
        {{"command_id", "C-88"}, {"type", "reload_config"}, {"future", true}},
    };
    for (const auto& command : valid) {
        auto result = parse_command(command.dump(), kLimits);
        ASSERT_TRUE(std::holds_alternative<Command>(result))
            << command.dump() << ": " << std::get<Rejection>(result).message;
        const auto& c = std::get<Command>(result);
        EXPECT_EQ(c.command_id, command["command_id"]);
        EXPECT_EQ(c.type, command["type"]);
        EXPECT_EQ(c.json, command);
    }
}

std::vector<BadCase> bad_commands() {
    const auto text = [](json j) { return [j] { return j.dump(); }; };
    return {
        {"CancelWithoutJobId", text({{"command_id", "C-1"}, {"type", "cancel"}}), "missing_field",
         "job_id", "job_id: required for a cancel command but missing"},
        {"UnknownType", text({{"command_id", "C-1"}, {"type", "explode"}}), "invalid_value",
         "type", "type: must be one of cancel, reprint, pause_device"},
        {"TypeNumber", text({{"command_id", "C-1"}, {"type", 3}}), "wrong_type", "type"},
        {"MissingType", text({{"command_id", "C-1"}}), "missing_field", "type",
         "type: required field is missing"},
        {"MissingCommandId", text({{"type", "drain"}}), "missing_field", "command_id"},
        {"CommandIdWithSpace", text({{"command_id", "C 1"}, {"type", "drain"}}), "invalid_value",
         "command_id"},
        {"CommandIdTooLong", text({{"command_id", std::string(129, 'C')}, {"type", "drain"}}),
         "invalid_value", "command_id"},
        {"ReprintBox",
         text({{"command_id", "C-1"}, {"type", "reprint"}, {"job_id", "J-1"}, {"what", "box"}}),
         "invalid_value", "what", "what: must be one of garment, label, ticket (got \"box\")"},
        {"ReprintWithoutWhat", text({{"command_id", "C-1"}, {"type", "reprint"}, {"job_id", "J-1"}}),
         "missing_field", "what", "required for a reprint command"},
        {"ReprintWithoutJobId", text({{"command_id", "C-1"}, {"type", "reprint"}, {"what", "label"}}),
         "missing_field", "job_id"},
        {"PauseWithoutDevice", text({{"command_id", "C-1"}, {"type", "pause_device"}}),
         "missing_field", "device"},
        {"ResumeDeviceWithoutDevice", text({{"command_id", "C-1"}, {"type", "resume_device"}}),
         "missing_field", "device"},
        {"QaDecisionMaybe",
         text({{"command_id", "C-1"}, {"type", "qa_decision"}, {"job_id", "J-1"}, {"verdict", "maybe"}}),
         "invalid_value", "verdict"},
        {"QaDecisionWithoutVerdict",
         text({{"command_id", "C-1"}, {"type", "qa_decision"}, {"job_id", "J-1"}}), "missing_field",
         "verdict"},
        {"CancelJobIdWithSlash",
         text({{"command_id", "C-1"}, {"type", "cancel"}, {"job_id", "a/b"}}), "invalid_value",
         "job_id"},
        {"NotAnObject", [] { return std::string("[\"cancel\"]"); }, "not_an_object", ""},
        {"Garbage", [] { return std::string("cancel J-1"); }, "malformed_json", ""},
    };
}

class BadCommand : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadCommand, IsRejectedWithReasonAndField) {
    const BadCase& c = GetParam();
    auto result = parse_command(c.payload(), kLimits);
    ASSERT_TRUE(std::holds_alternative<Rejection>(result)) << "accepted: " << c.name;
    const Rejection& r = std::get<Rejection>(result);
    EXPECT_EQ(r.reason, c.reason) << r.message;
    EXPECT_EQ(r.field, c.field) << r.message;
    EXPECT_NE(r.message.find(c.message_contains), std::string::npos) << r.message;
}

INSTANTIATE_TEST_SUITE_P(Hostile, BadCommand, ::testing::ValuesIn(bad_commands()),
                         [](const auto& test) { return test.param.name; });

// --------------------------------------------------------------------------------------------
// Canonical JSON

TEST(CanonicalJson, SortsKeysIsCompactAndDropsTopLevelSignature) {
    const json a = json::parse(R"({"b": 1, "a": {"y": [1, 2], "x": "é"}, "signature": {"v": 1}})");
    EXPECT_EQ(canonical_json(a), "{\"a\":{\"x\":\"é\",\"y\":[1,2]},\"b\":1}");
}

TEST(CanonicalJson, IgnoresKeyOrderAndSignature) {
    const json a = json::parse(R"({"job_id": "J-1", "print": {"platen": "16x20", "method": "dtg"}})");
    const json b = json::parse(
        R"({"print": {"method": "dtg", "platen": "16x20"}, "signature": {"value": "x"}, "job_id": "J-1"})");
    EXPECT_EQ(canonical_json(a), canonical_json(b));
    const json c = json::parse(R"({"job_id": "J-2", "print": {"platen": "16x20", "method": "dtg"}})");
    EXPECT_NE(canonical_json(a), canonical_json(c));
}

TEST(CanonicalJson, KeepsNestedSignatureMembers) {
    const json a = json::parse(R"({"x": {"signature": 1}})");
    EXPECT_EQ(canonical_json(a), "{\"x\":{\"signature\":1}}");
}

TEST(CanonicalJson, RedeliveredJobMatchesStoredOne) {
    auto first = parse_job(full_job(), kLimits);
    json reordered = json::parse(full_job());
    reordered.erase("signature");
    auto second = parse_job(reordered.dump(2), kLimits);
    ASSERT_TRUE(std::holds_alternative<JobOrder>(first));
    ASSERT_TRUE(std::holds_alternative<JobOrder>(second));
    EXPECT_EQ(canonical_json(std::get<JobOrder>(first).json),
              canonical_json(std::get<JobOrder>(second).json));
}

// --------------------------------------------------------------------------------------------
// Concurrency and cost

TEST(ParseJob, IsSafeFromSeveralThreads) {
    constexpr std::size_t kThreads = 4;
    std::vector<std::thread> threads;
    std::vector<int> accepted(kThreads, 0);
    for (std::size_t t = 0; t < kThreads; ++t) {
        threads.emplace_back([t, &accepted] {
            for (int i = 0; i < 200; ++i) {
                accepted[t] += std::holds_alternative<JobOrder>(parse_job(full_job(), kLimits));
                (void)parse_job(minimal_with([](json& j) { j["priority"] = "x"; }), kLimits);
            }
        });
    }
    for (auto& th : threads) th.join();
    for (int n : accepted) EXPECT_EQ(n, 200);
}

// Prints the cost; the bound is loose on purpose (sanitizer and debug builds run here too).
TEST(ParseJob, CostPerTypicalOrder) {
    constexpr int kRuns = 5000;
    const std::string& payload = full_job();
    (void)parse_job(payload, kLimits);  // schema compiled, regexes cached

    // Thread CPU time, best of several rounds: the machine may be busy with other work.
    const auto cpu_us = [] {
        timespec ts{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
    };
    const auto best_of = [&](const std::function<bool()>& once) {
        double best = 1e30;
        for (int round = 0; round < 5; ++round) {
            const double start = cpu_us();
            for (int i = 0; i < kRuns / 5; ++i) {
                EXPECT_TRUE(once());
            }
            best = std::min(best, (cpu_us() - start) / (kRuns / 5));
        }
        return best;
    };
    const double parse_us =
        best_of([&] { return std::holds_alternative<json>(parse_json(payload, kLimits)); });
    const double job_us =
        best_of([&] { return std::holds_alternative<JobOrder>(parse_job(payload, kLimits)); });

    std::cout << "[ cost     ] parse_json " << parse_us << " us, parse_job " << job_us
              << " us, schema validation + defaults ~" << (job_us - parse_us) << " us per "
              << payload.size() << "-byte order\n";
    RecordProperty("parse_job_us", std::to_string(job_us));
    EXPECT_LT(job_us, 2000.0);
}

}  // namespace
}  // namespace pressline::agent
