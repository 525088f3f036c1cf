// The durable journal: SQLite in WAL mode under storage.state_dir. Jobs and their states,
// attempts and tries, commands and their results, and the event outbox with its gap-free
// sequence, all changed only in transactions that also append the events they cause.
//
// Threads: a Journal may be called from any thread. One connection does all writes, serialised
// by an internal mutex (this is the documented exception to "state lives on the io_context":
// paho's intake callback must commit before it returns, see ARCHITECTURE.md "Threads").
// Checkpoints use a second connection and never hold the write mutex.
//
// Errors: opening throws JournalError (start-up). A transaction that cannot commit throws
// JournalError and leaves nothing behind (rolled back); `full()` tells disk/outbox exhaustion
// apart from other failures.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "pressline/agent/events.hpp"
#include "pressline/agent/job_state.hpp"

struct sqlite3;

namespace pressline::agent {

class StmtCache;

class JournalError : public std::runtime_error {
public:
    enum class Kind { io, full, corrupt, busy, misuse };
    JournalError(Kind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
    Kind kind() const { return kind_; }
    bool full() const { return kind_ == Kind::full; }

private:
    Kind kind_;
};

struct JournalOptions {
    std::string source;              // CloudEvents source, "pressline://{shop}/{station}"
    std::string events_topic;        // where outbox events go
    std::int64_t outbox_max_events = 1'000'000;
    std::int64_t min_free_mb = 64;   // admission: refuse new work below this free space
    std::int64_t max_db_mb = 0;      // 0: no cap
    // false: an existing journal of an older schema is opened as it is, not migrated (the CLI's
    // read-only commands: running a new binary's `pressline status` next to the old daemon
    // must not move the journal to a schema the old binary refuses). The daemon migrates.
    bool migrate = true;
};

struct JobRow {
    std::string job_id;
    std::string order_id;
    JobState state = JobState::accepted;
    std::string priority;
    std::string payload;  // canonical JSON with defaults applied; empty once pruned
    std::string topic;    // where it came from
    int attempt = 0;
    std::int64_t received_ms = 0;
    std::int64_t updated_ms = 0;
    bool pruned = false;
};

// One hand-off of an attempt to a device (ARCHITECTURE.md: attempt = garment, try = hand-off).
// States: recorded (before the hand-off) -> created (the device job exists) -> handed_over (the
// document is with the device) -> done | failed (provably not printed) | uncertain (a person
// decides) | withdrawn (cancelled by us before it printed).
struct TryRow {
    std::string job_id;
    int attempt = 0;
    int try_no = 0;
    std::string device;
    std::string device_job;  // e.g. the CUPS job id; empty until known
    std::string state;
    std::int64_t created_ms = 0;
    std::int64_t updated_ms = 0;
};

// One piece of paperwork: a job ticket (one per attempt) or an order's shipping label, and each
// reprint of it (copy 2, 3...). States: pending -> sending (recorded before the bytes go out)
// -> printed | uncertain (part or all may have reached the printer: a person decides) |
// failed; sending -> pending again only when the printer provably got nothing.
struct PaperRow {
    std::string kind;        // ticket | label
    std::string ref;         // ticket: job_id; label: order_id
    int attempt = 0;         // ticket: the attempt; label: 0
    int copy = 1;
    std::string job_id;      // the job it belongs to (label: the item that completed the order)
    std::string device;      // label printer
    std::string state;
    std::string reason;
    std::string device_job;  // CUPS job id, if any
    std::int64_t created_ms = 0;
    std::int64_t updated_ms = 0;
};

// The visual QA of one attempt (docs/design.md "Visual QA flow"). States: pending (printed,
// waiting for its trigger) -> capturing (photographing and inspecting) -> inspected (decided by
// the inspector: passed or failed) | held (a person decides: spot check, low confidence, no
// camera...) -> decided (a person's verdict). `source`: auto (the inspector), local (a
// technician at the station), cloud (a qa_decision command).
struct QaRow {
    std::string job_id;
    int attempt = 0;
    std::string state;
    std::string device;        // the DTG printer that printed the attempt
    std::string camera;        // the camera that photographed it ('' before / without one)
    std::string verdict;       // pass | fail | '' (not decided)
    std::string reason;        // ok or a reason code (missing_ink, no_capture, spot_check...)
    double confidence = 0;
    std::string metrics;       // JSON object
    std::string evidence_dir;  // {qa.evidence.dir}/{job_id}/{attempt}
    std::string decided_by;    // "inspector" or the person
    std::int64_t decided_ms = 0;
    std::string source;        // auto | local | cloud
    std::string note;
    std::int64_t printed_ms = 0;   // when job.printed was committed (the trigger counts from it)
    std::int64_t created_ms = 0;
    std::int64_t updated_ms = 0;
};

struct OutboxRow {
    std::int64_t seq = 0;
    std::string topic;
    std::string payload;
};

struct CommandRow {
    std::string command_id;
    std::string type;
    nlohmann::json result;
};

// One open transaction. Valid only inside Journal::transact's callback. (The Journal's own read
// methods also use one, on the read-only connection: a write through it fails.)
class Tx {
public:
    std::optional<JobRow> job(const std::string& job_id);
    void insert_job(const JobRow& row);
    // Moves a job to `to` if the lifecycle allows it (std::logic_error otherwise), records the
    // transition and appends `event` (none when its type is empty). Returns the event's
    // sequence (0 without an event).
    std::int64_t transition(const std::string& job_id, JobState to, const std::string& reason,
                            const EventSpec& event);
    // Sets the job's current attempt (a new garment) and records it.
    void start_attempt(const std::string& job_id, int attempt);
    // Records a new try of the job's attempt on `device` (state "recorded"); returns its number.
    int insert_try(const std::string& job_id, int attempt, const std::string& device);
    void update_try(const std::string& job_id, int attempt, int try_no, const std::string& state,
                    const std::string& device_job = {});
    std::vector<TryRow> tries(const std::string& job_id, int attempt);
    // Paperwork: a new copy (state pending) of a ticket (ref = job_id, attempt) or a label
    // (ref = order_id, attempt 0); returns it with its copy number.
    PaperRow insert_paper(const std::string& kind, const std::string& ref, int attempt,
                          const std::string& job_id, const std::string& device);
    void update_paper(const PaperRow& key, const std::string& state, const std::string& reason = {},
                      const std::string& device_job = {});
    std::vector<PaperRow> papers(const std::string& kind, const std::string& ref);
    // Records that `job_id` of `order_id` is ready to ship (idempotent); returns every ready job
    // of the order, first ready first.
    std::vector<std::string> mark_order_item_ready(const std::string& order_id, const std::string& job_id);
    // Visual QA of an attempt: inserted or replaced as a whole.
    void put_qa(const QaRow& row);
    std::optional<QaRow> qa(const std::string& job_id, int attempt);
    std::optional<CommandRow> command(const std::string& command_id);
    void insert_command(const CommandRow& row);
    std::optional<std::string> meta(const std::string& key);
    void set_meta(const std::string& key, const std::string& value);
    // Appends an event to the outbox; returns its sequence number.
    std::int64_t append(const EventSpec& event);
    std::int64_t now_ms() const { return now_ms_; }

private:
    friend class Journal;
    Tx(class Journal& j, class StmtCache& cache, std::int64_t now_ms) : j_(j), cache_(cache), now_ms_(now_ms) {}
    class Journal& j_;
    class StmtCache& cache_;
    std::int64_t now_ms_;
    std::int64_t appended_ = 0;
};

enum class Admission {
    intake,    // new work from outside: refused when the disk is low or the outbox is full
    internal,  // consequences of work already accepted: only a real write failure stops it
};

class Journal {
public:
    // Opens (creating and migrating as needed) STATE_DIR/journal.db. Throws JournalError.
    Journal(const std::filesystem::path& state_dir, JournalOptions options);
    ~Journal();
    Journal(const Journal&) = delete;
    Journal& operator=(const Journal&) = delete;

    void set_options(JournalOptions options);

    // Runs `fn` in one IMMEDIATE transaction and commits it durably (fsync). If `fn` throws,
    // or the commit fails, everything is rolled back and the exception propagates.
    // Returns the sequence of the last event appended (0 if none).
    std::int64_t transact(Admission admission, const std::function<void(Tx&)>& fn);


    // Outbox, oldest first: events with seq > after, at most `limit`.
    std::vector<OutboxRow> outbox_after(std::int64_t after, std::size_t limit);
    // How many of the newest committed events outbox_after answers from memory.
    static constexpr std::size_t kOutboxTail = 256;
    // Removes events up to and including `seq` (after the broker acknowledged them).
    void outbox_delete_upto(std::int64_t seq);
    std::int64_t outbox_count();
    std::int64_t last_sequence();

    // Successful commits that took kSlowCommit or longer, from the call to transact() until it
    // returns, and where their time went: waiting for the writer mutex (another commit, a prune
    // or the checkpoint's short locked step) or in the transaction itself (mostly its fsync).
    // Each is also logged, at most one line every 10 s. Intake acknowledges no order before its commit returns, so a
    // slow commit is a late acknowledgement and a late job.accepted.
    static constexpr std::chrono::milliseconds kSlowCommit{50};
    struct CommitStats {
        std::int64_t commits = 0;
        std::int64_t slow = 0;
        double worst_ms = 0;          // the slowest commit so far
        double worst_wait_ms = 0;     // the longest wait for the writer mutex so far
    };
    CommitStats commit_stats();

    // Read-only views (for the CLI and tests).
    std::optional<JobRow> job(const std::string& job_id);
    std::vector<JobRow> jobs_in_state(JobState state);
    // Tries whose outcome is not settled (recorded, created, handed_over), oldest first.
    std::vector<TryRow> open_tries();
    std::vector<TryRow> tries(const std::string& job_id);
    std::optional<std::string> meta(const std::string& key);
    // Paperwork not settled yet (pending, sending), oldest first.
    std::vector<PaperRow> open_papers();
    std::vector<PaperRow> papers(const std::string& kind, const std::string& ref);
    std::optional<QaRow> qa(const std::string& job_id, int attempt);
    // Every QA row of a job, by attempt.
    std::vector<QaRow> qa_rows(const std::string& job_id);

    // Housekeeping, off the intake's critical path (call from a worker thread).
    // Drops the payload and history of jobs finished before `cutoff_ms` (a tombstone row keeps
    // the job_id so that a late redelivery is still recognised) and deletes tombstones older than
    // `tombstone_cutoff_ms`. Returns the number of jobs pruned.
    int prune(std::int64_t cutoff_ms, std::int64_t tombstone_cutoff_ms);
    // PASSIVE WAL checkpoint on a separate connection (commits also wake a checkpoint thread
    // once the WAL is large: see on_wal_commit).
    void checkpoint();

    std::filesystem::path path() const { return path_; }
    static int schema_version();
    // The schema of this journal file: schema_version() unless opened with migrate = false.
    int file_schema_version() const { return file_version_; }

private:
    friend class Tx;
    void migrate();
    void exec(const char* sql);
    std::int64_t insert_event(const EventSpec& event, std::int64_t now_ms);

    std::filesystem::path path_;
    JournalOptions options_;
    int file_version_ = 0;
    std::mutex mu_;               // guards db_, cache_ and last_seq_ while in a transaction
    sqlite3* db_ = nullptr;       // the writer connection
    std::unique_ptr<StmtCache> cache_;
    // Outbox reads use their own connection: in WAL mode they see the last commit and never
    // wait for an intake commit's fsync, so the io_context thread is not held up by intake.
    // The Journal's read methods (job(), open_papers(), ...) use it too, so that the io_context
    // never waits on the writer mutex while an intake commit is in its fsync, nor the other way
    // round. A read sees every transaction committed before it starts.
    std::mutex rd_mu_;
    sqlite3* rd_db_ = nullptr;
    std::unique_ptr<StmtCache> rd_cache_;
    Tx reader() { return Tx(*this, *rd_cache_, 0); }  // with rd_mu_ held
    // The last kOutboxTail committed events, in sequence order, so that the outbox publishes a
    // new event without reading it back from the database. uncommitted_ (guarded by mu_) holds
    // those of the open transaction until it commits.
    std::vector<OutboxRow> uncommitted_;
    std::mutex tail_mu_;
    std::deque<OutboxRow> tail_;
    std::mutex ckpt_mu_;
    sqlite3* ckpt_db_ = nullptr;  // checkpoints only
    std::atomic<std::int64_t> last_seq_{0};       // of the last committed (or open) transaction
    std::atomic<std::int64_t> committed_seq_{0};  // of the last committed transaction
    std::atomic<std::int64_t> outbox_count_{0};

    // WAL checkpoints off the commit path: the writer's WAL hook wakes checkpointer_ once the WAL
    // holds kCheckpointFrames; it backfills on ckpt_db_ while intake goes on committing, then
    // briefly takes mu_ for the frames committed meanwhile so that the next commit restarts the
    // WAL from its start (it would otherwise grow without end under a steady stream).
    static int on_wal_commit(void* self, sqlite3* db, const char* name, int frames) noexcept;
    void checkpointer_loop();
    // PASSIVE checkpoint on ckpt_db_: {frames in the WAL, frames backfilled} (0 backfilled if BUSY).
    std::pair<int, int> checkpoint_frames();
    std::mutex wake_mu_;
    std::condition_variable wake_;
    bool checkpoint_wanted_ = false;
    bool stopping_ = false;
    std::thread checkpointer_;
    // The free-space check of admission_problem(), at most every kFreeSpaceRecheck (guarded by mu_).
    std::chrono::steady_clock::time_point free_checked_{};
    std::string free_problem_;
    // Why intake admission would be refused now, or empty if it would be admitted (mu_ held).
    std::string admission_problem();
    // Counts a successful commit (guarded by stats_mu_; see commit_stats()); returns the line
    // to log, if any, once mu_ is released.
    std::optional<std::string> note_commit(std::chrono::steady_clock::duration wait,
                                           std::chrono::steady_clock::duration total) noexcept;
    std::mutex stats_mu_;
    CommitStats stats_;
    std::int64_t slow_unreported_ = 0;
    std::chrono::steady_clock::time_point slow_reported_{};
};

}  // namespace pressline::agent
