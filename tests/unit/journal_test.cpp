// Journal: durability rules that the rest of the agent relies on.
#include <gtest/gtest.h>

#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "pressline/agent/journal.hpp"

using namespace pressline::agent;
namespace fs = std::filesystem;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        char tmpl[] = "/tmp/pressline-journal-XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() { fs::remove_all(path); }
};

JournalOptions opts() { return {"pressline://shop/st", "p/shop/st/events", 1'000'000, 0, 0}; }

JobRow job(const std::string& id) {
    JobRow r;
    r.job_id = id;
    r.order_id = "O-" + id;
    r.priority = "standard";
    r.payload = "{}";
    r.topic = "t";
    return r;
}

std::int64_t wall_now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch()).count();
}

std::int64_t seq_of(const OutboxRow& row) {
    return std::stoll(nlohmann::json::parse(row.payload).at("sequence").get<std::string>());
}

}  // namespace

TEST(Journal, SequenceIsGapFreeAcrossRollbacksAndRestarts) {
    TempDir d;
    {
        Journal j(d.path, opts());
        j.transact(Admission::internal, [](Tx& tx) { tx.append({"a.one", std::nullopt, {}}); });
        EXPECT_THROW(j.transact(Admission::internal,
                                [](Tx& tx) {
                                    tx.append({"a.lost", std::nullopt, {}});
                                    throw std::runtime_error("boom");
                                }),
                     std::runtime_error);
        j.transact(Admission::internal, [](Tx& tx) { tx.append({"a.two", std::nullopt, {}}); });
        auto rows = j.outbox_after(0, 10);
        ASSERT_EQ(rows.size(), 2u);
        EXPECT_EQ(seq_of(rows[0]), 1);
        EXPECT_EQ(seq_of(rows[1]), 2);
        EXPECT_EQ(nlohmann::json::parse(rows[1].payload)["type"], "com.pressline.a.two");
        // Acknowledged events are deleted; the sequence must not restart.
        j.outbox_delete_upto(2);
        EXPECT_EQ(j.outbox_count(), 0);
    }
    Journal j(d.path, opts());
    EXPECT_EQ(j.last_sequence(), 2);
    j.transact(Admission::internal, [](Tx& tx) { tx.append({"a.three", std::nullopt, {}}); });
    auto rows = j.outbox_after(0, 10);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(seq_of(rows[0]), 3);
    EXPECT_EQ(nlohmann::json::parse(rows[0].payload)["sequence"], "00000000000000000003");
}

TEST(Journal, JobAndEventCommitTogetherOrNotAtAll) {
    TempDir d;
    Journal j(d.path, opts());
    EXPECT_THROW(j.transact(Admission::internal,
                            [](Tx& tx) {
                                tx.insert_job(job("J-1"));
                                tx.append({"job.accepted", "J-1", {}});
                                tx.insert_job(job("J-1"));  // primary key violation
                            }),
                 JournalError);
    EXPECT_FALSE(j.job("J-1").has_value());
    EXPECT_EQ(j.outbox_count(), 0);
    EXPECT_EQ(j.last_sequence(), 0);
}

TEST(Journal, LifecycleIsEnforced) {
    TempDir d;
    Journal j(d.path, opts());
    j.transact(Admission::internal, [](Tx& tx) { tx.insert_job(job("J-1")); });
    EXPECT_THROW(j.transact(Admission::internal,
                            [](Tx& tx) {
                                tx.transition("J-1", JobState::printed, "", {"job.printed", "J-1", {}});
                            }),
                 std::logic_error);
    j.transact(Admission::internal, [](Tx& tx) {
        tx.transition("J-1", JobState::cancelled, "by test", {"job.cancelled", "J-1", {}});
    });
    EXPECT_EQ(j.job("J-1")->state, JobState::cancelled);
    EXPECT_THROW(j.transact(Admission::internal,
                            [](Tx& tx) {
                                tx.transition("J-1", JobState::cancelled, "", {"job.cancelled", "J-1", {}});
                            }),
                 std::logic_error);
}

TEST(Journal, FullOutboxRefusesIntakeButNotInternalWork) {
    TempDir d;
    auto o = opts();
    o.outbox_max_events = 2;
    Journal j(d.path, o);
    for (int i = 0; i < 2; ++i)
        j.transact(Admission::intake, [](Tx& tx) { tx.append({"e", std::nullopt, {}}); });
    try {
        j.transact(Admission::intake, [](Tx& tx) { tx.append({"e", std::nullopt, {}}); });
        FAIL() << "intake admitted past the outbox limit";
    } catch (const JournalError& e) {
        EXPECT_TRUE(e.full());
        EXPECT_NE(std::string(e.what()).find("storage.outbox_max_events"), std::string::npos);
    }
    EXPECT_NO_THROW(j.transact(Admission::internal, [](Tx& tx) { tx.append({"e", std::nullopt, {}}); }));
    j.outbox_delete_upto(3);
    EXPECT_NO_THROW(j.transact(Admission::intake, [](Tx& tx) { tx.append({"e", std::nullopt, {}}); }));
}

TEST(Journal, DatabaseSizeCapGivesFullNotCorruption) {
    TempDir d;
    auto o = opts();
    o.max_db_mb = 16;
    Journal j(d.path, o);
    std::string big(64 * 1024, 'x');
    bool full = false;
    int accepted = 0;
    for (int i = 0; i < 1000 && !full; ++i) {
        try {
            j.transact(Admission::intake, [&](Tx& tx) {
                auto r = job("J-" + std::to_string(i));
                r.payload = big;
                tx.insert_job(r);
                tx.append({"job.accepted", r.job_id, {}});
            });
            ++accepted;
        } catch (const JournalError& e) {
            full = e.full();
            ASSERT_TRUE(full) << e.what();
        }
    }
    ASSERT_TRUE(full);
    // Everything accepted before is still there, and the sequence has no gap.
    EXPECT_EQ(j.last_sequence(), accepted);
    EXPECT_TRUE(j.job("J-0").has_value());
    EXPECT_TRUE(j.job("J-" + std::to_string(accepted - 1)).has_value());
}

TEST(Journal, PruneKeepsTombstonesOfFinishedJobs) {
    TempDir d;
    Journal j(d.path, opts());
    j.transact(Admission::internal, [](Tx& tx) {
        tx.insert_job(job("J-old"));
        tx.insert_job(job("J-open"));
        tx.transition("J-old", JobState::cancelled, "", {"job.cancelled", "J-old", {}});
    });
    const auto far_future = std::int64_t{1} << 50;
    EXPECT_EQ(j.prune(far_future, 0), 1);
    auto old = j.job("J-old");
    ASSERT_TRUE(old.has_value());
    EXPECT_TRUE(old->pruned);
    EXPECT_TRUE(old->payload.empty());
    EXPECT_FALSE(j.job("J-open")->pruned);
    EXPECT_EQ(j.prune(far_future, far_future), 0);
    EXPECT_FALSE(j.job("J-old").has_value());
    EXPECT_TRUE(j.job("J-open").has_value());
}

TEST(Journal, RefusesNewerSchema) {
    TempDir d;
    { Journal j(d.path, opts()); }
    {
        sqlite3* db = nullptr;
        ASSERT_EQ(sqlite3_open((d.path / "journal.db").c_str(), &db), 0);
        sqlite3_exec(db, "PRAGMA user_version = 999", nullptr, nullptr, nullptr);
        sqlite3_close(db);
    }
    try {
        Journal j(d.path, opts());
        FAIL() << "opened a journal from the future";
    } catch (const JournalError& e) {
        EXPECT_NE(std::string(e.what()).find("newer"), std::string::npos);
    }
}

TEST(Journal, PaperworkCopiesAreNumberedAndOpenOnesListed) {
    TempDir d;
    Journal j(d.path, opts());
    PaperRow first, second;
    j.transact(Admission::internal, [&](Tx& tx) {
        tx.insert_job(job("J-1"));
        first = tx.insert_paper("ticket", "J-1", 1, "J-1", "zebra");
        second = tx.insert_paper("ticket", "J-1", 1, "J-1", "zebra");
        tx.insert_paper("label", "O-J-1", 0, "J-1", "zebra");
    });
    EXPECT_EQ(first.copy, 1);
    EXPECT_EQ(second.copy, 2);
    j.transact(Admission::internal, [&](Tx& tx) { tx.update_paper(first, "sending"); });
    j.transact(Admission::internal, [&](Tx& tx) { tx.update_paper(second, "printed", "", "42"); });
    auto open = j.open_papers();
    ASSERT_EQ(open.size(), 2u);  // the sending ticket copy and the pending label
    std::map<std::string, PaperRow> by_kind;
    for (const auto& r : open) by_kind[r.kind] = r;
    EXPECT_EQ(by_kind["ticket"].state, "sending");
    EXPECT_EQ(by_kind["ticket"].copy, 1);
    EXPECT_EQ(by_kind["label"].state, "pending");
    auto tickets = j.papers("ticket", "J-1");
    ASSERT_EQ(tickets.size(), 2u);
    EXPECT_EQ(tickets[1].state, "printed");
    EXPECT_EQ(tickets[1].device_job, "42");
}

TEST(Journal, OrderItemsReadyAreCountedOnce) {
    TempDir d;
    Journal j(d.path, opts());
    j.transact(Admission::internal, [&](Tx& tx) {
        EXPECT_EQ(tx.mark_order_item_ready("O-1", "J-a"), std::vector<std::string>{"J-a"});
        EXPECT_EQ(tx.mark_order_item_ready("O-1", "J-a").size(), 1u);  // idempotent
        EXPECT_EQ(tx.mark_order_item_ready("O-1", "J-b"), (std::vector<std::string>{"J-a", "J-b"}));
        EXPECT_EQ(tx.mark_order_item_ready("O-2", "J-c").size(), 1u);
    });
}

TEST(Journal, SchemaOneIsMigratedKeepingItsJobs) {
    TempDir d;
    {
        Journal j(d.path, opts());
        j.transact(Admission::internal, [](Tx& tx) { tx.insert_job(job("J-kept")); });
    }
    {
        // Make it look like a journal written by schema 1 (before paperwork existed).
        sqlite3* db = nullptr;
        ASSERT_EQ(sqlite3_open((d.path / "journal.db").c_str(), &db), 0);
        ASSERT_EQ(sqlite3_exec(db, "DROP TABLE paperwork; DROP TABLE order_ready; DROP TABLE qa; PRAGMA user_version = 1",
                               nullptr, nullptr, nullptr), SQLITE_OK);
        sqlite3_close(db);
    }
    Journal j(d.path, opts());
    EXPECT_TRUE(j.job("J-kept").has_value());
    EXPECT_TRUE(j.open_papers().empty());
    j.transact(Admission::internal, [](Tx& tx) { tx.insert_paper("ticket", "J-kept", 1, "J-kept", "z"); });
    EXPECT_EQ(j.open_papers().size(), 1u);
    EXPECT_EQ(Journal::schema_version(), 4);
}

// Makes the journal in `dir` look like one written by schema 3: jobs WITHOUT ROWID, the sequence
// in meta.last_seq (6 events sent and deleted, 7 still in the outbox).
void make_schema_three(const fs::path& dir) {
    { Journal j(dir, opts()); }
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir / "journal.db").c_str(), &db), 0);
    const char* v3 = R"sql(
        DROP TABLE jobs;
        CREATE TABLE jobs (
            job_id TEXT PRIMARY KEY, order_id TEXT NOT NULL, state TEXT NOT NULL,
            priority TEXT NOT NULL, payload TEXT NOT NULL, topic TEXT NOT NULL,
            attempt INTEGER NOT NULL DEFAULT 0, received_ms INTEGER NOT NULL,
            updated_ms INTEGER NOT NULL, finished_ms INTEGER, reason TEXT,
            pruned INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
        CREATE INDEX jobs_by_finished ON jobs(finished_ms) WHERE finished_ms IS NOT NULL;
        INSERT INTO jobs(job_id, order_id, state, priority, payload, topic, received_ms, updated_ms)
            VALUES ('J-old', 'O-old', 'accepted', 'express', '{"job_id":"J-old"}', 't', 5, 5);
        INSERT INTO outbox(seq, topic, payload, created_ms) VALUES (7, 't', '{}', 5);
        UPDATE meta SET value = '6' WHERE key = 'last_seq';
        PRAGMA user_version = 3;)sql";
    ASSERT_EQ(sqlite3_exec(db, v3, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    sqlite3_close(db);
}

TEST(Journal, SchemaThreeIsMigratedKeepingJobsAndTheSequence) {
    TempDir d;
    ASSERT_NO_FATAL_FAILURE(make_schema_three(d.path));
    {
        Journal j(d.path, opts());
        auto old = j.job("J-old");
        ASSERT_TRUE(old);
        EXPECT_EQ(old->order_id, "O-old");
        EXPECT_EQ(old->payload, R"({"job_id":"J-old"})");
        EXPECT_EQ(j.last_sequence(), 7);
        // A job_id is still unique.
        EXPECT_THROW(j.transact(Admission::internal, [](Tx& tx) { tx.insert_job(job("J-old")); }), JournalError);
        j.transact(Admission::internal, [](Tx& tx) {
            tx.insert_job(job("J-new"));
            EXPECT_EQ(tx.append({"job.accepted", "J-new", {}}), 8);
        });
        // Once every event is acknowledged and deleted the sequence still goes on from 8.
        j.outbox_delete_upto(8);
        EXPECT_EQ(j.outbox_count(), 0);
    }
    Journal j(d.path, opts());
    EXPECT_EQ(j.last_sequence(), 8);
    EXPECT_TRUE(j.job("J-new"));
    j.transact(Admission::internal, [](Tx& tx) { EXPECT_EQ(tx.append({"a.next", std::nullopt, {}}), 9); });
}

TEST(Journal, SchemaTwoIsMigratedToQaKeepingItsJobsAndPaperwork) {
    TempDir d;
    {
        Journal j(d.path, opts());
        j.transact(Admission::internal, [](Tx& tx) {
            tx.insert_job(job("J-kept"));
            tx.insert_paper("ticket", "J-kept", 1, "J-kept", "z");
        });
    }
    {
        // Make it look like a journal written by schema 2 (before visual QA).
        sqlite3* db = nullptr;
        ASSERT_EQ(sqlite3_open((d.path / "journal.db").c_str(), &db), 0);
        ASSERT_EQ(sqlite3_exec(db, "DROP TABLE qa; PRAGMA user_version = 2", nullptr, nullptr, nullptr), SQLITE_OK);
        sqlite3_close(db);
    }
    Journal j(d.path, opts());
    EXPECT_TRUE(j.job("J-kept").has_value());
    EXPECT_EQ(j.open_papers().size(), 1u);
    EXPECT_FALSE(j.qa("J-kept", 1).has_value());
    QaRow r;
    r.job_id = "J-kept";
    r.attempt = 1;
    r.state = "pending";
    r.device = "dtg1";
    r.printed_ms = 1234;
    j.transact(Admission::internal, [&](Tx& tx) { tx.put_qa(r); });
    auto got = j.qa("J-kept", 1);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->state, "pending");
    EXPECT_EQ(got->metrics, "{}");
    EXPECT_EQ(got->printed_ms, 1234);
    // Replaced as a whole: the decision, who and when are kept.
    r.state = "decided";
    r.verdict = "pass";
    r.reason = "spot_check";
    r.confidence = 0.75;
    r.metrics = R"({"mean_de00":1.5})";
    r.decided_by = "alice";
    r.decided_ms = 99;
    r.source = "local";
    j.transact(Admission::internal, [&](Tx& tx) { tx.put_qa(r); });
    got = j.qa("J-kept", 1);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->state, "decided");
    EXPECT_EQ(got->verdict, "pass");
    EXPECT_DOUBLE_EQ(got->confidence, 0.75);
    EXPECT_EQ(got->decided_by, "alice");
    EXPECT_EQ(got->decided_ms, 99);
    EXPECT_EQ(got->source, "local");
    EXPECT_EQ(got->metrics, R"({"mean_de00":1.5})");
    EXPECT_EQ(j.qa_rows("J-kept").size(), 1u);
    // The row goes with the job when it is pruned.
    j.transact(Admission::internal, [](Tx& tx) {
        tx.transition("J-kept", JobState::failed, "x", {});
    });
    EXPECT_EQ(j.prune(wall_now_ms() + 1000, 0), 1);
    EXPECT_TRUE(j.qa_rows("J-kept").empty());
}

// A steady stream of intake commits never pauses for a checkpoint, so the journal's checkpoint
// thread must still make the WAL start over: without it the WAL grows by every commit (and each
// fdatasync then also writes file metadata).
TEST(Journal, WalStaysBoundedUnderAStreamOfCommits) {
    TempDir d;
    Journal j(d.path, opts());
    const std::string payload(1000, 'x');
    std::uintmax_t largest = 0;
    for (int i = 0; i < 3000; ++i) {
        j.transact(Admission::intake, [&](Tx& tx) {
            auto row = job("J-" + std::to_string(i));
            row.payload = payload;
            tx.insert_job(row);
            tx.append({"job.accepted", row.job_id, {}});
        });
        largest = std::max(largest, fs::file_size(d.path / "journal.db-wal"));
    }
    // 3000 commits of 3 to 5 pages would be 9000+ frames (37 MB) in one WAL; the checkpoints
    // every 1000 frames keep it to a few times that.
    EXPECT_LT(largest, 16u << 20) << "the WAL was never restarted";
    EXPECT_EQ(j.last_sequence(), 3000);
    EXPECT_TRUE(j.job("J-2999"));
}

// `pressline status` of a new binary next to an older running daemon: it reads the journal as it
// is and leaves the migration to the daemon (an older pressline refuses a newer schema).
TEST(Journal, OpenedWithoutMigrateAnOlderJournalStaysAsItIs) {
    TempDir d;
    ASSERT_NO_FATAL_FAILURE(make_schema_three(d.path));
    auto o = opts();
    o.migrate = false;
    {
        Journal j(d.path, o);
        EXPECT_EQ(j.file_schema_version(), 3);
        ASSERT_TRUE(j.job("J-old"));
        EXPECT_EQ(j.jobs_in_state(JobState::accepted).size(), 1u);
        EXPECT_EQ(j.last_sequence(), 7);
    }
    {
        Journal j(d.path, o);
        EXPECT_EQ(j.file_schema_version(), 3) << "the first open without migrate changed the schema";
    }
    Journal j(d.path, opts());
    EXPECT_EQ(j.file_schema_version(), Journal::schema_version());
    EXPECT_TRUE(j.job("J-old"));
    // A new journal is created whole even without migrate: there is nothing older to protect.
    TempDir fresh;
    Journal n(fresh.path, o);
    EXPECT_EQ(n.file_schema_version(), Journal::schema_version());
}

// The io_context reads jobs while intake commits on paho's thread: a read must neither wait for
// a transaction that is still open (its fsync can take milliseconds) nor see what it has not
// committed yet.
TEST(Journal, ReadsDoNotWaitForAnOpenTransactionAndSeeOnlyCommits) {
    TempDir d;
    Journal j(d.path, opts());
    j.transact(Admission::internal, [](Tx& tx) { tx.insert_job(job("J-1")); });

    std::promise<void> inside;
    std::promise<void> release;
    auto writer = std::async(std::launch::async, [&] {
        j.transact(Admission::internal, [&](Tx& tx) {
            tx.insert_job(job("J-2"));
            tx.transition("J-1", JobState::cancelled, "test", {"job.cancelled", "J-1", {}});
            inside.set_value();
            release.get_future().wait();
        });
    });
    inside.get_future().wait();
    auto reads = std::async(std::launch::async, [&] {
        return std::make_tuple(j.job("J-1"), j.job("J-2"), j.jobs_in_state(JobState::accepted).size(),
                               j.open_papers().size(), j.meta("draining"));
    });
    const bool answered = reads.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
    release.set_value();
    writer.get();
    ASSERT_TRUE(answered) << "a read waited for the open transaction";
    auto [one, two, accepted, papers, draining] = reads.get();
    ASSERT_TRUE(one.has_value());
    EXPECT_EQ(one->state, JobState::accepted) << "a read saw an uncommitted transition";
    EXPECT_FALSE(two.has_value()) << "a read saw an uncommitted job";
    EXPECT_EQ(accepted, 1u);
    EXPECT_EQ(papers, 0u);
    EXPECT_FALSE(draining.has_value());
    // Once committed, the next read sees it.
    EXPECT_EQ(j.job("J-1")->state, JobState::cancelled);
    EXPECT_TRUE(j.job("J-2").has_value());
}

// A commit that has to wait for another one is slow for the order behind it: the stop line and
// the warning say how slow and how much of it was waiting for the writer.
TEST(Journal, SlowCommitsAreCountedWithTheirWaitForTheWriter) {
    TempDir d;
    Journal j(d.path, opts());
    j.transact(Admission::internal, [](Tx& tx) { tx.insert_job(job("J-1")); });
    EXPECT_EQ(j.commit_stats().commits, 1);

    std::promise<void> inside;
    auto holder = std::async(std::launch::async, [&] {
        j.transact(Admission::internal, [&](Tx& tx) {
            tx.insert_job(job("J-2"));
            inside.set_value();
            std::this_thread::sleep_for(std::chrono::milliseconds(500));
        });
    });
    ASSERT_EQ(inside.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
    // An order's commit (intake admission included) behind the open transaction.
    const auto called = std::chrono::steady_clock::now();
    j.transact(Admission::intake, [](Tx& tx) { tx.insert_job(job("J-3")); });
    const double waited = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - called).count();
    holder.get();

    const auto st = j.commit_stats();
    EXPECT_EQ(st.commits, 3);
    EXPECT_GE(st.slow, 2) << "the holder and the commit behind it";
    EXPECT_GE(st.worst_ms, 500.0) << "the holder's own commit";
    EXPECT_GE(st.worst_wait_ms, 200.0) << "the order's commit waited for the writer";
    EXPECT_LE(st.worst_wait_ms, waited);
    EXPECT_TRUE(j.job("J-3").has_value());
}

// The outbox publishes recent events from memory: whatever it asks for, the answer must be the
// database's, across rollbacks, more events than memory keeps, and deletion of acknowledged ones.
TEST(Journal, OutboxAnswersAsTheDatabaseDoes) {
    TempDir d;
    Journal j(d.path, opts());
    for (int i = 0; i < 1500; ++i) {
        if (i == 1200) {
            EXPECT_THROW(j.transact(Admission::internal,
                                    [](Tx& tx) {
                                        tx.append({"t.lost", std::nullopt, {}});
                                        throw std::runtime_error("boom");
                                    }),
                         std::runtime_error);
        }
        j.transact(Admission::internal, [i](Tx& tx) {
            tx.append({"t.event", "J-" + std::to_string(i), {{"i", i}}});
            if (i % 3 == 0) tx.append({"t.second", std::nullopt, {{"i", i}}});
        });
    }
    const std::int64_t last = j.last_sequence();
    ASSERT_EQ(last, 2000);

    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open_v2((d.path / "journal.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    auto from_db = [&](std::int64_t after, int limit) {
        sqlite3_stmt* st = nullptr;
        sqlite3_prepare_v2(db, "SELECT seq, topic, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", -1, &st,
                           nullptr);
        sqlite3_bind_int64(st, 1, after);
        sqlite3_bind_int(st, 2, limit);
        std::vector<std::string> rows;
        while (sqlite3_step(st) == SQLITE_ROW)
            rows.push_back(std::to_string(sqlite3_column_int64(st, 0)) + " " +
                           reinterpret_cast<const char*>(sqlite3_column_text(st, 1)) + " " +
                           reinterpret_cast<const char*>(sqlite3_column_text(st, 2)));
        sqlite3_finalize(st);
        return rows;
    };
    auto from_outbox = [&](std::int64_t after, int limit) {
        std::vector<std::string> rows;
        for (const auto& r : j.outbox_after(after, static_cast<std::size_t>(limit)))
            rows.push_back(std::to_string(r.seq) + " " + r.topic + " " + r.payload);
        return rows;
    };
    const auto tail = static_cast<std::int64_t>(Journal::kOutboxTail);
    ASSERT_LT(tail + 100, last) << "the test needs more events than the outbox keeps in memory";
    for (std::int64_t after : {std::int64_t{0}, std::int64_t{500}, last - tail - 70, last - tail - 1, last - tail,
                               last - tail + 1, last - 5, last - 1, last, last + 7}) {
        for (int limit : {1, 3, 64}) {
            SCOPED_TRACE("after " + std::to_string(after) + " limit " + std::to_string(limit));
            EXPECT_EQ(from_outbox(after, limit), from_db(after, limit));
        }
    }
    EXPECT_TRUE(from_outbox(last, 10).empty());

    j.outbox_delete_upto(1990);
    for (std::int64_t after : {std::int64_t{0}, std::int64_t{1989}, std::int64_t{1990}, std::int64_t{1995}}) {
        SCOPED_TRACE("after deleting up to 1990, after " + std::to_string(after));
        EXPECT_EQ(from_outbox(after, 64), from_db(after, 64));
    }
    j.transact(Admission::internal, [](Tx& tx) { tx.append({"t.after", std::nullopt, {}}); });
    EXPECT_EQ(from_outbox(1990, 64), from_db(1990, 64));
    EXPECT_EQ(from_outbox(1990, 64).size(), 11u);
    sqlite3_close(db);
}
