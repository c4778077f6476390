/*
 * check_work.c - the work protocol of interface.md section 4 against the
 * real daemon: every verb and error code, the job kinds with known
 * answers, cancellation and deadlines, the per-connection and global
 * limits, authentication, clients that disconnect or never read, and the
 * SIGTERM drain of section 7 as a client sees it.
 *
 * Each test starts its own daemon on port 0 with the limits it needs.
 * Job outcomes arrive asynchronously, so tests that are not about ordering
 * pick lines by prefix (hb_await) and leave the others queued.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* strcasestr */
#endif

#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sched.h>
#include <sys/mount.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <strings.h>
#include <unistd.h>

#include "check_common.h"
#include "harness.h"

Suite	*work_suite(void);

#define FAST_TICK	"heartbeat_interval_ms=50"
#define OUTCOME_MS	10000	/* a short job's DONE, sanitizers included */
#define SHA_EMPTY	\
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA_ABC		\
	"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA_ABC_2	\
	"4f8b42c22dd3729b519ba6f68d2da7cc5b2d606d05daed5ad5128cc03e6c6358"
#define SHA_ABC_1000	\
	"fc8a6b86a13f71cd9a67f558ab6fd82a3dd89186163a017ed8051acf6d3f8f99"

/* SUBMIT args, expect OK <id>, return the id. */
static uint64_t
submit(struct hb_conn *c, const char *args)
{
	char req[512], *line, *end;
	unsigned long long id;

	snprintf(req, sizeof(req), "SUBMIT %s", args);
	line = hb_request(c, req, "OK ");
	id = strtoull(line + 3, &end, 10);
	ck_assert_msg(*end == '\0' && id > 0, "SUBMIT %s: bad reply \"%s\"",
	    args, line);
	return id;
}

/* Wait for the outcome of job id: "DONE id ..." or "FAIL id ...". */
static char *
outcome(struct hb_conn *c, uint64_t id, int timeout_ms)
{
	char pre[96];

	snprintf(pre, sizeof(pre), "DONE %llu |FAIL %llu ",
	    (unsigned long long)id, (unsigned long long)id);
	return hb_await(c, pre, timeout_ms);
}

/* Wait for DONE id and return its result=. */
static char *
result_of(struct hb_conn *c, uint64_t id, char *buf, size_t len)
{
	char *line = outcome(c, id, OUTCOME_MS);

	ck_assert_msg(strncmp(line, "DONE ", 5) == 0,
	    "job %llu failed: %s", (unsigned long long)id, line);
	ck_assert_msg(hb_field(line, "result", buf, len) == 0,
	    "DONE without result=: %s", line);
	ck_assert_msg(hb_num(line, "queue_us") >= 0 &&
	    hb_num(line, "run_us") >= 0,
	    "DONE without numeric queue_us and run_us: %s", line);
	ck_assert_msg(hb_fields_in_order(line, "result queue_us run_us"),
	    "not DONE <id> result= queue_us= run_us=: %s", line);
	return buf;
}

/* Submit args and return the DONE result. */
static char *
run_job(struct hb_conn *c, const char *args, char *buf, size_t len)
{
	return result_of(c, submit(c, args), buf, len);
}

/* The FAIL reason of job id. */
static void
expect_fail(struct hb_conn *c, uint64_t id, const char *reason,
    int timeout_ms)
{
	char *line = outcome(c, id, timeout_ms), r[64];

	ck_assert_msg(strncmp(line, "FAIL ", 5) == 0 &&
	    hb_field(line, "reason", r, sizeof(r)) == 0 &&
	    strcmp(r, reason) == 0, "expected FAIL %llu reason=%s, got \"%s\"",
	    (unsigned long long)id, reason, line);
}

/* A fresh STATS line, copied. */
static char *
stats(struct hb_conn *c, char *buf, size_t len)
{
	snprintf(buf, len, "%s", hb_request(c, "STATS", "STATS "));
	return buf;
}

/* Give the daemon a moment between two polls of its state. */
static void
pause_ms(int ms)
{
	poll(NULL, 0, ms);
}

/* Poll STATS until key is value (or at least value), or fail. */
static void
await_stat_cmp(struct hb_conn *c, const char *key, long long value,
    int at_least, int timeout_ms)
{
	uint64_t deadline = hb_now_ms() + (uint64_t)timeout_ms;
	char buf[1024];
	long long v;

	for (;;) {
		stats(c, buf, sizeof(buf));
		v = hb_num(buf, key);
		if (v == value || (at_least && v > value))
			return;
		if (hb_now_ms() > deadline)
			ck_abort_msg("STATS %s did not reach %lld in %d ms: %s",
			    key, value, timeout_ms, buf);
		pause_ms(20);
	}
}

static void
await_stat(struct hb_conn *c, const char *key, long long value,
    int timeout_ms)
{
	await_stat_cmp(c, key, value, 0, timeout_ms);
}

START_TEST(test_ping_is_answered_with_pong)
{
	struct hb_proc *p = hb_start(NULL);
	struct hb_conn *c = hb_connect(p->work_addr);

	ck_assert_str_eq(hb_request(c, "PING", "PONG"), "PONG");
	ck_assert_str_eq(hb_request(c, "PING", "PONG"), "PONG");
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_verbs_are_case_insensitive)
{
	struct hb_proc *p = hb_start(NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	char buf[128];

	hb_request(c, "ping", "PONG");
	hb_request(c, "PiNg", "PONG");
	hb_request(c, "stats", "STATS ");
	hb_request(c, "peers", "END");
	hb_request(c, "status 987654321", "ERR not-found");
	hb_request(c, "Cancel 987654321", "ERR not-found");
	hb_request(c, "watch", "OK watching");
	hb_request(c, "unWatch", "OK unwatched");
	hb_sendf(c, "help\n");
	while (strcmp(hb_reply(c, "", HB_REPLY_MS), "END") != 0)
		;
	ck_assert_str_eq(run_job(c, "primes n=10", buf, sizeof(buf)), "4");
	hb_sendf(c, "submit primes n=10\n");
	hb_reply(c, "OK ", HB_REPLY_MS);
	hb_request(c, "quit", "BYE");
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_crlf_line_endings_are_accepted)
{
	struct hb_proc *p = hb_start(NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	char buf[128];
	uint64_t id;

	hb_sendf(c, "PING\r\n");
	ck_assert_str_eq(hb_expect(c, "PONG", HB_REPLY_MS), "PONG");
	hb_sendf(c, "SUBMIT sha256 rounds=1 seed=abc\r\n");
	id = strtoull(hb_reply(c, "OK ", HB_REPLY_MS) + 3, NULL, 10);
	ck_assert_str_eq(result_of(c, id, buf, sizeof(buf)), SHA_ABC);
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_pipelined_requests_are_answered_in_request_order)
{
	static const char *const want[] = { "PONG", "STATS ", "ERR ",
	    "OK ", "PONG", "ERR not-found", "END", "PONG", NULL };
	struct hb_proc *p = hb_start(NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	char *line, *batch;
	size_t i;
	int n, k;

	hb_sendf(c, "PING\nSTATS\nSUBMIT nosuchkind\nSUBMIT sleep ms=1\n"
	    "PING\nSTATUS 987654321\nPEERS\nPING\n");
	for (i = 0; want[i] != NULL; i++) {
		/* The job's DONE may come at any point after its OK. */
		do
			line = hb_recv(c, HB_REPLY_MS);
		while (line != NULL && strncmp(line, "DONE ", 5) == 0);
		ck_assert_msg(line != NULL, "reply %zu (%s) missing", i,
		    want[i]);
		ck_assert_msg(strncmp(line, want[i], strlen(want[i])) == 0,
		    "reply %zu is \"%s\", expected \"%s...\"", i, line,
		    want[i]);
	}

	/* A thousand requests in one write: a thousand replies, in order. */
	n = 1000;
	batch = malloc((size_t)n * 16);
	ck_assert_ptr_nonnull(batch);
	batch[0] = '\0';
	for (k = 0; k < n; k++)
		strcat(batch, k % 2 ? "PING\n" : "STATUS 987654321\n");
	ck_assert_int_eq(hb_send(c, batch, strlen(batch)), 0);
	free(batch);
	for (k = 0; k < n; k++) {
		do
			line = hb_recv(c, HB_REPLY_MS);
		while (line != NULL && strncmp(line, "DONE ", 5) == 0);
		ck_assert_msg(line != NULL, "reply %d of %d missing", k, n);
		ck_assert_msg(strncmp(line, k % 2 ? "PONG" : "ERR not-found",
		    4) == 0, "reply %d out of order: %s", k, line);
	}
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_primes_counts_the_primes_up_to_n)
{
	struct hb_proc *p = hb_start(NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	char buf[128];

	ck_assert_str_eq(run_job(c, "primes n=10", buf, sizeof(buf)), "4");
	ck_assert_str_eq(run_job(c, "primes n=0", buf, sizeof(buf)), "0");
	ck_assert_str_eq(run_job(c, "primes n=1", buf, sizeof(buf)), "0");
	ck_assert_str_eq(run_job(c, "primes n=2", buf, sizeof(buf)), "1");
	ck_assert_str_eq(run_job(c, "primes n=1000000", buf, sizeof(buf)),
	    "78498");
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_sha256_applies_the_hash_rounds_times_to_the_seed)
{
	struct hb_proc *p = hb_start(NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	char buf[128];

	ck_assert_str_eq(run_job(c, "sha256 rounds=1 seed=abc", buf,
	    sizeof(buf)), SHA_ABC);
	ck_assert_str_eq(run_job(c, "sha256 rounds=1", buf, sizeof(buf)),
	    SHA_EMPTY);
	ck_assert_str_eq(run_job(c, "sha256 seed=abc rounds=2", buf,
	    sizeof(buf)), SHA_ABC_2);
	ck_assert_str_eq(run_job(c, "sha256 rounds=1000 seed=abc", buf,
	    sizeof(buf)), SHA_ABC_1000);
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_sleep_and_spin_report_ok_and_iterations)
{
	struct hb_proc *p = hb_start(NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	char buf[128], *line, *end;
	uint64_t id;

	id = submit(c, "sleep ms=10");
	line = outcome(c, id, OUTCOME_MS);
	ck_assert_msg(hb_line_has(line, "result=ok"), "sleep: %s", line);
	ck_assert_msg(hb_num(line, "run_us") >= 10000 &&
	    hb_num(line, "run_us") < 5000000,
	    "sleep ms=10 ran for run_us=%lld", hb_num(line, "run_us"));

	run_job(c, "spin ms=0", buf, sizeof(buf));
	strtoull(buf, &end, 10);
	ck_assert_msg(buf[0] != '\0' && *end == '\0',
	    "spin ms=0 result is not a count: %s", buf);
	run_job(c, "spin ms=20", buf, sizeof(buf));
	ck_assert_msg(strtoull(buf, &end, 10) > 0 && *end == '\0',
	    "spin ms=20 result is not a positive count: %s", buf);
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_job_ids_are_positive_and_increasing_across_connections)
{
	struct hb_proc *p = hb_start(NULL);
	struct hb_conn *a = hb_connect(p->work_addr);
	struct hb_conn *b = hb_connect(p->work_addr);
	uint64_t prev = 0, id;
	int i;

	for (i = 0; i < 10; i++) {
		id = submit(i % 2 ? a : b, "primes n=10");
		ck_assert_msg(id > prev, "id %llu after %llu",
		    (unsigned long long)id, (unsigned long long)prev);
		prev = id;
	}
	hb_close(a);
	hb_close(b);
	hb_free(p);
}
END_TEST

START_TEST(test_unknown_kind_is_unknown_kind)
{
	struct hb_proc *p = hb_start(NULL);
	struct hb_conn *c = hb_connect(p->work_addr);

	hb_request(c, "SUBMIT fly ms=1", "ERR unknown-kind");
	hb_request(c, "SUBMIT SLEEPY ms=1", "ERR unknown-kind");
	hb_request(c, "FROBNICATE", "ERR bad-request");
	hb_request(c, "PING", "PONG");
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_bad_arguments_are_bad_arg_and_the_connection_stays_usable)
{
	static const char *const bad[] = {
		"sleep",			/* missing */
		"spin",
		"primes",
		"sha256 seed=abc",
		"sleep ms=10 colour=red",	/* unknown key */
		"primes n=10 ms=5",
		"sleep ms=abc",			/* malformed */
		"sleep ms=",
		"sleep ms=1.5",
		"sleep ms=-1",
		"sleep ms=10x",
		"primes n=0x10",
		"sleep ms=99999999999999999999999",
		"primes n=10000000001",		/* out of range */
		"sha256 rounds=0",
		"sha256 rounds=1000000001",
		"sleep ms=1001",		/* above job_max_ms=1000 */
		"spin ms=1001",
		"sleep ms=10 timeout_ms=0",
		"sleep ms=10 timeout_ms=1001",
		"sleep ms=10 timeout_ms=x",
		NULL
	};
	struct hb_proc *p = hb_start("-s", "job_max_ms=1000", NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	char req[128], before[1024], after[1024];
	size_t i;

	stats(c, before, sizeof(before));
	for (i = 0; bad[i] != NULL; i++) {
		char *line;

		snprintf(req, sizeof(req), "SUBMIT %s", bad[i]);
		line = hb_request(c, req, "ERR bad-arg");
		ck_assert_msg(strncmp(line, "ERR bad-arg ", 12) == 0 &&
		    line[12] != '\0', "no human text after the code: \"%s\"",
		    line);
	}
	hb_request(c, "PING", "PONG");
	stats(c, after, sizeof(after));
	ck_assert_msg(hb_num(after, "submitted") == hb_num(before,
	    "submitted"), "bad-arg SUBMITs counted as submitted: %s", after);
	ck_assert_msg(hb_num(after, "rejected") == hb_num(before, "rejected"),
	    "bad-arg SUBMITs counted as rejected: %s", after);
	/* The bounds themselves are accepted. */
	submit(c, "sleep ms=1000 timeout_ms=1");
	submit(c, "primes n=10000000000 timeout_ms=1");
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_every_kind_fails_with_timeout_when_timeout_ms_passes)
{
	static const char *const slow[] = {
		"sleep ms=20000 timeout_ms=100",
		"spin ms=20000 timeout_ms=100",
		"primes n=10000000000 timeout_ms=100",
		"sha256 rounds=1000000000 timeout_ms=100",
		NULL
	};
	struct hb_proc *p = hb_start("-s", "threads=4", NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	uint64_t ids[4], t0;
	size_t i;

	t0 = hb_now_ms();
	for (i = 0; slow[i] != NULL; i++)
		ids[i] = submit(c, slow[i]);
	for (i = 0; slow[i] != NULL; i++)
		expect_fail(c, ids[i], "timeout", 5000);
	ck_assert_msg(hb_now_ms() - t0 < 3000,
	    "timeout_ms=100 jobs took %llu ms to fail",
	    (unsigned long long)(hb_now_ms() - t0));
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_job_max_ms_is_the_deadline_without_timeout_ms)
{
	struct hb_proc *p = hb_start("-s", "job_max_ms=200", NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	uint64_t id;

	id = submit(c, "primes n=10000000000");
	expect_fail(c, id, "timeout", 5000);
	id = submit(c, "sha256 rounds=1000000000");
	expect_fail(c, id, "timeout", 5000);
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_cancel_of_queued_job_fails_it_as_cancelled)
{
	struct hb_proc *p = hb_start("-s", "threads=1", NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	char req[64], *line;
	uint64_t run, queued;

	run = submit(c, "sleep ms=20000");
	queued = submit(c, "primes n=10");
	snprintf(req, sizeof(req), "STATUS %llu", (unsigned long long)queued);
	line = hb_request(c, req, "JOB ");
	ck_assert_msg(hb_line_has(line, "state=queued"), "not queued: %s",
	    line);
	snprintf(req, sizeof(req), "CANCEL %llu", (unsigned long long)queued);
	line = hb_request(c, req, "OK ");
	ck_assert_msg(strtoull(line + 3, NULL, 10) == queued,
	    "CANCEL %llu answered \"%s\"", (unsigned long long)queued, line);
	expect_fail(c, queued, "cancelled", HB_REPLY_MS);
	snprintf(req, sizeof(req), "CANCEL %llu", (unsigned long long)run);
	hb_request(c, req, "OK ");
	expect_fail(c, run, "cancelled", HB_REPLY_MS);
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_cancel_of_running_job_stops_it_promptly)
{
	static const char *const kinds[] = { "sleep ms=20000",
	    "spin ms=20000", "primes n=10000000000",
	    "sha256 rounds=1000000000", NULL };
	struct hb_proc *p = hb_start("-s", "threads=1", NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	char req[64], *line;
	uint64_t id, t0;
	size_t i;

	for (i = 0; kinds[i] != NULL; i++) {
		id = submit(c, kinds[i]);
		snprintf(req, sizeof(req), "STATUS %llu",
		    (unsigned long long)id);
		t0 = hb_now_ms() + 5000;
		for (;;) {
			line = hb_request(c, req, "JOB ");
			if (hb_line_has(line, "state=running"))
				break;
			ck_assert_msg(hb_now_ms() < t0, "%s never ran: %s",
			    kinds[i], line);
			pause_ms(10);
		}
		t0 = hb_now_ms();
		snprintf(req, sizeof(req), "CANCEL %llu",
		    (unsigned long long)id);
		hb_request(c, req, "OK ");
		expect_fail(c, id, "cancelled", HB_REPLY_MS);
		ck_assert_msg(hb_now_ms() - t0 < 2000,
		    "cancelling a running %s took %llu ms", kinds[i],
		    (unsigned long long)(hb_now_ms() - t0));
	}
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_cancel_of_unknown_or_finished_job_is_not_found)
{
	struct hb_proc *p = hb_start(NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	char req[64], buf[64];
	uint64_t id;

	hb_request(c, "CANCEL 987654321", "ERR not-found");
	id = submit(c, "primes n=10");
	result_of(c, id, buf, sizeof(buf));
	snprintf(req, sizeof(req), "CANCEL %llu", (unsigned long long)id);
	hb_request(c, req, "ERR not-found");
	id = submit(c, "sleep ms=10000 timeout_ms=1");
	expect_fail(c, id, "timeout", HB_REPLY_MS);
	snprintf(req, sizeof(req), "CANCEL %llu", (unsigned long long)id);
	hb_request(c, req, "ERR not-found");
	snprintf(req, sizeof(req), "STATUS %llu", (unsigned long long)id);
	ck_assert_msg(hb_line_has(hb_request(c, req, "JOB "), "state=failed"),
	    "a timed-out job is not state=failed");
	hb_request(c, "PING", "PONG");
	hb_close(c);
	hb_free(p);
}
END_TEST

/* STATUS id must carry every field; return the line. */
static char *
status(struct hb_conn *c, uint64_t id, const char *kind, const char *state)
{
	char req[64], want[96], *line;

	snprintf(req, sizeof(req), "STATUS %llu", (unsigned long long)id);
	line = hb_request(c, req, "JOB ");
	snprintf(want, sizeof(want), "JOB %llu ", (unsigned long long)id);
	ck_assert_msg(strncmp(line, want, strlen(want)) == 0,
	    "STATUS %llu answered \"%s\"", (unsigned long long)id, line);
	snprintf(want, sizeof(want), "kind=%s state=%s progress= queue_us= "
	    "run_us=", kind, state);
	ck_assert_msg(hb_line_has(line, want), "STATUS %llu: \"%s\", expected "
	    "fields %s", (unsigned long long)id, line, want);
	ck_assert_msg(hb_num(line, "queue_us") >= 0 && hb_num(line, "run_us")
	    >= 0, "queue_us/run_us not numbers: %s", line);
	ck_assert_msg(hb_fields_in_order(line,
	    "kind state progress queue_us run_us"),
	    "not JOB <id> kind= state= progress= queue_us= run_us=: %s", line);
	return line;
}

START_TEST(test_status_reports_queued_running_done_and_failed_jobs)
{
	struct hb_proc *p = hb_start("-s", "threads=1", NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	char req[64], buf[64], *line;
	uint64_t run, queued, t;

	run = submit(c, "sleep ms=20000");
	queued = submit(c, "primes n=1000");
	t = hb_now_ms() + 5000;
	while (!hb_line_has(line = status(c, run, "sleep", ""),
	    "state=running")) {
		ck_assert_msg(hb_now_ms() < t, "never running: %s", line);
		pause_ms(10);
	}
	status(c, run, "sleep", "running");
	status(c, queued, "primes", "queued");
	snprintf(req, sizeof(req), "CANCEL %llu", (unsigned long long)run);
	hb_request(c, req, "OK ");
	expect_fail(c, run, "cancelled", HB_REPLY_MS);
	result_of(c, queued, buf, sizeof(buf));
	ck_assert_str_eq(buf, "168");
	status(c, run, "sleep", "failed");
	line = status(c, queued, "primes", "done");
	ck_assert_msg(hb_num(line, "queue_us") > 0,
	    "a job queued behind another has queue_us=0: %s", line);
	hb_request(c, "STATUS 987654321", "ERR not-found");
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_status_remembers_the_last_1024_finished_jobs)
{
	struct hb_proc *p = hb_start("-s", "max_jobs_per_conn=2000", NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	char *batch, req[64];
	enum { N = 1100 };
	static uint64_t ids[N];
	uint64_t first;
	int i, n = N;

	first = submit(c, "primes n=2");
	outcome(c, first, OUTCOME_MS);
	batch = malloc((size_t)n * 24);
	ck_assert_ptr_nonnull(batch);
	batch[0] = '\0';
	for (i = 0; i < n; i++)
		strcat(batch, "SUBMIT primes n=2\n");
	hb_send(c, batch, strlen(batch));
	free(batch);
	for (i = 0; i < n; i++)
		ids[i] = strtoull(hb_await(c, "OK ", OUTCOME_MS) + 3, NULL, 10);
	for (i = 0; i < n; i++)
		hb_await(c, "DONE |FAIL ", OUTCOME_MS);
	/* Finished in about id order: the newest 1000 are all known. */
	status(c, ids[n - 1], "primes", "done");
	status(c, ids[n - 1000], "primes", "done");
	snprintf(req, sizeof(req), "STATUS %llu", (unsigned long long)first);
	hb_request(c, req, "ERR not-found");
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_stats_has_every_field_and_counters_follow_outcomes)
{
	static const char *const fields[] = { "uptime_s", "threads", "busy",
	    "queued", "submitted", "completed", "failed", "rejected",
	    "connections", "heartbeats", "lag_p50_us", "lag_p99_us",
	    "lag_max_us", "peers", "peers_up", NULL };
	struct hb_proc *p = hb_start("-s", FAST_TICK, "-s", "threads=3",
	    "-s", "max_jobs_per_conn=2", NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	struct hb_conn *c2 = hb_connect(p->work_addr);
	char s0[1024], s1[1024], buf[64], req[64];
	uint64_t a, b;
	size_t i;

	await_stat(c, "connections", 2, HB_REPLY_MS);
	stats(c, s0, sizeof(s0));
	for (i = 0; fields[i] != NULL; i++)
		ck_assert_msg(hb_num(s0, fields[i]) >= 0,
		    "STATS lacks numeric %s: %s", fields[i], s0);
	ck_assert_int_eq(hb_num(s0, "threads"), 3);
	ck_assert_int_eq(hb_num(s0, "peers"), 0);
	ck_assert_int_eq(hb_num(s0, "peers_up"), 0);
	ck_assert_int_eq(hb_num(s0, "submitted"), 0);

	a = submit(c, "sleep ms=20000");
	b = submit(c, "sleep ms=300");
	hb_request(c, "SUBMIT primes n=10", "ERR too-many-jobs");
	result_of(c, b, buf, sizeof(buf));
	snprintf(req, sizeof(req), "CANCEL %llu", (unsigned long long)a);
	hb_request(c, req, "OK ");
	expect_fail(c, a, "cancelled", HB_REPLY_MS);
	hb_request(c, "SUBMIT primes n=-1", "ERR bad-arg");
	await_stat_cmp(c, "heartbeats", hb_num(s0, "heartbeats") + 5, 1, 5000);
	stats(c, s1, sizeof(s1));
	ck_assert_msg(hb_num(s1, "submitted") == 2, "submitted: %s", s1);
	ck_assert_msg(hb_num(s1, "rejected") == 1, "rejected: %s", s1);
	ck_assert_msg(hb_num(s1, "completed") == 1, "completed: %s", s1);
	ck_assert_msg(hb_num(s1, "failed") == 1, "failed: %s", s1);
	ck_assert_msg(hb_num(s1, "busy") == 0 && hb_num(s1, "queued") == 0,
	    "busy/queued not 0 when idle: %s", s1);
	ck_assert_msg(hb_num(s1, "lag_max_us") >= hb_num(s1, "lag_p99_us") &&
	    hb_num(s1, "lag_p99_us") >= hb_num(s1, "lag_p50_us"),
	    "lag percentiles out of order: %s", s1);
	hb_close(c2);
	await_stat(c, "connections", 1, HB_REPLY_MS);
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_peers_without_peers_is_just_end)
{
	struct hb_proc *p = hb_start(NULL);
	struct hb_conn *c = hb_connect(p->work_addr);

	ck_assert_str_eq(hb_request(c, "PEERS", "END"), "END");
	hb_request(c, "PING", "PONG");
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_watch_streams_heartbeats_until_unwatch)
{
	struct hb_proc *p = hb_start("-s", FAST_TICK, NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	char *line;
	long long prev = -1;
	int i;

	ck_assert_str_eq(hb_request(c, "WATCH", "OK watching"), "OK watching");
	for (i = 0; i < 4; i++) {
		line = hb_expect(c, "HEARTBEAT ", 2000);
		ck_assert_msg(hb_line_has(line, "seq= lag_us= busy= queued= "
		    "peers_up="), "HEARTBEAT line lacks fields: %s", line);
		ck_assert_msg(hb_fields_in_order(line,
		    "seq lag_us busy queued peers_up"),
		    "HEARTBEAT fields out of order: %s", line);
		ck_assert_msg(hb_num(line, "seq") > prev,
		    "seq did not increase: %s", line);
		prev = hb_num(line, "seq");
	}
	/* Requests still work while watching. */
	hb_sendf(c, "PING\n");
	hb_await(c, "PONG", HB_REPLY_MS);
	hb_sendf(c, "UNWATCH\n");
	/* Heartbeats may precede the reply; none may follow it (6 ticks). */
	while ((line = hb_expect(c, "", HB_REPLY_MS)) != NULL &&
	    strcmp(line, "OK unwatched") != 0)
		ck_assert_msg(strncmp(line, "HEARTBEAT ", 10) == 0,
		    "before OK unwatched: \"%s\"", line);
	line = hb_recv(c, 300);
	ck_assert_msg(line == NULL, "after UNWATCH still got \"%s\"", line);
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_help_lists_the_verbs_then_end)
{
	static const char *const verbs[] = { "PING", "AUTH", "SUBMIT",
	    "CANCEL", "STATUS", "STATS", "PEERS", "WATCH", "UNWATCH", "HELP",
	    "QUIT", NULL };
	struct hb_proc *p = hb_start(NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	char all[8192] = "";
	char *line;
	int n = 0;
	size_t i;

	hb_sendf(c, "HELP\n");
	while ((line = hb_recv(c, HB_REPLY_MS)) != NULL &&
	    strcmp(line, "END") != 0) {
		n++;
		strncat(all, line, sizeof(all) - strlen(all) - 2);
		strcat(all, "\n");
	}
	ck_assert_msg(line != NULL, "HELP not ended by END: %s", all);
	ck_assert_msg(n >= 2, "HELP gave %d lines", n);
	for (i = 0; verbs[i] != NULL; i++)
		ck_assert_msg(strcasestr(all, verbs[i]) != NULL,
		    "HELP does not mention %s:\n%.3000s", verbs[i], all);
	hb_request(c, "PING", "PONG");
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_quit_says_bye_then_closes)
{
	struct hb_proc *p = hb_start(NULL);
	struct hb_conn *c = hb_connect(p->work_addr);

	hb_sendf(c, "QUIT\nPING\n");
	ck_assert_str_eq(hb_expect(c, "BYE", HB_REPLY_MS), "BYE");
	hb_expect_eof(c, HB_REPLY_MS);
	hb_close(c);
	hb_free(p);
}
END_TEST

/* n bytes of 'X' then the ending. */
static void
send_long(struct hb_conn *c, size_t n, const char *ending)
{
	char *buf = malloc(n + 3);

	ck_assert_ptr_nonnull(buf);
	memset(buf, 'X', n);
	strcpy(buf + n, ending);
	hb_send(c, buf, strlen(buf));
	free(buf);
}

START_TEST(test_line_longer_than_max_line_is_refused_and_closed)
{
	struct hb_proc *p = hb_start("-s", "max_line=100", NULL);
	struct hb_conn *c = hb_connect(p->work_addr);

	/* Exactly max_line bytes is a line, with LF or CRLF. */
	send_long(c, 100, "\n");
	hb_expect(c, "ERR bad-request", HB_REPLY_MS);
	send_long(c, 100, "\r\n");
	hb_expect(c, "ERR bad-request", HB_REPLY_MS);
	hb_request(c, "PING", "PONG");
	send_long(c, 101, "\n");
	hb_expect(c, "ERR line-too-long", HB_REPLY_MS);
	hb_expect_eof(c, HB_REPLY_MS);
	hb_close(c);

	/* An endless line is cut off without waiting for its end. */
	c = hb_connect(p->work_addr);
	send_long(c, 5000, "");
	hb_expect(c, "ERR line-too-long", HB_REPLY_MS);
	hb_expect_eof(c, HB_REPLY_MS);
	hb_close(c);

	c = hb_connect(p->work_addr);
	hb_request(c, "PING", "PONG");
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_unauthenticated_connection_is_closed_at_the_auth_deadline)
{
	struct hb_proc *p = hb_start("-s", "auth_token=tok", "-s",
	    "auth_timeout_ms=300", NULL);
	struct hb_conn *idle = hb_connect(p->work_addr);
	struct hb_conn *chatty = hb_connect(p->work_addr);
	struct hb_conn *good = hb_connect(p->work_addr);
	uint64_t start = hb_now_ms(), deadline;

	hb_request(good, "AUTH tok", "OK auth");
	/* PINGs are allowed before AUTH, but do not postpone the deadline */
	deadline = start + 250;
	while (hb_now_ms() < deadline)
		hb_request(chatty, "PING", "PONG");
	hb_expect(idle, "ERR auth-required timeout", HB_REPLY_MS);
	hb_expect_eof(idle, HB_REPLY_MS);
	hb_expect(chatty, "ERR auth-required timeout", HB_REPLY_MS);
	hb_expect_eof(chatty, HB_REPLY_MS);
	/* the authenticated one stays */
	hb_request(good, "PING", "PONG");
	hb_close(idle);
	hb_close(chatty);
	hb_close(good);
	hb_free(p);
}
END_TEST

START_TEST(test_clients_without_the_token_cannot_lock_out_those_with_it)
{
	struct hb_proc *p = hb_start("-s", "auth_token=tok", "-s",
	    "max_connections=3", NULL);
	struct hb_conn *authed = hb_connect(p->work_addr);
	struct hb_conn *u1, *u2, *late, *u3;

	hb_request(authed, "AUTH tok", "OK auth");
	u1 = hb_connect(p->work_addr);
	hb_request(u1, "PING", "PONG");
	u2 = hb_connect(p->work_addr);
	hb_request(u2, "PING", "PONG");
	/* full: the newcomer takes the place of the oldest unauthenticated */
	late = hb_connect(p->work_addr);
	hb_request(late, "AUTH tok", "OK auth");
	hb_expect(u1, "ERR busy", HB_REPLY_MS);
	hb_expect_eof(u1, HB_REPLY_MS);
	hb_request(u2, "PING", "PONG");
	/* and again: u2 goes next */
	u3 = hb_connect(p->work_addr);
	hb_request(u3, "PING", "PONG");
	hb_expect(u2, "ERR busy", HB_REPLY_MS);
	hb_expect_eof(u2, HB_REPLY_MS);
	hb_request(authed, "PING", "PONG");
	hb_request(late, "PING", "PONG");
	hb_close(u1);
	hb_close(u2);
	hb_close(u3);
	hb_close(late);
	hb_close(authed);
	hb_free(p);
}
END_TEST

START_TEST(test_idle_connection_is_closed_but_one_with_work_is_not)
{
	struct hb_proc *p = hb_start("-s", "idle_timeout_ms=300", "-s", FAST_TICK, NULL);
	struct hb_conn *idle = hb_connect(p->work_addr);
	struct hb_conn *busy = hb_connect(p->work_addr);
	struct hb_conn *watch = hb_connect(p->work_addr);
	uint64_t id;

	hb_request(idle, "PING", "PONG");
	id = submit(busy, "sleep ms=900");
	hb_request(watch, "WATCH", "OK watching");
	hb_expect_eof(idle, 3000);
	/* a running job and a WATCH keep their connections */
	outcome(busy, id, OUTCOME_MS);
	hb_request(busy, "PING", "PONG");
	hb_request(watch, "UNWATCH", "OK unwatched");
	/* now both are idle: they go too */
	hb_expect_eof(busy, 3000);
	hb_close(idle);
	hb_close(busy);
	hb_close(watch);
	hb_free(p);
}
END_TEST

START_TEST(test_error_text_never_echoes_raw_bytes)
{
	struct hb_proc *p = hb_start(NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	const char *line;
	size_t i;

	hb_sendf(c, "\xff\xfe\x01VERB\n");
	line = hb_expect(c, "ERR bad-request", HB_REPLY_MS);
	for (i = 0; line[i] != '\0'; i++)
		ck_assert_msg((unsigned char)line[i] >= 0x20 && (unsigned char)line[i] < 0x7f,
		    "raw byte 0x%02x in \"%s\"", (unsigned char)line[i], line);
	ck_assert_msg(strstr(line, "\\xff\\xfe\\x01VERB") != NULL, "not escaped: %s", line);
	hb_sendf(c, "SUBMIT sleep ms=1 \xc3\xa9=1\n");
	line = hb_expect(c, "ERR bad-arg", HB_REPLY_MS);
	ck_assert_msg(strstr(line, "\\xc3\\xa9") != NULL, "not escaped: %s", line);
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_connection_beyond_max_connections_gets_busy_and_is_closed)
{
	struct hb_proc *p = hb_start("-s", "max_connections=2", NULL);
	struct hb_conn *a = hb_connect(p->work_addr);
	struct hb_conn *b = hb_connect(p->work_addr);
	struct hb_conn *c;
	uint64_t deadline;
	char *line;

	hb_request(a, "PING", "PONG");
	hb_request(b, "PING", "PONG");
	c = hb_connect(p->work_addr);
	hb_expect(c, "ERR busy", HB_REPLY_MS);
	hb_expect_eof(c, HB_REPLY_MS);
	hb_close(c);
	hb_request(a, "PING", "PONG");

	/* A freed slot is available again. */
	hb_close(a);
	deadline = hb_now_ms() + HB_REPLY_MS;
	for (;;) {
		c = hb_connect(p->work_addr);
		hb_sendf(c, "PING\n");
		line = hb_recv(c, HB_REPLY_MS);
		if (line != NULL && strcmp(line, "PONG") == 0)
			break;
		ck_assert_msg(line == NULL || strncmp(line, "ERR busy", 8) == 0,
		    "unexpected \"%s\"", line);
		ck_assert_msg(hb_now_ms() < deadline,
		    "no slot after a client left");
		hb_close(c);
	}
	hb_close(c);
	hb_close(b);
	hb_free(p);
}
END_TEST

START_TEST(test_submit_beyond_threads_plus_queue_max_is_busy)
{
	struct hb_proc *p = hb_start("-s", "threads=1", "-s", "queue_max=1",
	    NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	struct hb_conn *d = hb_connect(p->work_addr);
	char s[1024], req[64];
	uint64_t a, b, t;

	a = submit(c, "sleep ms=20000");
	t = hb_now_ms() + 5000;
	while (hb_num(stats(c, s, sizeof(s)), "busy") != 1) {
		ck_assert_msg(hb_now_ms() < t, "job never ran: %s", s);
		pause_ms(10);
	}
	b = submit(c, "sleep ms=20000");
	hb_request(c, "SUBMIT sleep ms=1", "ERR busy");
	hb_request(d, "SUBMIT primes n=5", "ERR busy");
	stats(c, s, sizeof(s));
	ck_assert_msg(hb_num(s, "rejected") == 2 && hb_num(s, "submitted") ==
	    2 && hb_num(s, "queued") == 1, "after 2 busy: %s", s);
	snprintf(req, sizeof(req), "CANCEL %llu", (unsigned long long)b);
	hb_request(c, req, "OK ");
	expect_fail(c, b, "cancelled", HB_REPLY_MS);
	submit(d, "primes n=5");
	snprintf(req, sizeof(req), "CANCEL %llu", (unsigned long long)a);
	hb_request(c, req, "OK ");
	expect_fail(c, a, "cancelled", HB_REPLY_MS);
	hb_await(d, "DONE ", OUTCOME_MS);
	hb_close(c);
	hb_close(d);
	hb_free(p);
}
END_TEST

START_TEST(test_submit_beyond_max_jobs_per_conn_is_too_many_jobs)
{
	struct hb_proc *p = hb_start("-s", "max_jobs_per_conn=2",
	    "-s", "threads=3", NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	struct hb_conn *d = hb_connect(p->work_addr);
	char req[64];
	uint64_t a;

	a = submit(c, "sleep ms=20000");
	submit(c, "sleep ms=20000");
	hb_request(c, "SUBMIT primes n=5", "ERR too-many-jobs");
	/* Another client is not limited by this one's jobs. */
	submit(d, "primes n=5");
	hb_await(d, "DONE ", OUTCOME_MS);
	/* Once a job ends, this client may submit again. */
	snprintf(req, sizeof(req), "CANCEL %llu", (unsigned long long)a);
	hb_request(c, req, "OK ");
	expect_fail(c, a, "cancelled", HB_REPLY_MS);
	submit(c, "sleep ms=20000");
	hb_request(c, "SUBMIT primes n=5", "ERR too-many-jobs");
	hb_close(c);
	hb_close(d);
	hb_free(p);
}
END_TEST

START_TEST(test_auth_token_allows_only_auth_ping_help_quit_before_auth)
{
	static const char *const locked[] = { "STATS", "SUBMIT primes n=5",
	    "CANCEL 1", "STATUS 1", "PEERS", "WATCH", "UNWATCH", NULL };
	struct hb_proc *p = hb_start("-s", "auth_token=s3cret-T0ken", NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	char *line;
	size_t i;

	hb_request(c, "PING", "PONG");
	for (i = 0; locked[i] != NULL; i++)
		hb_request(c, locked[i], "ERR auth-required");
	hb_sendf(c, "HELP\n");
	while ((line = hb_expect(c, "", HB_REPLY_MS)) != NULL &&
	    strcmp(line, "END") != 0)
		ck_assert_msg(strncmp(line, "ERR", 3) != 0,
		    "HELP before AUTH: %s", line);
	hb_request(c, "AUTH wrong", "ERR auth-failed");
	hb_request(c, "AUTH s3cret-T0ke", "ERR auth-failed");
	hb_request(c, "AUTH s3cret-T0ken2", "ERR auth-failed");
	hb_request(c, "STATS", "ERR auth-required");
	ck_assert_str_eq(hb_request(c, "AUTH s3cret-T0ken", "OK auth"),
	    "OK auth");
	hb_request(c, "STATS", "STATS ");
	submit(c, "primes n=5");
	hb_await(c, "DONE ", OUTCOME_MS);
	hb_close(c);

	/* QUIT works before AUTH; AUTH is per connection. */
	c = hb_connect(p->work_addr);
	hb_request(c, "STATS", "ERR auth-required");
	hb_request(c, "QUIT", "BYE");
	hb_expect_eof(c, HB_REPLY_MS);
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_disconnect_drops_only_that_clients_jobs)
{
	struct hb_proc *p = hb_start("-s", "threads=2", NULL);
	struct hb_conn *a = hb_connect(p->work_addr);
	struct hb_conn *b = hb_connect(p->work_addr);
	struct hb_conn *c = hb_connect(p->work_addr);
	char s[1024], buf[64];
	uint64_t bid;
	int i;

	submit(a, "sleep ms=30000");
	await_stat(c, "busy", 1, HB_REPLY_MS);
	bid = submit(b, "sleep ms=700");
	await_stat(c, "busy", 2, HB_REPLY_MS);
	for (i = 0; i < 3; i++)
		submit(a, "sleep ms=30000");
	stats(c, s, sizeof(s));
	ck_assert_msg(hb_num(s, "busy") == 2 && hb_num(s, "queued") == 3,
	    "expected busy=2 queued=3: %s", s);
	hb_reset(a);
	/* A's running job is cancelled and its queued ones dropped, so
	 * soon nothing is queued and only B's job runs. */
	await_stat(c, "queued", 0, 3000);
	result_of(b, bid, buf, sizeof(buf));
	ck_assert_str_eq(buf, "ok");
	await_stat(c, "busy", 0, 3000);
	ck_assert_str_eq(run_job(c, "primes n=10", buf, sizeof(buf)), "4");
	hb_close(b);
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_slow_reader_does_not_grow_the_daemon_or_slow_others)
{
	struct hb_proc *p = hb_start("-s", FAST_TICK, NULL);
	struct hb_conn *slow = hb_connect(p->work_addr);
	struct hb_conn *c = hb_connect(p->work_addr);
	const char req[] = "STATS\n";
	size_t total = 2u << 20, sent = 0, off = 0, i;
	const size_t chunk = (sizeof(req) - 1) * 10000;
	char *buf = malloc(chunk), s[1024];
	long rss0, rss1;
	uint64_t deadline, stalled_since = 0, t;
	int rcv = 4096;
	ssize_t n;

	ck_assert_ptr_nonnull(buf);
	setsockopt(slow->fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	for (i = 0; i < chunk; i++)
		buf[i] = req[i % (sizeof(req) - 1)];
	hb_request(c, "PING", "PONG");
	rss0 = hb_rss_kb(p);
	/*
	 * 2 MiB of STATS is 350000 requests, about 100 MB of replies. Send
	 * until the daemon stops taking them (half a second with no progress)
	 * or all are sent; never read.
	 */
	deadline = hb_now_ms() + 10000;
	while (sent < total && hb_now_ms() < deadline) {
		n = send(slow->fd, buf + off, chunk - off, MSG_NOSIGNAL);
		if (n > 0) {
			sent += (size_t)n;
			off = (off + (size_t)n) % chunk;
			stalled_since = 0;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			break;	/* the daemon closed the slow reader: fine */
		if (stalled_since == 0)
			stalled_since = hb_now_ms();
		else if (hb_now_ms() - stalled_since > 500)
			break;
		/* Meanwhile another client is served promptly. */
		t = hb_now_ms();
		hb_request(c, "PING", "PONG");
		ck_assert_msg(hb_now_ms() - t < 1000,
		    "PING took %llu ms while a client did not read",
		    (unsigned long long)(hb_now_ms() - t));
	}
	t = hb_now_ms();
	stats(c, s, sizeof(s));
	ck_assert_msg(hb_now_ms() - t < 1000, "STATS took %llu ms",
	    (unsigned long long)(hb_now_ms() - t));
	rss1 = hb_rss_kb(p);
	ck_assert_msg(rss1 - rss0 < 64 * 1024,
	    "daemon grew from %ld kB to %ld kB for a client that never "
	    "reads (%zu bytes of requests taken)", rss0, rss1, sent);
	ck_assert_msg(hb_num(s, "lag_max_us") < 500000,
	    "tick lag reached %lld us: %s", hb_num(s, "lag_max_us"), s);
	free(buf);
	hb_close(slow);
	hb_request(c, "PING", "PONG");
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_sigterm_refuses_new_submits_but_lets_running_jobs_finish)
{
	struct hb_proc *p = hb_start("-s", "threads=2",
	    "-s", "shutdown_grace_ms=10000", NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	struct hb_conn *late;
	char req[64], buf[64], *line;
	uint64_t id, t;
	size_t m;

	id = submit(c, "sleep ms=800");
	m = hb_mark(p);
	t = hb_now_ms();
	hb_signal(p, SIGTERM);
	hb_expect_log(p, m, "msg=stopping", HB_REPLY_MS);
	hb_request(c, "SUBMIT primes n=10", "ERR shutting-down");
	hb_request(c, "PING", "PONG");
	snprintf(req, sizeof(req), "STATUS %llu", (unsigned long long)id);
	hb_request(c, req, "JOB ");
	line = hb_request(c, "STATS", "STATS ");
	ck_assert_msg(hb_num(line, "rejected") == 1 &&
	    hb_num(line, "submitted") == 1,
	    "a shutting-down SUBMIT is counted as rejected: %s", line);
	/* No new work connections are served. */
	late = hb_try_connect(p->work_addr);
	if (late != NULL) {
		hb_sendf(late, "PING\n");
		line = hb_recv(late, 500);
		ck_assert_msg(line == NULL, "a connection made while draining "
		    "got \"%s\"", line);
		hb_close(late);
	}
	result_of(c, id, buf, sizeof(buf));
	ck_assert_str_eq(buf, "ok");
	hb_expect_exit(p, 0, HB_EXIT_MS);
	ck_assert_msg(hb_now_ms() - t < 5000, "exit took %llu ms",
	    (unsigned long long)(hb_now_ms() - t));
	line = hb_expect_log(p, m, "msg=stopped", 0);
	ck_assert_msg(hb_num(line, "jobs_cancelled") == 0, "%s", line);
	hb_expect_eof(c, HB_REPLY_MS);
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_sigterm_cancels_jobs_left_after_the_grace_period)
{
	struct hb_proc *p = hb_start("-s", "threads=2",
	    "-s", "shutdown_grace_ms=400", NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	uint64_t ids[6], t;
	char *line, s[1024];
	int i, fails = 0, dones = 0, seen[6] = { 0 };

	ids[0] = submit(c, "sleep ms=30000");
	ids[1] = submit(c, "spin ms=30000");
	t = hb_now_ms() + 5000;
	while (hb_num(stats(c, s, sizeof(s)), "busy") != 2) {
		ck_assert_msg(hb_now_ms() < t, "jobs never ran: %s", s);
		pause_ms(10);
	}
	ids[2] = submit(c, "sleep ms=30000");
	ids[3] = submit(c, "primes n=10000000000");
	ids[4] = submit(c, "sleep ms=30000");
	ids[5] = submit(c, "sleep ms=30000");
	t = hb_now_ms();
	hb_signal(p, SIGTERM);
	/* Every OK gets exactly one outcome before the connection closes. */
	while ((line = hb_recv(c, HB_EXIT_MS)) != NULL) {
		unsigned long long id;
		char r[32];

		if (sscanf(line, "FAIL %llu", &id) == 1) {
			ck_assert_msg(hb_field(line, "reason", r, sizeof(r)) ==
			    0 && strcmp(r, "shutdown") == 0,
			    "expected reason=shutdown: %s", line);
			fails++;
		} else if (sscanf(line, "DONE %llu", &id) == 1)
			dones++;
		else
			ck_abort_msg("unexpected line \"%s\"", line);
		for (i = 0; i < 6; i++)
			if (ids[i] == id)
				break;
		ck_assert_msg(i < 6, "outcome for unknown job: %s", line);
		ck_assert_msg(seen[i]++ == 0, "second outcome: %s", line);
	}
	ck_assert_msg(c->eof, "connection not closed at exit");
	for (i = 0; i < 6; i++)
		ck_assert_msg(seen[i] == 1, "job %llu got no outcome",
		    (unsigned long long)ids[i]);
	ck_assert_int_eq(fails, 6);
	hb_expect_exit(p, 0, HB_EXIT_MS);
	ck_assert_msg(hb_now_ms() - t >= 350 && hb_now_ms() - t < 6000,
	    "exit %llu ms after SIGTERM with shutdown_grace_ms=400",
	    (unsigned long long)(hb_now_ms() - t));
	line = hb_expect_log(p, 0, "msg=stopped", 0);
	ck_assert_msg(hb_num(line, "jobs_cancelled") == 6,
	    "expected jobs_cancelled=6: %s", line);
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_sigterm_mixes_finished_and_cancelled_jobs_correctly)
{
	struct hb_proc *p = hb_start("-s", "threads=2",
	    "-s", "shutdown_grace_ms=1500", NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	uint64_t longj, shortj[4];
	char *line;
	int i;

	longj = submit(c, "sleep ms=30000");
	for (i = 0; i < 4; i++)
		shortj[i] = submit(c, "sleep ms=100");
	hb_signal(p, SIGTERM);
	for (i = 0; i < 4; i++) {
		line = outcome(c, shortj[i], 5000);
		ck_assert_msg(strncmp(line, "DONE ", 5) == 0,
		    "a queued short job did not finish within grace: %s", line);
	}
	expect_fail(c, longj, "shutdown", 5000);
	hb_expect_exit(p, 0, HB_EXIT_MS);
	line = hb_expect_log(p, 0, "msg=stopped", 0);
	ck_assert_msg(hb_num(line, "jobs_cancelled") == 1,
	    "expected jobs_cancelled=1: %s", line);
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_every_ok_gets_exactly_one_outcome_under_churn)
{
	static const char *const kinds[] = { "primes n=20000", "sleep ms=2",
	    "spin ms=1", "sha256 rounds=50 seed=x", "sleep ms=200",
	    "sleep ms=50 timeout_ms=5" };
	struct hb_proc *p = hb_start("-s", "threads=3", NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	enum { N = 300 };
	static unsigned char seen[N];
	static uint64_t ids[N];
	uint64_t id;
	char *line, req[64];
	int i, k, outcomes = 0;
	unsigned long long got;

	memset(seen, 0, sizeof(seen));
	for (i = 0; i < N; i++) {
		hb_sendf(c, "SUBMIT %s\n", kinds[i % 6]);
		line = hb_await(c, "OK |ERR ", HB_REPLY_MS);
		ck_assert_msg(strncmp(line, "OK ", 3) == 0, "SUBMIT %d: %s", i,
		    line);
		id = strtoull(line + 3, NULL, 10);
		ck_assert_msg(i == 0 || id > ids[i - 1], "id %llu after %llu",
		    (unsigned long long)id, (unsigned long long)ids[i - 1]);
		ids[i] = id;
		if (i % 7 == 3) {
			/* Cancel one that may be queued, running or done. */
			snprintf(req, sizeof(req), "CANCEL %llu",
			    (unsigned long long)ids[i - 2]);
			hb_sendf(c, "%s\n", req);
			hb_await(c, "OK |ERR not-found", HB_REPLY_MS);
		}
	}
	while (outcomes < N) {
		line = hb_await(c, "DONE |FAIL ", OUTCOME_MS);
		ck_assert_msg(sscanf(line + 5, "%llu", &got) == 1,
		    "bad outcome %s", line);
		for (k = 0; k < N && ids[k] != got; k++)
			;
		ck_assert_msg(k < N, "outcome for an unknown job: %s", line);
		ck_assert_msg(seen[k]++ == 0, "second outcome: %s", line);
		outcomes++;
	}
	ck_assert_msg(hb_recv(c, 200) == NULL, "extra line after all outcomes");
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_malformed_ids_and_missing_arguments_are_errors)
{
	static const char *const bad[] = { "CANCEL", "CANCEL abc",
	    "CANCEL -1", "CANCEL 1x", "STATUS", "STATUS 0",
	    "STATUS 99999999999999999999999", "SUBMIT", "AUTH",
	    "SUBMIT sleep 10", "SUBMIT sleep =5", NULL };
	struct hb_proc *p = hb_start(NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	size_t i;

	for (i = 0; bad[i] != NULL; i++)
		hb_request(c, bad[i], "ERR ");
	hb_request(c, "SUBMIT sleep 10", "ERR bad-arg");
	hb_request(c, "SUBMIT", "ERR bad-request");
	hb_request(c, "PING", "PONG");
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_half_closed_client_still_gets_its_replies)
{
	struct hb_proc *p = hb_start(NULL);
	struct hb_conn *c = hb_connect(p->work_addr);

	hb_sendf(c, "PING\nSTATS\nHELP\n");
	shutdown(c->fd, SHUT_WR);
	hb_expect(c, "PONG", HB_REPLY_MS);
	hb_expect(c, "STATS ", HB_REPLY_MS);
	while (strcmp(hb_expect(c, "", HB_REPLY_MS), "END") != 0)
		;
	hb_expect_eof(c, HB_REPLY_MS);
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_half_closed_client_gets_every_attached_outcome_then_eof)
{
	struct hb_proc *p = hb_start("-s", "threads=2", NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	char *line;
	int i, done = 0;

	/* as "printf ... | nc -q1": the requests, then EOF, then read */
	hb_sendf(c, "SUBMIT sleep ms=300\nSUBMIT primes n=1000\nSUBMIT spin ms=200\nPING\n");
	shutdown(c->fd, SHUT_WR);
	for (i = 1; i <= 3; i++)
		hb_expect(c, "OK ", HB_REPLY_MS);
	hb_expect(c, "PONG", HB_REPLY_MS);
	while (done < 3) {
		line = hb_expect(c, "DONE ", OUTCOME_MS);
		ck_assert_msg(line != NULL, "an attached job was lost at EOF");
		done++;
	}
	hb_expect_eof(c, HB_REPLY_MS);
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_detached_job_outlives_its_connection_and_any_client_can_wait)
{
	struct hb_proc *p = hb_start("-s", "threads=1", NULL);
	struct hb_conn *a = hb_connect(p->work_addr);
	struct hb_conn *b, *w;
	char req[64], buf[128], *line;
	uint64_t id;

	id = submit(a, "sleep ms=400 detach=1");
	hb_reset(a);	/* the submitter is gone for good */
	b = hb_connect(p->work_addr);
	w = hb_connect(p->work_addr);
	snprintf(req, sizeof(req), "STATUS %llu", (unsigned long long)id);
	line = hb_request(b, req, "JOB ");
	ck_assert_msg(hb_num(line, "detached") == 1, "not detached: %s", line);
	snprintf(buf, sizeof(buf), "OK %llu", (unsigned long long)id);
	snprintf(req, sizeof(req), "WAIT %llu", (unsigned long long)id);
	hb_request(w, req, buf);
	hb_request(b, req, buf);
	/* both waiters get the one outcome */
	line = outcome(w, id, OUTCOME_MS);
	ck_assert_msg(strncmp(line, "DONE ", 5) == 0, "detached job failed: %s", line);
	line = outcome(b, id, OUTCOME_MS);
	ck_assert_msg(strncmp(line, "DONE ", 5) == 0, "detached job failed: %s", line);
	/* finished: WAIT answers at once, STATUS carries the result */
	hb_request(w, req, buf);
	line = outcome(w, id, HB_REPLY_MS);
	ck_assert_msg(strncmp(line, "DONE ", 5) == 0, "WAIT after the end: %s", line);
	snprintf(req, sizeof(req), "STATUS %llu", (unsigned long long)id);
	line = hb_request(w, req, "JOB ");
	ck_assert_msg(hb_field(line, "result", buf, sizeof(buf)) == 0 &&
	    strcmp(buf, "ok") == 0 && hb_num(line, "detached") == 1 &&
	    strstr(line, "state=done") != NULL, "STATUS of a done job: %s", line);
	hb_request(w, "WAIT 999999", "ERR not-found");
	hb_close(b);
	hb_close(w);
	hb_free(p);
}
END_TEST

START_TEST(test_wait_on_its_own_attached_job_gives_one_outcome)
{
	struct hb_proc *p = hb_start(NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	char req[64], *line;
	uint64_t id;

	id = submit(c, "sleep ms=300");
	snprintf(req, sizeof(req), "WAIT %llu", (unsigned long long)id);
	hb_request(c, req, "OK ");
	line = outcome(c, id, OUTCOME_MS);
	ck_assert_msg(strncmp(line, "DONE ", 5) == 0, "outcome: %s", line);
	/* exactly one: the next line is the PING's */
	hb_sendf(c, "PING\n");
	line = hb_recv(c, HB_REPLY_MS);
	ck_assert_msg(line != NULL && strcmp(line, "PONG") == 0,
	    "a second outcome or none: %s", line != NULL ? line : "(nothing)");
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_jobs_lists_queued_and_running_jobs_in_id_order)
{
	struct hb_proc *p = hb_start("-s", "threads=1", NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	uint64_t a, b, d;
	char *line;

	a = submit(c, "sleep ms=20000");
	b = submit(c, "sleep ms=20000 detach=1");
	d = submit(c, "primes n=10");
	await_stat(c, "busy", 1, HB_REPLY_MS);
	hb_sendf(c, "JOBS\n");
	line = hb_expect(c, "JOB ", HB_REPLY_MS);
	ck_assert_msg((uint64_t)strtoull(line + 4, NULL, 10) == a &&
	    strstr(line, "state=running") && hb_num(line, "detached") == 0,
	    "first JOB line: %s", line);
	line = hb_expect(c, "JOB ", HB_REPLY_MS);
	ck_assert_msg((uint64_t)strtoull(line + 4, NULL, 10) == b &&
	    strstr(line, "state=queued") && hb_num(line, "detached") == 1,
	    "second JOB line: %s", line);
	line = hb_expect(c, "JOB ", HB_REPLY_MS);
	ck_assert_msg((uint64_t)strtoull(line + 4, NULL, 10) == d &&
	    strstr(line, "state=queued"), "third JOB line: %s", line);
	hb_expect(c, "END", HB_REPLY_MS);
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_failed_job_status_carries_its_reason)
{
	struct hb_proc *p = hb_start(NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	char req[64], *line;
	uint64_t id;

	id = submit(c, "sleep ms=5000 timeout_ms=50");
	line = outcome(c, id, OUTCOME_MS);
	ck_assert_msg(strstr(line, "reason=timeout") != NULL, "not a timeout: %s", line);
	snprintf(req, sizeof(req), "STATUS %llu", (unsigned long long)id);
	line = hb_request(c, req, "JOB ");
	ck_assert_msg(strstr(line, "state=failed") && strstr(line, " reason=timeout"),
	    "STATUS of a timed-out job: %s", line);
	hb_close(c);
	hb_free(p);
}
END_TEST

/* A fresh state_dir for one test (the harness owns the name; the test
 * removes the directory). */
static char *
state_dir_new(void)
{
	char *dir = hb_tmppath("state");

	ck_assert_msg(mkdir(dir, 0700) == 0, "mkdir %s: %s", dir, strerror(errno));
	return dir;
}

static void
state_dir_free(char *dir)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(test_journaled_jobs_survive_sigkill_with_exactly_one_outcome)
{
	char *dir = state_dir_new(), set[600];
	uint64_t ids[12];
	size_t n = 0, i, round;
	struct hb_proc *p;
	struct hb_conn *c;
	char req[64], *line;

	snprintf(set, sizeof(set), "state_dir=%s", dir);
	for (round = 0; round < 3; round++) {
		p = hb_start("-s", set, "-s", "threads=1", NULL);
		c = hb_connect(p->work_addr);
		/* ids continue above everything journaled before */
		for (i = 0; i < 4; i++) {
			ids[n] = submit(c, i == 0 ? "sleep ms=150 detach=1" :
			    "spin ms=60 detach=1");
			ck_assert_msg(n == 0 || ids[n] > ids[n - 1],
			    "id %llu not above %llu", (unsigned long long)ids[n],
			    (unsigned long long)ids[n - 1]);
			n++;
		}
		/* killed mid-run: nothing answered OK may be lost */
		hb_signal(p, SIGKILL);
		hb_wait_exit(p, HB_REPLY_MS);
		hb_close(c);
		hb_free(p);
	}
	p = hb_start("-s", set, "-s", "threads=2", NULL);
	hb_expect_log(p, 0, "msg=journal-recovered", HB_REPLY_MS);
	c = hb_connect(p->work_addr);
	for (i = 0; i < n; i++) {
		snprintf(req, sizeof(req), "WAIT %llu", (unsigned long long)ids[i]);
		hb_request(c, req, "OK ");
		line = outcome(c, ids[i], OUTCOME_MS);
		ck_assert_msg(strncmp(line, "DONE ", 5) == 0, "job %llu: %s",
		    (unsigned long long)ids[i], line);
	}
	/* exactly one outcome each: none is run twice once it has finished */
	hb_request(c, "JOBS", "END");
	hb_signal(p, SIGTERM);
	hb_expect_exit(p, 0, HB_REPLY_MS * 2);
	hb_close(c);
	hb_free(p);
	p = hb_start("-s", set, NULL);
	hb_expect_log(p, 0, "msg=journal-recovered requeued=0", HB_REPLY_MS);
	c = hb_connect(p->work_addr);
	snprintf(req, sizeof(req), "STATUS %llu", (unsigned long long)ids[n - 1]);
	line = hb_request(c, req, "JOB ");
	ck_assert_msg(strstr(line, "state=done") && hb_num(line, "detached") == 1,
	    "a retained outcome after restart: %s", line);
	hb_close(c);
	hb_free(p);
	state_dir_free(dir);
}
END_TEST

START_TEST(test_sigterm_leaves_journaled_jobs_to_run_at_the_next_start)
{
	char *dir = state_dir_new(), set[600], req[64];
	struct hb_proc *p;
	struct hb_conn *c, *w;
	uint64_t id;
	char *line;

	snprintf(set, sizeof(set), "state_dir=%s", dir);
	p = hb_start("-s", set, "-s", "shutdown_grace_ms=100", NULL);
	c = hb_connect(p->work_addr);
	w = hb_connect(p->work_addr);
	id = submit(c, "sleep ms=2000 detach=1");
	snprintf(req, sizeof(req), "WAIT %llu", (unsigned long long)id);
	hb_request(w, req, "OK ");
	hb_signal(p, SIGTERM);
	/* stopped, not failed: the waiter is closed without an outcome */
	hb_expect_eof(w, HB_REPLY_MS * 2);
	hb_expect_exit(p, 0, HB_REPLY_MS * 2);
	hb_close(c);
	hb_close(w);
	hb_free(p);

	p = hb_start("-s", set, NULL);
	hb_expect_log(p, 0, "msg=journal-recovered requeued=1", HB_REPLY_MS);
	c = hb_connect(p->work_addr);
	hb_request(c, req, "OK ");
	line = outcome(c, id, OUTCOME_MS);
	ck_assert_msg(strncmp(line, "DONE ", 5) == 0, "re-run job: %s", line);
	hb_close(c);
	hb_free(p);
	state_dir_free(dir);
}
END_TEST

/* Fill the filesystem of dir with one file; returns its path. */
static void
fill_disk(const char *path)
{
	static char block[4096];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	ck_assert_int_ge(fd, 0);
	while (write(fd, block, sizeof(block)) > 0)
		;
	close(fd);
}

START_TEST(test_full_disk_gives_unavailable_and_nothing_else_is_disturbed)
{
	char *dir, set[600], filler[700], *line;
	struct hb_proc *p;
	struct hb_conn *c;
	uint64_t deadline;
	int i, refused = 0;

	/* a 1 MiB filesystem of our own, in a mount namespace of our own */
	if (unshare(CLONE_NEWNS) != 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
		fprintf(stderr, "SKIP: no mount namespace here (%s)\n", strerror(errno));
		return;
	}
	dir = state_dir_new();
	ck_assert_msg(mount("tmpfs", dir, "tmpfs", 0, "size=1m") == 0,
	    "mount tmpfs: %s", strerror(errno));
	snprintf(set, sizeof(set), "state_dir=%s", dir);
	snprintf(filler, sizeof(filler), "%s/filler", dir);
	p = hb_start("-s", set, NULL);
	c = hb_connect(p->work_addr);
	(void)submit(c, "primes n=10 detach=1");

	fill_disk(filler);
	for (i = 0; i < 400 && !refused; i++) {
		hb_sendf(c, "SUBMIT primes n=10 detach=1\n");
		line = hb_reply(c, "", HB_REPLY_MS);
		if (strncmp(line, "ERR unavailable", 15) == 0)
			refused = 1;
		else
			ck_assert_msg(strncmp(line, "OK ", 3) == 0, "SUBMIT: %s", line);
	}
	ck_assert_msg(refused, "a full disk never gave ERR unavailable");
	hb_expect_log(p, 0, "level=error msg=journal-failed", HB_REPLY_MS);
	/* attached work and everything else go on */
	(void)submit(c, "primes n=10");
	hb_request(c, "PING", "PONG");
	hb_request(c, "STATS", "STATS ");

	/* space again: detached SUBMITs are accepted again */
	unlink(filler);
	deadline = hb_now_ms() + 10000;
	for (;;) {
		hb_sendf(c, "SUBMIT primes n=10 detach=1\n");
		line = hb_reply(c, "", HB_REPLY_MS);
		if (strncmp(line, "OK ", 3) == 0)
			break;
		ck_assert_msg(hb_now_ms() < deadline, "still refused: %s", line);
		pause_ms(100);
	}
	hb_close(c);
	hb_free(p);
	umount(dir);
	state_dir_free(dir);
}
END_TEST

START_TEST(test_corrupt_journal_is_moved_aside_and_work_goes_on)
{
	char *dir = state_dir_new(), set[600], path[600];
	struct hb_proc *p;
	struct hb_conn *c;
	FILE *f;

	snprintf(path, sizeof(path), "%s/jobs.db", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("this is not a database, not even close\n", f);
	fclose(f);
	snprintf(set, sizeof(set), "state_dir=%s", dir);
	p = hb_start("-s", set, NULL);
	hb_expect_log(p, 0, "level=error msg=journal-corrupt moved=", HB_REPLY_MS);
	c = hb_connect(p->work_addr);
	(void)submit(c, "primes n=10 detach=1");
	hb_request(c, "PING", "PONG");
	hb_close(c);
	hb_free(p);
	state_dir_free(dir);
}
END_TEST

/* SUBMIT n detached primes n=0 jobs, pipelined in batches; the ids of the
 * first and the last. */
static void
submit_detached_batches(struct hb_conn *c, unsigned n, uint64_t *first,
    uint64_t *last)
{
	static const char req[] = "SUBMIT primes n=0 detach=1\n";
	enum { BATCH = 500 };
	char *buf = malloc(BATCH * (sizeof(req) - 1)), *line, *end;
	unsigned i, k, sent = 0;
	uint64_t id, prev = 0;

	ck_assert_ptr_nonnull(buf);
	for (i = 0; i < BATCH; i++)
		memcpy(buf + i * (sizeof(req) - 1), req, sizeof(req) - 1);
	while (sent < n) {
		k = n - sent < BATCH ? n - sent : BATCH;
		ck_assert_int_eq(hb_send(c, buf, k * (sizeof(req) - 1)), 0);
		for (i = 0; i < k; i++) {
			line = hb_reply(c, "OK ", HB_REPLY_MS);
			id = strtoull(line + 3, &end, 10);
			ck_assert_msg(*end == '\0' && id > prev,
			    "SUBMIT %u: \"%s\" after id %llu", sent + i, line,
			    (unsigned long long)prev);
			if (sent + i == 0)
				*first = id;
			prev = id;
		}
		sent += k;
	}
	*last = prev;
	free(buf);
}

/* STATUS id is a done, detached primes n=0 job: result=0. */
static void
expect_retained(struct hb_conn *c, uint64_t id)
{
	char req[64], res[32], *line;

	snprintf(req, sizeof(req), "STATUS %llu", (unsigned long long)id);
	line = hb_request(c, req, "JOB ");
	ck_assert_msg(strstr(line, "state=done") && hb_num(line, "detached") == 1 &&
	    hb_field(line, "result", res, sizeof(res)) == 0 &&
	    strcmp(res, "0") == 0, "retained outcome of %llu after restart: %s",
	    (unsigned long long)id, line);
}

START_TEST(test_journal_recovers_tens_of_thousands_of_retained_outcomes)
{
	enum { JOBS = 20000 };
	char *dir = state_dir_new(), set[600], req[64], res[32], *line;
	const char *keep[] = { "-s", "job_retention=30000", "-s",
	    "journal_sync_ms=50", "-s", "threads=2" };
	uint64_t first = 0, last = 0, id;
	struct hb_proc *p;
	struct hb_conn *c;

	snprintf(set, sizeof(set), "state_dir=%s", dir);
	p = hb_start("-s", set, keep[0], keep[1], keep[2], keep[3], keep[4],
	    keep[5], NULL);
	c = hb_connect(p->work_addr);
	submit_detached_batches(c, JOBS, &first, &last);
	ck_assert_msg(last - first == JOBS - 1, "ids %llu..%llu for %d jobs",
	    (unsigned long long)first, (unsigned long long)last, JOBS);
	/* every outcome is in before the stop, so none is re-queued */
	await_stat(c, "completed", JOBS, OUTCOME_MS * 3);
	hb_signal(p, SIGTERM);
	hb_expect_exit(p, 0, HB_EXIT_MS);
	hb_close(c);
	hb_free(p);

	p = hb_start("-s", set, keep[0], keep[1], keep[2], keep[3], keep[4],
	    keep[5], NULL);
	line = hb_expect_log(p, 0, "msg=journal-recovered requeued=0",
	    HB_REPLY_MS);
	ck_assert_msg(hb_num(line, "retained") == JOBS &&
	    hb_num(line, "max_id") == (long long)last,
	    "not every outcome recovered: %s", line);
	c = hb_connect(p->work_addr);
	expect_retained(c, first);
	expect_retained(c, first + JOBS / 2);
	expect_retained(c, last);
	/* WAIT on a recovered outcome answers at once */
	snprintf(req, sizeof(req), "WAIT %llu", (unsigned long long)first);
	hb_request(c, req, "OK ");
	line = outcome(c, first, HB_REPLY_MS);
	ck_assert_msg(strncmp(line, "DONE ", 5) == 0 &&
	    hb_field(line, "result", res, sizeof(res)) == 0 &&
	    strcmp(res, "0") == 0, "WAIT %llu after restart: %s",
	    (unsigned long long)first, line);
	/* new ids continue above every recovered one */
	id = submit(c, "primes n=0 detach=1");
	ck_assert_msg(id > last, "new id %llu not above %llu",
	    (unsigned long long)id, (unsigned long long)last);
	hb_close(c);
	hb_free(p);
	state_dir_free(dir);
}
END_TEST

/* STATUS line's progress= as a number, or fail. */
static double
progress_of(const char *line)
{
	char pbuf[32], *end;
	double v;

	ck_assert_msg(hb_field(line, "progress", pbuf, sizeof(pbuf)) == 0,
	    "no progress: %s", line);
	v = strtod(pbuf, &end);
	ck_assert_msg(end != pbuf && *end == '\0', "progress not a number: %s",
	    line);
	return v;
}

/* Poll STATUS id until the job is running with progress above min. */
static char *
await_progress(struct hb_conn *c, uint64_t id, double min, char *buf,
    size_t len)
{
	uint64_t deadline = hb_now_ms() + OUTCOME_MS;
	char req[64];

	snprintf(req, sizeof(req), "STATUS %llu", (unsigned long long)id);
	for (;;) {
		snprintf(buf, len, "%s", hb_request(c, req, "JOB "));
		if (hb_line_has(buf, "state=running") && progress_of(buf) > min)
			return buf;
		ck_assert_msg(hb_now_ms() < deadline, "no progress above %g in "
		    "%d ms: %s", min, OUTCOME_MS, buf);
		pause_ms(10);
	}
}

START_TEST(test_status_progress_advances_while_a_job_runs)
{
	static const char *const kinds[] = { "spin ms=5000", "sleep ms=5000",
	    NULL };
	struct hb_proc *p = hb_start("-s", "threads=2", NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	char req[64], first[256], second[256], *line;
	double p1, p2;
	uint64_t id;
	size_t i;

	for (i = 0; kinds[i] != NULL; i++) {
		id = submit(c, kinds[i]);
		/* running with some progress, then more progress and run time */
		await_progress(c, id, 0, first, sizeof(first));
		p1 = progress_of(first);
		line = await_progress(c, id, p1, second, sizeof(second));
		p2 = progress_of(line);
		ck_assert_msg(p1 > 0 && p2 > p1 && p2 < 100,
		    "%s: progress did not advance: \"%s\" then \"%s\"",
		    kinds[i], first, line);
		ck_assert_msg(hb_num(line, "run_us") > hb_num(first, "run_us"),
		    "run_us did not grow: \"%s\" then \"%s\"", first, line);
		snprintf(req, sizeof(req), "CANCEL %llu",
		    (unsigned long long)id);
		hb_request(c, req, "OK ");
		expect_fail(c, id, "cancelled", HB_REPLY_MS);
	}
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_watch_heartbeats_show_busy_and_queued_jobs)
{
	struct hb_proc *p = hb_start("-s", FAST_TICK, "-s", "threads=1",
	    NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	struct hb_conn *w = hb_connect(p->work_addr);
	uint64_t deadline;
	char *line;

	submit(c, "sleep ms=20000");
	submit(c, "sleep ms=20000");
	hb_request(w, "WATCH", "OK watching");
	deadline = hb_now_ms() + HB_REPLY_MS;
	for (;;) {
		line = hb_expect(w, "HEARTBEAT ", 2000);
		if (hb_num(line, "busy") == 1 && hb_num(line, "queued") == 1)
			break;
		ck_assert_msg(hb_now_ms() < deadline,
		    "no HEARTBEAT with busy=1 queued=1: %s", line);
	}
	hb_reset(c);
	/* The client left: its jobs go, and the heartbeats say so. */
	deadline = hb_now_ms() + HB_REPLY_MS;
	for (;;) {
		line = hb_expect(w, "HEARTBEAT ", 2000);
		if (hb_num(line, "busy") == 0 && hb_num(line, "queued") == 0)
			break;
		ck_assert_msg(hb_now_ms() < deadline,
		    "jobs of a gone client still counted: %s", line);
	}
	hb_close(w);
	hb_free(p);
}
END_TEST

START_TEST(test_many_clients_each_get_only_their_own_outcomes)
{
	enum { NC = 20, NJ = 10 };
	struct hb_proc *p = hb_start("-s", "threads=2", NULL);
	struct hb_conn *c[NC];
	static uint64_t ids[NC][NJ];
	char *line;
	unsigned long long got;
	int i, j, k;

	for (i = 0; i < NC; i++)
		c[i] = hb_connect(p->work_addr);
	for (j = 0; j < NJ; j++)
		for (i = 0; i < NC; i++)
			hb_sendf(c[i], "SUBMIT primes n=%d\n", 1000 + i);
	for (i = 0; i < NC; i++)
		for (j = 0; j < NJ; j++)
			ids[i][j] = strtoull(hb_reply(c[i], "OK ",
			    HB_REPLY_MS) + 3, NULL, 10);
	for (i = 0; i < NC; i++) {
		for (j = 0; j < NJ; j++) {
			line = hb_await(c[i], "DONE |FAIL ", OUTCOME_MS);
			ck_assert_msg(sscanf(line, "DONE %llu", &got) == 1,
			    "client %d: %s", i, line);
			for (k = 0; k < NJ && ids[i][k] != got; k++)
				;
			ck_assert_msg(k < NJ, "client %d got another client's "
			    "outcome: %s", i, line);
		}
		hb_close(c[i]);
	}
	hb_free(p);
}
END_TEST

/* Open file descriptors of the process. */
static int
fd_count(pid_t pid)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

START_TEST(test_closed_connections_release_their_descriptors)
{
	struct hb_proc *p = hb_start(NULL);
	struct hb_conn *c = hb_connect(p->work_addr), *x;
	int before, after = -1, i;
	uint64_t deadline;

	hb_request(c, "PING", "PONG");
	before = fd_count(p->pid);
	for (i = 0; i < 300; i++) {
		x = hb_connect(i % 3 == 2 ? p->peer_addr : p->work_addr);
		if (i % 3 == 0)
			hb_request(x, "PING", "PONG");
		else if (i % 3 == 1)
			hb_sendf(x, "SUBMIT sleep ms=5000\n");
		else
			hb_sendf(x, "HELLO qa 1\nHB 1 1\n");
		hb_close(x);
	}
	deadline = hb_now_ms() + HB_REPLY_MS;
	while (hb_now_ms() < deadline) {
		hb_request(c, "PING", "PONG");
		after = fd_count(p->pid);
		if (after <= before)
			break;
		pause_ms(20);
	}
	ck_assert_msg(after <= before, "descriptors: %d before 300 "
	    "connections, %d after they closed", before, after);
	await_stat(c, "connections", 1, HB_REPLY_MS);
	await_stat(c, "busy", 0, HB_REPLY_MS);
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_sigterm_does_not_wait_for_idle_clients)
{
	struct hb_proc *p = hb_start("-s", FAST_TICK,
	    "-s", "shutdown_grace_ms=20000", NULL);
	struct hb_conn *a = hb_connect(p->work_addr);
	struct hb_conn *b = hb_connect(p->work_addr);
	struct hb_conn *w = hb_connect(p->work_addr);
	uint64_t t;

	hb_request(a, "PING", "PONG");
	hb_request(b, "STATS", "STATS ");
	hb_request(w, "WATCH", "OK watching");
	t = hb_now_ms();
	hb_signal(p, SIGTERM);
	hb_expect_exit(p, 0, HB_EXIT_MS);
	ck_assert_msg(hb_now_ms() - t < 3000, "exit took %llu ms with idle "
	    "clients", (unsigned long long)(hb_now_ms() - t));
	hb_expect_eof(a, HB_REPLY_MS);
	hb_expect_eof(b, HB_REPLY_MS);
	while (hb_recv(w, HB_REPLY_MS) != NULL)
		;
	ck_assert_msg(w->eof, "watcher not closed");
	hb_close(a);
	hb_close(b);
	hb_close(w);
	hb_free(p);
}
END_TEST

/* The TCP port of a connected socket's own (local) or far (peer) end. */
static unsigned
sock_port(int fd, int peer)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	ck_assert_int_eq(peer ? getpeername(fd, (struct sockaddr *)&ss, &len) :
	    getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	ck_assert_int_eq(ss.ss_family, AF_INET);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/*
 * Bytes the daemon has not read from client c: the receive queue of the
 * daemon's end of the connection (local port = its work port, remote port
 * = c's), from /proc/net/tcp.
 */
static long
daemon_unread(const struct hb_conn *c)
{
	unsigned srv = sock_port(c->fd, 1), cli = sock_port(c->fd, 0);
	unsigned lport, rport;
	unsigned long txq, rxq;
	char line[512];
	long found = -1;
	FILE *f = fopen("/proc/net/tcp", "r");

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, " %*d: %*8x:%x %*8x:%x %*x %lx:%lx", &lport,
		    &rport, &txq, &rxq) == 4 && lport == srv && rport == cli)
			found = (long)rxq;
	fclose(f);
	ck_assert_msg(found >= 0, "no daemon socket %u -> %u in /proc/net/tcp",
	    srv, cli);
	return found;
}

/* A plain line reader on c's socket, for replies too many for hb_recv's queue. */
struct reader {
	int	 fd;
	size_t	 off, len;
	char	 buf[1 << 16];
};

/* The next line (valid until the next call), or NULL at EOF or timeout. */
static char *
reader_line(struct reader *r, int timeout_ms)
{
	uint64_t deadline = hb_now_ms() + (uint64_t)timeout_ms;
	struct pollfd pfd = { r->fd, POLLIN, 0 };
	char *nl, *line;
	ssize_t n;

	for (;;) {
		nl = memchr(r->buf + r->off, '\n', r->len - r->off);
		if (nl != NULL) {
			*nl = '\0';
			line = r->buf + r->off;
			r->off = (size_t)(nl - r->buf) + 1;
			return line;
		}
		memmove(r->buf, r->buf + r->off, r->len - r->off);
		r->len -= r->off;
		r->off = 0;
		ck_assert_msg(r->len < sizeof(r->buf), "a reply line over 64 KiB");
		if (hb_now_ms() >= deadline ||
		    poll(&pfd, 1, (int)(deadline - hb_now_ms())) <= 0)
			return NULL;
		n = recv(r->fd, r->buf + r->len, sizeof(r->buf) - r->len, 0);
		if (n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EINTR)))
			return NULL;
		if (n > 0)
			r->len += (size_t)n;
	}
}

/*
 * Field i of /proc/sys/net/ipv4/<name> (tcp_wmem, tcp_rmem: min default
 * max): what the kernel may buffer of a connection's data.
 */
static long
tcp_mem(const char *name, int i)
{
	char path[64];
	long v[3];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/%s", name);
	ck_assert_ptr_nonnull(f = fopen(path, "r"));
	ck_assert_int_eq(fscanf(f, "%ld %ld %ld", &v[0], &v[1], &v[2]), 3);
	fclose(f);
	return v[i];
}

/*
 * A client that pipelines far more than WORK_OUT_HIGH (256 KiB) of replies
 * without reading: the daemon stops reading it once that much output is
 * waiting (the rest of its requests stay unread in the kernel, its last
 * SUBMIT is not taken), serves other clients meanwhile, and when the client
 * reads at last it gets every reply in request order, then every outcome.
 *
 * PEERS with 100 long-named peers is a ~12 KB reply to a 6-byte request.
 * Before the daemon's own buffer fills, the kernel holds up to the largest
 * send buffer of the daemon's socket and the default receive buffer of
 * the client's (it grows only as the client reads), so the flood is twice
 * that plus 1 MiB.
 */
START_TEST(test_a_client_that_reads_late_still_gets_every_outcome)
{
	enum { NPEER = 100, NJ = 50, NPING = 8000, STABLE = 20 };
	struct hb_proc *p;
	struct hb_conn *c, *o;
	static struct reader rd;
	static uint64_t ids[NJ];
	static unsigned char seen[NJ + 1];	/* [NJ]: the last SUBMIT */
	char *conf, *batch, *line, s[1024], want[64];
	size_t len = 0, cap, clen = 0, per = 0;
	unsigned long long tail;
	long unread = -1, prev = -1, flood;
	uint64_t deadline;
	int i, g, k, groups, stable = 0, outcomes = 0;

	cap = (size_t)NPEER * 128;
	conf = malloc(cap);
	ck_assert_ptr_nonnull(conf);
	for (i = 0; i < NPEER; i++)
		clen += (size_t)snprintf(conf + clen, cap - clen, "peer = "
		    "late-reader-peer-%03d-abcdefghijklmnopqrstuvwxyz0123456789"
		    "@127.0.0.1:1\n", i);
	p = hb_start("-c", hb_tmpfile(conf), "-s", "threads=2", NULL);
	free(conf);
	c = hb_connect(p->work_addr);
	o = hb_connect(p->work_addr);

	/* the size of one PEERS reply */
	hb_sendf(o, "PEERS\n");
	for (i = 0; strcmp(line = hb_reply(o, "", HB_REPLY_MS), "END") != 0;
	    i++)
		per += strlen(line) + 1;
	ck_assert_int_eq(i, NPEER);
	flood = 2 * (tcp_mem("tcp_wmem", 2) + tcp_mem("tcp_rmem", 1)) +
	    (1L << 20);
	groups = (int)(flood / (long)per) + 1;

	cap = (size_t)NJ * 32 + (size_t)groups * 24 + (size_t)NPING * 5 + 64;
	batch = malloc(cap);
	ck_assert_ptr_nonnull(batch);
	for (i = 0; i < NJ; i++)
		len += (size_t)snprintf(batch + len, cap - len,
		    "SUBMIT sleep ms=600000\n");
	for (g = 0; g < groups; g++)
		len += (size_t)snprintf(batch + len, cap - len,
		    "PEERS\nSTATUS %d\n", 987650000 + g);
	/* more requests than the daemon buffers itself: some stay in the kernel */
	for (i = 0; i < NPING; i++)
		len += (size_t)snprintf(batch + len, cap - len, "PING\n");
	len += (size_t)snprintf(batch + len, cap - len,
	    "SUBMIT primes n=10\nPING\n");
	ck_assert_int_eq(hb_send(c, batch, len), 0);
	free(batch);

	/*
	 * The daemon has stopped reading c when its unread bytes stay the
	 * same over STABLE round trips of another client (each a pass of the
	 * loop, which would read more from a client it still reads) and the
	 * final SUBMIT has not been taken.
	 */
	deadline = hb_now_ms() + OUTCOME_MS;
	while (stable < STABLE) {
		ck_assert_msg(hb_now_ms() < deadline, "the daemon kept reading "
		    "a client that did not read (%ld bytes unread, %d stable "
		    "round trips): %s", unread, stable, s);
		hb_request(o, "PING", "PONG");
		stats(o, s, sizeof(s));
		unread = daemon_unread(c);
		if (unread > 0 && unread == prev && hb_num(s, "submitted") == NJ)
			stable++;
		else
			stable = 0;
		prev = unread;
	}

	/* Read everything now: every reply, in request order. */
	ck_assert_msg(c->len == 0 && c->nlines == 0, "read from c too early");
	rd.fd = c->fd;
	rd.off = rd.len = 0;
	memset(seen, 0, sizeof(seen));
#define NEXT()	(line = reader_line(&rd, OUTCOME_MS),			\
	    ck_assert_msg(line != NULL, "replies stopped"), line)
	for (i = 0; i < NJ; i++) {
		ck_assert_msg(sscanf(NEXT(), "OK %llu", &tail) == 1,
		    "reply to SUBMIT %d: %s", i, line);
		ids[i] = tail;
	}
	for (g = 0; g < groups; g++) {
		for (k = 0; strncmp(NEXT(), "PEER ", 5) == 0; k++)
			;
		ck_assert_msg(k == NPEER && strcmp(line, "END") == 0,
		    "PEERS %d of %d: %d lines then \"%s\"", g, groups, k, line);
		snprintf(want, sizeof(want), " %d", 987650000 + g);
		ck_assert_msg(strncmp(NEXT(), "ERR not-found ", 14) == 0 &&
		    strstr(line, want) != NULL, "reply to STATUS %d out of "
		    "order: %s", 987650000 + g, line);
	}
	for (i = 0; i < NPING; i++)
		ck_assert_msg(strcmp(NEXT(), "PONG") == 0, "PING %d: %s", i,
		    line);
	ck_assert_msg(sscanf(NEXT(), "OK %llu", &tail) == 1,
	    "reply to the last SUBMIT: %s", line);
	ck_assert_msg(strcmp(NEXT(), "PONG") == 0, "last PING: %s", line);
#undef NEXT
	ck_assert_msg(rd.off == rd.len, "more than the replies: %.200s",
	    rd.buf + rd.off);

	/* Then every job still gets exactly one outcome. */
	for (i = 0; i < NJ; i++)
		hb_sendf(c, "CANCEL %llu\n", (unsigned long long)ids[i]);
	hb_sendf(c, "CANCEL %llu\n", tail);
	for (i = 0; i <= NJ; i++)
		hb_reply(c, "OK ", HB_REPLY_MS);
	while (outcomes < NJ + 1) {
		unsigned long long got;

		line = hb_await(c, "DONE |FAIL ", OUTCOME_MS);
		ck_assert_msg(sscanf(line, "FAIL %llu", &got) == 1 &&
		    hb_line_has(line, "reason=cancelled"), "%s", line);
		for (k = 0; k < NJ && ids[k] != got; k++)
			;
		ck_assert_msg(k < NJ || got == tail, "unknown job: %s", line);
		ck_assert_msg(seen[k]++ == 0, "second outcome: %s", line);
		outcomes++;
	}
	hb_close(o);
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_timeout_counts_run_time_not_queue_time)
{
	struct hb_proc *p = hb_start("-s", "threads=1", NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	uint64_t first, second;
	char buf[64], *line;

	/* 1500 ms in the queue, far past its timeout; 950 ms to spare running */
	first = submit(c, "sleep ms=1500");
	second = submit(c, "sleep ms=50 timeout_ms=1000");
	result_of(c, first, buf, sizeof(buf));
	line = outcome(c, second, OUTCOME_MS);
	ck_assert_msg(strncmp(line, "DONE ", 5) == 0, "a 50 ms job with "
	    "timeout_ms=1000 that waited 1500 ms in the queue: %s", line);
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_queue_us_and_run_us_measure_waiting_and_running)
{
	struct hb_proc *p = hb_start("-s", "threads=1", NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	uint64_t first, second;
	char *line;
	long long q, r;

	first = submit(c, "sleep ms=300");
	second = submit(c, "sleep ms=100");
	line = outcome(c, first, OUTCOME_MS);
	r = hb_num(line, "run_us");
	ck_assert_msg(r >= 300000 && r < 300000 + 700000,
	    "sleep ms=300 has run_us=%lld: %s", r, line);
	line = outcome(c, second, OUTCOME_MS);
	q = hb_num(line, "queue_us");
	r = hb_num(line, "run_us");
	ck_assert_msg(q >= 250000 && q < 300000 + 700000,
	    "a job queued behind 300 ms of work has queue_us=%lld: %s", q,
	    line);
	ck_assert_msg(r >= 100000 && r < 100000 + 700000,
	    "sleep ms=100 has run_us=%lld: %s", r, line);
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_replies_before_an_overlong_line_are_still_sent)
{
	struct hb_proc *p = hb_start("-s", "max_line=64", NULL);
	struct hb_conn *c = hb_connect(p->work_addr);

	hb_sendf(c, "PING\nSTATS\nPING %0100d\nPING\n", 0);
	hb_expect(c, "PONG", HB_REPLY_MS);
	hb_expect(c, "STATS ", HB_REPLY_MS);
	hb_expect(c, "ERR line-too-long", HB_REPLY_MS);
	hb_expect_eof(c, HB_REPLY_MS);
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_floods_of_requests_and_completions_do_not_delay_the_tick)
{
	enum { NPING = 50000, NJOB = 1000 };
	struct hb_proc *p = hb_start("-s", "heartbeat_interval_ms=20",
	    "-s", "max_jobs_per_conn=10000", NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	struct hb_conn *f = hb_connect(p->work_addr);
	char *batch, s0[1024], s1[1024];
	size_t len = 0;
	int i, n;

	stats(c, s0, sizeof(s0));
	batch = malloc((size_t)NPING * 5 + (size_t)NJOB * 19 + 1);
	ck_assert_ptr_nonnull(batch);
	for (i = 0; i < NPING; i++) {
		memcpy(batch + len, "PING\n", 5);
		len += 5;
	}
	for (i = 0; i < NJOB; i++) {
		memcpy(batch + len, "SUBMIT primes n=2\n", 18);
		len += 18;
	}
	batch[len] = '\0';
	/* One write; the replies are read as they come. */
	ck_assert_int_eq(hb_send(f, batch, len), 0);
	free(batch);
	for (n = 0; n < NPING + 2 * NJOB; n++)
		ck_assert_msg(hb_recv(f, OUTCOME_MS) != NULL,
		    "reply %d of %d missing", n, NPING + 2 * NJOB);
	stats(c, s1, sizeof(s1));
	ck_assert_msg(hb_num(s1, "heartbeats") > hb_num(s0, "heartbeats"),
	    "no tick during the flood: %s", s1);
	ck_assert_msg(hb_num(s1, "lag_max_us") < 200000,
	    "a flood of %d requests and %d completions delayed the 20 ms tick "
	    "by %lld us: %s", NPING, NJOB, hb_num(s1, "lag_max_us"), s1);
	hb_close(f);
	hb_close(c);
	hb_free(p);
}
END_TEST

/* Pipeline n SUBMITs and check that each OK comes before its outcome. */
static void
check_ok_precedes_outcome(struct hb_proc *p, int n)
{
	struct hb_conn *c = hb_connect(p->work_addr);
	static unsigned char state[8192];	/* 1 = OK seen, 2 = outcome */
	unsigned long long id, base = 0;
	char *batch, *line;
	int i, oks = 0, outcomes = 0;

	ck_assert_int_le(n, 4096);
	memset(state, 0, sizeof(state));
	batch = malloc((size_t)n * 24);
	ck_assert_ptr_nonnull(batch);
	batch[0] = '\0';
	for (i = 0; i < n; i++)
		strcat(batch, i % 2 ? "SUBMIT primes n=2\n" :
		    "SUBMIT sleep ms=0\n");
	ck_assert_int_eq(hb_send(c, batch, strlen(batch)), 0);
	free(batch);
	while (oks < n || outcomes < n) {
		line = hb_recv(c, OUTCOME_MS);
		ck_assert_msg(line != NULL, "%d OKs and %d outcomes of %d", oks,
		    outcomes, n);
		if (sscanf(line, "OK %llu", &id) == 1) {
			if (oks++ == 0)
				base = id;
			ck_assert_msg(id >= base && id - base < 8192,
			    "ids far apart: %s", line);
			ck_assert_msg(state[id - base] == 0,
			    "OK after the outcome: %s", line);
			state[id - base] = 1;
		} else if (sscanf(line, "DONE %llu", &id) == 1 ||
		    sscanf(line, "FAIL %llu", &id) == 1) {
			outcomes++;
			ck_assert_msg(oks > 0 && id >= base && id - base < 8192 &&
			    state[id - base] == 1,
			    "outcome before its OK (or twice): %s", line);
			state[id - base] = 2;
		} else
			ck_abort_msg("unexpected line: %s", line);
	}
	hb_close(c);
}

START_TEST(test_ok_always_precedes_the_outcome_with_threads)
{
	struct hb_proc *p = hb_start("-s", "max_jobs_per_conn=4096", NULL);

	check_ok_precedes_outcome(p, 1000);
	hb_free(p);
}
END_TEST

START_TEST(test_ok_always_precedes_the_outcome_inline)
{
	struct hb_proc *p = hb_start("-s", "pool_mode=inline",
	    "-s", "max_jobs_per_conn=4096", NULL);

	check_ok_precedes_outcome(p, 500);
	hb_free(p);
}
END_TEST

START_TEST(test_inline_jobs_still_honour_timeouts)
{
	struct hb_proc *p = hb_start("-s", "pool_mode=inline", NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	uint64_t id;

	id = submit(c, "spin ms=20000 timeout_ms=100");
	expect_fail(c, id, "timeout", HB_REPLY_MS);
	id = submit(c, "primes n=10000000000 timeout_ms=100");
	expect_fail(c, id, "timeout", HB_REPLY_MS);
	hb_request(c, "PING", "PONG");
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_spin_burns_for_about_ms)
{
	struct hb_proc *p = hb_start(NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	char *line;
	long long r;

	line = outcome(c, submit(c, "spin ms=200"), OUTCOME_MS);
	r = hb_num(line, "run_us");
	ck_assert_msg(strncmp(line, "DONE ", 5) == 0 && r >= 200000 &&
	    r < 200000 + 700000, "spin ms=200: %s", line);
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_reloaded_auth_token_applies_to_new_logins)
{
	char *path = hb_tmpfile("auth_token = first-token\n");
	struct hb_proc *p = hb_start("-c", path, NULL);
	struct hb_conn *old = hb_connect(p->work_addr), *c;
	size_t m;

	hb_request(old, "AUTH first-token", "OK auth");
	hb_write_file(path, "auth_token = second-token\n");
	m = hb_mark(p);
	hb_signal(p, SIGHUP);
	hb_expect_log(p, m, "msg=reloaded", HB_REPLY_MS);
	c = hb_connect(p->work_addr);
	hb_request(c, "AUTH first-token", "ERR auth-failed");
	hb_request(c, "AUTH second-token", "OK auth");
	hb_request(c, "STATS", "STATS ");
	/* A session that logged in before stays logged in. */
	hb_request(old, "STATS", "STATS ");
	hb_close(c);
	hb_close(old);
	hb_free(p);
}
END_TEST

START_TEST(test_sigterm_exits_even_if_a_client_never_reads)
{
	struct hb_proc *p = hb_start("-s", "shutdown_grace_ms=1000", NULL);
	struct hb_conn *slow = hb_connect(p->work_addr);
	struct hb_conn *c = hb_connect(p->work_addr);
	char *buf;
	size_t len = 6 * 100000, i;
	int rcv = 4096;
	uint64_t t;

	setsockopt(slow->fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	buf = malloc(len);
	ck_assert_ptr_nonnull(buf);
	for (i = 0; i < len; i++)
		buf[i] = "STATS\n"[i % 6];
	/* As much as it takes before the daemon stops reading it. */
	(void)send(slow->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	free(buf);
	hb_request(c, "PING", "PONG");
	t = hb_now_ms();
	hb_signal(p, SIGTERM);
	hb_expect_exit(p, 0, HB_EXIT_MS);
	ck_assert_msg(hb_now_ms() - t < 5000, "exit took %llu ms with a "
	    "client that never reads (grace 1000 ms)",
	    (unsigned long long)(hb_now_ms() - t));
	hb_expect_log(p, 0, "msg=stopped", 0);
	hb_close(slow);
	hb_close(c);
	hb_free(p);
}
END_TEST

START_TEST(test_second_sigterm_and_sighup_during_drain_are_harmless)
{
	struct hb_proc *p = hb_start("-s", "shutdown_grace_ms=600", NULL);
	struct hb_conn *c = hb_connect(p->work_addr);
	char *line;
	uint64_t id;
	size_t m;
	int n = 0;

	id = submit(c, "sleep ms=30000");
	m = hb_mark(p);
	hb_signal(p, SIGTERM);
	hb_expect_log(p, m, "msg=stopping", HB_REPLY_MS);
	hb_signal(p, SIGHUP);
	/* a reload while draining changes nothing: the client is still served */
	hb_request(c, "PING", "PONG");
	/* a second SIGTERM ends the grace at once; a request sent after it
	 * may find the connection already closed, so send none */
	hb_signal(p, SIGTERM);
	while ((line = hb_recv(c, HB_EXIT_MS)) != NULL) {
		ck_assert_msg(strncmp(line, "FAIL ", 5) == 0 &&
		    strtoull(line + 5, NULL, 10) == id,
		    "unexpected line during drain: %s", line);
		n++;
	}
	ck_assert_msg(n == 1, "job %llu got %d outcomes",
	    (unsigned long long)id, n);
	hb_expect_exit(p, 0, HB_EXIT_MS);
	ck_assert_int_eq(hb_count_lines(p, 0, "msg=stopped"), 1);
	hb_close(c);
	hb_free(p);
}
END_TEST

Suite *
work_suite(void)
{
	Suite *s = suite_create("work");
	TCase *tc;

	tc = tcase_create("verbs");
	tcase_add_test(tc, test_ping_is_answered_with_pong);
	tcase_add_test(tc, test_verbs_are_case_insensitive);
	tcase_add_test(tc, test_crlf_line_endings_are_accepted);
	tcase_add_test(tc,
	    test_pipelined_requests_are_answered_in_request_order);
	tcase_add_test(tc, test_peers_without_peers_is_just_end);
	tcase_add_test(tc, test_watch_streams_heartbeats_until_unwatch);
	tcase_add_test(tc, test_help_lists_the_verbs_then_end);
	tcase_add_test(tc, test_quit_says_bye_then_closes);
	tcase_add_test(tc, test_malformed_ids_and_missing_arguments_are_errors);
	tcase_add_test(tc, test_half_closed_client_still_gets_its_replies);
	tcase_add_test(tc, test_half_closed_client_gets_every_attached_outcome_then_eof);
	tcase_add_test(tc, test_detached_job_outlives_its_connection_and_any_client_can_wait);
	tcase_add_test(tc, test_jobs_lists_queued_and_running_jobs_in_id_order);
	tcase_add_test(tc, test_wait_on_its_own_attached_job_gives_one_outcome);
	tcase_add_test(tc, test_failed_job_status_carries_its_reason);
	tcase_add_test(tc, test_journaled_jobs_survive_sigkill_with_exactly_one_outcome);
	tcase_add_test(tc, test_sigterm_leaves_journaled_jobs_to_run_at_the_next_start);
	tcase_add_test(tc, test_corrupt_journal_is_moved_aside_and_work_goes_on);
	tcase_add_test(tc, test_full_disk_gives_unavailable_and_nothing_else_is_disturbed);
	tcase_add_test(tc,
	    test_journal_recovers_tens_of_thousands_of_retained_outcomes);
	tcase_add_test(tc, test_watch_heartbeats_show_busy_and_queued_jobs);
	tcase_add_test(tc,
	    test_stats_has_every_field_and_counters_follow_outcomes);
	suite_add_tcase(s, tc);

	tc = tcase_create("jobs");
	tcase_add_test(tc, test_primes_counts_the_primes_up_to_n);
	tcase_add_test(tc,
	    test_sha256_applies_the_hash_rounds_times_to_the_seed);
	tcase_add_test(tc, test_sleep_and_spin_report_ok_and_iterations);
	tcase_add_test(tc,
	    test_job_ids_are_positive_and_increasing_across_connections);
	tcase_add_test(tc, test_unknown_kind_is_unknown_kind);
	tcase_add_test(tc,
	    test_bad_arguments_are_bad_arg_and_the_connection_stays_usable);
	tcase_add_test(tc,
	    test_every_kind_fails_with_timeout_when_timeout_ms_passes);
	tcase_add_test(tc, test_job_max_ms_is_the_deadline_without_timeout_ms);
	tcase_add_test(tc, test_cancel_of_queued_job_fails_it_as_cancelled);
	tcase_add_test(tc, test_cancel_of_running_job_stops_it_promptly);
	tcase_add_test(tc, test_cancel_of_unknown_or_finished_job_is_not_found);
	tcase_add_test(tc,
	    test_status_reports_queued_running_done_and_failed_jobs);
	tcase_add_test(tc, test_status_remembers_the_last_1024_finished_jobs);
	tcase_add_test(tc, test_every_ok_gets_exactly_one_outcome_under_churn);
	tcase_add_test(tc, test_status_progress_advances_while_a_job_runs);
	tcase_add_test(tc, test_timeout_counts_run_time_not_queue_time);
	tcase_add_test(tc, test_ok_always_precedes_the_outcome_with_threads);
	tcase_add_test(tc, test_ok_always_precedes_the_outcome_inline);
	tcase_add_test(tc, test_inline_jobs_still_honour_timeouts);
	tcase_add_test(tc, test_spin_burns_for_about_ms);
	tcase_add_test(tc,
	    test_queue_us_and_run_us_measure_waiting_and_running);
	tcase_add_test(tc, test_many_clients_each_get_only_their_own_outcomes);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_test(tc,
	    test_line_longer_than_max_line_is_refused_and_closed);
	tcase_add_test(tc, test_replies_before_an_overlong_line_are_still_sent);
	tcase_add_test(tc,
	    test_connection_beyond_max_connections_gets_busy_and_is_closed);
	tcase_add_test(tc, test_unauthenticated_connection_is_closed_at_the_auth_deadline);
	tcase_add_test(tc, test_clients_without_the_token_cannot_lock_out_those_with_it);
	tcase_add_test(tc, test_idle_connection_is_closed_but_one_with_work_is_not);
	tcase_add_test(tc, test_error_text_never_echoes_raw_bytes);
	tcase_add_test(tc, test_submit_beyond_threads_plus_queue_max_is_busy);
	tcase_add_test(tc,
	    test_submit_beyond_max_jobs_per_conn_is_too_many_jobs);
	tcase_add_test(tc,
	    test_auth_token_allows_only_auth_ping_help_quit_before_auth);
	tcase_add_test(tc, test_reloaded_auth_token_applies_to_new_logins);
	tcase_add_test(tc, test_disconnect_drops_only_that_clients_jobs);
	tcase_add_test(tc,
	    test_slow_reader_does_not_grow_the_daemon_or_slow_others);
	tcase_add_test(tc, test_closed_connections_release_their_descriptors);
	tcase_add_test(tc,
	    test_floods_of_requests_and_completions_do_not_delay_the_tick);
	tcase_add_test(tc,
	    test_a_client_that_reads_late_still_gets_every_outcome);
	suite_add_tcase(s, tc);

	tc = tcase_create("shutdown");
	tcase_add_test(tc,
	    test_sigterm_refuses_new_submits_but_lets_running_jobs_finish);
	tcase_add_test(tc,
	    test_sigterm_cancels_jobs_left_after_the_grace_period);
	tcase_add_test(tc,
	    test_sigterm_mixes_finished_and_cancelled_jobs_correctly);
	tcase_add_test(tc, test_sigterm_does_not_wait_for_idle_clients);
	tcase_add_test(tc, test_sigterm_exits_even_if_a_client_never_reads);
	tcase_add_test(tc,
	    test_second_sigterm_and_sighup_during_drain_are_harmless);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(work_suite)
