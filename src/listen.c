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

#define LISTEN_STORED "stored-"	/* fd store names: "stored-work" ... */
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
 * (FDSTORE=1, named "stored-" and the service, so it is never taken for a
 * .socket unit's): a "systemctl restart" hands it back through LISTEN_FDS,
 * so no connection is refused while the daemon restarts. remove: drop the
 * stored one instead (its address is no longer the config's). Needs
 * FileDescriptorStoreMax= in the unit; harmless without.
 */
static void
listen_store(const char *service, int fd, int remove)
{
#ifdef HAVE_SYSTEMD
	char state[64];

	if (getenv("NOTIFY_SOCKET") == NULL)
		return;
	if (remove) {
		snprintf(state, sizeof(state), "FDSTOREREMOVE=1\nFDNAME="
		    LISTEN_STORED "%s", service);
		(void)sd_notify(0, state);
		return;
	}
	snprintf(state, sizeof(state), "FDSTORE=1\nFDNAME=" LISTEN_STORED "%s",
	    service);
	(void)sd_pid_notify_with_fds(0, 0, state, &fd, 1);
#else
	(void)service;
	(void)fd;
	(void)remove;
#endif
}

/*
 * Whether the listening socket fd is bound where addr says: same family
 * and address, and the same port unless addr asks for any (port 0).
 */
static int
listen_same_addr(int fd, const char *addr)
{
	struct sockaddr_storage want, have;
	socklen_t wlen = sizeof(want), hlen = sizeof(have);

	if (addr_resolve(addr, 1, &want, &wlen) < 0 ||
	    getsockname(fd, (struct sockaddr *)&have, &hlen) < 0 ||
	    want.ss_family != have.ss_family)
		return 0;
	if (want.ss_family == AF_INET) {
		struct sockaddr_in *w = (struct sockaddr_in *)&want;
		struct sockaddr_in *h = (struct sockaddr_in *)&have;

		return w->sin_addr.s_addr == h->sin_addr.s_addr &&
		    (w->sin_port == 0 || w->sin_port == h->sin_port);
	}
	if (want.ss_family == AF_INET6) {
		struct sockaddr_in6 *w = (struct sockaddr_in6 *)&want;
		struct sockaddr_in6 *h = (struct sockaddr_in6 *)&have;

		return memcmp(&w->sin6_addr, &h->sin6_addr, sizeof(w->sin6_addr)) == 0 &&
		    (w->sin6_port == 0 || w->sin6_port == h->sin6_port);
	}
	return 0;
}

evutil_socket_t
listen_open(const char *service, const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char bound[HB_ADDRSTRLEN];
	struct log_line *l;
	char stored[32];
	int fd, one = 1, activated = 0, kept = 0;

	snprintf(stored, sizeof(stored), LISTEN_STORED "%s", service);
	if ((fd = listen_activated_fd(service)) >= 0)
		activated = 1;		/* a .socket unit's: its address wins */
	else if ((fd = listen_activated_fd(stored)) >= 0) {
		/* ours from before a restart: only if still the config's */
		if (listen_same_addr(fd, addr))
			kept = 1;
		else {
			close(fd);
			listen_store(service, -1, 1);
			fd = -1;
		}
	}
	if (activated || kept) {
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
	if (!activated && !kept)
		listen_store(service, fd, 0);
	l = log_begin(LOG_INFO, "listening");
	log_str(l, "service", service);
	log_str(l, "addr", bound);
	if (activated)
		log_bool(l, "socket_activated", 1);
	if (kept)
		log_bool(l, "fd_store", 1);
	log_end(l);
	return fd;

fail:
	l = log_begin(LOG_ERROR, "listen-failed");
	log_str(l, "service", service);
	log_str(l, "addr", addr);
	log_errno(l, errno);
	log_end(l);
	if (fd >= 0 && !activated && !kept)
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
