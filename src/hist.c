/*
 * hist.c - a log-linear histogram of uint64_t values (HDR-style).
 *
 * Values below 64 have a bucket each. Above, each power of two [2^e, 2^e+1)
 * for e = 6..63 is cut into 64 equal sub-buckets of width 2^(e-6), so a
 * bucket's width is at most 1/64 of its lower bound: any value in it is
 * within 1/64 (1.6 %) of the bucket's upper bound. 64 + 58 * 64 = 3776
 * counters cover the whole uint64_t range in ~30 KiB, with no allocation
 * after hist_new and O(1) hist_add.
 *
 * Count, sum and max are kept exactly (count and sum saturate instead of
 * wrapping). A percentile reports the upper bound of the bucket holding the
 * value of that rank, capped at the exact max: it never under-reports a
 * latency (a p99 below what was really seen would hide the problem the
 * histogram exists to show) and p100 is the true max. hist_count_le errs
 * the same way, counting only buckets that end at or below the bound, so
 * for any percentile q it reports, hist_count_le(q) covers that rank.
 */

#include <stdlib.h>
#include <string.h>

#include "hist.h"
#include "util.h"

#define HIST_SUB_BITS 6
#define HIST_SUB (1u << HIST_SUB_BITS)	/* sub-buckets per power of two */
#define HIST_GROUPS (64 - HIST_SUB_BITS)	/* powers 2^6 .. 2^63 */
#define HIST_BUCKETS (HIST_SUB + HIST_GROUPS * HIST_SUB)

struct hist {
	uint64_t count;
	uint64_t sum;
	uint64_t max;
	uint64_t bucket[HIST_BUCKETS];
};

static uint64_t
hist_sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static size_t
hist_index(uint64_t v)
{
	unsigned e, shift;

	if (v < HIST_SUB)
		return (size_t)v;
	e = 63u - (unsigned)__builtin_clzll(v);	/* 2^e <= v, e >= 6 */
	shift = e - HIST_SUB_BITS;
	return HIST_SUB + (size_t)shift * HIST_SUB +
	    (size_t)((v >> shift) & (HIST_SUB - 1));
}

/* The largest value that falls into bucket i. */
static uint64_t
hist_upper(size_t i)
{
	unsigned shift;
	uint64_t sub;

	if (i < HIST_SUB)
		return i;
	shift = (unsigned)((i - HIST_SUB) / HIST_SUB);
	sub = (i - HIST_SUB) % HIST_SUB;
	return ((HIST_SUB + sub) << shift) + ((1ull << shift) - 1);
}

struct hist *
hist_new(void)
{
	return xcalloc(1, sizeof(struct hist));
}

void
hist_free(struct hist *h)
{
	free(h);
}

void
hist_reset(struct hist *h)
{
	memset(h, 0, sizeof(*h));
}

void
hist_add(struct hist *h, uint64_t v)
{
	hist_add_n(h, v, 1);
}

void
hist_add_n(struct hist *h, uint64_t v, uint64_t n)
{
	size_t i = hist_index(v);

	if (n == 0)
		return;
	h->bucket[i] = hist_sat_add(h->bucket[i], n);
	h->count = hist_sat_add(h->count, n);
	if (v != 0 && n > UINT64_MAX / v)
		h->sum = UINT64_MAX;
	else
		h->sum = hist_sat_add(h->sum, v * n);
	if (v > h->max)
		h->max = v;
}

void
hist_merge(struct hist *dst, const struct hist *src)
{
	size_t i;

	for (i = 0; i < HIST_BUCKETS; i++)
		dst->bucket[i] = hist_sat_add(dst->bucket[i], src->bucket[i]);
	dst->count = hist_sat_add(dst->count, src->count);
	dst->sum = hist_sat_add(dst->sum, src->sum);
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t
hist_count(const struct hist *h)
{
	return h->count;
}

uint64_t
hist_sum(const struct hist *h)
{
	return h->sum;
}

uint64_t
hist_max(const struct hist *h)
{
	return h->max;
}

/*
 * The rank ceil(p / 100 * count), in 1..count. A relative tolerance keeps
 * rounding noise from moving it: 99.9 % of 100000 is rank 99900, not 99901.
 */
static uint64_t
hist_rank(uint64_t count, double p)
{
	double x;
	uint64_t r;

	if (!(p > 0))		/* also NaN */
		return 1;
	if (p >= 100)
		return count;
	x = p / 100 * (double)count;
	if (x >= (double)count)
		return count;
	r = (uint64_t)x;
	if ((double)r < x * (1 - 1e-12))
		r++;
	return r < 1 ? 1 : r;
}

uint64_t
hist_percentile(const struct hist *h, double p)
{
	uint64_t rank, seen = 0, v;
	size_t i;

	if (h->count == 0)
		return 0;
	rank = hist_rank(h->count, p);
	for (i = 0; i < HIST_BUCKETS; i++) {
		seen = hist_sat_add(seen, h->bucket[i]);
		if (seen >= rank) {
			v = hist_upper(i);
			return v < h->max ? v : h->max;
		}
	}
	return h->max;		/* only when counters saturated */
}

uint64_t
hist_count_le(const struct hist *h, uint64_t bound)
{
	uint64_t n = 0;
	size_t i, last;

	if (h->count == 0)
		return 0;
	if (bound >= h->max)
		return h->count;
	last = hist_index(bound);
	for (i = 0; i < last; i++)
		n = hist_sat_add(n, h->bucket[i]);
	if (hist_upper(last) == bound)
		n = hist_sat_add(n, h->bucket[last]);
	return n;
}
