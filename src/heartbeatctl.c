/*
 * heartbeatctl.c - the command-line client (interface.md section 8).
 *
 * One TCP connection to the daemon's work port (section 4), driven with
 * poll(2) and a line buffer; no libevent. Simple commands send one request
 * and read its reply under a timeout. "submit --wait" and "watch" run a
 * small loop instead: replies come in request order while DONE, FAIL and
 * HEARTBEAT lines arrive whenever the daemon has them, so every line is
 * dispatched by its first word, and a FIFO of outstanding requests says
 * which request an OK or ERR answers. Signals reach that loop through a
 * self-pipe, so Ctrl-C can cancel the job on the daemon, or restore the
 * terminal, before the client exits.
 *
 * Exit status: 0 on success or DONE; 1 on FAIL, an ERR reply, a timeout or
 * a lost connection; 2 on bad usage or when no connection can be made.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <langinfo.h>
#include <locale.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto.h"
#include "util.h"

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL		0
#endif

#define CTL_EXIT_OK		0
#define CTL_EXIT_FAIL		1
#define CTL_EXIT_USAGE		2

#define CTL_DEFAULT_ADDR	"127.0.0.1:7070"
#define CTL_DEFAULT_PORT	"7070"
#define CTL_TIMEOUT_MS		10000	/* connect, and each reply */
#define CTL_CANCEL_WAIT_MS	2000	/* after Ctrl-C, for the FAIL line */
#define CTL_STATUS_POLL_MS	150	/* progress polling under --wait */
#define CTL_PEERS_POLL_MS	1000	/* PEERS polling in the watch view */
#define CTL_REDRAW_MS		100	/* fastest redraw of a live view */
#define CTL_BUF_MAX		65536	/* longest reply line we accept */
#define CTL_REQ_MAX		4096	/* the daemon's default max_line */
#define CTL_FIELDS_MAX		64	/* key=value fields in one reply */
#define CTL_PENDING_MAX		8	/* outstanding requests in a loop */
#define CTL_JSON_INT_MAX	9007199254740991ull /* 2^53 - 1 */
#define WATCH_LAG_MAX		512	/* lag samples kept for the sparkline */
#define WATCH_HEAD_LINES	7	/* watch view lines above the peers */

enum ctl_read { CTL_LINE, CTL_TIMEOUT, CTL_EOF, CTL_SIGNAL, CTL_ERROR };

/* What an outstanding request in a loop was, to match its reply. */
enum ctl_req { REQ_STATUS, REQ_CANCEL, REQ_PEERS };

struct ctl_conn {
	int		 fd;
	const char	*addr;		/* as given, for messages */
	size_t		 off;		/* start of unread bytes in buf */
	size_t		 len;		/* unread bytes */
	char		 buf[CTL_BUF_MAX];
};

/* The key=value fields of one reply, split in place. */
struct ctl_fields {
	size_t	 n;
	char	*key[CTL_FIELDS_MAX];
	char	*val[CTL_FIELDS_MAX];
};

/* One PEER line, owned: line holds the storage name and fields point into. */
struct ctl_peer {
	char			*line;
	const char		*name;
	struct ctl_fields	 f;
};

struct ctl_peers {
	struct ctl_peer	*v;
	size_t		 n, cap;
};

/* A tiny FIFO of request kinds, oldest first. */
struct ctl_pending {
	enum ctl_req	 req[CTL_PENDING_MAX];
	size_t		 head, n;
};

struct json_obj {
	FILE	*f;
	int	 n;
};

struct ctl_cmd {
	const char	*name;
	int		 minargs, maxargs;	/* maxargs -1: any */
	int		(*run)(struct ctl_conn *, char **);
};

static int	 json_mode;
static int	 wait_mode;
static int	 progress_shown;	/* a progress line is on stderr */
static int	 sig_pipe[2] = { -1, -1 };
static volatile sig_atomic_t sig_stop;
static volatile sig_atomic_t sig_winch;

static int	 cmd_ping(struct ctl_conn *, char **);
static int	 cmd_stats(struct ctl_conn *, char **);
static int	 cmd_peers(struct ctl_conn *, char **);
static int	 cmd_watch(struct ctl_conn *, char **);
static int	 cmd_submit(struct ctl_conn *, char **);
static int	 cmd_cancel(struct ctl_conn *, char **);
static int	 cmd_status(struct ctl_conn *, char **);

static const struct ctl_cmd ctl_cmds[] = {
	{ "ping",	0, 0,	cmd_ping },
	{ "stats",	0, 0,	cmd_stats },
	{ "peers",	0, 0,	cmd_peers },
	{ "watch",	0, 0,	cmd_watch },
	{ "submit",	1, -1,	cmd_submit },
	{ "cancel",	1, 1,	cmd_cancel },
	{ "status",	1, 1,	cmd_status },
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: heartbeatctl [-H HOST:PORT] [-a TOKEN] [--json] COMMAND\n"
	    "commands:\n"
	    "  ping                         check the daemon answers, show the round trip\n"
	    "  stats                        the daemon's counters\n"
	    "  peers                        the peer table\n"
	    "  watch                        live heartbeats, pool and peers (Ctrl-C quits)\n"
	    "  submit KIND [key=value]... [--wait]\n"
	    "                               submit a job; --wait waits for its outcome\n"
	    "  status ID                    the state of a job\n"
	    "  cancel ID                    cancel a queued or running job\n"
	    "options:\n"
	    "  -H, --host HOST:PORT   the daemon's work address (default $HEARTBEAT_HOST,\n"
	    "                         else " CTL_DEFAULT_ADDR "; IPv6 as [addr]:port)\n"
	    "  -a, --auth TOKEN       send AUTH TOKEN first (default $HEARTBEAT_TOKEN)\n"
	    "  -j, --json             JSON output for scripts\n"
	    "  -w, --wait             with submit: wait for the job's outcome\n"
	    "  -h, --help             this text\n"
	    "  -V, --version          print the version\n"
	    "exit status: 0 success or DONE, 1 FAIL or error, 2 bad usage or no connection\n");
}

static void __attribute__((format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("heartbeatctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'heartbeatctl --help'.\n", stderr);
}

/* JSON: a string with the escapes RFC 8259 requires. */
static void
json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", f);
		else if (ch == '\t')
			fputs("\\t", f);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

/* An integer, no leading zero, exact in a double: safe as a JSON number. */
static int
json_is_int(const char *s)
{
	uint64_t v;

	if (s[0] == '-' && s[1] != '0')
		s++;
	if (s[0] == '0' && s[1] != '\0')
		return 0;
	return parse_u64(s, 0, CTL_JSON_INT_MAX, &v) == 0;
}

static void
jo_begin(struct json_obj *o, FILE *f)
{
	o->f = f;
	o->n = 0;
	fputc('{', f);
}

static void
jo_key(struct json_obj *o, const char *k)
{
	if (o->n++ > 0)
		fputc(',', o->f);
	json_str(o->f, k);
	fputc(':', o->f);
}

static void
jo_str(struct json_obj *o, const char *k, const char *v)
{
	jo_key(o, k);
	json_str(o->f, v);
}

/* A reply value: a number when it looks like one, else a string. */
static void
jo_val(struct json_obj *o, const char *k, const char *v)
{
	jo_key(o, k);
	if (json_is_int(v))
		fputs(v, o->f);
	else
		json_str(o->f, v);
}

static void
jo_u64(struct json_obj *o, const char *k, uint64_t v)
{
	jo_key(o, k);
	fprintf(o->f, "%llu", (unsigned long long)v);
}

static void
jo_fields(struct json_obj *o, const struct ctl_fields *f)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		jo_val(o, f->key[i], f->val[i]);
}

static void
jo_end(struct json_obj *o)
{
	fputc('}', o->f);
}

/* Take a transient progress line off stderr before any other output. */
static void
progress_clear(void)
{
	if (progress_shown) {
		fputs("\r\033[K", stderr);
		progress_shown = 0;
	}
}

/*
 * Report a runtime error: a line on stderr for people (prefixed with the
 * code when show_code) and, with --json, {"error":code,"message":msg} on
 * stdout for scripts.
 */
static void
ctl_report(const char *code, int show_code, const char *msg)
{
	struct json_obj o;

	progress_clear();
	if (show_code)
		fprintf(stderr, "heartbeatctl: %s: %s\n", code, msg);
	else
		fprintf(stderr, "heartbeatctl: %s\n", msg);
	if (json_mode) {
		jo_begin(&o, stdout);
		jo_str(&o, "error", code);
		jo_str(&o, "message", msg);
		jo_end(&o);
		fputc('\n', stdout);
		fflush(stdout);
	}
}

static void __attribute__((format(printf, 2, 3)))
ctl_error(const char *code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ctl_report(code, 0, msg);
}

static void
fields_split(struct ctl_fields *f, char *s)
{
	f->n = proto_split_kv(s, f->key, f->val, CTL_FIELDS_MAX);
}

static char *
fields_get(const struct ctl_fields *f, const char *key)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		if (strcmp(f->key[i], key) == 0)
			return f->val[i];
	return NULL;
}

static uint64_t
fields_u64(const struct ctl_fields *f, const char *key)
{
	const char *v = fields_get(f, key);
	uint64_t n;

	if (v == NULL || parse_u64(v, 0, UINT64_MAX, &n) == -1)
		return 0;
	return n;
}

/* A duration in microseconds as people read it: 85us, 1.25ms, 3.40s. */
static const char *
fmt_us(char *buf, size_t n, const char *us)
{
	uint64_t v;

	if (us == NULL)
		return "-";
	if (parse_u64(us, 0, UINT64_MAX, &v) == -1)
		return us;
	if (v < 1000)
		snprintf(buf, n, "%lluus", (unsigned long long)v);
	else if (v < 1000000)
		snprintf(buf, n, "%.2fms", (double)v / 1e3);
	else
		snprintf(buf, n, "%.2fs", (double)v / 1e6);
	return buf;
}

static const char *
fmt_us_num(char *buf, size_t n, uint64_t us)
{
	char num[24];

	snprintf(num, sizeof(num), "%llu", (unsigned long long)us);
	fmt_us(buf, n, num);
	return buf;
}

/* An age in milliseconds; negative (never) is "-". */
static const char *
fmt_ms(char *buf, size_t n, const char *ms)
{
	uint64_t v;

	if (ms == NULL || ms[0] == '-')
		return "-";
	if (parse_u64(ms, 0, UINT64_MAX, &v) == -1)
		return ms;
	if (v < 1000)
		snprintf(buf, n, "%llums", (unsigned long long)v);
	else
		snprintf(buf, n, "%.1fs", (double)v / 1e3);
	return buf;
}

/* A request argument must be one non-empty token without control bytes. */
static int
arg_is_token(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			return 0;
	return 1;
}

static int
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
		return -1;
	return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/* Milliseconds until deadline (0: none) as a poll(2) timeout. */
static int
poll_timeout(uint64_t deadline)
{
	uint64_t now;

	if (deadline == 0)
		return -1;
	now = now_ns();
	if (now >= deadline)
		return 0;
	return (int)((deadline - now + HB_NS_PER_MS - 1) / HB_NS_PER_MS);
}

static uint64_t
deadline_in(unsigned ms)
{
	return now_ns() + (uint64_t)ms * HB_NS_PER_MS;
}

/* Try one address until deadline; returns the connected fd or -1 with errno. */
static int
conn_try(const struct addrinfo *ai, uint64_t deadline)
{
	struct pollfd pfd;
	socklen_t len = sizeof(int);
	int fd, err, r;

	if ((fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol)) == -1)
		return -1;
	if (set_nonblock(fd) == -1)
		goto fail;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS)
		goto fail;
	pfd.fd = fd;
	pfd.events = POLLOUT;
	do
		r = poll(&pfd, 1, poll_timeout(deadline));
	while (r == -1 && errno == EINTR);
	if (r == 0)
		errno = ETIMEDOUT;
	if (r <= 0)
		goto fail;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		goto fail;
	if (err == 0)
		return fd;
	errno = err;
fail:
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

/* Connect to c->addr, trying each address it resolves to. */
static int
conn_open(struct ctl_conn *c)
{
	char host[256], port[8];
	uint16_t p;
	struct addrinfo hints, *res, *ai;
	uint64_t deadline = deadline_in(CTL_TIMEOUT_MS);
	int gai, err = ECONNREFUSED, one = 1;

	c->fd = -1;
	c->off = c->len = 0;
	if (addr_split(c->addr, host, sizeof(host), &p) == -1) {
		ctl_error("connect-failed", "bad address '%s'", c->addr);
		return -1;
	}
	snprintf(port, sizeof(port), "%u", p);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
	if ((gai = getaddrinfo(host, port, &hints, &res)) != 0) {
		ctl_error("connect-failed", "cannot resolve %s: %s", host,
		    gai_strerror(gai));
		return -1;
	}
	for (ai = res; ai != NULL && c->fd == -1; ai = ai->ai_next) {
		if ((c->fd = conn_try(ai, deadline)) == -1)
			err = errno;
	}
	freeaddrinfo(res);
	if (c->fd == -1) {
		ctl_error("connect-failed", "cannot connect to %s: %s", c->addr,
		    strerror(err));
		return -1;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}

/* Send one request line; reports a failure itself. */
static int __attribute__((format(printf, 2, 3)))
conn_send(struct ctl_conn *c, const char *fmt, ...)
{
	char line[CTL_REQ_MAX + 2];
	struct pollfd pfd;
	uint64_t deadline = deadline_in(CTL_TIMEOUT_MS);
	va_list ap;
	size_t off = 0, len;
	ssize_t n;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(line, CTL_REQ_MAX + 1, fmt, ap);
	va_end(ap);
	if (r < 0 || r > CTL_REQ_MAX) {
		ctl_error("bad-request", "request longer than %d bytes", CTL_REQ_MAX);
		return -1;
	}
	len = (size_t)r;
	line[len++] = '\n';
	while (off < len) {
		n = send(c->fd, line + off, len - off, MSG_NOSIGNAL);
		if (n >= 0) {
			off += (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			goto fail;
		pfd.fd = c->fd;
		pfd.events = POLLOUT;
		if ((r = poll(&pfd, 1, poll_timeout(deadline))) == 0) {
			errno = ETIMEDOUT;
			goto fail;
		}
		if (r == -1 && errno != EINTR)
			goto fail;
	}
	return 0;
fail:
	ctl_error("connection-lost", "lost connection to %s: %s", c->addr,
	    strerror(errno));
	return -1;
}

/*
 * The next line from the daemon (CR LF or LF removed, valid until the next
 * call), or why there is none: the deadline (0: none) passed, the daemon
 * closed, an error, or a signal arrived on the self-pipe.
 */
static enum ctl_read
conn_readline(struct ctl_conn *c, uint64_t deadline, char **line)
{
	struct pollfd pfd[2];
	char *nl, drain[64];
	ssize_t n;
	nfds_t nfds;
	int r;

	for (;;) {
		if ((nl = memchr(c->buf + c->off, '\n', c->len)) != NULL) {
			*line = c->buf + c->off;
			*nl = '\0';
			if (nl > *line && nl[-1] == '\r')
				nl[-1] = '\0';
			c->len -= (size_t)(nl + 1 - *line);
			c->off = (size_t)(nl + 1 - c->buf);
			return CTL_LINE;
		}
		if (c->off > 0) {
			memmove(c->buf, c->buf + c->off, c->len);
			c->off = 0;
		}
		if (c->len == sizeof(c->buf)) {
			errno = EMSGSIZE;
			return CTL_ERROR;
		}
		pfd[0].fd = c->fd;
		pfd[0].events = POLLIN;
		pfd[1].fd = sig_pipe[0];
		pfd[1].events = POLLIN;
		nfds = sig_pipe[0] == -1 ? 1 : 2;
		if ((r = poll(pfd, nfds, poll_timeout(deadline))) == -1) {
			if (errno == EINTR)
				continue;
			return CTL_ERROR;
		}
		if (r == 0)
			return CTL_TIMEOUT;
		if (nfds == 2 && (pfd[1].revents & POLLIN)) {
			while (read(sig_pipe[0], drain, sizeof(drain)) > 0)
				;
			return CTL_SIGNAL;
		}
		n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
		if (n == 0)
			return CTL_EOF;
		if (n < 0 && errno != EINTR && errno != EAGAIN &&
		    errno != EWOULDBLOCK)
			return CTL_ERROR;
		if (n > 0)
			c->len += (size_t)n;
	}
}

/* Report a failed read while a reply or an outcome was due. */
static void
conn_read_error(const struct ctl_conn *c, enum ctl_read r)
{
	if (r == CTL_TIMEOUT)
		ctl_error("timeout", "no reply from %s within %d s", c->addr,
		    CTL_TIMEOUT_MS / 1000);
	else if (r == CTL_EOF)
		ctl_error("connection-lost", "connection closed by %s", c->addr);
	else if (errno == EMSGSIZE)
		ctl_error("protocol", "reply from %s longer than %d bytes",
		    c->addr, CTL_BUF_MAX);
	else
		ctl_error("connection-lost", "lost connection to %s: %s",
		    c->addr, strerror(errno));
}

/* The reply to a request, under the reply timeout; reports failures. */
static int
conn_reply(struct ctl_conn *c, char **line)
{
	uint64_t deadline = deadline_in(CTL_TIMEOUT_MS);
	enum ctl_read r;

	while ((r = conn_readline(c, deadline, line)) == CTL_SIGNAL)
		;
	if (r == CTL_LINE)
		return 0;
	conn_read_error(c, r);
	return -1;
}

/* Report "ERR <code> <text>" from the daemon. */
static void
reply_err(char *rest)
{
	char *code = proto_token(&rest);

	while (*rest == ' ' || *rest == '\t')
		rest++;
	if (*code == '\0')
		code = "error";
	if (*rest != '\0')
		ctl_report(code, 1, rest);
	else
		ctl_report(code, 0, code);
}

/*
 * Check a reply's first word: the rest of the line if it is want; an ERR
 * or anything else is reported and gives NULL.
 */
static char *
reply_expect(char *line, const char *want)
{
	char copy[256], *p = line, *verb;

	snprintf(copy, sizeof(copy), "%s", line);
	verb = proto_token(&p);
	if (strcasecmp(verb, want) == 0)
		return p;
	if (strcasecmp(verb, "ERR") == 0)
		reply_err(p);
	else
		ctl_error("protocol", "unexpected reply: %s", copy);
	return NULL;
}

/* Send a request and read the reply, which must start with want. */
static char *
conn_request(struct ctl_conn *c, const char *want, const char *req)
{
	char *line;

	if (conn_send(c, "%s", req) == -1 || conn_reply(c, &line) == -1)
		return NULL;
	return reply_expect(line, want);
}

static int
ctl_auth(struct ctl_conn *c, const char *token)
{
	char *line;

	if (conn_send(c, "AUTH %s", token) == -1 || conn_reply(c, &line) == -1)
		return -1;
	return reply_expect(line, "OK") == NULL ? -1 : 0;
}

static void
pending_push(struct ctl_pending *q, enum ctl_req req)
{
	if (q->n < CTL_PENDING_MAX)
		q->req[(q->head + q->n++) % CTL_PENDING_MAX] = req;
}

/* The oldest outstanding request, which the reply in hand answers. */
static int
pending_pop(struct ctl_pending *q, enum ctl_req *req)
{
	if (q->n == 0)
		return -1;
	*req = q->req[q->head];
	q->head = (q->head + 1) % CTL_PENDING_MAX;
	q->n--;
	return 0;
}

static void
sig_handler(int sig)
{
	int saved = errno;
	ssize_t n;

	if (sig == SIGWINCH)
		sig_winch = 1;
	else
		sig_stop = sig;
	n = write(sig_pipe[1], "", 1);
	(void)n;
	errno = saved;
}

/* Route SIGINT, SIGTERM, SIGHUP and SIGWINCH into conn_readline. */
static int
sig_install(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGWINCH };
	struct sigaction sa;
	size_t i;

	if (pipe(sig_pipe) == -1 || set_nonblock(sig_pipe[0]) == -1 ||
	    set_nonblock(sig_pipe[1]) == -1) {
		ctl_error("internal", "pipe: %s", strerror(errno));
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sig_handler;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	return 0;
}

static void
term_size(int fd, int *cols, int *rows)
{
	struct winsize ws;

	*cols = 80;
	*rows = 24;
	if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
		*cols = ws.ws_col;
		*rows = ws.ws_row > 0 ? ws.ws_row : 24;
	}
}

static int
term_utf8(void)
{
	const char *cs = nl_langinfo(CODESET);

	return cs != NULL && (strcasecmp(cs, "UTF-8") == 0 ||
	    strcasecmp(cs, "utf8") == 0);
}

/*
 * Write s to f cut to cols terminal columns: escape sequences take none,
 * a UTF-8 character takes one. A cut resets attributes.
 */
static void
term_put(FILE *f, const char *s, int cols)
{
	int col = 0, esc = 0;

	while (*s != '\0') {
		unsigned char ch = (unsigned char)*s;

		if (ch == '\033' && s[1] == '[') {
			/* CSI: parameters, then one final byte in @..~ */
			esc = 1;
			fputs("\033[", f);
			for (s += 2; *s != '\0' && (*s < '@' || *s > '~'); s++)
				fputc(*s, f);
			if (*s != '\0')
				fputc(*s++, f);
			continue;
		}
		if ((ch & 0xc0) != 0x80 && col++ >= cols)
			break;
		fputc(ch, f);
		s++;
	}
	if (esc && *s != '\0')
		fputs("\033[0m", f);
}

/* Add one PEER line (the part after the verb) to ps. */
static void
peers_add(struct ctl_peers *ps, const char *rest)
{
	struct ctl_peer *pe;
	char *p;

	if (ps->n == ps->cap) {
		ps->cap = ps->cap ? ps->cap * 2 : 8;
		ps->v = xrealloc(ps->v, ps->cap * sizeof(*ps->v));
	}
	pe = &ps->v[ps->n++];
	pe->line = xstrdup(rest);
	p = pe->line;
	pe->name = proto_token(&p);
	fields_split(&pe->f, p);
}

static void
peers_clear(struct ctl_peers *ps)
{
	size_t i;

	for (i = 0; i < ps->n; i++)
		free(ps->v[i].line);
	ps->n = 0;
}

/* Read PEER lines until END into ps; reports failures. */
static int
peers_read(struct ctl_conn *c, struct ctl_peers *ps)
{
	char *line, *p;

	for (;;) {
		if (conn_reply(c, &line) == -1)
			return -1;
		if (strcasecmp(line, "END") == 0)
			return 0;
		if ((p = reply_expect(line, "PEER")) == NULL)
			return -1;
		peers_add(ps, p);
	}
}

/* The cells of one peers-table row, as people read them. */
static void
peer_cells(const struct ctl_peer *pe, const char *cell[5], char rtt[32],
    char ack[32])
{
	const char *r = fields_get(&pe->f, "rtt_us");

	cell[0] = pe->name;
	cell[1] = fields_get(&pe->f, "addr");
	cell[2] = fields_get(&pe->f, "state");
	cell[3] = r != NULL && strcmp(r, "0") == 0 ? "-" : fmt_us(rtt, 32, r);
	cell[4] = fmt_ms(ack, 32, fields_get(&pe->f, "last_ack_ms"));
	if (cell[1] == NULL)
		cell[1] = "-";
	if (cell[2] == NULL)
		cell[2] = "-";
}

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
static void
peers_table(const struct ctl_peers *ps, size_t max, int color,
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

static void
put_stdout(const char *line, void *arg)
{
	(void)arg;
	puts(line);
}

/* Print key=value fields as aligned "key  value" lines, or one JSON object. */
static void
print_fields(const char *idkey, const char *id, const struct ctl_fields *f)
{
	struct json_obj o;
	size_t i, w = idkey ? strlen(idkey) : 0;

	if (json_mode) {
		jo_begin(&o, stdout);
		if (idkey != NULL)
			jo_val(&o, idkey, id);
		jo_fields(&o, f);
		jo_end(&o);
		fputc('\n', stdout);
		return;
	}
	for (i = 0; i < f->n; i++)
		if (strlen(f->key[i]) > w)
			w = strlen(f->key[i]);
	if (idkey != NULL)
		printf("%-*s  %s\n", (int)w, idkey, id);
	for (i = 0; i < f->n; i++)
		printf("%-*s  %s\n", (int)w, f->key[i], f->val[i]);
}

static int
cmd_ping(struct ctl_conn *c, char **args)
{
	struct json_obj o;
	uint64_t t0 = now_ns(), rtt;

	(void)args;

	if (conn_request(c, "PONG", "PING") == NULL)
		return CTL_EXIT_FAIL;
	rtt = (now_ns() - t0) / HB_NS_PER_US;
	if (json_mode) {
		jo_begin(&o, stdout);
		jo_str(&o, "reply", "PONG");
		jo_str(&o, "addr", c->addr);
		jo_u64(&o, "rtt_us", rtt);
		jo_end(&o);
		fputc('\n', stdout);
	} else {
		printf("PONG from %s: time=%.3f ms\n", c->addr, (double)rtt / 1e3);
	}
	return CTL_EXIT_OK;
}

static int
cmd_stats(struct ctl_conn *c, char **args)
{
	struct ctl_fields f;
	char *p;

	(void)args;

	if ((p = conn_request(c, "STATS", "STATS")) == NULL)
		return CTL_EXIT_FAIL;
	fields_split(&f, p);
	print_fields(NULL, NULL, &f);
	return CTL_EXIT_OK;
}

static int
cmd_peers(struct ctl_conn *c, char **args)
{
	struct ctl_peers ps = { NULL, 0, 0 };
	struct json_obj o;
	size_t i;
	int status = CTL_EXIT_FAIL;

	(void)args;

	if (conn_send(c, "PEERS") == -1 || peers_read(c, &ps) == -1)
		goto done;
	if (json_mode) {
		fputs("{\"peers\":[", stdout);
		for (i = 0; i < ps.n; i++) {
			if (i > 0)
				fputc(',', stdout);
			jo_begin(&o, stdout);
			jo_str(&o, "name", ps.v[i].name);
			jo_fields(&o, &ps.v[i].f);
			jo_end(&o);
		}
		fputs("]}\n", stdout);
	} else if (ps.n == 0) {
		puts("no peers");
	} else {
		peers_table(&ps, ps.n, 0, put_stdout, NULL);
	}
	status = CTL_EXIT_OK;
done:
	peers_clear(&ps);
	free(ps.v);
	return status;
}

static int
cmd_status(struct ctl_conn *c, char **args)
{
	struct ctl_fields f;
	char *p, *id;

	if (conn_send(c, "STATUS %s", args[0]) == -1 || conn_reply(c, &p) == -1)
		return CTL_EXIT_FAIL;
	if ((p = reply_expect(p, "JOB")) == NULL)
		return CTL_EXIT_FAIL;
	id = proto_token(&p);
	fields_split(&f, p);
	print_fields("id", id, &f);
	return CTL_EXIT_OK;
}

static int
cmd_cancel(struct ctl_conn *c, char **args)
{
	struct json_obj o;
	char *p;

	if (conn_send(c, "CANCEL %s", args[0]) == -1 || conn_reply(c, &p) == -1)
		return CTL_EXIT_FAIL;
	if ((p = reply_expect(p, "OK")) == NULL)
		return CTL_EXIT_FAIL;
	if (json_mode) {
		jo_begin(&o, stdout);
		jo_val(&o, "id", args[0]);
		jo_str(&o, "cancel", "requested");
		jo_end(&o);
		fputc('\n', stdout);
	} else {
		printf("job %s: cancel requested\n", args[0]);
	}
	return CTL_EXIT_OK;
}

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
	progress_shown = 1;
}

/* Replace control bytes (unescaped from a quoted value) for a terminal. */
static void
text_sanitize(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < ' ' || *s == 0x7f)
			*s = '?';
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

/*
 * Wait for the job's DONE or FAIL on this connection. On a terminal, poll
 * STATUS for a progress line; Ctrl-C sends CANCEL and waits briefly for
 * the FAIL it causes, so the job ends on the daemon and we exit 1.
 */
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
			if (sig_stop == 0)
				continue;
			sig_stop = 0;
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

static int
cmd_submit(struct ctl_conn *c, char **args)
{
	char req[CTL_REQ_MAX + 1], id[24];
	struct wait_job j;
	struct json_obj o;
	size_t off;
	char *p;
	int i;

	off = (size_t)snprintf(req, sizeof(req), "SUBMIT %s", args[0]);
	for (i = 1; args[i] != NULL && off < sizeof(req); i++)
		off += (size_t)snprintf(req + off, sizeof(req) - off, " %s",
		    args[i]);
	if (off >= sizeof(req)) {
		ctl_error("bad-request", "request longer than %d bytes",
		    CTL_REQ_MAX);
		return CTL_EXIT_FAIL;
	}
	if ((p = conn_request(c, "OK", req)) == NULL)
		return CTL_EXIT_FAIL;
	snprintf(id, sizeof(id), "%s", proto_token(&p));
	if (!wait_mode) {
		if (json_mode) {
			jo_begin(&o, stdout);
			jo_val(&o, "id", id);
			jo_end(&o);
			fputc('\n', stdout);
		} else {
			printf("%s\n", id);
		}
		return CTL_EXIT_OK;
	}
	memset(&j, 0, sizeof(j));
	j.id = id;
	j.kind = args[0];
	j.t0 = now_ns();
	snprintf(j.state, sizeof(j.state), "queued");
	j.tty = isatty(STDERR_FILENO);
	j.utf8 = term_utf8();
	return wait_job(c, &j);
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
	struct ctl_peers	 peers, next;		/* shown, being read */
	int			 have_peers;
	int			 lines;			/* drawn last time */
	int			 cols, rows;
	FILE			*out;			/* the frame being built */
};

static int
u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

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
			if (sig_stop != 0)
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
			peers_clear(&w->next);
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
			if (sig_stop != 0)
				break;
			if (sig_winch) {
				sig_winch = 0;
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
			peers_add(&w->next, p);
		} else if (pending_pop(&q, &req) == 0 && req == REQ_PEERS) {
			/* END, or an ERR: the PEERS reply is complete */
			struct ctl_peers t = w->peers;

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

static int
cmd_watch(struct ctl_conn *c, char **args)
{
	struct watch w;
	struct ctl_fields f;
	char *p;
	int live = !json_mode && isatty(STDOUT_FILENO), status;

	(void)args;

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
	peers_clear(&w.peers);
	peers_clear(&w.next);
	free(w.peers.v);
	free(w.next.v);
	return status;
}

/* Check a command's arguments before connecting; reports a usage error. */
static int
check_args(const struct ctl_cmd *cmd, char **args, int nargs)
{
	uint64_t id;
	int i;

	if (nargs < cmd->minargs || (cmd->maxargs >= 0 && nargs > cmd->maxargs)) {
		usage_error("%s: wrong number of arguments", cmd->name);
		return -1;
	}
	if (wait_mode && strcmp(cmd->name, "submit") != 0) {
		usage_error("--wait goes with submit only");
		return -1;
	}
	if (cmd->run == cmd_cancel || cmd->run == cmd_status) {
		if (parse_u64(args[0], 1, UINT64_MAX, &id) == -1) {
			usage_error("%s: bad job id '%s'", cmd->name, args[0]);
			return -1;
		}
	}
	if (cmd->run == cmd_submit) {
		if (!arg_is_token(args[0]) || strchr(args[0], '=') != NULL) {
			usage_error("submit: bad kind '%s'", args[0]);
			return -1;
		}
		for (i = 1; i < nargs; i++) {
			if (!arg_is_token(args[i]) || strchr(args[i], '=') ==
			    NULL || args[i][0] == '=') {
				usage_error("submit: '%s' is not key=value",
				    args[i]);
				return -1;
			}
		}
	}
	return 0;
}

/* "HOST:PORT" as given, or with the default port when it has none. */
static const char *
host_with_port(const char *s, char *buf, size_t n)
{
	size_t len = strlen(s);

	if (strchr(s, ':') == NULL || (s[0] == '[' && len > 0 &&
	    s[len - 1] == ']')) {
		snprintf(buf, n, "%s:%s", s, CTL_DEFAULT_PORT);
		return buf;
	}
	return s;
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "host",	required_argument,	NULL,	'H' },
		{ "auth",	required_argument,	NULL,	'a' },
		{ "json",	no_argument,		NULL,	'j' },
		{ "wait",	no_argument,		NULL,	'w' },
		{ "help",	no_argument,		NULL,	'h' },
		{ "version",	no_argument,		NULL,	'V' },
		{ NULL,		0,			NULL,	0 }
	};
	struct ctl_conn *c;
	const struct ctl_cmd *cmd = NULL;
	const char *host, *token;
	char hostbuf[300], hbuf[256];
	uint16_t port;
	size_t i;
	int ch, status;

	setlocale(LC_CTYPE, "");
	host = getenv("HEARTBEAT_HOST");
	if (host == NULL || *host == '\0')
		host = CTL_DEFAULT_ADDR;
	token = getenv("HEARTBEAT_TOKEN");
	if (token != NULL && *token == '\0')
		token = NULL;
	while ((ch = getopt_long(argc, argv, "H:a:jwhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'H':
			host = optarg;
			break;
		case 'a':
			token = optarg;
			break;
		case 'j':
			json_mode = 1;
			break;
		case 'w':
			wait_mode = 1;
			break;
		case 'h':
			usage(stdout);
			return CTL_EXIT_OK;
		case 'V':
			printf("heartbeatctl %s\n", PACKAGE_VERSION);
			return CTL_EXIT_OK;
		default:
			fputs("Try 'heartbeatctl --help'.\n", stderr);
			return CTL_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage_error("no command given");
		return CTL_EXIT_USAGE;
	}
	for (i = 0; i < sizeof(ctl_cmds) / sizeof(ctl_cmds[0]); i++)
		if (strcmp(argv[optind], ctl_cmds[i].name) == 0)
			cmd = &ctl_cmds[i];
	if (cmd == NULL) {
		usage_error("unknown command '%s'", argv[optind]);
		return CTL_EXIT_USAGE;
	}
	if (check_args(cmd, argv + optind + 1, argc - optind - 1) == -1)
		return CTL_EXIT_USAGE;
	host = host_with_port(host, hostbuf, sizeof(hostbuf));
	if (addr_split(host, hbuf, sizeof(hbuf), &port) == -1) {
		usage_error("bad address '%s' (want HOST:PORT or [IPv6]:PORT)",
		    host);
		return CTL_EXIT_USAGE;
	}
	if (token != NULL && !arg_is_token(token)) {
		usage_error("the auth token must be one word without spaces");
		return CTL_EXIT_USAGE;
	}

	c = xmalloc(sizeof(*c));
	c->addr = host;
	if (conn_open(c) == -1) {
		free(c);
		return CTL_EXIT_USAGE;
	}
	if (token != NULL && ctl_auth(c, token) == -1)
		status = CTL_EXIT_FAIL;
	else
		status = cmd->run(c, argv + optind + 1);
	close(c->fd);
	free(c);
	if (fflush(stdout) == EOF && status == CTL_EXIT_OK) {
		fprintf(stderr, "heartbeatctl: write error: %s\n",
		    strerror(errno));
		status = CTL_EXIT_FAIL;
	}
	return status;
}
