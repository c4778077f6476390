/*
 * daemon.c - the wiring and the lifecycle. This is the only module that
 * knows the others (design.md "Wiring"): each gets the base, its slice of
 * the config, its libevent priority and callbacks with an argument, and
 * none reaches back through the daemon.
 *
 * Modules are created in dependency order and freed in reverse: listening
 * sockets (bound, or inherited through socket activation), jobs (and its
 * pool), the work server, peers, HTTP, the tick; then "ready" and the loop.
 * Teardown closes connections before jobs and jobs before the pool, so no
 * pointer outlives what it points at.
 *
 * Each tick (tick.c calls daemon_tick): heartbeats to the peers, then WATCH
 * lines to the connections that asked, then, every heartbeat_log_ms, the
 * heartbeat line, all formatted from one status snapshot (daemon_status).
 *
 * Signals are blocked in every thread and read from a signalfd on the loop
 * thread, so no handler ever runs:
 *
 *   SIGTERM/SIGINT  drain: stop accepting work connections, refuse SUBMIT,
 *                   keep heartbeats and HTTP (healthz 503), let jobs finish
 *                   for shutdown_grace_ms, cancel the rest (FAIL
 *                   reason=shutdown), flush every client, exit 0. A second
 *                   signal ends the grace period at once.
 *   SIGHUP          reload: read the config afresh; if valid, swap it in and
 *                   apply what can change live; keys that need a restart keep
 *                   their running values and are logged.
 *
 * With systemd: READY=1 at ready, STOPPING=1 at drain, and WATCHDOG=1 from a
 * timer only while the heartbeat tick is on time.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/util.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "config.h"
#include "daemon.h"
#include "hist.h"
#include "http.h"
#include "jobs.h"
#include "listen.h"
#include "log.h"
#include "peer.h"
#include "proto.h"
#include "status.h"
#include "tick.h"
#include "util.h"
#include "work.h"

#define DAEMON_DRAIN_POLL_MS 10		/* drain progress check while stopping */
#define DAEMON_FLUSH_MAX_NS (2000ull * HB_NS_PER_MS)	/* clients' last output */
#define DAEMON_LINE_MAX 512		/* one WATCH line */
#define DAEMON_DISPATCH_MAX_US 1000	/* callbacks run before timers are checked */

/* libevent priorities: lower runs first. */
#define DAEMON_PRI_TICK 0	/* heartbeat timer, peer links, signals */
#define DAEMON_PRI_DONE 1	/* job completions */
#define DAEMON_PRI_IO 2		/* client connections, HTTP, inline jobs */
#define DAEMON_NPRI 3

struct daemon {
	struct event_base *base;
	struct config *cfg;		/* in force; replaced whole on reload */
	const char *config_path;	/* -c, or NULL for the default */
	char *const *sets;		/* -s KEY=VALUE, re-applied on reload */
	size_t nsets;
	uint64_t start_ns;

	struct jobs *jobs;
	struct work *work;
	struct peers *peers;
	struct http *http;
	struct tick *tick;

	struct peer_info *peer_buf;	/* the peers of the last snapshot */
	size_t npeer_buf, peer_cap;	/* entries filled, allocated */
	uint64_t log_ns;		/* heartbeat_log_ms, 0 = no line */
	uint64_t next_log_ns;

	int draining;			/* SIGTERM/SIGINT seen */
	uint64_t drain_deadline_ns;	/* end of the grace period */
	int drain_cancelled;		/* grace over: the rest was cancelled */
	uint64_t close_deadline_ns;	/* last chance for clients' output */

	uint64_t wd_lag_ns;		/* watchdog_lag_ms */
	int wd_late;			/* a tick since the last WATCHDOG=1 was late */

	int signal_fd;			/* SIGTERM, SIGINT, SIGHUP */
	struct event *ev_signal, *ev_drain, *ev_watchdog;
};

static void
daemon_notify(const char *state)
{
#ifdef HAVE_SYSTEMD
	sd_notify(0, state);
#else
	(void)state;
#endif
}

static void
daemon_peer_copy(const struct peer_info *pi, void *arg)
{
	struct daemon *d = arg;

	d->peer_buf[d->npeer_buf++] = *pi;
}

/*
 * One snapshot of every module's counters: what STATS, /metrics, /healthz,
 * WATCH and the heartbeat line report. Valid until the loop runs again.
 * Without full, the lateness percentiles and the peer records are left
 * out (zero, none): a tick that only feeds WATCH lines needs neither, and
 * scanning the histograms every tick would be work for nobody.
 */
static void
daemon_status(struct daemon *d, struct hb_status *st, int full)
{
	struct tick_stats ts;
	uint64_t now = now_ns();
	size_t n;

	memset(st, 0, sizeof(*st));
	st->node = d->cfg->node_name;
	st->uptime_ns = now - d->start_ns;
	st->draining = d->draining;

	tick_stats(d->tick, &ts);
	st->heartbeats = ts.seq;
	st->missed = ts.missed;
	st->lag_ns = ts.lag_ns;
	st->loop_lag = ts.lifetime;
	jobs_status(d->jobs, now, st);
	work_status(d->work, st);
	st->npeers = peers_count(d->peers);
	st->peers_up = peers_up(d->peers);
	if (!full)
		return;
	st->lag_p50_ns = hist_percentile(ts.lifetime, 50);
	st->lag_p99_ns = hist_percentile(ts.lifetime, 99);
	st->lag_max_ns = hist_max(ts.lifetime);
	st->window_p99_ns = hist_percentile(ts.window, 99);
	st->window_max_ns = hist_max(ts.window);

	if ((n = st->npeers) > d->peer_cap) {
		d->peer_buf = xrealloc(d->peer_buf, n * sizeof(*d->peer_buf));
		d->peer_cap = n;
	}
	d->npeer_buf = 0;
	peers_foreach(d->peers, daemon_peer_copy, d);
	st->npeers = (unsigned)d->npeer_buf;
	st->peers = d->peer_buf;
}

/* work and http ask through this. */
static void
daemon_status_cb(struct hb_status *st, void *arg)
{
	daemon_status(arg, st, 1);
}

/* The heartbeat line (interface.md section 3). */
static void
daemon_heartbeat_line(const struct hb_status *st)
{
	struct log_line *l = log_begin(LOG_INFO, "heartbeat");

	log_str(l, "node", st->node);
	log_uint(l, "seq", st->heartbeats);
	log_uint(l, "lag_us", st->lag_ns / HB_NS_PER_US);
	log_uint(l, "lag_max_us", st->window_max_ns / HB_NS_PER_US);
	log_uint(l, "lag_p99_us", st->window_p99_ns / HB_NS_PER_US);
	log_uint(l, "missed", st->missed);
	log_uint(l, "peers_up", st->peers_up);
	log_uint(l, "peers", st->npeers);
	log_uint(l, "threads", st->threads);
	log_uint(l, "busy", st->busy);
	log_uint(l, "queued", st->queued);
	log_uint(l, "oldest_job_ms", st->oldest_job_ms);
	log_uint(l, "done", status_completed(st));
	log_uint(l, "failed", status_failed(st));
	log_uint(l, "connections", st->connections);
	log_end(l);
}

/* sd_notify STATUS=: what systemctl status shows, with each heartbeat line. */
static void
daemon_notify_status(const struct hb_status *st)
{
#ifdef HAVE_SYSTEMD
	char buf[256];

	if (getenv("NOTIFY_SOCKET") == NULL)
		return;
	snprintf(buf, sizeof(buf), "STATUS=%s: peers up %u/%u, pool busy %u/%u, "
	    "queued %u, worst lateness %" PRIu64 ".%03" PRIu64 " ms%s", st->node,
	    st->peers_up, st->npeers, st->busy, st->threads, st->queued,
	    st->window_max_ns / HB_NS_PER_MS,
	    st->window_max_ns % HB_NS_PER_MS / HB_NS_PER_US,
	    st->draining ? ", draining" : "");
	sd_notify(0, buf);
#else
	(void)st;
#endif
}

/* Each tick: heartbeats, then WATCH lines, then (when due) the log line. */
static void
daemon_tick(const struct tick_sample *s, void *arg)
{
	struct daemon *d = arg;
	int watch = work_watchers(d->work) > 0;
	int line = d->log_ns != 0 && s->now >= d->next_log_ns;
	struct hb_status st;
	char buf[DAEMON_LINE_MAX];

	if (s->lag_ns > d->wd_lag_ns || s->missed > 0)
		d->wd_late = 1;
	peers_tick(d->peers, s->now, s->lag_ns, s->missed);
	if (!watch && !line)
		return;
	daemon_status(d, &st, line);
	if (watch)
		work_watch_send(d->work, buf,
		    (size_t)proto_fmt_heartbeat(buf, sizeof(buf), &st));
	if (line) {
		daemon_heartbeat_line(&st);
		daemon_notify_status(&st);
		tick_window_reset(d->tick);
		while (d->next_log_ns <= s->now)
			d->next_log_ns += d->log_ns;
	}
}

/* A detached SUBMIT's reply, once the journal has spoken: jobs -> work. */
static void
daemon_committed(uint64_t conn_id, const char *line, size_t len, void *arg)
{
	struct daemon *d = arg;

	work_settle(d->work, conn_id, line, len);
}

/* Heartbeat timing from the config in force (start and reload). */
static void
daemon_tick_config(struct daemon *d)
{
	d->log_ns = (uint64_t)d->cfg->heartbeat_log_ms * HB_NS_PER_MS;
	d->wd_lag_ns = (uint64_t)d->cfg->watchdog_lag_ms * HB_NS_PER_MS;
	d->next_log_ns = now_ns() + d->log_ns;
	if (d->tick != NULL)
		tick_set_interval(d->tick, d->cfg->heartbeat_interval_ms);
}

/* An outcome line for a connection: jobs -> work. */
static int
daemon_deliver(uint64_t conn_id, const char *line, size_t len, void *arg)
{
	struct daemon *d = arg;

	return work_deliver(d->work, conn_id, line, len);
}

/* Called while draining: finish when every job is back and clients flushed. */
static void
daemon_drain_check(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	uint64_t now = now_ns();

	(void)fd;
	(void)what;
	if (jobs_live(d->jobs) > 0) {
		if (now >= d->drain_deadline_ns && !d->drain_cancelled) {
			/* grace is over: cancel what is left, once */
			d->drain_cancelled = 1;
			jobs_cancel_all(d->jobs);
		}
		return;
	}
	if (d->close_deadline_ns == 0) {
		d->close_deadline_ns = now + DAEMON_FLUSH_MAX_NS;
		work_close_all(d->work);
	}
	if (work_connections(d->work) == 0 || now >= d->close_deadline_ns)
		event_base_loopexit(d->base, NULL);
}

/* A job has ended: while draining, the last one ends the wait. */
static void
daemon_job_finished(void *arg)
{
	struct daemon *d = arg;

	if (d->draining && jobs_live(d->jobs) == 0)
		event_active(d->ev_drain, EV_TIMEOUT, 0);
}

static void
daemon_stop(struct daemon *d, int signo)
{
	struct timeval tv = { 0, DAEMON_DRAIN_POLL_MS * 1000 };
	struct log_line *l;

	if (d->draining) {
		/* a second signal: no more grace */
		d->drain_deadline_ns = now_ns();
		return;
	}
	d->draining = 1;
	d->drain_deadline_ns = now_ns() +
	    (uint64_t)d->cfg->shutdown_grace_ms * HB_NS_PER_MS;
	l = log_begin(LOG_INFO, "stopping");
	log_str(l, "signal", strsignal(signo));
	log_uint(l, "jobs", jobs_live(d->jobs));
	log_uint(l, "grace_ms", d->cfg->shutdown_grace_ms);
	log_end(l);
	daemon_notify("STOPPING=1");
	work_drain(d->work);
	jobs_drain(d->jobs);
	d->ev_drain = event_new(d->base, -1, EV_PERSIST, daemon_drain_check, d);
	event_priority_set(d->ev_drain, DAEMON_PRI_TICK);
	event_add(d->ev_drain, &tv);
	event_active(d->ev_drain, EV_TIMEOUT, 0);
}

/* Keep the running value of every key that needs a restart. */
static void
daemon_keep_restart_keys(struct config *new, struct config *old)
{
	char *s;
	uint32_t u;
	enum pool_mode m;

#define KEEP(field, tmp) do { tmp = new->field; new->field = old->field; \
	old->field = tmp; } while (0)
	KEEP(work_listen, s);
	KEEP(peer_listen, s);
	KEEP(http_listen, s);
	KEEP(threads, u);
	KEEP(worker_nice, u);
	KEEP(pool_mode, m);
#undef KEEP
}

static void
daemon_reload(struct daemon *d)
{
	struct config *new, *old = d->cfg;
	struct config_error err;
	char applied[512], restart[256];
	struct log_line *l;

	if ((new = config_read(d->config_path, d->sets, d->nsets, &err)) == NULL) {
		config_error_log(&err, "reload-failed");
		return;
	}
	config_diff(old, new, applied, sizeof(applied), restart, sizeof(restart));
	daemon_keep_restart_keys(new, old);
	d->cfg = new;
	log_setup(new->log_format, new->log_level);
	prctl(PR_SET_TIMERSLACK, (unsigned long)new->timer_slack_ns, 0, 0, 0);
	jobs_reconfigure(d->jobs, new);
	work_reconfigure(d->work, new);
	if (d->http != NULL)
		http_reconfigure(d->http, new);
	daemon_tick_config(d);
	peers_reconfigure(d->peers, new);
	config_free(old);

	l = log_begin(LOG_INFO, "reloaded");
	log_str(l, "file", d->config_path ? d->config_path : config_default_path());
	log_str(l, "applied", applied);
	log_str(l, "restart_needed", restart);
	log_end(l);
	if (restart[0] != '\0') {
		l = log_begin(LOG_WARN, "restart-needed");
		log_str(l, "keys", restart);
		log_end(l);
	}
}

/* Signals come through a signalfd: no handler runs, nothing is lost. */
static void
daemon_signal(evutil_socket_t fd, short what, void *arg)
{
	struct signalfd_siginfo si;

	(void)what;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP)
			daemon_reload(arg);
		else
			daemon_stop(arg, (int)si.ssi_signo);
	}
}

/*
 * Pat the systemd watchdog, but only while the heartbeat tick is on time:
 * a loop that stalls (or crawls) gets no pat, and systemd restarts it.
 */
static void
daemon_watchdog(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	struct tick_stats ts;
	uint64_t interval = (uint64_t)d->cfg->heartbeat_interval_ms * HB_NS_PER_MS;
	uint64_t now = now_ns();

	(void)fd;
	(void)what;
	tick_stats(d->tick, &ts);
	/* honest: every tick since the last pat was within watchdog_lag_ms,
	 * and the next one is not overdue by more than that either */
	if (!d->wd_late && now - ts.last_tick_ns <= interval + d->wd_lag_ns)
		daemon_notify("WATCHDOG=1");
	d->wd_late = 0;
}

/*
 * Block SIGTERM, SIGINT and SIGHUP and read them from a signalfd on the
 * loop. Called before any thread starts, so every thread inherits the mask
 * and the signals wait in the fd for the loop. Returns 0 or -1.
 */
static int
daemon_signals_start(struct daemon *d)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0 ||
	    (d->signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
		log_msg(LOG_ERROR, "signalfd-failed");
		return -1;
	}
	d->ev_signal = event_new(d->base, d->signal_fd, EV_READ | EV_PERSIST,
	    daemon_signal, d);
	event_priority_set(d->ev_signal, DAEMON_PRI_TICK);
	event_add(d->ev_signal, NULL);
	return 0;
}

static void
daemon_watchdog_start(struct daemon *d)
{
#ifdef HAVE_SYSTEMD
	uint64_t usec;
	struct timeval tv;

	if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return;
	usec /= 4;		/* well inside the required WATCHDOG_USEC / 2 */
	tv.tv_sec = (time_t)(usec / 1000000);
	tv.tv_usec = (suseconds_t)(usec % 1000000);
	d->ev_watchdog = event_new(d->base, -1, EV_PERSIST, daemon_watchdog, d);
	event_priority_set(d->ev_watchdog, DAEMON_PRI_TICK);
	event_add(d->ev_watchdog, &tv);
#else
	(void)d;
#endif
}

static struct event_base *
daemon_base_new(void)
{
	static const struct timeval max_dispatch = { 0, DAEMON_DISPATCH_MAX_US };
	struct event_config *ec = event_config_new();
	struct event_base *base;

	/* a coarse clock would make sub-millisecond lateness unmeasurable */
	event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER);
	/*
	 * libevent runs every ready callback of a priority before it looks
	 * at its timers again; after DAEMON_DISPATCH_MAX_US of completions or
	 * client I/O it must look, so a burst cannot hold the tick back.
	 */
	event_config_set_max_dispatch_interval(ec, &max_dispatch, -1, DAEMON_PRI_DONE);
	base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (base == NULL || event_base_priority_init(base, DAEMON_NPRI) < 0) {
		log_msg(LOG_ERROR, "event-base-failed");
		if (base != NULL)
			event_base_free(base);
		return NULL;
	}
	return base;
}

static void
daemon_free(struct daemon *d)
{
	struct event **evs[] = { &d->ev_signal, &d->ev_drain, &d->ev_watchdog };
	size_t i;

	for (i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		if (*evs[i] != NULL)
			event_free(*evs[i]);
	/* the reverse of daemon_run: connections, then jobs, then the pool */
	tick_free(d->tick);
	http_free(d->http);
	if (d->peers != NULL)
		peers_free(d->peers);
	work_free(d->work);
	jobs_free(d->jobs);
	if (d->base != NULL)
		event_base_free(d->base);
	if (d->signal_fd >= 0)
		close(d->signal_fd);
	free(d->peer_buf);
	config_free(d->cfg);
}

int
daemon_run(struct config *cfg, const char *config_path, char *const *sets, size_t nsets)
{
	struct daemon d;
	struct jobs_callbacks jcb;
	struct log_line *l;
	evutil_socket_t work_fd = -1, peer_fd = -1, http_fd = -1;
	int rc = DAEMON_EXIT_RUNTIME;

	memset(&d, 0, sizeof(d));
	d.signal_fd = -1;
	d.cfg = cfg;
	d.config_path = config_path;
	d.sets = sets;
	d.nsets = nsets;
	d.start_ns = now_ns();
	signal(SIGPIPE, SIG_IGN);
	/* the default 50 us timer slack would be most of a tick's lateness;
	 * workers keep the system's: a new thread starts from its creator's
	 * default slack, not the current one set here */
	prctl(PR_SET_TIMERSLACK, (unsigned long)cfg->timer_slack_ns, 0, 0, 0);
	if ((d.base = daemon_base_new()) == NULL || daemon_signals_start(&d) < 0)
		goto out;

	if ((work_fd = listen_open("work", cfg->work_listen)) < 0 ||
	    (peer_fd = listen_open("peer", cfg->peer_listen)) < 0)
		goto out;
	if (cfg->http_listen[0] != '\0' &&
	    (http_fd = listen_open("http", cfg->http_listen)) < 0)
		goto out;

	if (cfg->pool_mode == POOL_MODE_INLINE) {
		l = log_begin(LOG_WARN, "pool-inline");
		log_str(l, "detail", "jobs run on the loop thread: heartbeats stall "
		    "while a job runs (demonstration only)");
		log_end(l);
	}
	jcb.deliver = daemon_deliver;
	jcb.finished = daemon_job_finished;
	jcb.committed = daemon_committed;
	jcb.arg = &d;
	if ((d.jobs = jobs_new(d.base, cfg, DAEMON_PRI_DONE, &jcb)) == NULL)
		goto out;
	d.work = work_new(d.base, cfg, d.jobs, DAEMON_PRI_IO, daemon_status_cb, &d);
	rc = work_listen(d.work, work_fd);
	work_fd = -1;
	if (rc < 0) {
		rc = DAEMON_EXIT_RUNTIME;
		goto out;
	}
	rc = DAEMON_EXIT_RUNTIME;
	d.peers = peers_new(d.base, cfg, DAEMON_PRI_TICK);
	if (peers_listen(d.peers, peer_fd) < 0)
		goto out;
	peer_fd = -1;
	if (http_fd >= 0) {
		d.http = http_new(d.base, http_fd, cfg, DAEMON_PRI_IO, daemon_status_cb, &d);
		http_fd = -1;
		if (d.http == NULL)
			goto out;
	}
	daemon_tick_config(&d);
	d.tick = tick_new(d.base, cfg->heartbeat_interval_ms, DAEMON_PRI_TICK,
	    daemon_tick, &d);
	daemon_watchdog_start(&d);

	l = log_begin(LOG_INFO, "ready");
	log_str(l, "node", cfg->node_name);
	log_str(l, "version", PACKAGE_VERSION);
	log_uint(l, "threads", cfg->pool_mode == POOL_MODE_INLINE ? 0 : cfg->threads);
	log_str(l, "pool_mode", cfg->pool_mode == POOL_MODE_INLINE ? "inline" : "threads");
	log_uint(l, "peers", cfg->npeers);
	log_uint(l, "heartbeat_interval_ms", cfg->heartbeat_interval_ms);
	log_end(l);
	daemon_notify("READY=1");

	if (event_base_dispatch(d.base) < 0) {
		log_msg(LOG_ERROR, "event-loop-failed");
		goto out;
	}
	rc = DAEMON_EXIT_OK;
	{
		struct hb_status st;

		daemon_status(&d, &st, 0);
		l = log_begin(LOG_INFO, "stopped");
		log_uint(l, "jobs_cancelled", status_outcomes(&st, JOB_SHUTDOWN));
		log_end(l);
	}
out:
	if (work_fd >= 0)
		close(work_fd);
	if (peer_fd >= 0)
		close(peer_fd);
	if (http_fd >= 0)
		close(http_fd);
	daemon_free(&d);
	return rc;
}
