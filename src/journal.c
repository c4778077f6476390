/*
 * journal.c - the job journal: detached jobs and their outcomes in
 * state_dir/jobs.db, one SQLite connection owned by one journal thread.
 *
 * DESIGN
 *
 * Open and recovery run on the calling (loop) thread before the loop does:
 * journal_open opens the file, sets WAL mode and exclusive locking (a second
 * daemon on the same state_dir fails to open instead of sharing it), checks
 * it (PRAGMA quick_check, user_version, the tables our statements need) and
 * prepares every statement once. A file that is not a valid journal is moved
 * aside and a fresh one created; a newer user_version is refused, since a
 * later release's journal must not be thrown away by an older one.
 * journal_recover reads it once and then starts the thread; from then on
 * only that thread touches the connection.
 *
 * Schema (user_version 1): pending(id, kind, args) holds accepted jobs that
 * have not finished; outcomes(seq, id, ...) holds finished ones, seq growing
 * with each finish so that retention forgets the oldest finished first with
 * one range delete on the rowid ("seq <= max(seq) - retention"); meta holds
 * max_id, the highest id ever written, which survives retention. A finish
 * moves a job from pending to outcomes in the same transaction.
 *
 * Queue. journal_accept and journal_finish (loop thread) copy the record
 * onto j->queue under j->lock and signal the thread. The thread takes the
 * whole queue in one splice and commits it in one BEGIN IMMEDIATE ... COMMIT
 * (group commit): whatever arrives while a commit is in progress goes into
 * the next one, so the commit rate adapts to the disk. Statements are
 * bound, stepped and reset; every return code is checked. Retention is
 * applied inside the same transaction.
 *
 * Completions (memcached thread.c, as in pool.c). After a batch, each
 * accepted-job record goes on j->doneq with ok 0 (committed) or -1 (the
 * batch failed); the thread writes one byte to the socketpair only when
 * doneq was empty. The loop's doorbell event (at the priority given to
 * journal_open) drains the byte(s) and hands back at most JOURNAL_DRAIN_MAX
 * completions per callback, rescheduling itself through a zero timeout
 * (drain_ev) for the rest so a flood cannot starve higher-priority timers.
 * Invariant: doneq is non-empty only while a byte is unread or drain_ev is
 * pending.
 *
 * Failures. A failed batch is rolled back; its accepted jobs complete with
 * -1 (their SUBMITs are refused), its finished-job records are kept and
 * retried with the next batch or after JOURNAL_RETRY_MS, so a job that was
 * answered OK is never left looking unfinished. The first failure of an
 * episode is logged (journal-failed), the first success after it too
 * (journal-resumed).
 *
 * Sync. sync_ms 0: synchronous=FULL, the WAL is fsynced by every COMMIT, so
 * a completion means durable. sync_ms N: synchronous=NORMAL, a COMMIT only
 * writes the WAL (a crash of the process loses nothing) and the thread runs
 * a checkpoint, which fsyncs the WAL and then the database, at most N ms
 * after the first commit not yet synced.
 *
 * Threads. The journal thread is created with every signal blocked and
 * named "hb-journal". journal_close sets stopping; the thread commits what is
 * queued (retrying failed outcomes once more), syncs, and exits; the
 * connection is closed after the join.
 */

#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <sqlite3.h>

#include "journal.h"
#include "log.h"
#include "util.h"

#define JOURNAL_ERR_MAX		256	/* a failure's sqlite3_errmsg, kept for the log */
#define JOURNAL_MOVE_TRIES	100	/* jobs.db.corrupt-T, -T.1, ... */
#define JOURNAL_PAGES_UNCAPPED	1073741823u	/* SQLite's default max_page_count */

enum jrec_type { JREC_ACCEPT, JREC_FINISH };

/* A queued record; an accept record comes back as a completion. */
struct jrec {
	TAILQ_ENTRY(jrec) entry;
	enum jrec_type type;
	int ok;			/* completion: 0 or -1 */
	uint64_t id;
	char *kind;
	char *args;		/* accept */
	int failed;		/* finish: the outcome */
	char *text, *detail;
	unsigned progress;
	uint64_t queue_us, run_us;
};
TAILQ_HEAD(jrec_list, jrec);

enum journal_stmt {
	ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_ACCEPT, ST_UNPEND, ST_OUTCOME,
	ST_MAXID, ST_TRIM, ST_COUNT
};

static const char *const journal_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	/* accepting an id already pending replaces it: idempotent */
	[ST_ACCEPT] = "INSERT OR REPLACE INTO pending (id, kind, args) "
	    "VALUES (?1, ?2, ?3)",
	[ST_UNPEND] = "DELETE FROM pending WHERE id = ?1",
	[ST_OUTCOME] = "INSERT OR REPLACE INTO outcomes (id, kind, outcome, "
	    "text, detail, progress, queue_us, run_us) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[ST_MAXID] = "UPDATE meta SET value = max(value, ?1) WHERE key = 'max_id'",
	[ST_TRIM] = "DELETE FROM outcomes "
	    "WHERE seq <= (SELECT max(seq) FROM outcomes) - ?1",
};

static const char journal_schema[] =
	"CREATE TABLE pending ("
	" id INTEGER PRIMARY KEY,"
	" kind TEXT NOT NULL,"
	" args TEXT NOT NULL);"
	"CREATE TABLE outcomes ("
	" seq INTEGER PRIMARY KEY,"
	" id INTEGER NOT NULL UNIQUE,"
	" kind TEXT NOT NULL,"
	" outcome TEXT NOT NULL CHECK (outcome IN ('done', 'failed')),"
	" text TEXT NOT NULL,"
	" detail TEXT NOT NULL,"
	" progress INTEGER NOT NULL,"
	" queue_us INTEGER NOT NULL,"
	" run_us INTEGER NOT NULL);"
	"CREATE TABLE meta ("
	" key TEXT PRIMARY KEY,"
	" value INTEGER NOT NULL);"
	"INSERT INTO meta (key, value) VALUES ('max_id', 0);"
	"PRAGMA user_version = 1;";

struct journal {
	struct event_base *base;
	int nice_target;	/* the thread's niceness; INT_MIN = as created */
	journal_done_fn done;
	void *done_arg;
	char *dir;
	char *path;		/* dir/jobs.db */
	unsigned sync_ms;
	uint32_t retention;

	sqlite3 *db;		/* the journal thread's once started */
	sqlite3_stmt *st[ST_COUNT];

	pthread_t tid;
	int started;
	pthread_mutex_t lock;
	pthread_cond_t cond;	/* records queued, or stopping */
	struct jrec_list queue;	/* loop -> thread */
	struct jrec_list doneq;	/* thread -> loop: accept completions */
	unsigned nqueued;
	int stopping;

	_Atomic uint64_t commits, records, failed_batches, syncs, wakeups;
	_Atomic uint32_t max_pages;	/* test hook; 0 = uncapped */

	/* journal thread only */
	struct jrec_list retry;	/* finish records of failed batches */
	uint64_t retry_ns;	/* when to retry them */
	uint64_t dirty_ns;	/* first commit not yet synced, 0 = none */
	uint32_t pages_applied;
	int failing;		/* in a failure episode */
	char err[JOURNAL_ERR_MAX];

	int bell[2];		/* [0] read by the loop, [1] written by the thread */
	struct event *bell_ev;
	struct event *drain_ev;
};

/* Outcome of looking at a file: usable, not a journal, or a hard failure. */
enum journal_check { JOURNAL_OK, JOURNAL_CORRUPT, JOURNAL_FATAL };

static void journal_drain(struct journal *);

static void
jrec_free(struct jrec *r)
{
	free(r->kind);
	free(r->args);
	free(r->text);
	free(r->detail);
	free(r);
}

/* Log a failure to open or read the journal (startup). */
static void
journal_log_open_fail(const struct journal *j, const char *op, const char *reason)
{
	struct log_line *l = log_begin(LOG_ERROR, "journal-failed");

	log_str(l, "op", op);
	log_str(l, "path", j->path != NULL ? j->path : j->dir);
	log_str(l, "reason", reason);
	log_end(l);
}

/* Is rc (a primary or extended code) the file not being a journal? */
static int
journal_rc_corrupt(int rc)
{
	rc &= 0xff;
	return rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT;
}

/* Classify a failure of rc during check step op; logs the fatal ones. */
static enum journal_check
journal_check_fail(struct journal *j, const char *op, int rc)
{
	if (journal_rc_corrupt(rc))
		return JOURNAL_CORRUPT;
	if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) {
		journal_log_open_fail(j, op, "locked by another process");
		return JOURNAL_FATAL;
	}
	journal_log_open_fail(j, op, sqlite3_errmsg(j->db));
	return JOURNAL_FATAL;
}

/*
 * Run a one-row query and copy its first column as text into out (or as an
 * integer into *num when out is NULL). 0, or the SQLite code.
 */
static int
journal_query1(sqlite3 *db, const char *sql, char *out, size_t outlen,
    int64_t *num)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL)) != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (out != NULL) {
			const unsigned char *t = sqlite3_column_text(st, 0);

			snprintf(out, outlen, "%s", t != NULL ? (const char *)t : "");
		} else
			*num = sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		rc = SQLITE_ERROR;	/* every query here returns a row */
	}
	sqlite3_finalize(st);
	return rc;
}

/* Create the schema of a new, empty journal. */
static enum journal_check
journal_create(struct journal *j)
{
	int rc;

	if ((rc = sqlite3_exec(j->db, "BEGIN IMMEDIATE", NULL, NULL, NULL)) != SQLITE_OK)
		return journal_check_fail(j, "create", rc);
	if ((rc = sqlite3_exec(j->db, journal_schema, NULL, NULL, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_exec(j->db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK) {
		enum journal_check c = journal_check_fail(j, "create", rc);

		if (!sqlite3_get_autocommit(j->db))
			sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
		return c;
	}
	return JOURNAL_OK;
}

/*
 * Open j->path and decide whether it is a journal we can use: WAL mode,
 * quick_check, the schema version, the tables. Leaves j->db open (even on
 * failure: the caller closes it).
 */
static enum journal_check
journal_db_open(struct journal *j)
{
	char buf[64], sql[64];
	int64_t version, objects;
	int rc, i;

	rc = sqlite3_open_v2(j->path, &j->db,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK) {
		journal_log_open_fail(j, "open", j->db != NULL ?
		    sqlite3_errmsg(j->db) : sqlite3_errstr(rc));
		return JOURNAL_FATAL;
	}
	/* exclusive: one daemon per state_dir; no -shm needed */
	if ((rc = sqlite3_exec(j->db, "PRAGMA locking_mode = EXCLUSIVE",
	    NULL, NULL, NULL)) != SQLITE_OK)
		return journal_check_fail(j, "open", rc);
	if ((rc = journal_query1(j->db, "PRAGMA journal_mode = WAL",
	    buf, sizeof(buf), NULL)) != SQLITE_OK)
		return journal_check_fail(j, "open", rc);
	if (strcmp(buf, "wal") != 0) {
		journal_log_open_fail(j, "open", "cannot use WAL mode");
		return JOURNAL_FATAL;
	}
	if ((rc = journal_query1(j->db, "PRAGMA quick_check",
	    buf, sizeof(buf), NULL)) != SQLITE_OK)
		return journal_check_fail(j, "check", rc);
	if (strcmp(buf, "ok") != 0)
		return JOURNAL_CORRUPT;
	if ((rc = journal_query1(j->db, "PRAGMA user_version",
	    NULL, 0, &version)) != SQLITE_OK)
		return journal_check_fail(j, "check", rc);
	if (version > JOURNAL_SCHEMA_VERSION) {
		struct log_line *l = log_begin(LOG_ERROR, "journal-failed");

		log_str(l, "op", "open");
		log_str(l, "path", j->path);
		log_str(l, "reason", "written by a newer release");
		log_int(l, "version", version);
		log_int(l, "supported", JOURNAL_SCHEMA_VERSION);
		log_end(l);
		return JOURNAL_FATAL;
	}
	if (version == 0) {
		if ((rc = journal_query1(j->db, "SELECT count(*) FROM sqlite_master",
		    NULL, 0, &objects)) != SQLITE_OK)
			return journal_check_fail(j, "check", rc);
		if (objects != 0)
			return JOURNAL_CORRUPT;	/* somebody else's database */
		if (journal_create(j) != JOURNAL_OK)
			return JOURNAL_FATAL;
	} else if (version < JOURNAL_SCHEMA_VERSION) {
		/* migrations from older versions go here; there are none yet */
		return JOURNAL_CORRUPT;
	}
	snprintf(sql, sizeof(sql), "PRAGMA synchronous = %s",
	    j->sync_ms == 0 ? "FULL" : "NORMAL");
	if ((rc = sqlite3_exec(j->db, sql, NULL, NULL, NULL)) != SQLITE_OK)
		return journal_check_fail(j, "open", rc);
	for (i = 0; i < ST_COUNT; i++) {
		rc = sqlite3_prepare_v3(j->db, journal_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &j->st[i], NULL);
		if (rc == SQLITE_ERROR)
			return JOURNAL_CORRUPT;	/* a table or column is missing */
		if (rc != SQLITE_OK)
			return journal_check_fail(j, "prepare", rc);
	}
	return JOURNAL_OK;
}

static void
journal_db_close(struct journal *j)
{
	int i, rc;

	for (i = 0; i < ST_COUNT; i++) {
		sqlite3_finalize(j->st[i]);
		j->st[i] = NULL;
	}
	if (j->db != NULL && (rc = sqlite3_close(j->db)) != SQLITE_OK)
		journal_log_open_fail(j, "close", sqlite3_errstr(rc));
	j->db = NULL;
}

/* Rename path+suffix to moved+suffix when it exists. 0 or -1 (logged). */
static int
journal_move_one(const struct journal *j, const char *moved, const char *suffix)
{
	char from[4096], to[4096];

	snprintf(from, sizeof(from), "%s%s", j->path, suffix);
	snprintf(to, sizeof(to), "%s%s", moved, suffix);
	if (rename(from, to) == 0 || errno == ENOENT)
		return 0;
	journal_log_open_fail(j, "move", strerror(errno));
	return -1;
}

/* Move a file that is not a journal aside, with its -wal and -shm. */
static int
journal_move_aside(struct journal *j)
{
	char moved[4096];
	struct stat sb;
	struct log_line *l;
	long t = (long)time(NULL);
	int n;

	snprintf(moved, sizeof(moved), "%s.corrupt-%ld", j->path, t);
	for (n = 1; lstat(moved, &sb) == 0 && n < JOURNAL_MOVE_TRIES; n++)
		snprintf(moved, sizeof(moved), "%s.corrupt-%ld.%d", j->path, t, n);
	if (journal_move_one(j, moved, "") < 0 ||
	    journal_move_one(j, moved, "-wal") < 0 ||
	    journal_move_one(j, moved, "-shm") < 0)
		return -1;
	l = log_begin(LOG_ERROR, "journal-corrupt");
	log_str(l, "moved", moved);
	log_end(l);
	return 0;
}

/* Ring the doorbell: one byte, never blocking (a full socket is rung already). */
static void
journal_ring(struct journal *j)
{
	static const char b = 1;

	while (send(j->bell[1], &b, 1, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

/* The doorbell rang: empty the socket, then hand back completions. */
static void
journal_bell_cb(evutil_socket_t fd, short what, void *arg)
{
	char buf[64];
	ssize_t r;

	(void)what;
	do
		r = read(fd, buf, sizeof(buf));
	while (r > 0 || (r < 0 && errno == EINTR));
	journal_drain(arg);
}

static void
journal_drain_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	journal_drain(arg);
}

/* Hand back up to JOURNAL_DRAIN_MAX completions; come back for the rest. */
static void
journal_drain(struct journal *j)
{
	static const struct timeval zero = { 0, 0 };
	struct jrec_list batch;
	struct jrec *r;
	unsigned n;
	int more;

	TAILQ_INIT(&batch);
	pthread_mutex_lock(&j->lock);
	for (n = 0; n < JOURNAL_DRAIN_MAX && (r = TAILQ_FIRST(&j->doneq)) != NULL; n++) {
		TAILQ_REMOVE(&j->doneq, r, entry);
		TAILQ_INSERT_TAIL(&batch, r, entry);
	}
	more = !TAILQ_EMPTY(&j->doneq);
	pthread_mutex_unlock(&j->lock);

	while ((r = TAILQ_FIRST(&batch)) != NULL) {
		TAILQ_REMOVE(&batch, r, entry);
		j->done(r->id, r->ok, j->done_arg);
		free(r);	/* its strings went with the commit */
	}
	/* not event_active: that would run again before timers are looked at */
	if (more)
		event_add(j->drain_ev, &zero);
}

/* Step a statement that returns no row, then reset it. 0 or the code. */
static int
journal_exec(struct journal *j, enum journal_stmt s)
{
	sqlite3_stmt *st = j->st[s];
	int rc = sqlite3_step(st);

	if (rc != SQLITE_DONE)
		snprintf(j->err, sizeof(j->err), "%s", sqlite3_errmsg(j->db));
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : rc;
}

/* Bind failures are programming errors, but are checked like the rest. */
static int
journal_bind_fail(struct journal *j, int rc)
{
	snprintf(j->err, sizeof(j->err), "bind: %s", sqlite3_errstr(rc));
	return rc;
}

static int
journal_bind_int(struct journal *j, enum journal_stmt s, int i, int64_t v)
{
	int rc = sqlite3_bind_int64(j->st[s], i, v);

	return rc == SQLITE_OK ? 0 : journal_bind_fail(j, rc);
}

static int
journal_bind_text(struct journal *j, enum journal_stmt s, int i, const char *v)
{
	int rc = sqlite3_bind_text(j->st[s], i, v, -1, SQLITE_STATIC);

	return rc == SQLITE_OK ? 0 : journal_bind_fail(j, rc);
}

/* Write one record inside the open transaction. 0 or the code. */
static int
journal_write_rec(struct journal *j, const struct jrec *r)
{
	int rc;

	if (r->type == JREC_ACCEPT) {
		if ((rc = journal_bind_int(j, ST_ACCEPT, 1, (int64_t)r->id)) != 0 ||
		    (rc = journal_bind_text(j, ST_ACCEPT, 2, r->kind)) != 0 ||
		    (rc = journal_bind_text(j, ST_ACCEPT, 3, r->args)) != 0)
			return rc;
		return journal_exec(j, ST_ACCEPT);
	}
	if ((rc = journal_bind_int(j, ST_UNPEND, 1, (int64_t)r->id)) != 0 ||
	    (rc = journal_exec(j, ST_UNPEND)) != 0)
		return rc;
	if ((rc = journal_bind_int(j, ST_OUTCOME, 1, (int64_t)r->id)) != 0 ||
	    (rc = journal_bind_text(j, ST_OUTCOME, 2, r->kind)) != 0 ||
	    (rc = journal_bind_text(j, ST_OUTCOME, 3, r->failed ? "failed" : "done")) != 0 ||
	    (rc = journal_bind_text(j, ST_OUTCOME, 4, r->text)) != 0 ||
	    (rc = journal_bind_text(j, ST_OUTCOME, 5, r->detail)) != 0 ||
	    (rc = journal_bind_int(j, ST_OUTCOME, 6, r->progress)) != 0 ||
	    (rc = journal_bind_int(j, ST_OUTCOME, 7, (int64_t)r->queue_us)) != 0 ||
	    (rc = journal_bind_int(j, ST_OUTCOME, 8, (int64_t)r->run_us)) != 0)
		return rc;
	return journal_exec(j, ST_OUTCOME);
}

/* Forget finished outcomes beyond retention (oldest finished first). */
static int
journal_trim(struct journal *j)
{
	int rc;

	if ((rc = journal_bind_int(j, ST_TRIM, 1, j->retention)) != 0)
		return rc;
	return journal_exec(j, ST_TRIM);
}

/* Apply the test hook's page cap when it changed. */
static int
journal_apply_max_pages(struct journal *j)
{
	uint32_t pages = atomic_load(&j->max_pages);
	char sql[64];
	int rc;

	if (pages == j->pages_applied)
		return 0;
	snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %u",
	    pages != 0 ? pages : JOURNAL_PAGES_UNCAPPED);
	if ((rc = sqlite3_exec(j->db, sql, NULL, NULL, NULL)) != SQLITE_OK) {
		snprintf(j->err, sizeof(j->err), "%s", sqlite3_errmsg(j->db));
		return rc;
	}
	j->pages_applied = pages;
	return 0;
}

/*
 * Commit batch in one transaction. 0, or the SQLite code with j->err set
 * (the transaction is rolled back).
 */
static int
journal_commit(struct journal *j, const struct jrec_list *batch)
{
	const struct jrec *r;
	uint64_t max_id = 0;
	int rc, finished = 0;

	if ((rc = journal_apply_max_pages(j)) != 0)
		return rc;
	if ((rc = journal_exec(j, ST_BEGIN)) != 0)
		return rc;
	TAILQ_FOREACH(r, batch, entry) {
		if ((rc = journal_write_rec(j, r)) != 0)
			goto fail;
		if (r->type == JREC_ACCEPT && r->id > max_id)
			max_id = r->id;
		finished |= r->type == JREC_FINISH;
	}
	if (max_id != 0 &&
	    ((rc = journal_bind_int(j, ST_MAXID, 1, (int64_t)max_id)) != 0 ||
	    (rc = journal_exec(j, ST_MAXID)) != 0))
		goto fail;
	if (finished && (rc = journal_trim(j)) != 0)
		goto fail;
	if ((rc = journal_exec(j, ST_COMMIT)) != 0)
		goto fail;
	return 0;
 fail:
	/* SQLite may have rolled back already (SQLITE_FULL, SQLITE_IOERR) */
	if (!sqlite3_get_autocommit(j->db)) {
		char keep[JOURNAL_ERR_MAX];

		memcpy(keep, j->err, sizeof(keep));
		(void)journal_exec(j, ST_ROLLBACK);
		memcpy(j->err, keep, sizeof(keep));
	}
	return rc;
}

/* A write or sync failed: log the first failure of an episode. */
static void
journal_failed(struct journal *j, const char *op, int rc)
{
	struct log_line *l;

	if (j->failing++)
		return;
	l = log_begin(LOG_ERROR, "journal-failed");
	log_str(l, "op", op);
	log_str(l, "reason", j->err);
	log_str(l, "code", sqlite3_errstr(rc));
	log_end(l);
}

/* A write succeeded: end a failure episode. */
static void
journal_succeeded(struct journal *j)
{
	struct log_line *l;

	if (!j->failing)
		return;
	l = log_begin(LOG_INFO, "journal-resumed");
	log_int(l, "failures", j->failing);
	log_end(l);
	j->failing = 0;
}

/*
 * Commit batch (with any outcomes waiting for a retry in front) and turn its
 * accept records into completions. Journal thread.
 */
static void
journal_write(struct journal *j, struct jrec_list *batch, int stopping)
{
	struct jrec_list done;
	struct jrec *r;
	uint64_t n = 0;
	int rc, ring;

	if (!TAILQ_EMPTY(&j->retry) && (stopping || !TAILQ_EMPTY(batch) ||
	    now_ns() >= j->retry_ns)) {
		TAILQ_CONCAT(&j->retry, batch, entry);
		TAILQ_CONCAT(batch, &j->retry, entry);
	}
	if (TAILQ_EMPTY(batch))
		return;
	TAILQ_FOREACH(r, batch, entry)
		n++;
	rc = journal_commit(j, batch);
	if (rc == 0) {
		atomic_fetch_add(&j->commits, 1);
		atomic_fetch_add(&j->records, n);
		if (j->sync_ms != 0 && j->dirty_ns == 0)
			j->dirty_ns = now_ns();
		journal_succeeded(j);
	} else {
		atomic_fetch_add(&j->failed_batches, 1);
		journal_failed(j, "commit", rc);
	}

	TAILQ_INIT(&done);
	while ((r = TAILQ_FIRST(batch)) != NULL) {
		TAILQ_REMOVE(batch, r, entry);
		if (r->type == JREC_FINISH) {
			if (rc == 0) {
				jrec_free(r);
			} else {
				TAILQ_INSERT_TAIL(&j->retry, r, entry);
				j->retry_ns = now_ns() + JOURNAL_RETRY_MS * HB_NS_PER_MS;
			}
			continue;
		}
		r->ok = rc == 0 ? 0 : -1;
		free(r->kind);
		free(r->args);
		r->kind = r->args = NULL;
		TAILQ_INSERT_TAIL(&done, r, entry);
	}
	if (TAILQ_EMPTY(&done))
		return;
	pthread_mutex_lock(&j->lock);
	ring = TAILQ_EMPTY(&j->doneq);
	TAILQ_CONCAT(&j->doneq, &done, entry);
	pthread_mutex_unlock(&j->lock);
	if (ring) {
		atomic_fetch_add(&j->wakeups, 1);
		journal_ring(j);
	}
}

/* sync_ms > 0: make the WAL durable once it is due (or when stopping). */
static void
journal_sync(struct journal *j, int force)
{
	int rc, log_frames, ckpt_frames;

	if (j->dirty_ns == 0 ||
	    (!force && now_ns() < j->dirty_ns + j->sync_ms * HB_NS_PER_MS))
		return;
	j->dirty_ns = 0;
	/* a checkpoint fsyncs the WAL, then the database */
	rc = sqlite3_wal_checkpoint_v2(j->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
	    &log_frames, &ckpt_frames);
	if (rc != SQLITE_OK) {
		snprintf(j->err, sizeof(j->err), "%s", sqlite3_errmsg(j->db));
		journal_failed(j, "sync", rc);
		return;
	}
	atomic_fetch_add(&j->syncs, 1);
}

/* The next time the thread must wake without new records, 0 = none. */
static uint64_t
journal_deadline(const struct journal *j)
{
	uint64_t t = 0;

	if (j->dirty_ns != 0)
		t = j->dirty_ns + j->sync_ms * HB_NS_PER_MS;
	if (!TAILQ_EMPTY(&j->retry) && (t == 0 || j->retry_ns < t))
		t = j->retry_ns;
	return t;
}

/* The journal thread's loop; also run once on the caller by a close without
 * a thread. */
static void
journal_run(struct journal *j)
{
	struct jrec_list batch;
	struct timespec ts;
	uint64_t deadline;
	int stopping;

	TAILQ_INIT(&batch);
	pthread_mutex_lock(&j->lock);
	for (;;) {
		int timed_out = 0;

		while (TAILQ_EMPTY(&j->queue) && !j->stopping && !timed_out) {
			if ((deadline = journal_deadline(j)) == 0) {
				pthread_cond_wait(&j->cond, &j->lock);
				continue;
			}
			ts.tv_sec = (time_t)(deadline / 1000000000u);
			ts.tv_nsec = (long)(deadline % 1000000000u);
			timed_out = pthread_cond_timedwait(&j->cond, &j->lock,
			    &ts) == ETIMEDOUT;
		}
		TAILQ_CONCAT(&batch, &j->queue, entry);
		j->nqueued = 0;
		stopping = j->stopping;
		pthread_mutex_unlock(&j->lock);

		journal_write(j, &batch, stopping);
		if (j->sync_ms != 0)
			journal_sync(j, stopping);

		pthread_mutex_lock(&j->lock);
		if (stopping && TAILQ_EMPTY(&j->queue))
			break;
	}
	pthread_mutex_unlock(&j->lock);
}

static void *
journal_main(void *arg)
{
	struct journal *j = arg;

	pthread_setname_np(pthread_self(), "hb-journal");
	/* sync work, like a job: the loop must win the CPU against it */
	if (j->nice_target != INT_MIN && thread_renice(j->nice_target) < 0) {
		struct log_line *l = log_begin(LOG_WARN, "journal-nice-failed");

		log_int(l, "nice", j->nice_target);
		log_errno(l, errno);
		log_end(l);
	}
	journal_run(j);
	return NULL;
}

static int
journal_set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	return 0;
}

/* Make sure state_dir exists and is a directory. 0 or -1 (logged). */
static int
journal_dir_ready(struct journal *j)
{
	struct stat sb;

	if (stat(j->dir, &sb) < 0) {
		if (errno == ENOENT && mkdir(j->dir, 0700) == 0)
			return 0;
		journal_log_open_fail(j, "state_dir", strerror(errno));
		return -1;
	}
	if (!S_ISDIR(sb.st_mode)) {
		journal_log_open_fail(j, "state_dir", strerror(ENOTDIR));
		return -1;
	}
	return 0;
}

/* The loop side: socketpair doorbell and its events. 0 or -1 (logged). */
static int
journal_bell_new(struct journal *j, int priority)
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, j->bell) < 0 ||
	    journal_set_nonblock(j->bell[0]) < 0 ||
	    journal_set_nonblock(j->bell[1]) < 0) {
		journal_log_open_fail(j, "doorbell", strerror(errno));
		return -1;
	}
	j->bell_ev = event_new(j->base, j->bell[0], EV_READ | EV_PERSIST,
	    journal_bell_cb, j);
	j->drain_ev = event_new(j->base, -1, 0, journal_drain_cb, j);
	if (j->bell_ev == NULL || event_priority_set(j->bell_ev, priority) < 0 ||
	    event_add(j->bell_ev, NULL) < 0 ||
	    j->drain_ev == NULL || event_priority_set(j->drain_ev, priority) < 0) {
		journal_log_open_fail(j, "doorbell", "cannot add the event");
		return -1;
	}
	return 0;
}

/* Free everything but the thread (not started, or joined). */
static void
journal_free(struct journal *j)
{
	struct jrec *r;
	unsigned lost = 0;

	journal_db_close(j);
	while ((r = TAILQ_FIRST(&j->queue)) != NULL) {
		TAILQ_REMOVE(&j->queue, r, entry);
		jrec_free(r);
	}
	while ((r = TAILQ_FIRST(&j->doneq)) != NULL) {
		TAILQ_REMOVE(&j->doneq, r, entry);
		jrec_free(r);
	}
	while ((r = TAILQ_FIRST(&j->retry)) != NULL) {
		TAILQ_REMOVE(&j->retry, r, entry);
		jrec_free(r);
		lost++;
	}
	if (lost != 0) {
		struct log_line *l = log_begin(LOG_ERROR, "journal-failed");

		/* these jobs look unfinished and run again at the next start */
		log_str(l, "op", "close");
		log_str(l, "reason", "outcomes not written");
		log_uint(l, "outcomes", lost);
		log_end(l);
	}
	if (j->bell_ev != NULL)
		event_free(j->bell_ev);
	if (j->drain_ev != NULL)
		event_free(j->drain_ev);
	if (j->bell[0] >= 0)
		close(j->bell[0]);
	if (j->bell[1] >= 0)
		close(j->bell[1]);
	pthread_cond_destroy(&j->cond);
	pthread_mutex_destroy(&j->lock);
	free(j->dir);
	free(j->path);
	free(j);
}

struct journal *
journal_open(const char *state_dir, unsigned sync_ms, uint32_t retention,
    struct event_base *base, int priority, journal_done_fn done, void *arg)
{
	struct journal *j;
	pthread_condattr_t ca;
	enum journal_check c;
	size_t n;

	j = xcalloc(1, sizeof(*j));
	j->nice_target = INT_MIN;
	j->base = base;
	j->done = done;
	j->done_arg = arg;
	j->sync_ms = sync_ms;
	j->retention = retention;
	j->bell[0] = j->bell[1] = -1;
	TAILQ_INIT(&j->queue);
	TAILQ_INIT(&j->doneq);
	TAILQ_INIT(&j->retry);
	pthread_mutex_init(&j->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&j->cond, &ca);
	pthread_condattr_destroy(&ca);
	j->dir = xstrdup(state_dir);
	n = strlen(state_dir) + sizeof("/" JOURNAL_FILE);
	j->path = xmalloc(n);
	snprintf(j->path, n, "%s/%s", state_dir, JOURNAL_FILE);

	if (journal_dir_ready(j) < 0 || journal_bell_new(j, priority) < 0)
		goto fail;
	if ((c = journal_db_open(j)) == JOURNAL_CORRUPT) {
		journal_db_close(j);
		if (journal_move_aside(j) < 0)
			goto fail;
		if ((c = journal_db_open(j)) == JOURNAL_CORRUPT)
			journal_log_open_fail(j, "create", "a new journal is not valid");
	}
	if (c != JOURNAL_OK)
		goto fail;
	return j;
 fail:
	journal_free(j);
	return NULL;
}

/* Trim to retention at start (it may have been lowered). 0 or -1 (logged). */
static int
journal_recover_trim(struct journal *j)
{
	if (journal_exec(j, ST_BEGIN) != 0 || journal_trim(j) != 0 ||
	    journal_exec(j, ST_COMMIT) != 0) {
		journal_log_open_fail(j, "recover", j->err);
		if (!sqlite3_get_autocommit(j->db))
			(void)journal_exec(j, ST_ROLLBACK);
		return -1;
	}
	return 0;
}

static const char *
journal_col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t != NULL ? (const char *)t : "";
}

/* Read pending jobs, then retained outcomes. 0 or -1 (logged). */
static int
journal_recover_read(struct journal *j, const struct journal_recovery *cb,
    uint64_t *npending, uint64_t *nretained)
{
	static const char pending_sql[] =
	    "SELECT id, kind, args FROM pending ORDER BY id";
	static const char outcomes_sql[] =
	    "SELECT id, kind, outcome, text, detail, progress, queue_us, run_us "
	    "FROM outcomes ORDER BY seq";
	struct journal_outcome o;
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = sqlite3_prepare_v2(j->db, pending_sql, -1, &st, NULL)) != SQLITE_OK)
		goto fail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		(*npending)++;
		if (cb != NULL && cb->pending != NULL)
			cb->pending((uint64_t)sqlite3_column_int64(st, 0),
			    journal_col_text(st, 1), journal_col_text(st, 2), cb->arg);
	}
	if (rc != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);

	if ((rc = sqlite3_prepare_v2(j->db, outcomes_sql, -1, &st, NULL)) != SQLITE_OK)
		goto fail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		(*nretained)++;
		if (cb == NULL || cb->retained == NULL)
			continue;
		o.id = (uint64_t)sqlite3_column_int64(st, 0);
		o.kind = journal_col_text(st, 1);
		o.failed = strcmp(journal_col_text(st, 2), "failed") == 0;
		o.text = journal_col_text(st, 3);
		o.detail = journal_col_text(st, 4);
		o.progress = (unsigned)sqlite3_column_int(st, 5);
		o.queue_us = (uint64_t)sqlite3_column_int64(st, 6);
		o.run_us = (uint64_t)sqlite3_column_int64(st, 7);
		cb->retained(&o, cb->arg);
	}
	if (rc != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	return 0;
 fail:
	journal_log_open_fail(j, "recover", sqlite3_errmsg(j->db));
	sqlite3_finalize(st);
	return -1;
}

int
journal_recover(struct journal *j, const struct journal_recovery *cb,
    uint64_t *max_id)
{
	static const char max_sql[] =
	    "SELECT max((SELECT value FROM meta WHERE key = 'max_id'),"
	    " coalesce((SELECT max(id) FROM pending), 0),"
	    " coalesce((SELECT max(id) FROM outcomes), 0))";
	struct log_line *l;
	uint64_t npending = 0, nretained = 0;
	int64_t max = 0;
	sigset_t all, old;
	int rc;

	if (journal_recover_trim(j) < 0 ||
	    journal_recover_read(j, cb, &npending, &nretained) < 0)
		return -1;
	if ((rc = journal_query1(j->db, max_sql, NULL, 0, &max)) != SQLITE_OK) {
		journal_log_open_fail(j, "recover", sqlite3_errmsg(j->db));
		return -1;
	}
	*max_id = max > 0 ? (uint64_t)max : 0;
	l = log_begin(LOG_INFO, "journal-recovered");
	log_uint(l, "requeued", npending);
	log_uint(l, "retained", nretained);
	log_uint(l, "max_id", *max_id);
	log_end(l);

	/* only the loop thread handles signals */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&j->tid, NULL, journal_main, j);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		journal_log_open_fail(j, "thread", strerror(rc));
		return -1;
	}
	j->started = 1;
	return 0;
}

/* Queue r for the thread; wake it when the queue was empty. */
static void
journal_push(struct journal *j, struct jrec *r)
{
	int wake;

	pthread_mutex_lock(&j->lock);
	wake = TAILQ_EMPTY(&j->queue);
	TAILQ_INSERT_TAIL(&j->queue, r, entry);
	j->nqueued++;
	if (wake)
		pthread_cond_signal(&j->cond);
	pthread_mutex_unlock(&j->lock);
}

void
journal_accept(struct journal *j, uint64_t id, const char *kind, const char *args)
{
	struct jrec *r = xcalloc(1, sizeof(*r));

	r->type = JREC_ACCEPT;
	r->id = id;
	r->kind = xstrdup(kind);
	r->args = xstrdup(args);
	journal_push(j, r);
}

void
journal_finish(struct journal *j, const struct journal_outcome *o)
{
	struct jrec *r = xcalloc(1, sizeof(*r));

	r->type = JREC_FINISH;
	r->id = o->id;
	r->kind = xstrdup(o->kind);
	r->failed = o->failed != 0;
	r->text = xstrdup(o->text != NULL ? o->text : "");
	r->detail = xstrdup(o->detail != NULL ? o->detail : "");
	r->progress = o->progress;
	r->queue_us = o->queue_us;
	r->run_us = o->run_us;
	journal_push(j, r);
}

void
journal_stats(struct journal *j, struct journal_stats *out)
{
	out->commits = atomic_load(&j->commits);
	out->records = atomic_load(&j->records);
	out->failed_batches = atomic_load(&j->failed_batches);
	out->syncs = atomic_load(&j->syncs);
	out->wakeups = atomic_load(&j->wakeups);
	pthread_mutex_lock(&j->lock);
	out->queued = j->nqueued;
	pthread_mutex_unlock(&j->lock);
}

void
journal_close(struct journal *j)
{
	if (j == NULL)
		return;
	pthread_mutex_lock(&j->lock);
	j->stopping = 1;
	pthread_cond_signal(&j->cond);
	pthread_mutex_unlock(&j->lock);
	if (j->started)
		pthread_join(j->tid, NULL);
	else
		journal_run(j);	/* never recovered: commit on the caller */
	journal_free(j);
}

void
journal_test_max_pages(struct journal *j, uint32_t pages)
{
	atomic_store(&j->max_pages, pages);
}

void
journal_set_nice(struct journal *j, int delta)
{
	j->nice_target = thread_nice_target(delta);
}
