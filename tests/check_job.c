/*
 * check_job.c - the job kinds on the calling thread: known answers for
 * primes and sha256, no-op and timed sleep/spin, deadlines, cancellation
 * from another thread within a few milliseconds for every kind, progress,
 * and the argument table (what is accepted and the reason for what is not).
 */

#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "job.h"
#include "util.h"
#include "check_common.h"

#define JOB_MAX_MS	600000
/*
 * Cancel latency allowed: the kinds check every millisecond or so; the
 * rest is scheduling slack for loaded CI machines. Sanitizer builds run the
 * kinds 10-40 times slower (a TSan primes segment takes milliseconds).
 */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define CANCEL_SLACK_MS	250
#else
#define CANCEL_SLACK_MS	50
#endif

/* Parse "k=v k=v" for kind into a; returns job_args_parse's result. */
static int
parse(enum job_kind kind, const char *argstr, struct job_args *a, char *err,
    size_t errlen)
{
	char buf[512], *keys[16], *vals[16], *tok, *save = NULL, *eq;
	size_t n = 0;

	snprintf(buf, sizeof(buf), "%s", argstr);
	for (tok = strtok_r(buf, " ", &save); tok != NULL && n < 16;
	    tok = strtok_r(NULL, " ", &save)) {
		keys[n] = tok;
		if ((eq = strchr(tok, '=')) != NULL) {
			*eq = '\0';
			vals[n] = eq + 1;
		} else
			vals[n] = NULL;
		n++;
	}
	return job_args_parse(kind, keys, vals, n, JOB_MAX_MS, a, err, errlen);
}

/* A job of kind with argstr, timeout job_max_ms as the work module sets. */
static struct job *
make_job(enum job_kind kind, const char *argstr)
{
	struct job *j = job_new();
	char err[128];

	ck_assert_msg(parse(kind, argstr, &j->args, err, sizeof(err)) == 0,
	    "%s %s: %s", job_kind_name(kind), argstr, err);
	j->timeout_ms = j->args.timeout_ms ? j->args.timeout_ms : JOB_MAX_MS;
	return j;
}

/* Run kind argstr to completion and check the outcome and result. */
static void
expect_result(enum job_kind kind, const char *argstr, const char *result)
{
	struct job *j = make_job(kind, argstr);

	ck_assert_int_eq(job_run(j), JOB_DONE);
	ck_assert_int_eq(j->outcome, JOB_DONE);
	ck_assert_str_eq(j->result, result);
	ck_assert_uint_eq(atomic_load(&j->progress), 100);
	ck_assert_uint_ge(j->t_end, atomic_load(&j->t_start));
	job_free(j);
}

static void
hex(const unsigned char *md, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

static void
ms_sleep(unsigned ms)
{
	struct timespec ts = { 0, (long)ms * 1000000L };

	nanosleep(&ts, NULL);
}

START_TEST(test_kind_names_parse_case_insensitively)
{
	enum job_kind k;

	ck_assert_int_eq(job_kind_parse("SLEEP", &k), 0);
	ck_assert_int_eq(k, JOB_SLEEP);
	ck_assert_int_eq(job_kind_parse("Sha256", &k), 0);
	ck_assert_int_eq(k, JOB_SHA256);
	ck_assert_int_eq(job_kind_parse("primes", &k), 0);
	ck_assert_int_eq(k, JOB_PRIMES);
	ck_assert_int_eq(job_kind_parse("spinx", &k), -1);
	ck_assert_int_eq(job_kind_parse("", &k), -1);
	ck_assert_str_eq(job_kind_name(JOB_SPIN), "spin");
	ck_assert_str_eq(job_outcome_name(JOB_TIMEOUT), "timeout");
	ck_assert_str_eq(job_outcome_name(JOB_CANCELLED), "cancelled");
	ck_assert_str_eq(job_outcome_name(JOB_SHUTDOWN), "shutdown");
}
END_TEST

START_TEST(test_primes_counts_small_n)
{
	static const struct { const char *n, *count; } t[] = {
		{ "0", "0" }, { "1", "0" }, { "2", "1" }, { "3", "2" },
		{ "4", "2" }, { "9", "4" }, { "10", "4" }, { "11", "5" },
		{ "25", "9" }, { "100", "25" }, { "7919", "1000" },
	};
	char args[32];
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		snprintf(args, sizeof(args), "n=%s", t[i].n);
		expect_result(JOB_PRIMES, args, t[i].count);
	}
}
END_TEST

START_TEST(test_primes_counts_across_segment_edges)
{
	/* pi(x) around the first segment (64 Ki odd numbers = 131072) */
	expect_result(JOB_PRIMES, "n=131071", "12251");
	expect_result(JOB_PRIMES, "n=131072", "12251");
	expect_result(JOB_PRIMES, "n=131073", "12251");
	expect_result(JOB_PRIMES, "n=1000000", "78498");
	expect_result(JOB_PRIMES, "n=10000000", "664579");
}
END_TEST

START_TEST(test_primes_counts_one_billion)
{
#ifdef __SANITIZE_THREAD__
	/* ten times slower under TSan, which is here for the threads */
	expect_result(JOB_PRIMES, "n=100000000", "5761455");
#else
	expect_result(JOB_PRIMES, "n=1000000000", "50847534");
#endif
}
END_TEST

START_TEST(test_sha256_one_round_of_empty_seed)
{
	expect_result(JOB_SHA256, "rounds=1",
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	expect_result(JOB_SHA256, "rounds=1 seed=",
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}
END_TEST

START_TEST(test_sha256_one_round_of_abc)
{
	expect_result(JOB_SHA256, "rounds=1 seed=abc",
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
END_TEST

START_TEST(test_sha256_later_rounds_hash_the_binary_digest)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	char want[2 * SHA256_DIGEST_LENGTH + 1];
	int i;

	SHA256((const unsigned char *)"abc", 3, md);
	SHA256(md, sizeof(md), md);
	hex(md, sizeof(md), want);
	expect_result(JOB_SHA256, "seed=abc rounds=2", want);

	/* across several cancel/deadline checks */
	SHA256((const unsigned char *)"x", 1, md);
	for (i = 1; i < 1000; i++)
		SHA256(md, sizeof(md), md);
	hex(md, sizeof(md), want);
	expect_result(JOB_SHA256, "rounds=1000 seed=x", want);
}
END_TEST

START_TEST(test_sleep_and_spin_of_zero_ms_are_noops)
{
	struct job *j;

	expect_result(JOB_SLEEP, "ms=0", "ok");
	j = make_job(JOB_SPIN, "ms=0");
	ck_assert_int_eq(job_run(j), JOB_DONE);
	ck_assert_str_eq(j->result, "0");
	ck_assert_uint_lt(j->t_end - atomic_load(&j->t_start), 50 * HB_NS_PER_MS);
	job_free(j);
}
END_TEST

START_TEST(test_sleep_blocks_for_its_ms)
{
	struct job *j = make_job(JOB_SLEEP, "ms=30");
	uint64_t ran;

	ck_assert_int_eq(job_run(j), JOB_DONE);
	ck_assert_str_eq(j->result, "ok");
	ran = j->t_end - atomic_load(&j->t_start);
	ck_assert_uint_ge(ran, 30 * HB_NS_PER_MS);
	ck_assert_uint_lt(ran, 1000 * HB_NS_PER_MS);
	job_free(j);
}
END_TEST

START_TEST(test_spin_counts_its_loop_iterations)
{
	struct job *j = make_job(JOB_SPIN, "ms=20");
	uint64_t iters;

	ck_assert_int_eq(job_run(j), JOB_DONE);
	ck_assert_int_eq(parse_u64(j->result, 1, UINT64_MAX, &iters), 0);
	ck_assert_uint_ge(j->t_end - atomic_load(&j->t_start), 20 * HB_NS_PER_MS);
	job_free(j);
}
END_TEST

START_TEST(test_deadline_stops_every_kind_with_timeout)
{
	static const struct { enum job_kind kind; const char *args; } t[] = {
		{ JOB_SPIN, "ms=5000 timeout_ms=20" },
		{ JOB_SLEEP, "ms=5000 timeout_ms=20" },
		{ JOB_PRIMES, "n=10000000000 timeout_ms=20" },
		{ JOB_SHA256, "rounds=1000000000 timeout_ms=20" },
	};
	struct job *j;
	uint64_t ran;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		j = make_job(t[i].kind, t[i].args);
		ck_assert_int_eq(job_run(j), JOB_TIMEOUT);
		ck_assert_int_eq(j->outcome, JOB_TIMEOUT);
		ck_assert_str_eq(j->result, "");
		ran = j->t_end - atomic_load(&j->t_start);
		ck_assert_msg(ran >= 20 * HB_NS_PER_MS &&
		    ran < (20 + CANCEL_SLACK_MS) * HB_NS_PER_MS,
		    "%s %s ran %llu us", job_kind_name(t[i].kind), t[i].args,
		    (unsigned long long)(ran / 1000));
		job_free(j);
	}
}
END_TEST

START_TEST(test_submitter_timeout_overrides_args)
{
	struct job *j = make_job(JOB_SPIN, "ms=5000");

	j->timeout_ms = 10;
	ck_assert_int_eq(job_run(j), JOB_TIMEOUT);
	job_free(j);
}
END_TEST

static void *
runner(void *arg)
{
	job_run(arg);
	return NULL;
}

/*
 * Run kind argstr on another thread, let it work for a few ms, set the
 * cancel flag to reason and check it stops with that outcome within
 * CANCEL_SLACK_MS.
 */
static void
expect_cancel(enum job_kind kind, const char *argstr, int reason)
{
	struct job *j = make_job(kind, argstr);
	uint64_t t0, cancelled_at;
	pthread_t t;

	ck_assert_int_eq(pthread_create(&t, NULL, runner, j), 0);
	t0 = now_ns();
	while (atomic_load(&j->t_start) == 0 && now_ns() - t0 < 2000 * HB_NS_PER_MS)
		ms_sleep(1);
	ck_assert_uint_ne(atomic_load(&j->t_start), 0);
	ms_sleep(5);		/* well into its work */
	cancelled_at = now_ns();
	atomic_store(&j->cancel, reason);
	pthread_join(t, NULL);
	ck_assert_int_eq(j->outcome, reason);
	ck_assert_str_eq(j->result, "");
	ck_assert_uint_ge(j->t_end, cancelled_at);
	ck_assert_msg(j->t_end - cancelled_at < CANCEL_SLACK_MS * HB_NS_PER_MS,
	    "%s %s stopped %llu us after cancel", job_kind_name(kind), argstr,
	    (unsigned long long)((j->t_end - cancelled_at) / 1000));
	ck_assert_uint_lt(atomic_load(&j->progress), 100);
	job_free(j);
}

START_TEST(test_cancel_flag_stops_every_kind_within_milliseconds)
{
	expect_cancel(JOB_SLEEP, "ms=600000", JOB_CANCELLED);
	expect_cancel(JOB_SPIN, "ms=600000", JOB_CANCELLED);
	expect_cancel(JOB_PRIMES, "n=10000000000", JOB_CANCELLED);
	expect_cancel(JOB_SHA256, "rounds=1000000000", JOB_CANCELLED);
}
END_TEST

START_TEST(test_shutdown_flag_ends_job_with_shutdown)
{
	expect_cancel(JOB_PRIMES, "n=10000000000", JOB_SHUTDOWN);
	expect_cancel(JOB_SLEEP, "ms=600000", JOB_SHUTDOWN);
}
END_TEST

START_TEST(test_job_cancelled_before_it_starts_does_no_work)
{
	struct job *j = make_job(JOB_SLEEP, "ms=0");

	atomic_store(&j->cancel, JOB_CANCELLED);
	ck_assert_int_eq(job_run(j), JOB_CANCELLED);
	ck_assert_str_eq(j->result, "");
	ck_assert_uint_eq(atomic_load(&j->progress), 0);
	job_free(j);
}
END_TEST

START_TEST(test_progress_grows_while_running)
{
	static const struct { enum job_kind kind; const char *args; } t[] = {
		{ JOB_SPIN, "ms=400" },
		{ JOB_SLEEP, "ms=400" },
		{ JOB_SHA256, "rounds=2000000" },
		{ JOB_PRIMES, "n=1000000000" },
	};
	unsigned first, last;
	uint64_t t0;
	pthread_t th;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct job *j = make_job(t[i].kind, t[i].args);

		ck_assert_int_eq(pthread_create(&th, NULL, runner, j), 0);
		/* wait for two different readings, both below 100 */
		t0 = now_ns();
		do {
			first = atomic_load(&j->progress);
			ms_sleep(1);
		} while (first == 0 && now_ns() - t0 < 5000 * HB_NS_PER_MS);
		do {
			last = atomic_load(&j->progress);
			ms_sleep(1);
		} while (last == first && now_ns() - t0 < 10000 * HB_NS_PER_MS);
		atomic_store(&j->cancel, JOB_CANCELLED);
		pthread_join(th, NULL);
		ck_assert_msg(first > 0 && last > first,
		    "%s %s progress %u then %u", job_kind_name(t[i].kind),
		    t[i].args, first, last);
		ck_assert_uint_le(last, 100);
		job_free(j);
	}
}
END_TEST

START_TEST(test_args_table)
{
	static const struct {
		enum job_kind kind;
		const char *args;
		int ok;
		uint64_t n;
		uint32_t timeout_ms;
		const char *seed;	/* expected seed, or error substring */
	} t[] = {
		{ JOB_SLEEP, "ms=5", 1, 5, 0, NULL },
		{ JOB_SLEEP, "ms=0", 1, 0, 0, NULL },
		{ JOB_SLEEP, "ms=600000", 1, 600000, 0, NULL },
		{ JOB_SLEEP, "ms=600001", 0, 0, 0, "sleep needs ms=0..600000" },
		{ JOB_SLEEP, "", 0, 0, 0, "sleep needs ms=0..600000" },
		{ JOB_SLEEP, "timeout_ms=5", 0, 0, 0, "sleep needs ms=" },
		{ JOB_SLEEP, "ms=5 ms=6", 0, 0, 0, "duplicate argument ms" },
		{ JOB_SLEEP, "ms=-1", 0, 0, 0, "sleep needs ms=" },
		{ JOB_SLEEP, "ms=+1", 0, 0, 0, "sleep needs ms=" },
		{ JOB_SLEEP, "ms=1e3", 0, 0, 0, "sleep needs ms=" },
		{ JOB_SLEEP, "ms= 1", 0, 0, 0, "sleep needs ms=" },
		{ JOB_SLEEP, "ms=", 0, 0, 0, "sleep needs ms=" },
		{ JOB_SLEEP, "ms", 0, 0, 0, "sleep needs ms=" },
		{ JOB_SLEEP, "MS=5", 0, 0, 0, "unknown argument MS" },
		{ JOB_SLEEP, "ms=5 foo=1", 0, 0, 0, "unknown argument foo" },
		{ JOB_SLEEP, "ms=5 seed=x", 0, 0, 0, "unknown argument seed" },
		{ JOB_SLEEP, "ms=5 timeout_ms=10", 1, 5, 10, NULL },
		{ JOB_SLEEP, "ms=5 timeout_ms=0", 0, 0, 0,
		    "timeout_ms must be 1..600000" },
		{ JOB_SLEEP, "ms=5 timeout_ms=600001", 0, 0, 0, "timeout_ms must" },
		{ JOB_SLEEP, "ms=5 timeout_ms=1 timeout_ms=2", 0, 0, 0,
		    "duplicate argument timeout_ms" },
		{ JOB_SPIN, "ms=99999999999999999999", 0, 0, 0,
		    "spin needs ms=0..600000" },
		{ JOB_SPIN, "timeout_ms=600000 ms=7", 1, 7, 600000, NULL },
		{ JOB_PRIMES, "n=0", 1, 0, 0, NULL },
		{ JOB_PRIMES, "n=10000000000", 1, 10000000000ull, 0, NULL },
		{ JOB_PRIMES, "n=10000000001", 0, 0, 0,
		    "primes needs n=0..10000000000" },
		{ JOB_PRIMES, "n=99999999999999999999", 0, 0, 0, "primes needs n=" },
		{ JOB_PRIMES, "ms=5", 0, 0, 0, "unknown argument ms" },
		{ JOB_SHA256, "rounds=1", 1, 1, 0, NULL },
		{ JOB_SHA256, "rounds=0", 0, 0, 0, "sha256 needs rounds=1..1000000000" },
		{ JOB_SHA256, "rounds=1000000001", 0, 0, 0, "sha256 needs rounds=" },
		{ JOB_SHA256, "seed=abc", 0, 0, 0, "sha256 needs rounds=" },
		{ JOB_SHA256, "rounds=3 seed=abc", 1, 3, 0, "abc" },
		{ JOB_SHA256, "seed=a=b rounds=3", 1, 3, 0, "a=b" },
		{ JOB_SHA256, "rounds=3 seed=a seed=b", 0, 0, 0,
		    "duplicate argument seed" },
	};
	struct job_args a;
	char err[128];
	size_t i;
	int rc;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		memset(&a, 0, sizeof(a));
		err[0] = '\0';
		rc = parse(t[i].kind, t[i].args, &a, err, sizeof(err));
		if (t[i].ok) {
			ck_assert_msg(rc == 0, "%s %s: %s", job_kind_name(t[i].kind),
			    t[i].args, err);
			ck_assert_int_eq(a.kind, t[i].kind);
			ck_assert_uint_eq(a.n, t[i].n);
			ck_assert_uint_eq(a.timeout_ms, t[i].timeout_ms);
			if (t[i].seed == NULL)
				ck_assert_ptr_null(a.seed);
			else
				ck_assert_str_eq(a.seed, t[i].seed);
			job_args_clear(&a);
		} else {
			ck_assert_msg(rc == -1, "%s %s: accepted",
			    job_kind_name(t[i].kind), t[i].args);
			ck_assert_msg(strstr(err, t[i].seed) != NULL,
			    "%s %s: reason \"%s\", want \"%s\"",
			    job_kind_name(t[i].kind), t[i].args, err, t[i].seed);
			ck_assert_ptr_null(a.seed);
		}
	}
}
END_TEST

Suite *job_suite(void);

Suite *
job_suite(void)
{
	Suite *s = suite_create("job");
	TCase *tc;

	tc = tcase_create("kinds");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_kind_names_parse_case_insensitively);
	tcase_add_test(tc, test_primes_counts_small_n);
	tcase_add_test(tc, test_primes_counts_across_segment_edges);
	tcase_add_test(tc, test_primes_counts_one_billion);
	tcase_add_test(tc, test_sha256_one_round_of_empty_seed);
	tcase_add_test(tc, test_sha256_one_round_of_abc);
	tcase_add_test(tc, test_sha256_later_rounds_hash_the_binary_digest);
	tcase_add_test(tc, test_sleep_and_spin_of_zero_ms_are_noops);
	tcase_add_test(tc, test_sleep_blocks_for_its_ms);
	tcase_add_test(tc, test_spin_counts_its_loop_iterations);
	suite_add_tcase(s, tc);

	tc = tcase_create("stopping");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_deadline_stops_every_kind_with_timeout);
	tcase_add_test(tc, test_submitter_timeout_overrides_args);
	tcase_add_test(tc, test_cancel_flag_stops_every_kind_within_milliseconds);
	tcase_add_test(tc, test_shutdown_flag_ends_job_with_shutdown);
	tcase_add_test(tc, test_job_cancelled_before_it_starts_does_no_work);
	tcase_add_test(tc, test_progress_grows_while_running);
	suite_add_tcase(s, tc);

	tc = tcase_create("args");
	tcase_add_test(tc, test_args_table);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(job_suite)
