// Paperwork: a job ticket for every attempt released to production, and one shipping label per
// order once every item of the order is ready to ship (QA passed, or printed where QA is not
// required), on the station's label printers (devices/label).
//
// Exactly once (docs/design.md "Labels and tickets"): every ticket and label is a journal row
// (PaperRow) recorded in the same transaction as the cause (the release of an attempt, the last
// item of an order becoming ready). Before its bytes go out the row is marked `sending`; after,
// `printed`. A row still `sending` after a restart is looked up on the printer where the
// transport keeps names (CUPS) and otherwise is `uncertain`: a label then holds the order's jobs
// (job.held, reason label_outcome_uncertain) for a person, a ticket is reported
// (ticket.failed, outcome uncertain). Nothing is printed again unless a `reprint` command with
// `what: label` or `ticket` asks for it. A printer that is not ready (paper out, head open,
// unresponsive, offline) is reported as device.state and asked again every labels.retry_s
// while something waits for it; an idle station sends nothing.
//
// Crash points for tests (PRESSLINE_CRASH_AT, see printing.hpp): paper_sending (row marked
// sending, nothing sent), paper_sent (sent, not yet recorded).
//
// Threads: the public methods run on the io_context thread. Documents are built on `workers`,
// printer calls run on `device_io`.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <nlohmann/json.hpp>

#include "pressline/agent/journal.hpp"
#include "pressline/config/config.hpp"

namespace pressline::agent {

struct PaperworkHooks {
    std::function<void()> events_appended;
    std::function<void(const std::string& device, const std::string& status_json)> device_status;
};

class Paperwork {
public:
    Paperwork(boost::asio::io_context& io, boost::asio::thread_pool& workers,
              boost::asio::thread_pool& device_io, Journal& journal, const config::Config& cfg,
              PaperworkHooks hooks);
    ~Paperwork();
    Paperwork(const Paperwork&) = delete;
    Paperwork& operator=(const Paperwork&) = delete;

    // Settles paperwork left `sending` by a previous run, then takes up what is pending.
    void start();
    void stop();
    // New paperwork may be in the journal (an attempt released, an order ready, a reprint).
    void changed();
    bool has_device(const std::string& device) const;
    void set_paused(const std::string& device, bool paused);

    nlohmann::json status() const;
    std::vector<std::pair<std::string, std::string>> device_statuses() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

// Inside the transaction that releases the first try of an attempt: records its ticket when
// labels.ticket_printer is set.
void record_ticket(Tx& tx, const std::string& job_id, int attempt, const config::Config& cfg);

// Inside the transaction in which a job's garment is done (printed without QA, QA passed, a
// person's decision): the job moves to `labeling`; when every item of its order is ready,
// order.ready_to_ship is appended and the label recorded — or, when the order has no shipping
// label to print or the station no shipping printer, the order's jobs complete.
void ready_to_ship(Tx& tx, const JobRow& job, const config::Config& cfg);

// The device-side name of a piece of paperwork: "pressline:ticket:{job_id}:{attempt}:{copy}",
// "pressline:label:{order_id}:{copy}".
std::string paper_name(const PaperRow& row);

}  // namespace pressline::agent
