// Topic names of the MQTT contract.
#include "pressline/agent/topics.hpp"

namespace pressline::agent {

Topics Topics::from(const config::Config& cfg) {
    Topics t;
    const auto& p = cfg.mqtt.topic_prefix;
    const auto& shop = cfg.station.shop;
    const auto base = p + "/" + shop + "/" + cfg.station.id;
    t.jobs = base + "/jobs";
    t.commands = base + "/commands";
    t.events = base + "/events";
    t.status = base + "/status";
    t.device_status_prefix = base + "/devices/";
    for (const auto& pool : cfg.station.pools)
        t.pool_subscriptions.push_back("$share/" + shop + "-" + pool + "/" + p + "/" + shop +
                                       "/pool/" + pool + "/jobs");
    t.source = "pressline://" + shop + "/" + cfg.station.id;
    return t;
}

bool Topics::is_jobs_topic(const std::string& topic) const {
    if (topic == jobs) return true;
    // Pool deliveries arrive with the plain topic, without the $share/{group}/ part.
    for (const auto& sub : pool_subscriptions) {
        const auto second_slash = sub.find('/', sizeof("$share/") - 1);
        if (second_slash != std::string::npos && sub.compare(second_slash + 1, std::string::npos, topic) == 0)
            return true;
    }
    return false;
}

}  // namespace pressline::agent
