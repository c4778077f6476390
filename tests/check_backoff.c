/* check_backoff.c - reconnect backoff: doubling, the cap, jitter, reset,
 * and the working spell that earns a reset. */
#include "check_common.h"
#include "backoff.h"

Suite *backoff_suite(void);

#define MS 1000000ull		/* ns */

START_TEST(test_backoff_doubles_from_min_to_the_cap_with_bounded_jitter)
{
	static const uint64_t want[] = {
		100, 200, 400, 800, 1600, 3000, 3000, 3000, 3000
	};
	struct backoff b;
	uint64_t max_jitter = 0;
	size_t i;

	backoff_init(&b, 100 * MS, 3000 * MS, 12345);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		uint64_t base = want[i] * MS, d = backoff_next(&b);

		ck_assert_uint_ge(d, base);
		ck_assert_uint_le(d, base + base / 4);
		if ((d - base) * 100 / base > max_jitter)
			max_jitter = (d - base) * 100 / base;
	}
	/* the jitter is really there */
	ck_assert_uint_gt(max_jitter, 0);
}
END_TEST

START_TEST(test_backoff_jitter_spreads_over_its_whole_range)
{
	struct backoff b;
	uint64_t lo = UINT64_MAX, hi = 0, seed;

	for (seed = 0; seed < 2000; seed++) {
		uint64_t d;

		backoff_init(&b, 1000 * MS, 1000 * MS, seed);
		d = backoff_next(&b) - 1000 * MS;
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
		ck_assert_uint_le(d, 250 * MS);
	}
	ck_assert_uint_lt(lo, 25 * MS);
	ck_assert_uint_gt(hi, 225 * MS);

	/* at the smallest scale both ends are reached and never passed */
	lo = UINT64_MAX;
	hi = 0;
	for (seed = 0; seed < 1000; seed++) {
		uint64_t d;

		backoff_init(&b, 8, 8, seed);
		d = backoff_next(&b);
		ck_assert_uint_le(d, 10);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
	}
	ck_assert_uint_eq(lo, 8);
	ck_assert_uint_eq(hi, 10);
}
END_TEST

START_TEST(test_backoff_reset_starts_again_from_min)
{
	struct backoff b;

	backoff_init(&b, 100 * MS, 3000 * MS, 1);
	backoff_next(&b);
	backoff_next(&b);
	backoff_next(&b);
	ck_assert_uint_ge(backoff_next(&b), 800 * MS);
	backoff_reset(&b);
	ck_assert_uint_le(backoff_next(&b), 125 * MS);
	ck_assert_uint_ge(backoff_next(&b), 200 * MS);
}
END_TEST

START_TEST(test_backoff_is_deterministic_for_a_seed_and_seed_zero_works)
{
	struct backoff a, b, c, z;
	int differ = 0, zero_jitter = 1;
	size_t i;

	backoff_init(&a, 100 * MS, 60000 * MS, 77);
	backoff_init(&b, 100 * MS, 60000 * MS, 77);
	backoff_init(&c, 100 * MS, 60000 * MS, 78);
	backoff_init(&z, 100 * MS, 100 * MS, 0);
	for (i = 0; i < 20; i++) {
		uint64_t da = backoff_next(&a), dz = backoff_next(&z);

		ck_assert_uint_eq(da, backoff_next(&b));
		differ |= da != backoff_next(&c);
		ck_assert_uint_le(dz, 125 * MS);
		zero_jitter &= dz == 100 * MS;
	}
	ck_assert_int_eq(differ, 1);
	ck_assert_int_eq(zero_jitter, 0);
}
END_TEST

Suite *liveness_suite(void);

START_TEST(test_backoff_starts_again_from_min_only_after_a_long_enough_spell)
{
	struct backoff b;
	uint64_t t = 7000 * MS;

	backoff_init(&b, 100 * MS, 3000 * MS, 3);
	backoff_next(&b);
	backoff_next(&b);
	backoff_next(&b);
	/* working, but not for the hold: the delays keep growing */
	ck_assert_int_eq(backoff_ok(&b, t, 500 * MS), 0);
	ck_assert_int_eq(backoff_ok(&b, t + 499 * MS, 500 * MS), 0);
	ck_assert_uint_ge(backoff_next(&b), 800 * MS);
	/* a failure ended that spell: a new one starts from its first ok */
	ck_assert_int_eq(backoff_ok(&b, t + 1000 * MS, 500 * MS), 0);
	ck_assert_int_eq(backoff_ok(&b, t + 1400 * MS, 500 * MS), 0);
	ck_assert_int_eq(backoff_ok(&b, t + 1500 * MS, 500 * MS), 1);
	ck_assert_int_eq(backoff_ok(&b, t + 1600 * MS, 500 * MS), 0);
	ck_assert_uint_le(backoff_next(&b), 125 * MS);
}
END_TEST

Suite *
backoff_suite(void)
{
	Suite *s = suite_create("backoff");
	TCase *tc;

	tc = tcase_create("delays");
	tcase_add_test(tc, test_backoff_doubles_from_min_to_the_cap_with_bounded_jitter);
	tcase_add_test(tc, test_backoff_jitter_spreads_over_its_whole_range);
	tcase_add_test(tc, test_backoff_reset_starts_again_from_min);
	tcase_add_test(tc, test_backoff_starts_again_from_min_only_after_a_long_enough_spell);
	tcase_add_test(tc, test_backoff_is_deterministic_for_a_seed_and_seed_zero_works);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(backoff_suite)
