/*
 * ctl_watch.c - the peers table and "watch", heartbeatctl's live view.
 *
 * After WATCH the daemon sends a HEARTBEAT line every tick. Piped or with
 * --json, each becomes one line of output. On a terminal the view is
 * redrawn in place: a lag sparkline with its p99 and max, the pool's
 * threads and queue from the heartbeat, and the peers table, which is
 * polled with PEERS every second; PEER lines and the END that closes them
 * arrive between heartbeats, and a FIFO of outstanding requests matches
 * replies to requests. Each frame is built in memory and written at once,
 * at most every CTL_REDRAW_MS, so a slow terminal never sees half a frame.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "ctl.h"
#include "proto.h"
#include "util.h"

#define CTL_PEERS_POLL_MS	1000	/* PEERS polling in the watch view */
#define CTL_REDRAW_MS		100	/* fastest redraw of a live view */
#define WATCH_LAG_MAX		512	/* lag samples kept for the sparkline */
#define WATCH_HEAD_LINES	7	/* watch view lines above the peers */

/* Add one PEER line (the part after the verb) to ps. */
/* The cells of one peers-table row, as people read them. */
static void
peer_cells(const struct ctl_rec *pe, const char *cell[5], char rtt[32],
    char ack[32])
{
	const char *r = fields_get(&pe->f, "rtt_us");

	cell[0] = pe->key;
	cell[1] = fields_get(&pe->f, "addr");
	cell[2] = fields_get(&pe->f, "state");
	cell[3] = r != NULL && strcmp(r, "0") == 0 ? "-" : fmt_us(rtt, 32, r);
	cell[4] = fmt_ms(ack, 32, fields_get(&pe->f, "last_ack_ms"));
	if (cell[1] == NULL)
		cell[1] = "-";
	if (cell[2] == NULL)
		cell[2] = "-";
}

/* The colour of a peer's STATE cell. */
static const char *
peer_state_color(const char *state)
{
	if (strcmp(state, "up") == 0)
		return "\033[32m";
	if (strcmp(state, "suspect") == 0)
		return "\033[33m";
	if (strcmp(state, "down") == 0)
		return "\033[31m";
	return "";
}

/*
 * Format the peers table into lines (at most max rows of peers; one more
 * line says how many were left out). color: colour the STATE column.
 * Calls put(line, arg) for each line.
 */
void
peers_table(const struct ctl_recs *ps, size_t max, int color,
    void (*put)(const char *, void *), void *arg)
{
	static const char *head[5] = { "NAME", "ADDR", "STATE", "RTT", "LAST_ACK" };
	const char *cell[5];
	char rtt[32], ack[32], line[1024];
	size_t w[5], i, k, len;

	for (k = 0; k < 5; k++)
		w[k] = strlen(head[k]);
	for (i = 0; i < ps->n && i < max; i++) {
		peer_cells(&ps->v[i], cell, rtt, ack);
		for (k = 0; k < 5; k++)
			if ((len = strlen(cell[k])) > w[k])
				w[k] = len;
	}
	snprintf(line, sizeof(line), "%-*s  %-*s  %-*s  %*s  %*s",
	    (int)w[0], head[0], (int)w[1], head[1], (int)w[2], head[2],
	    (int)w[3], head[3], (int)w[4], head[4]);
	put(line, arg);
	for (i = 0; i < ps->n && i < max; i++) {
		const char *on, *off;

		peer_cells(&ps->v[i], cell, rtt, ack);
		on = color ? peer_state_color(cell[2]) : "";
		off = *on != '\0' ? "\033[0m" : "";
		snprintf(line, sizeof(line), "%-*s  %-*s  %s%-*s%s  %*s  %*s",
		    (int)w[0], cell[0], (int)w[1], cell[1], on, (int)w[2],
		    cell[2], off, (int)w[3], cell[3], (int)w[4], cell[4]);
		put(line, arg);
	}
	if (ps->n > max) {
		snprintf(line, sizeof(line), "... and %zu more", ps->n - max);
		put(line, arg);
	}
}

/* What the watch view shows. */
struct watch {
	const char		*addr;
	int			 utf8, color;
	uint64_t		 threads;
	uint64_t		 lag[WATCH_LAG_MAX];	/* ring of lag_us */
	size_t			 nlag, lag_next;
	int			 have_hb;
	uint64_t		 seq, lag_us, busy, queued, peers_up;
	struct ctl_recs	 peers, next;		/* shown, being read */
	int			 have_peers;
	int			 lines;			/* drawn last time */
	int			 cols, rows;
	FILE			*out;			/* the frame being built */
};

/* qsort(3) order for lag samples. */
static int
u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* One line of the frame, cut to the width, clearing the rest of the row. */
static void __attribute__((format(printf, 2, 3)))
watch_line(struct watch *w, const char *fmt, ...)
{
	char line[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	term_put(w->out, line, w->cols - 1);
	fputs("\033[K\n", w->out);
	w->lines++;
}

/* peers_table's output into the frame. */
static void
watch_put(const char *line, void *arg)
{
	watch_line(arg, "%s", line);
}

/* Redraw the whole view in place: up over the last frame, then overwrite. */
static int
watch_draw(struct watch *w)
{
	static const char *spark_utf8[8] = {
		"\xe2\x96\x81", "\xe2\x96\x82", "\xe2\x96\x83", "\xe2\x96\x84",
		"\xe2\x96\x85", "\xe2\x96\x86", "\xe2\x96\x87", "\xe2\x96\x88"
	};
	static const char spark_ascii[] = "_.-:=+*#";
	uint64_t win[WATCH_LAG_MAX], max = 0, p99 = 0;
	char spark[WATCH_LAG_MAX * 3 + 1], bar[256], t1[32], t2[32], t3[32];
	char *frame = NULL;
	size_t nwin, i, off = 0, flen = 0, maxpeers;
	int width, full, prev = w->lines;
	ssize_t n;

	term_size(STDOUT_FILENO, &w->cols, &w->rows);
	if ((w->out = open_memstream(&frame, &flen)) == NULL)
		return -1;
	if (prev > 0)
		fprintf(w->out, "\r\033[%dA", prev);
	w->lines = 0;

	/* The window: as many recent samples as the sparkline has columns. */
	width = w->cols - 8;
	nwin = width < 1 ? 1 : (size_t)width;
	if (nwin > w->nlag)
		nwin = w->nlag;
	for (i = 0; i < nwin; i++)
		win[i] = w->lag[(w->lag_next + WATCH_LAG_MAX - nwin + i) %
		    WATCH_LAG_MAX];
	for (i = 0; i < nwin; i++) {
		if (win[i] > max)
			max = win[i];
	}
	for (i = 0; i < nwin; i++) {
		unsigned lvl = max ? (unsigned)((win[i] * 7 + max / 2) / max) : 0;

		if (w->utf8)
			off += (size_t)snprintf(spark + off, sizeof(spark) - off,
			    "%s", spark_utf8[lvl]);
		else
			spark[off++] = spark_ascii[lvl];
	}
	spark[off] = '\0';
	if (nwin > 0) {
		qsort(win, nwin, sizeof(win[0]), u64_cmp);
		p99 = win[(nwin * 99 + 99) / 100 - 1];
	}

	if (w->have_hb)
		watch_line(w, "heartbeatd %s   seq %llu   lag %s   (Ctrl-C quits)",
		    w->addr, (unsigned long long)w->seq,
		    fmt_us_num(t1, sizeof(t1), w->lag_us));
	else
		watch_line(w, "heartbeatd %s   waiting for a heartbeat ...",
		    w->addr);
	watch_line(w, "lag    %s", spark);
	watch_line(w, "       p99 %s  max %s  over the last %zu ticks",
	    fmt_us_num(t2, sizeof(t2), p99), fmt_us_num(t3, sizeof(t3), max),
	    nwin);

	width = w->cols - 42;
	width = width < 10 ? 10 : width > 40 ? 40 : width;
	full = w->threads ? (int)((w->busy * (uint64_t)width + w->threads - 1) /
	    w->threads) : 0;
	full = full > width ? width : full;
	for (off = 0, i = 0; i < (size_t)width; i++)
		off += (size_t)snprintf(bar + off, sizeof(bar) - off, "%s",
		    (int)i < full ? (w->utf8 ? "\xe2\x96\x88" : "#") :
		    (w->utf8 ? "\xe2\x96\x91" : "."));
	watch_line(w, "pool   [%s] %llu/%llu busy   queued %llu", bar,
	    (unsigned long long)w->busy, (unsigned long long)w->threads,
	    (unsigned long long)w->queued);

	if (!w->have_peers)
		watch_line(w, "peers  ...");
	else if (w->peers.n == 0)
		watch_line(w, "peers  none configured");
	else
		watch_line(w, "peers  %llu/%zu up",
		    (unsigned long long)w->peers_up, w->peers.n);
	if (w->have_peers && w->peers.n > 0) {
		watch_line(w, "%s", "");
		maxpeers = w->rows > WATCH_HEAD_LINES + 2 ?
		    (size_t)(w->rows - WATCH_HEAD_LINES - 2) : 1;
		if (maxpeers < w->peers.n && maxpeers > 1)
			maxpeers--;	/* room for "... and N more" */
		peers_table(&w->peers, maxpeers, w->color, watch_put, w);
	}
	fputs("\033[J", w->out);
	if (fclose(w->out) == EOF) {
		free(frame);
		return -1;
	}
	w->out = NULL;
	for (off = 0; off < flen; off += (size_t)n) {
		if ((n = write(STDOUT_FILENO, frame + off, flen - off)) == -1) {
			if (errno == EINTR) {
				n = 0;
				continue;
			}
			free(frame);
			return -1;
		}
	}
	free(frame);
	return 0;
}

/* Take a HEARTBEAT line's fields (verb split off) into the view. */
static void
watch_heartbeat(struct watch *w, char *rest)
{
	struct ctl_fields f;

	fields_split(&f, rest);
	w->have_hb = 1;
	w->seq = fields_u64(&f, "seq");
	w->lag_us = fields_u64(&f, "lag_us");
	w->busy = fields_u64(&f, "busy");
	w->queued = fields_u64(&f, "queued");
	w->peers_up = fields_u64(&f, "peers_up");
	if (fields_get(&f, "threads") != NULL)
		w->threads = fields_u64(&f, "threads");
	w->lag[w->lag_next] = w->lag_us;
	w->lag_next = (w->lag_next + 1) % WATCH_LAG_MAX;
	if (w->nlag < WATCH_LAG_MAX)
		w->nlag++;
}

/* Piped or --json: one line per HEARTBEAT until the daemon or a signal stops. */
static int
watch_plain(struct ctl_conn *c)
{
	struct ctl_fields f;
	struct json_obj o;
	enum ctl_read r;
	char *line, *p;

	for (;;) {
		r = conn_readline(c, 0, &line);
		if (r == CTL_SIGNAL) {
			if (sig_take_stop())
				return CTL_EXIT_OK;
			continue;
		}
		if (r != CTL_LINE) {
			conn_read_error(c, r);
			return CTL_EXIT_FAIL;
		}
		p = line;
		if (strcasecmp(proto_token(&p), "HEARTBEAT") != 0)
			continue;
		if (json_mode) {
			fields_split(&f, p);
			jo_begin(&o, stdout);
			jo_fields(&o, &f);
			jo_end(&o);
			fputc('\n', stdout);
		} else {
			while (*p == ' ' || *p == '\t')
				p++;
			puts(p);
		}
		if (fflush(stdout) == EOF)
			return CTL_EXIT_FAIL;
	}
}

/* The terminal view: redraw on heartbeats, poll PEERS every second. */
static int
watch_live(struct ctl_conn *c, struct watch *w)
{
	struct ctl_pending q = { { REQ_PEERS }, 0, 0 };
	enum ctl_req req;
	enum ctl_read r;
	uint64_t now, next_peers = 0, last_draw = 0, deadline;
	int dirty = 1, status = CTL_EXIT_OK, peers_out = 0;
	char *line, *p, *verb;

	fputs("\033[?25l", stdout);	/* hide the cursor */
	fflush(stdout);
	for (;;) {
		now = now_ns();
		if (!peers_out && now >= next_peers) {
			if (conn_send(c, "PEERS") == -1) {
				status = CTL_EXIT_FAIL;
				break;
			}
			pending_push(&q, REQ_PEERS);
			peers_out = 1;
			recs_clear(&w->next);
		}
		if (dirty && now >= last_draw + CTL_REDRAW_MS * HB_NS_PER_MS) {
			if (watch_draw(w) == -1) {
				status = CTL_EXIT_FAIL;
				break;
			}
			last_draw = now;
			dirty = 0;
		}
		deadline = peers_out ? 0 : next_peers;
		if (dirty && (deadline == 0 ||
		    last_draw + CTL_REDRAW_MS * HB_NS_PER_MS < deadline))
			deadline = last_draw + CTL_REDRAW_MS * HB_NS_PER_MS;
		r = conn_readline(c, deadline, &line);
		if (r == CTL_TIMEOUT)
			continue;
		if (r == CTL_SIGNAL) {
			if (sig_take_stop())
				break;
			if (sig_take_winch()) {
				fputs("\033[H\033[2J", stdout);
				fflush(stdout);
				w->lines = 0;
				dirty = 1;
				last_draw = 0;
			}
			continue;
		}
		if (r != CTL_LINE) {
			fputs("\033[?25h", stdout);
			fflush(stdout);
			conn_read_error(c, r);
			return CTL_EXIT_FAIL;
		}
		p = line;
		verb = proto_token(&p);
		if (strcasecmp(verb, "HEARTBEAT") == 0) {
			watch_heartbeat(w, p);
			dirty = 1;
		} else if (strcasecmp(verb, "PEER") == 0) {
			recs_add(&w->next, p);
		} else if (pending_pop(&q, &req) == 0 && req == REQ_PEERS) {
			/* END, or an ERR: the PEERS reply is complete */
			struct ctl_recs t = w->peers;

			w->peers = w->next;
			w->next = t;
			w->have_peers = 1;
			peers_out = 0;
			next_peers = deadline_in(CTL_PEERS_POLL_MS);
			dirty = 1;
		}
	}
	fputs("\033[0m\033[?25h", stdout);	/* restore the cursor */
	fflush(stdout);
	return status;
}

/*
 * Follow the daemon's heartbeats until a signal or a lost connection: the
 * live view when stdout is a terminal (and not --json), else one line each.
 */
int
watch_run(struct ctl_conn *c)
{
	struct watch w;
	struct ctl_fields f;
	char *p;
	int live = !json_mode && isatty(STDOUT_FILENO), status;

	memset(&w, 0, sizeof(w));
	w.addr = c->addr;
	if (live) {
		if ((p = conn_request(c, "STATS", "STATS")) == NULL)
			return CTL_EXIT_FAIL;
		fields_split(&f, p);
		w.threads = fields_u64(&f, "threads");
	}
	if (conn_request(c, "OK", "WATCH") == NULL)
		return CTL_EXIT_FAIL;
	if (sig_install() == -1)
		return CTL_EXIT_FAIL;
	if (!live)
		return watch_plain(c);
	w.utf8 = term_utf8();
	w.color = getenv("NO_COLOR") == NULL;
	status = watch_live(c, &w);
	recs_clear(&w.peers);
	recs_clear(&w.next);
	free(w.peers.v);
	free(w.next.v);
	return status;
}
