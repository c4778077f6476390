/*
 * check_pool.c - the worker pool against a real event base: FIFO order, the
 * exact queue bound, cancelling queued and running jobs, deadlines, shutdown
 * with work in flight, coalesced doorbell wakeups, bounded draining that lets
 * a higher-priority timer in, inline mode and worker niceness.
 *
 * Completions are awaited by running the loop (EVLOOP_ONCE) until enough
 * have arrived or an overall timer fires; never by sleeping.
 */

#include <sys/resource.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "pool.h"
#include "util.h"
#include "check_common.h"

#define JOB_MAX_MS	600000
#define WAIT_MS		10000	/* overall limit for any wait */
#define MAX_SEEN	4096

/* What done_fn saw, in order. */
struct seen {
	size_t n;
	uint64_t id[MAX_SEEN];
	enum job_outcome outcome[MAX_SEEN];
	char result[MAX_SEEN][JOB_RESULT_MAX];
	unsigned progress[MAX_SEEN];
	uint64_t at[MAX_SEEN];	/* now_ns() when handed back */
	pthread_t thread[MAX_SEEN];
	/* a timer armed on the first completion fires after this many */
	struct event *probe;
	long probe_at;
};

static struct event_base *base;
static struct seen seen;
static uint64_t next_id;

static void
setup(void)
{
	struct event_config *cfg = event_config_new();

	event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	ck_assert_ptr_nonnull(base);
	ck_assert_int_eq(event_base_priority_init(base, 3), 0);
	memset(&seen, 0, sizeof(seen));
	seen.probe_at = -1;
	next_id = 0;
}

static void
teardown(void)
{
	if (seen.probe != NULL)
		event_free(seen.probe);
	event_base_free(base);
}

static void
probe_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	seen.probe_at = (long)seen.n;
}

static void
on_done(struct job *j, void *arg)
{
	size_t i = seen.n;

	(void)arg;
	ck_assert_uint_lt(i, MAX_SEEN);
	ck_assert_int_eq(atomic_load(&j->state), JOB_FINISHED);
	seen.id[i] = j->id;
	seen.outcome[i] = j->outcome;
	snprintf(seen.result[i], JOB_RESULT_MAX, "%s", j->result);
	seen.progress[i] = atomic_load(&j->progress);
	seen.at[i] = now_ns();
	seen.thread[i] = pthread_self();
	seen.n++;
	if (seen.probe != NULL && i == 0) {
		static const struct timeval zero = { 0, 0 };

		event_add(seen.probe, &zero);
	}
	job_free(j);
}

static void
timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(int *)arg = 1;
}

/* Run the loop until n completions in all, or WAIT_MS. Returns seen.n. */
static size_t
wait_done(size_t n)
{
	struct timeval tv = { WAIT_MS / 1000, 0 };
	struct event *t;
	int expired = 0;

	t = evtimer_new(base, timeout_cb, &expired);
	evtimer_add(t, &tv);
	while (seen.n < n && !expired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(t);
	return seen.n;
}

/* Poll fn (busy, pending...) from the test thread until it holds. */
static int
wait_until(struct pool *p, int (*fn)(struct pool *, unsigned), unsigned v)
{
	struct timespec ms = { 0, 1000000 };
	uint64_t t0 = now_ns();

	while (!fn(p, v)) {
		if (now_ns() - t0 > WAIT_MS * HB_NS_PER_MS)
			return -1;
		nanosleep(&ms, NULL);
	}
	return 0;
}

static int
busy_is(struct pool *p, unsigned v)
{
	struct pool_stats st;

	pool_stats(p, &st);
	return st.busy == v;
}

static int
pending_is(struct pool *p, unsigned v)
{
	return pool_pending(p) == v;
}

static struct job *
make_job(enum job_kind kind, uint64_t n, uint32_t timeout_ms)
{
	struct job *j = job_new();

	j->id = ++next_id;
	j->args.kind = kind;
	j->args.n = n;
	j->timeout_ms = timeout_ms ? timeout_ms : JOB_MAX_MS;
	return j;
}

/*
 * Offer j, which the pool must accept. An accepted job is only staged until
 * the loop (or a look at the queue) publishes it, so no worker can have
 * started it yet: it is still QUEUED, stamped with its submit time.
 */
static void
submit_accepted(struct pool *p, struct job *j)
{
	ck_assert_int_eq(pool_submit(p, j), 0);
	ck_assert_int_eq(atomic_load(&j->state), JOB_QUEUED);
	ck_assert_uint_ne(j->t_submit, 0);
}

/* A new job, submitted and accepted. */
static struct job *
submit(struct pool *p, enum job_kind kind, uint64_t n, uint32_t timeout_ms)
{
	struct job *j = make_job(kind, n, timeout_ms);

	submit_accepted(p, j);
	return j;
}

/* Offer j, which the pool must refuse and leave untouched (the caller keeps it). */
static void
submit_refused(struct pool *p, struct job *j)
{
	ck_assert_int_eq(pool_submit(p, j), -1);
	ck_assert_int_eq(atomic_load(&j->state), JOB_QUEUED);
	ck_assert_uint_eq(j->t_submit, 0);
}

static struct pool *
new_pool(enum pool_mode mode, unsigned threads, unsigned queue_max)
{
	struct pool *p = pool_new(base, mode, threads, queue_max, 10, 1,
	    on_done, NULL);

	ck_assert_ptr_nonnull(p);
	return p;
}

START_TEST(test_jobs_run_in_submission_order_with_one_thread)
{
	struct pool *p = new_pool(POOL_MODE_THREADS, 1, 100);
	size_t i;

	for (i = 0; i < 50; i++)
		submit(p, i % 2 ? JOB_SPIN : JOB_SLEEP, 0, 0);
	ck_assert_uint_eq(wait_done(50), 50);
	for (i = 0; i < 50; i++) {
		ck_assert_uint_eq(seen.id[i], i + 1);
		ck_assert_int_eq(seen.outcome[i], JOB_DONE);
		ck_assert_uint_eq(seen.progress[i], 100);
	}
	ck_assert_str_eq(seen.result[0], "ok");
	pool_free(p);
}
END_TEST

START_TEST(test_submit_refuses_exactly_at_threads_plus_queue_max)
{
	struct pool *p = new_pool(POOL_MODE_THREADS, 2, 3);
	struct job *j[5], *extra = make_job(JOB_SLEEP, 0, 0);
	int i;

	for (i = 0; i < 5; i++)
		j[i] = submit(p, JOB_SLEEP, 600000, 0);
	submit_refused(p, extra);
	/* however the workers were woken, the bound stays exact */
	ck_assert_int_eq(wait_until(p, busy_is, 2), 0);
	ck_assert_uint_eq(pool_pending(p), 5);
	submit_refused(p, extra);

	/* a cancelled queued job frees its slot at once */
	ck_assert_int_eq(pool_cancel(p, j[4], JOB_CANCELLED), 0);
	submit_accepted(p, extra);
	extra = make_job(JOB_SLEEP, 0, 0);
	submit_refused(p, extra);
	job_free(extra);

	/* raising the bound on reload admits more */
	pool_set_queue_max(p, 4);
	extra = make_job(JOB_SLEEP, 0, 0);
	submit_accepted(p, extra);
	extra = make_job(JOB_SLEEP, 0, 0);
	submit_refused(p, extra);
	job_free(extra);
	pool_free(p);
}
END_TEST

START_TEST(test_cancel_removes_queued_job)
{
	struct pool *p = new_pool(POOL_MODE_THREADS, 1, 10);
	struct job *a = submit(p, JOB_SLEEP, 600000, 0);
	struct job *b = submit(p, JOB_SLEEP, 0, 0);
	uint64_t b_id = b->id;
	struct pool_stats st;

	ck_assert_int_eq(wait_until(p, busy_is, 1), 0);
	ck_assert_int_eq(atomic_load(&b->state), JOB_QUEUED);
	ck_assert_int_eq(pool_cancel(p, b, JOB_CANCELLED), 0);
	pool_stats(p, &st);
	ck_assert_uint_eq(st.queued, 0);
	ck_assert_uint_eq(wait_done(1), 1);
	ck_assert_uint_eq(seen.id[0], b_id);	/* b comes back first */
	ck_assert_int_eq(seen.outcome[0], JOB_CANCELLED);
	ck_assert_uint_eq(seen.progress[0], 0);	/* never ran */
	ck_assert_str_eq(seen.result[0], "");

	ck_assert_int_eq(pool_cancel(p, a, JOB_CANCELLED), 0);
	ck_assert_uint_eq(wait_done(2), 2);
	ck_assert_int_eq(seen.outcome[1], JOB_CANCELLED);
	pool_free(p);
}
END_TEST

START_TEST(test_cancel_stops_running_sleep_quickly)
{
	struct pool *p = new_pool(POOL_MODE_THREADS, 2, 10);
	struct job *j = submit(p, JOB_SLEEP, 600000, 0);
	uint64_t t0;

	ck_assert_int_eq(wait_until(p, busy_is, 1), 0);
	ck_assert_int_eq(atomic_load(&j->state), JOB_RUNNING);
	t0 = now_ns();
	ck_assert_int_eq(pool_cancel(p, j, JOB_CANCELLED), 0);
	ck_assert_uint_eq(wait_done(1), 1);
	ck_assert_int_eq(seen.outcome[0], JOB_CANCELLED);
	/* 10 minutes of sleep ended in well under a second (niced worker, busy machine) */
	ck_assert_uint_lt(seen.at[0] - t0, 500 * HB_NS_PER_MS);
	pool_free(p);
}
END_TEST

START_TEST(test_cancel_of_finished_job_fails)
{
	struct pool *p = new_pool(POOL_MODE_THREADS, 1, 10);
	struct job *j = submit(p, JOB_SLEEP, 0, 0);

	/* finished but not handed back: the loop has not run yet */
	ck_assert_int_eq(wait_until(p, pending_is, 0), 0);
	ck_assert_int_eq(atomic_load(&j->state), JOB_FINISHED);
	ck_assert_int_eq(pool_cancel(p, j, JOB_CANCELLED), -1);
	ck_assert_uint_eq(wait_done(1), 1);
	ck_assert_int_eq(seen.outcome[0], JOB_DONE);
	pool_free(p);
}
END_TEST

START_TEST(test_deadline_ends_job_with_timeout)
{
	struct pool *p = new_pool(POOL_MODE_THREADS, 1, 10);
	uint64_t t0 = now_ns();

	submit(p, JOB_SPIN, 5000, 20);
	ck_assert_uint_eq(wait_done(1), 1);
	ck_assert_int_eq(seen.outcome[0], JOB_TIMEOUT);
	ck_assert_uint_lt(seen.at[0] - t0, 1000 * HB_NS_PER_MS);
	pool_free(p);
}
END_TEST

START_TEST(test_cancel_all_ends_queued_and_running_jobs)
{
	struct pool *p = new_pool(POOL_MODE_THREADS, 2, 10);
	size_t i;

	for (i = 0; i < 6; i++)
		submit(p, JOB_SLEEP, 600000, 0);
	ck_assert_int_eq(wait_until(p, busy_is, 2), 0);
	pool_cancel_all(p, JOB_SHUTDOWN);
	ck_assert_uint_eq(wait_done(6), 6);
	for (i = 0; i < 6; i++)
		ck_assert_int_eq(seen.outcome[i], JOB_SHUTDOWN);
	ck_assert_uint_eq(pool_pending(p), 0);
	pool_free(p);
}
END_TEST

START_TEST(test_free_joins_workers_with_jobs_queued_and_running)
{
	struct pool *p = new_pool(POOL_MODE_THREADS, 2, 10);
	uint64_t t0;
	size_t i;

	for (i = 0; i < 2; i++)
		submit(p, JOB_SLEEP, 600000, 0);
	for (i = 0; i < 2; i++)
		submit(p, JOB_PRIMES, JOB_PRIMES_MAX, 0);
	ck_assert_int_eq(wait_until(p, busy_is, 2), 0);
	for (i = 0; i < 5; i++)
		submit(p, JOB_SPIN, 600000, 0);
	t0 = now_ns();
	pool_free(p);
	ck_assert_uint_lt(now_ns() - t0, 1000 * HB_NS_PER_MS);
	/* outcomes of a freed pool are not delivered */
	event_base_loop(base, EVLOOP_NONBLOCK);
	ck_assert_uint_eq(seen.n, 0);
}
END_TEST

START_TEST(test_burst_of_completions_rings_the_doorbell_once)
{
	const size_t n = 2000;
	struct pool *p = new_pool(POOL_MODE_THREADS, 2, n);
	struct pool_stats st;
	size_t i;

	for (i = 0; i < n; i++)
		submit(p, i % 2 ? JOB_SLEEP : JOB_SPIN, 0, 0);
	/*
	 * The loop is not draining, so after the first completion the done
	 * list never goes back to empty: one byte for the whole burst.
	 */
	ck_assert_int_eq(wait_until(p, pending_is, 0), 0);
	pool_stats(p, &st);
	ck_assert_uint_eq(st.wakeups, 1);
	ck_assert_uint_eq(st.completions, 0);

	ck_assert_uint_eq(wait_done(n), n);
	pool_stats(p, &st);
	ck_assert_uint_eq(st.completions, n);
	ck_assert_msg(st.wakeups < n / 4, "%llu wakeups for %zu jobs",
	    (unsigned long long)st.wakeups, n);
	ck_assert_uint_eq(st.wakeups, 1);
	ck_assert_uint_eq(st.threads, 2);
	ck_assert_uint_eq(st.busy, 0);
	ck_assert_uint_eq(st.queued, 0);
	for (i = 0; i < n; i++)
		ck_assert_int_eq(seen.outcome[i], JOB_DONE);
	pool_free(p);
}
END_TEST

START_TEST(test_completions_while_draining_need_fewer_wakeups_than_jobs)
{
	const size_t n = 2000;
	struct pool *p = new_pool(POOL_MODE_THREADS, 2, n);
	struct pool_stats st;
	size_t i;

	/* the loop drains while the workers finish: a byte per empty list */
	for (i = 0; i < n; i++)
		submit(p, JOB_SLEEP, 0, 0);
	ck_assert_uint_eq(wait_done(n), n);
	pool_stats(p, &st);
	ck_assert_uint_eq(st.completions, n);
	ck_assert_uint_ge(st.wakeups, 1);
	ck_assert_uint_lt(st.wakeups, n);
	pool_free(p);
}
END_TEST

START_TEST(test_drain_lets_higher_priority_timer_run_between_batches)
{
	const size_t n = 1000;
	struct pool *p = new_pool(POOL_MODE_THREADS, 2, n);
	size_t i;

	seen.probe = evtimer_new(base, probe_cb, NULL);
	event_priority_set(seen.probe, 0);
	for (i = 0; i < n; i++)
		submit(p, JOB_SLEEP, 0, 0);
	/* every job finished before the loop looks: one long done list */
	ck_assert_int_eq(wait_until(p, pending_is, 0), 0);
	ck_assert_uint_eq(wait_done(n), n);
	/* armed after the first completion, due at once, run after a batch */
	ck_assert_msg(seen.probe_at >= 1 && seen.probe_at <= 2 * POOL_DRAIN_MAX,
	    "timer ran after %ld of %zu completions", seen.probe_at, n);
	pool_free(p);
}
END_TEST

START_TEST(test_inline_mode_runs_jobs_on_the_loop_thread)
{
	struct pool *p = new_pool(POOL_MODE_INLINE, 0, 3);
	struct pool_stats st;
	struct job *extra;
	size_t i;

	/* counted as one thread for the bound */
	for (i = 0; i < 4; i++)
		submit(p, JOB_SPIN, 1, 0);
	extra = make_job(JOB_SLEEP, 0, 0);
	submit_refused(p, extra);
	job_free(extra);
	/* nothing runs until the loop does */
	ck_assert_uint_eq(pool_pending(p), 4);
	pool_stats(p, &st);
	ck_assert_uint_eq(st.threads, 0);
	ck_assert_uint_eq(st.queued, 4);

	ck_assert_uint_eq(wait_done(4), 4);
	for (i = 0; i < 4; i++) {
		ck_assert_uint_eq(seen.id[i], i + 1);
		ck_assert_int_eq(seen.outcome[i], JOB_DONE);
	}
	pool_stats(p, &st);
	ck_assert_uint_eq(st.completions, 4);

	/* a queued inline job can still be cancelled */
	extra = submit(p, JOB_SLEEP, 600000, 0);
	ck_assert_int_eq(pool_cancel(p, extra, JOB_CANCELLED), 0);
	ck_assert_uint_eq(wait_done(5), 5);
	ck_assert_int_eq(seen.outcome[4], JOB_CANCELLED);
	pool_free(p);
}
END_TEST

START_TEST(test_inline_mode_blocks_the_loop_while_a_job_runs)
{
	struct pool *p = new_pool(POOL_MODE_INLINE, 0, 3);
	uint64_t t0 = now_ns();

	submit(p, JOB_SPIN, 30, 0);
	ck_assert_uint_eq(wait_done(1), 1);
	/* the job ran inside the loop call, on this thread */
	ck_assert_int_eq(pthread_equal(seen.thread[0], pthread_self()), 1);
	ck_assert_uint_ge(now_ns() - t0, 30 * HB_NS_PER_MS);
	pool_free(p);
}
END_TEST

/* Niceness shared by every worker ("hb-worker") thread; -100 if none, -101 if mixed. */
static int
workers_nice(int *count)
{
	char path[64], comm[32];
	struct dirent *de;
	int nice = -100, v;
	FILE *f;
	DIR *d;

	*count = 0;
	if ((d = opendir("/proc/self/task")) == NULL)
		return -100;
	while ((de = readdir(d)) != NULL) {
		int tid = atoi(de->d_name);

		if (tid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%d/comm", tid);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		if (fgets(comm, sizeof(comm), f) == NULL)
			comm[0] = '\0';
		fclose(f);
		if (strcmp(comm, "hb-worker\n") != 0)
			continue;
		errno = 0;
		v = getpriority(PRIO_PROCESS, (id_t)tid);
		if (v == -1 && errno != 0)
			continue;
		nice = *count == 0 || v == nice ? v : -101;
		(*count)++;
	}
	closedir(d);
	return nice;
}

START_TEST(test_workers_run_at_worker_nice_above_the_loop)
{
	struct pool *p = new_pool(POOL_MODE_THREADS, 3, 10);
	int base_nice, want, count, got;
	size_t i;

	errno = 0;
	base_nice = getpriority(PRIO_PROCESS, 0);
	ck_assert(!(base_nice == -1 && errno != 0));
	want = base_nice + 10 > 19 ? 19 : base_nice + 10;
	for (i = 0; i < 3; i++)
		submit(p, JOB_SLEEP, 600000, 0);
	/* each worker renices itself before it takes a job */
	ck_assert_int_eq(wait_until(p, busy_is, 3), 0);
	got = workers_nice(&count);
	ck_assert_int_eq(count, 3);
	ck_assert_int_eq(got, want);
	/* the loop thread keeps its own */
	ck_assert_int_eq(getpriority(PRIO_PROCESS, 0), base_nice);
	pool_free(p);
}
END_TEST

START_TEST(test_new_fails_on_a_priority_the_base_lacks)
{
	char buf[512];
	ssize_t n;
	int fds[2];

	ck_assert_int_eq(pipe(fds), 0);
	log_set_fd(fds[1]);
	ck_assert_ptr_null(pool_new(base, POOL_MODE_THREADS, 1, 1, 10, 7,
	    on_done, NULL));
	log_set_fd(2);
	close(fds[1]);
	n = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_ptr_nonnull(strstr(buf, "msg=pool-failed"));
}
END_TEST

Suite *pool_suite(void);

Suite *
pool_suite(void)
{
	Suite *s = suite_create("pool");
	TCase *tc;

	tc = tcase_create("threads");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_jobs_run_in_submission_order_with_one_thread);
	tcase_add_test(tc, test_submit_refuses_exactly_at_threads_plus_queue_max);
	tcase_add_test(tc, test_cancel_removes_queued_job);
	tcase_add_test(tc, test_cancel_stops_running_sleep_quickly);
	tcase_add_test(tc, test_cancel_of_finished_job_fails);
	tcase_add_test(tc, test_deadline_ends_job_with_timeout);
	tcase_add_test(tc, test_cancel_all_ends_queued_and_running_jobs);
	tcase_add_test(tc, test_free_joins_workers_with_jobs_queued_and_running);
	tcase_add_test(tc, test_burst_of_completions_rings_the_doorbell_once);
	tcase_add_test(tc, test_completions_while_draining_need_fewer_wakeups_than_jobs);
	tcase_add_test(tc, test_drain_lets_higher_priority_timer_run_between_batches);
	tcase_add_test(tc, test_workers_run_at_worker_nice_above_the_loop);
	tcase_add_test(tc, test_new_fails_on_a_priority_the_base_lacks);
	suite_add_tcase(s, tc);

	tc = tcase_create("inline");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_inline_mode_runs_jobs_on_the_loop_thread);
	tcase_add_test(tc, test_inline_mode_blocks_the_loop_while_a_job_runs);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(pool_suite)
