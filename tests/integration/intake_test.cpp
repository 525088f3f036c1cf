// Intake as the cloud sees it: valid job orders are accepted exactly once with well-formed
// CloudEvents; malformed and hostile payloads are each rejected exactly once with the right
// reason and field while the agent keeps working; redeliveries are recognised by job_id;
// pool jobs arrive through the shared subscription; the retained status says online.
#include <signal.h>

#include <gtest/gtest.h>

#include <set>

#include "pressline/testing/fixture.hpp"

using namespace pressline::testing;
using nlohmann::json;

namespace {

class Intake : public IntegrationTest {};

// Event types that must never appear for a valid, first-time job.
const std::set<std::string> kIntakeFailures = {"job.rejected", "job.duplicate", "job.cancelled"};

}  // namespace

TEST_F(Intake, ValidJobsAreAcceptedExactlyOnceWithContractEnvelope) {
    auto cfg = make_config();
    start_agent(cfg);
    const auto topics = cfg.topics();

    // The agent's MQTT session: MQTT 5, clean start off, the contract's client id.
    const std::string line = broker().connect_line(topics.client_id());
    EXPECT_NE(line.find("(p5, c0"), std::string::npos) << "expected MQTT 5 with clean start off: " << line;

    struct Want {
        json job;
        std::string priority;  // expected in job.accepted data
    };
    std::vector<Want> jobs;
    jobs.push_back({valid_job("J-valid-express", "ORD-1", "express"), "express"});
    jobs.push_back({valid_job("J-valid-standard", "ORD-1", "standard"), "standard"});
    jobs.push_back({valid_job("J-valid-economy", "ORD-2", "economy"), "economy"});
    jobs.push_back({valid_job("J-valid-default", "ORD-3"), "standard"});
    {
        json j = valid_job("J-valid-unknown-fields", "ORD-4");
        j["future_field"] = {{"anything", {1, 2, 3}}};  // forward compatibility: ignored
        j["print"]["options"] = {{"white_underbase", true}, {"quality", "standard"}};
        jobs.push_back({j, "standard"});
    }
    {
        json j = valid_job("J-valid-srgb", "ORD-5");
        j["product"].erase("garment_color");
        j["product"]["garment_srgb"] = {12, 34, 56};
        jobs.push_back({j, "standard"});
    }
    {
        json j = valid_job("J-valid-file-uri", "ORD-6");
        j["print"]["artwork"]["uri"] = "file:///srv/pressline/artwork/a.png";
        jobs.push_back({j, "standard"});
    }
    {
        json j = valid_job("J-valid-utf8", "ORD-7");  // non-ASCII text is fine if it is UTF-8
        j["product"]["type"] = "t-shirt ünïcødé 名前";
        j["shipping"] = {{"ship_to", {{"name", "Zoë Ångström"}, {"country", "SE"}}}};
        jobs.push_back({j, "standard"});
    }

    for (const auto& w : jobs) cloud().publish_job(w.job.dump());
    for (const auto& w : jobs) {
        const std::string id = w.job["job_id"];
        auto e = cloud().wait_event("job.accepted", id);
        ASSERT_TRUE(e) << "no job.accepted for " << id << "\n" << cloud().dump();
        EXPECT_EQ(envelope_problems(*e, topics.source()), "") << e->raw;
        EXPECT_EQ(e->full_type, "com.pressline.job.accepted");
        EXPECT_EQ(e->data_str("order_id"), w.job["order_id"].get<std::string>()) << e->raw;
        EXPECT_EQ(e->data_str("priority"), w.priority) << e->raw;
    }
    cloud().settle();
    for (const auto& w : jobs) {
        const std::string id = w.job["job_id"];
        auto evs = cloud().events_for(id);
        int accepted = 0;
        for (const auto& e : evs) {
            if (e.type == "job.accepted") ++accepted;
            EXPECT_EQ(kIntakeFailures.count(e.type), 0u) << id << " got " << e.raw;
        }
        EXPECT_EQ(accepted, 1) << id << "\n" << cloud().dump();
    }

    // agent.started, and every event so far well-formed and numbered 1..n without gaps.
    EXPECT_FALSE(cloud().events_of("agent.started").empty()) << cloud().dump();
    const auto all = cloud().events();
    for (const auto& e : all) EXPECT_EQ(envelope_problems(e, topics.source()), "") << e.raw;
    const auto rep = analyze_sequences(all);
    EXPECT_TRUE(rep.gap_free()) << rep.str();
    EXPECT_TRUE(rep.distinct.count(1)) << "sequences do not start at 1: " << rep.str();

    // A newcomer sees the retained status: online, with version and start time, intake open.
    auto st = fetch_retained(client_options(broker()), topics.status());
    ASSERT_TRUE(st) << "no retained status on " << topics.status();
    const json s = json::parse(st->payload, nullptr, false);
    ASSERT_TRUE(s.is_object()) << st->payload;
    EXPECT_EQ(s.value("state", ""), "online") << st->payload;
    EXPECT_TRUE(s.contains("version") && s["version"].is_string() && !s["version"].get<std::string>().empty())
        << st->payload;
    EXPECT_TRUE(s.contains("started_at") && s["started_at"].is_string()) << st->payload;
    EXPECT_EQ(s.value("intake", ""), "open") << st->payload;
}

namespace {

struct BadCase {
    std::string name;
    std::string payload;
    std::set<std::string> reasons;       // acceptable reason codes (usually one)
    std::optional<std::set<std::string>> fields;  // acceptable "field" values; nullopt: not checked
    std::optional<std::string> subject;  // expected subject (the job_id), when readable and valid
    bool field_prefix = false;           // fields are prefixes (array indexes may follow)
};

std::string nested_arrays(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

std::string nested_objects_in_job(const std::string& job_id, std::size_t depth) {
    std::string s = R"({"job_id":")" + job_id + R"(","x":)";
    for (std::size_t i = 0; i < depth; ++i) s += R"({"a":)";
    s += "1";
    s += std::string(depth, '}');
    s += "}";
    return s;
}

std::vector<BadCase> bad_cases(std::size_t max_payload) {
    std::vector<BadCase> c;
    auto job = [](const std::string& id) { return valid_job(id); };
    auto with = [&](const std::string& id, const std::function<void(json&)>& edit) {
        json j = job(id);
        edit(j);
        return j.dump();
    };
    c.push_back({"not JSON", "this is not json", {"malformed_json"}, std::nullopt, std::nullopt});
    {
        const std::string full = job("J-bad-trunc").dump();
        c.push_back({"truncated", full.substr(0, full.size() / 2), {"malformed_json"}, std::nullopt, std::nullopt});
    }
    c.push_back({"empty payload", "", {"malformed_json"}, std::nullopt, std::nullopt});
    c.push_back({"whitespace only", " \n\t ", {"malformed_json"}, std::nullopt, std::nullopt});
    c.push_back({"trailing garbage", job("J-bad-trailing").dump() + " }x", {"malformed_json"}, std::nullopt, std::nullopt});
    c.push_back({"comment in JSON", "/* c */ " + job("J-bad-comment").dump(), {"malformed_json"}, std::nullopt, std::nullopt});
    c.push_back({"array", "[1,2,3]", {"not_an_object"}, std::nullopt, std::nullopt});
    c.push_back({"array of a job", "[" + job("J-bad-in-array").dump() + "]", {"not_an_object"}, std::nullopt, std::nullopt});
    c.push_back({"string", "\"J-1\"", {"not_an_object"}, std::nullopt, std::nullopt});
    c.push_back({"number", "42", {"not_an_object"}, std::nullopt, std::nullopt});
    c.push_back({"null", "null", {"not_an_object"}, std::nullopt, std::nullopt});
    c.push_back({"job_id is a number", with("x", [](json& j) { j["job_id"] = 12345; }), {"wrong_type"},
                 std::set<std::string>{"job_id"}, std::nullopt});
    c.push_back({"job_id missing", with("x", [](json& j) { j.erase("job_id"); }), {"missing_field"},
                 std::set<std::string>{"job_id"}, std::nullopt});
    c.push_back({"order_id missing", with("J-bad-no-order", [](json& j) { j.erase("order_id"); }), {"missing_field"},
                 std::set<std::string>{"order_id"}, "J-bad-no-order"});
    c.push_back({"order_id is an array", with("J-bad-order-type", [](json& j) { j["order_id"] = json::array({"A"}); }),
                 {"wrong_type"}, std::set<std::string>{"order_id"}, "J-bad-order-type"});
    c.push_back({"product.sku missing", with("J-bad-no-sku", [](json& j) { j["product"].erase("sku"); }),
                 {"missing_field"}, std::set<std::string>{"product.sku"}, "J-bad-no-sku"});
    c.push_back({"no garment colour", with("J-bad-no-color", [](json& j) { j["product"].erase("garment_color"); }),
                 {"missing_field", "schema_violation"},
                 std::set<std::string>{"product.garment_color", "product.garment_srgb", "product"}, "J-bad-no-color"});
    c.push_back({"product is a string", with("J-bad-product-type", [](json& j) { j["product"] = "TEE-BLK-L"; }),
                 {"wrong_type"}, std::set<std::string>{"product"}, "J-bad-product-type"});
    c.push_back({"sha256 missing", with("J-bad-no-sha", [](json& j) { j["print"]["artwork"].erase("sha256"); }),
                 {"missing_field"}, std::set<std::string>{"print.artwork.sha256"}, "J-bad-no-sha"});
    c.push_back({"platen missing", with("J-bad-no-platen", [](json& j) { j["print"].erase("platen"); }),
                 {"missing_field"}, std::set<std::string>{"print.platen"}, "J-bad-no-platen"});
    c.push_back({"width_mm is a string", with("J-bad-width-type", [](json& j) { j["print"]["placement"]["width_mm"] = "280"; }),
                 {"wrong_type"}, std::set<std::string>{"print.placement.width_mm"}, "J-bad-width-type"});
    c.push_back({"width_mm zero", with("J-bad-width-zero", [](json& j) { j["print"]["placement"]["width_mm"] = 0; }),
                 {"invalid_value"}, std::set<std::string>{"print.placement.width_mm"}, "J-bad-width-zero"});
    c.push_back({"width_mm negative", with("J-bad-width-neg", [](json& j) { j["print"]["placement"]["width_mm"] = -5; }),
                 {"invalid_value"}, std::set<std::string>{"print.placement.width_mm"}, "J-bad-width-neg"});
    c.push_back({"print.method not dtg", with("J-bad-method", [](json& j) { j["print"]["method"] = "screen"; }),
                 {"invalid_value"}, std::set<std::string>{"print.method"}, "J-bad-method"});
    c.push_back({"unknown priority", with("J-bad-priority", [](json& j) { j["priority"] = "urgent"; }),
                 {"invalid_value"}, std::set<std::string>{"priority"}, "J-bad-priority"});
    c.push_back({"sha256 upper case",
                 with("J-bad-sha-upper", [](json& j) { j["print"]["artwork"]["sha256"] = std::string(64, 'A'); }),
                 {"invalid_value"}, std::set<std::string>{"print.artwork.sha256"}, "J-bad-sha-upper"});
    c.push_back({"sha256 too short", with("J-bad-sha-short", [](json& j) { j["print"]["artwork"]["sha256"] = "9f2c"; }),
                 {"invalid_value"}, std::set<std::string>{"print.artwork.sha256"}, "J-bad-sha-short"});
    c.push_back({"sha256 not hex",
                 with("J-bad-sha-nothex", [](json& j) { j["print"]["artwork"]["sha256"] = std::string(64, 'g'); }),
                 {"invalid_value"}, std::set<std::string>{"print.artwork.sha256"}, "J-bad-sha-nothex"});
    c.push_back({"artwork uri ftp://",
                 with("J-bad-uri", [](json& j) { j["print"]["artwork"]["uri"] = "ftp://assets.example.com/a.png"; }),
                 {"invalid_value"}, std::set<std::string>{"print.artwork.uri"}, "J-bad-uri"});
    c.push_back({"job_id with spaces", with("x", [](json& j) { j["job_id"] = "J 2026 1"; }), {"invalid_value"},
                 std::set<std::string>{"job_id"}, std::nullopt});
    c.push_back({"job_id empty", with("x", [](json& j) { j["job_id"] = ""; }), {"invalid_value", "missing_field"},
                 std::set<std::string>{"job_id"}, std::nullopt});
    c.push_back({"job_id with NUL", with("x", [](json& j) { j["job_id"] = std::string("J\0X", 3); }), {"invalid_value"},
                 std::set<std::string>{"job_id"}, std::nullopt});
    c.push_back({"job_id with topic wildcards", with("x", [](json& j) { j["job_id"] = "J/+/#"; }), {"invalid_value"},
                 std::set<std::string>{"job_id"}, std::nullopt});
    c.push_back({"garment_srgb out of range",
                 with("J-bad-srgb", [](json& j) {
                     j["product"].erase("garment_color");
                     j["product"]["garment_srgb"] = {300, 0, 0};
                 }),
                 {"invalid_value"}, std::set<std::string>{"product.garment_srgb"}, "J-bad-srgb", true});
    c.push_back({"order_items zero", with("J-bad-items", [](json& j) { j["order_items"] = 0; }), {"invalid_value"},
                 std::set<std::string>{"order_items"}, "J-bad-items"});
    c.push_back({"qa.required is a string", with("J-bad-qa", [](json& j) { j["qa"]["required"] = "yes"; }),
                 {"wrong_type"}, std::set<std::string>{"qa.required"}, "J-bad-qa"});
    {
        json j = job("J-bad-huge");
        j["padding"] = std::string(max_payload + 1024, 'x');
        c.push_back({"larger than intake.max_payload_bytes", j.dump(), {"payload_too_large"}, std::nullopt, std::nullopt});
    }
    c.push_back({"100k-deep arrays", nested_arrays(100000), {"too_deeply_nested"}, std::nullopt, std::nullopt});
    c.push_back({"100k-deep objects in a job", nested_objects_in_job("J-bad-deep", 100000), {"too_deeply_nested"},
                 std::nullopt, std::nullopt});
    {
        json j = job("J-bad-depth20");
        json inner = 1;
        for (int i = 0; i < 20; ++i) inner = json{{"a", inner}};
        j["extra"] = inner;  // unknown field, but beyond intake.max_depth (16)
        c.push_back({"20 levels (over max_depth)", j.dump(), {"too_deeply_nested"}, std::nullopt, std::nullopt});
    }
    {
        std::string p = job("J-bad-utf8").dump();
        const auto at = p.find("\"L\"");
        p.replace(at, 3, "\"L\xff\xfe\"");
        c.push_back({"invalid UTF-8 byte in a value", p, {"invalid_utf8"}, std::nullopt, std::nullopt});
    }
    {
        std::string p = job("J-bad-overlong").dump();
        const auto at = p.find("\"tshirt\"");
        p.replace(at, 8, "\"t\xc0\xafshirt\"");
        c.push_back({"overlong UTF-8 encoding", p, {"invalid_utf8"}, std::nullopt, std::nullopt});
    }
    {
        std::string p = job("J-bad-surrogate").dump();
        const auto at = p.find("\"tshirt\"");
        p.replace(at, 8, "\"t\xed\xa0\x80shirt\"");
        c.push_back({"UTF-8-encoded surrogate", p, {"invalid_utf8"}, std::nullopt, std::nullopt});
    }
    {
        std::string p = job("J-bad-utf8-key").dump();
        const auto at = p.find("\"size\"");
        p.replace(at, 6, "\"si\x80ze\"");
        c.push_back({"invalid UTF-8 in a key", p, {"invalid_utf8"}, std::nullopt, std::nullopt});
    }
    return c;
}

}  // namespace

TEST_F(Intake, MalformedAndHostilePayloadsAreEachRejectedOnceWithReason) {
    auto cfg = make_config();
    cfg.max_payload_bytes = 1024 * 1024;  // room for the 100k-deep payloads (~200-600 KB)
    start_agent(cfg);
    const auto topics = cfg.topics();
    const auto cases = bad_cases(static_cast<std::size_t>(*cfg.max_payload_bytes));
    ASSERT_GE(cases.size(), 20u);

    // One at a time: a rejection without a readable job_id has no subject, so the n-th
    // job.rejected belongs to the n-th payload.
    std::size_t rejected_so_far = 0;
    auto is_rejected = [](const Event& e) { return e.type == "job.rejected"; };
    std::vector<std::string> silent;
    for (const auto& bc : cases) {
        SCOPED_TRACE("case: " + bc.name);
        const std::size_t before = cloud().event_count();
        cloud().publish_job(bc.payload);
        auto e = cloud().wait_event(is_rejected, 10s, before);
        if (!e) {
            silent.push_back(bc.name);
            ADD_FAILURE() << "no job.rejected for '" << bc.name << "'; agent running: " << agent().running();
            continue;
        }
        ++rejected_so_far;
        EXPECT_EQ(envelope_problems(*e, topics.source()), "") << e->raw;
        const std::string reason = e->data_str("reason");
        const std::string field = e->data_str("field");
        EXPECT_TRUE(bc.reasons.count(reason)) << "'" << bc.name << "': reason '" << reason << "'\n  event: " << e->raw;
        if (bc.fields) {
            bool ok = false;
            for (const auto& f : *bc.fields) ok = ok || (bc.field_prefix ? field.starts_with(f) : field == f);
            EXPECT_TRUE(ok) << "'" << bc.name << "': field '" << field << "'\n  event: " << e->raw;
        }
        EXPECT_FALSE(e->data_str("message").empty()) << "'" << bc.name << "': no human message\n  event: " << e->raw;
        if (bc.subject) {
            EXPECT_EQ(e->subject_or_empty(), *bc.subject) << e->raw;
        }
        // Nothing else for this payload: no accepted/duplicate event in between.
        for (const auto& other : cloud().events()) {
            if (other.index >= before && other.index != e->index && other.type != "job.rejected") {
                ADD_FAILURE() << "'" << bc.name << "' also produced " << other.raw;
            }
        }
    }

    // Still alive and working: a valid job is accepted.
    ASSERT_TRUE(agent().running()) << "agent died\n" << tail_lines(agent().log(), 40);
    accept_job("J-after-garbage");

    // Exactly one job.rejected per payload, no accepted job among them.
    cloud().settle();
    EXPECT_EQ(cloud().events_of("job.rejected").size(), cases.size()) << cloud().dump(80);
    EXPECT_EQ(cloud().events_of("job.accepted").size(), 1u) << cloud().dump(80);
    const auto rep = analyze_sequences(cloud().events());
    EXPECT_TRUE(rep.gap_free()) << rep.str();
}

TEST_F(Intake, RedeliveryIsDuplicateAndStoredOrderWins) {
    auto cfg = make_config();
    start_agent(cfg);

    cloud().publish_job(valid_job("J-dup-2", "ORD-DUP-A", "express").dump());
    ASSERT_TRUE(cloud().wait_event("job.accepted", "J-dup-2"));

    // Same payload again: duplicate, no conflict.
    const std::string same = valid_job("J-dup-2", "ORD-DUP-A", "express").dump();
    cloud().publish_job(same);
    auto d1 = cloud().wait_event("job.duplicate", "J-dup-2");
    ASSERT_TRUE(d1) << cloud().dump();
    ASSERT_TRUE(d1->data.contains("conflict")) << d1->raw;
    EXPECT_EQ(d1->data["conflict"], false) << d1->raw;
    EXPECT_EQ(d1->data_str("order_id"), "ORD-DUP-A") << d1->raw;

    // Same job_id, different order: duplicate with conflict; the stored order wins.
    json changed = valid_job("J-dup-2", "ORD-DUP-B", "economy");
    changed["product"]["sku"] = "HOODIE-RED-M";
    const std::size_t before = cloud().event_count();
    cloud().publish_job(changed.dump());
    auto d2 = cloud().wait_event([](const Event& e) { return e.type == "job.duplicate" && e.subject == "J-dup-2"; },
                                 kWait, before);
    ASSERT_TRUE(d2) << cloud().dump();
    EXPECT_EQ(d2->data.value("conflict", json()), true) << d2->raw;
    EXPECT_EQ(d2->data_str("order_id"), "ORD-DUP-A") << "the stored order must win: " << d2->raw;

    // The stored one is still the original: sending the original again is no conflict.
    const std::size_t before2 = cloud().event_count();
    cloud().publish_job(same);
    auto d3 = cloud().wait_event([](const Event& e) { return e.type == "job.duplicate" && e.subject == "J-dup-2"; },
                                 kWait, before2);
    ASSERT_TRUE(d3) << cloud().dump();
    EXPECT_EQ(d3->data.value("conflict", json()), false) << "the conflicting payload replaced the stored one: " << d3->raw;

    // Key order and whitespace are not a conflict (canonical comparison).
    const std::size_t before3 = cloud().event_count();
    cloud().publish_job(valid_job("J-dup-2", "ORD-DUP-A", "express").dump(4));
    auto d4 = cloud().wait_event([](const Event& e) { return e.type == "job.duplicate" && e.subject == "J-dup-2"; },
                                 kWait, before3);
    ASSERT_TRUE(d4) << cloud().dump();
    EXPECT_EQ(d4->data.value("conflict", json()), false) << "re-formatted JSON counted as a conflict: " << d4->raw;

    cloud().settle();
    EXPECT_EQ(cloud().events_for("J-dup-2", "job.accepted").size(), 1u) << cloud().dump();
    EXPECT_EQ(cloud().events_for("J-dup-2", "job.duplicate").size(), 4u) << cloud().dump();
    EXPECT_TRUE(cloud().events_for("J-dup-2", "job.rejected").empty()) << cloud().dump();
}

TEST_F(Intake, PoolJobsArriveThroughSharedSubscription) {
    auto cfg = make_config();
    cfg.pools = {"tees", "hoodies"};
    start_agent(cfg);  // waits for the $share subscriptions too
    const auto topics = cfg.topics();

    cloud().publish_pool_job("tees", valid_job("J-pool-tees").dump());
    cloud().publish_pool_job("hoodies", valid_job("J-pool-hoodies").dump());
    cloud().publish_job(valid_job("J-pool-direct").dump());
    for (const char* id : {"J-pool-tees", "J-pool-hoodies", "J-pool-direct"}) {
        auto e = cloud().wait_event("job.accepted", id);
        ASSERT_TRUE(e) << id << "\n" << cloud().dump();
        EXPECT_EQ(envelope_problems(*e, topics.source()), "") << e->raw;
    }
    cloud().settle();
    for (const char* id : {"J-pool-tees", "J-pool-hoodies", "J-pool-direct"})
        EXPECT_EQ(cloud().events_for(id).size(), 1u) << id << "\n" << cloud().dump();
}
