// Ordered, acknowledged delivery of journal events.
#include "pressline/agent/outbox.hpp"

#include <boost/asio/post.hpp>

#include "pressline/agent/log.hpp"

namespace pressline::agent {
namespace {
constexpr std::int64_t kDeleteBatch = 512;
constexpr auto kDeleteDelay = std::chrono::seconds(1);
constexpr auto kRetryDelay = std::chrono::milliseconds(500);
}  // namespace

Outbox::Outbox(boost::asio::io_context& io, boost::asio::thread_pool& workers, Journal& journal,
               int max_inflight)
    : io_(io), workers_(workers), journal_(journal), max_inflight_(max_inflight),
      delete_timer_(io), retry_timer_(io) {
    auto first = journal_.outbox_after(0, 1);
    acked_upto_ = first.empty() ? journal_.last_sequence() : first.front().seq - 1;
    deleted_upto_ = acked_upto_;
    next_seq_ = acked_upto_ + 1;
}

void Outbox::set_link(std::shared_ptr<MqttLink> link) {
    link_ = std::move(link);
    on_disconnected();
}

void Outbox::kick() { pump(); }

void Outbox::on_connected() {
    ++generation_;
    inflight_.clear();
    acked_ahead_.clear();
    next_seq_ = acked_upto_ + 1;
    pump();
}

void Outbox::on_disconnected() {
    ++generation_;
    inflight_.clear();
    acked_ahead_.clear();
    next_seq_ = acked_upto_ + 1;
}

std::int64_t Outbox::unacknowledged() const { return journal_.last_sequence() - acked_upto_; }

void Outbox::pump() {
    if (!link_ || !link_->connected()) return;
    while (static_cast<int>(inflight_.size()) < max_inflight_) {
        const auto room = static_cast<std::size_t>(max_inflight_) - inflight_.size();
        auto rows = journal_.outbox_after(next_seq_ - 1, room);
        for (auto& row : rows) {
            const auto gen = generation_;
            const auto seq = row.seq;
            bool queued = link_->publish(row.topic, row.payload, false,
                                         [w = weak_from_this(), gen, seq](bool ok) {
                                             if (auto self = w.lock()) self->on_done(gen, seq, ok);
                                         });
            if (!queued) {
                // Not connected after all, or paho's buffer is full: try again shortly.
                on_done(gen, seq, false);
                return;
            }
            inflight_.insert(seq);
            next_seq_ = seq + 1;
        }
        if (rows.size() < room) break;
    }
}

void Outbox::on_done(std::uint64_t generation, std::int64_t seq, bool ok) {
    if (ok) {
        // A PUBACK is the truth whatever connection it came from.
        if (generation == generation_) inflight_.erase(seq);
        if (seq > acked_upto_) {
            acked_ahead_.insert(seq);
            while (!acked_ahead_.empty() && *acked_ahead_.begin() == acked_upto_ + 1) {
                acked_upto_ = *acked_ahead_.begin();
                acked_ahead_.erase(acked_ahead_.begin());
            }
        }
        schedule_delete();
        pump();
        return;
    }
    if (generation != generation_) return;
    logger("outbox")->warn("publish failed seq={}; resending from seq={}", seq, acked_upto_ + 1);
    ++generation_;
    inflight_.clear();
    acked_ahead_.clear();
    next_seq_ = acked_upto_ + 1;
    if (retry_armed_) return;
    retry_armed_ = true;
    retry_timer_.expires_after(kRetryDelay);
    retry_timer_.async_wait([w = weak_from_this()](const boost::system::error_code& ec) {
        auto self = w.lock();
        if (!self || ec == boost::asio::error::operation_aborted) return;
        self->retry_armed_ = false;
        self->pump();
    });
}

void Outbox::schedule_delete() {
    if (acked_upto_ <= deleted_upto_) return;
    auto do_delete = [this] {
        const auto upto = acked_upto_;
        deleted_upto_ = upto;
        boost::asio::post(workers_, [&journal = journal_, upto] {
            try {
                journal.outbox_delete_upto(upto);
            } catch (const JournalError& e) {
                // Harmless: acknowledged events are sent again at most once more after a restart.
                logger("outbox")->warn("cannot delete acknowledged events upto={}: {}", upto, e.what());
            }
        });
    };
    if (acked_upto_ - deleted_upto_ >= kDeleteBatch) {
        do_delete();
        return;
    }
    if (delete_armed_) return;
    delete_armed_ = true;
    delete_timer_.expires_after(kDeleteDelay);
    delete_timer_.async_wait([w = weak_from_this(), do_delete](const boost::system::error_code& ec) {
        auto self = w.lock();
        if (!self || ec == boost::asio::error::operation_aborted) return;
        self->delete_armed_ = false;
        if (self->acked_upto_ > self->deleted_upto_) do_delete();
    });
}

void Outbox::flush_deletes() {
    if (acked_upto_ <= 0) return;
    try {
        journal_.outbox_delete_upto(acked_upto_);
        deleted_upto_ = acked_upto_;
    } catch (const JournalError& e) {
        logger("outbox")->warn("cannot delete acknowledged events: {}", e.what());
    }
}

}  // namespace pressline::agent
