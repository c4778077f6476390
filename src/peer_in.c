/*
 * peer_in.c - the inbound side of the peer protocol (interface.md section
 * 5): the peer_listen listener and the connections other nodes' outbound
 * links make to it.
 *
 * One struct peer_in_conn per accepted connection. The first line must be
 * HELLO (answered WELCOME) within hello_timeout_ms, a deadline from the
 * accept that trickled bytes cannot extend; then every HB is answered with
 * ACK at once. Anything else gets "ERR bad-request ..." and
 * the connection is closed once that line has been flushed:
 * peer_in_conn_finish waits for the output to drain, shuts down our side
 * and discards input until the peer's EOF (or a short linger), so unread
 * input cannot turn the close into a reset that loses the ERR line. A peer
 * that does not read its ACKs stops being read; one that goes quiet for
 * long is dropped. Every connection ends in peer_in_conn_close.
 *
 * No client can starve the peers: at most peer_in_max connections are
 * kept, in the order of their last complete line (the tail heard from
 * most recently). When a new one arrives at the limit, the head, silent
 * for longest, is closed to make room, so connections that never speak
 * (or stopped) lose their place to a real peer that heartbeats every
 * interval.
 *
 * An HB whose lag_us is over our heartbeat interval, or whose missed is
 * not 0, says the sender's own loop stalled: msg=peer-stalled is logged
 * once per stall, so an operator can tell a stalled sender from a bad
 * network.
 *
 * peer_in_accept takes one accepted fd from the shared listener
 * (listen.c), which bounds the accepts per callback and pauses on
 * EMFILE and the like.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>

#include "config.h"
#include "listen.h"
#include "log.h"
#include "peer_in.h"
#include "peer_net.h"
#include "proto.h"
#include "util.h"

#define PEER_IN_IDLE_FACTOR 10		/* idle inbound: x peer_timeout_ms ... */
#define PEER_IN_IDLE_MIN_MS 30000	/* ... but at least this */
#define PEER_IN_LINGER_MS 5000		/* to flush a last line before closing */

/* An inbound connection from a peer's outbound link. */
struct peer_in_conn {
	struct peer_in *in;
	TAILQ_ENTRY(peer_in_conn) entry;
	struct bufferevent *bev;
	int hello;			/* HELLO seen */
	int closing;			/* flushing a last line, then close */
	int paused;			/* reading stopped: ACKs not read */
	int eof;			/* the peer shut down its side */
	int shut;			/* we shut down ours (closing) */
	int stalled;			/* its last HB reported a stall */
	uint64_t accepted_ns;
	struct event *ev_hello;		/* the HELLO deadline */
	const char *close_reason;	/* for the close after the flush */
	char addr[HB_ADDRSTRLEN];
	char name[CONFIG_NAME_MAX + 1];
};

struct peer_in {
	struct event_base *base;
	int priority;
	char *node_name;
	uint32_t timeout_ms;		/* peer_timeout_ms */
	uint64_t interval_ns;		/* heartbeat_interval_ms */
	uint64_t hello_ns;		/* hello_timeout_ms */
	unsigned max;			/* peer_in_max */
	struct listen *listener;
	TAILQ_HEAD(, peer_in_conn) conns;	/* least recently heard first */
	unsigned nconns;
	int full;			/* evicting: warned once until half empty */
};

static void peer_in_conn_close(struct peer_in_conn *c, const char *reason);

/* Reply with one formatted line. */
static void
peer_in_conn_write(struct peer_in_conn *c, const char *buf, int n)
{
	if (n > 0)
		(void)peer_net_write(c->bev, buf, (size_t)n);
}

/*
 * Close after the pending output (there is some) has been flushed: then
 * shut down our side and wait briefly for the peer's EOF, discarding its
 * input, so unread data does not turn the close into a reset that loses
 * the last line.
 */
static void
peer_in_conn_finish(struct peer_in_conn *c, const char *reason)
{
	struct timeval tv;

	c->closing = 1;
	c->close_reason = reason;
	c->paused = 0;
	event_del(c->ev_hello);
	peer_net_tv_ms(&tv, PEER_IN_LINGER_MS);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	if (!c->eof)
		bufferevent_enable(c->bev, EV_READ);
	/* the last line may have gone straight out (peer_net_write): then
	 * nothing will drain, so go on closing from the write callback now */
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		bufferevent_trigger(c->bev, EV_WRITE,
		    BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

/* "ERR bad-request text", then close once it is flushed. */
static void
peer_in_conn_reject(struct peer_in_conn *c, const char *text)
{
	char buf[PEER_MSG_MAX];
	struct log_line *l;

	l = log_begin(LOG_DEBUG, "peer-in-rejected");
	log_str(l, "addr", c->addr);
	log_str(l, "reason", text);
	log_end(l);
	peer_in_conn_write(c, buf, proto_fmt_err(buf, sizeof(buf), "bad-request",
	    text));
	peer_in_conn_finish(c, "rejected");
}

/*
 * The sender says how late its tick fired and how many it missed: log a
 * stall once, when it starts, and again only after a clean HB.
 */
static void
peer_in_conn_check_stall(struct peer_in_conn *c, const struct proto_peer_msg *m)
{
	struct log_line *l;
	uint64_t lag_us = m->has_lag ? m->lag_us : 0;
	uint64_t missed = m->has_missed ? m->missed : 0;
	int stalled;

	stalled = lag_us > c->in->interval_ns / HB_NS_PER_US || missed > 0;
	if (stalled && !c->stalled) {
		l = log_begin(LOG_WARN, "peer-stalled");
		log_str(l, "peer", c->name);
		log_str(l, "addr", c->addr);
		log_uint(l, "lag_us", lag_us);
		log_uint(l, "missed", missed);
		log_end(l);
	}
	c->stalled = stalled;
}

/* One line from an inbound peer. Returns 0, or -1 once rejected. */
static int
peer_in_conn_line(struct peer_in_conn *c, char *line)
{
	struct peer_in *in = c->in;
	struct proto_peer_msg m;
	struct log_line *l;
	struct timeval tv;
	char buf[PEER_MSG_MAX];
	uint64_t idle_ms;

	if (proto_parse_peer(line, &m) == -1) {
		peer_in_conn_reject(c, c->hello ? "expected HB" : "expected HELLO");
		return -1;
	}
	if (!c->hello) {
		if (m.type != PROTO_HELLO) {
			peer_in_conn_reject(c, "expected HELLO");
			return -1;
		}
		c->hello = 1;
		event_del(c->ev_hello);
		snprintf(c->name, sizeof(c->name), "%s", m.name);
		idle_ms = (uint64_t)in->timeout_ms * PEER_IN_IDLE_FACTOR;
		if (idle_ms < PEER_IN_IDLE_MIN_MS)
			idle_ms = PEER_IN_IDLE_MIN_MS;
		peer_net_tv_ms(&tv, idle_ms);
		bufferevent_set_timeouts(c->bev, &tv, &tv);
		peer_in_conn_write(c, buf, proto_fmt_hello(buf, sizeof(buf),
		    "WELCOME", in->node_name));
		l = log_begin(LOG_DEBUG, "peer-in-hello");
		log_str(l, "addr", c->addr);
		log_str(l, "remote", c->name);
		log_end(l);
		return 0;
	}
	if (m.type != PROTO_HB) {
		peer_in_conn_reject(c, "expected HB");
		return -1;
	}
	peer_in_conn_write(c, buf, proto_fmt_ack(buf, sizeof(buf), m.seq, m.t));
	peer_in_conn_check_stall(c, &m);
	return 0;
}

static void
peer_in_conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct peer_in_conn *c = arg;
	struct evbuffer *input = bufferevent_get_input(bev);
	char *line;
	size_t n;
	int r;

	if (c->closing) {
		evbuffer_drain(input, evbuffer_get_length(input));
		return;
	}
	while ((line = evbuffer_readln(input, &n, EVBUFFER_EOL_CRLF)) != NULL) {
		/* heard from now: the last to be evicted */
		TAILQ_REMOVE(&c->in->conns, c, entry);
		TAILQ_INSERT_TAIL(&c->in->conns, c, entry);
		if (n > PEER_LINE_MAX) {
			peer_in_conn_reject(c, "line too long");
			r = -1;
		} else
			r = peer_in_conn_line(c, line);
		free(line);
		if (r == -1) {
			evbuffer_drain(input, evbuffer_get_length(input));
			return;
		}
	}
	if (evbuffer_get_length(input) > PEER_LINE_MAX) {
		peer_in_conn_reject(c, "line too long");
		evbuffer_drain(input, evbuffer_get_length(input));
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
peer_in_conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct peer_in_conn *c = arg;

	if (c->closing) {
		if (c->eof) {
			peer_in_conn_close(c, c->close_reason);
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
peer_in_conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct peer_in_conn *c = arg;
	int pending;

	pending = evbuffer_get_length(bufferevent_get_output(bev)) > 0;
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
		c->eof = 1;
		if (!pending) {
			peer_in_conn_close(c, c->closing ? c->close_reason : "eof");
			return;
		}
		/* half-closed: still deliver what we owe */
		if (!c->closing)
			peer_in_conn_finish(c, "eof");
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		peer_in_conn_close(c, c->closing ? c->close_reason : "idle");
	else
		peer_in_conn_close(c, c->closing ? c->close_reason : "error");
}

/* The one destructor of an inbound connection. */
static void
peer_in_conn_close(struct peer_in_conn *c, const char *reason)
{
	struct peer_in *in = c->in;
	struct log_line *l;

	l = log_begin(LOG_DEBUG, "peer-in-close");
	log_str(l, "addr", c->addr);
	if (c->hello)
		log_str(l, "remote", c->name);
	log_str(l, "reason", reason);
	log_end(l);
	TAILQ_REMOVE(&in->conns, c, entry);
	in->nconns--;
	/* hysteresis: a flood of evictions warns once, not per HELLO timeout */
	if (in->nconns <= in->max / 2)
		in->full = 0;
	event_free(c->ev_hello);
	bufferevent_free(c->bev);
	free(c);
}

static void
peer_in_conn_hello_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	peer_in_conn_close(arg, "hello-timeout");
}

/* (Re)arm the HELLO deadline: hello_ns after the accept. */
static void
peer_in_conn_arm_hello(struct peer_in_conn *c, uint64_t now)
{
	uint64_t end = c->accepted_ns + c->in->hello_ns;
	struct timeval tv;

	peer_net_tv_ns(&tv, end > now ? end - now : 0);
	event_add(c->ev_hello, &tv);
}

/*
 * Close the connections silent for longest until fewer than limit are
 * left; for_addr says who is waiting for the room (for the log).
 */
static void
peer_in_evict(struct peer_in *in, unsigned limit, const char *for_addr)
{
	struct peer_in_conn *c;
	struct log_line *l;
	int quiet;

	while (in->nconns > 0 && in->nconns >= limit) {
		c = TAILQ_FIRST(&in->conns);
		/* warn once per spell of being full */
		quiet = in->full;
		l = log_begin(quiet ? LOG_DEBUG : LOG_WARN, "peer-in-evicted");
		log_str(l, "addr", c->addr);
		if (c->hello)
			log_str(l, "remote", c->name);
		log_str(l, "reason", "too-many-connections");
		log_uint(l, "max", in->max);
		if (for_addr != NULL)
			log_str(l, "for", for_addr);
		log_end(l);
		peer_in_conn_close(c, "evicted");
		in->full = 1;
	}
}

/*
 * Take one accepted connection and wait for its HELLO, making room first
 * if full. The whole of what a listener has to hand over.
 */
static void
peer_in_accept(evutil_socket_t fd, const struct sockaddr *sa, void *arg)
{
	struct peer_in *in = arg;
	struct peer_in_conn *c;
	char addr[HB_ADDRSTRLEN];

	addr_format(sa, addr, sizeof(addr));
	if (in->nconns >= in->max)
		peer_in_evict(in, in->max, addr);
	c = xcalloc(1, sizeof(*c));
	c->in = in;
	c->accepted_ns = now_ns();
	memcpy(c->addr, addr, sizeof(c->addr));
	c->bev = bufferevent_socket_new(in->base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->ev_hello = evtimer_new(in->base, peer_in_conn_hello_cb, c);
	if (c->bev == NULL || c->ev_hello == NULL) {
		log_msg(LOG_ERROR, "peer-in-alloc-failed");
		if (c->bev != NULL)
			bufferevent_free(c->bev);
		else
			evutil_closesocket(fd);
		if (c->ev_hello != NULL)
			event_free(c->ev_hello);
		free(c);
		return;
	}
	TAILQ_INSERT_TAIL(&in->conns, c, entry);
	in->nconns++;
	peer_net_sockopts(fd, in->timeout_ms);
	bufferevent_priority_set(c->bev, in->priority);
	event_priority_set(c->ev_hello, in->priority);
	bufferevent_setcb(c->bev, peer_in_conn_read_cb, peer_in_conn_write_cb,
	    peer_in_conn_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, PEER_READ_HIGHWAT);
	peer_in_conn_arm_hello(c, c->accepted_ns);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/*
 * A lower peer_in_max takes effect at once; a new hello_timeout_ms counts
 * from each waiting connection's accept, as if it had always been in force.
 */
void
peer_in_configure(struct peer_in *in, const struct config *cfg)
{
	struct peer_in_conn *c;
	uint64_t now = now_ns();

	free(in->node_name);
	in->node_name = xstrdup(cfg->node_name);
	in->timeout_ms = cfg->peer_timeout_ms;
	in->interval_ns = (uint64_t)cfg->heartbeat_interval_ms * HB_NS_PER_MS;
	in->hello_ns = (uint64_t)cfg->hello_timeout_ms * HB_NS_PER_MS;
	in->max = cfg->peer_in_max;
	if (in->nconns > in->max)
		peer_in_evict(in, in->max + 1, NULL);
	TAILQ_FOREACH(c, &in->conns, entry)
		if (!c->hello && !c->closing)
			peer_in_conn_arm_hello(c, now);
}

struct peer_in *
peer_in_new(struct event_base *base, const struct config *cfg, int priority)
{
	struct peer_in *in = xcalloc(1, sizeof(*in));

	in->base = base;
	in->priority = priority;
	TAILQ_INIT(&in->conns);
	peer_in_configure(in, cfg);
	return in;
}

void
peer_in_free(struct peer_in *in)
{
	if (in == NULL)
		return;
	while (!TAILQ_EMPTY(&in->conns))
		peer_in_conn_close(TAILQ_FIRST(&in->conns), "shutdown");
	listen_free(in->listener);
	free(in->node_name);
	free(in);
}

int
peer_in_listen(struct peer_in *in, evutil_socket_t fd)
{
	if (in->listener != NULL) {
		log_msg(LOG_ERROR, "peer-listen-twice");
		return -1;
	}
	in->listener = listen_new(in->base, fd, "peer", in->priority,
	    peer_in_accept, in);
	return in->listener != NULL ? 0 : -1;
}
