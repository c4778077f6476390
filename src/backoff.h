/*
 * backoff.h - capped exponential backoff with jitter for reconnecting a
 * peer link. Pure logic, no clock of its own: peer.c arms its retry timer
 * with backoff_next() after every failed or lost connection.
 */
#ifndef HB_BACKOFF_H
#define HB_BACKOFF_H

#include <stdint.h>

struct backoff {
	uint64_t min_ns, max_ns, cur_ns;
	uint64_t rng;		/* xorshift state */
};

void backoff_init(struct backoff *b, uint64_t min_ns, uint64_t max_ns, uint64_t seed);
/* The next delay: cur plus up to 25 % jitter, then cur doubles up to max. */
uint64_t backoff_next(struct backoff *b);
void backoff_reset(struct backoff *b);

#endif
