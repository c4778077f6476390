/*
 * work.c - the work server (interface.md section 4). The loop thread owns
 * the listener and every client connection; work.c speaks the protocol and
 * leaves every job's record to jobs.c:
 *
 *   - A connection is a bufferevent at the priority given to work_new, below
 *     heartbeats and job completions. Each read callback handles at most
 *     WORK_LINES_PER_CB lines, then defers the rest to a later iteration.
 *   - Replies are appended in request order; job outcomes arrive through
 *     work_deliver, by connection id. A client whose unread output passes
 *     WORK_OUT_HIGH is not read from until it drains below WORK_OUT_LOW, so a
 *     client that does not read cannot make the daemon buffer without bound.
 *   - WATCH puts a connection on the watchers list; each tick's line goes to
 *     that list only.
 *   - With a token set, a connection must AUTH within auth_timeout_ms, and
 *     while it has not it is on the unauthenticated list: at
 *     max_connections a newcomer closes the oldest of those instead of
 *     being refused. idle_timeout_ms closes a connection with no request,
 *     job, WAIT or WATCH. Both are libevent common timeouts (O(1) re-arm).
 *   - A detached SUBMIT whose OK waits for the journal holds the
 *     connection: nothing more is read from it until work_settle, so
 *     replies stay in request order.
 *   - EOF is a half-close: everything the client sent is answered and every
 *     outcome it expects (attached jobs, WAITs) sent before the close. TCP
 *     cannot tell that from a full close, so such a connection is probed
 *     for a reset; a reset or a failed write is a disconnect, which drops
 *     its attached jobs.
 *   - A connection is freed only by work_conn_close(c, reason), which also
 *     drops its jobs; when its last words matter (BYE, line-too-long, busy,
 *     shutdown) work_conn_finish() stops reading and closes once the output
 *     has drained.
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "config.h"
#include "idmap.h"
#include "jobs.h"
#include "listen.h"
#include "log.h"
#include "proto.h"
#include "status.h"
#include "util.h"
#include "work.h"

#define WORK_LINES_PER_CB 256		/* requests handled per read callback */
#define WORK_OUT_HIGH (256 * 1024)	/* stop reading a client above this */
#define WORK_OUT_LOW (64 * 1024)	/* ... until its output drains to this */
#define WORK_FLUSH_TIMEOUT_S 10		/* last words to a client that won't read */
#define WORK_REPLY_MAX 512
#define WORK_EOF_PROBE_MS 200		/* reset check of a half-closed client */

struct conn {
	uint64_t id;
	struct work *w;
	struct bufferevent *bev;
	char addr[HB_ADDRSTRLEN];
	int authed;
	int watching;
	int throttled;			/* reading paused for output to drain */
	int finishing;			/* closing once the output drains */
	int eof;			/* the client sent all it will send */
	int held;			/* a reply waits for the journal */
	struct event *ev_probe;		/* after EOF: has it gone altogether? */
	struct event *ev_auth;		/* auth_timeout_ms, while unauthenticated */
	struct event *ev_idle;		/* idle_timeout_ms */
	int unauthed;			/* on w->unauthed */
	TAILQ_ENTRY(conn) entry;
	TAILQ_ENTRY(conn) auth_entry;	/* on w->unauthed, oldest first */
	TAILQ_ENTRY(conn) watch_entry;	/* on w->watchers while watching */
};

struct work {
	struct event_base *base;
	struct jobs *jobs;
	int priority;
	work_status_fn status;
	void *status_arg;
	struct listen *listener;
	TAILQ_HEAD(, conn) conns;
	TAILQ_HEAD(, conn) watchers;
	TAILQ_HEAD(, conn) unauthed;	/* waiting for AUTH, oldest first */
	unsigned nconns, nwatchers;
	uint64_t connections_total;
	struct idmap *conn_by_id;
	uint64_t next_conn_id;
	/* limits, copied from the config in force */
	uint32_t max_line;
	uint32_t max_connections;
	char *auth_token;		/* NULL = no AUTH needed */
	const struct timeval *auth_tv;	/* common timeouts: O(1) to arm */
	const struct timeval *idle_tv;	/* NULL = no idle timeout */
};

static void work_conn_read(struct bufferevent *bev, void *arg);

static void
work_send(struct conn *c, const char *s, size_t n)
{
	bufferevent_write(c->bev, s, n);
}

static void
work_send_str(struct conn *c, const char *s)
{
	work_send(c, s, strlen(s));
}

static void
work_send_err(struct conn *c, const char *code, const char *text)
{
	char buf[WORK_REPLY_MAX];
	int n = proto_fmt_err(buf, sizeof(buf), code, text);

	work_send(c, buf, (size_t)n);
}

/* Start or stop sending this connection the WATCH lines. */
static void
work_conn_watch(struct conn *c, int on)
{
	struct work *w = c->w;

	if (on == c->watching)
		return;
	c->watching = on;
	if (on) {
		TAILQ_INSERT_TAIL(&w->watchers, c, watch_entry);
		w->nwatchers++;
	} else {
		TAILQ_REMOVE(&w->watchers, c, watch_entry);
		w->nwatchers--;
	}
}

/* Off the unauthenticated list (authenticated, or closing). */
static void
work_conn_authed(struct conn *c)
{
	if (c->unauthed) {
		TAILQ_REMOVE(&c->w->unauthed, c, auth_entry);
		c->unauthed = 0;
	}
	if (c->ev_auth != NULL) {
		event_free(c->ev_auth);
		c->ev_auth = NULL;
	}
}

/* Activity: the idle timeout starts again. */
static void
work_conn_active(struct conn *c)
{
	if (c->ev_idle != NULL && c->w->idle_tv != NULL)
		event_add(c->ev_idle, c->w->idle_tv);
}

/* The one destructor: drop the client's jobs, forget it, free it. */
static void
work_conn_close(struct conn *c, const char *reason)
{
	struct work *w = c->w;
	struct log_line *l;

	jobs_drop_conn(w->jobs, c->id);
	work_conn_watch(c, 0);
	work_conn_authed(c);
	l = log_begin(LOG_DEBUG, "connection-closed");
	log_uint(l, "conn", c->id);
	log_str(l, "addr", c->addr);
	log_str(l, "reason", reason);
	log_end(l);
	idmap_del(w->conn_by_id, c->id);
	TAILQ_REMOVE(&w->conns, c, entry);
	w->nconns--;
	if (c->ev_probe != NULL)
		event_free(c->ev_probe);
	if (c->ev_idle != NULL)
		event_free(c->ev_idle);
	bufferevent_free(c->bev);
	free(c);
}

static void
work_conn_drained(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if (c->finishing) {
		work_conn_close(c, "finished");
		return;
	}
	if (c->throttled) {
		c->throttled = 0;
		bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
		bufferevent_enable(c->bev, EV_READ);
		bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
	}
}

/* Stop reading; close once everything written so far has gone out. */
static void
work_conn_finish(struct conn *c)
{
	struct timeval tv = { WORK_FLUSH_TIMEOUT_S, 0 };

	if (c->finishing)
		return;
	c->finishing = 1;
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	bufferevent_set_timeouts(c->bev, NULL, &tv);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		work_conn_close(c, "finished");
}

/* A half-closed client: a reset means it has gone, with its jobs. */
static void
work_conn_probe(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct tcp_info ti;
	socklen_t len;
	int err = 0;

	(void)fd;
	(void)what;
	/* after the FIN, recv() says 0 either way: the reset shows as a
	 * pending socket error and the connection in TCP_CLOSE */
	fd = bufferevent_getfd(c->bev);
	len = sizeof(err);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) {
		work_conn_close(c, evutil_socket_error_to_string(err));
		return;
	}
	len = sizeof(ti);
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
	    ti.tcpi_state == TCP_CLOSE)
		work_conn_close(c, "reset");
}

/*
 * A client that shut down its sending side (EOF) has not gone: once every
 * request it sent is answered and every outcome it expects (its attached
 * jobs, its WAITs) has been sent, close.
 */
static void
work_conn_ended(struct conn *c)
{
	struct timeval tv = { 0, WORK_EOF_PROBE_MS * 1000 };

	if (!c->eof || c->finishing || c->held ||
	    evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		return;
	if (jobs_pending_for(c->w->jobs, c->id) == 0) {
		work_conn_finish(c);
		return;
	}
	/*
	 * Still owed outcomes. TCP cannot tell a half-close from a close
	 * until the peer answers something with a reset (a reply written
	 * after it closed, say); reading stopped at EOF, so look for that
	 * reset now and then.
	 */
	if (c->ev_probe == NULL) {
		c->ev_probe = event_new(c->w->base, -1, EV_PERSIST, work_conn_probe, c);
		event_priority_set(c->ev_probe, c->w->priority);
		event_add(c->ev_probe, &tv);
	}
}

static void
work_conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if (what & BEV_EVENT_EOF) {
		/* a half-close: answer what it sent, then close */
		c->eof = 1;
		work_conn_read(c->bev, c);
	} else if (what & BEV_EVENT_TIMEOUT)
		work_conn_close(c, "write-timeout");
	else if (what & BEV_EVENT_ERROR)
		work_conn_close(c, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

int
work_deliver(struct work *w, uint64_t conn_id, const char *line, size_t len)
{
	struct conn *c = idmap_get(w->conn_by_id, conn_id);

	if (c == NULL)
		return -1;
	work_send(c, line, len);
	work_conn_active(c);
	work_conn_ended(c);
	return 0;
}

/* Constant-time token check: compare digests, so length leaks nothing. */
static int
work_token_ok(const char *given, const char *want)
{
	unsigned char a[EVP_MAX_MD_SIZE], b[EVP_MAX_MD_SIZE];
	unsigned int la = 0, lb = 0;

	if (EVP_Digest(given, strlen(given), a, &la, EVP_sha256(), NULL) != 1 ||
	    EVP_Digest(want, strlen(want), b, &lb, EVP_sha256(), NULL) != 1)
		return 0;
	return la == lb && CRYPTO_memcmp(a, b, la) == 0;
}

static void
work_submit(struct conn *c, const struct proto_request *req)
{
	struct proto_error err;
	uint64_t id;
	char buf[64];

	switch (jobs_submit(c->w->jobs, c->id, req, &id, &err)) {
	case -1:
		work_send_err(c, err.code, err.text);
		return;
	case 1:
		/* the OK waits for the journal; replies stay in order */
		c->held = 1;
		return;
	default:
		work_send(c, buf, (size_t)proto_fmt_ok_id(buf, sizeof(buf), id));
	}
}

static void
work_job_status(struct conn *c, uint64_t id)
{
	struct proto_job pj;
	char buf[WORK_REPLY_MAX];

	if (jobs_info(c->w->jobs, id, &pj) < 0) {
		snprintf(buf, sizeof(buf), "no job %" PRIu64, id);
		work_send_err(c, "not-found", buf);
		return;
	}
	work_send(c, buf, (size_t)proto_fmt_job(buf, sizeof(buf), &pj));
}

/* JOBS: one JOB line per queued or running job. */
static void
work_job_line(const struct proto_job *pj, void *arg)
{
	char buf[WORK_REPLY_MAX];

	work_send(arg, buf, (size_t)proto_fmt_job(buf, sizeof(buf), pj));
}

/* WAIT: OK, then the outcome whenever it comes (at once if it has). */
static void
work_wait(struct conn *c, uint64_t id)
{
	char buf[64];

	if (jobs_info(c->w->jobs, id, &(struct proto_job){ 0 }) < 0) {
		snprintf(buf, sizeof(buf), "no job %" PRIu64, id);
		work_send_err(c, "not-found", buf);
		return;
	}
	work_send(c, buf, (size_t)proto_fmt_ok_id(buf, sizeof(buf), id));
	jobs_wait(c->w->jobs, c->id, id);
}

static void
work_cancel(struct conn *c, uint64_t id)
{
	char buf[64];

	if (jobs_cancel(c->w->jobs, id) < 0) {
		snprintf(buf, sizeof(buf), "no queued or running job %" PRIu64, id);
		work_send_err(c, "not-found", buf);
		return;
	}
	work_send(c, buf, (size_t)proto_fmt_ok_id(buf, sizeof(buf), id));
}

/* STATS or PEERS, from one status snapshot. */
static void
work_report(struct conn *c, enum proto_verb verb)
{
	struct hb_status st;
	char buf[WORK_REPLY_MAX];
	unsigned i;

	c->w->status(&st, c->w->status_arg);
	if (verb == PROTO_STATS) {
		work_send(c, buf, (size_t)proto_fmt_stats(buf, sizeof(buf), &st));
		return;
	}
	for (i = 0; i < st.npeers; i++)
		work_send(c, buf, (size_t)proto_fmt_peer(buf, sizeof(buf), &st.peers[i]));
	work_send_str(c, "END\n");
}

static void
work_request(struct conn *c, char *line)
{
	struct proto_request req;
	struct proto_error perr;
	const char *token = c->w->auth_token, *help;
	size_t i;
	int rc;

	work_conn_active(c);
	if ((rc = proto_parse_request(line, &req, &perr)) != 0) {
		if (rc < 0)
			work_send_err(c, perr.code, perr.text);
		return;
	}
	if (token != NULL && !c->authed && req.verb != PROTO_AUTH &&
	    req.verb != PROTO_PING && req.verb != PROTO_HELP && req.verb != PROTO_QUIT) {
		work_send_err(c, "auth-required", "send AUTH <token> first");
		return;
	}
	switch (req.verb) {
	case PROTO_PING:
		work_send_str(c, "PONG\n");
		break;
	case PROTO_AUTH:
		if (token == NULL || work_token_ok(req.token, token)) {
			c->authed = 1;
			work_conn_authed(c);
			work_send_str(c, "OK auth\n");
		} else {
			work_send_err(c, "auth-failed", "wrong token");
		}
		break;
	case PROTO_SUBMIT:
		work_submit(c, &req);
		break;
	case PROTO_CANCEL:
		work_cancel(c, req.id);
		break;
	case PROTO_STATUS:
		work_job_status(c, req.id);
		break;
	case PROTO_WAIT:
		work_wait(c, req.id);
		break;
	case PROTO_JOBS:
		jobs_foreach_live(c->w->jobs, work_job_line, c);
		work_send_str(c, "END\n");
		break;
	case PROTO_STATS:
	case PROTO_PEERS:
		work_report(c, req.verb);
		break;
	case PROTO_WATCH:
		work_conn_watch(c, 1);
		work_send_str(c, "OK watching\n");
		break;
	case PROTO_UNWATCH:
		work_conn_watch(c, 0);
		work_send_str(c, "OK unwatched\n");
		break;
	case PROTO_HELP:
		for (i = 0; (help = proto_help_line(i)) != NULL; i++) {
			work_send_str(c, help);
			work_send_str(c, "\n");
		}
		work_send_str(c, "END\n");
		break;
	case PROTO_QUIT:
		work_send_str(c, "BYE\n");
		work_conn_finish(c);
		break;
	case PROTO_VERB_COUNT:
		break;
	}
}

static void
work_line_too_long(struct conn *c)
{
	char text[96];

	snprintf(text, sizeof(text), "request line longer than %u bytes",
	    c->w->max_line);
	work_send_err(c, "line-too-long", text);
	work_conn_finish(c);
}

static void
work_conn_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer *out = bufferevent_get_output(bev);
	size_t len, max_line = c->w->max_line;
	unsigned handled;
	char *line;

	for (handled = 0; !c->finishing && !c->held; handled++) {
		if (evbuffer_get_length(out) > WORK_OUT_HIGH) {
			/* the client is not reading its replies: wait for it */
			c->throttled = 1;
			bufferevent_disable(bev, EV_READ);
			bufferevent_setwatermark(bev, EV_WRITE, WORK_OUT_LOW, 0);
			return;
		}
		if (handled == WORK_LINES_PER_CB) {
			/* let heartbeats and other clients run; come back later */
			bufferevent_trigger(bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
			return;
		}
		if ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF)) == NULL) {
			/* no newline yet: max_line bytes plus a CR is the most allowed */
			if (evbuffer_get_length(in) > max_line + 1) {
				work_line_too_long(c);
				return;
			}
			if (!c->eof || (len = evbuffer_get_length(in)) == 0) {
				work_conn_ended(c);
				return;
			}
			/* the client's last words need no line ending */
			line = xmalloc(len + 1);
			evbuffer_remove(in, line, len);
			line[len] = '\0';
		}
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		if (len > max_line)
			work_line_too_long(c);
		else
			work_request(c, line);
		free(line);
	}
}

/* auth_timeout_ms passed without a good AUTH. */
static void
work_conn_auth_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	if (c->authed || c->w->auth_token == NULL)
		return;
	work_conn_authed(c);
	work_send_err(c, "auth-required", "timeout");
	work_conn_finish(c);
}

/* idle_timeout_ms passed with no request, no job, no WAIT, no WATCH. */
static void
work_conn_idle(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	if (c->finishing)
		return;
	if (c->watching || jobs_pending_for(c->w->jobs, c->id) > 0) {
		work_conn_active(c);
		return;
	}
	work_conn_close(c, "idle-timeout");
}

/* Say why on a socket about to close, without waiting for it. */
static void
work_last_word(evutil_socket_t fd, const char *text)
{
	if (send(fd, text, strlen(text), MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
		/* nothing more to do for a client we close anyway */
	}
}

static void
work_accept(evutil_socket_t fd, const struct sockaddr *sa, void *arg)
{
	struct work *w = arg;
	struct conn *c;
	int one = 1;

	if (w->nconns >= w->max_connections) {
		/*
		 * Full. Clients without the token never lock out those with
		 * it: the oldest connection still waiting to authenticate
		 * makes room. Otherwise the newcomer is refused.
		 */
		if (w->auth_token == NULL || (c = TAILQ_FIRST(&w->unauthed)) == NULL) {
			work_last_word(fd, "ERR busy too many connections\n");
			evutil_closesocket(fd);
			return;
		}
		work_last_word(bufferevent_getfd(c->bev), "ERR busy too many "
		    "connections; closing the oldest unauthenticated one\n");
		work_conn_close(c, "evicted-unauthenticated");
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c = xcalloc(1, sizeof(*c));
	c->w = w;
	c->id = ++w->next_conn_id;
	addr_format(sa, c->addr, sizeof(c->addr));
	c->bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		evutil_closesocket(fd);
		free(c);
		return;
	}
	bufferevent_priority_set(c->bev, w->priority);
	bufferevent_setcb(c->bev, work_conn_read, work_conn_drained, work_conn_event, c);
	/* never buffer much more input than one whole line */
	bufferevent_setwatermark(c->bev, EV_READ, 0, (size_t)w->max_line * 2 + 4096);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	TAILQ_INSERT_TAIL(&w->conns, c, entry);
	idmap_put(w->conn_by_id, c->id, c);
	w->nconns++;
	w->connections_total++;
	if (w->auth_token != NULL) {
		TAILQ_INSERT_TAIL(&w->unauthed, c, auth_entry);
		c->unauthed = 1;
		c->ev_auth = evtimer_new(w->base, work_conn_auth_timeout, c);
		event_priority_set(c->ev_auth, w->priority);
		event_add(c->ev_auth, w->auth_tv);
	}
	c->ev_idle = evtimer_new(w->base, work_conn_idle, c);
	event_priority_set(c->ev_idle, w->priority);
	work_conn_active(c);
}

struct work *
work_new(struct event_base *base, const struct config *cfg, struct jobs *jobs,
    int priority, work_status_fn status, void *arg)
{
	struct work *w = xcalloc(1, sizeof(*w));

	w->base = base;
	w->jobs = jobs;
	w->priority = priority;
	w->status = status;
	w->status_arg = arg;
	TAILQ_INIT(&w->conns);
	TAILQ_INIT(&w->watchers);
	TAILQ_INIT(&w->unauthed);
	w->conn_by_id = idmap_new();
	work_reconfigure(w, cfg);
	return w;
}

/* A common timeout for ms: every connection's timer of one length sits in
 * one queue, so arming and re-arming it costs O(1), not O(log n). */
static const struct timeval *
work_common_tv(struct work *w, uint32_t ms)
{
	struct timeval tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	return event_base_init_common_timeout(w->base, &tv);
}

void
work_reconfigure(struct work *w, const struct config *cfg)
{
	struct conn *c;

	w->max_line = cfg->max_line;
	w->max_connections = cfg->max_connections;
	w->auth_tv = work_common_tv(w, cfg->auth_timeout_ms);
	w->idle_tv = cfg->idle_timeout_ms > 0 ? work_common_tv(w, cfg->idle_timeout_ms) : NULL;
	/* a new idle timeout counts from now for everyone */
	TAILQ_FOREACH(c, &w->conns, entry) {
		if (w->idle_tv != NULL)
			work_conn_active(c);
		else if (c->ev_idle != NULL)
			event_del(c->ev_idle);
	}
	free(w->auth_token);
	w->auth_token = cfg->auth_token_value != NULL ? xstrdup(cfg->auth_token_value) : NULL;
}

int
work_listen(struct work *w, evutil_socket_t fd)
{
	w->listener = listen_new(w->base, fd, "work", w->priority, work_accept, w);
	return w->listener != NULL ? 0 : -1;
}

void
work_settle(struct work *w, uint64_t conn_id, const char *line, size_t len)
{
	struct conn *c = idmap_get(w->conn_by_id, conn_id);

	if (c == NULL)
		return;
	work_send(c, line, len);
	c->held = 0;
	work_conn_active(c);
	/* go on with what it sent meanwhile */
	bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
}

unsigned
work_watchers(const struct work *w)
{
	return w->nwatchers;
}

void
work_watch_send(struct work *w, const char *line, size_t len)
{
	struct conn *c;

	TAILQ_FOREACH(c, &w->watchers, watch_entry)
		if (!c->finishing &&
		    evbuffer_get_length(bufferevent_get_output(c->bev)) < WORK_OUT_HIGH)
			work_send(c, line, len);
}

void
work_drain(struct work *w)
{
	/* closing the socket makes new clients fail fast */
	listen_free(w->listener);
	w->listener = NULL;
}

void
work_close_all(struct work *w)
{
	struct conn *c, *next;

	for (c = TAILQ_FIRST(&w->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		work_conn_finish(c);
	}
}

unsigned
work_connections(const struct work *w)
{
	return w->nconns;
}

void
work_status(const struct work *w, struct hb_status *st)
{
	st->connections = w->nconns;
	st->connections_total = w->connections_total;
}

void
work_free(struct work *w)
{
	struct conn *c;

	if (w == NULL)
		return;
	while ((c = TAILQ_FIRST(&w->conns)) != NULL)
		work_conn_close(c, "shutdown");
	listen_free(w->listener);
	idmap_free(w->conn_by_id);
	free(w->auth_token);
	free(w);
}
