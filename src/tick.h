/*
 * tick.h - the heartbeat timer. It fires every heartbeat_interval_ms on the
 * ideal schedule t0 + k * interval (re-armed as a one-shot each time, so a
 * late tick does not shift the schedule), measures each firing's lateness
 * against that schedule, back-fills ticks a stall swallowed, keeps lateness
 * histograms (window since the last heartbeat line, and lifetime), drives
 * the peers' heartbeats, writes the heartbeat line and the WATCH stream, and
 * pats the systemd watchdog while on time.
 */
#ifndef HB_TICK_H
#define HB_TICK_H

#include <stdint.h>

struct daemon;
struct tick;

struct tick_stats {
	uint64_t seq;		/* ticks fired */
	uint64_t missed;	/* ticks swallowed by stalls */
	uint64_t lag_ns;	/* lateness of the last tick */
	uint64_t p50_ns, p99_ns, max_ns;	/* lifetime */
	uint64_t last_tick_ns;	/* monotonic time of the last firing */
};

struct tick *tick_new(struct daemon *d);
void tick_free(struct tick *t);
/* Apply heartbeat_interval_ms and heartbeat_log_ms from d->cfg (reload). */
void tick_reconfigure(struct tick *t);
void tick_stats(const struct tick *t, struct tick_stats *out);

/*
 * Pure schedule arithmetic: the tick with index next was due at
 * t0 + next * interval; at now, return its lateness, how many further ticks
 * are also overdue (missed), and the index of the next tick to arm.
 */
void tick_schedule(uint64_t t0, uint64_t interval, uint64_t next, uint64_t now,
    uint64_t *lag, uint64_t *missed, uint64_t *following);

#endif
