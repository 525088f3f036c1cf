// Private CUPS for tests (see cups.hpp).
#include "pressline/testing/cups.hpp"

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <system_error>

#include "pressline/testing/process.hpp"

namespace pressline::testing {

namespace fs = std::filesystem;

CupsServer::CupsServer(fs::path dir, std::vector<std::string> printers)
    : dir_(std::move(dir)), printers_(std::move(printers)) {
    fs::create_directories(dir_);
}

CupsServer::~CupsServer() {
    try {
        stop();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "CupsServer: stop failed: %s\n", e.what());
    }
}

fs::path CupsServer::script() { return fixtures_dir() / "cups" / "cups.sh"; }

std::string CupsServer::run(const std::vector<std::string>& args) const {
    std::vector<std::string> argv{script().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run_command(argv, 60s);
    if (r.timed_out || r.status.code() != 0) {
        std::string cmd;
        for (const auto& a : args) cmd += " " + a;
        throw std::runtime_error("cups.sh" + cmd + " failed (" + (r.timed_out ? "timeout" : r.status.str()) +
                                 "): " + r.err + r.out);
    }
    return r.out;
}

void CupsServer::start() {
    if (started_) return;
    std::vector<std::string> args{"start", dir_.string()};
    args.insert(args.end(), printers_.begin(), printers_.end());
    const std::string out = run(args);
    started_ = true;
    for (const auto& line : split_lines(out))
        if (line.starts_with("CUPS_SERVER=127.0.0.1:")) port_ = std::stoi(line.substr(22));
    if (port_ == 0) throw std::runtime_error("cups.sh start printed no CUPS_SERVER: " + out);
}

void CupsServer::stop() {
    if (!started_) return;
    started_ = false;
    run({"stop", dir_.string()});
}

std::string CupsServer::server() const { return "127.0.0.1:" + std::to_string(port_); }

fs::path CupsServer::printer_dir(const std::string& name) const { return dir_ / "printers" / name; }

std::string CupsServer::printer_uri(const std::string& name) const {
    std::string port = read_file(printer_dir(name) / "port");
    while (!port.empty() && (port.back() == '\n' || port.back() == ' ')) port.pop_back();
    return "ipp://localhost:" + port + "/ipp/print";
}

void CupsServer::set_fault(const std::string& name, const std::string& reason) {
    write_file(printer_dir(name) / "fault", reason + "\n");
}

void CupsServer::clear_fault(const std::string& name) {
    std::error_code ec;
    fs::remove(printer_dir(name) / "fault", ec);
}

void CupsServer::set_delay(const std::string& name, double seconds) {
    write_file(printer_dir(name) / "delay", std::to_string(seconds) + "\n");
}

void CupsServer::set_fail(const std::string& name, bool fail) {
    std::error_code ec;
    if (fail) write_file(printer_dir(name) / "fail", "");
    else fs::remove(printer_dir(name) / "fail", ec);
}

void CupsServer::set_marker_levels(const std::string& name, const std::vector<int>& levels) {
    std::string v;
    for (int l : levels) v += (v.empty() ? "" : ",") + std::to_string(l);
    write_file(printer_dir(name) / "markers",
               "marker-names=\"Black Ink\",\"Cyan Ink\",\"Magenta Ink\",\"Yellow Ink\",\"White Ink\" "
               "marker-types=ink-cartridge,ink-cartridge,ink-cartridge,ink-cartridge,ink-cartridge "
               "marker-colors=#000000,#00FFFF,#FF00FF,#FFFF00,#FFFFFF marker-levels=" + v +
               " marker-low-levels=10,10,10,10,10 marker-high-levels=100,100,100,100,100\n");
}

std::vector<fs::path> CupsServer::documents(const std::string& name) const {
    std::vector<fs::path> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(printer_dir(name) / "docs", ec)) {
        if (!e.is_regular_file() || e.path().extension() == ".part") continue;
        out.push_back(e.path());
    }
    std::sort(out.begin(), out.end());  // NNNN- prefix: print order
    return out;
}

bool CupsServer::wait_documents(const std::string& name, std::size_t n, std::chrono::milliseconds timeout) const {
    return poll_until([&] { return documents(name).size() >= n; }, timeout);
}

std::string CupsServer::received_attributes(const std::string& name, std::size_t index) const {
    const auto docs = documents(name);
    if (index >= docs.size()) return "";
    auto stem = docs[index].filename().string();
    stem = stem.substr(0, stem.rfind('.'));
    return read_file(printer_dir(name) / "attrs" / (stem + ".env"));
}

std::size_t CupsServer::ipp_request_count() const { return split_lines(read_file(access_log())).size(); }

fs::path CupsServer::access_log() const { return dir_ / "cups" / "log" / "access_log"; }
fs::path CupsServer::error_log() const { return dir_ / "cups" / "log" / "error_log"; }

void CupsServer::restart_printer(const std::string& name) { run({"restart-printer", dir_.string(), name}); }
void CupsServer::stop_printer(const std::string& name) { run({"stop-printer", dir_.string(), name}); }
void CupsServer::start_printer(const std::string& name) { run({"start-printer", dir_.string(), name}); }
void CupsServer::restart_cupsd() { run({"restart-cupsd", dir_.string()}); }

}  // namespace pressline::testing
