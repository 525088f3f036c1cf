// The label printer device: ZPL printers on USB, raw TCP (9100) or a CUPS raw queue, and PDF
// label printers behind a CUPS queue. Sends one document (a label or a ticket) at a time and
// says precisely how far it got, and reports the printer's state. It knows labels and printer
// states, nothing of jobs, the journal or MQTT.
//
// Threads: every method blocks on I/O (bounded by the settings' timeouts). Call from a worker
// thread, one call at a time per printer (the agent serialises them).
// Errors: values, never exceptions.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "pressline/devices/label/documents.hpp"

namespace pressline::drivers::usb {
class Context;
}

namespace pressline::devices::label {

// What the agent reports upstream (MQTT contract `device.state`). `unresponsive`: connected
// but not answering (a Zebra in media-out, ribbon-out or head-open may answer nothing);
// `offline`: no connection at all (refused, unplugged, unreachable).
enum class State { idle, printing, paused, offline, unresponsive, error };
std::string_view to_string(State s);

struct Status {
    State state = State::offline;
    std::vector<std::string> reasons;  // media-empty, paused, head-open, ribbon-out, ... (see
                                       // ZplStatus::reasons), offline, unresponsive
    std::string message;               // what failed or the printer's words
    bool operator==(const Status& o) const { return state == o.state && reasons == o.reasons; }
    bool ready() const { return state == State::idle || state == State::printing; }
};

enum class Language { zpl, pdf };
std::string_view to_string(Language l);

struct Settings {
    std::string name;
    std::string connection = "tcp";  // usb | tcp | cups
    Language language = Language::zpl;  // pdf only with connection cups
    // usb
    std::uint16_t vendor_id = 0, product_id = 0;
    std::string serial;
    // tcp
    std::string host;
    std::uint16_t port = 9100;
    // cups
    std::string server, queue;
    // ZPL status query: auto (~HQES, then ~HS if that gets no well-formed answer), hqes, hs,
    // none (the printer answers nothing: state from the connection alone)
    std::string status_query = "auto";
    std::chrono::milliseconds connect_timeout{3000};
    std::chrono::milliseconds write_timeout{10000};
    std::chrono::milliseconds status_timeout{2000};
    Calibration calibration;
};

// How far sending one document got.
enum class Delivery {
    delivered,   // the printer (or spooler) took all of it
    not_sent,    // provably nothing reached the printer: safe to send again
    uncertain,   // part or all may have reached it: never resend without a person
};
std::string_view to_string(Delivery d);

struct SendResult {
    Delivery delivery = Delivery::not_sent;
    std::string reason;   // when not delivered: offline, timeout, refused, interrupted...
    std::string message;  // names the printer, the transport and what failed
    std::size_t bytes = 0;          // bytes the transport accepted
    std::string device_job;         // CUPS job id, if any
};

class Printer {
public:
    virtual ~Printer() = default;
    virtual const Settings& settings() const = 0;
    const std::string& name() const { return settings().name; }
    // One status query (connecting if needed).
    virtual Status status() = 0;
    // Sends one complete document (ZPL or PDF per the settings). `job_name` names it where the
    // transport keeps names (CUPS: job-name, used by find()).
    virtual SendResult send(std::string_view document, const std::string& job_name) = 0;
    // After a restart: whether the transport still knows a document by its job name. CUPS:
    // delivered (found, any state) or not_sent (no such job). USB/TCP keep no names: uncertain.
    virtual SendResult find(const std::string& job_name) = 0;
};

// `usb` is needed (and must outlive the printer) when settings.connection is usb.
std::unique_ptr<Printer> make_printer(Settings settings, drivers::usb::Context* usb = nullptr);

}  // namespace pressline::devices::label
