/*
 * tick.c - the heartbeat timer. The schedule is fixed: tick k is due at
 * t0 + k * interval. Each firing re-arms a one-shot timer for the next due
 * tick (EV_PERSIST would restart the schedule from "now" after a stall), so
 * lateness is always measured against the ideal schedule, never against the
 * previous firing. Ticks a stall swallowed are counted and back-filled into
 * the histograms with the lateness they would have had, so a long stall is
 * never under-reported.
 */
#include <stdlib.h>

#include <event2/event.h>

#include "hist.h"
#include "tick.h"
#include "util.h"

struct tick {
	struct event_base *base;
	struct event *ev;
	tick_fn on_tick;
	void *arg;
	uint64_t interval_ns;
	uint64_t t0;		/* schedule origin */
	uint64_t next;		/* index of the tick the timer is armed for */
	uint64_t seq;		/* ticks fired */
	uint64_t missed;	/* ticks swallowed by stalls */
	uint64_t lag_ns;	/* lateness of the last tick */
	uint64_t last_ns;	/* when the last tick fired */
	struct hist *lifetime;
	struct hist *window;
};

void
tick_schedule(uint64_t t0, uint64_t interval, uint64_t next, uint64_t now,
    uint64_t *lag, uint64_t *missed, uint64_t *following)
{
	uint64_t due = t0 + next * interval;
	uint64_t last_due = now >= t0 ? (now - t0) / interval : 0;

	*lag = now > due ? now - due : 0;
	*missed = last_due > next ? last_due - next : 0;
	*following = (last_due > next ? last_due : next) + 1;
}

static void
tick_arm(struct tick *t)
{
	uint64_t due = t->t0 + t->next * t->interval_ns, now = now_ns();
	uint64_t delay = due > now ? due - now : 0;
	struct timeval tv;

	tv.tv_sec = (time_t)(delay / 1000000000ull);
	tv.tv_usec = (suseconds_t)(delay % 1000000000ull / 1000);
	/* libevent adds tv to its cached loop time, which may be stale */
	event_base_update_cache_time(t->base);
	event_add(t->ev, &tv);
}

static void
tick_record(struct tick *t, uint64_t lag)
{
	hist_add(t->window, lag);
	hist_add(t->lifetime, lag);
}

static void
tick_fire(evutil_socket_t fd, short what, void *arg)
{
	struct tick *t = arg;
	struct tick_sample s;
	uint64_t now = now_ns(), lag, missed, following, j;

	(void)fd;
	(void)what;
	tick_schedule(t->t0, t->interval_ns, t->next, now, &lag, &missed, &following);
	t->seq++;
	t->lag_ns = lag;
	t->last_ns = now;
	t->missed += missed;
	tick_record(t, lag);
	/* the swallowed ticks would have fired now too */
	for (j = t->next + 1; j < following; j++)
		tick_record(t, now - (t->t0 + j * t->interval_ns));
	t->next = following;
	tick_arm(t);

	s.seq = t->seq;
	s.now = now;
	s.lag_ns = lag;
	s.missed = missed;
	t->on_tick(&s, t->arg);
}

struct tick *
tick_new(struct event_base *base, uint32_t interval_ms, int priority,
    tick_fn on_tick, void *arg)
{
	struct tick *t = xcalloc(1, sizeof(*t));

	t->base = base;
	t->on_tick = on_tick;
	t->arg = arg;
	t->lifetime = hist_new();
	t->window = hist_new();
	t->ev = event_new(base, -1, 0, tick_fire, t);
	event_priority_set(t->ev, priority);
	tick_set_interval(t, interval_ms);
	return t;
}

void
tick_set_interval(struct tick *t, uint32_t interval_ms)
{
	t->interval_ns = (uint64_t)interval_ms * HB_NS_PER_MS;
	t->t0 = now_ns();
	t->next = 1;
	tick_arm(t);
}

void
tick_free(struct tick *t)
{
	if (t == NULL)
		return;
	event_free(t->ev);
	hist_free(t->window);
	hist_free(t->lifetime);
	free(t);
}

void
tick_stats(const struct tick *t, struct tick_stats *out)
{
	out->seq = t->seq;
	out->missed = t->missed;
	out->lag_ns = t->lag_ns;
	out->last_tick_ns = t->last_ns != 0 ? t->last_ns : t->t0;
	out->lifetime = t->lifetime;
	out->window = t->window;
}

void
tick_window_reset(struct tick *t)
{
	hist_reset(t->window);
}
