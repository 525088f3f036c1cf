// The order the intake benchmarks send: a realistic order (~1 KiB) with a unique job_id.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace pressline::bench {

inline std::string make_order(const std::string& job_id, int i, std::int64_t sent_ns) {
    static const char* colors[] = {"black", "white", "navy", "heather_grey", "red"};
    static const char* prios[] = {"standard", "express", "standard", "economy"};
    nlohmann::ordered_json o = {
        {"job_id", job_id},
        {"order_id", "ORD-" + job_id},
        {"order_items", 1},
        {"created_at", "2026-11-26T10:00:00Z"},
        {"priority", prios[i % 4]},
        {"due_by", "2026-11-28T16:00:00Z"},
        {"product", {{"sku", "TEE-BLK-L"}, {"type", "tshirt"}, {"garment_color", colors[i % 5]}, {"size", "L"}}},
        {"print",
         {{"method", "dtg"},
          {"artwork",
           {{"uri", "https://assets.example.com/a/bench/" + std::to_string(i % 97) + ".png"},
            {"sha256", "9f2c4e1b7a3d5f60812c4e9b7a3d5f60812c4e9b7a3d5f60812c4e9b7a3d5f60"},
            {"dpi", 300}}},
          {"placement", {{"location", "front"}, {"width_mm", 280}, {"offset_x_mm", 0}, {"offset_y_mm", 75}}},
          {"platen", "16x20"},
          {"options", {{"white_underbase", true}, {"highlight_white", true}, {"quality", "standard"}}}}},
        {"qa", {{"required", true}}},
        {"shipping",
         {{"ship_to",
           {{"name", "Bench Customer " + std::to_string(i)},
            {"line1", "1 Benchmark Road"},
            {"city", "Testville"},
            {"postal_code", "00000"},
            {"country", "US"}}},
          {"carrier", "usps"},
          {"service", "ground_advantage"},
          {"tracking_number", "9400" + std::to_string(100000000 + i)}}},
        {"bench_sent_ns", sent_ns}};
    return o.dump();
}

}  // namespace pressline::bench
