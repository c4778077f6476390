/* check_hist.c - histogram accuracy against exact percentiles, and edges. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check_common.h"
#include "hist.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define NVALUES 100000

static uint64_t rng_state;

static uint64_t
rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* A uniform double in (0, 1]. */
static double
rng_unit(void)
{
	return ((double)(rng() >> 11) + 1) / 9007199254740992.0;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The exact p-th percentile of sorted v: the value at rank ceil(p/100*n). */
static uint64_t
exact_percentile(const uint64_t *v, size_t n, double p)
{
	size_t rank = (size_t)ceil(p / 100 * (double)n - 1e-9);

	if (rank < 1)
		rank = 1;
	return v[rank - 1];
}

static size_t
exact_count_le(const uint64_t *v, size_t n, uint64_t bound)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid] <= bound)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

enum dataset { DS_UNIFORM, DS_EXPONENTIAL, DS_CONSTANT, DS_WIDE, DS_COUNT };

static const char *const dataset_names[] = {
	"uniform", "exponential", "constant", "wide"
};

static void
fill(uint64_t *v, size_t n, enum dataset ds)
{
	size_t i;

	rng_state = 0x2545f4914f6cdd1dull + (uint64_t)ds;
	for (i = 0; i < n; i++) {
		switch (ds) {
		case DS_UNIFORM:	/* 0 .. 10 ms in ns */
			v[i] = rng() % 10000000;
			break;
		case DS_EXPONENTIAL:	/* mean 50 us, long tail */
			v[i] = (uint64_t)(-log(rng_unit()) * 50000.0);
			break;
		case DS_CONSTANT:
			v[i] = 1234567;
			break;
		default:		/* every magnitude from 1 to 2^62 */
			v[i] = rng() >> (rng() % 63);
			break;
		}
	}
}

START_TEST(test_percentiles_are_within_two_percent_and_never_below_exact)
{
	static const double ps[] = { 50, 90, 99, 99.9, 100 };
	uint64_t *v = malloc(NVALUES * sizeof(*v));
	struct hist *h = hist_new();
	uint64_t sum = 0;
	size_t i, j;
	int ds = _i;

	ck_assert_ptr_nonnull(v);
	fill(v, NVALUES, (enum dataset)ds);
	for (i = 0; i < NVALUES; i++) {
		hist_add(h, v[i]);
		sum += v[i];
	}
	qsort(v, NVALUES, sizeof(*v), cmp_u64);

	ck_assert_uint_eq(hist_count(h), NVALUES);
	ck_assert_uint_eq(hist_max(h), v[NVALUES - 1]);
	if (ds != DS_WIDE)
		ck_assert_uint_eq(hist_sum(h), sum);
	for (j = 0; j < NELEM(ps); j++) {
		uint64_t want = exact_percentile(v, NVALUES, ps[j]);
		uint64_t got = hist_percentile(h, ps[j]);

		ck_assert_msg(got >= want && (double)(got - want) <= 0.02 * (double)want,
		    "%s p%g: got %llu, exact %llu", dataset_names[ds], ps[j],
		    (unsigned long long)got, (unsigned long long)want);
	}
	ck_assert_uint_eq(hist_percentile(h, 100), v[NVALUES - 1]);
	hist_free(h);
	free(v);
}
END_TEST

START_TEST(test_small_values_have_exact_buckets)
{
	struct hist *h = hist_new();
	uint64_t i;

	for (i = 0; i < 64; i++)
		hist_add(h, i);
	for (i = 1; i <= 64; i++) {
		ck_assert_uint_eq(hist_percentile(h, (double)i * 100 / 64), i - 1);
		ck_assert_uint_eq(hist_count_le(h, i - 1), i);
	}
	ck_assert_uint_eq(hist_sum(h), 63 * 64 / 2);
	hist_free(h);
}
END_TEST

START_TEST(test_an_empty_histogram_reports_zero)
{
	struct hist *h = hist_new();

	ck_assert_uint_eq(hist_count(h), 0);
	ck_assert_uint_eq(hist_sum(h), 0);
	ck_assert_uint_eq(hist_max(h), 0);
	ck_assert_uint_eq(hist_percentile(h, 50), 0);
	ck_assert_uint_eq(hist_percentile(h, 100), 0);
	ck_assert_uint_eq(hist_count_le(h, UINT64_MAX), 0);
	hist_free(h);
}
END_TEST

START_TEST(test_count_le_is_exact_at_bucket_edges_and_close_elsewhere)
{
	uint64_t *v = malloc(NVALUES * sizeof(*v));
	struct hist *h = hist_new();
	size_t i;

	ck_assert_ptr_nonnull(v);
	fill(v, NVALUES, DS_EXPONENTIAL);
	for (i = 0; i < NVALUES; i++)
		hist_add(h, v[i]);
	qsort(v, NVALUES, sizeof(*v), cmp_u64);

	/* the percentiles it reports are bucket edges: exact there */
	for (i = 1; i <= 1000; i++) {
		uint64_t q = hist_percentile(h, (double)i / 10);

		ck_assert_uint_eq(hist_count_le(h, q), exact_count_le(v, NVALUES, q));
	}
	/* anywhere: between the exact counts at bound - 1/64 and bound */
	for (i = 0; i < 2000; i++) {
		uint64_t b = rng() % (2 * v[NVALUES - 1]);
		uint64_t got = hist_count_le(h, b);
		uint64_t lo = b > b / 64 + 1 ? b - b / 64 - 1 : 0;

		ck_assert_uint_le(got, exact_count_le(v, NVALUES, b));
		ck_assert_uint_ge(got, exact_count_le(v, NVALUES, lo));
	}
	ck_assert_uint_eq(hist_count_le(h, v[NVALUES - 1]), NVALUES);
	ck_assert_uint_eq(hist_count_le(h, UINT64_MAX), NVALUES);
	hist_free(h);
	free(v);
}
END_TEST

START_TEST(test_merge_equals_adding_everything_to_one)
{
	static const double ps[] = { 1, 25, 50, 90, 99, 99.9, 100 };
	struct hist *a = hist_new(), *b = hist_new(), *all = hist_new();
	size_t i;

	rng_state = 42;
	for (i = 0; i < 50000; i++) {
		uint64_t x = rng() % 1000000, y = rng() % 50000000;

		hist_add(a, x);
		hist_add(b, y);
		hist_add(all, x);
		hist_add(all, y);
	}
	hist_merge(a, b);
	ck_assert_uint_eq(hist_count(a), hist_count(all));
	ck_assert_uint_eq(hist_sum(a), hist_sum(all));
	ck_assert_uint_eq(hist_max(a), hist_max(all));
	for (i = 0; i < NELEM(ps); i++)
		ck_assert_uint_eq(hist_percentile(a, ps[i]), hist_percentile(all, ps[i]));
	ck_assert_uint_eq(hist_count_le(a, 1000000), hist_count_le(all, 1000000));
	/* src is untouched */
	ck_assert_uint_eq(hist_count(b), 50000);
	hist_free(a);
	hist_free(b);
	hist_free(all);
}
END_TEST

START_TEST(test_reset_forgets_everything)
{
	struct hist *h = hist_new();

	hist_add(h, 5);
	hist_add_n(h, 1000000, 7);
	ck_assert_uint_eq(hist_count(h), 8);
	ck_assert_uint_eq(hist_sum(h), 7000005);
	hist_reset(h);
	ck_assert_uint_eq(hist_count(h), 0);
	ck_assert_uint_eq(hist_sum(h), 0);
	ck_assert_uint_eq(hist_max(h), 0);
	ck_assert_uint_eq(hist_percentile(h, 99), 0);
	hist_add(h, 3);
	ck_assert_uint_eq(hist_percentile(h, 50), 3);
	ck_assert_uint_eq(hist_count_le(h, 1000000), 1);
	hist_free(h);
}
END_TEST

START_TEST(test_huge_values_and_counts_saturate_safely)
{
	struct hist *h = hist_new(), *g = hist_new();

	hist_add(h, UINT64_MAX);
	hist_add(h, UINT64_MAX - 1);
	hist_add(h, 1ull << 63);
	ck_assert_uint_eq(hist_count(h), 3);
	ck_assert_uint_eq(hist_sum(h), UINT64_MAX);
	ck_assert_uint_eq(hist_max(h), UINT64_MAX);
	ck_assert_uint_eq(hist_percentile(h, 100), UINT64_MAX);
	ck_assert_uint_ge(hist_percentile(h, 10), 1ull << 63);
	ck_assert_uint_eq(hist_count_le(h, UINT64_MAX), 3);
	ck_assert_uint_eq(hist_count_le(h, UINT64_MAX - 1), 1);

	hist_add_n(g, 10, UINT64_MAX);
	hist_add_n(g, 20, UINT64_MAX);
	hist_add_n(g, 30, 0);
	ck_assert_uint_eq(hist_count(g), UINT64_MAX);
	ck_assert_uint_eq(hist_sum(g), UINT64_MAX);
	ck_assert_uint_eq(hist_max(g), 20);
	ck_assert_uint_le(hist_percentile(g, 100), 20);
	hist_merge(g, h);
	ck_assert_uint_eq(hist_count(g), UINT64_MAX);
	ck_assert_uint_eq(hist_max(g), UINT64_MAX);
	hist_free(h);
	hist_free(g);
}
END_TEST

START_TEST(test_percentile_ranks_are_clamped_and_immune_to_rounding)
{
	struct hist *h = hist_new();
	uint64_t i;

	for (i = 1; i <= 10; i++)
		hist_add(h, i);
	ck_assert_uint_eq(hist_percentile(h, 0), 1);
	ck_assert_uint_eq(hist_percentile(h, -5), 1);
	ck_assert_uint_eq(hist_percentile(h, NAN), 1);
	ck_assert_uint_eq(hist_percentile(h, 10), 1);
	ck_assert_uint_eq(hist_percentile(h, 10.0001), 2);
	ck_assert_uint_eq(hist_percentile(h, 250), 10);
	ck_assert_uint_eq(hist_percentile(h, INFINITY), 10);

	/* 7 / 100 * 100 is 7.000000000000001 in doubles: still rank 7 */
	hist_reset(h);
	for (i = 0; i < 100; i++)
		hist_add(h, i);
	ck_assert_uint_eq(hist_percentile(h, 7), 6);
	ck_assert_uint_eq(hist_percentile(h, 7.01), 7);
	hist_free(h);
}
END_TEST

Suite *hist_suite(void);

Suite *
hist_suite(void)
{
	Suite *s = suite_create("hist");
	TCase *tc = tcase_create("hist");

	tcase_add_loop_test(tc,
	    test_percentiles_are_within_two_percent_and_never_below_exact, 0,
	    DS_COUNT);
	tcase_add_test(tc, test_small_values_have_exact_buckets);
	tcase_add_test(tc, test_an_empty_histogram_reports_zero);
	tcase_add_test(tc, test_count_le_is_exact_at_bucket_edges_and_close_elsewhere);
	tcase_add_test(tc, test_merge_equals_adding_everything_to_one);
	tcase_add_test(tc, test_reset_forgets_everything);
	tcase_add_test(tc, test_huge_values_and_counts_saturate_safely);
	tcase_add_test(tc, test_percentile_ranks_are_clamped_and_immune_to_rounding);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(hist_suite)
