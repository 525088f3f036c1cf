// Tickets and shipping labels (see paperwork.hpp and docs/design.md "Labels and tickets").
#include "pressline/agent/paperwork.hpp"

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>

#include "pressline/agent/log.hpp"
#include "pressline/assets/assets.hpp"
#include "pressline/devices/label/documents.hpp"
#include "pressline/devices/label/printer.hpp"
#include "pressline/drivers/usb.hpp"

namespace pressline::agent {

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace label = devices::label;
using json = nlohmann::json;

namespace {

json payload_of(const JobRow& row) {
    json j = json::parse(row.payload, nullptr, false);
    return j.is_object() ? j : json::object();
}

// The label's source: a carrier's file (zpl, pdf, png) or "rendered" from ship_to.
std::string label_source(const json& shipping) {
    if (shipping.contains("label") && shipping["label"].is_object())
        return shipping["label"].value("format", std::string("zpl"));
    return "rendered";
}

bool printer_takes(const config::LabelPrinter& p, const std::string& source) {
    if (source == "zpl") return p.language == "zpl";
    if (source == "png") return true;  // ZPL: as a ^GF graphic; PDF queues: as a PDF page
    if (source == "pdf") return p.language == "pdf";
    return true;  // rendered: ZPL or PDF
}

label::Calibration calibration_of(const config::LabelPrinter& p) {
    label::Calibration c;
    c.dpi = p.dpi;
    c.width_mm = p.width_mm;
    c.height_mm = p.height_mm;
    c.darkness = p.darkness;
    c.x_offset_mm = p.x_offset_mm;
    c.y_offset_mm = p.y_offset_mm;
    c.media = p.media == "black_mark" ? label::MediaType::black_mark
              : p.media == "continuous" ? label::MediaType::continuous
                                        : label::MediaType::gap;
    return c;
}

label::Settings settings_of(const config::LabelPrinter& p) {
    label::Settings s;
    s.name = p.name;
    s.connection = p.connection;
    s.language = p.language == "pdf" ? label::Language::pdf : label::Language::zpl;
    s.vendor_id = static_cast<std::uint16_t>(p.vendor_id);
    s.product_id = static_cast<std::uint16_t>(p.product_id);
    s.serial = p.serial;
    s.host = p.host;
    s.port = static_cast<std::uint16_t>(p.port);
    s.server = p.server;
    s.queue = p.queue;
    s.status_query = p.status_query;
    s.connect_timeout = std::chrono::milliseconds(p.connect_timeout_ms);
    s.write_timeout = std::chrono::milliseconds(p.write_timeout_ms);
    s.status_timeout = std::chrono::milliseconds(p.status_timeout_ms);
    s.calibration = calibration_of(p);
    return s;
}

std::string key_of(const PaperRow& r) {
    return fmt::format("{}/{}/{}/{}", r.kind, r.ref, r.attempt, r.copy);
}

label::Address address_of(const json& a) {
    label::Address out;
    for (auto [k, dst] : {std::pair{"name", &out.name}, {"company", &out.company}, {"line1", &out.line1},
                          {"line2", &out.line2}, {"city", &out.city}, {"region", &out.region},
                          {"postal_code", &out.postal_code}, {"country", &out.country}, {"phone", &out.phone}})
        if (a.contains(k) && a[k].is_string()) *dst = a[k].get<std::string>();
    return out;
}

std::string placement_text(const json& print) {
    const json& p = print.value("placement", json::object());
    return fmt::format("{}, {:g} mm wide, x {:+g} mm, y {:g} mm", p.value("location", std::string("front")),
                       p.value("width_mm", 0.0), p.value("offset_x_mm", 0.0), p.value("offset_y_mm", 0.0));
}

// Completes (job.completed) every job of the order that waits for its label.
void complete_order(Tx& tx, const std::string& order_id, const std::vector<std::string>& jobs,
                    const json& extra) {
    for (const auto& id : jobs) {
        auto row = tx.job(id);
        if (!row || is_terminal(row->state)) continue;
        if (row->state == JobState::held) {
            // Held for its label; not a job held while a reprinted garment is on a printer.
            bool garment_open = false;
            for (const auto& t : tx.tries(id, row->attempt))
                garment_open = garment_open || t.state == "recorded" || t.state == "created" || t.state == "handed_over";
            if (garment_open) continue;
            tx.transition(id, JobState::labeling, "label printed", {});
        }
        else if (row->state != JobState::labeling) continue;
        json data{{"order_id", order_id}, {"attempt", std::max(1, row->attempt)}};
        if (extra.is_object()) data.update(extra);
        tx.transition(id, JobState::completed, "", {"job.completed", id, data});
    }
}

// Holds every job of the order that waits for its label.
void hold_order(Tx& tx, const std::string& order_id, const std::vector<std::string>& jobs,
                const std::string& reason, const std::string& message) {
    for (const auto& id : jobs) {
        auto row = tx.job(id);
        if (!row || row->state != JobState::labeling) continue;
        tx.transition(id, JobState::held, reason,
                      {"job.held", id,
                       {{"order_id", order_id}, {"attempt", std::max(1, row->attempt)},
                        {"reason", reason}, {"message", message}}});
    }
}

}  // namespace

std::string paper_name(const PaperRow& row) {
    if (row.kind == "ticket") return fmt::format("pressline:ticket:{}:{}:{}", row.ref, row.attempt, row.copy);
    return fmt::format("pressline:label:{}:{}", row.ref, row.copy);
}

void record_ticket(Tx& tx, const std::string& job_id, int attempt, const config::Config& cfg) {
    if (cfg.labels.ticket_printer.empty()) return;
    for (const auto& p : tx.papers("ticket", job_id))
        if (p.attempt == attempt) return;  // this attempt has its ticket (a failover try)
    tx.insert_paper("ticket", job_id, attempt, job_id, cfg.labels.ticket_printer);
}

void ready_to_ship(Tx& tx, const JobRow& job, const config::Config& cfg) {
    if (job.state != JobState::labeling) tx.transition(job.job_id, JobState::labeling, "", {});
    const json payload = payload_of(job);
    const int items = std::max(1, payload.value("order_items", 1));
    const auto ready = tx.mark_order_item_ready(job.order_id, job.job_id);
    if (static_cast<int>(ready.size()) < items) return;
    if (const auto labels = tx.papers("label", job.order_id); !labels.empty()) {
        // A late item (order_items too small, or an item reprinted after the label): the order
        // was announced once. With its label printed (or none to print) the job is done; while
        // the label is pending or sending, settle() completes it with the others; after a
        // failed or uncertain label it waits with them for a reprint of the label.
        for (const auto& l : labels)
            if (l.state == "printed" || l.state == "none") {
                complete_order(tx, job.order_id, {job.job_id},
                               l.state == "none" ? json{{"label", l.reason}} : json::object());
                break;
            }
        return;
    }
    const json shipping = payload.value("shipping", json::object());
    const std::string source = label_source(shipping);
    const bool has_label = shipping.contains("label") || !shipping.value("tracking_number", std::string()).empty();
    json data{{"order_id", job.order_id}, {"jobs", ready}, {"items", items}};
    std::string printer;
    if (has_label) {
        for (const auto& name : cfg.labels.shipping_printers)
            if (const auto* p = cfg.label_printer(name); p && printer_takes(*p, source)) {
                printer = name;
                break;
            }
        data["label"] = printer.empty() ? (cfg.labels.shipping_printers.empty() ? "not_configured" : "no_printer")
                                        : "queued";
        if (!printer.empty()) {
            data["printer"] = printer;
            data["label_source"] = source;
        }
    } else {
        data["label"] = "none";
    }
    tx.append({"order.ready_to_ship", job.order_id, data});
    if (!printer.empty()) {
        tx.insert_paper("label", job.order_id, 0, job.job_id, printer);
        return;
    }
    // No label to print: a row still marks the order as announced (once per order).
    const auto marker = tx.insert_paper("label", job.order_id, 0, job.job_id, "");
    if (has_label && !cfg.labels.shipping_printers.empty()) {
        tx.update_paper(marker, "failed", "no_printer");
        hold_order(tx, job.order_id, ready, "label_no_printer",
                   fmt::format("no printer in labels.shipping_printers takes a {} label", source));
    } else {
        tx.update_paper(marker, "none", data["label"].get<std::string>());
        complete_order(tx, job.order_id, ready, {{"label", data["label"]}});
    }
}

struct Paperwork::Impl : std::enable_shared_from_this<Paperwork::Impl> {
    struct Device {
        config::LabelPrinter cfg;
        std::shared_ptr<label::Printer> dev;
        label::Status status;
        bool status_known = false;
        bool busy = false;
        bool paused = false;
        bool reconciled = false;
        std::unique_ptr<asio::steady_timer> timer;
        std::deque<PaperRow> queue;
    };

    asio::io_context& io;
    asio::thread_pool& workers;
    asio::thread_pool& device_io;
    Journal& journal;
    config::Config cfg;
    PaperworkHooks hooks;
    std::unique_ptr<drivers::usb::Context> usb;
    std::unique_ptr<assets::Store> store;  // carrier labels
    std::map<std::string, Device> devices;
    std::set<std::string> known;  // keys of rows queued or in hand
    bool stopping = false;
    // Seen by device_io tasks: once set, nothing new is sent, and a send already under way
    // records its own outcome (the io_context may not run its handler any more).
    std::atomic<bool> halt{false};
    bool started = false;
    std::unique_ptr<asio::steady_timer> reread_timer;  // after a failed read of open paperwork

    Impl(asio::io_context& io_, asio::thread_pool& w, asio::thread_pool& dio, Journal& j,
         const config::Config& c, PaperworkHooks h)
        : io(io_), workers(w), device_io(dio), journal(j), cfg(c), hooks(std::move(h)) {
        bool wants_usb = false;
        for (const auto& p : cfg.label_printers) wants_usb = wants_usb || p.connection == "usb";
        if (wants_usb) {
            try {
                usb = std::make_unique<drivers::usb::Context>();
            } catch (const std::exception& e) {
                logger("labels")->error("USB unavailable, USB label printers stay offline: {}", e.what());
            }
        }
        if (!cfg.label_printers.empty()) {
            assets::FetchPolicy fp;
            fp.allowed_hosts = cfg.assets.allowed_hosts;
            fp.allow_private_addresses = cfg.assets.allow_private_addresses;
            fp.file_root = cfg.assets.file_root;
            fp.ca_file = cfg.assets.ca_file;
            fp.max_bytes = 20 * 1024 * 1024;
            fp.connect_timeout = std::chrono::seconds(cfg.assets.connect_timeout_s);
            fp.total_timeout = std::chrono::seconds(cfg.assets.timeout_s);
            store = std::make_unique<assets::Store>(cfg.storage.state_dir / "label-assets", 256LL * 1024 * 1024, fp);
        }
        for (const auto& p : cfg.label_printers) {
            Device d;
            d.cfg = p;
            d.dev = label::make_printer(settings_of(p), usb.get());
            d.timer = std::make_unique<asio::steady_timer>(io);
            d.paused = journal.meta("paused:" + p.name).value_or("0") == "1";
            devices.emplace(p.name, std::move(d));
        }
    }

    void kick_outbox() {
        if (hooks.events_appended) asio::post(io, hooks.events_appended);
    }

    // One internal transaction (any thread); false (logged) when it could not commit.
    bool commit(const char* what, const std::string& key, const std::function<void(Tx&)>& fn) {
        try {
            journal.transact(Admission::internal, fn);
            kick_outbox();
            return true;
        } catch (const std::exception& e) {
            logger("labels")->error("journal: cannot record {} {}: {}", what, key, e.what());
            return false;
        }
    }

    // ---- start-up and intake of new rows -----------------------------------------------------
    void start() {
        started = true;
        // Jobs printed without QA before paperwork existed (a schema 1 journal) go on to their
        // order's label now; each in its own transaction, like a fresh job.printed would.
        try {
            for (const auto& job : journal.jobs_in_state(JobState::printed)) {
                const json payload = payload_of(job);
                if (payload.value("qa", json::object()).value("required", true)) continue;
                commit("ready_to_ship", job.job_id, [&](Tx& tx) {
                    auto row = tx.job(job.job_id);
                    if (row && row->state == JobState::printed) ready_to_ship(tx, *row, cfg);
                });
            }
        } catch (const std::exception& e) {
            logger("labels")->error("journal: cannot read printed jobs: {}", e.what());
        }
        std::vector<PaperRow> rows;
        try {
            rows = journal.open_papers();
        } catch (const std::exception& e) {
            logger("labels")->error("journal: cannot read open paperwork: {}", e.what());
        }
        std::map<std::string, std::vector<PaperRow>> sending;
        for (const auto& r : rows) {
            if (r.state == "sending") sending[r.device].push_back(r);
        }
        for (auto& [name, d] : devices) {
            auto it = sending.find(name);
            reconcile(d, it == sending.end() ? std::vector<PaperRow>{} : it->second);
        }
        for (const auto& r : rows)
            if (r.state == "sending" && !devices.count(r.device)) orphan(r);
        take_up(rows);
    }

    // A row for a printer that is not configured (any more): reported, never guessed.
    void orphan(const PaperRow& r) {
        if (known.count(key_of(r))) return;
        known.insert(key_of(r));
        const std::string msg = fmt::format("label printer '{}' is not configured", r.device);
        logger("labels")->warn("{} {} cannot be printed: {}", r.kind, paper_name(r), msg);
        settle(r, r.state == "sending" ? label::Delivery::uncertain : label::Delivery::not_sent, "not_configured",
               msg, {}, true);
    }

    void take_up(const std::vector<PaperRow>& rows) {
        for (const auto& r : rows) {
            if (r.state != "pending" || known.count(key_of(r))) continue;
            auto it = devices.find(r.device);
            if (it == devices.end()) {
                orphan(r);
                continue;
            }
            known.insert(key_of(r));
            it->second.queue.push_back(r);
        }
        for (auto& [name, d] : devices) pump(d);
    }

    void changed() {
        if (!started || stopping) return;
        std::vector<PaperRow> rows;
        try {
            rows = journal.open_papers();
        } catch (const std::exception& e) {
            // Nothing else may come to look again soon (a quiet station): look again ourselves.
            logger("labels")->error("journal: cannot read open paperwork (again in {} s): {}", cfg.labels.retry_s,
                                    e.what());
            if (!reread_timer) reread_timer = std::make_unique<asio::steady_timer>(io);
            reread_timer->expires_after(std::chrono::seconds(cfg.labels.retry_s));
            reread_timer->async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
                if (!ec) self->changed();
            });
            return;
        }
        take_up(rows);
    }

    // Rows left `sending`: CUPS may know them by name; USB and TCP cannot tell.
    void reconcile(Device& d, std::vector<PaperRow> rows) {
        auto self = shared_from_this();
        const std::string name = d.cfg.name;
        for (const auto& r : rows) known.insert(key_of(r));
        d.busy = true;
        asio::post(device_io, [self, name, rows, dev = d.dev] {
            std::vector<std::pair<PaperRow, label::SendResult>> found;
            for (const auto& r : rows) found.emplace_back(r, dev->find(paper_name(r)));
            auto st = dev->status();
            asio::post(self->io, [self, name, found = std::move(found), st] {
                auto& dd = self->devices.at(name);
                std::vector<PaperRow> again;  // the spooler could not be asked (yet)
                for (const auto& [r, res] : found) {
                    if (res.delivery == label::Delivery::uncertain && res.reason == "offline" &&
                        dd.cfg.connection == "cups") {
                        again.push_back(r);
                        continue;
                    }
                    logger("labels")->info("after restart {} {} on {}: {}", r.kind, paper_name(r), name,
                                           label::to_string(res.delivery));
                    if (res.delivery == label::Delivery::not_sent) {
                        self->known.erase(key_of(r));
                        self->commit("paperwork", paper_name(r), [&](Tx& tx) {
                            tx.update_paper(r, "pending", "not found on the printer after a restart");
                        });
                        PaperRow p = r;
                        p.state = "pending";
                        self->known.insert(key_of(p));
                        dd.queue.push_front(p);
                    } else {
                        self->settle(r, res.delivery, res.delivery == label::Delivery::uncertain ? "restart" : "",
                                     res.delivery == label::Delivery::uncertain
                                         ? fmt::format("the agent stopped while sending to {}; {}", name, res.message)
                                         : res.message,
                                     res.device_job, true);
                    }
                }
                self->note_status(dd, st);
                dd.busy = false;
                if (!again.empty()) {
                    // After a power cut the agent may start before cupsd: ask again later
                    // instead of calling a print that CUPS knows about uncertain.
                    logger("labels")->warn("{}: cannot look up {} row(s) left sending; asking again in {} s",
                                           name, again.size(), self->cfg.labels.retry_s);
                    if (self->stopping) return;
                    dd.timer->expires_after(std::chrono::seconds(self->cfg.labels.retry_s));
                    dd.timer->async_wait([self, name, again](const boost::system::error_code& ec) {
                        if (!ec && !self->stopping) self->reconcile(self->devices.at(name), again);
                    });
                    return;
                }
                dd.reconciled = true;
                self->pump(dd);
            });
        });
    }

    // ---- one row at a time per printer -------------------------------------------------------
    void pump(Device& d) {
        if (stopping || d.busy || d.paused || d.queue.empty() || !d.reconciled) return;
        d.busy = true;
        const PaperRow row = d.queue.front();
        auto self = shared_from_this();
        const std::string name = d.cfg.name;
        asio::post(workers, [self, name, row] {
            auto doc = self->build(row, self->devices.at(name).cfg);
            asio::post(self->io, [self, name, row, doc = std::move(doc)] { self->built(name, row, doc); });
        });
    }

    void built(const std::string& name, const PaperRow& row, const label::Result<std::string>& doc) {
        auto& d = devices.at(name);
        if (stopping) return;
        if (const auto* p = std::get_if<label::Problem>(&doc); p && p->reason == "journal") {
            logger("labels")->error("{} {}: cannot read the journal ({}); trying again in {} s", row.kind,
                                    paper_name(row), p->message, cfg.labels.retry_s);
            d.busy = false;
            return retry_later(d);
        }
        if (const auto* p = std::get_if<label::Problem>(&doc)) {
            d.queue.pop_front();
            known.erase(key_of(row));
            settle(row, label::Delivery::not_sent, p->reason, p->message, {}, false);
            d.busy = false;
            return pump(d);
        }
        auto self = shared_from_this();
        asio::post(device_io, [self, name, row, doc = std::get<std::string>(doc), dev = d.dev] {
            auto st = dev->status();
            if (!st.ready()) {
                asio::post(self->io, [self, name, st] { self->not_ready(name, st); });
                return;
            }
            if (self->halt) return;  // stopping: the row stays pending for the next start
            // Recorded before the bytes go out: a crash from here on is never a blind resend.
            if (!self->commit("paperwork", paper_name(row), [&](Tx& tx) { tx.update_paper(row, "sending"); })) {
                asio::post(self->io, [self, name, st] { self->not_ready(name, st); });
                return;
            }
            crash_point("paper_sending");
            auto res = dev->send(doc, paper_name(row));
            crash_point("paper_sent");
            if (self->halt) {
                // Shutting down: record the outcome here (journal work is thread-safe), so a
                // label that printed is not found "sending" and called uncertain next time.
                if (res.delivery == label::Delivery::not_sent)
                    self->commit("paperwork", paper_name(row), [&](Tx& tx) { tx.update_paper(row, "pending", res.reason); });
                else
                    self->settle(row, res.delivery, res.reason, res.message, res.device_job, false, res.bytes);
                return;
            }
            if (res.delivery != label::Delivery::delivered) st = dev->status();
            asio::post(self->io, [self, name, row, res, st] { self->sent(name, row, res, st); });
        });
    }

    void not_ready(const std::string& name, const label::Status& st) {
        auto& d = devices.at(name);
        d.busy = false;
        note_status(d, st);
        retry_later(d);
    }

    void retry_later(Device& d) {
        if (stopping) return;
        auto self = shared_from_this();
        const std::string name = d.cfg.name;
        d.timer->expires_after(std::chrono::seconds(cfg.labels.retry_s));
        d.timer->async_wait([self, name](const boost::system::error_code& ec) {
            if (!ec) self->pump(self->devices.at(name));
        });
    }

    void sent(const std::string& name, const PaperRow& row, const label::SendResult& res, const label::Status& st) {
        auto& d = devices.at(name);
        d.busy = false;
        note_status(d, st);
        if (res.delivery == label::Delivery::not_sent) {
            logger("labels")->warn("{} {} not sent to {} ({}): {}; trying again in {} s", row.kind, paper_name(row), name,
                                   res.reason, res.message, cfg.labels.retry_s);
            commit("paperwork", paper_name(row), [&](Tx& tx) { tx.update_paper(row, "pending", res.reason); });
            return retry_later(d);
        }
        d.queue.pop_front();
        known.erase(key_of(row));
        settle(row, res.delivery, res.reason, res.message, res.device_job, false, res.bytes);
        pump(d);
    }

    // Records the outcome of a row: printed, uncertain, or failed (a document that cannot be
    // made, or a printer that does not exist).
    void settle(const PaperRow& row, label::Delivery delivery, const std::string& reason,
                const std::string& message, const std::string& device_job, bool from_restart,
                std::size_t bytes = 0) {
        const bool label_row = row.kind == "label";
        const std::string state = delivery == label::Delivery::delivered ? "printed"
                                  : delivery == label::Delivery::uncertain ? "uncertain"
                                                                           : "failed";
        auto log = logger("labels");
        commit("paperwork", paper_name(row), [&](Tx& tx) {
            tx.update_paper(row, state, reason, device_job);
            auto job = tx.job(row.job_id);
            const std::string order_id = job ? job->order_id : row.ref;
            std::vector<std::string> jobs;
            if (label_row) jobs = tx.mark_order_item_ready(order_id, row.job_id);
            if (delivery == label::Delivery::delivered) {
                json data{{"order_id", order_id}, {"printer", row.device}, {"copy", row.copy},
                          {"device_job_name", paper_name(row)}};
                if (bytes) data["bytes"] = bytes;
                if (!device_job.empty()) data["device_job"] = device_job;
                if (from_restart) data["confirmed_after_restart"] = true;
                if (label_row) {
                    data["jobs"] = jobs;
                    if (job) {
                        const json shipping = payload_of(*job).value("shipping", json::object());
                        data["label_source"] = label_source(shipping);
                        if (auto t = shipping.value("tracking_number", std::string()); !t.empty())
                            data["tracking_number"] = t;
                    }
                    tx.append({"label.printed", order_id, data});
                    complete_order(tx, order_id, jobs, {});
                } else {
                    data["attempt"] = row.attempt;
                    data["code"] = label::ticket_code(row.ref, row.attempt);
                    tx.append({"ticket.printed", row.ref, data});
                }
            } else if (label_row) {
                // Reported whether or not jobs wait for it (a reprinted copy has none left).
                tx.append({"label.failed", order_id,
                           {{"order_id", order_id}, {"copy", row.copy}, {"printer", row.device},
                            {"outcome", state}, {"reason", reason}, {"message", message}, {"jobs", jobs}}});
                hold_order(tx, order_id, jobs,
                           delivery == label::Delivery::uncertain ? "label_outcome_uncertain" : "label_failed",
                           message);
            } else {
                tx.append({"ticket.failed", row.ref,
                           {{"order_id", order_id}, {"attempt", row.attempt}, {"copy", row.copy},
                            {"printer", row.device}, {"outcome", state}, {"reason", reason}, {"message", message}}});
            }
        });
        if (delivery == label::Delivery::delivered)
            log->info("{} printed {} on {}", row.kind, paper_name(row), row.device);
        else
            log->warn("{} {} {} on {}: reason={} message=\"{}\"", row.kind, paper_name(row), state, row.device,
                      reason, message);
    }

    // ---- documents (worker thread) ---------------------------------------------------------
    label::Result<std::string> build(const PaperRow& row, const config::LabelPrinter& p) {
        std::optional<JobRow> job;
        try {
            job = journal.job(row.job_id);
        } catch (const std::exception& e) {
            return label::Problem{"journal", e.what()};
        }
        if (!job || job->payload.empty())
            return label::Problem{"job_missing", fmt::format("job {} is no longer in the journal", row.job_id)};
        const json payload = payload_of(*job);
        auto cal = calibration_of(p);
        const bool zpl = p.language == "zpl";
        if (row.kind == "ticket") {
            cal.width_mm = cfg.labels.ticket_width_mm;
            cal.height_mm = cfg.labels.ticket_height_mm;
            label::Ticket t;
            t.job_id = job->job_id;
            t.order_id = job->order_id;
            t.attempt = row.attempt;
            const json product = payload.value("product", json::object());
            const json print = payload.value("print", json::object());
            t.sku = product.value("sku", std::string());
            t.product_type = product.value("type", std::string());
            t.size = product.value("size", std::string());
            t.garment_color = product.value("garment_color", std::string());
            t.placement = placement_text(print);
            t.platen = print.value("platen", std::string());
            t.priority = payload.value("priority", std::string("standard"));
            t.due_by = payload.value("due_by", std::string());
            try {
                for (const auto& tr : journal.tries(job->job_id))
                    if (tr.attempt == row.attempt) {
                        t.device = tr.device;
                        break;
                    }
            } catch (const std::exception&) {
            }
            // The small copy written with the reference (jobs prepared by older versions: the
            // reference itself, ~0.4 s to decode for 11 MP).
            const fs::path dir = cfg.storage.state_dir / "work" / job->job_id;
            std::ifstream in(fs::exists(dir / "thumbnail.png") ? dir / "thumbnail.png" : dir / "reference.png",
                             std::ios::binary);
            if (in) t.thumbnail_png.assign(std::istreambuf_iterator<char>(in), {});
            return zpl ? label::zpl_ticket(t, cal) : label::pdf_ticket(t, cal);
        }
        const json shipping = payload.value("shipping", json::object());
        const std::string source = label_source(shipping);
        if (source != "rendered") {
            const json& l = shipping["label"];
            auto got = store->get(l.value("uri", std::string()), l.value("sha256", std::string()),
                                  assets::Content::document);
            if (auto* pr = std::get_if<assets::Problem>(&got))
                return label::Problem{"label_" + pr->reason, pr->message};
            const auto& asset = std::get<assets::Asset>(got);
            std::ifstream in(asset.path, std::ios::binary);
            std::string bytes((std::istreambuf_iterator<char>(in)), {});
            if (source == "zpl") return label::zpl_calibrated(bytes, cal);
            if (source == "png")
                return zpl ? label::zpl_from_png({bytes.begin(), bytes.end()}, cal)
                           : label::pdf_from_png({bytes.begin(), bytes.end()}, cal);
            if (source == "pdf") return bytes;
            return label::Problem{"invalid_field", fmt::format("shipping.label.format '{}' is not zpl, pdf or png", source)};
        }
        label::ShippingLabel s;
        s.order_id = job->order_id;
        s.ship_to = address_of(shipping.value("ship_to", json::object()));
        const auto& f = cfg.labels.ship_from;
        s.ship_from = {f.name, f.company, f.line1, f.line2, f.city, f.region, f.postal_code, f.country, f.phone};
        s.carrier = shipping.value("carrier", std::string());
        s.service = shipping.value("service", std::string());
        s.tracking_number = shipping.value("tracking_number", std::string());
        return zpl ? label::zpl_shipping_label(s, cal) : label::pdf_shipping_label(s, cal);
    }

    // ---- device state ------------------------------------------------------------------------
    void note_status(Device& d, const label::Status& st) {
        if (d.status_known && d.status == st) return;
        // As for DTG printers: the first state seen is an event only when it is not idle.
        const bool quiet = !d.status_known && st.state == label::State::idle;
        d.status = st;
        d.status_known = true;
        const json data = device_json(d);
        logger("labels")->info("label printer {} {} reasons=[{}]{}", d.cfg.name, label::to_string(st.state),
                               fmt::join(st.reasons, ","), st.message.empty() ? "" : " message=\"" + st.message + "\"");
        if (!quiet)
            commit("device.state", d.cfg.name, [&](Tx& tx) { tx.append({"device.state", std::nullopt, data}); });
        publish_status(d);
    }

    json device_json(const Device& d) const {
        json data{{"device", d.cfg.name}, {"kind", "label"}, {"state", std::string(label::to_string(d.status.state))},
                  {"reasons", d.status.reasons}, {"paused_by_command", d.paused}};
        if (!d.status.message.empty()) data["message"] = d.status.message;
        return data;
    }

    // The retained device status (also after pause_device / resume_device, which are no events).
    void publish_status(const Device& d) {
        if (!hooks.device_status || !d.status_known) return;
        json j = device_json(d);
        j["time"] = format_time(std::chrono::system_clock::now());
        hooks.device_status(d.cfg.name, j.dump());
    }

    json status() const {
        json out = json::array();
        for (const auto& [name, d] : devices) {
            json j{{"name", name}, {"connection", d.cfg.connection}, {"language", d.cfg.language},
                   {"state", d.status_known ? std::string(label::to_string(d.status.state)) : "unknown"},
                   {"reasons", d.status.reasons}, {"waiting", d.queue.size()}, {"paused", d.paused}};
            out.push_back(std::move(j));
        }
        return out;
    }
};

Paperwork::Paperwork(asio::io_context& io, asio::thread_pool& workers, asio::thread_pool& device_io,
                     Journal& journal, const config::Config& cfg, PaperworkHooks hooks)
    : impl_(std::make_shared<Impl>(io, workers, device_io, journal, cfg, std::move(hooks))) {}

Paperwork::~Paperwork() { stop(); }

void Paperwork::start() { impl_->start(); }

void Paperwork::stop() {
    impl_->stopping = true;
    impl_->halt = true;
    for (auto& [name, d] : impl_->devices) d.timer->cancel();
    if (impl_->reread_timer) impl_->reread_timer->cancel();
}

void Paperwork::changed() { impl_->changed(); }

bool Paperwork::has_device(const std::string& device) const { return impl_->devices.count(device) != 0; }

void Paperwork::set_paused(const std::string& device, bool paused) {
    auto it = impl_->devices.find(device);
    if (it == impl_->devices.end()) return;
    it->second.paused = paused;
    impl_->publish_status(it->second);
    if (!paused) impl_->pump(it->second);
}

nlohmann::json Paperwork::status() const { return impl_->status(); }

std::vector<std::pair<std::string, std::string>> Paperwork::device_statuses() const {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [name, d] : impl_->devices)
        if (d.status_known) out.emplace_back(name, impl_->device_json(d).dump());
    return out;
}

}  // namespace pressline::agent
