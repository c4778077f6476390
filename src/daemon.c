/*
 * daemon.c - the lifecycle. Modules are created in dependency order and
 * freed in reverse: listeners (bound, or inherited through socket
 * activation), work server, pool, peers, HTTP, tick; then "ready" and the
 * loop. Signals are blocked in every thread and read from a signalfd on the
 * loop thread, so no handler ever runs:
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
#include "http.h"
#include "job.h"
#include "log.h"
#include "metrics.h"
#include "peer.h"
#include "pool.h"
#include "tick.h"
#include "util.h"
#include "work.h"

#define DAEMON_DRAIN_POLL_MS 10		/* drain progress check while stopping */
#define DAEMON_FLUSH_MAX_NS (2000ull * HB_NS_PER_MS)	/* clients' last output */

static void
daemon_notify(const char *state)
{
#ifdef HAVE_SYSTEMD
	sd_notify(0, state);
#else
	(void)state;
#endif
}

/* The fd systemd passed for service (by FileDescriptorName), or -1. */
static int
daemon_activated_fd(const char *service)
{
#ifdef HAVE_SYSTEMD
	static int n = -1;
	static char **names;
	int i;

	if (n < 0 && (n = sd_listen_fds_with_names(1, &names)) < 0)
		n = 0;
	for (i = 0; i < n; i++)
		if (names != NULL && names[i] != NULL && strcmp(names[i], service) == 0)
			return SD_LISTEN_FDS_START + i;
#else
	(void)service;
#endif
	return -1;
}

/*
 * Bind (or take from socket activation, by name "work", "peer", "http") a
 * nonblocking listening socket for addr and log msg=listening service=NAME
 * addr=HOST:PORT with the port actually bound. Returns the fd or -1 after
 * logging.
 */
static evutil_socket_t
daemon_listen(const char *service, const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char bound[HB_ADDRSTRLEN];
	struct log_line *l;
	int fd, one = 1, activated = 0;

	if ((fd = daemon_activated_fd(service)) >= 0) {
		activated = 1;
		if (evutil_make_socket_nonblocking(fd) < 0 ||
		    evutil_make_socket_closeonexec(fd) < 0)
			goto fail;
	} else {
		if (addr_resolve(addr, 1, &ss, &len) < 0) {
			errno = EINVAL;
			goto fail;
		}
		fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			goto fail;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&ss, len) < 0 ||
		    listen(fd, SOMAXCONN) < 0)
			goto fail;
	}
	len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		goto fail;
	addr_format((struct sockaddr *)&ss, bound, sizeof(bound));
	l = log_begin(LOG_INFO, "listening");
	log_str(l, "service", service);
	log_str(l, "addr", bound);
	if (activated)
		log_bool(l, "socket_activated", 1);
	log_end(l);
	return fd;

fail:
	l = log_begin(LOG_ERROR, "listen-failed");
	log_str(l, "service", service);
	log_str(l, "addr", addr);
	log_errno(l, errno);
	log_end(l);
	if (fd >= 0 && !activated)
		close(fd);
	return -1;
}

/* Called while draining: finish when every job is back and clients flushed. */
static void
daemon_drain_check(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	uint64_t now = now_ns();

	(void)fd;
	(void)what;
	if (work_jobs_live(d->work) > 0) {
		if (now >= d->drain_deadline_ns && !d->drain_cancelled) {
			/* grace is over: cancel what is left, once */
			d->drain_cancelled = 1;
			pool_cancel_all(d->pool, JOB_SHUTDOWN);
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

void
daemon_job_finished(struct daemon *d)
{
	if (d->draining && work_jobs_live(d->work) == 0)
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
	log_uint(l, "jobs", work_jobs_live(d->work));
	log_uint(l, "grace_ms", d->cfg->shutdown_grace_ms);
	log_end(l);
	daemon_notify("STOPPING=1");
	work_drain(d->work);
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
	pool_set_queue_max(d->pool, new->queue_max);
	tick_reconfigure(d->tick);
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

/* Pat the systemd watchdog, but only while the heartbeat tick is on time. */
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
	if (ts.lag_ns < interval && now - ts.last_tick_ns < 2 * interval)
		daemon_notify("WATCHDOG=1");
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
	struct event_config *ec = event_config_new();
	struct event_base *base;

	/* a coarse clock would make sub-millisecond lateness unmeasurable */
	event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER);
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
	if (d->tick != NULL)
		tick_free(d->tick);
	if (d->http != NULL)
		http_free(d->http);
	if (d->peers != NULL)
		peers_free(d->peers);
	if (d->pool != NULL)
		pool_free(d->pool);
	if (d->work != NULL)
		work_free(d->work);
	if (d->base != NULL)
		event_base_free(d->base);
	if (d->signal_fd >= 0)
		close(d->signal_fd);
	metrics_close();
	config_free(d->cfg);
}

int
daemon_run(struct config *cfg, const char *config_path, char *const *sets, size_t nsets)
{
	struct daemon d;
	struct log_line *l;
	evutil_socket_t work_fd = -1, peer_fd = -1, http_fd = -1;
	int rc = DAEMON_EXIT_RUNTIME;

	memset(&d, 0, sizeof(d));
	d.signal_fd = -1;
	d.cfg = cfg;
	d.config_path = config_path;
	d.sets = sets;
	d.nsets = nsets;
	signal(SIGPIPE, SIG_IGN);
	/* the default 50 us timer slack would be most of a tick's lateness */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	metrics_init();
	if ((d.base = daemon_base_new()) == NULL || daemon_signals_start(&d) < 0)
		goto out;

	if ((work_fd = daemon_listen("work", cfg->work_listen)) < 0 ||
	    (peer_fd = daemon_listen("peer", cfg->peer_listen)) < 0)
		goto out;
	if (cfg->http_listen[0] != '\0' &&
	    (http_fd = daemon_listen("http", cfg->http_listen)) < 0)
		goto out;

	d.work = work_new(&d);
	if (work_listen(d.work, work_fd) < 0)
		goto out;
	work_fd = -1;
	if (cfg->pool_mode == POOL_MODE_INLINE) {
		l = log_begin(LOG_WARN, "pool-inline");
		log_str(l, "detail", "jobs run on the loop thread: heartbeats stall "
		    "while a job runs (demonstration only)");
		log_end(l);
	}
	d.pool = pool_new(d.base, cfg->pool_mode, cfg->threads, cfg->queue_max,
	    (int)cfg->worker_nice, DAEMON_PRI_DONE, work_job_done, d.work);
	if (d.pool == NULL)
		goto out;
	d.peers = peers_new(d.base, cfg, DAEMON_PRI_TICK);
	if (peers_listen(d.peers, peer_fd) < 0)
		goto out;
	peer_fd = -1;
	if (http_fd >= 0) {
		if ((d.http = http_new(&d, http_fd)) == NULL)
			goto out;
		http_fd = -1;
	}
	d.tick = tick_new(&d);
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
	l = log_begin(LOG_INFO, "stopped");
	log_uint(l, "jobs_cancelled", d.jobs_cancelled);
	log_end(l);
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
