/*
 * tick.c - the heartbeat timer. The schedule is fixed: tick k is due at
 * t0 + k * interval. Each firing re-arms a one-shot timer for the next due
 * tick (EV_PERSIST would restart the schedule from "now" after a stall), so
 * lateness is always measured against the ideal schedule, never against the
 * previous firing. Ticks a stall swallowed are counted and back-filled into
 * the histograms with the lateness they would have had, so a long stall is
 * never under-reported.
 *
 * Each tick: record lateness, heartbeat the peers, send the WATCH line, and
 * every heartbeat_log_ms write the heartbeat log line with the worst
 * lateness since the previous line.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#include "config.h"
#include "daemon.h"
#include "hist.h"
#include "log.h"
#include "metrics.h"
#include "peer.h"
#include "pool.h"
#include "tick.h"
#include "util.h"
#include "work.h"

struct tick {
	struct daemon *d;
	struct event *ev;
	uint64_t interval_ns;
	uint64_t t0;		/* schedule origin */
	uint64_t next;		/* index of the tick the timer is armed for */
	uint64_t seq;		/* ticks fired */
	uint64_t missed;	/* ticks swallowed by stalls */
	uint64_t lag_ns;	/* lateness of the last tick */
	uint64_t last_ns;	/* when the last tick fired */
	struct hist *window;	/* lateness since the last heartbeat line */
	uint64_t log_ns;	/* heartbeat_log_ms, 0 = no line */
	uint64_t next_log_ns;
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
	event_base_update_cache_time(t->d->base);
	event_add(t->ev, &tv);
}

static void
tick_log_line(struct tick *t, const struct pool_stats *ps)
{
	struct daemon *d = t->d;
	struct log_line *l = log_begin(LOG_INFO, "heartbeat");

	log_str(l, "node", d->cfg->node_name);
	log_uint(l, "seq", t->seq);
	log_uint(l, "lag_us", t->lag_ns / HB_NS_PER_US);
	log_uint(l, "lag_max_us", hist_max(t->window) / HB_NS_PER_US);
	log_uint(l, "lag_p99_us", hist_percentile(t->window, 99) / HB_NS_PER_US);
	log_uint(l, "missed", t->missed);
	log_uint(l, "peers_up", peers_up(d->peers));
	log_uint(l, "peers", peers_count(d->peers));
	log_uint(l, "threads", ps->threads);
	log_uint(l, "busy", ps->busy);
	log_uint(l, "queued", ps->queued);
	/* a job may have started after this tick read the clock */
	log_uint(l, "oldest_job_ms", ps->oldest_start_ns != 0 &&
	    ps->oldest_start_ns < t->last_ns ?
	    (t->last_ns - ps->oldest_start_ns) / HB_NS_PER_MS : 0);
	log_uint(l, "done", metrics_completed_total());
	log_uint(l, "failed", metrics_failed_total());
	log_uint(l, "connections", work_connections(d->work));
	log_end(l);
}

static void
tick_fire(evutil_socket_t fd, short what, void *arg)
{
	struct tick *t = arg;
	struct daemon *d = t->d;
	struct pool_stats ps;
	uint64_t now = now_ns(), lag, missed, following, j;
	char line[256];
	int n;

	(void)fd;
	(void)what;
	tick_schedule(t->t0, t->interval_ns, t->next, now, &lag, &missed, &following);
	t->seq++;
	t->lag_ns = lag;
	t->last_ns = now;
	t->missed += missed;
	metrics.heartbeats++;
	metrics.ticks_missed += missed;
	hist_add(t->window, lag);
	hist_add(metrics.loop_lag, lag);
	/* the swallowed ticks would have fired now too */
	for (j = t->next + 1; j < following; j++) {
		uint64_t late = now - (t->t0 + j * t->interval_ns);

		hist_add(t->window, late);
		hist_add(metrics.loop_lag, late);
	}
	t->next = following;
	tick_arm(t);

	peers_tick(d->peers, now, lag, missed);
	pool_stats(d->pool, &ps);
	n = snprintf(line, sizeof(line), "HEARTBEAT seq=%" PRIu64 " lag_us=%" PRIu64
	    " busy=%u queued=%u peers_up=%u peers=%u threads=%u missed=%" PRIu64 "\n",
	    t->seq, lag / HB_NS_PER_US, ps.busy, ps.queued, peers_up(d->peers),
	    peers_count(d->peers), ps.threads, t->missed);
	work_watch_send(d->work, line, (size_t)n);

	if (t->log_ns != 0 && now >= t->next_log_ns) {
		tick_log_line(t, &ps);
		hist_reset(t->window);
		while (t->next_log_ns <= now)
			t->next_log_ns += t->log_ns;
	}
}

struct tick *
tick_new(struct daemon *d)
{
	struct tick *t = xcalloc(1, sizeof(*t));

	t->d = d;
	t->window = hist_new();
	t->ev = event_new(d->base, -1, 0, tick_fire, t);
	event_priority_set(t->ev, DAEMON_PRI_TICK);
	tick_reconfigure(t);
	return t;
}

void
tick_reconfigure(struct tick *t)
{
	const struct config *cfg = t->d->cfg;
	uint64_t now = now_ns();

	t->interval_ns = (uint64_t)cfg->heartbeat_interval_ms * HB_NS_PER_MS;
	t->log_ns = (uint64_t)cfg->heartbeat_log_ms * HB_NS_PER_MS;
	t->next_log_ns = now + t->log_ns;
	t->t0 = now;
	t->next = 1;
	tick_arm(t);
}

void
tick_free(struct tick *t)
{
	event_free(t->ev);
	hist_free(t->window);
	free(t);
}

void
tick_stats(const struct tick *t, struct tick_stats *out)
{
	out->seq = t->seq;
	out->missed = t->missed;
	out->lag_ns = t->lag_ns;
	out->p50_ns = hist_percentile(metrics.loop_lag, 50);
	out->p99_ns = hist_percentile(metrics.loop_lag, 99);
	out->max_ns = hist_max(metrics.loop_lag);
	out->last_tick_ns = t->last_ns != 0 ? t->last_ns : t->t0;
}
