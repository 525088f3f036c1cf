// The SQLite journal: schema, migrations, transactions, outbox.
#include "pressline/agent/journal.hpp"

#include <sqlite3.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <chrono>
#include <system_error>
#include <unordered_map>

#include <fmt/format.h>

#include "pressline/agent/clock.hpp"
#include "pressline/agent/log.hpp"

namespace pressline::agent {
namespace {

JournalError::Kind kind_of(int rc) {
    switch (rc & 0xff) {
        case SQLITE_FULL: return JournalError::Kind::full;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB: return JournalError::Kind::corrupt;
        case SQLITE_BUSY:
        case SQLITE_LOCKED: return JournalError::Kind::busy;
        case SQLITE_MISUSE: return JournalError::Kind::misuse;
        default: return JournalError::Kind::io;
    }
}

[[noreturn]] void fail(sqlite3* db, int rc, const char* what) {
    throw JournalError(kind_of(rc), fmt::format("journal: {}: {} (sqlite {})", what,
                                                db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), rc));
}

}  // namespace

// Prepared statements of one connection, prepared once and reused (statements are keyed by the
// address of their SQL literal). Used under the mutex of its connection.
class StmtCache {
public:
    explicit StmtCache(sqlite3*& db) : db_(db) {}
    ~StmtCache() { clear(); }
    sqlite3_stmt* get(const char* sql) {
        auto it = map_.find(sql);
        if (it != map_.end()) return it->second;
        sqlite3_stmt* st = nullptr;
        int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, nullptr);
        if (rc != SQLITE_OK) fail(db_, rc, sql);
        map_.emplace(sql, st);
        return st;
    }
    void clear() {
        for (auto& [sql, st] : map_) sqlite3_finalize(st);
        map_.clear();
    }
    sqlite3* db() const { return db_; }

private:
    sqlite3*& db_;
    std::unordered_map<const char*, sqlite3_stmt*> map_;
};

namespace {

// One use of a cached statement; reset on scope exit. Binds by 1-based index.
class Stmt {
public:
    Stmt(StmtCache& cache, const char* sql) : db_(cache.db()), st_(cache.get(sql)) {}
    ~Stmt() {
        sqlite3_reset(st_);
        sqlite3_clear_bindings(st_);
    }
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;

    Stmt& bind(int i, const std::string& v) {
        check(sqlite3_bind_text(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
        return *this;
    }
    Stmt& bind(int i, std::int64_t v) {
        check(sqlite3_bind_int64(st_, i, v));
        return *this;
    }
    Stmt& bind_double(int i, double v) {
        check(sqlite3_bind_double(st_, i, v));
        return *this;
    }
    Stmt& bind_null(int i) {
        check(sqlite3_bind_null(st_, i));
        return *this;
    }
    // true while a row is available
    bool step() {
        int rc = sqlite3_step(st_);
        if (rc == SQLITE_ROW) return true;
        if (rc == SQLITE_DONE) return false;
        fail(db_, rc, sqlite3_sql(st_));
    }
    void run() { while (step()) {} }
    std::string text(int col) const {
        auto p = sqlite3_column_text(st_, col);
        return p ? std::string(reinterpret_cast<const char*>(p),
                               static_cast<std::size_t>(sqlite3_column_bytes(st_, col)))
                 : std::string();
    }
    std::int64_t int64(int col) const { return sqlite3_column_int64(st_, col); }
    double dbl(int col) const { return sqlite3_column_double(st_, col); }
    bool is_null(int col) const { return sqlite3_column_type(st_, col) == SQLITE_NULL; }

private:
    void check(int rc) {
        if (rc != SQLITE_OK) fail(db_, rc, "bind");
    }
    sqlite3* db_;
    sqlite3_stmt* st_;
};

// Versioned migrations: migration i brings the schema from version i to i+1. Never edit one
// that has shipped; append a new one.
constexpr const char* kMigrations[] = {
    // 0 -> 1: the foundation.
    R"sql(
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE jobs (
        job_id      TEXT PRIMARY KEY,
        order_id    TEXT NOT NULL,
        state       TEXT NOT NULL,
        priority    TEXT NOT NULL,
        payload     TEXT NOT NULL,      -- canonical JSON with defaults; '' once pruned
        topic       TEXT NOT NULL,
        attempt     INTEGER NOT NULL DEFAULT 0,
        received_ms INTEGER NOT NULL,
        updated_ms  INTEGER NOT NULL,
        finished_ms INTEGER,            -- set when the state is terminal
        reason      TEXT,
        pruned      INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    -- Few indexes on purpose: every page an intake commit touches is fsync'd before the ack.
    CREATE INDEX jobs_by_finished ON jobs(finished_ms) WHERE finished_ms IS NOT NULL;
    CREATE TABLE transitions (
        id         INTEGER PRIMARY KEY,
        job_id     TEXT NOT NULL,
        from_state TEXT,
        to_state   TEXT NOT NULL,
        reason     TEXT,
        at_ms      INTEGER NOT NULL,
        event_seq  INTEGER
    );
    CREATE INDEX transitions_by_job ON transitions(job_id);
    CREATE TABLE attempts (
        job_id     TEXT NOT NULL,
        attempt    INTEGER NOT NULL,
        state      TEXT NOT NULL,
        reason     TEXT,
        created_ms INTEGER NOT NULL,
        PRIMARY KEY (job_id, attempt)
    ) WITHOUT ROWID;
    CREATE TABLE tries (
        job_id     TEXT NOT NULL,
        attempt    INTEGER NOT NULL,
        try        INTEGER NOT NULL,
        device     TEXT NOT NULL,
        device_job TEXT,                -- e.g. the CUPS job id once known
        state      TEXT NOT NULL,       -- recorded, handed_over, done, failed, uncertain
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (job_id, attempt, try)
    ) WITHOUT ROWID;
    CREATE TABLE commands (
        command_id  TEXT PRIMARY KEY,
        type        TEXT NOT NULL,
        result      TEXT NOT NULL,      -- the data of its command.result event
        received_ms INTEGER NOT NULL
    );
    CREATE TABLE outbox (
        seq        INTEGER PRIMARY KEY, -- the CloudEvents sequence; gap-free, never reused
        topic      TEXT NOT NULL,
        payload    TEXT NOT NULL,       -- the event exactly as it goes on the wire
        created_ms INTEGER NOT NULL
    );
    INSERT INTO meta(key, value) VALUES ('last_seq', '0');
    )sql",
    // 1 -> 2: paperwork (job tickets, shipping labels) and the items of an order ready to ship.
    R"sql(
    CREATE TABLE paperwork (
        kind       TEXT NOT NULL,       -- ticket | label
        ref        TEXT NOT NULL,       -- ticket: job_id; label: order_id
        attempt    INTEGER NOT NULL,    -- ticket: the attempt; label: 0
        copy       INTEGER NOT NULL,    -- 1, then one more per reprint
        job_id     TEXT NOT NULL,       -- the job it belongs to (label: the order's last item)
        device     TEXT NOT NULL,       -- the label printer ('' until chosen)
        state      TEXT NOT NULL,       -- pending, sending, printed, uncertain, failed
        reason     TEXT,
        device_job TEXT,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (kind, ref, attempt, copy)
    ) WITHOUT ROWID;
    CREATE INDEX paperwork_open ON paperwork(state) WHERE state IN ('pending', 'sending');
    CREATE TABLE order_ready (
        order_id TEXT NOT NULL,
        job_id   TEXT NOT NULL,
        at_ms    INTEGER NOT NULL,
        PRIMARY KEY (order_id, job_id)
    ) WITHOUT ROWID;
    )sql",
    // 2 -> 3: visual QA, one row per printed attempt of a job with qa.required.
    R"sql(
    CREATE TABLE qa (
        job_id       TEXT NOT NULL,
        attempt      INTEGER NOT NULL,
        state        TEXT NOT NULL,     -- pending, capturing, inspected, held, decided
        device       TEXT NOT NULL,     -- the DTG printer that printed the attempt
        camera       TEXT NOT NULL DEFAULT '',
        verdict      TEXT NOT NULL DEFAULT '',  -- pass | fail | '' (not decided)
        reason       TEXT NOT NULL DEFAULT '',
        confidence   REAL NOT NULL DEFAULT 0,
        metrics      TEXT NOT NULL DEFAULT '{}',
        evidence_dir TEXT NOT NULL DEFAULT '',
        decided_by   TEXT NOT NULL DEFAULT '',
        decided_ms   INTEGER NOT NULL DEFAULT 0,
        source       TEXT NOT NULL DEFAULT '',  -- auto | local | cloud
        note         TEXT NOT NULL DEFAULT '',
        printed_ms   INTEGER NOT NULL,
        created_ms   INTEGER NOT NULL,
        updated_ms   INTEGER NOT NULL,
        PRIMARY KEY (job_id, attempt)
    ) WITHOUT ROWID;
    )sql",
    // 3 -> 4: fewer pages in each intake commit (every page is written and fsync'd before the
    // broker gets its acknowledgement; bench/intake).
    // - jobs becomes a rowid table with a unique index on job_id. In the WITHOUT ROWID b-tree a
    //   row above ~1000 bytes (a typical order with its payload) spilled into an overflow page,
    //   a fresh page for every job; a rowid leaf holds rows up to ~4 KB.
    // - meta.last_seq is no longer written with every event. The next sequence is one above
    //   the larger of meta.last_seq and the outbox's highest seq; meta.last_seq is raised in the
    //   same transaction that deletes acknowledged events, so no number is ever handed out
    //   twice. An older pressline refuses this schema version, so none can read the floor alone.
    R"sql(
    CREATE TABLE jobs_v4 (
        id          INTEGER PRIMARY KEY,
        job_id      TEXT NOT NULL,
        order_id    TEXT NOT NULL,
        state       TEXT NOT NULL,
        priority    TEXT NOT NULL,
        payload     TEXT NOT NULL,      -- canonical JSON with defaults; '' once pruned
        topic       TEXT NOT NULL,
        attempt     INTEGER NOT NULL DEFAULT 0,
        received_ms INTEGER NOT NULL,
        updated_ms  INTEGER NOT NULL,
        finished_ms INTEGER,            -- set when the state is terminal
        reason      TEXT,
        pruned      INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO jobs_v4(job_id, order_id, state, priority, payload, topic, attempt, received_ms,
                        updated_ms, finished_ms, reason, pruned)
        SELECT job_id, order_id, state, priority, payload, topic, attempt, received_ms,
               updated_ms, finished_ms, reason, pruned
        FROM jobs;
    DROP TABLE jobs;
    ALTER TABLE jobs_v4 RENAME TO jobs;
    CREATE UNIQUE INDEX jobs_by_id ON jobs(job_id);
    CREATE INDEX jobs_by_finished ON jobs(finished_ms) WHERE finished_ms IS NOT NULL;
    UPDATE meta SET value = max(CAST(value AS INTEGER), (SELECT ifnull(max(seq), 0) FROM outbox))
        WHERE key = 'last_seq';
    )sql",
};

constexpr int kSchemaVersion = static_cast<int>(std::size(kMigrations));

}  // namespace

int Journal::schema_version() { return kSchemaVersion; }

// ---- Tx ---------------------------------------------------------------------------------------

std::optional<JobRow> Tx::job(const std::string& job_id) {
    Stmt st(cache_,
            "SELECT job_id, order_id, state, priority, payload, topic, attempt, received_ms, "
            "updated_ms, pruned FROM jobs WHERE job_id = ?");
    st.bind(1, job_id);
    if (!st.step()) return std::nullopt;
    JobRow r;
    r.job_id = st.text(0);
    r.order_id = st.text(1);
    r.state = job_state_from_string(st.text(2)).value_or(JobState::failed);
    r.priority = st.text(3);
    r.payload = st.text(4);
    r.topic = st.text(5);
    r.attempt = static_cast<int>(st.int64(6));
    r.received_ms = st.int64(7);
    r.updated_ms = st.int64(8);
    r.pruned = st.int64(9) != 0;
    return r;
}

void Tx::insert_job(const JobRow& row) {
    Stmt st(cache_,
            "INSERT INTO jobs(job_id, order_id, state, priority, payload, topic, attempt, "
            "received_ms, updated_ms) VALUES (?,?,?,?,?,?,?,?,?)");
    st.bind(1, row.job_id).bind(2, row.order_id).bind(3, std::string(to_string(row.state)));
    st.bind(4, row.priority).bind(5, row.payload).bind(6, row.topic);
    st.bind(7, std::int64_t{row.attempt}).bind(8, now_ms_).bind(9, now_ms_);
    st.run();
    // The first state needs no transition row: jobs.received_ms and jobs.topic record it, and
    // the intake commit stays small (see the schema comment).
}

std::int64_t Tx::transition(const std::string& job_id, JobState to, const std::string& reason,
                            const EventSpec& event) {
    auto cur = job(job_id);
    if (!cur) throw std::logic_error("transition of unknown job " + job_id);
    if (!can_transition(cur->state, to))
        throw std::logic_error(fmt::format("job {}: {} -> {} is not a lifecycle transition", job_id,
                                           to_string(cur->state), to_string(to)));
    const std::int64_t seq = event.type.empty() ? 0 : append(event);
    Stmt st(cache_,
            "UPDATE jobs SET state = ?, updated_ms = ?, reason = ?, finished_ms = ? WHERE job_id = ?");
    st.bind(1, std::string(to_string(to))).bind(2, now_ms_);
    if (reason.empty()) st.bind_null(3); else st.bind(3, reason);
    if (is_terminal(to)) st.bind(4, now_ms_); else st.bind_null(4);
    st.bind(5, job_id).run();
    Stmt tr(cache_,
            "INSERT INTO transitions(job_id, from_state, to_state, reason, at_ms, event_seq) "
            "VALUES (?,?,?,?,?,?)");
    tr.bind(1, job_id).bind(2, std::string(to_string(cur->state))).bind(3, std::string(to_string(to)));
    if (reason.empty()) tr.bind_null(4); else tr.bind(4, reason);
    tr.bind(5, now_ms_);
    if (seq == 0) tr.bind_null(6); else tr.bind(6, seq);
    tr.run();
    return seq;
}

void Tx::start_attempt(const std::string& job_id, int attempt) {
    Stmt st(cache_, "UPDATE jobs SET attempt = ?, updated_ms = ? WHERE job_id = ?");
    st.bind(1, std::int64_t{attempt}).bind(2, now_ms_).bind(3, job_id).run();
    Stmt at(cache_,
            "INSERT OR IGNORE INTO attempts(job_id, attempt, state, created_ms) VALUES (?,?,?,?)");
    at.bind(1, job_id).bind(2, std::int64_t{attempt}).bind(3, std::string("open")).bind(4, now_ms_).run();
}

int Tx::insert_try(const std::string& job_id, int attempt, const std::string& device) {
    int next = 1;
    {
        Stmt st(cache_, "SELECT COALESCE(MAX(try), 0) FROM tries WHERE job_id = ? AND attempt = ?");
        st.bind(1, job_id).bind(2, std::int64_t{attempt});
        if (st.step()) next = static_cast<int>(st.int64(0)) + 1;
    }
    Stmt ins(cache_,
             "INSERT INTO tries(job_id, attempt, try, device, state, created_ms, updated_ms) "
             "VALUES (?,?,?,?,?,?,?)");
    ins.bind(1, job_id).bind(2, std::int64_t{attempt}).bind(3, std::int64_t{next}).bind(4, device);
    ins.bind(5, std::string("recorded")).bind(6, now_ms_).bind(7, now_ms_).run();
    return next;
}

void Tx::update_try(const std::string& job_id, int attempt, int try_no, const std::string& state,
                    const std::string& device_job) {
    Stmt st(cache_,
            "UPDATE tries SET state = ?, device_job = COALESCE(?, device_job), updated_ms = ? "
            "WHERE job_id = ? AND attempt = ? AND try = ?");
    st.bind(1, state);
    if (device_job.empty()) st.bind_null(2); else st.bind(2, device_job);
    st.bind(3, now_ms_).bind(4, job_id).bind(5, std::int64_t{attempt}).bind(6, std::int64_t{try_no}).run();
}

namespace {
constexpr const char* kTryColumns =
    "SELECT job_id, attempt, try, device, COALESCE(device_job, ''), state, created_ms, updated_ms "
    "FROM tries ";
TryRow try_row(const Stmt& st) {
    return TryRow{st.text(0), static_cast<int>(st.int64(1)), static_cast<int>(st.int64(2)),
                  st.text(3), st.text(4), st.text(5), st.int64(6), st.int64(7)};
}
}  // namespace

std::vector<TryRow> Tx::tries(const std::string& job_id, int attempt) {
    static const std::string sql = std::string(kTryColumns) + "WHERE job_id = ? AND attempt = ? ORDER BY try";
    Stmt st(cache_, sql.c_str());
    st.bind(1, job_id).bind(2, std::int64_t{attempt});
    std::vector<TryRow> out;
    while (st.step()) out.push_back(try_row(st));
    return out;
}

namespace {
constexpr const char* kPaperColumns =
    "SELECT kind, ref, attempt, copy, job_id, device, state, COALESCE(reason, ''), "
    "COALESCE(device_job, ''), created_ms, updated_ms FROM paperwork ";
PaperRow paper_row(const Stmt& st) {
    PaperRow r;
    r.kind = st.text(0);
    r.ref = st.text(1);
    r.attempt = static_cast<int>(st.int64(2));
    r.copy = static_cast<int>(st.int64(3));
    r.job_id = st.text(4);
    r.device = st.text(5);
    r.state = st.text(6);
    r.reason = st.text(7);
    r.device_job = st.text(8);
    r.created_ms = st.int64(9);
    r.updated_ms = st.int64(10);
    return r;
}
}  // namespace

PaperRow Tx::insert_paper(const std::string& kind, const std::string& ref, int attempt,
                          const std::string& job_id, const std::string& device) {
    int next = 1;
    {
        Stmt st(cache_, "SELECT COALESCE(MAX(copy), 0) FROM paperwork WHERE kind = ? AND ref = ? AND attempt = ?");
        st.bind(1, kind).bind(2, ref).bind(3, std::int64_t{attempt});
        if (st.step()) next = static_cast<int>(st.int64(0)) + 1;
    }
    Stmt ins(cache_,
             "INSERT INTO paperwork(kind, ref, attempt, copy, job_id, device, state, created_ms, updated_ms) "
             "VALUES (?,?,?,?,?,?,'pending',?,?)");
    ins.bind(1, kind).bind(2, ref).bind(3, std::int64_t{attempt}).bind(4, std::int64_t{next});
    ins.bind(5, job_id).bind(6, device).bind(7, now_ms_).bind(8, now_ms_).run();
    PaperRow r;
    r.kind = kind;
    r.ref = ref;
    r.attempt = attempt;
    r.copy = next;
    r.job_id = job_id;
    r.device = device;
    r.state = "pending";
    r.created_ms = r.updated_ms = now_ms_;
    return r;
}

void Tx::update_paper(const PaperRow& key, const std::string& state, const std::string& reason,
                      const std::string& device_job) {
    Stmt st(cache_,
            "UPDATE paperwork SET state = ?, reason = ?, device_job = COALESCE(?, device_job), "
            "updated_ms = ? WHERE kind = ? AND ref = ? AND attempt = ? AND copy = ?");
    st.bind(1, state).bind(2, reason);
    if (device_job.empty()) st.bind_null(3); else st.bind(3, device_job);
    st.bind(4, now_ms_).bind(5, key.kind).bind(6, key.ref).bind(7, std::int64_t{key.attempt});
    st.bind(8, std::int64_t{key.copy}).run();
}

std::vector<PaperRow> Tx::papers(const std::string& kind, const std::string& ref) {
    static const std::string sql = std::string(kPaperColumns) + "WHERE kind = ? AND ref = ? ORDER BY attempt, copy";
    Stmt st(cache_, sql.c_str());
    st.bind(1, kind).bind(2, ref);
    std::vector<PaperRow> out;
    while (st.step()) out.push_back(paper_row(st));
    return out;
}

std::vector<std::string> Tx::mark_order_item_ready(const std::string& order_id, const std::string& job_id) {
    {
        Stmt ins(cache_, "INSERT OR IGNORE INTO order_ready(order_id, job_id, at_ms) VALUES (?,?,?)");
        ins.bind(1, order_id).bind(2, job_id).bind(3, now_ms_).run();
    }
    Stmt st(cache_, "SELECT job_id FROM order_ready WHERE order_id = ? ORDER BY at_ms, job_id");
    st.bind(1, order_id);
    std::vector<std::string> out;
    while (st.step()) out.push_back(st.text(0));
    return out;
}

namespace {
constexpr const char* kQaColumns =
    "SELECT job_id, attempt, state, device, camera, verdict, reason, confidence, metrics, evidence_dir, "
    "decided_by, decided_ms, source, note, printed_ms, created_ms, updated_ms FROM qa ";
QaRow qa_row(const Stmt& st) {
    QaRow r;
    r.job_id = st.text(0);
    r.attempt = static_cast<int>(st.int64(1));
    r.state = st.text(2);
    r.device = st.text(3);
    r.camera = st.text(4);
    r.verdict = st.text(5);
    r.reason = st.text(6);
    r.confidence = st.dbl(7);
    r.metrics = st.text(8);
    r.evidence_dir = st.text(9);
    r.decided_by = st.text(10);
    r.decided_ms = st.int64(11);
    r.source = st.text(12);
    r.note = st.text(13);
    r.printed_ms = st.int64(14);
    r.created_ms = st.int64(15);
    r.updated_ms = st.int64(16);
    return r;
}
}  // namespace

void Tx::put_qa(const QaRow& r) {
    Stmt st(cache_,
            "INSERT INTO qa(job_id, attempt, state, device, camera, verdict, reason, confidence, metrics, "
            "evidence_dir, decided_by, decided_ms, source, note, printed_ms, created_ms, updated_ms) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(job_id, attempt) DO UPDATE SET "
            "state = excluded.state, device = excluded.device, camera = excluded.camera, "
            "verdict = excluded.verdict, reason = excluded.reason, confidence = excluded.confidence, "
            "metrics = excluded.metrics, evidence_dir = excluded.evidence_dir, decided_by = excluded.decided_by, "
            "decided_ms = excluded.decided_ms, source = excluded.source, note = excluded.note, "
            "printed_ms = excluded.printed_ms, updated_ms = excluded.updated_ms");
    st.bind(1, r.job_id).bind(2, std::int64_t{r.attempt}).bind(3, r.state).bind(4, r.device).bind(5, r.camera);
    st.bind(6, r.verdict).bind(7, r.reason).bind_double(8, r.confidence);
    st.bind(9, r.metrics.empty() ? std::string("{}") : r.metrics).bind(10, r.evidence_dir);
    st.bind(11, r.decided_by).bind(12, r.decided_ms).bind(13, r.source).bind(14, r.note);
    st.bind(15, r.printed_ms).bind(16, r.created_ms ? r.created_ms : now_ms_).bind(17, now_ms_).run();
}

std::optional<QaRow> Tx::qa(const std::string& job_id, int attempt) {
    static const std::string sql = std::string(kQaColumns) + "WHERE job_id = ? AND attempt = ?";
    Stmt st(cache_, sql.c_str());
    st.bind(1, job_id).bind(2, std::int64_t{attempt});
    if (!st.step()) return std::nullopt;
    return qa_row(st);
}

std::optional<CommandRow> Tx::command(const std::string& command_id) {
    Stmt st(cache_, "SELECT command_id, type, result FROM commands WHERE command_id = ?");
    st.bind(1, command_id);
    if (!st.step()) return std::nullopt;
    CommandRow r{st.text(0), st.text(1), nlohmann::json::parse(st.text(2), nullptr, false)};
    return r;
}

void Tx::insert_command(const CommandRow& row) {
    Stmt st(cache_,
            "INSERT INTO commands(command_id, type, result, received_ms) VALUES (?,?,?,?)");
    st.bind(1, row.command_id).bind(2, row.type).bind(3, row.result.dump()).bind(4, now_ms_).run();
}

std::optional<std::string> Tx::meta(const std::string& key) {
    Stmt st(cache_, "SELECT value FROM meta WHERE key = ?");
    st.bind(1, key);
    if (!st.step()) return std::nullopt;
    return st.text(0);
}

void Tx::set_meta(const std::string& key, const std::string& value) {
    Stmt st(cache_, "INSERT INTO meta(key, value) VALUES (?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
    st.bind(1, key).bind(2, value).run();
}

std::int64_t Tx::append(const EventSpec& event) {
    if (&cache_ != j_.cache_.get()) throw std::logic_error("journal: an event appended outside a transaction");
    ++appended_;
    return j_.insert_event(event, now_ms_);
}

// ---- Journal ----------------------------------------------------------------------------------

Journal::Journal(const std::filesystem::path& state_dir, JournalOptions options)
    : path_(state_dir / "journal.db"), options_(std::move(options)) {
    std::error_code ec;
    std::filesystem::create_directories(state_dir, ec);
    if (ec)
        throw JournalError(JournalError::Kind::io,
                           fmt::format("journal: cannot create state directory {}: {}",
                                       state_dir.string(), ec.message()));
    int rc = sqlite3_open_v2(path_.c_str(), &db_,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             nullptr);
    cache_ = std::make_unique<StmtCache>(db_);
    rd_cache_ = std::make_unique<StmtCache>(rd_db_);
    if (rc != SQLITE_OK) {
        std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
        sqlite3_close(db_);
        db_ = nullptr;
        throw JournalError(kind_of(rc), fmt::format("journal: cannot open {}: {}", path_.string(), msg));
    }
    try {
        sqlite3_busy_timeout(db_, 5000);
        sqlite3_extended_result_codes(db_, 1);
        exec("PRAGMA journal_mode = WAL");
        // FULL: in WAL mode every commit fsyncs the WAL, so a committed job survives power loss.
        exec("PRAGMA synchronous = FULL");
        // The writer checkpoints itself every ~1000 WAL pages (~300 jobs). A checkpoint only on a
        // worker (PASSIVE) cannot catch up with a continuous stream of commits, so the WAL never
        // restarts and grows; every commit then extends the file and its fdatasync also has to
        // commit ext4 metadata (perf: fsync_buffers_list, __sync_dirty_buffer). Measured with
        // bench/intake/run.sh: that cost more than the occasional checkpoint in one commit.
        exec("PRAGMA wal_autocheckpoint = 1000");  // until migrations are done; then on_wal_commit
        exec("PRAGMA foreign_keys = ON");
        exec("PRAGMA temp_store = MEMORY");
        // Integrity check on open is quick for our sizes and refuses to run on a broken journal.
        {
            Stmt st(*cache_, "PRAGMA quick_check");
            if (st.step() && st.text(0) != "ok")
                throw JournalError(JournalError::Kind::corrupt,
                                   "journal: " + path_.string() + " is damaged: " + st.text(0));
        }
        migrate();
        set_options(options_);
        {
            Stmt st(*cache_, "SELECT max(ifnull((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'last_seq'), 0), "
                             "(SELECT ifnull(max(seq), 0) FROM outbox))");
            last_seq_ = st.step() ? st.int64(0) : 0;
            committed_seq_ = last_seq_.load();
        }
        {
            Stmt st(*cache_, "SELECT count(*) FROM outbox");
            outbox_count_ = st.step() ? st.int64(0) : 0;
        }
        rc = sqlite3_open_v2(path_.c_str(), &ckpt_db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                             nullptr);
        if (rc != SQLITE_OK) fail(ckpt_db_, rc, "open checkpoint connection");
        sqlite3_busy_timeout(ckpt_db_, 1000);
        sqlite3_exec(ckpt_db_, "PRAGMA synchronous = FULL", nullptr, nullptr, nullptr);
        rc = sqlite3_open_v2(path_.c_str(), &rd_db_, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
        if (rc != SQLITE_OK) fail(rd_db_, rc, "open read connection");
        sqlite3_busy_timeout(rd_db_, 5000);
        sqlite3_wal_hook(db_, &Journal::on_wal_commit, this);  // replaces the auto-checkpoint
        checkpointer_ = std::thread([this] { checkpointer_loop(); });
    } catch (...) {
        cache_->clear();
        rd_cache_->clear();
        sqlite3_close(rd_db_);
        sqlite3_close(ckpt_db_);
        sqlite3_close(db_);
        throw;
    }
}

Journal::~Journal() {
    if (checkpointer_.joinable()) {
        {
            std::lock_guard lock(wake_mu_);
            stopping_ = true;
        }
        wake_.notify_one();
        checkpointer_.join();
    }
    // A final checkpoint keeps the WAL small across restarts; failures here are harmless.
    if (ckpt_db_) sqlite3_wal_checkpoint_v2(ckpt_db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    cache_->clear();
    rd_cache_->clear();
    sqlite3_close(rd_db_);
    sqlite3_close(ckpt_db_);
    sqlite3_close(db_);
}

void Journal::exec(const char* sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
        std::string msg = err ? err : sqlite3_errstr(rc);
        sqlite3_free(err);
        throw JournalError(kind_of(rc), fmt::format("journal: {}: {}", sql, msg));
    }
}

void Journal::migrate() {
    int version = 0;
    {
        Stmt st(*cache_, "PRAGMA user_version");
        if (st.step()) version = static_cast<int>(st.int64(0));
    }
    if (version > kSchemaVersion)
        throw JournalError(JournalError::Kind::misuse,
                           fmt::format("journal: {} has schema version {}, newer than this "
                                       "pressline understands ({}); refusing to touch it",
                                       path_.string(), version, kSchemaVersion));
    file_version_ = version;
    if (version > 0 && !options_.migrate) return;
    for (int v = version; v < kSchemaVersion; ++v) {
        exec("BEGIN IMMEDIATE");
        try {
            exec(kMigrations[v]);
            exec(fmt::format("PRAGMA user_version = {}", v + 1).c_str());
            exec("COMMIT");
        } catch (...) {
            sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
            throw;
        }
    }
    file_version_ = kSchemaVersion;
}

void Journal::set_options(JournalOptions options) {
    std::lock_guard lock(mu_);
    options_ = std::move(options);
    free_checked_ = {};  // a new min_free_mb applies to the next admission
    if (!db_) return;
    std::int64_t pages = 0;  // 0 = SQLite's default maximum
    if (options_.max_db_mb > 0) {
        Stmt st(*cache_, "PRAGMA page_size");
        const std::int64_t page_size = st.step() ? st.int64(0) : 4096;
        pages = options_.max_db_mb * 1024 * 1024 / page_size;
    }
    exec(fmt::format("PRAGMA max_page_count = {}", pages > 0 ? pages : 4294967294LL).c_str());
}

std::string Journal::admission_problem() {
    if (options_.outbox_max_events > 0 && outbox_count_ >= options_.outbox_max_events)
        return fmt::format("event outbox is full ({} events waiting for the broker, limit "
                           "storage.outbox_max_events = {})",
                           outbox_count_, options_.outbox_max_events);
    if (options_.min_free_mb <= 0) return {};
    // statvfs at most every 200 ms: at full intake speed that is ~400 jobs (~0.5 MB) between
    // checks, far inside the margin storage.min_free_mb keeps.
    constexpr auto kFreeSpaceRecheck = std::chrono::milliseconds(200);
    const auto now = std::chrono::steady_clock::now();
    if (now - free_checked_ < kFreeSpaceRecheck) return free_problem_;
    free_checked_ = now;
    free_problem_.clear();
    struct statvfs vfs{};
    if (statvfs(path_.parent_path().c_str(), &vfs) == 0) {
        const auto free_mb = static_cast<std::int64_t>(vfs.f_bavail) *
                             static_cast<std::int64_t>(vfs.f_frsize) / (1024 * 1024);
        if (free_mb < options_.min_free_mb)
            free_problem_ = fmt::format("disk nearly full: {} MB free under {}, below "
                                        "storage.min_free_mb = {}",
                                        free_mb, path_.parent_path().string(), options_.min_free_mb);
    }
    return free_problem_;
}

std::int64_t Journal::insert_event(const EventSpec& event, std::int64_t now_ms) {
    // Called with mu_ held, inside a transaction. The outbox row itself records the sequence
    // (schema 4): the next one is max(meta.last_seq, max(outbox.seq)) + 1, and
    // outbox_delete_upto raises meta.last_seq before it deletes, so the sequence never has a
    // gap and never goes back, even once the outbox is empty.
    const std::int64_t seq = last_seq_ + 1;
    const auto now = std::chrono::system_clock::time_point(std::chrono::milliseconds(now_ms));
    std::string payload = render_event(event, new_ulid(now), format_time(now), seq, options_.source);
    Stmt st(*cache_, "INSERT INTO outbox(seq, topic, payload, created_ms) VALUES (?,?,?,?)");
    st.bind(1, seq).bind(2, options_.events_topic).bind(3, payload).bind(4, now_ms).run();
    last_seq_ = seq;  // restored by transact() on rollback
    ++outbox_count_;
    uncommitted_.push_back({seq, options_.events_topic, std::move(payload)});  // to tail_ once committed
    return seq;
}

std::int64_t Journal::transact(Admission admission, const std::function<void(Tx&)>& fn) {
    const auto called = std::chrono::steady_clock::now();
    std::unique_lock lock(mu_);
    const auto locked = std::chrono::steady_clock::now();
    if (admission == Admission::intake) {
        auto problem = admission_problem();
        if (!problem.empty()) throw JournalError(JournalError::Kind::full, "journal: " + problem);
    }
    const std::int64_t saved_seq = last_seq_.load();
    const std::int64_t saved_count = outbox_count_.load();
    uncommitted_.clear();
    int rc = sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) fail(db_, rc, "BEGIN");
    try {
        Tx tx(*this, *cache_, wall_ms());
        fn(tx);
        rc = sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
        if (rc != SQLITE_OK) fail(db_, rc, "COMMIT");
        committed_seq_ = last_seq_.load();
    } catch (...) {
        if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        last_seq_ = saved_seq;
        outbox_count_ = saved_count;
        uncommitted_.clear();
        throw;
    }
    if (!uncommitted_.empty()) {
        // Still under mu_, so the tail grows in commit (= sequence) order. It must never have a
        // hole: outbox_after trusts it from its front on. So a row that does not follow (or an
        // allocation failure) empties it, and the database answers until it fills again.
        std::lock_guard tail(tail_mu_);
        try {
            for (auto& row : uncommitted_) {
                if (!tail_.empty() && row.seq != tail_.back().seq + 1) tail_.clear();
                tail_.push_back(std::move(row));
            }
            while (tail_.size() > kOutboxTail) tail_.pop_front();
        } catch (...) {
            tail_.clear();
        }
        uncommitted_.clear();
    }
    const std::int64_t last = last_seq_ != saved_seq ? last_seq_.load() : 0;
    auto slow_line = note_commit(locked - called, std::chrono::steady_clock::now() - called);
    lock.unlock();  // the log line is written without holding up the next commit
    if (slow_line) {
        try {
            logger("journal")->warn("{}", *slow_line);
        } catch (...) {  // a log line must not turn a durable commit into an error
        }
    }
    return last;
}

std::optional<std::string> Journal::note_commit(std::chrono::steady_clock::duration wait,
                                                std::chrono::steady_clock::duration total) noexcept {
    // The commit is durable: nothing here may make it look failed, so nothing may throw.
    try {
        using ms = std::chrono::duration<double, std::milli>;
        std::lock_guard lock(stats_mu_);
        ++stats_.commits;
        stats_.worst_ms = std::max(stats_.worst_ms, ms(total).count());
        stats_.worst_wait_ms = std::max(stats_.worst_wait_ms, ms(wait).count());
        if (total < kSlowCommit) return std::nullopt;
        ++stats_.slow;
        ++slow_unreported_;
        const auto now = std::chrono::steady_clock::now();
        if (slow_reported_ != std::chrono::steady_clock::time_point{} && now - slow_reported_ < std::chrono::seconds(10))
            return std::nullopt;
        auto line = fmt::format(
            "slow commit: {:.0f} ms ({:.0f} ms waiting for the writer, {:.0f} ms in the transaction and "
            "its fsync); {} commit(s) of {} ms or more since the last such line. Orders are acknowledged "
            "only after their commit: check the disk (iostat -x) if this repeats",
            ms(total).count(), ms(wait).count(), ms(total - wait).count(), slow_unreported_, kSlowCommit.count());
        slow_unreported_ = 0;
        slow_reported_ = now;
        return line;
    } catch (...) {
        return std::nullopt;
    }
}

Journal::CommitStats Journal::commit_stats() {
    std::lock_guard lock(stats_mu_);
    return stats_;
}

std::vector<OutboxRow> Journal::outbox_after(std::int64_t after, std::size_t limit) {
    {
        // The tail holds every event committed from its front on: when that covers `after + 1`,
        // the answer (possibly "nothing newer") needs no read of the database.
        std::lock_guard tail(tail_mu_);
        if (!tail_.empty() && tail_.front().seq <= after + 1) {
            std::vector<OutboxRow> rows;
            const auto skip = static_cast<std::size_t>(std::max<std::int64_t>(0, after + 1 - tail_.front().seq));
            for (std::size_t i = skip; i < tail_.size() && rows.size() < limit; ++i) rows.push_back(tail_[i]);
            return rows;
        }
    }
    std::lock_guard lock(rd_mu_);
    Stmt st(*rd_cache_, "SELECT seq, topic, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?");
    st.bind(1, after).bind(2, static_cast<std::int64_t>(limit));
    std::vector<OutboxRow> rows;
    while (st.step()) rows.push_back({st.int64(0), st.text(1), st.text(2)});
    return rows;
}

void Journal::outbox_delete_upto(std::int64_t seq) {
    // transact() restores outbox_count_ if the commit fails.
    transact(Admission::internal, [&](Tx&) {
        // The floor of the sequence first: the rows about to go are the only record of it.
        Stmt m(*cache_, "UPDATE meta SET value = max(CAST(value AS INTEGER), "
                        "(SELECT ifnull(max(seq), 0) FROM outbox WHERE seq <= ?)) WHERE key = 'last_seq'");
        m.bind(1, seq).run();
        Stmt st(*cache_, "DELETE FROM outbox WHERE seq <= ?");
        st.bind(1, seq).run();
        outbox_count_ -= sqlite3_changes(db_);
        if (outbox_count_ < 0) outbox_count_ = 0;
    });
    std::lock_guard tail(tail_mu_);
    while (!tail_.empty() && tail_.front().seq <= seq) tail_.pop_front();
}

std::int64_t Journal::outbox_count() { return outbox_count_.load(); }

std::int64_t Journal::last_sequence() { return committed_seq_.load(); }

std::optional<JobRow> Journal::job(const std::string& job_id) {
    std::lock_guard lock(rd_mu_);
    return reader().job(job_id);
}

std::vector<JobRow> Journal::jobs_in_state(JobState state) {
    std::vector<std::string> ids;
    {
        std::lock_guard lock(rd_mu_);
        Stmt st(*rd_cache_, "SELECT job_id FROM jobs WHERE state = ? ORDER BY received_ms");
        st.bind(1, std::string(to_string(state)));
        while (st.step()) ids.push_back(st.text(0));
    }
    std::vector<JobRow> rows;
    for (const auto& id : ids)
        if (auto r = job(id)) rows.push_back(std::move(*r));
    return rows;
}

std::vector<TryRow> Journal::open_tries() {
    static const std::string sql = std::string(kTryColumns) +
        "WHERE state IN ('recorded', 'created', 'handed_over') ORDER BY created_ms, job_id";
    std::lock_guard lock(rd_mu_);
    Stmt st(*rd_cache_, sql.c_str());
    std::vector<TryRow> out;
    while (st.step()) out.push_back(try_row(st));
    return out;
}

std::vector<TryRow> Journal::tries(const std::string& job_id) {
    static const std::string sql = std::string(kTryColumns) + "WHERE job_id = ? ORDER BY attempt, try";
    std::lock_guard lock(rd_mu_);
    Stmt st(*rd_cache_, sql.c_str());
    st.bind(1, job_id);
    std::vector<TryRow> out;
    while (st.step()) out.push_back(try_row(st));
    return out;
}

std::vector<PaperRow> Journal::open_papers() {
    static const std::string sql = std::string(kPaperColumns) +
        "WHERE state IN ('pending', 'sending') ORDER BY created_ms, kind, ref, attempt, copy";
    std::lock_guard lock(rd_mu_);
    Stmt st(*rd_cache_, sql.c_str());
    std::vector<PaperRow> out;
    while (st.step()) out.push_back(paper_row(st));
    return out;
}

std::vector<PaperRow> Journal::papers(const std::string& kind, const std::string& ref) {
    std::lock_guard lock(rd_mu_);
    return reader().papers(kind, ref);
}

std::optional<QaRow> Journal::qa(const std::string& job_id, int attempt) {
    std::lock_guard lock(rd_mu_);
    return reader().qa(job_id, attempt);
}

std::vector<QaRow> Journal::qa_rows(const std::string& job_id) {
    static const std::string sql = std::string(kQaColumns) + "WHERE job_id = ? ORDER BY attempt";
    std::lock_guard lock(rd_mu_);
    Stmt st(*rd_cache_, sql.c_str());
    st.bind(1, job_id);
    std::vector<QaRow> out;
    while (st.step()) out.push_back(qa_row(st));
    return out;
}

std::optional<std::string> Journal::meta(const std::string& key) {
    std::lock_guard lock(rd_mu_);
    return reader().meta(key);
}

int Journal::prune(std::int64_t cutoff_ms, std::int64_t tombstone_cutoff_ms) {
    std::lock_guard lock(mu_);
    int rc = sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) fail(db_, rc, "BEGIN");
    try {
        exec("CREATE TEMP TABLE IF NOT EXISTS prune_ids(job_id TEXT PRIMARY KEY)");
        exec("DELETE FROM prune_ids");
        {
            Stmt st(*cache_, "INSERT INTO prune_ids SELECT job_id FROM jobs "
                         "WHERE finished_ms IS NOT NULL AND finished_ms < ? AND pruned = 0 LIMIT 10000");
            st.bind(1, cutoff_ms).run();
        }
        const int n = sqlite3_changes(db_);
        exec("DELETE FROM transitions WHERE job_id IN (SELECT job_id FROM prune_ids)");
        exec("DELETE FROM attempts WHERE job_id IN (SELECT job_id FROM prune_ids)");
        exec("DELETE FROM tries WHERE job_id IN (SELECT job_id FROM prune_ids)");
        exec("DELETE FROM paperwork WHERE job_id IN (SELECT job_id FROM prune_ids)");
        exec("DELETE FROM order_ready WHERE job_id IN (SELECT job_id FROM prune_ids)");
        exec("DELETE FROM qa WHERE job_id IN (SELECT job_id FROM prune_ids)");
        exec("UPDATE jobs SET payload = '', pruned = 1 WHERE job_id IN (SELECT job_id FROM prune_ids)");
        {
            Stmt st(*cache_, "DELETE FROM jobs WHERE pruned = 1 AND finished_ms < ?");
            st.bind(1, tombstone_cutoff_ms).run();
        }
        {
            Stmt st(*cache_, "DELETE FROM commands WHERE received_ms < ?");
            st.bind(1, tombstone_cutoff_ms).run();
        }
        exec("COMMIT");
        return n;
    } catch (...) {
        if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
}

namespace {
// ~4 MB of WAL between checkpoints (about 250 intake commits of 4 pages).
constexpr int kCheckpointFrames = 1000;
// If the checkpoint thread falls this far behind (a slow disk), the writer checkpoints inline
// as SQLite's own auto-checkpoint would, so that the WAL stays bounded.
constexpr int kInlineCheckpointFrames = 16 * kCheckpointFrames;
}  // namespace

int Journal::on_wal_commit(void* self, sqlite3* db, const char* name, int frames) noexcept {
    // Runs on the writer, inside its COMMIT, with mu_ held. Always SQLITE_OK: anything else
    // would report the (already durable) transaction as failed.
    auto* j = static_cast<Journal*>(self);
    if (frames >= kInlineCheckpointFrames) {
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    } else if (frames >= kCheckpointFrames) {
        try {
            std::lock_guard lock(j->wake_mu_);
            j->checkpoint_wanted_ = true;
        } catch (const std::system_error&) {
            return SQLITE_OK;  // the next commit asks again
        }
        j->wake_.notify_one();
    }
    return SQLITE_OK;
}

void Journal::checkpointer_loop() {
    auto last_warning = std::chrono::steady_clock::time_point{};
    auto last_hold_warning = std::chrono::steady_clock::time_point{};
    for (;;) {
        {
            std::unique_lock lock(wake_mu_);
            wake_.wait(lock, [this] { return checkpoint_wanted_ || stopping_; });
            if (stopping_) return;
            checkpoint_wanted_ = false;
        }
        try {
            // The bulk, concurrent with commits.
            const auto [log, backfilled] = checkpoint_frames();
            // The frames committed meanwhile, with commits held off: afterwards the WAL is fully
            // backfilled and the next commit starts it again from the beginning. Only when that
            // remainder is small (step 1 may have been BUSY, or held back by a reader): the
            // writer's mutex must not be held for a whole checkpoint.
            if (log - backfilled > kCheckpointFrames / 2) continue;
            std::chrono::steady_clock::duration held{};
            {
                std::lock_guard lock(mu_);
                const auto t0 = std::chrono::steady_clock::now();
                const int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
                if (rc != SQLITE_OK && rc != SQLITE_BUSY) fail(db_, rc, "wal checkpoint");
                held = std::chrono::steady_clock::now() - t0;
            }
            const auto now = std::chrono::steady_clock::now();
            if (held >= kSlowCommit &&
                (last_hold_warning == std::chrono::steady_clock::time_point{} || now - last_hold_warning > std::chrono::seconds(10))) {
                // A cause of the "waiting for the writer" part of a slow commit line.
                logger("journal")->warn("checkpoint held commits off for {} ms ({} frames left after its first step)",
                                        std::chrono::duration_cast<std::chrono::milliseconds>(held).count(),
                                        log - backfilled);
                last_hold_warning = now;
            }
            // Commits that asked for a checkpoint while this one ran are served by it.
            std::lock_guard wake(wake_mu_);
            checkpoint_wanted_ = false;
        } catch (const JournalError& e) {
            // Harmless for what is committed; the next large WAL tries again. Said once a minute
            // at most: a full disk would otherwise repeat it with every commit.
            const auto now = std::chrono::steady_clock::now();
            if (now - last_warning > std::chrono::minutes(1)) {
                logger("journal")->warn("checkpoint failed (the WAL keeps growing until one succeeds): {}", e.what());
                last_warning = now;
            }
        }
    }
}

std::pair<int, int> Journal::checkpoint_frames() {
    std::lock_guard lock(ckpt_mu_);
    int log = 0;
    int backfilled = 0;
    int rc = sqlite3_wal_checkpoint_v2(ckpt_db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &backfilled);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) fail(ckpt_db_, rc, "wal checkpoint");
    if (rc == SQLITE_BUSY || log < 0) return {log < 0 ? 0 : log, 0};
    return {log, backfilled};
}

void Journal::checkpoint() { checkpoint_frames(); }

}  // namespace pressline::agent
