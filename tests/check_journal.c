/*
 * check_journal.c - the job journal against a real event base and a real
 * SQLite file in a fresh directory: round trip across close and reopen,
 * unfinished jobs re-queued with their arguments, ids continuing above the
 * highest ever written, retention, group commit, a corrupt or foreign file
 * moved aside, a newer schema refused, write failures (a capped database, as
 * on a full disk) failing submits and recovering, timed syncs, and a crash
 * that loses nothing once completions were reported.
 *
 * Completions are awaited by running the loop (EVLOOP_ONCE) until enough
 * have arrived or an overall timer fires; never by sleeping.
 */

#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <sqlite3.h>

#include "journal.h"
#include "log.h"
#include "util.h"
#include "check_common.h"

#define WAIT_MS		10000	/* overall limit for any wait */
#define MAX_SEEN	2048
#define TEXT_MAX	256
#define PRIO		1

/* Completions the loop got, in order. */
struct seen {
	size_t n;
	uint64_t id[MAX_SEEN];
	int ok[MAX_SEEN];
};

/* What recovery handed back, in order. */
struct recovered {
	size_t npending, nretained;
	uint64_t pending_id[MAX_SEEN];
	char pending_kind[MAX_SEEN][16];
	char pending_args[MAX_SEEN][TEXT_MAX];
	size_t pending_args_len[MAX_SEEN];
	struct journal_outcome retained[MAX_SEEN];
	char retained_text[MAX_SEEN][TEXT_MAX];
	char retained_detail[MAX_SEEN][TEXT_MAX];
	char retained_kind[MAX_SEEN][16];
	size_t retained_text_len[MAX_SEEN];
};

static struct event_base *base;
static struct seen seen;
static struct recovered rec;
static char dir[64];
static char logpath[128];
static int logfd = -1;

static struct event_base *
new_base(void)
{
	struct event_config *cfg = event_config_new();
	struct event_base *b;

	event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	b = event_base_new_with_config(cfg);
	event_config_free(cfg);
	if (b != NULL && event_base_priority_init(b, 3) != 0) {
		event_base_free(b);
		b = NULL;
	}
	return b;
}

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/check_journal.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(logpath, sizeof(logpath), "%s.log", dir);
	logfd = open(logpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(logfd, 0);
	log_set_fd(logfd);
	base = new_base();
	ck_assert_ptr_nonnull(base);
	memset(&seen, 0, sizeof(seen));
	memset(&rec, 0, sizeof(rec));
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
teardown(void)
{
	event_base_free(base);
	log_set_fd(2);
	close(logfd);
	unlink(logpath);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* How many log lines contain needle. */
static int
log_count(const char *needle)
{
	static char buf[65536];
	ssize_t n = pread(logfd, buf, sizeof(buf) - 1, 0);
	const char *p;
	int count = 0;

	ck_assert_int_ge(n, 0);
	buf[n] = '\0';
	for (p = buf; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		count++;
	return count;
}

static void
on_done(uint64_t id, int ok, void *arg)
{
	struct seen *s = arg;

	ck_assert_uint_lt(s->n, MAX_SEEN);
	s->id[s->n] = id;
	s->ok[s->n] = ok;
	s->n++;
}

static void
on_pending(uint64_t id, const char *kind, const char *args, void *arg)
{
	struct recovered *r = arg;

	ck_assert_uint_lt(r->npending, MAX_SEEN);
	r->pending_id[r->npending] = id;
	snprintf(r->pending_kind[r->npending], sizeof(r->pending_kind[0]), "%s", kind);
	snprintf(r->pending_args[r->npending], sizeof(r->pending_args[0]), "%s", args);
	r->pending_args_len[r->npending] = strlen(args);
	r->npending++;
}

static void
on_retained(const struct journal_outcome *o, void *arg)
{
	struct recovered *r = arg;
	size_t i = r->nretained;

	ck_assert_uint_lt(i, MAX_SEEN);
	r->retained[i] = *o;
	snprintf(r->retained_kind[i], sizeof(r->retained_kind[0]), "%s", o->kind);
	snprintf(r->retained_text[i], sizeof(r->retained_text[0]), "%s", o->text);
	r->retained_text_len[i] = strlen(o->text);
	snprintf(r->retained_detail[i], sizeof(r->retained_detail[0]), "%s", o->detail);
	r->retained[i].kind = r->retained_kind[i];
	r->retained[i].text = r->retained_text[i];
	r->retained[i].detail = r->retained_detail[i];
	r->nretained++;
}

static const struct journal_recovery recovery = {
	.pending = on_pending, .retained = on_retained, .arg = &rec,
};

/* Open the journal in dir on b and recover it into rec. */
static struct journal *
open_recover(struct event_base *b, unsigned sync_ms, uint32_t retention,
    uint64_t *max_id)
{
	struct journal *j;

	memset(&rec, 0, sizeof(rec));
	j = journal_open(dir, sync_ms, retention, b, PRIO, on_done, &seen);
	if (j != NULL && journal_recover(j, &recovery, max_id) < 0) {
		journal_close(j);
		j = NULL;
	}
	return j;
}

static void
timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(int *)arg = 1;
}

/* Run b until n completions have arrived or WAIT_MS passed. */
static int
wait_done(struct event_base *b, size_t n)
{
	struct timeval tv = { WAIT_MS / 1000, 0 };
	int expired = 0;
	struct event *t = evtimer_new(b, timeout_cb, &expired);

	evtimer_add(t, &tv);
	while (seen.n < n && !expired)
		event_base_loop(b, EVLOOP_ONCE);
	event_free(t);
	return seen.n >= n ? 0 : -1;
}

/* Run the loop in short steps until stats->syncs reaches n or WAIT_MS. */
static int
wait_syncs(struct journal *j, uint64_t n)
{
	struct timeval step = { 0, 5000 };
	struct journal_stats st;
	uint64_t until = now_ns() + WAIT_MS * HB_NS_PER_MS;

	for (;;) {
		journal_stats(j, &st);
		if (st.syncs >= n)
			return 0;
		if (now_ns() > until)
			return -1;
		event_base_loopexit(base, &step);
		event_base_dispatch(base);
	}
}

static void db_exec(const char *sql);
static int64_t db_int(const char *sql);

static void
finish(struct journal *j, uint64_t id, const char *kind, int failed,
    const char *text, const char *detail)
{
	struct journal_outcome o = {
		.id = id, .kind = kind, .failed = failed, .text = text,
		.detail = detail, .progress = failed ? 40 : 100,
		.queue_us = id * 10, .run_us = id * 1000,
	};

	journal_finish(j, &o);
}

START_TEST(test_finished_outcomes_and_unfinished_jobs_survive_reopen)
{
	struct journal *j;
	uint64_t max_id = 99;
	size_t i;

	j = open_recover(base, 0, 100, &max_id);
	ck_assert_ptr_nonnull(j);
	ck_assert_uint_eq(max_id, 0);
	ck_assert_int_eq(log_count("msg=journal-recovered requeued=0 retained=0"), 1);
	journal_accept(j, 1, "sleep", "ms=100 timeout_ms=5000");
	journal_accept(j, 2, "sha256", "rounds=3 seed=\"a b\"");
	journal_accept(j, 3, "primes", "n=1000");
	ck_assert_int_eq(wait_done(base, 3), 0);
	for (i = 0; i < 3; i++) {
		ck_assert_uint_eq(seen.id[i], i + 1);
		ck_assert_int_eq(seen.ok[i], 0);
	}
	finish(j, 1, "sleep", 0, "ok", "");
	finish(j, 3, "primes", 1, "error", "out of memory");
	journal_close(j);

	j = open_recover(base, 0, 100, &max_id);
	ck_assert_ptr_nonnull(j);
	ck_assert_uint_eq(max_id, 3);
	ck_assert_uint_eq(rec.npending, 1);
	ck_assert_uint_eq(rec.pending_id[0], 2);
	ck_assert_str_eq(rec.pending_kind[0], "sha256");
	ck_assert_str_eq(rec.pending_args[0], "rounds=3 seed=\"a b\"");
	ck_assert_uint_eq(rec.nretained, 2);
	ck_assert_uint_eq(rec.retained[0].id, 1);
	ck_assert_str_eq(rec.retained[0].kind, "sleep");
	ck_assert_int_eq(rec.retained[0].failed, 0);
	ck_assert_str_eq(rec.retained[0].text, "ok");
	ck_assert_str_eq(rec.retained[0].detail, "");
	ck_assert_uint_eq(rec.retained[0].progress, 100);
	ck_assert_uint_eq(rec.retained[0].queue_us, 10);
	ck_assert_uint_eq(rec.retained[0].run_us, 1000);
	ck_assert_uint_eq(rec.retained[1].id, 3);
	ck_assert_int_eq(rec.retained[1].failed, 1);
	ck_assert_str_eq(rec.retained[1].text, "error");
	ck_assert_str_eq(rec.retained[1].detail, "out of memory");
	ck_assert_uint_eq(rec.retained[1].progress, 40);
	ck_assert_int_eq(log_count("msg=journal-recovered requeued=1 retained=2"), 1);
	journal_close(j);
}
END_TEST

START_TEST(test_unfinished_jobs_come_back_in_id_order_with_their_args)
{
	struct journal *j;
	uint64_t max_id;
	char args[64];
	uint64_t i;

	j = open_recover(base, 0, 100, &max_id);
	ck_assert_ptr_nonnull(j);
	/* submitted out of id order, in two batches */
	for (i = 20; i > 10; i--) {
		snprintf(args, sizeof(args), "ms=%llu", (unsigned long long)i);
		journal_accept(j, i, "spin", args);
		if (i == 15)
			ck_assert_int_eq(wait_done(base, 5), 0);
	}
	ck_assert_int_eq(wait_done(base, 10), 0);
	journal_close(j);

	j = open_recover(base, 0, 100, &max_id);
	ck_assert_ptr_nonnull(j);
	ck_assert_uint_eq(rec.npending, 10);
	for (i = 0; i < 10; i++) {
		snprintf(args, sizeof(args), "ms=%llu", (unsigned long long)(11 + i));
		ck_assert_uint_eq(rec.pending_id[i], 11 + i);
		ck_assert_str_eq(rec.pending_kind[i], "spin");
		ck_assert_str_eq(rec.pending_args[i], args);
	}
	ck_assert_uint_eq(max_id, 20);
	journal_close(j);
}
END_TEST

START_TEST(test_ids_continue_above_every_id_ever_written)
{
	struct journal *j;
	uint64_t max_id;

	/* retention 0: the outcome is forgotten at once, the id is not */
	j = open_recover(base, 0, 0, &max_id);
	ck_assert_ptr_nonnull(j);
	journal_accept(j, 41, "sleep", "ms=1");
	journal_accept(j, 42, "sleep", "ms=1");
	ck_assert_int_eq(wait_done(base, 2), 0);
	finish(j, 42, "sleep", 0, "ok", "");
	finish(j, 41, "sleep", 0, "ok", "");
	journal_close(j);

	j = open_recover(base, 0, 0, &max_id);
	ck_assert_ptr_nonnull(j);
	ck_assert_uint_eq(rec.npending, 0);
	ck_assert_uint_eq(rec.nretained, 0);
	ck_assert_uint_eq(max_id, 42);
	journal_close(j);
}
END_TEST

START_TEST(test_retention_keeps_only_the_newest_finished_outcomes)
{
	struct journal *j;
	uint64_t max_id, i;

	j = open_recover(base, 0, 3, &max_id);
	ck_assert_ptr_nonnull(j);
	for (i = 1; i <= 10; i++)
		journal_accept(j, i, "sleep", "ms=1");
	ck_assert_int_eq(wait_done(base, 10), 0);
	/* finish order differs from id order: 10, 1, 9, 2, 8, 3, ... */
	for (i = 0; i < 5; i++) {
		finish(j, 10 - i, "sleep", 0, "ok", "");
		finish(j, 1 + i, "sleep", 0, "ok", "");
	}
	journal_close(j);
	/* forgotten as they were written, not only at the next start */
	ck_assert_int_eq(db_int("SELECT count(*) FROM outcomes"), 3);

	j = open_recover(base, 0, 3, &max_id);
	ck_assert_ptr_nonnull(j);
	ck_assert_uint_eq(rec.npending, 0);
	ck_assert_uint_eq(rec.nretained, 3);
	/* the last three finished, oldest first */
	ck_assert_uint_eq(rec.retained[0].id, 4);
	ck_assert_uint_eq(rec.retained[1].id, 6);
	ck_assert_uint_eq(rec.retained[2].id, 5);
	journal_close(j);

	/* a lower retention at the next start forgets the older ones at once */
	j = open_recover(base, 0, 1, &max_id);
	ck_assert_ptr_nonnull(j);
	ck_assert_uint_eq(rec.nretained, 1);
	ck_assert_uint_eq(rec.retained[0].id, 5);
	ck_assert_uint_eq(max_id, 10);
	journal_close(j);
}
END_TEST

START_TEST(test_records_queued_together_commit_in_one_transaction)
{
	struct journal_stats st;
	struct journal *j;
	uint64_t max_id, i;

	j = journal_open(dir, 0, 100, base, PRIO, on_done, &seen);
	ck_assert_ptr_nonnull(j);
	/* the thread starts with journal_recover: all of these wait for it */
	for (i = 1; i <= 500; i++)
		journal_accept(j, i, "sleep", "ms=1");
	journal_stats(j, &st);
	ck_assert_uint_eq(st.queued, 500);
	ck_assert_uint_eq(st.commits, 0);
	ck_assert_int_eq(journal_recover(j, NULL, &max_id), 0);
	ck_assert_int_eq(wait_done(base, 500), 0);
	for (i = 0; i < 500; i++) {
		ck_assert_uint_eq(seen.id[i], i + 1);
		ck_assert_int_eq(seen.ok[i], 0);
	}
	journal_stats(j, &st);
	ck_assert_uint_eq(st.commits, 1);
	ck_assert_uint_eq(st.records, 500);
	ck_assert_uint_eq(st.queued, 0);
	/* one doorbell byte for the whole batch */
	ck_assert_uint_eq(st.wakeups, 1);

	/* a burst while the thread runs still shares transactions */
	for (i = 501; i <= 1500; i++)
		journal_accept(j, i, "sleep", "ms=1");
	ck_assert_int_eq(wait_done(base, 1500), 0);
	journal_stats(j, &st);
	ck_assert_uint_eq(st.records, 1500);
	ck_assert_uint_lt(st.commits, 1 + 1000 / 2);
	journal_close(j);
}
END_TEST

START_TEST(test_corrupt_file_is_moved_aside_and_a_fresh_journal_works)
{
	static const char garbage[] = "this is not an SQLite database, not at all;"
	    " it is long enough to have a header and then some more bytes";
	char path[128], moved[512], body[sizeof(garbage)];
	struct journal *j;
	struct dirent *de;
	uint64_t max_id;
	DIR *d;
	int fd, found = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, JOURNAL_FILE);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, garbage, sizeof(garbage)), (ssize_t)sizeof(garbage));
	close(fd);

	j = open_recover(base, 0, 100, &max_id);
	ck_assert_ptr_nonnull(j);
	ck_assert_uint_eq(max_id, 0);
	ck_assert_int_eq(log_count("level=error msg=journal-corrupt moved="), 1);
	ck_assert_int_eq(log_count(".corrupt-"), 1);
	d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL) {
		/* the moved file itself, not its -wal or -shm */
		if (strncmp(de->d_name, JOURNAL_FILE ".corrupt-", 16) != 0 ||
		    strchr(de->d_name + 16, '-') != NULL)
			continue;
		found++;
		snprintf(moved, sizeof(moved), "%s/%s", dir, de->d_name);
		ck_assert_int_eq(log_count(moved), 1);
	}
	closedir(d);
	ck_assert_int_eq(found, 1);
	/* the old bytes are kept for a post-mortem */
	fd = open(moved, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(read(fd, body, sizeof(body)), (ssize_t)sizeof(garbage));
	ck_assert_mem_eq(body, garbage, sizeof(garbage));
	close(fd);

	journal_accept(j, 7, "sleep", "ms=1");
	ck_assert_int_eq(wait_done(base, 1), 0);
	ck_assert_int_eq(seen.ok[0], 0);
	journal_close(j);
	j = open_recover(base, 0, 100, &max_id);
	ck_assert_ptr_nonnull(j);
	ck_assert_uint_eq(rec.npending, 1);
	ck_assert_uint_eq(max_id, 7);
	ck_assert_int_eq(log_count("msg=journal-corrupt"), 1);
	journal_close(j);
}
END_TEST

/* Run sql on state_dir/jobs.db with a private connection. */
static void
db_exec(const char *sql)
{
	char path[128];
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/%s", dir, JOURNAL_FILE);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
}

/* The integer sql returns from state_dir/jobs.db (private connection). */
static int64_t
db_int(const char *sql)
{
	char path[128];
	sqlite3_stmt *st;
	sqlite3 *db;
	int64_t v;

	snprintf(path, sizeof(path), "%s/%s", dir, JOURNAL_FILE);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
	return v;
}

START_TEST(test_another_programs_database_is_moved_aside)
{
	struct journal *j;
	uint64_t max_id;

	db_exec("CREATE TABLE t (x); INSERT INTO t VALUES (1);");
	j = open_recover(base, 0, 100, &max_id);
	ck_assert_ptr_nonnull(j);
	ck_assert_int_eq(log_count("msg=journal-corrupt moved="), 1);
	journal_close(j);
}
END_TEST

START_TEST(test_journal_of_the_right_version_without_its_tables_is_moved_aside)
{
	struct journal *j;
	uint64_t max_id;

	db_exec("CREATE TABLE pending (id INTEGER PRIMARY KEY); PRAGMA user_version = 1;");
	j = open_recover(base, 0, 100, &max_id);
	ck_assert_ptr_nonnull(j);
	ck_assert_int_eq(log_count("msg=journal-corrupt moved="), 1);
	journal_close(j);
}
END_TEST

START_TEST(test_journal_of_a_newer_release_is_refused_and_kept)
{
	struct journal *j;
	char path[128];
	struct stat sb;

	db_exec("CREATE TABLE future (x); PRAGMA user_version = 99;");
	j = journal_open(dir, 0, 100, base, PRIO, on_done, &seen);
	ck_assert_ptr_null(j);
	ck_assert_int_eq(log_count("msg=journal-failed op=open"), 1);
	ck_assert_int_eq(log_count("version=99"), 1);
	ck_assert_int_eq(log_count("journal-corrupt"), 0);
	snprintf(path, sizeof(path), "%s/%s", dir, JOURNAL_FILE);
	ck_assert_int_eq(stat(path, &sb), 0);
}
END_TEST

START_TEST(test_unusable_state_dir_fails_open)
{
	char file[128], sub[192];
	struct journal *j;
	int fd;

	/* a regular file where the directory should be (root ignores modes) */
	snprintf(file, sizeof(file), "%s/file", dir);
	fd = open(file, O_WRONLY | O_CREAT, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	j = journal_open(file, 0, 100, base, PRIO, on_done, &seen);
	ck_assert_ptr_null(j);
	ck_assert_int_eq(log_count("msg=journal-failed op=state_dir"), 1);

	/* a missing directory is created */
	snprintf(sub, sizeof(sub), "%s/new", dir);
	j = journal_open(sub, 0, 100, base, PRIO, on_done, &seen);
	ck_assert_ptr_nonnull(j);
	journal_close(j);
}
END_TEST

START_TEST(test_failed_writes_fail_submits_once_logged_then_recover)
{
	static char big[8192];
	struct journal_stats st;
	struct journal *j;
	uint64_t max_id;

	memset(big, 'x', sizeof(big) - 1);
	j = open_recover(base, 0, 100, &max_id);
	ck_assert_ptr_nonnull(j);
	journal_accept(j, 1, "sleep", "ms=1");
	ck_assert_int_eq(wait_done(base, 1), 0);
	ck_assert_int_eq(seen.ok[0], 0);

	/* as on a full disk: no page may be added */
	journal_test_max_pages(j, 1);
	journal_accept(j, 2, "sleep", big);
	ck_assert_int_eq(wait_done(base, 2), 0);
	ck_assert_uint_eq(seen.id[1], 2);
	ck_assert_int_eq(seen.ok[1], -1);
	/* the outcome of job 1 fails (alone or with 3) and is kept for a retry */
	finish(j, 1, "sleep", 0, big, "");
	journal_accept(j, 3, "sleep", big);
	ck_assert_int_eq(wait_done(base, 3), 0);
	ck_assert_int_eq(seen.ok[2], -1);
	ck_assert_int_eq(log_count("level=error msg=journal-failed"), 1);
	ck_assert_int_eq(log_count("journal-resumed"), 0);
	journal_stats(j, &st);
	ck_assert_uint_ge(st.failed_batches, 2);

	journal_test_max_pages(j, 0);
	journal_accept(j, 4, "sleep", big);
	ck_assert_int_eq(wait_done(base, 4), 0);
	ck_assert_int_eq(seen.ok[3], 0);
	ck_assert_int_eq(log_count("level=info msg=journal-resumed"), 1);
	ck_assert_int_eq(log_count("msg=journal-failed"), 1);
	journal_close(j);

	/* 1 finished (retried with 4), 2 and 3 were never accepted, 4 pending */
	j = open_recover(base, 0, 100, &max_id);
	ck_assert_ptr_nonnull(j);
	ck_assert_uint_eq(rec.npending, 1);
	ck_assert_uint_eq(rec.pending_id[0], 4);
	ck_assert_uint_eq(rec.pending_args_len[0], sizeof(big) - 1);
	ck_assert_uint_eq(rec.nretained, 1);
	ck_assert_uint_eq(rec.retained[0].id, 1);
	ck_assert_uint_eq(rec.retained_text_len[0], sizeof(big) - 1);
	ck_assert_uint_eq(max_id, 4);
	journal_close(j);
}
END_TEST

START_TEST(test_failed_outcome_is_retried_without_new_records)
{
	static char big[8192];
	struct journal_stats st;
	struct journal *j;
	uint64_t max_id, until;

	memset(big, 'x', sizeof(big) - 1);
	j = open_recover(base, 0, 100, &max_id);
	ck_assert_ptr_nonnull(j);
	journal_accept(j, 1, "sleep", "ms=1");
	ck_assert_int_eq(wait_done(base, 1), 0);
	journal_test_max_pages(j, 1);
	finish(j, 1, "sleep", 0, big, "");
	journal_accept(j, 2, "sleep", "ms=1");
	ck_assert_int_eq(wait_done(base, 2), 0);
	ck_assert_int_eq(seen.ok[1], -1);
	journal_test_max_pages(j, 0);
	/* nothing new is queued: the thread retries on its own */
	until = now_ns() + WAIT_MS * HB_NS_PER_MS;
	do {
		struct timeval step = { 0, 10000 };

		event_base_loopexit(base, &step);
		event_base_dispatch(base);
		journal_stats(j, &st);
	} while (st.commits < 2 && now_ns() < until);
	ck_assert_uint_eq(st.commits, 2);
	ck_assert_int_eq(log_count("msg=journal-resumed"), 1);
	journal_close(j);

	j = open_recover(base, 0, 100, &max_id);
	ck_assert_ptr_nonnull(j);
	ck_assert_uint_eq(rec.npending, 0);
	ck_assert_uint_eq(rec.nretained, 1);
	ck_assert_uint_eq(rec.retained_text_len[0], sizeof(big) - 1);
	journal_close(j);
}
END_TEST

START_TEST(test_timed_sync_makes_commits_durable_later)
{
	struct journal *j;
	uint64_t max_id;
	struct journal_stats st;

	j = open_recover(base, 20, 100, &max_id);
	ck_assert_ptr_nonnull(j);
	journal_stats(j, &st);
	ck_assert_uint_eq(st.syncs, 0);
	journal_accept(j, 1, "sleep", "ms=1");
	ck_assert_int_eq(wait_done(base, 1), 0);
	ck_assert_int_eq(wait_syncs(j, 1), 0);
	journal_accept(j, 2, "sleep", "ms=1");
	ck_assert_int_eq(wait_done(base, 2), 0);
	ck_assert_int_eq(wait_syncs(j, 2), 0);
	journal_close(j);
}
END_TEST

/*
 * Child: open, recover, accept n jobs and finish the first half, wait for
 * every completion (and one more to be sure the outcomes were committed),
 * then _exit without closing. Exit status 0 when all went as expected.
 */
static void
crash_child(unsigned sync_ms, uint64_t n)
{
	struct event_base *b = new_base();
	struct journal *j;
	uint64_t max_id, i;

	if (b == NULL)
		_exit(10);
	memset(&seen, 0, sizeof(seen));
	j = journal_open(dir, sync_ms, 1000, b, PRIO, on_done, &seen);
	if (j == NULL || journal_recover(j, NULL, &max_id) < 0)
		_exit(11);
	for (i = 1; i <= n; i++)
		journal_accept(j, i, "sleep", "ms=5");
	if (wait_done(b, n) < 0)
		_exit(12);
	for (i = 1; i <= n / 2; i++)
		finish(j, i, "sleep", 0, "ok", "");
	journal_accept(j, n + 1, "sleep", "ms=5");
	if (wait_done(b, n + 1) < 0)
		_exit(13);
	for (i = 0; i <= n; i++)
		if (seen.ok[i] != 0)
			_exit(14);
	_exit(0);
}

static void
crash_and_reopen(unsigned sync_ms)
{
	struct journal *j;
	uint64_t max_id, i, n = 200;
	pid_t pid;
	int status;

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		crash_child(sync_ms, n);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);

	j = open_recover(base, sync_ms, 1000, &max_id);
	ck_assert_ptr_nonnull(j);
	ck_assert_uint_eq(max_id, n + 1);
	ck_assert_uint_eq(rec.nretained, n / 2);
	ck_assert_uint_eq(rec.npending, n + 1 - n / 2);
	for (i = 0; i < rec.npending; i++)
		ck_assert_uint_eq(rec.pending_id[i], n / 2 + 1 + i);
	for (i = 0; i < rec.nretained; i++)
		ck_assert_uint_eq(rec.retained[i].id, i + 1);
	journal_close(j);
}

START_TEST(test_crash_after_completions_loses_nothing)
{
	crash_and_reopen(0);
}
END_TEST

START_TEST(test_crash_with_timed_sync_loses_nothing)
{
	/* the WAL reached the OS at each commit; only a power cut could lose it */
	crash_and_reopen(60000);
}
END_TEST

START_TEST(test_second_daemon_cannot_share_the_journal)
{
	struct journal *j;
	uint64_t max_id;
	pid_t pid;
	int status;

	j = open_recover(base, 0, 100, &max_id);
	ck_assert_ptr_nonnull(j);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct event_base *b = new_base();

		_exit(journal_open(dir, 0, 100, b, PRIO, on_done, &seen) == NULL ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_int_eq(log_count("reason=\"locked by another process\""), 1);
	ck_assert_int_eq(log_count("journal-corrupt"), 0);
	journal_close(j);
}
END_TEST

START_TEST(test_close_without_recovery_commits_what_was_queued)
{
	struct journal *j;
	uint64_t max_id;

	j = journal_open(dir, 0, 100, base, PRIO, on_done, &seen);
	ck_assert_ptr_nonnull(j);
	journal_accept(j, 5, "spin", "ms=5");
	journal_close(j);
	j = open_recover(base, 0, 100, &max_id);
	ck_assert_ptr_nonnull(j);
	ck_assert_uint_eq(rec.npending, 1);
	ck_assert_uint_eq(max_id, 5);
	journal_close(j);
}
END_TEST

Suite *journal_suite(void);

Suite *
journal_suite(void)
{
	Suite *s = suite_create("journal");
	TCase *tc = tcase_create("journal");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_finished_outcomes_and_unfinished_jobs_survive_reopen);
	tcase_add_test(tc, test_unfinished_jobs_come_back_in_id_order_with_their_args);
	tcase_add_test(tc, test_ids_continue_above_every_id_ever_written);
	tcase_add_test(tc, test_retention_keeps_only_the_newest_finished_outcomes);
	tcase_add_test(tc, test_records_queued_together_commit_in_one_transaction);
	tcase_add_test(tc, test_corrupt_file_is_moved_aside_and_a_fresh_journal_works);
	tcase_add_test(tc, test_another_programs_database_is_moved_aside);
	tcase_add_test(tc, test_journal_of_the_right_version_without_its_tables_is_moved_aside);
	tcase_add_test(tc, test_journal_of_a_newer_release_is_refused_and_kept);
	tcase_add_test(tc, test_unusable_state_dir_fails_open);
	tcase_add_test(tc, test_failed_writes_fail_submits_once_logged_then_recover);
	tcase_add_test(tc, test_failed_outcome_is_retried_without_new_records);
	tcase_add_test(tc, test_timed_sync_makes_commits_durable_later);
	tcase_add_test(tc, test_crash_after_completions_loses_nothing);
	tcase_add_test(tc, test_crash_with_timed_sync_loses_nothing);
	tcase_add_test(tc, test_second_daemon_cannot_share_the_journal);
	tcase_add_test(tc, test_close_without_recovery_commits_what_was_queued);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(journal_suite)
