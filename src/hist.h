/*
 * hist.h - a log-linear histogram of non-negative integers (nanoseconds here):
 * 64 linear sub-buckets per power of two, so any percentile it reports is
 * within 1/64 (< 2 %) of the exact value; fixed memory, O(1) add, no I/O.
 */
#ifndef HB_HIST_H
#define HB_HIST_H

#include <stdint.h>

struct hist;

struct hist *hist_new(void);
void hist_free(struct hist *h);
void hist_reset(struct hist *h);
void hist_add(struct hist *h, uint64_t v);
void hist_add_n(struct hist *h, uint64_t v, uint64_t n);
void hist_merge(struct hist *dst, const struct hist *src);
uint64_t hist_count(const struct hist *h);
uint64_t hist_sum(const struct hist *h);	/* exact */
uint64_t hist_max(const struct hist *h);	/* exact; 0 when empty */
/* The p-th percentile (0 < p <= 100), within 2 %; 0 when empty. */
uint64_t hist_percentile(const struct hist *h, double p);
/* How many values are <= bound (exact at bucket edges, else within 2 %). */
uint64_t hist_count_le(const struct hist *h, uint64_t bound);

#endif
