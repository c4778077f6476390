/*
 * backoff.c - capped exponential backoff with jitter, for reconnecting a
 * peer link. Pure: the caller owns the timer and passes the clock in, so
 * tests drive it directly. The jitter comes from a per-link xorshift
 * generator, so links to one restarted peer do not all redial at once.
 *
 * Success alone does not reset it: only a connection that has kept
 * working for a hold time (peer_timeout_ms for peer links) does, so a
 * peer that accepts, answers once and then misbehaves is redialled ever
 * more slowly instead of at the minimum delay forever.
 */

#include <stdint.h>

#include "backoff.h"

static uint64_t
backoff_rand(struct backoff *b)
{
	uint64_t x = b->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	b->rng = x;
	return x;
}

/*
 * The seed goes through splitmix64 first: xorshift's first outputs from a
 * small seed (1, 2, a pid) are small and alike, and from 0 it stays at 0.
 */
void
backoff_init(struct backoff *b, uint64_t min_ns, uint64_t max_ns,
    uint64_t seed)
{
	uint64_t z = seed + 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	b->min_ns = min_ns;
	b->max_ns = max_ns > min_ns ? max_ns : min_ns;
	b->cur_ns = min_ns;
	b->rng = z != 0 ? z : 0x9e3779b97f4a7c15ull;
	b->ok = 0;
	b->ok_since_ns = 0;
}

uint64_t
backoff_next(struct backoff *b)
{
	uint64_t cur = b->cur_ns, quarter = cur / 4, jitter = 0;

	b->ok = 0;
	if (quarter > 0)
		jitter = backoff_rand(b) % (quarter + 1);
	b->cur_ns = cur > b->max_ns / 2 ? b->max_ns : cur * 2;
	if (b->cur_ns < b->min_ns)
		b->cur_ns = b->min_ns;
	return cur > UINT64_MAX - jitter ? UINT64_MAX : cur + jitter;
}

void
backoff_reset(struct backoff *b)
{
	b->cur_ns = b->min_ns;
}

int
backoff_ok(struct backoff *b, uint64_t now, uint64_t hold_ns)
{
	if (!b->ok) {
		b->ok = 1;
		b->ok_since_ns = now;
	}
	if (now < b->ok_since_ns || now - b->ok_since_ns < hold_ns ||
	    b->cur_ns == b->min_ns)
		return 0;
	b->cur_ns = b->min_ns;
	return 1;
}
