// RIP hot-folder driver: hands a print file and its job ticket to a vendor RIP through a watched
// folder, detects the outcome (consumed / moved to done or error folder / result file) with
// inotify, and answers "where is NAME now?" after a crash. Knows nothing of jobs or MQTT.
//
// Threads: one HotFolder lives on one io_context. submit(), query(), withdraw() and forget() do
// blocking file I/O with fsync: call them from a worker thread, never from the io_context thread
// (they only touch the file system and the immutable Config, so any number of threads may call
// them at once). start(), async_wait(), cancel() and close() run on the io_context thread, and
// every completion handler is invoked there. Idle cost: one inotify descriptor read
// asynchronously through boost::asio::posix::stream_descriptor; no polling, no thread.
// README.md next to this folder describes the supported RIP behaviours and their configuration.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

namespace boost::asio {
class io_context;
}

namespace pressline::drivers::hotfolder {

// Error codes of this driver (category "hotfolder"). System errors (EACCES, ENOSPC...) are
// reported as std::system_category codes; every error comes with a message naming the folder
// or file concerned.
enum class Errc {
    bad_config = 1,     // Config inconsistent (e.g. `folders` mode without done/error folder)
    folder_missing,     // a configured folder does not exist or is not a directory
    folder_unwritable,  // a configured folder is not writable by us
    invalid_name,       // the name is empty, or nothing is left after making it file-system safe
    already_exists,     // a file with this name is already in the hot/done/error/result folder
    rip_error,          // the RIP reported an error; the message is the RIP's text
    timed_out,          // nothing happened within the configured timeout
    already_taken,      // withdraw(): the RIP took the file before we could
    not_found,          // withdraw(): no file of that name anywhere
    folder_removed,     // a watched folder disappeared while waiting
};
const std::error_category& hotfolder_category() noexcept;
std::error_code make_error_code(Errc e) noexcept;

// How the RIP signals that it is finished with a file.
enum class Completion {
    consumed,     // the RIP removes the print file from the hot folder: gone = done
    folders,      // the RIP moves it to done_dir or error_dir
    result_file,  // the RIP writes result_dir/NAME.<result_extension>: "ok" or "error: <text>"
};

struct Config {
    std::filesystem::path hot_dir;
    std::string print_extension = "prn";    // without dot; the print file is NAME.<ext>
    std::string ticket_extension = "json";  // without dot; empty = the RIP takes no ticket
    Completion completion = Completion::consumed;
    std::filesystem::path done_dir;    // `folders`
    std::filesystem::path error_dir;   // `folders`
    std::filesystem::path result_dir;  // `result_file`
    std::string result_extension = "result";  // `result_file` (also read from error_dir)
    // Optional, recommended for `consumed`: a private folder (not watched by the RIP) holding
    // one empty receipt per submitted name, so that query() can tell "the RIP took it" from
    // "never submitted". Without it an absent file is reported as State::absent.
    std::filesystem::path state_dir;
    // async_wait(): fail with Errc::timed_out if the RIP has not taken the file from the hot
    // folder within take_timeout, or has taken it but reported nothing within finish_timeout.
    std::chrono::milliseconds take_timeout = std::chrono::minutes(10);
    std::chrono::milliseconds finish_timeout = std::chrono::minutes(30);
};

// Result of a blocking call: empty `ec` = success; `message` says what failed and where.
struct Result {
    std::error_code ec;
    std::string message;
    bool ok() const noexcept { return !ec; }
};

// Where a name is, as query() finds it.
enum class State {
    absent,   // nowhere (never submitted, withdrawn, forgotten; or consumed without state_dir)
    partial,  // a submission was interrupted (temp files left behind); query() removed them,
              // nothing was ever visible to the RIP as a print file
    waiting,  // complete and visible in the hot folder, not yet taken by the RIP
    taken,    // the RIP took it (per the receipt) and has not reported an outcome yet
    done,     // printed (consumed mode: taken and gone; folders: in done_dir; result "ok")
    error,    // the RIP reported an error; Location::message holds its text
};
const char* to_string(State s) noexcept;

struct Location {
    State state = State::absent;
    std::string message;  // State::error: the RIP's text; State::partial: what was removed
    std::error_code ec;   // set if the query itself failed (a folder unreadable); see message
};

// The file-system-safe form of a caller's name: [A-Za-z0-9._-] kept, everything else '_', no
// leading dot, at most 200 bytes. Every method applies it, so callers may pass the raw name.
// Two raw names mapping to the same safe name are the same submission. Any thread.
std::string safe_name(std::string_view name);

// Checks that every folder the Config needs exists, is a directory and is writable; the first
// problem found is returned with the folder named. Any thread (blocking).
Result check_config(const Config& cfg);

class HotFolder {
public:
    // Called once with the outcome: empty ec = printed; Errc::rip_error + the RIP's message;
    // Errc::timed_out; Errc::folder_removed; std::errc::operation_canceled (ECANCELED, what
    // asio calls operation_aborted) after cancel()/close(); a system error if the folders
    // cannot be read.
    using WaitHandler = std::function<void(std::error_code ec, std::string message)>;

    // Does no I/O. Any thread, before the object is shared.
    HotFolder(boost::asio::io_context& io, Config cfg);
    // Calls close(). io_context thread.
    ~HotFolder();
    HotFolder(const HotFolder&) = delete;
    HotFolder& operator=(const HotFolder&) = delete;

    // Checks the folders (check_config) and sets up the inotify watches. Must succeed before
    // async_wait() is used. io_context thread (start-up).
    Result start();

    // Writes NAME.<print_extension> and NAME.<ticket_extension> into the hot folder atomically:
    // both are written under dot-prefixed ".NAME.ext.pressline-tmp" names and fsynced; then the
    // receipt (if state_dir) is written; then the TICKET is renamed into place, then the PRINT
    // FILE (RIPs trigger on the print file, so its ticket is already there when it appears);
    // then the folder is fsynced. Renames never replace an existing file (Errc::already_exists).
    // On failure nothing of this submission stays behind. Returns the safe name in `message`
    // on success. Worker thread (blocking).
    Result submit(std::string_view name, std::string_view print_data, std::string_view ticket);
    // Same, copying the print data from a file (large artwork never held in memory).
    Result submit_file(std::string_view name, const std::filesystem::path& print_file,
                       std::string_view ticket);

    // Where is NAME now? Removes the leftovers of an interrupted submission (State::partial),
    // so never call it while a submit() of the same name may be running. Worker thread
    // (blocking).
    Location query(std::string_view name) const;

    // Takes NAME back if it is still waiting in the hot folder: renames it out first (atomic,
    // the RIP can no longer see it), then removes it, its ticket and its receipt. Success = it
    // was not taken; Errc::already_taken = the RIP has (or had) it; Errc::not_found = nothing
    // of that name. Leftovers of an interrupted submission are removed and count as success.
    // Worker thread (blocking).
    Result withdraw(std::string_view name);

    // Removes what the driver keeps about NAME once the caller has recorded the outcome: the
    // receipt and the result file (files in done_dir/error_dir are left to the operator).
    // Worker thread (blocking).
    Result forget(std::string_view name);

    // Calls `handler` once when the RIP is finished with NAME (see Completion), or on timeout.
    // Call after a successful submit() (or after query() said waiting/taken on restart): in
    // `consumed` mode a name that is not in the hot folder counts as done. A second wait for
    // the same name replaces nothing: both are completed. io_context thread.
    void async_wait(std::string_view name, WaitHandler handler);

    // Completes the waits for NAME with operation_canceled. io_context thread.
    void cancel(std::string_view name);
    // Completes every wait with operation_canceled and stops watching. io_context thread.
    void close();

    const Config& config() const noexcept;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;  // shared with the pending inotify read (weak_ptr there)
};

}  // namespace pressline::drivers::hotfolder

template <>
struct std::is_error_code_enum<pressline::drivers::hotfolder::Errc> : std::true_type {};
