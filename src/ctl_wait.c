/*
 * ctl_wait.c - waiting for a job's outcome, in two modes:
 *
 *   submit --wait  the job is attached to this connection, so its DONE or
 *                  FAIL comes here unasked. Ctrl-C sends CANCEL and waits
 *                  briefly for the FAIL it causes, so the job ends on the
 *                  daemon before the client exits 1. A lost connection
 *                  has taken the job with it: that is an error.
 *   wait ID        any job, typically a detached one: WAIT asks for its
 *                  outcome. Ctrl-C only stops waiting (exit 128 + signal;
 *                  the job goes on). A lost connection (the daemon
 *                  restarting) is redialled with backoff and WAIT sent
 *                  again, for up to CTL_RECONNECT_MS after the loss.
 *
 * On a terminal, STATUS is polled on the same connection for a progress
 * line on stderr. Replies come in request order, so a FIFO of outstanding
 * requests says which request an OK, JOB or ERR answers; outcome lines
 * (DONE, FAIL) are told apart by their verb.
 */

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "backoff.h"
#include "ctl.h"
#include "proto.h"
#include "util.h"

#define CTL_CANCEL_WAIT_MS	2000	/* after Ctrl-C, for the FAIL line */
#define CTL_STATUS_POLL_MS	150	/* progress polling under --wait */
#define CTL_RECONNECT_MS	60000	/* wait ID: redial for this long */
#define CTL_REDIAL_MIN_MS	100	/* first delay before redialling */
#define CTL_REDIAL_MAX_MS	2000	/* longest delay between tries */
#define CTL_EXIT_SIGNAL		128	/* plus the signal: wait interrupted */

/* What a wait knows about its job. */
struct wait_job {
	const char	*id;
	char		 kind[32];	/* from submit, or from STATUS */
	uint64_t	 t0;		/* when the job started to count */
	unsigned	 progress;	/* percent, from STATUS */
	char		 state[16];	/* from STATUS */
	int		 tty;		/* show progress on stderr */
	int		 utf8;
	int		 attached;	/* submit --wait: Ctrl-C cancels */
	int		 cancelling;
	int		 redialled;	/* wait ID: connected again since */
	uint64_t	 lost_at;	/* wait ID: connection lost; 0: fine */
};

/* The live progress line on stderr. */
static void
wait_draw(struct wait_job *j)
{
	char line[512], bar[256], what[48];
	double el = (double)(now_ns() - j->t0) / 1e9;
	const char *fill = j->utf8 ? "\xe2\x96\x88" : "#";
	const char *empty = j->utf8 ? "\xe2\x96\x91" : "-";
	const char *state = j->cancelling ? "cancelling" : j->state;
	int cols, rows, width, full, k;
	size_t off = 0;

	term_size(STDERR_FILENO, &cols, &rows);
	width = cols - 50;
	width = width < 10 ? 10 : width > 40 ? 40 : width;
	full = (int)(j->progress * (unsigned)width / 100);
	for (k = 0; k < width; k++) {
		const char *s = k < full ? fill : empty;

		off += (size_t)snprintf(bar + off, sizeof(bar) - off, "%s", s);
	}
	if (j->lost_at != 0) {
		uint64_t until = j->lost_at + (uint64_t)CTL_RECONNECT_MS *
		    HB_NS_PER_MS, now = now_ns();

		snprintf(what, sizeof(what), "reconnecting (%llus left)",
		    (unsigned long long)(now < until ? (until - now) /
		    (1000 * HB_NS_PER_MS) : 0));
		state = what;
	}
	snprintf(line, sizeof(line), "job %s%s%s [%s] %3u%% %6.1fs %s",
	    j->id, *j->kind != '\0' ? " " : "", j->kind, bar, j->progress, el,
	    state);
	fputc('\r', stderr);
	term_put(stderr, line, cols - 1);
	fputs("\033[K", stderr);
	fflush(stderr);
	progress_shown();
}

/* Print the outcome line (DONE or FAIL, verb already split off). */
static int
wait_outcome(const char *verb, const char *id, char *rest)
{
	struct ctl_fields f;
	struct json_obj o;
	char q[32], r[32];
	const char *v;
	char *d;
	int done = strcasecmp(verb, "DONE") == 0;

	fields_split(&f, rest);
	progress_clear();
	if (json_mode) {
		jo_begin(&o, stdout);
		jo_val(&o, "id", id);
		jo_str(&o, "state", done ? "done" : "failed");
		jo_fields(&o, &f);
		jo_end(&o);
		fputc('\n', stdout);
	} else if (done) {
		v = fields_get(&f, "result");
		printf("job %s done: %s (queued %s, ran %s)\n", id,
		    v != NULL ? v : "-", fmt_us(q, sizeof(q),
		    fields_get(&f, "queue_us")), fmt_us(r, sizeof(r),
		    fields_get(&f, "run_us")));
	} else {
		v = fields_get(&f, "reason");
		d = fields_get(&f, "detail");
		if (d != NULL)
			text_sanitize(d);
		printf("job %s failed: %s%s%s\n", id, v != NULL ? v : "error",
		    d != NULL ? ": " : "", d != NULL ? d : "");
	}
	return done ? CTL_EXIT_OK : CTL_EXIT_FAIL;
}

/* Take in a STATUS reply's fields for the progress line. */
static void
wait_status(struct wait_job *j, char *p)
{
	struct ctl_fields f;
	const char *s;
	uint64_t pv;

	(void)proto_token(&p);
	fields_split(&f, p);
	if ((s = fields_get(&f, "state")) != NULL)
		snprintf(j->state, sizeof(j->state), "%s", s);
	if ((s = fields_get(&f, "kind")) != NULL)
		snprintf(j->kind, sizeof(j->kind), "%s", s);
	pv = fields_u64(&f, "progress");
	j->progress = pv > 100 ? 100 : (unsigned)pv;
	if (!j->attached)	/* the job's own age, not this client's */
		j->t0 = now_ns() - (fields_u64(&f, "queue_us") +
		    fields_u64(&f, "run_us")) * HB_NS_PER_US;
}

/*
 * Sleep ms, or less if a stop signal arrives: then 128 + the signal, the
 * shell's way to say "interrupted"; 0 otherwise.
 */
static int
wait_pause(struct wait_job *j, uint64_t ms)
{
	uint64_t deadline = deadline_in((unsigned)ms);
	struct pollfd pfd;
	char drain[64];
	int sig;

	uint64_t left;

	pfd.fd = sig_fd();
	pfd.events = POLLIN;
	while (now_ns() < deadline) {
		if (j->tty)
			wait_draw(j);
		left = (deadline - now_ns()) / HB_NS_PER_MS + 1;
		if (j->tty && left > CTL_STATUS_POLL_MS)
			left = CTL_STATUS_POLL_MS;	/* tick the countdown */
		if (poll(&pfd, 1, (int)left) <= 0 || !(pfd.revents & POLLIN))
			continue;
		while (read(pfd.fd, drain, sizeof(drain)) > 0)
			;
		if ((sig = sig_take_stop()) != 0)
			return CTL_EXIT_SIGNAL + sig;
	}
	return 0;
}

/* Stop waiting on a signal; the job is left alone. */
static int
wait_interrupted(const struct wait_job *j, int status)
{
	ctl_error("interrupted", "stopped waiting for job %s; it goes on "
	    "(heartbeatctl status %s)", j->id, j->id);
	return status;
}

/*
 * wait ID lost its connection: dial again with capped backoff and jitter
 * (AUTH again if a token is set) until CTL_RECONNECT_MS after the loss.
 * 0 when connected again; otherwise the exit status, reported.
 */
static int
wait_redial(struct ctl_conn *c, struct wait_job *j)
{
	struct backoff b;
	uint64_t until, now, delay;
	enum ctl_read r;
	char *line;
	int st, sig;

	if (j->lost_at == 0) {
		j->lost_at = now_ns();
		progress_clear();
		fprintf(stderr, "heartbeatctl: lost connection to %s; "
		    "reconnecting for up to %d s\n", c->addr,
		    CTL_RECONNECT_MS / 1000);
	}
	conn_close(c);
	until = j->lost_at + (uint64_t)CTL_RECONNECT_MS * HB_NS_PER_MS;
	backoff_init(&b, CTL_REDIAL_MIN_MS * HB_NS_PER_MS,
	    CTL_REDIAL_MAX_MS * HB_NS_PER_MS, now_ns() ^ (uint64_t)getpid());
	for (;;) {
		now = now_ns();
		if (now >= until)
			break;
		delay = backoff_next(&b);
		if (delay > until - now)
			delay = until - now;
		if ((st = wait_pause(j, delay / HB_NS_PER_MS)) != 0)
			return wait_interrupted(j, st);
		now = now_ns();
		if (now >= until)
			break;
		delay = (until - now) / HB_NS_PER_MS;
		if (conn_redial(c, delay < CTL_TIMEOUT_MS ? (unsigned)delay + 1 :
		    CTL_TIMEOUT_MS) == -1)
			continue;
		if (c->token == NULL)
			break;
		if (conn_send_quiet(c, "AUTH %s", c->token) == -1)
			continue;
		while ((r = conn_readline(c, deadline_in(CTL_TIMEOUT_MS),
		    &line)) == CTL_SIGNAL)
			if ((sig = sig_take_stop()) != 0)
				return wait_interrupted(j,
				    CTL_EXIT_SIGNAL + sig);
		if (r != CTL_LINE)
			continue;
		if (reply_expect(line, "OK") == NULL)
			return CTL_EXIT_FAIL;	/* a wrong token stays wrong */
		break;
	}
	if (c->fd == -1 || now_ns() >= until) {
		ctl_error("connection-lost", "lost connection to %s; no new "
		    "one within %d s while waiting for job %s", c->addr,
		    CTL_RECONNECT_MS / 1000, j->id);
		return CTL_EXIT_FAIL;
	}
	j->redialled = 1;
	return 0;
}

/*
 * An ERR (code, then text) answering WAIT, or following its OK: the daemon
 * does not know the job. After a reconnect that means it restarted and
 * lost it, which the daemon's own "no job N" would not say.
 */
static int
wait_err(const struct wait_job *j, const char *code, char *text)
{
	while (*text == ' ' || *text == '\t')
		text++;
	if (j->redialled && strcmp(code, "not-found") == 0)
		ctl_error("not-found", "job %s not found after reconnecting: "
		    "the daemon restarted and no longer knows it", j->id);
	else
		ctl_report(*code != '\0' ? code : "error", 1,
		    *text != '\0' ? text : code);
	return CTL_EXIT_FAIL;
}

/* Wait for the job's DONE or FAIL (see the top). */
static int
wait_job(struct ctl_conn *c, struct wait_job *j)
{
	struct ctl_pending q;
	enum ctl_req req;
	enum ctl_read r;
	uint64_t next_status, cancel_deadline = 0, deadline;
	int status_out, sig, st;
	char *line, *p, *verb, *id, *code;

	if (sig_install() == -1)
		return CTL_EXIT_FAIL;
connected:
	memset(&q, 0, sizeof(q));
	status_out = 0;
	next_status = now_ns();
	if (!j->attached) {
		if (conn_send_quiet(c, "WAIT %s", j->id) == -1)
			goto lost;
		pending_push(&q, REQ_WAIT);
	}
	for (;;) {
		if (j->tty && !status_out && !j->cancelling &&
		    now_ns() >= next_status) {
			if (j->attached ? conn_send(c, "STATUS %s", j->id) :
			    conn_send_quiet(c, "STATUS %s", j->id)) {
				if (j->attached)
					return CTL_EXIT_FAIL;
				goto lost;
			}
			pending_push(&q, REQ_STATUS);
			status_out = 1;
		}
		if (j->tty)
			wait_draw(j);
		deadline = j->tty ? deadline_in(CTL_STATUS_POLL_MS) : 0;
		if (j->cancelling && (deadline == 0 || cancel_deadline < deadline))
			deadline = cancel_deadline;
		r = conn_readline(c, deadline, &line);
		if (r == CTL_SIGNAL) {
			if ((sig = sig_take_stop()) == 0)
				continue;
			if (!j->attached)
				return wait_interrupted(j, CTL_EXIT_SIGNAL + sig);
			if (j->cancelling) {
				ctl_error("interrupted", "job %s: interrupted",
				    j->id);
				return CTL_EXIT_FAIL;
			}
			if (conn_send(c, "CANCEL %s", j->id) == -1)
				return CTL_EXIT_FAIL;
			pending_push(&q, REQ_CANCEL);
			j->cancelling = 1;
			cancel_deadline = deadline_in(CTL_CANCEL_WAIT_MS);
			continue;
		}
		if (r == CTL_TIMEOUT) {
			if (j->cancelling && now_ns() >= cancel_deadline) {
				ctl_error("timeout", "job %s: no outcome within "
				    "%d s of CANCEL", j->id,
				    CTL_CANCEL_WAIT_MS / 1000);
				return CTL_EXIT_FAIL;
			}
			continue;
		}
		if (r != CTL_LINE) {
			if (!j->attached)
				goto lost;
			conn_read_error(c, r);
			return CTL_EXIT_FAIL;
		}
		p = line;
		verb = proto_token(&p);
		if (strcasecmp(verb, "DONE") == 0 ||
		    strcasecmp(verb, "FAIL") == 0) {
			id = proto_token(&p);
			if (strcmp(id, j->id) == 0)
				return wait_outcome(verb, id, p);
			continue;
		}
		/* Anything else answers the oldest request. */
		if (pending_pop(&q, &req) == -1) {
			/* WAIT's "ERR not-found" after its OK */
			if (!j->attached && strcasecmp(verb, "ERR") == 0) {
				code = proto_token(&p);
				return wait_err(j, code, p);
			}
			continue;
		}
		if (req == REQ_WAIT) {
			if (strcasecmp(verb, "ERR") == 0) {
				code = proto_token(&p);
				return wait_err(j, code, p);
			}
			if (strcasecmp(verb, "OK") != 0) {
				ctl_error("protocol", "unexpected reply to WAIT: "
				    "%s", verb);
				return CTL_EXIT_FAIL;
			}
			j->lost_at = 0;		/* waiting again */
			continue;
		}
		if (req == REQ_STATUS) {
			status_out = 0;
			next_status = deadline_in(CTL_STATUS_POLL_MS);
		}
		if (req == REQ_STATUS && strcasecmp(verb, "JOB") == 0)
			wait_status(j, p);
	}
lost:
	if ((st = wait_redial(c, j)) != 0)
		return st;
	goto connected;
}

/*
 * Wait for job id of kind, just submitted attached on c; the exit status
 * follows the outcome. Progress is shown when stderr is a terminal.
 */
int
wait_run(struct ctl_conn *c, const char *id, const char *kind)
{
	struct wait_job j;

	memset(&j, 0, sizeof(j));
	j.id = id;
	snprintf(j.kind, sizeof(j.kind), "%s", kind);
	j.t0 = now_ns();
	snprintf(j.state, sizeof(j.state), "queued");
	j.tty = isatty(STDERR_FILENO);
	j.utf8 = term_utf8();
	j.attached = 1;
	return wait_job(c, &j);
}

/*
 * wait ID: WAIT for any job's outcome, through reconnects; the exit status
 * follows the outcome, or is 128 + the signal when interrupted.
 */
int
wait_id_run(struct ctl_conn *c, const char *id)
{
	struct wait_job j;

	memset(&j, 0, sizeof(j));
	j.id = id;
	j.t0 = now_ns();
	snprintf(j.state, sizeof(j.state), "waiting");
	j.tty = isatty(STDERR_FILENO);
	j.utf8 = term_utf8();
	return wait_job(c, &j);
}
