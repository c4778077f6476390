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
	int ok;			/* working since ok_since_ns */
	uint64_t ok_since_ns;
};

void backoff_init(struct backoff *b, uint64_t min_ns, uint64_t max_ns, uint64_t seed);
/*
 * The next delay: cur plus up to 25 % jitter, then cur doubles up to max.
 * Called at every failure, it also ends the current working spell.
 */
uint64_t backoff_next(struct backoff *b);
void backoff_reset(struct backoff *b);
/*
 * The connection works at now (e.g. an ACK arrived while up). The first
 * call after a failure starts a spell; once one has lasted hold_ns the
 * delays start again from min. A peer that works briefly and then fails
 * keeps backing off. Returns 1 when this call reset the backoff.
 */
int backoff_ok(struct backoff *b, uint64_t now, uint64_t hold_ns);

#endif
