/* check_tick.c - the heartbeat schedule: lateness against the ideal
 * schedule, and ticks a stall swallowed. */
#include <stdint.h>

#include "check_common.h"
#include "tick.h"

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
	return s;
}

CHECK_MAIN(tick_suite)
