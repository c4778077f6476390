/*
 * ctl_wait.c - "submit --wait": wait on the submitting connection for the
 * job's DONE or FAIL, which the daemon sends whenever the job ends. On a
 * terminal, STATUS is polled for a progress line on stderr; replies come
 * in request order, so a FIFO of outstanding requests says which request
 * an OK, JOB or ERR answers. Ctrl-C sends CANCEL and waits briefly for the
 * FAIL it causes, so the job ends on the daemon before the client exits 1.
 */

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "ctl.h"
#include "proto.h"
#include "util.h"

#define CTL_CANCEL_WAIT_MS	2000	/* after Ctrl-C, for the FAIL line */
#define CTL_STATUS_POLL_MS	150	/* progress polling under --wait */

/* What submit --wait knows about its job. */
struct wait_job {
	const char	*id;
	const char	*kind;
	uint64_t	 t0;		/* when OK arrived */
	unsigned	 progress;	/* percent, from STATUS */
	char		 state[16];	/* from STATUS */
	int		 tty;		/* show progress on stderr */
	int		 utf8;
	int		 cancelling;
};

/* The live progress line on stderr. */
static void
wait_draw(struct wait_job *j)
{
	char line[512], bar[256];
	double el = (double)(now_ns() - j->t0) / 1e9;
	const char *fill = j->utf8 ? "\xe2\x96\x88" : "#";
	const char *empty = j->utf8 ? "\xe2\x96\x91" : "-";
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
	snprintf(line, sizeof(line), "job %s %s [%s] %3u%% %6.1fs %s",
	    j->id, j->kind, bar, j->progress, el,
	    j->cancelling ? "cancelling" : j->state);
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

/* Wait for the job's DONE or FAIL on this connection (see the top). */
static int
wait_job(struct ctl_conn *c, struct wait_job *j)
{
	struct ctl_pending q = { { REQ_STATUS }, 0, 0 };
	struct ctl_fields f;
	enum ctl_req req;
	enum ctl_read r;
	uint64_t next_status = now_ns(), cancel_deadline = 0, deadline, pv;
	int status_out = 0;
	char *line, *p, *verb, *id;
	const char *s;

	if (sig_install() == -1)
		return CTL_EXIT_FAIL;
	for (;;) {
		if (j->tty && !status_out && !j->cancelling &&
		    now_ns() >= next_status) {
			if (conn_send(c, "STATUS %s", j->id) == -1)
				return CTL_EXIT_FAIL;
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
			if (!sig_take_stop())
				continue;
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
		if (pending_pop(&q, &req) == -1)
			continue;
		if (req == REQ_STATUS) {
			status_out = 0;
			next_status = deadline_in(CTL_STATUS_POLL_MS);
		}
		if (req != REQ_STATUS || strcasecmp(verb, "JOB") != 0)
			continue;
		(void)proto_token(&p);
		fields_split(&f, p);
		if ((s = fields_get(&f, "state")) != NULL)
			snprintf(j->state, sizeof(j->state), "%s", s);
		pv = fields_u64(&f, "progress");
		j->progress = pv > 100 ? 100 : (unsigned)pv;
	}
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
	j.kind = kind;
	j.t0 = now_ns();
	snprintf(j.state, sizeof(j.state), "queued");
	j.tty = isatty(STDERR_FILENO);
	j.utf8 = term_utf8();
	return wait_job(c, &j);
}
