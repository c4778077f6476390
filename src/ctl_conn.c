/*
 * ctl_conn.c - heartbeatctl's one TCP connection to the daemon's work port
 * (interface.md section 4), driven with poll(2) and a line buffer; no
 * libevent. It connects under a timeout, sends request lines, and reads
 * reply lines under a deadline while watching the signal self-pipe
 * (ctl_term.c), so a loop can react to Ctrl-C between lines. Replies are
 * checked by their first word; an ERR is reported here, once. Reply fields
 * are split with proto's tokenizer, which also undoes quoting.
 */

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctl.h"
#include "proto.h"
#include "util.h"

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL		0
#endif

/* Make fd nonblocking and close-on-exec. */
int
conn_nonblock(int fd)
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

/* The monotonic time ms milliseconds from now. */
uint64_t
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
	if (conn_nonblock(fd) == -1)
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

/*
 * Connect to c->addr within timeout_ms, trying each address it resolves
 * to; on failure -1 with the reason in err.
 */
static int
conn_connect(struct ctl_conn *c, unsigned timeout_ms, char *err, size_t errlen)
{
	char host[256], port[8];
	uint16_t p;
	struct addrinfo hints, *res, *ai;
	uint64_t deadline = deadline_in(timeout_ms);
	int gai, e = ECONNREFUSED, one = 1;

	c->fd = -1;
	c->off = c->len = 0;
	if (addr_split(c->addr, host, sizeof(host), &p) == -1) {
		snprintf(err, errlen, "bad address '%s'", c->addr);
		return -1;
	}
	snprintf(port, sizeof(port), "%u", p);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
	if ((gai = getaddrinfo(host, port, &hints, &res)) != 0) {
		snprintf(err, errlen, "cannot resolve %s: %s", host,
		    gai_strerror(gai));
		return -1;
	}
	for (ai = res; ai != NULL && c->fd == -1; ai = ai->ai_next) {
		if ((c->fd = conn_try(ai, deadline)) == -1)
			e = errno;
	}
	freeaddrinfo(res);
	if (c->fd == -1) {
		snprintf(err, errlen, "cannot connect to %s: %s", c->addr,
		    strerror(e));
		return -1;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}

/* Connect to c->addr; reports a failure. */
int
conn_open(struct ctl_conn *c)
{
	char err[512];

	if (conn_connect(c, CTL_TIMEOUT_MS, err, sizeof(err)) == 0)
		return 0;
	ctl_error("connect-failed", "%s", err);
	return -1;
}

/*
 * Drop the connection and connect again within timeout_ms, quietly: a
 * caller that retries reports only when it gives up.
 */
int
conn_redial(struct ctl_conn *c, unsigned timeout_ms)
{
	char err[512];

	conn_close(c);
	return conn_connect(c, timeout_ms, err, sizeof(err));
}

/* Close the socket, if open. */
void
conn_close(struct ctl_conn *c)
{
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
	c->off = c->len = 0;
}

/*
 * Send one line of at most CTL_REQ_MAX bytes; -1 with errno on failure
 * (EMSGSIZE: too long), not reported.
 */
static int
conn_vsend(struct ctl_conn *c, const char *fmt, va_list ap)
{
	char line[CTL_REQ_MAX + 2];
	struct pollfd pfd;
	uint64_t deadline = deadline_in(CTL_TIMEOUT_MS);
	size_t off = 0, len;
	ssize_t n;
	int r;

	r = vsnprintf(line, CTL_REQ_MAX + 1, fmt, ap);
	if (r < 0 || r > CTL_REQ_MAX) {
		errno = EMSGSIZE;
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
			return -1;
		pfd.fd = c->fd;
		pfd.events = POLLOUT;
		if ((r = poll(&pfd, 1, poll_timeout(deadline))) == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (r == -1 && errno != EINTR)
			return -1;
	}
	return 0;
}

/* Send one request line; reports a failure itself. */
int
conn_send(struct ctl_conn *c, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = conn_vsend(c, fmt, ap);
	va_end(ap);
	if (r == 0)
		return 0;
	if (errno == EMSGSIZE)
		ctl_error("bad-request", "request longer than %d bytes", CTL_REQ_MAX);
	else
		ctl_error("connection-lost", "lost connection to %s: %s",
		    c->addr, strerror(errno));
	return -1;
}

/* conn_send for a caller that handles a lost connection itself. */
int
conn_send_quiet(struct ctl_conn *c, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = conn_vsend(c, fmt, ap);
	va_end(ap);
	return r;
}

/*
 * The next line from the daemon (CR LF or LF removed, valid until the next
 * call), or why there is none: the deadline (0: none) passed, the daemon
 * closed, an error, or a signal arrived on the self-pipe.
 */
enum ctl_read
conn_readline(struct ctl_conn *c, uint64_t deadline, char **line)
{
	struct pollfd pfd[2];
	char *nl, drain[64];
	ssize_t n;
	nfds_t nfds;
	int r, sfd = sig_fd();

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
		pfd[1].fd = sfd;
		pfd[1].events = POLLIN;
		nfds = sfd == -1 ? 1 : 2;
		if ((r = poll(pfd, nfds, poll_timeout(deadline))) == -1) {
			if (errno == EINTR)
				continue;
			return CTL_ERROR;
		}
		if (r == 0)
			return CTL_TIMEOUT;
		if (nfds == 2 && (pfd[1].revents & POLLIN)) {
			while (read(sfd, drain, sizeof(drain)) > 0)
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
void
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
int
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
char *
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
char *
conn_request(struct ctl_conn *c, const char *want, const char *req)
{
	char *line;

	if (conn_send(c, "%s", req) == -1 || conn_reply(c, &line) == -1)
		return NULL;
	return reply_expect(line, want);
}

/* Send AUTH token, which must be answered OK. */
int
conn_auth(struct ctl_conn *c, const char *token)
{
	char *line;

	if (conn_send(c, "AUTH %s", token) == -1 || conn_reply(c, &line) == -1)
		return -1;
	return reply_expect(line, "OK") == NULL ? -1 : 0;
}

/* Remember an outstanding request (at most CTL_PENDING_MAX). */
void
pending_push(struct ctl_pending *q, enum ctl_req req)
{
	if (q->n < CTL_PENDING_MAX)
		q->req[(q->head + q->n++) % CTL_PENDING_MAX] = req;
}

/* The oldest outstanding request, which the reply in hand answers. */
int
pending_pop(struct ctl_pending *q, enum ctl_req *req)
{
	if (q->n == 0)
		return -1;
	*req = q->req[q->head];
	q->head = (q->head + 1) % CTL_PENDING_MAX;
	q->n--;
	return 0;
}

/* Split a reply's key=value fields in place, quoted values undone. */
void
fields_split(struct ctl_fields *f, char *s)
{
	f->n = proto_split_kv(s, f->key, f->val, CTL_FIELDS_MAX);
}

/* The value of key, or NULL. */
char *
fields_get(const struct ctl_fields *f, const char *key)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		if (strcmp(f->key[i], key) == 0)
			return f->val[i];
	return NULL;
}

/* The value of key as a number; 0 when missing or not a number. */
uint64_t
fields_u64(const struct ctl_fields *f, const char *key)
{
	const char *v = fields_get(f, key);
	uint64_t n;

	if (v == NULL || parse_u64(v, 0, UINT64_MAX, &n) == -1)
		return 0;
	return n;
}

/* Add one listing line (the part after the verb) to rs. */
void
recs_add(struct ctl_recs *rs, const char *rest)
{
	struct ctl_rec *r;
	char *p;

	if (rs->n == rs->cap) {
		rs->cap = rs->cap ? rs->cap * 2 : 16;
		rs->v = xrealloc(rs->v, rs->cap * sizeof(*rs->v));
	}
	r = &rs->v[rs->n++];
	r->line = xstrdup(rest);
	p = r->line;
	r->key = proto_token(&p);
	fields_split(&r->f, p);
}

/* Read "verb ..." lines until END into rs; reports failures. */
int
recs_read(struct ctl_conn *c, const char *verb, struct ctl_recs *rs)
{
	char *line, *p;

	for (;;) {
		if (conn_reply(c, &line) == -1)
			return -1;
		if (strcasecmp(line, "END") == 0)
			return 0;
		if ((p = reply_expect(line, verb)) == NULL)
			return -1;
		recs_add(rs, p);
	}
}

/* Free the lines in rs, keeping its array for reuse. */
void
recs_clear(struct ctl_recs *rs)
{
	size_t i;

	for (i = 0; i < rs->n; i++)
		free(rs->v[i].line);
	rs->n = 0;
}

void
recs_free(struct ctl_recs *rs)
{
	recs_clear(rs);
	free(rs->v);
	rs->v = NULL;
	rs->cap = 0;
}
