/* check_tick.c - the heartbeat schedule: lateness against the ideal
 * schedule, and ticks a stall swallowed; then the real timer on a real
 * event base, stalled by its own callback. */
#include <stdint.h>

#include <event2/event.h>

#include "check_common.h"
#include "hist.h"
#include "tick.h"
#include "util.h"

#define MS 1000000ull
#define T0 (1000 * MS)
#define IV (10 * MS)

START_TEST(test_an_on_time_tick_has_no_lateness_and_arms_the_next)
{
	uint64_t lag, missed, next;

	tick_schedule(T0, IV, 1, T0 + IV, &lag, &missed, &next);
	ck_assert_uint_eq(lag, 0);
	ck_assert_uint_eq(missed, 0);
	ck_assert_uint_eq(next, 2);
}
END_TEST

START_TEST(test_a_late_tick_is_measured_against_its_ideal_time)
{
	uint64_t lag, missed, next;

	/* tick 3 was due at T0 + 30 ms; fired 250 us late */
	tick_schedule(T0, IV, 3, T0 + 3 * IV + 250000, &lag, &missed, &next);
	ck_assert_uint_eq(lag, 250000);
	ck_assert_uint_eq(missed, 0);
	ck_assert_uint_eq(next, 4);
}
END_TEST

START_TEST(test_a_stall_counts_every_swallowed_tick_and_keeps_the_phase)
{
	uint64_t lag, missed, next;

	/* due at 10 ms, fired at 55 ms: ticks 2..5 were swallowed */
	tick_schedule(T0, IV, 1, T0 + 55 * MS, &lag, &missed, &next);
	ck_assert_uint_eq(lag, 45 * MS);
	ck_assert_uint_eq(missed, 4);
	/* the next tick is 6, at 60 ms: the schedule does not restart */
	ck_assert_uint_eq(next, 6);
}
END_TEST

START_TEST(test_a_tick_fired_early_is_not_late_and_not_refired)
{
	uint64_t lag, missed, next;

	tick_schedule(T0, IV, 2, T0 + 2 * IV - 3000, &lag, &missed, &next);
	ck_assert_uint_eq(lag, 0);
	ck_assert_uint_eq(missed, 0);
	ck_assert_uint_eq(next, 3);
}
END_TEST

/* The live timer test: stall inside the first tick, stop after the next. */
struct stall_run {
	struct event_base *base;
	struct tick *t;
	uint64_t stall_ns;
	struct tick_sample samples[2];
	int n;
};

static void
stall_on_tick(const struct tick_sample *s, void *arg)
{
	struct stall_run *r = arg;
	uint64_t until;

	r->samples[r->n++] = *s;
	if (r->n == 1) {
		/* a blocked loop: busy, so no timer can fire meanwhile */
		until = now_ns() + r->stall_ns;
		while (now_ns() < until)
			;
	} else {
		event_base_loopbreak(r->base);
	}
}

START_TEST(test_a_stalled_loop_counts_and_backfills_the_swallowed_ticks)
{
	struct stall_run r = { .stall_ns = 100 * MS };
	struct tick_stats ts;
	uint64_t swallowed;

	r.base = event_base_new();
	ck_assert_ptr_nonnull(r.base);
	r.t = tick_new(r.base, 10, 0, stall_on_tick, &r);
	ck_assert_int_eq(event_base_dispatch(r.base), 0);
	ck_assert_int_eq(r.n, 2);
	tick_stats(r.t, &ts);

	/* 100 ms stalled at 10 ms a tick: at least 9 ticks were swallowed
	 * (more on a loaded machine, never fewer) */
	swallowed = r.samples[1].missed;
	ck_assert_uint_ge(swallowed, 9);
	ck_assert_uint_eq(ts.missed, swallowed);
	ck_assert_uint_eq(ts.seq, 2);
	ck_assert_uint_ge(r.samples[1].lag_ns, 90 * MS - IV);

	/* back-fill: each swallowed tick is in the histograms with the
	 * lateness it would have had, so most samples are late by 10+ ms */
	ck_assert_uint_eq(hist_count(ts.lifetime), ts.seq + swallowed);
	ck_assert_uint_eq(hist_count(ts.window), ts.seq + swallowed);
	ck_assert_uint_ge(hist_percentile(ts.lifetime, 50), IV);
	ck_assert_uint_ge(hist_max(ts.lifetime), 90 * MS - IV);

	tick_window_reset(r.t);
	tick_stats(r.t, &ts);
	ck_assert_uint_eq(hist_count(ts.window), 0);
	ck_assert_uint_eq(hist_count(ts.lifetime), 2 + swallowed);
	tick_free(r.t);
	event_base_free(r.base);
}
END_TEST

Suite *tick_suite(void);

Suite *
tick_suite(void)
{
	Suite *s = suite_create("tick");
	TCase *tc = tcase_create("schedule");

	tcase_add_test(tc, test_an_on_time_tick_has_no_lateness_and_arms_the_next);
	tcase_add_test(tc, test_a_late_tick_is_measured_against_its_ideal_time);
	tcase_add_test(tc, test_a_stall_counts_every_swallowed_tick_and_keeps_the_phase);
	tcase_add_test(tc, test_a_tick_fired_early_is_not_late_and_not_refired);
	suite_add_tcase(s, tc);
	tc = tcase_create("timer");
	tcase_add_test(tc, test_a_stalled_loop_counts_and_backfills_the_swallowed_ticks);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(tick_suite)
