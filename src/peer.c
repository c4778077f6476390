/*
 * peer.c - heartbeat links (interface.md section 5).
 *
 * DESIGN
 *
 * Outbound: one struct peer per configured peer, in config order. A link
 * owns at most one bufferevent at a time. It connects through a shared
 * evdns_base (names or numeric addresses), sends "HELLO <node> 1" and waits
 * for "WELCOME <name> 1"; until then no HB goes out and a handshake timeout
 * (peer_timeout_ms) bounds the attempt. peers_tick, driven by the tick timer,
 * sends "HB <seq> <t> lag_us=N" on every welcomed link and runs the pure
 * state machine of liveness.c; ACKs are fed to it with the clock read at the
 * time of reading. Every failure goes through peer_link_close(), which frees
 * the bufferevent, reports a lost connection to liveness (peer-down when the
 * peer was up or suspect) and arms the reconnect timer with capped
 * exponential backoff; the backoff is reset when the first ACK on a
 * connection brings the peer up. A peer that goes down on a still open
 * connection (no ACKs) is closed and reconnected the same way.
 *
 * Self-awareness: when the tick itself fired late (our loop stalled), the
 * ACKs may well be sitting unread in our socket buffers; liveness_extend
 * pushes every deadline back by the stall and msg=local-stall is logged
 * instead of blaming the peers.
 *
 * Inbound: an evconnlistener on the peer_listen socket; one struct peer_in
 * per connection (at most PEER_IN_MAX). The first line must be HELLO
 * (answered WELCOME), then every HB is answered with ACK at once. Anything
 * else gets "ERR bad-request ..." and the connection is closed once that
 * line has been flushed: peer_in_finish waits for the output to drain,
 * shuts down our side and discards input until the peer's EOF (or a short
 * linger), so unread input cannot turn the close into a reset that loses
 * the ERR line. A peer that does not read its ACKs stops being read; one
 * that goes quiet for long is dropped. Accept failures (EMFILE ...) pause
 * the listener for a second instead of spinning.
 *
 * Every peer bufferevent and timer runs at the priority given to
 * peers_new (the daemon's highest), so heartbeats and ACKs are never
 * queued behind client I/O. Lines are bounded by
 * PEER_LINE_MAX and reads by a high watermark, which also bounds the work
 * done per callback.
 *
 * Known limit (libevent 2.1): a host name lookup still in flight when
 * peers_free runs is cancelled by a deferred callback that never runs once
 * the loop has stopped, so its few hundred bytes are left to exit. Numeric
 * addresses and /etc/hosts names resolve synchronously and never hit this.
 */

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "backoff.h"
#include "config.h"
#include "liveness.h"
#include "log.h"
#include "peer.h"
#include "proto.h"
#include "util.h"

#define PEER_LINE_MAX 1024		/* longest peer-protocol line */
#define PEER_READ_HIGHWAT (2 * PEER_LINE_MAX)
#define PEER_OUT_MAX (64 * 1024)	/* output queued for a peer not reading */
#define PEER_MSG_MAX 256		/* one formatted protocol line */
#define PEER_HOST_MAX 256
#define PEER_IN_MAX 256			/* inbound peer connections */
#define PEER_IN_HELLO_MS 10000		/* to say HELLO after connecting */
#define PEER_IN_IDLE_FACTOR 10		/* idle inbound: x peer_timeout_ms ... */
#define PEER_IN_IDLE_MIN_MS 30000	/* ... but at least this */
#define PEER_LINGER_MS 5000		/* to flush a last line before closing */
#define PEER_ACCEPT_PAUSE_MS 1000	/* listener pause after accept fails */
#define PEER_BACKOFF_MIN_NS (100 * HB_NS_PER_MS)
#define PEER_BACKOFF_MAX_NS (5000 * HB_NS_PER_MS)
#define PEER_KEEPALIVE_CNT 3
#define PEER_DNS_TIMEOUT "2"		/* seconds per DNS attempt */
#define PEER_DNS_ATTEMPTS "2"

/* An outbound link to one configured peer. */
struct peer {
	struct peers *ps;
	char *name;
	char *addr;
	char host[PEER_HOST_MAX];
	uint16_t port;
	struct bufferevent *bev;	/* NULL between connections */
	struct event *ev_retry;
	int tcp_up;			/* TCP connected, HELLO sent */
	int welcomed;			/* WELCOME seen: HBs flow */
	int acked;			/* an ACK arrived on this connection */
	int in_connect;			/* inside connect_hostname */
	int connect_failed;		/* ... and it failed synchronously */
	const char *last_fail;		/* why the last attempt failed */
	uint64_t seq;			/* last HB sent, across connections */
	struct liveness lv;
	struct backoff bo;
};

/* An inbound connection from a peer's outbound link. */
struct peer_in {
	struct peers *ps;
	LIST_ENTRY(peer_in) entry;
	struct bufferevent *bev;
	int hello;			/* HELLO seen */
	int closing;			/* flushing a last line, then close */
	int paused;			/* reading stopped: ACKs not read */
	int eof;			/* the peer shut down its side */
	int shut;			/* we shut down ours (closing) */
	const char *close_reason;	/* for the close after the flush */
	char addr[HB_ADDRSTRLEN];
	char name[CONFIG_NAME_MAX + 1];
};

struct peers {
	struct event_base *base;
	int priority;			/* of every event and bufferevent */
	struct evdns_base *dns;
	struct peer **links;		/* config order */
	size_t nlinks;
	char *node_name;
	uint64_t interval_ns, timeout_ns;
	uint32_t timeout_ms;
	uint64_t lag_ns;		/* lateness of the last tick */

	struct evconnlistener *lev;
	struct event *ev_accept;	/* re-enables the paused listener */
	LIST_HEAD(, peer_in) ins;
	unsigned nins;
	int refusing;			/* at PEER_IN_MAX, logged once */
};

static void peer_link_connect(struct peer *p);
static void peer_in_close(struct peer_in *c, const char *reason);

static void
peer_tv_ms(struct timeval *tv, uint64_t ms)
{
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
}

static void
peer_tv_ns(struct timeval *tv, uint64_t ns)
{
	tv->tv_sec = (time_t)(ns / 1000000000ull);
	tv->tv_usec = (suseconds_t)(ns % 1000000000ull / 1000);
}

/*
 * evdns warnings (a missing resolv.conf, failing nameservers) are debug
 * lines; its tracing is dropped.
 */
static void
peer_dns_log(int is_warning, const char *msg)
{
	struct log_line *l;

	if (!is_warning)
		return;
	l = log_begin(LOG_DEBUG, "dns-warning");
	log_str(l, "detail", msg);
	log_end(l);
}

/*
 * TCP_NODELAY for the small lines, and keepalive plus a user timeout so a
 * dead path is noticed by the kernel within about peer_timeout_ms too.
 */
static void
peer_sockopts(evutil_socket_t fd, uint32_t timeout_ms)
{
	int on = 1, idle, cnt = PEER_KEEPALIVE_CNT;
	unsigned int ut = timeout_ms;

	idle = (int)(timeout_ms / 1000 / (PEER_KEEPALIVE_CNT + 1));
	if (idle < 1)
		idle = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
#ifdef TCP_KEEPIDLE
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
#endif
#ifdef TCP_KEEPINTVL
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &idle, sizeof(idle));
#endif
#ifdef TCP_KEEPCNT
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
#endif
#ifdef TCP_USER_TIMEOUT
	(void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof(ut));
#endif
	(void)cnt;
	(void)ut;
}

/* Log a state change of liveness as peer-up, peer-suspect or peer-down. */
static void
peer_report(struct peer *p, enum liveness_event ev)
{
	struct log_line *l;
	const char *reason;

	switch (ev) {
	case LV_UP:
		l = log_begin(LOG_INFO, "peer-up");
		log_str(l, "peer", p->name);
		log_str(l, "addr", p->addr);
		log_uint(l, "rtt_us", p->lv.rtt_ns / HB_NS_PER_US);
		log_end(l);
		break;
	case LV_SUSPECT:
		l = log_begin(LOG_WARN, "peer-suspect");
		log_str(l, "peer", p->name);
		log_str(l, "addr", p->addr);
		log_str(l, "reason", "ack-overdue");
		log_end(l);
		break;
	case LV_DOWN:
		/* never connected: say why the attempts failed */
		reason = p->lv.reason != NULL ? p->lv.reason : "timeout";
		if (!p->welcomed && p->last_fail != NULL)
			reason = p->last_fail;
		l = log_begin(LOG_WARN, "peer-down");
		log_str(l, "peer", p->name);
		log_str(l, "addr", p->addr);
		log_str(l, "reason", reason);
		log_end(l);
		break;
	case LV_NONE:
		break;
	}
}

/*
 * The one way a connection of a link ends: free it, tell liveness when the
 * peer was up or suspect (a failed connect keeps connecting / down as it
 * is), and reconnect after the next backoff delay. reason is static.
 */
static void
peer_link_close(struct peer *p, const char *reason, const char *detail)
{
	struct log_line *l;
	struct timeval tv;
	uint64_t delay;

	if (p->bev != NULL) {
		bufferevent_free(p->bev);
		p->bev = NULL;
	}
	p->tcp_up = p->welcomed = p->acked = 0;
	p->last_fail = reason;
	if (p->lv.state == PEER_UP || p->lv.state == PEER_SUSPECT)
		peer_report(p, liveness_on_lost(&p->lv, now_ns(), reason));

	delay = backoff_next(&p->bo);
	peer_tv_ns(&tv, delay);
	event_add(p->ev_retry, &tv);

	l = log_begin(LOG_DEBUG, "peer-close");
	log_str(l, "peer", p->name);
	log_str(l, "addr", p->addr);
	log_str(l, "reason", reason);
	if (detail != NULL)
		log_str(l, "detail", detail);
	log_uint(l, "retry_ms", delay / HB_NS_PER_MS);
	log_end(l);
}

/* Queue one HB, unless the peer has stopped reading (liveness notices). */
static void
peer_link_send_hb(struct peer *p)
{
	char buf[PEER_MSG_MAX];
	uint64_t t;
	int n;

	if (evbuffer_get_length(bufferevent_get_output(p->bev)) > PEER_OUT_MAX)
		return;
	t = now_ns();
	p->seq++;
	n = proto_fmt_hb(buf, sizeof(buf), p->seq, t,
	    p->ps->lag_ns / HB_NS_PER_US);
	if (n <= 0 || bufferevent_write(p->bev, buf, (size_t)n) == -1)
		return;
	liveness_on_sent(&p->lv, p->seq, t);
}

/* One line from the peer: WELCOME first, then ACKs. Returns 0 or -1. */
static int
peer_link_line(struct peer *p, char *line)
{
	struct proto_peer_msg m;
	struct log_line *l;
	uint64_t now = now_ns();
	enum liveness_event ev;

	if (proto_parse_peer(line, &m) == -1)
		return -1;
	if (!p->welcomed) {
		if (m.type != PROTO_WELCOME)
			return -1;
		p->welcomed = 1;
		p->last_fail = NULL;
		bufferevent_set_timeouts(p->bev, NULL, NULL);
		liveness_on_connected(&p->lv, now);
		l = log_begin(LOG_DEBUG, "peer-connected");
		log_str(l, "peer", p->name);
		log_str(l, "addr", p->addr);
		log_str(l, "remote", m.name);
		log_end(l);
		/* the first HB now, not a whole interval later */
		peer_link_send_hb(p);
		return 0;
	}
	if (m.type != PROTO_ACK)
		return -1;
	ev = liveness_on_ack(&p->lv, m.seq, m.t, now);
	if (!p->acked && p->lv.state == PEER_UP) {
		p->acked = 1;
		backoff_reset(&p->bo);
	}
	peer_report(p, ev);
	return 0;
}

static void
peer_link_read_cb(struct bufferevent *bev, void *arg)
{
	struct peer *p = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char *line;
	size_t n;
	int r;

	while ((line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF)) != NULL) {
		r = n > PEER_LINE_MAX ? -1 : peer_link_line(p, line);
		free(line);
		if (r == -1) {
			peer_link_close(p, "bad-reply", NULL);
			return;
		}
	}
	if (evbuffer_get_length(in) > PEER_LINE_MAX)
		peer_link_close(p, "bad-reply", "line too long");
}

/* TCP is up: socket options, the priority (the fd was set late), HELLO. */
static void
peer_link_connected(struct peer *p)
{
	char buf[PEER_MSG_MAX];
	int n;

	p->tcp_up = 1;
	bufferevent_priority_set(p->bev, p->ps->priority);
	peer_sockopts(bufferevent_getfd(p->bev), p->ps->timeout_ms);
	n = proto_fmt_hello(buf, sizeof(buf), "HELLO", p->ps->node_name);
	if (n > 0)
		bufferevent_write(p->bev, buf, (size_t)n);
}

static void
peer_link_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct peer *p = arg;
	const char *reason, *detail = NULL;
	int err = EVUTIL_SOCKET_ERROR(), dnserr;

	if (p->in_connect) {
		/* connect_hostname failed synchronously; peer_link_connect closes */
		p->connect_failed = 1;
		return;
	}
	if (what & BEV_EVENT_CONNECTED) {
		peer_link_connected(p);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		reason = p->tcp_up ? "handshake-timeout" : "connect-timeout";
	} else if (what & BEV_EVENT_EOF) {
		reason = "connection-lost";
		detail = "eof";
	} else {
		reason = p->tcp_up ? "connection-lost" : "connect-failed";
		if ((dnserr = bufferevent_socket_get_dns_error(bev)) != 0) {
			reason = "resolve-failed";
			detail = evutil_gai_strerror(dnserr);
		} else if (err != 0)
			detail = evutil_socket_error_to_string(err);
	}
	peer_link_close(p, reason, detail);
}

/* Start a connection attempt; any failure goes through peer_link_close. */
static void
peer_link_connect(struct peer *p)
{
	struct peers *ps = p->ps;
	struct timeval tv;
	int r;

	p->bev = bufferevent_socket_new(ps->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (p->bev == NULL) {
		peer_link_close(p, "connect-failed", "bufferevent_socket_new");
		return;
	}
	bufferevent_setcb(p->bev, peer_link_read_cb, NULL, peer_link_event_cb, p);
	bufferevent_setwatermark(p->bev, EV_READ, 0, PEER_READ_HIGHWAT);
	/* bounds the connect and the wait for WELCOME; cleared after it */
	peer_tv_ms(&tv, ps->timeout_ms);
	bufferevent_set_timeouts(p->bev, &tv, &tv);
	bufferevent_enable(p->bev, EV_READ | EV_WRITE);

	p->in_connect = 1;
	p->connect_failed = 0;
	r = bufferevent_socket_connect_hostname(p->bev, ps->dns, AF_UNSPEC,
	    p->host, p->port);
	p->in_connect = 0;
	if (r == -1 || p->connect_failed) {
		peer_link_close(p, "connect-failed", NULL);
		return;
	}
	/* a numeric address has its fd by now; a name gets it at CONNECTED */
	bufferevent_priority_set(p->bev, ps->priority);
}

static void
peer_link_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	peer_link_connect(arg);
}

/* A new link; it connects at once. */
static struct peer *
peer_link_new(struct peers *ps, const struct config_peer *cp, size_t idx)
{
	struct peer *p = xcalloc(1, sizeof(*p));
	struct log_line *l;
	uint64_t now = now_ns();

	p->ps = ps;
	p->name = xstrdup(cp->name);
	p->addr = xstrdup(cp->addr);
	if (addr_split(p->addr, p->host, sizeof(p->host), &p->port) == -1) {
		/* config validated it; if not, every attempt fails and retries */
		l = log_begin(LOG_WARN, "peer-bad-addr");
		log_str(l, "peer", p->name);
		log_str(l, "addr", p->addr);
		log_end(l);
		p->host[0] = '\0';
		p->port = 0;
	}
	liveness_init(&p->lv, now, ps->interval_ns, ps->timeout_ns);
	backoff_init(&p->bo, PEER_BACKOFF_MIN_NS, PEER_BACKOFF_MAX_NS,
	    now ^ (uint64_t)idx);
	p->ev_retry = evtimer_new(ps->base, peer_link_retry_cb, p);
	if (p->ev_retry == NULL) {
		fprintf(stderr, "heartbeatd: evtimer_new failed\n");
		abort();
	}
	event_priority_set(p->ev_retry, ps->priority);
	peer_link_connect(p);
	return p;
}

static void
peer_link_free(struct peer *p)
{
	if (p->bev != NULL)
		bufferevent_free(p->bev);
	event_free(p->ev_retry);
	free(p->name);
	free(p->addr);
	free(p);
}

/* Inbound: reply with one formatted line. */
static void
peer_in_write(struct peer_in *c, const char *buf, int n)
{
	if (n > 0)
		bufferevent_write(c->bev, buf, (size_t)n);
}

/*
 * Close after the pending output (there is some) has been flushed: then
 * shut down our side and wait briefly for the peer's EOF, discarding its
 * input, so unread data does not turn the close into a reset that loses
 * the last line.
 */
static void
peer_in_finish(struct peer_in *c, const char *reason)
{
	struct timeval tv;

	c->closing = 1;
	c->close_reason = reason;
	c->paused = 0;
	peer_tv_ms(&tv, PEER_LINGER_MS);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	if (!c->eof)
		bufferevent_enable(c->bev, EV_READ);
}

/* "ERR bad-request text", then close once it is flushed. */
static void
peer_in_reject(struct peer_in *c, const char *text)
{
	char buf[PEER_MSG_MAX];
	struct log_line *l;

	l = log_begin(LOG_DEBUG, "peer-in-rejected");
	log_str(l, "addr", c->addr);
	log_str(l, "reason", text);
	log_end(l);
	peer_in_write(c, buf, proto_fmt_err(buf, sizeof(buf), "bad-request", text));
	peer_in_finish(c, "rejected");
}

/* One line from an inbound peer. Returns 0, or -1 once rejected. */
static int
peer_in_line(struct peer_in *c, char *line)
{
	struct proto_peer_msg m;
	struct log_line *l;
	struct timeval tv;
	char buf[PEER_MSG_MAX];
	uint64_t idle_ms;

	if (proto_parse_peer(line, &m) == -1) {
		peer_in_reject(c, c->hello ? "expected HB" : "expected HELLO");
		return -1;
	}
	if (!c->hello) {
		if (m.type != PROTO_HELLO) {
			peer_in_reject(c, "expected HELLO");
			return -1;
		}
		c->hello = 1;
		snprintf(c->name, sizeof(c->name), "%s", m.name);
		idle_ms = (uint64_t)c->ps->timeout_ms * PEER_IN_IDLE_FACTOR;
		if (idle_ms < PEER_IN_IDLE_MIN_MS)
			idle_ms = PEER_IN_IDLE_MIN_MS;
		peer_tv_ms(&tv, idle_ms);
		bufferevent_set_timeouts(c->bev, &tv, &tv);
		peer_in_write(c, buf, proto_fmt_hello(buf, sizeof(buf), "WELCOME",
		    c->ps->node_name));
		l = log_begin(LOG_DEBUG, "peer-in-hello");
		log_str(l, "addr", c->addr);
		log_str(l, "remote", c->name);
		log_end(l);
		return 0;
	}
	if (m.type != PROTO_HB) {
		peer_in_reject(c, "expected HB");
		return -1;
	}
	peer_in_write(c, buf, proto_fmt_ack(buf, sizeof(buf), m.seq, m.t));
	return 0;
}

static void
peer_in_read_cb(struct bufferevent *bev, void *arg)
{
	struct peer_in *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char *line;
	size_t n;
	int r;

	if (c->closing) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	while ((line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF)) != NULL) {
		if (n > PEER_LINE_MAX) {
			peer_in_reject(c, "line too long");
			r = -1;
		} else
			r = peer_in_line(c, line);
		free(line);
		if (r == -1) {
			evbuffer_drain(in, evbuffer_get_length(in));
			return;
		}
	}
	if (evbuffer_get_length(in) > PEER_LINE_MAX) {
		peer_in_reject(c, "line too long");
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	/* the peer does not read its ACKs: stop reading until they drain */
	if (evbuffer_get_length(bufferevent_get_output(bev)) > PEER_OUT_MAX) {
		c->paused = 1;
		bufferevent_disable(bev, EV_READ);
	}
}

/* The output drained: go on closing, or resume a paused reader. */
static void
peer_in_write_cb(struct bufferevent *bev, void *arg)
{
	struct peer_in *c = arg;

	if (c->closing) {
		if (c->eof) {
			peer_in_close(c, c->close_reason);
			return;
		}
		if (!c->shut) {
			c->shut = 1;
			(void)shutdown(bufferevent_getfd(bev), SHUT_WR);
		}
		return;
	}
	if (c->paused) {
		c->paused = 0;
		bufferevent_enable(bev, EV_READ);
	}
}

static void
peer_in_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct peer_in *c = arg;
	int pending;

	pending = evbuffer_get_length(bufferevent_get_output(bev)) > 0;
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
		c->eof = 1;
		if (!pending) {
			peer_in_close(c, c->closing ? c->close_reason : "eof");
			return;
		}
		/* half-closed: still deliver what we owe */
		if (!c->closing)
			peer_in_finish(c, "eof");
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		peer_in_close(c, c->closing ? c->close_reason : "idle");
	else
		peer_in_close(c, c->closing ? c->close_reason : "error");
}

/* The one destructor of an inbound connection. */
static void
peer_in_close(struct peer_in *c, const char *reason)
{
	struct peers *ps = c->ps;
	struct log_line *l;

	l = log_begin(LOG_DEBUG, "peer-in-close");
	log_str(l, "addr", c->addr);
	if (c->hello)
		log_str(l, "remote", c->name);
	log_str(l, "reason", reason);
	log_end(l);
	LIST_REMOVE(c, entry);
	ps->nins--;
	if (ps->nins < PEER_IN_MAX)
		ps->refusing = 0;
	bufferevent_free(c->bev);
	free(c);
}

static void
peer_accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct peers *ps = arg;
	struct peer_in *c;
	struct log_line *l;
	struct timeval tv;
	char addr[HB_ADDRSTRLEN];

	(void)lev;
	(void)salen;
	addr_format(sa, addr, sizeof(addr));
	if (ps->nins >= PEER_IN_MAX) {
		l = log_begin(ps->refusing ? LOG_DEBUG : LOG_WARN, "peer-in-refused");
		log_str(l, "addr", addr);
		log_str(l, "reason", "too-many-connections");
		log_uint(l, "max", PEER_IN_MAX);
		log_end(l);
		ps->refusing = 1;
		evutil_closesocket(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->ps = ps;
	memcpy(c->addr, addr, sizeof(c->addr));
	c->bev = bufferevent_socket_new(ps->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		evutil_closesocket(fd);
		free(c);
		return;
	}
	LIST_INSERT_HEAD(&ps->ins, c, entry);
	ps->nins++;
	peer_sockopts(fd, ps->timeout_ms);
	bufferevent_priority_set(c->bev, ps->priority);
	bufferevent_setcb(c->bev, peer_in_read_cb, peer_in_write_cb,
	    peer_in_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, PEER_READ_HIGHWAT);
	peer_tv_ms(&tv, PEER_IN_HELLO_MS);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* accept(2) failed (EMFILE, ENFILE ...): pause instead of spinning. */
static void
peer_accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct peers *ps = arg;
	struct log_line *l;
	struct timeval tv;
	int err = EVUTIL_SOCKET_ERROR();

	l = log_begin(LOG_WARN, "peer-accept-paused");
	log_errno(l, err);
	log_uint(l, "pause_ms", PEER_ACCEPT_PAUSE_MS);
	log_end(l);
	evconnlistener_disable(lev);
	peer_tv_ms(&tv, PEER_ACCEPT_PAUSE_MS);
	event_add(ps->ev_accept, &tv);
}

static void
peer_accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct peers *ps = arg;

	(void)fd;
	(void)what;

	if (ps->lev != NULL)
		evconnlistener_enable(ps->lev);
}

/* Timing and names from a config (startup and reload). */
static void
peers_apply(struct peers *ps, const struct config *cfg)
{
	free(ps->node_name);
	ps->node_name = xstrdup(cfg->node_name);
	ps->interval_ns = (uint64_t)cfg->heartbeat_interval_ms * HB_NS_PER_MS;
	ps->timeout_ns = (uint64_t)cfg->peer_timeout_ms * HB_NS_PER_MS;
	ps->timeout_ms = cfg->peer_timeout_ms;
}

struct peers *
peers_new(struct event_base *base, const struct config *cfg, int priority)
{
	struct peers *ps;
	size_t i;

	ps = xcalloc(1, sizeof(*ps));
	ps->base = base;
	ps->priority = priority;
	LIST_INIT(&ps->ins);
	peers_apply(ps, cfg);

	evdns_set_log_fn(peer_dns_log);
	/* no resolv.conf: no default 127.0.0.1 nameserver to retry forever */
	ps->dns = evdns_base_new(ps->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
	    EVDNS_BASE_DISABLE_WHEN_INACTIVE | EVDNS_BASE_NAMESERVERS_NO_DEFAULT);
	if (ps->dns == NULL) {
		/* numeric addresses and localhost still work */
		ps->dns = evdns_base_new(ps->base,
		    EVDNS_BASE_DISABLE_WHEN_INACTIVE);
		if (ps->dns != NULL)
			evdns_base_load_hosts(ps->dns, NULL);
	}
	if (ps->dns == NULL) {
		log_msg(LOG_ERROR, "peer-dns-failed");
		peers_free(ps);
		return NULL;
	}
	evdns_base_set_option(ps->dns, "timeout:", PEER_DNS_TIMEOUT);
	evdns_base_set_option(ps->dns, "attempts:", PEER_DNS_ATTEMPTS);
	/* 0x20 case randomization trips some resolvers and middleboxes */
	evdns_base_set_option(ps->dns, "randomize-case:", "0");

	ps->ev_accept = evtimer_new(ps->base, peer_accept_resume_cb, ps);
	if (ps->ev_accept == NULL) {
		log_msg(LOG_ERROR, "peer-timer-failed");
		peers_free(ps);
		return NULL;
	}
	event_priority_set(ps->ev_accept, ps->priority);

	ps->links = xcalloc(cfg->npeers, sizeof(*ps->links));
	for (i = 0; i < cfg->npeers; i++)
		ps->links[ps->nlinks++] = peer_link_new(ps, &cfg->peers[i], i);
	return ps;
}

void
peers_free(struct peers *ps)
{
	size_t i;

	if (ps == NULL)
		return;
	for (i = 0; i < ps->nlinks; i++)
		peer_link_free(ps->links[i]);
	free(ps->links);
	while (!LIST_EMPTY(&ps->ins))
		peer_in_close(LIST_FIRST(&ps->ins), "shutdown");
	if (ps->lev != NULL)
		evconnlistener_free(ps->lev);
	if (ps->ev_accept != NULL)
		event_free(ps->ev_accept);
	if (ps->dns != NULL)
		evdns_base_free(ps->dns, 0);
	free(ps->node_name);
	free(ps);
}

int
peers_listen(struct peers *ps, evutil_socket_t fd)
{
	struct log_line *l;

	if (ps == NULL)
		return -1;	/* peers_new failed and said why */
	if (ps->lev != NULL) {
		log_msg(LOG_ERROR, "peer-listen-twice");
		return -1;
	}
	ps->lev = evconnlistener_new(ps->base, peer_accept_cb, ps,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (ps->lev == NULL) {
		l = log_begin(LOG_ERROR, "peer-listen-failed");
		log_errno(l, errno);
		log_end(l);
		return -1;
	}
	evconnlistener_set_error_cb(ps->lev, peer_accept_error_cb);
	return 0;
}

void
peers_tick(struct peers *ps, uint64_t now, uint64_t lag_ns)
{
	struct peer *p;
	struct log_line *l;
	enum liveness_event ev;
	unsigned spared = 0;
	uint64_t cur;
	size_t i;

	ps->lag_ns = lag_ns;
	/* our own stall, not the peers': it kept us from reading ACKs */
	if (lag_ns > 0 && lag_ns >= ps->interval_ns / 2) {
		for (i = 0; i < ps->nlinks; i++)
			if (liveness_extend(&ps->links[i]->lv, lag_ns, now))
				spared++;
		if (spared > 0) {
			l = log_begin(LOG_WARN, "local-stall");
			log_uint(l, "lag_us", lag_ns / HB_NS_PER_US);
			log_uint(l, "peers", spared);
			log_end(l);
		}
	}

	for (i = 0; i < ps->nlinks; i++)
		if (ps->links[i]->welcomed)
			peer_link_send_hb(ps->links[i]);

	/* after the sends: never a time before a send time just recorded */
	cur = now_ns();
	if (cur < now)
		cur = now;
	for (i = 0; i < ps->nlinks; i++) {
		p = ps->links[i];
		ev = liveness_check(&p->lv, cur);
		peer_report(p, ev);
		/* down on an open connection (or a hung attempt): start over */
		if (ev == LV_DOWN && p->bev != NULL)
			peer_link_close(p, "timeout", NULL);
	}
}

void
peers_reconfigure(struct peers *ps, const struct config *cfg)
{
	struct peer **links, *p;
	struct log_line *l;
	size_t i, j, n = 0;

	peers_apply(ps, cfg);
	links = xcalloc(cfg->npeers, sizeof(*links));
	for (i = 0; i < cfg->npeers; i++) {
		p = NULL;
		for (j = 0; j < ps->nlinks; j++) {
			if (ps->links[j] != NULL &&
			    strcmp(ps->links[j]->name, cfg->peers[i].name) == 0 &&
			    strcmp(ps->links[j]->addr, cfg->peers[i].addr) == 0) {
				p = ps->links[j];
				ps->links[j] = NULL;
				break;
			}
		}
		if (p != NULL) {
			liveness_set_timing(&p->lv, ps->interval_ns, ps->timeout_ns);
			if (p->tcp_up)
				peer_sockopts(bufferevent_getfd(p->bev), ps->timeout_ms);
		} else {
			p = peer_link_new(ps, &cfg->peers[i], i);
			l = log_begin(LOG_DEBUG, "peer-added");
			log_str(l, "peer", p->name);
			log_str(l, "addr", p->addr);
			log_end(l);
		}
		links[n++] = p;
	}
	for (j = 0; j < ps->nlinks; j++) {
		if ((p = ps->links[j]) == NULL)
			continue;
		l = log_begin(LOG_DEBUG, "peer-removed");
		log_str(l, "peer", p->name);
		log_str(l, "addr", p->addr);
		log_end(l);
		peer_link_free(p);
	}
	free(ps->links);
	ps->links = links;
	ps->nlinks = n;
}

unsigned
peers_count(const struct peers *ps)
{
	return (unsigned)ps->nlinks;
}

unsigned
peers_up(const struct peers *ps)
{
	unsigned n = 0;
	size_t i;

	for (i = 0; i < ps->nlinks; i++)
		if (ps->links[i]->lv.state == PEER_UP)
			n++;
	return n;
}

void
peers_foreach(const struct peers *ps,
    void (*fn)(const struct peer_info *pi, void *arg), void *arg)
{
	const struct peer *p;
	struct peer_info pi;
	uint64_t now = now_ns();
	size_t i;

	for (i = 0; i < ps->nlinks; i++) {
		p = ps->links[i];
		pi.name = p->name;
		pi.addr = p->addr;
		pi.state = p->lv.state;
		pi.rtt_ns = p->lv.rtt_ns;
		pi.srtt_ns = p->lv.srtt_ns;
		if (p->lv.last_ack_ns == 0)
			pi.last_ack_ms = -1;
		else if (now > p->lv.last_ack_ns)
			pi.last_ack_ms = (int64_t)((now - p->lv.last_ack_ns) /
			    HB_NS_PER_MS);
		else
			pi.last_ack_ms = 0;
		fn(&pi, arg);
	}
}
