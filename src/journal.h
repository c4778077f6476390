/*
 * journal.h - the job journal: detached jobs and their outcomes in
 * state_dir/jobs.db (SQLite, WAL), written by one journal thread so the loop
 * never waits for the disk. The loop queues records; the thread commits all
 * that is queued in one transaction and reports each accepted job back
 * through a coalesced socketpair doorbell, as the pool does. At start the
 * journal is read once to re-queue unfinished jobs and reload retained
 * outcomes. See the DESIGN comment in journal.c.
 *
 * Use, all on the loop thread:
 *
 *	j = journal_open(dir, sync_ms, retention, base, prio, done, arg);
 *	journal_recover(j, &cb, &max_id);	(once, before the loop runs)
 *	journal_accept(j, id, "sleep", "ms=100");	(later done(id, 0|-1))
 *	journal_finish(j, &outcome);
 *	journal_close(j);
 */
#ifndef HB_JOURNAL_H
#define HB_JOURNAL_H

#include <stdint.h>

struct event_base;
struct journal;

#define JOURNAL_FILE		"jobs.db"
#define JOURNAL_SCHEMA_VERSION	1	/* PRAGMA user_version of this release */
#define JOURNAL_DRAIN_MAX	256	/* completions handled per loop callback */
#define JOURNAL_RETRY_MS	1000	/* a failed batch of outcomes is retried after */

/*
 * An accepted job's record has been committed (ok 0) or could not be
 * (ok -1: answer the SUBMIT "ERR unavailable"). Loop thread.
 */
typedef void (*journal_done_fn)(uint64_t id, int ok, void *arg);

/* A finished detached job, as written and as recovered. */
struct journal_outcome {
	uint64_t id;
	const char *kind;
	int failed;		/* 0: DONE with result text; 1: FAIL with reason text */
	const char *text;	/* result (done) or reason (failed) */
	const char *detail;	/* FAIL detail, "" = none */
	unsigned progress;	/* 0..100 */
	uint64_t queue_us, run_us;
};

/*
 * What journal_recover hands back. Strings are valid only during the call.
 * pending: a detached job that had not finished, to re-queue under the same
 * id, in id order. retained: a kept outcome, oldest finished first (the
 * order retention forgets them in). Either may be NULL.
 */
struct journal_recovery {
	void (*pending)(uint64_t id, const char *kind, const char *args, void *arg);
	void (*retained)(const struct journal_outcome *o, void *arg);
	void *arg;
};

struct journal_stats {
	uint64_t commits;	/* transactions committed */
	uint64_t records;	/* records in them */
	uint64_t failed_batches;	/* transactions that failed */
	uint64_t syncs;		/* timed WAL syncs (sync_ms > 0) */
	uint64_t wakeups;	/* doorbell bytes written */
	unsigned queued;	/* records waiting for the thread */
};

/*
 * Open (creating if needed) state_dir/jobs.db. A file that is not a valid
 * journal (not a database, a foreign schema, a failed quick_check) is moved
 * aside to jobs.db.corrupt-<unix time> (with its -wal and -shm), logged as
 * journal-corrupt, and a fresh journal started. sync_ms 0: every commit is
 * durable before it is reported; N: commits reach the OS at once and the
 * disk at most N ms later. retention: finished outcomes kept. Completions
 * are drained at libevent priority. Returns NULL after logging when
 * state_dir is unusable, the journal is locked by another process or was
 * written by a newer release (user_version above ours).
 */
struct journal *journal_open(const char *state_dir, unsigned sync_ms,
    uint32_t retention, struct event_base *base, int priority,
    journal_done_fn done, void *arg);

/*
 * Read the journal once (on the calling thread): forget outcomes beyond
 * retention, call cb for every unfinished job and every retained outcome,
 * set *max_id to the highest id ever written (0 = none), log
 * journal-recovered, then start the journal thread. Call it exactly once,
 * before the loop runs. Returns 0, or -1 after logging.
 */
int journal_recover(struct journal *j, const struct journal_recovery *cb,
    uint64_t *max_id);

/*
 * Queue "job id accepted" (kind and its argument text as submitted); done
 * is called once for it after its commit. Records queued before
 * journal_recover are committed when the thread starts.
 */
void journal_accept(struct journal *j, uint64_t id, const char *kind,
    const char *args);

/*
 * Queue "job finished" (o is copied). No completion: if its commit fails it
 * is retried with later batches, so an accepted job is never left looking
 * unfinished while the daemon runs.
 */
void journal_finish(struct journal *j, const struct journal_outcome *o);

void journal_stats(struct journal *j, struct journal_stats *out);

/* Run the journal thread delta nicer than the caller (worker_nice), so the
 * loop wins the CPU against it as against the workers. Before
 * journal_recover, which starts the thread. */
void journal_set_nice(struct journal *j, int delta);

/*
 * Commit what is queued, stop and join the thread, close the database.
 * Completions not yet handed to done are dropped. Loop thread, not from
 * done.
 */
void journal_close(struct journal *j);

/*
 * Tests only: cap the database at pages pages (PRAGMA max_page_count, applied
 * by the thread before its next batch), so writes fail with SQLITE_FULL as on
 * a full disk, even as root. 0 lifts the cap.
 */
void journal_test_max_pages(struct journal *j, uint32_t pages);

#endif
