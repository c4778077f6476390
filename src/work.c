/*
 * work.c - the work server (interface.md section 4). The loop thread owns
 * the listener, every client connection and the job registry:
 *
 *   - A connection is a bufferevent at DAEMON_PRI_IO, so heartbeats and job
 *     completions always run first. Each read callback handles at most
 *     WORK_LINES_PER_CB lines, then defers the rest to a later iteration.
 *   - Replies are appended in request order; job outcomes are appended when
 *     the pool hands a job back. A client whose unread output passes
 *     WORK_OUT_HIGH is not read from until it drains below WORK_OUT_LOW, so a
 *     client that does not read cannot make the daemon buffer without bound.
 *   - Jobs are found by id in the registry (STATUS, CANCEL) and name their
 *     client by connection id: when the client has gone by the time the job
 *     comes back, the outcome is dropped and counted. The last
 *     WORK_FINISHED_MAX finished jobs are remembered for STATUS.
 *   - A connection is freed only by work_conn_close(c, reason); when its last
 *     words matter (BYE, line-too-long, busy, shutdown) work_conn_finish()
 *     stops reading and closes once the output has drained.
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
#include <event2/listener.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "config.h"
#include "daemon.h"
#include "hist.h"
#include "idmap.h"
#include "job.h"
#include "log.h"
#include "metrics.h"
#include "peer.h"
#include "pool.h"
#include "proto.h"
#include "tick.h"
#include "util.h"
#include "work.h"

#define WORK_LINES_PER_CB 256		/* requests handled per read callback */
#define WORK_OUT_HIGH (256 * 1024)	/* stop reading a client above this */
#define WORK_OUT_LOW (64 * 1024)	/* ... until its output drains to this */
#define WORK_FINISHED_MAX 1024		/* finished jobs STATUS remembers */
#define WORK_FLUSH_TIMEOUT_S 10		/* last words to a client that won't read */
#define WORK_ACCEPT_RETRY_MS 500	/* pause accepting after EMFILE/ENFILE */
#define WORK_REPLY_MAX 512

struct conn {
	uint64_t id;
	struct work *w;
	struct bufferevent *bev;
	char addr[HB_ADDRSTRLEN];
	struct job_list jobs;		/* queued or running, submitted here */
	unsigned njobs;
	int authed;
	int watching;
	int throttled;			/* reading paused for output to drain */
	int finishing;			/* closing once the output drains */
	int eof;			/* the client sent all it will send */
	TAILQ_ENTRY(conn) entry;
};

/* What STATUS reports of a finished job. */
struct work_finished {
	uint64_t id;
	enum job_kind kind;
	enum job_outcome outcome;
	unsigned progress;
	uint64_t queue_us, run_us;
};

struct work {
	struct daemon *d;
	struct evconnlistener *listener;
	struct event *ev_accept_retry;
	TAILQ_HEAD(, conn) conns;
	unsigned nconns;
	struct idmap *conn_by_id;
	struct idmap *job_by_id;	/* queued or running */
	uint64_t next_conn_id;
	uint64_t next_job_id;
	struct work_finished finished[WORK_FINISHED_MAX];
	size_t nfinished;		/* total ever; ring index = n % MAX */
	int draining;
};

static const char *const work_help[] = {
	"PING",
	"AUTH <token>",
	"SUBMIT <kind> [key=value]...  kinds: sleep ms=N | spin ms=N | primes n=N | "
	    "sha256 rounds=N [seed=S]; any kind: timeout_ms=N",
	"CANCEL <id>",
	"STATUS <id>",
	"STATS",
	"PEERS",
	"WATCH",
	"UNWATCH",
	"HELP",
	"QUIT",
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

/* The one destructor: cancel the client's jobs, forget it, free it. */
static void
work_conn_close(struct conn *c, const char *reason)
{
	struct work *w = c->w;
	struct job *j;
	struct log_line *l;

	while ((j = TAILQ_FIRST(&c->jobs)) != NULL) {
		TAILQ_REMOVE(&c->jobs, j, conn_entry);
		j->conn_id = 0;
		pool_cancel(w->d->pool, j, JOB_CANCELLED);
	}
	l = log_begin(LOG_DEBUG, "connection-closed");
	log_uint(l, "conn", c->id);
	log_str(l, "addr", c->addr);
	log_str(l, "reason", reason);
	log_end(l);
	idmap_del(w->conn_by_id, c->id);
	TAILQ_REMOVE(&w->conns, c, entry);
	w->nconns--;
	metrics.connections = w->nconns;
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

/* A job's time in the queue and running, in us, as of end (ns). */
static void
work_job_times(const struct job *j, uint64_t end, uint64_t *queue_us, uint64_t *run_us)
{
	uint64_t start = atomic_load(&j->t_start);

	*queue_us = ((start != 0 ? start : end) - j->t_submit) / HB_NS_PER_US;
	*run_us = start != 0 ? (end - start) / HB_NS_PER_US : 0;
}

/* Remember a finished job for STATUS; returns the record. */
static const struct work_finished *
work_remember(struct work *w, const struct job *j)
{
	struct work_finished *f = &w->finished[w->nfinished++ % WORK_FINISHED_MAX];

	f->id = j->id;
	f->kind = j->args.kind;
	f->outcome = j->outcome;
	f->progress = atomic_load(&j->progress);
	work_job_times(j, j->t_end, &f->queue_us, &f->run_us);
	return f;
}

static const struct work_finished *
work_find_finished(const struct work *w, uint64_t id)
{
	size_t i, n = w->nfinished < WORK_FINISHED_MAX ? w->nfinished : WORK_FINISHED_MAX;

	for (i = 0; i < n; i++)
		if (w->finished[i].id == id)
			return &w->finished[i];
	return NULL;
}

void
work_job_done(struct job *j, void *arg)
{
	struct work *w = arg;
	struct conn *c = j->conn_id != 0 ? idmap_get(w->conn_by_id, j->conn_id) : NULL;
	uint64_t start = atomic_load(&j->t_start);
	const struct work_finished *f;
	char buf[WORK_REPLY_MAX];
	int n;

	idmap_del(w->job_by_id, j->id);
	if (j->t_end == 0)
		j->t_end = now_ns();
	f = work_remember(w, j);
	metrics.finished[j->args.kind][j->outcome]++;
	if (start != 0)
		hist_add(metrics.job_run, j->t_end - start);
	if (j->outcome == JOB_SHUTDOWN)
		w->d->jobs_cancelled++;

	if (c != NULL) {
		TAILQ_REMOVE(&c->jobs, j, conn_entry);
		c->njobs--;
		if (j->outcome == JOB_DONE)
			n = proto_fmt_done(buf, sizeof(buf), j->id, j->result,
			    f->queue_us, f->run_us);
		else
			n = proto_fmt_fail(buf, sizeof(buf), j->id,
			    job_outcome_name(j->outcome),
			    j->outcome == JOB_ERROR ? j->result : NULL);
		work_send(c, buf, (size_t)n);
	} else {
		metrics.outcomes_dropped++;
	}
	job_free(j);
	daemon_job_finished(w->d);
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

/* A refused SUBMIT: the reason's metric label is also its wire code. */
static void
work_reject(struct conn *c, enum metrics_reject why, const char *text)
{
	metrics.rejected[why]++;
	work_send_err(c, metrics_reject_name(why), text);
}

static void
work_submit(struct conn *c, struct proto_request *req)
{
	struct work *w = c->w;
	const struct config *cfg = w->d->cfg;
	struct job_args args;
	enum job_kind kind;
	struct job *j;
	char err[160], buf[64];

	if (w->draining) {
		work_reject(c, REJECT_SHUTTING_DOWN,
		    "the daemon is stopping; no new jobs");
		return;
	}
	if (job_kind_parse(req->kind, &kind) < 0) {
		work_send_err(c, "unknown-kind",
		    "unknown job kind; kinds: sleep spin primes sha256");
		return;
	}
	if (job_args_parse(kind, req->keys, req->vals, req->nargs, cfg->job_max_ms,
	    &args, err, sizeof(err)) < 0) {
		work_send_err(c, "bad-arg", err);
		return;
	}
	if (c->njobs >= cfg->max_jobs_per_conn) {
		job_args_clear(&args);
		snprintf(err, sizeof(err), "this connection has %u jobs queued or running "
		    "(max_jobs_per_conn)", c->njobs);
		work_reject(c, REJECT_TOO_MANY_JOBS, err);
		return;
	}
	j = job_new();
	j->args = args;
	j->id = w->next_job_id;
	j->conn_id = c->id;
	j->timeout_ms = args.timeout_ms != 0 ? args.timeout_ms : cfg->job_max_ms;
	j->t_submit = now_ns();
	if (pool_submit(w->d->pool, j) < 0) {
		job_free(j);
		work_reject(c, REJECT_BUSY, "the job queue is full; try again later");
		return;
	}
	w->next_job_id++;
	idmap_put(w->job_by_id, j->id, j);
	TAILQ_INSERT_TAIL(&c->jobs, j, conn_entry);
	c->njobs++;
	metrics.submitted[kind]++;
	work_send(c, buf, (size_t)proto_fmt_ok_id(buf, sizeof(buf), j->id));
}

static void
work_status(struct conn *c, uint64_t id)
{
	struct work *w = c->w;
	struct job *j = idmap_get(w->job_by_id, id);
	const struct work_finished *f;
	char buf[WORK_REPLY_MAX], text[64];
	uint64_t end, queue_us, run_us;
	const char *state;
	int n;

	if (j != NULL) {
		if (atomic_load(&j->state) == JOB_FINISHED) {
			state = j->outcome == JOB_DONE ? "done" : "failed";
			end = j->t_end;
		} else {
			state = atomic_load(&j->t_start) != 0 ? "running" : "queued";
			end = now_ns();
		}
		work_job_times(j, end, &queue_us, &run_us);
		n = proto_fmt_job(buf, sizeof(buf), id, job_kind_name(j->args.kind), state,
		    atomic_load(&j->progress), queue_us, run_us);
	} else if ((f = work_find_finished(w, id)) != NULL) {
		n = proto_fmt_job(buf, sizeof(buf), id, job_kind_name(f->kind),
		    f->outcome == JOB_DONE ? "done" : "failed", f->progress,
		    f->queue_us, f->run_us);
	} else {
		snprintf(text, sizeof(text), "no job %" PRIu64, id);
		work_send_err(c, "not-found", text);
		return;
	}
	work_send(c, buf, (size_t)n);
}

static void
work_cancel(struct conn *c, uint64_t id)
{
	struct job *j = idmap_get(c->w->job_by_id, id);
	char buf[64];

	if (j == NULL || pool_cancel(c->w->d->pool, j, JOB_CANCELLED) < 0) {
		snprintf(buf, sizeof(buf), "no queued or running job %" PRIu64, id);
		work_send_err(c, "not-found", buf);
		return;
	}
	work_send(c, buf, (size_t)proto_fmt_ok_id(buf, sizeof(buf), id));
}

static void
work_stats(struct conn *c)
{
	struct daemon *d = c->w->d;
	struct pool_stats ps;
	struct tick_stats ts;
	char buf[WORK_REPLY_MAX];
	int n;

	pool_stats(d->pool, &ps);
	tick_stats(d->tick, &ts);
	n = snprintf(buf, sizeof(buf), "STATS uptime_s=%" PRIu64 " threads=%u busy=%u"
	    " queued=%u submitted=%" PRIu64 " completed=%" PRIu64 " failed=%" PRIu64
	    " rejected=%" PRIu64 " connections=%u heartbeats=%" PRIu64
	    " lag_p50_us=%" PRIu64 " lag_p99_us=%" PRIu64 " lag_max_us=%" PRIu64
	    " peers=%u peers_up=%u missed=%" PRIu64 " dropped=%" PRIu64 " draining=%d\n",
	    (now_ns() - metrics.start_ns) / (HB_NS_PER_MS * 1000), ps.threads, ps.busy, ps.queued,
	    metrics_submitted_total(), metrics_completed_total(), metrics_failed_total(),
	    metrics_rejected_total(), c->w->nconns, metrics.heartbeats,
	    ts.p50_ns / HB_NS_PER_US, ts.p99_ns / HB_NS_PER_US, ts.max_ns / HB_NS_PER_US,
	    peers_count(d->peers), peers_up(d->peers), ts.missed,
	    metrics.outcomes_dropped, d->draining);
	work_send(c, buf, (size_t)n);
}

static void
work_peer_line(const struct peer_info *pi, void *arg)
{
	struct conn *c = arg;
	char buf[WORK_REPLY_MAX];
	int n;

	n = snprintf(buf, sizeof(buf), "PEER %s addr=%s state=%s rtt_us=%" PRIu64
	    " last_ack_ms=%" PRId64 "\n", pi->name, pi->addr,
	    liveness_state_name(pi->state), pi->rtt_ns / HB_NS_PER_US, pi->last_ack_ms);
	work_send(c, buf, (size_t)n);
}

static void
work_request(struct conn *c, char *line)
{
	struct proto_request req;
	struct proto_error perr;
	const char *token = c->w->d->cfg->auth_token;
	size_t i;
	int rc;

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
		work_status(c, req.id);
		break;
	case PROTO_STATS:
		work_stats(c);
		break;
	case PROTO_PEERS:
		peers_foreach(c->w->d->peers, work_peer_line, c);
		work_send_str(c, "END\n");
		break;
	case PROTO_WATCH:
		c->watching = 1;
		work_send_str(c, "OK watching\n");
		break;
	case PROTO_UNWATCH:
		c->watching = 0;
		work_send_str(c, "OK unwatched\n");
		break;
	case PROTO_HELP:
		for (i = 0; i < sizeof(work_help) / sizeof(work_help[0]); i++) {
			work_send_str(c, work_help[i]);
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
	    c->w->d->cfg->max_line);
	work_send_err(c, "line-too-long", text);
	work_conn_finish(c);
}

static void
work_conn_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer *out = bufferevent_get_output(bev);
	size_t len, max_line = c->w->d->cfg->max_line;
	unsigned handled;
	char *line;

	for (handled = 0; !c->finishing; handled++) {
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
			if (evbuffer_get_length(in) > max_line + 1)
				work_line_too_long(c);
			else if (c->eof)
				work_conn_finish(c);
			return;
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

static void
work_accept(struct evconnlistener *lst, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	static const char busy[] = "ERR busy too many connections\n";
	struct work *w = arg;
	const struct config *cfg = w->d->cfg;
	struct conn *c;
	int one = 1;

	(void)lst;
	(void)salen;
	if (w->nconns >= cfg->max_connections) {
		/* a best-effort last word on a fresh socket, then close */
		if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
			/* nothing more to do for a client we refuse anyway */
		}
		evutil_closesocket(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c = xcalloc(1, sizeof(*c));
	c->w = w;
	c->id = ++w->next_conn_id;
	TAILQ_INIT(&c->jobs);
	addr_format(sa, c->addr, sizeof(c->addr));
	c->bev = bufferevent_socket_new(w->d->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		evutil_closesocket(fd);
		free(c);
		return;
	}
	bufferevent_priority_set(c->bev, DAEMON_PRI_IO);
	bufferevent_setcb(c->bev, work_conn_read, work_conn_drained, work_conn_event, c);
	/* never buffer much more input than one whole line */
	bufferevent_setwatermark(c->bev, EV_READ, 0, (size_t)cfg->max_line * 2 + 4096);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	TAILQ_INSERT_TAIL(&w->conns, c, entry);
	idmap_put(w->conn_by_id, c->id, c);
	w->nconns++;
	metrics.connections = w->nconns;
	metrics.connections_total++;
}

static void
work_accept_resume(evutil_socket_t fd, short what, void *arg)
{
	struct work *w = arg;

	(void)fd;
	(void)what;
	if (w->listener != NULL)
		evconnlistener_enable(w->listener);
}

/* accept() failed: out of fds most likely; pause instead of spinning. */
static void
work_accept_error(struct evconnlistener *lst, void *arg)
{
	struct work *w = arg;
	struct timeval tv = { 0, WORK_ACCEPT_RETRY_MS * 1000 };
	int err = EVUTIL_SOCKET_ERROR();
	struct log_line *l;

	l = log_begin(LOG_WARN, "accept-failed");
	log_str(l, "service", "work");
	log_errno(l, err);
	log_end(l);
	evconnlistener_disable(lst);
	event_add(w->ev_accept_retry, &tv);
}

struct work *
work_new(struct daemon *d)
{
	struct work *w = xcalloc(1, sizeof(*w));

	w->d = d;
	TAILQ_INIT(&w->conns);
	w->conn_by_id = idmap_new();
	w->job_by_id = idmap_new();
	w->next_job_id = 1;
	w->ev_accept_retry = evtimer_new(d->base, work_accept_resume, w);
	return w;
}

int
work_listen(struct work *w, evutil_socket_t fd)
{
	w->listener = evconnlistener_new(w->d->base, work_accept, w,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (w->listener == NULL) {
		log_msg(LOG_ERROR, "work-listener-failed");
		return -1;
	}
	evconnlistener_set_error_cb(w->listener, work_accept_error);
	return 0;
}

void
work_watch_send(struct work *w, const char *line, size_t len)
{
	struct conn *c;

	TAILQ_FOREACH(c, &w->conns, entry)
		if (c->watching && !c->finishing &&
		    evbuffer_get_length(bufferevent_get_output(c->bev)) < WORK_OUT_HIGH)
			work_send(c, line, len);
}

void
work_drain(struct work *w)
{
	w->draining = 1;
	if (w->listener != NULL) {
		/* closing the socket makes new clients fail fast */
		evconnlistener_free(w->listener);
		w->listener = NULL;
	}
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

unsigned
work_jobs_live(const struct work *w)
{
	return (unsigned)idmap_count(w->job_by_id);
}

void
work_free(struct work *w)
{
	struct conn *c;

	if (w == NULL)
		return;
	while ((c = TAILQ_FIRST(&w->conns)) != NULL)
		work_conn_close(c, "shutdown");
	if (w->listener != NULL)
		evconnlistener_free(w->listener);
	event_free(w->ev_accept_retry);
	idmap_free(w->conn_by_id);
	idmap_free(w->job_by_id);
	free(w);
}
