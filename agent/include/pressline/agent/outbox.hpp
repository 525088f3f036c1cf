// The event outbox publisher: sends journal events to the broker in sequence order, QoS 1,
// keeping at most `max_inflight` unacknowledged, and deletes them from the journal in batches
// once the broker has acknowledged them. Nothing is removed before its PUBACK; after a
// disconnect everything unacknowledged is sent again (the cloud drops duplicates by sequence).
//
// Threads: every member runs on the io_context thread. Journal deletes go to `workers`.
#pragma once

#include <cstdint>
#include <memory>
#include <set>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "pressline/agent/journal.hpp"
#include "pressline/agent/mqtt_link.hpp"

namespace pressline::agent {

class Outbox : public std::enable_shared_from_this<Outbox> {
public:
    Outbox(boost::asio::io_context& io, boost::asio::thread_pool& workers, Journal& journal,
           int max_inflight);

    void set_link(std::shared_ptr<MqttLink> link);
    void set_max_inflight(int n) { max_inflight_ = n; }

    void kick();             // new events may be in the journal
    void on_connected();     // (re)start sending from the oldest unacknowledged event
    void on_disconnected();  // forget what is in flight; it is sent again on reconnect

    // Events the broker has not acknowledged yet.
    std::int64_t unacknowledged() const;
    // Deletes acknowledged events now (at shutdown; blocks on the journal).
    void flush_deletes();

private:
    void pump();
    void on_done(std::uint64_t generation, std::int64_t seq, bool ok);
    void schedule_delete();

    boost::asio::io_context& io_;
    boost::asio::thread_pool& workers_;
    Journal& journal_;
    std::shared_ptr<MqttLink> link_;
    int max_inflight_;
    std::uint64_t generation_ = 0;  // bumped on every disconnect or failure: stale results ignored
    std::int64_t next_seq_ = 1;     // next to send
    std::int64_t acked_upto_ = 0;   // every event <= this has been acknowledged
    std::int64_t deleted_upto_ = 0; // and every event <= this deleted (or being deleted)
    std::set<std::int64_t> inflight_;
    std::set<std::int64_t> acked_ahead_;  // acknowledged beyond a gap still in flight
    boost::asio::steady_timer delete_timer_;
    boost::asio::steady_timer retry_timer_;
    bool delete_armed_ = false;
    bool retry_armed_ = false;
};

}  // namespace pressline::agent
