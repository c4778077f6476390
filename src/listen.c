/*
 * listen.c - binding or adopting the listening sockets, and the one accept
 * loop all three ports share (see listen.h).
 *
 * The accept event is level-triggered: a callback takes at most
 * LISTEN_ACCEPT_MAX connections and returns; if more are waiting the socket
 * is still readable, and libevent looks at its timers before it runs the
 * callback again. So 10,000 clients arriving at once cost the heartbeat tick
 * one callback's worth of accepts, not the whole backlog.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "listen.h"
#include "log.h"
#include "util.h"

struct listen {
	evutil_socket_t fd;
	const char *service;		/* a string constant */
	listen_accept_fn fn;
	void *arg;
	struct event *ev_accept;
	struct event *ev_resume;	/* ends a pause after EMFILE & co */
	uint64_t warned_ns;		/* last accept-failed line */
	uint64_t failures;		/* since that line */
};

/* The fd systemd passed for service (by FileDescriptorName), or -1. */
static int
listen_activated_fd(const char *service)
{
#ifdef HAVE_SYSTEMD
	char **names = NULL;
	int i, n, fd = -1;

	/* unset_environment = 0: each of the three services looks it up */
	if ((n = sd_listen_fds_with_names(0, &names)) <= 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (names != NULL && names[i] != NULL && strcmp(names[i], service) == 0)
			fd = SD_LISTEN_FDS_START + i;
		if (names != NULL)
			free(names[i]);
	}
	free(names);
	return fd;
#else
	(void)service;
	return -1;
#endif
}

/*
 * Under systemd, keep a socket we bound in the service's fd store
 * (FDSTORE=1, named by service): a "systemctl restart" hands it back
 * through LISTEN_FDS, so no connection is refused while the daemon
 * restarts. Needs FileDescriptorStoreMax= in the unit; harmless without.
 */
static void
listen_store(const char *service, int fd)
{
#ifdef HAVE_SYSTEMD
	char state[64];

	if (getenv("NOTIFY_SOCKET") == NULL)
		return;
	snprintf(state, sizeof(state), "FDSTORE=1\nFDNAME=%s", service);
	(void)sd_pid_notify_with_fds(0, 0, state, &fd, 1);
#else
	(void)service;
	(void)fd;
#endif
}

evutil_socket_t
listen_open(const char *service, const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char bound[HB_ADDRSTRLEN];
	struct log_line *l;
	int fd, one = 1, activated = 0;

	if ((fd = listen_activated_fd(service)) >= 0) {
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
	if (!activated)
		listen_store(service, fd);
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

/* accept(2) is out of descriptors or memory: stop for a while, say so once. */
static void
listen_pause(struct listen *l, int err)
{
	struct timeval tv = { 0, LISTEN_PAUSE_MS * 1000 };
	uint64_t now = now_ns();
	struct log_line *ll;

	l->failures++;
	if (l->warned_ns == 0 || now - l->warned_ns >= LISTEN_WARN_MS * HB_NS_PER_MS) {
		ll = log_begin(LOG_WARN, "accept-failed");
		log_str(ll, "service", l->service);
		log_errno(ll, err);
		log_uint(ll, "pause_ms", LISTEN_PAUSE_MS);
		log_uint(ll, "failures", l->failures);
		log_end(ll);
		l->warned_ns = now;
		l->failures = 0;
	}
	event_del(l->ev_accept);
	event_add(l->ev_resume, &tv);
}

static void
listen_resume(evutil_socket_t fd, short what, void *arg)
{
	struct listen *l = arg;

	(void)fd;
	(void)what;
	event_add(l->ev_accept, NULL);
}

/* The socket is readable: take a bounded number of connections. */
static void
listen_accept(evutil_socket_t fd, short what, void *arg)
{
	struct listen *l = arg;
	struct sockaddr_storage ss;
	socklen_t len;
	int i, cfd;

	(void)what;
	for (i = 0; i < LISTEN_ACCEPT_MAX; i++) {
		len = sizeof(ss);
		cfd = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				listen_pause(l, errno);
			/* EAGAIN: the backlog is empty */
			return;
		}
		l->fn(cfd, (struct sockaddr *)&ss, l->arg);
	}
}

struct listen *
listen_new(struct event_base *base, evutil_socket_t fd, const char *service,
    int priority, listen_accept_fn fn, void *arg)
{
	struct listen *l = xcalloc(1, sizeof(*l));

	l->fd = fd;
	l->service = service;
	l->fn = fn;
	l->arg = arg;
	l->ev_accept = event_new(base, fd, EV_READ | EV_PERSIST, listen_accept, l);
	l->ev_resume = evtimer_new(base, listen_resume, l);
	if (l->ev_accept == NULL || l->ev_resume == NULL ||
	    event_priority_set(l->ev_accept, priority) < 0 ||
	    event_priority_set(l->ev_resume, priority) < 0 ||
	    event_add(l->ev_accept, NULL) < 0) {
		struct log_line *ll = log_begin(LOG_ERROR, "listen-failed");

		log_str(ll, "service", service);
		log_str(ll, "reason", "cannot watch the listening socket");
		log_end(ll);
		listen_free(l);
		return NULL;
	}
	return l;
}

void
listen_free(struct listen *l)
{
	if (l == NULL)
		return;
	if (l->ev_accept != NULL)
		event_free(l->ev_accept);
	if (l->ev_resume != NULL)
		event_free(l->ev_resume);
	if (l->fd >= 0)
		close(l->fd);
	free(l);
}
