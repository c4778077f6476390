/*
 * tick.h - the heartbeat timer, and nothing more. It fires every interval on
 * the ideal schedule t0 + k * interval (re-armed as a one-shot each time, so
 * a late tick does not shift the schedule), measures each firing's lateness
 * against that schedule, back-fills the ticks a stall swallowed into its
 * lateness histograms, and calls one on_tick callback per firing. What a
 * tick does (heartbeats, the log line, WATCH) is the daemon's business.
 */
#ifndef HB_TICK_H
#define HB_TICK_H

#include <stdint.h>

struct event_base;
struct hist;
struct tick;

/* One firing. */
struct tick_sample {
	uint64_t seq;		/* ticks fired so far, this one included */
	uint64_t now;		/* when it fired (monotonic ns) */
	uint64_t lag_ns;	/* how late against its schedule */
	uint64_t missed;	/* ticks swallowed since the previous firing */
};

typedef void (*tick_fn)(const struct tick_sample *s, void *arg);

struct tick_stats {
	uint64_t seq;		/* ticks fired */
	uint64_t missed;	/* ticks swallowed by stalls */
	uint64_t lag_ns;	/* lateness of the last tick */
	uint64_t last_tick_ns;	/* monotonic time of the last firing (or start) */
	const struct hist *lifetime;	/* every tick's lateness, back-fill included */
	const struct hist *window;	/* the same since tick_window_reset */
};

/* A timer at libevent priority priority, firing every interval_ms. */
struct tick *tick_new(struct event_base *base, uint32_t interval_ms, int priority,
    tick_fn on_tick, void *arg);
void tick_free(struct tick *t);
/* A new interval (reload): the schedule restarts from now. */
void tick_set_interval(struct tick *t, uint32_t interval_ms);
void tick_stats(const struct tick *t, struct tick_stats *out);
/* Start a new window (after each heartbeat line). */
void tick_window_reset(struct tick *t);

/*
 * Pure schedule arithmetic: the tick with index next was due at
 * t0 + next * interval; at now, return its lateness, how many further ticks
 * are also overdue (missed), and the index of the next tick to arm.
 */
void tick_schedule(uint64_t t0, uint64_t interval, uint64_t next, uint64_t now,
    uint64_t *lag, uint64_t *missed, uint64_t *following);

#endif
