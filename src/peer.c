/*
 * peer.c - heartbeat links (interface.md section 5): the outbound links
 * and struct peers, the aggregate the daemon holds.
 *
 * DESIGN
 *
 * Outbound: one struct peer per configured peer, in config order. A link
 * owns at most one bufferevent at a time. It connects through a shared
 * evdns_base (names or numeric addresses), sends "HELLO <node> 1" and waits
 * for "WELCOME <name> 1"; until then no HB goes out and a handshake timeout
 * (peer_timeout_ms) bounds the attempt. peers_tick, driven by the tick timer,
 * sends "HB <seq> <t> lag_us=N missed=M" on every welcomed link and runs the pure
 * state machine of liveness.c; ACKs are fed to it with the clock read at the
 * time of reading. Every failure goes through peer_link_close(), which frees
 * the bufferevent, reports a lost connection to liveness (peer-down when the
 * peer was up or suspect) and arms the reconnect timer with capped
 * exponential backoff; the backoff starts again from its minimum only
 * once ACKs have kept the peer up for peer_timeout_ms (backoff_ok), so a
 * peer that acks once and then misbehaves is not redialled in a tight
 * loop. A peer that goes down on a still open
 * connection (no ACKs) is closed and reconnected the same way.
 *
 * Self-awareness: when the tick itself fired late (our loop stalled), the
 * ACKs may well be sitting unread in our socket buffers; liveness_extend
 * pushes every deadline back by the stall and msg=local-stall is logged
 * instead of blaming the peers.
 *
 * Inbound connections (HELLO/WELCOME, HB answered with ACK) are
 * peer_in.c's; struct peers owns that side too, so the daemon sees one
 * module.
 *
 * Every peer bufferevent and timer runs at the priority given to
 * peers_new (the daemon's highest), so heartbeats and ACKs are never
 * queued behind client I/O. Lines are bounded by PEER_LINE_MAX and reads
 * by a high watermark, which also bounds the work done per callback.
 *
 * Known limit (libevent 2.1): a host name lookup still in flight when
 * peers_free runs is cancelled by a deferred callback that never runs once
 * the loop has stopped, so its few hundred bytes are left to exit. Numeric
 * addresses and /etc/hosts names resolve synchronously and never hit this.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "backoff.h"
#include "config.h"
#include "liveness.h"
#include "log.h"
#include "peer.h"
#include "peer_in.h"
#include "peer_net.h"
#include "proto.h"
#include "util.h"

#define PEER_HOST_MAX 256
#define PEER_BACKOFF_MIN_NS (100 * HB_NS_PER_MS)
#define PEER_BACKOFF_MAX_NS (5000 * HB_NS_PER_MS)
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
	int in_connect;			/* inside connect_hostname */
	int connect_failed;		/* ... and it failed synchronously */
	const char *last_fail;		/* why the last attempt failed */
	uint64_t seq;			/* last HB sent, across connections */
	uint64_t missed;		/* ticks we missed since the last HB */
	struct liveness lv;
	struct backoff bo;
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

	struct peer_in *in;		/* the inbound side */
};

static void peer_link_connect(struct peer *p);

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
	p->tcp_up = p->welcomed = 0;
	p->last_fail = reason;
	if (p->lv.state == PEER_UP || p->lv.state == PEER_SUSPECT)
		peer_report(p, liveness_on_lost(&p->lv, now_ns(), reason));

	delay = backoff_next(&p->bo);
	peer_net_tv_ns(&tv, delay);
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
	    p->ps->lag_ns / HB_NS_PER_US, p->missed);
	if (n <= 0 || peer_net_write(p->bev, buf, (size_t)n) == -1)
		return;
	p->missed = 0;
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
		p->missed = 0;	/* counted per connection, from its first HB */
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
	if (p->lv.state == PEER_UP)
		backoff_ok(&p->bo, now, p->ps->timeout_ns);
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
	peer_net_sockopts(bufferevent_getfd(p->bev), p->ps->timeout_ms);
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
	peer_net_tv_ms(&tv, ps->timeout_ms);
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

	if ((ps->in = peer_in_new(base, cfg, priority)) == NULL) {
		peers_free(ps);
		return NULL;
	}
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
	peer_in_free(ps->in);
	if (ps->dns != NULL)
		evdns_base_free(ps->dns, 0);
	free(ps->node_name);
	free(ps);
}

int
peers_listen(struct peers *ps, evutil_socket_t fd)
{
	if (ps == NULL)
		return -1;	/* peers_new failed and said why */
	return peer_in_listen(ps->in, fd);
}

void
peers_tick(struct peers *ps, uint64_t now, uint64_t lag_ns, uint64_t missed)
{
	struct peer *p;
	struct log_line *l;
	enum liveness_event ev;
	unsigned spared = 0;
	int stalled;
	uint64_t cur;
	size_t i;

	ps->lag_ns = lag_ns;
	/*
	 * Our own stall, not the peers': it kept us from reading ACKs and
	 * sending HBs. Push every deadline back by it, and judge nobody on
	 * this tick: the peers get one interval to answer the HB that goes
	 * out now (a stopped process, SIGCONT on a loaded machine, has shown
	 * a peer down on the very tick that ended the stall).
	 */
	stalled = lag_ns > 0 && lag_ns >= ps->interval_ns / 2;
	if (stalled) {
		for (i = 0; i < ps->nlinks; i++)
			if (liveness_extend(&ps->links[i]->lv, lag_ns, now) ||
			    ps->links[i]->lv.state != PEER_DOWN)
				spared++;
		if (spared > 0) {
			l = log_begin(LOG_WARN, "local-stall");
			log_uint(l, "lag_us", lag_ns / HB_NS_PER_US);
			log_uint(l, "peers", spared);
			log_end(l);
		}
	}

	for (i = 0; i < ps->nlinks; i++) {
		p = ps->links[i];
		if (!p->welcomed)
			continue;
		/* kept until an HB carries it (one may be skipped) */
		p->missed = p->missed > UINT64_MAX - missed ? UINT64_MAX :
		    p->missed + missed;
		peer_link_send_hb(p);
	}

	if (stalled)
		return;
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
	peer_in_configure(ps->in, cfg);
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
				peer_net_sockopts(bufferevent_getfd(p->bev), ps->timeout_ms);
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
