// A private CUPS for one test: dbus-daemon, cupsd on 127.0.0.1 and one simulated IPP
// Everywhere printer (ippeveprinter) per queue, all under one directory. Wraps
// tests/fixtures/cups/cups.sh (found through fixtures_dir(), i.e. $PRESSLINE_FIXTURES_DIR);
// see that script for the files and the control files of the simulated printers.
//
// The daemons run in their own sessions (the script starts them with setsid), so they do not
// die with a crashed test: the destructor stops them; a killed test leaves them running until
// `cups.sh stop DIR`.
//
// Threads: not thread-safe; use from the test's main thread. Needs root (cupsd runs its
// backends as user lp).
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "pressline/testing/util.hpp"

namespace pressline::testing {

class CupsServer {
public:
    // Does not start anything. `printers` become both the queue names and the names of the
    // simulated printers.
    CupsServer(std::filesystem::path dir, std::vector<std::string> printers);
    ~CupsServer();  // stop()
    CupsServer(const CupsServer&) = delete;
    CupsServer& operator=(const CupsServer&) = delete;

    // cups.sh start: everything running, queues enabled and accepting. Throws
    // std::runtime_error with the script's output on failure.
    void start();
    // cups.sh stop: stops everything and waits for it to exit. Idempotent.
    void stop();
    bool started() const { return started_; }

    // "127.0.0.1:PORT" of cupsd (an Endpoint::server), and the port alone.
    std::string server() const;
    int port() const { return port_; }
    // ipp://localhost:PP/ipp/print of the simulated printer `name` (the queue's device URI).
    std::string printer_uri(const std::string& name) const;
    const std::filesystem::path& dir() const { return dir_; }
    const std::vector<std::string>& printers() const { return printers_; }
    std::filesystem::path printer_dir(const std::string& name) const;

    // Fault injection, read by the print command for every job (see cups.sh):
    // while a fault is set, the printer reports `reason` (e.g. "media-jam"; CUPS shows it as
    // "media-jam-warning") and the job in progress waits.
    void set_fault(const std::string& name, const std::string& reason);
    void clear_fault(const std::string& name);
    // Seconds each job takes to "print" (0: immediately).
    void set_delay(const std::string& name, double seconds);
    // While set, jobs fail at the printer (CUPS ends them canceled) and print nothing.
    void set_fail(const std::string& name, bool fail);
    // Marker levels the printer reports with its next job (one per ink: Black, Cyan, Magenta,
    // Yellow, White).
    void set_marker_levels(const std::string& name, const std::vector<int>& levels);

    // The documents the simulated printer `name` has printed, in print order
    // (DIR/printers/NAME/docs/NNNN-JOBNAME.EXT).
    std::vector<std::filesystem::path> documents(const std::string& name) const;
    bool wait_documents(const std::string& name, std::size_t n,
                        std::chrono::milliseconds timeout = kWait) const;
    // The IPP_* job attributes the printer received with document `index` (0-based), as
    // "NAME=value" lines (e.g. "IPP_COPIES=2"); "" if there is no such document.
    std::string received_attributes(const std::string& name, std::size_t index) const;

    // The number of IPP requests cupsd has logged (lines of access_log; AccessLogLevel all).
    std::size_t ipp_request_count() const;
    std::filesystem::path access_log() const;
    std::filesystem::path error_log() const;

    // The simulated printer is killed (with its print command) and started again on the same
    // port: what CUPS sees when a printer reboots mid-job.
    void restart_printer(const std::string& name);
    void stop_printer(const std::string& name);
    void start_printer(const std::string& name);
    // cupsd stopped (SIGTERM) and started again with the same port and state.
    void restart_cupsd();

private:
    std::string run(const std::vector<std::string>& args) const;
    static std::filesystem::path script();

    std::filesystem::path dir_;
    std::vector<std::string> printers_;
    int port_ = 0;
    bool started_ = false;
};

}  // namespace pressline::testing
