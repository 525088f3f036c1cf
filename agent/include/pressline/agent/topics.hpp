// The MQTT topic names of the contract (docs/mqtt-api.md), derived from the config. Pure.
#pragma once

#include <string>
#include <vector>

#include "pressline/config/config.hpp"

namespace pressline::agent {

struct Topics {
    std::string jobs;      // {prefix}/{shop}/{station}/jobs
    std::string commands;  // {prefix}/{shop}/{station}/commands
    std::string events;    // {prefix}/{shop}/{station}/events
    std::string status;    // {prefix}/{shop}/{station}/status (retained)
    std::string device_status_prefix;  // {prefix}/{shop}/{station}/devices/ + {device}/status
    // $share/{shop}-{pool}/{prefix}/{shop}/pool/{pool}/jobs, one per pool
    std::vector<std::string> pool_subscriptions;
    std::string source;    // CloudEvents source: pressline://{shop}/{station}

    static Topics from(const config::Config& cfg);

    // Whether a message on `topic` is a job order (station or pool topic).
    bool is_jobs_topic(const std::string& topic) const;
};

}  // namespace pressline::agent
