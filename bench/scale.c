/*
 * scale.c - heartbeatd at scale and under abuse: many idle clients, many
 * peers, many slow HTTP clients (the "no client can starve heartbeats"
 * issue). One single-threaded epoll loop; one scenario per run:
 *
 *   idle   the daemon's peer (as burst.c: kernel-stamped HB arrivals, ACKs)
 *          and -n work clients that each connect, PING, read PONG and then
 *          stay open and silent. Reports the daemon's RSS before and with
 *          them (bytes per connection) and heartbeat lateness while they
 *          are held (-d seconds).
 *   peers  a peer simulator for -n links: the daemon is started with -n
 *          "-s peer=NAME@127.0.0.1:PORT" all naming this one listener; it
 *          answers every HELLO with "WELCOME sim 1" and every HB with its
 *          ACK at once. Reports the time until STATS says peers_up=-n, then
 *          over -d seconds the daemon's CPU (utime+stime of /proc/PID/stat),
 *          its RSS and the heartbeat lateness on every link.
 *   http   the daemon's peer, one work connection that PINGs every 100 ms,
 *          an inbound peer (HELLO, then an HB every 100 ms, ACK timed),
 *          a /healthz probe every 250 ms, and -n slow HTTP clients: each
 *          connects to http_listen and sends one byte of a request that
 *          never ends every -b ms; when the daemon closes it, it connects
 *          again after -r ms (0: never). Over -d seconds: how long the
 *          daemon held each (closed at once, or cut at its http_timeout_ms,
 *          -T), the most it held at once, the peak of its open fds
 *          (/proc/PID/fd), whether /healthz, PING and the inbound HBs got
 *          through, and the heartbeat lateness.
 *
 * It prints "peer_port=N" first, then reads one line "WORK HTTP PEER PID" (the
 * daemon's work, HTTP and peer addresses, IPv4 HOST:PORT or "-", and its
 * pid)
 * from stdin, so that the daemon can be started in between (bench/run.sh
 * scale does this). Results: key=value lines on stdout, times in
 * microseconds; notes on stderr. Every wait is bounded; every socket is
 * closed before exit. It raises its fd soft limit to the hard one.
 *
 * Lateness, over the HBs that arrived in a window:
 *  gap    how much longer than one interval the peer waited for each HB
 *         since the one before on the same link (0 if not longer), from the
 *         kernel's receive stamps (SO_TIMESTAMPNS), as burst.c;
 *  lag    the daemon's own lateness of the tick (lag_us= on its HBs);
 *  seen   lag plus the time from the tick's first HB being formatted (the
 *         smallest <t> among the HBs of one tick) to this HB's arrival: how
 *         late after its schedule each peer really got its HB. With one
 *         link it is lag + transit; with 1000 it adds the time the daemon
 *         takes to write 1000 HBs;
 *  missed ticks the daemon swallowed (missed= on its HBs, summed).
 */

#define _GNU_SOURCE
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_US	UINT64_C(1000)
#define NS_PER_MS	UINT64_C(1000000)
#define NS_PER_S	UINT64_C(1000000000)
#define WAIT_PEER_S	10	/* for the daemon's first HB */
#define SETTLE_MS	500	/* after the first HB, or after the clients */
#define HOUSE_MS	20	/* housekeeping period */
#define LINKBUF		4096
#define CLIENTBUF	64
#define LINE_MAX_	2048

enum kind { K_LISTEN, K_LINK, K_CLIENT, K_CTL, K_PROBE, K_EPLINK };

enum cstate { C_CLOSED, C_CONNECTING, C_WAITING, C_OPEN };

struct link {			/* a heartbeat link from the daemon */
	enum kind	 kind;
	int		 fd;
	int		 id;
	uint64_t	 last_t;	/* previous HB's arrival, or 0 */
	size_t		 inlen;
	char		 in[LINKBUF];
};

struct client {			/* an idle work client or a slow HTTP one */
	enum kind	 kind;
	int		 fd;
	enum cstate	 state;
	unsigned	 pos;		/* next byte of the slow request */
	uint64_t	 t_conn;	/* connect completed */
	uint64_t	 next;		/* next byte, or the reconnect */
	unsigned char	 inlen;
	char		 in[CLIENTBUF];
};

struct ctl {			/* one work connection: STATS or PING */
	enum kind	 kind;
	int		 fd;
	int		 waiting;	/* a request is out */
	uint64_t	 t_sent;
	size_t		 inlen;
	char		 in[LINE_MAX_];
	char		 line[LINE_MAX_];	/* the last reply */
	unsigned	 replies;
	const char	*expect;	/* a reply timed: "PONG", "ACK" */
	unsigned	 n_ok, n_late;	/* late: over 100 ms */
	uint64_t	 rtt_max;
};

struct probe {			/* one GET /healthz */
	enum kind	 kind;
	int		 fd;
	int		 connected;
	uint64_t	 t0;
	size_t		 inlen;
	char		 in[256];
};

struct arrival {
	uint64_t	 t;		/* kernel stamp, CLOCK_MONOTONIC ns */
	uint64_t	 sent;		/* the HB's own <t> */
	uint64_t	 gap;		/* since the link's previous HB; 0: first */
	uint64_t	 lag_us, missed;
};

static const char	*mode;
static struct sockaddr_in work_sin, http_sin;
static int		 have_work, have_http;
static long		 dpid;
static unsigned		 peer_port;
static uint64_t		 interval_ns = 10 * NS_PER_MS;
static unsigned		 nclients = 10000, window_s = 5, limit_s = 30;
static unsigned		 byte_ms = 1000, reconnect_ms = 1000, timeout_ms = 10000;

static int		 ep;		/* everything but the links */
static int		 ep_link;	/* the peer listener and links */
static enum kind	 eplink_kind = K_EPLINK;
static struct link	**links;
static int		 nlinks, links_total, links_cap;
static struct client	*clients;
static struct arrival	*arrivals;
static size_t		 narrivals, arrivals_cap;
static uint64_t		 now;

static void
note(const char *fmt, ...)
{
	va_list ap;

	fputs("scale: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void
fatal(const char *fmt, ...)
{
	va_list ap;

	fputs("scale: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static unsigned
number(const char *s, unsigned lo, unsigned hi)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || *s == '-' || v < lo ||
	    v > hi)
		fatal("bad number \"%s\" (%u..%u)", s, lo, hi);
	return (unsigned)v;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: scale [-p PORT] [-I ms] [-n N] [-d s] [-t s] [-b ms] "
	    "[-r ms] [-T ms] idle|peers|http\n"
	    "  prints peer_port=N, then reads \"WORK HTTP PEER PID\" from stdin\n"
	    "  -p  peer port to listen on, 127.0.0.1 (0: any; default)\n"
	    "  -I  the daemon's heartbeat interval, ms (10)\n"
	    "  -n  clients (idle, http) or peer links (peers) (10000)\n"
	    "  -d  the measured window, s (5)\n"
	    "  -t  time limit to connect them all / for the peers to come up,"
	    " s (30)\n"
	    "  -b  http: one byte per client every ms (1000)\n"
	    "  -r  http: reconnect a closed client after ms, 0 never (1000)\n"
	    "  -T  http: the daemon's http_timeout_ms (10000)\n");
	exit(2);
}

static void
ep_add(int epfd, int fd, uint32_t events, void *ptr)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.ptr = ptr;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		fatal("epoll_ctl: %s", strerror(errno));
}

static void
ep_mod(int fd, uint32_t events, void *ptr)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.ptr = ptr;
	epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

/* Loopback writes of a few bytes: all or nothing, or the link is gone. */
static int
send_all(int fd, const char *s, size_t n)
{
	return send(fd, s, n, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)n ? 0 :
	    -1;
}

static int
tcp_socket(void)
{
	int fd, one = 1;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* ---- the daemon's process ------------------------------------------------ */

static long
proc_status_kb(const char *key)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", dpid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, klen) == 0) {
			v = strtol(line + klen, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* utime + stime, in clock ticks, or -1. */
static long long
proc_cpu_ticks(void)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/stat", dpid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* fields 14 and 15, counted after the ")" that ends the name */
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 2, "%*c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu %llu",
	    &ut, &st) != 2)
		return -1;
	return (long long)(ut + st);
}

static long
proc_fds(void)
{
	char path[64];
	struct dirent *e;
	long n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%ld/fd", dpid);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* ---- the peer (one link, or a simulator of many) ------------------------- */

static enum kind listen_kind = K_LISTEN;
static int listen_fd = -1;
static uint64_t t_first_link;

static int
peer_listen(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd, one = 1;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)peer_port);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(fd, 4096) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) < 0)
		fatal("peer listener on port %u: %s", peer_port, strerror(errno));
	listen_fd = fd;
	ep_add(ep_link, fd, EPOLLIN, &listen_kind);
	return ntohs(sin.sin_port);
}

static void
link_accept(void)
{
	struct link *l;
	int fd, one = 1;

	while ((fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
		if ((l = calloc(1, sizeof(*l))) == NULL)
			fatal("out of memory");
		if (nlinks == links_cap) {
			links_cap = links_cap ? links_cap * 2 : 64;
			if ((links = realloc(links, (size_t)links_cap *
			    sizeof(*links))) == NULL)
				fatal("out of memory");
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
		l->kind = K_LINK;
		l->fd = fd;
		l->id = ++links_total;
		if (t_first_link == 0)
			t_first_link = now_ns();
		links[nlinks++] = l;
		ep_add(ep_link, fd, EPOLLIN, l);
	}
}

static void
link_close(struct link *l)
{
	int i;

	for (i = 0; i < nlinks; i++)
		if (links[i] == l) {
			links[i] = links[--nlinks];
			break;
		}
	close(l->fd);
	free(l);
}

static uint64_t
hb_field(const char *rest, const char *key)
{
	const char *p = strstr(rest, key);

	return p != NULL ? strtoull(p + strlen(key), NULL, 10) : 0;
}

static void
link_line(struct link *l, char *line, uint64_t t)
{
	char reply[128], *seq, *ts, *rest, *save;
	struct arrival *a;
	int n;

	if (strncmp(line, "HELLO", 5) == 0) {
		send_all(l->fd, "WELCOME sim 1\n", 14);
		return;
	}
	if (strncmp(line, "HB ", 3) != 0 ||
	    (seq = strtok_r(line + 3, " ", &save)) == NULL ||
	    (ts = strtok_r(NULL, " ", &save)) == NULL) {
		note("peer link: unexpected line \"%.40s\"", line);
		return;
	}
	rest = save != NULL ? save : "";
	n = snprintf(reply, sizeof(reply), "ACK %s %s\n", seq, ts);
	if (n > 0 && (size_t)n < sizeof(reply))
		send_all(l->fd, reply, (size_t)n);
	if (narrivals == arrivals_cap) {
		arrivals_cap = arrivals_cap ? arrivals_cap * 2 : 4096;
		if ((arrivals = realloc(arrivals,
		    arrivals_cap * sizeof(*arrivals))) == NULL)
			fatal("out of memory");
	}
	a = &arrivals[narrivals++];
	a->t = t;
	a->sent = strtoull(ts, NULL, 10);
	a->gap = l->last_t != 0 && t > l->last_t ? t - l->last_t : 0;
	a->lag_us = hb_field(rest, "lag_us=");
	a->missed = hb_field(rest, "missed=");
	l->last_t = t;
}

/*
 * recv() that also returns when the data arrived: the kernel's receive stamp
 * of the last segment taken (SO_TIMESTAMPNS), moved to CLOCK_MONOTONIC, or
 * the time of the read when there is none.
 */
static ssize_t
recv_stamped(int fd, char *buf, size_t len, uint64_t *t)
{
	union {
		char		buf[CMSG_SPACE(sizeof(struct timespec))];
		struct cmsghdr	align;
	} ctl;
	struct iovec iov;
	struct msghdr msg;
	struct cmsghdr *cm;
	struct timespec real, stamp;
	uint64_t tu;
	ssize_t r;

	iov.iov_base = buf;
	iov.iov_len = len;
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = ctl.buf;
	msg.msg_controllen = sizeof(ctl.buf);
	r = recvmsg(fd, &msg, 0);
	*t = tu = now_ns();
	if (r <= 0)
		return r;
	clock_gettime(CLOCK_REALTIME, &real);
	for (cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm))
		if (cm->cmsg_level == SOL_SOCKET &&
		    cm->cmsg_type == SCM_TIMESTAMPNS) {
			memcpy(&stamp, CMSG_DATA(cm), sizeof(stamp));
			*t = tu - (uint64_t)((int64_t)(real.tv_sec -
			    stamp.tv_sec) * (int64_t)NS_PER_S +
			    (real.tv_nsec - stamp.tv_nsec));
		}
	return r;
}

/* Read a heartbeat link; the arrival time is the kernel's stamp. */
static void
link_read(struct link *l)
{
	uint64_t t;
	char *p, *nl, *end;
	ssize_t r;

	r = recv_stamped(l->fd, l->in + l->inlen, LINKBUF - l->inlen, &t);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		link_close(l);
		return;
	}
	l->inlen += (size_t)r;
	p = l->in;
	end = l->in + l->inlen;
	while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		*nl = '\0';
		if (nl > p && nl[-1] == '\r')
			nl[-1] = '\0';
		link_line(l, p, t);
		p = nl + 1;
	}
	l->inlen = (size_t)(end - p);
	memmove(l->in, p, l->inlen);
	if (l->inlen == LINKBUF) {
		note("line too long on heartbeat link %d", l->id);
		link_close(l);
	}
}

/*
 * The heartbeat links come first: read them now, and between every few
 * client events, so that an HB is read (and stamped, and ACKed) as it
 * arrives (see burst.c).
 */
static void
serve_links(void)
{
	struct epoll_event evs[256];
	int i, n, rounds = 0;

	do {
		if ((n = epoll_wait(ep_link, evs, 256, 0)) <= 0)
			return;
		for (i = 0; i < n; i++) {
			enum kind *k = evs[i].data.ptr;

			if (*k == K_LISTEN)
				link_accept();
			else
				link_read((struct link *)(void *)k);
		}
	} while (n == 256 && ++rounds < 16);
}

/* ---- a work connection: STATS or PING, one at a time ---------------------- */

static struct ctl wctl = { .kind = K_CTL, .fd = -1, .expect = "PONG" };
/* an inbound peer of the daemon's: HELLO, then an HB every 100 ms */
static struct ctl pctl = { .kind = K_CTL, .fd = -1, .expect = "ACK " };
static struct sockaddr_in peer_sin;
static int have_peer;
static uint64_t pseq;

static int
ctl_open(struct ctl *c, const struct sockaddr_in *to)
{
	struct timeval tv = { 2, 0 };
	int one = 1;

	/* connected before the first request: blocking, at most 2 s */
	if ((c->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		return -1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	/* the reply's arrival is its kernel stamp, not when we got to it */
	setsockopt(c->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
	if (connect(c->fd, (const struct sockaddr *)to, sizeof(*to)) < 0 ||
	    fcntl(c->fd, F_SETFL, O_NONBLOCK) < 0) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	ep_add(ep, c->fd, EPOLLIN, c);
	return 0;
}

static void
ctl_send(struct ctl *c, const char *req)
{
	if (c->fd < 0 || c->waiting)
		return;
	if (send_all(c->fd, req, strlen(req)) == 0) {
		c->waiting = 1;
		c->t_sent = now_ns();
	}
}

static void
ctl_read(struct ctl *c)
{
	uint64_t t;
	ssize_t r;
	char *nl;

	r = recv_stamped(c->fd, c->in + c->inlen, sizeof(c->in) - 1 - c->inlen,
	    &t);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		note("the %s connection closed",
		    c == &wctl ? "work" : "inbound peer");
		epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
		return;
	}
	c->inlen += (size_t)r;
	c->in[c->inlen] = '\0';
	while ((nl = strchr(c->in, '\n')) != NULL) {
		uint64_t d = t > c->t_sent ? t - c->t_sent : 0;
		size_t used = (size_t)(nl + 1 - c->in);

		*nl = '\0';
		snprintf(c->line, sizeof(c->line), "%s", c->in);
		c->line[strcspn(c->line, "\r")] = '\0';
		memmove(c->in, nl + 1, c->inlen - used + 1);
		c->inlen -= used;
		c->waiting = 0;
		c->replies++;
		if (strncmp(c->line, c->expect, strlen(c->expect)) == 0) {
			c->n_ok++;
			if (d > c->rtt_max)
				c->rtt_max = d;
			if (d > 100 * NS_PER_MS)
				c->n_late++;
		}
	}
	if (c->inlen == sizeof(c->in) - 1)
		c->inlen = 0;
}

/* STATS' "key=N" of the last reply, or -1. */
static long
stats_field(const char *key)
{
	char k[64];
	const char *p;

	snprintf(k, sizeof(k), " %s=", key);
	if (strncmp(wctl.line, "STATS", 5) != 0 ||
	    (p = strstr(wctl.line, k)) == NULL)
		return -1;
	return strtol(p + strlen(k), NULL, 10);
}

/* ---- the clients ---------------------------------------------------------- */

/* A request line and headers that never end: one header, over and over. */
static const char slow_head[] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n";
static const char slow_tail[] = "X-Slow: 1\r\n";

static unsigned n_pending, n_pong, n_failed, n_refused, n_open;
static unsigned n_open_max, n_connects, n_connect_err, n_unexpected;
static uint64_t *shed_ns, *cut_ns;	/* held for: closed at once, or cut */
static size_t n_shed, n_cut, holds_cap;
static uint64_t hold_over_ns;		/* longest hold still open, sampled */

static void
client_connect(struct client *c)
{
	struct sockaddr_in *sin = strcmp(mode, "http") == 0 ? &http_sin :
	    &work_sin;

	c->inlen = 0;
	c->pos = 0;
	if ((c->fd = tcp_socket()) < 0)
		fatal("socket: %s (raise ulimit -n above %u)", strerror(errno),
		    nclients);
	n_connects++;
	if (connect(c->fd, (struct sockaddr *)sin, sizeof(*sin)) < 0 &&
	    errno != EINPROGRESS) {
		if (n_connect_err++ == 0)
			note("connect: %s", strerror(errno));
		close(c->fd);
		c->fd = -1;
		c->state = C_CLOSED;
		c->next = now_ns() + (reconnect_ms ? reconnect_ms : 1000) *
		    NS_PER_MS;
		return;
	}
	c->state = C_CONNECTING;
	ep_add(ep, c->fd, EPOLLOUT, c);
}

static void
hold_add(uint64_t d)
{
	if (n_shed + n_cut + 2 > holds_cap) {
		holds_cap = holds_cap ? holds_cap * 2 : 16384;
		if ((shed_ns = realloc(shed_ns, holds_cap * sizeof(*shed_ns))) ==
		    NULL || (cut_ns = realloc(cut_ns, holds_cap *
		    sizeof(*cut_ns))) == NULL)
			fatal("out of memory");
	}
	/* less than half the timeout: shed at once; else cut at the deadline */
	if (d < (uint64_t)timeout_ms * NS_PER_MS / 2)
		shed_ns[n_shed++] = d;
	else
		cut_ns[n_cut++] = d;
}

/* The daemon closed an HTTP client (or the idle one failed). */
static void
client_closed(struct client *c)
{
	if (c->state == C_OPEN) {
		hold_add(now_ns() - c->t_conn);
		n_open--;
	} else if (c->state == C_CONNECTING) {
		n_failed++;
	}
	close(c->fd);
	c->fd = -1;
	c->state = C_CLOSED;
	c->next = reconnect_ms ? now_ns() + reconnect_ms * NS_PER_MS /
	    2 + (uint64_t)(random() % reconnect_ms) * NS_PER_MS : UINT64_MAX;
}

static void
slow_byte(struct client *c)
{
	char b;

	if (c->pos < sizeof(slow_head) - 1)
		b = slow_head[c->pos];
	else
		b = slow_tail[(c->pos - (sizeof(slow_head) - 1)) %
		    (sizeof(slow_tail) - 1)];
	if (send(c->fd, &b, 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1)
		c->pos++;
	c->next = now_ns() + byte_ms * NS_PER_MS;
}

static void
client_event(struct client *c, uint32_t events)
{
	int err = 0;
	socklen_t len = sizeof(err);
	ssize_t r;

	if (c->state == C_CONNECTING) {
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 ||
		    err != 0) {
			if (strcmp(mode, "idle") == 0) {
				n_pending--;
				n_failed++;
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				return;
			}
			client_closed(c);
			return;
		}
		c->t_conn = now_ns();
		ep_mod(c->fd, EPOLLIN, c);
		if (strcmp(mode, "idle") == 0) {
			c->state = C_WAITING;
			if (send_all(c->fd, "PING\n", 5) < 0) {
				n_pending--;
				n_failed++;
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
			}
			return;
		}
		c->state = C_OPEN;
		if (++n_open > n_open_max)
			n_open_max = n_open;
		slow_byte(c);
		return;
	}
	r = read(c->fd, c->in + c->inlen, CLIENTBUF - 1 - c->inlen);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (strcmp(mode, "http") == 0) {
		if (r > 0) {		/* a reply to a request never sent? */
			if (n_unexpected++ == 0)
				note("the daemon answered a slow client");
			c->inlen = 0;
			return;
		}
		client_closed(c);
		return;
	}
	if (c->state == C_OPEN) {	/* idle clients should hear nothing */
		n_unexpected++;
		epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
		return;
	}
	if (r <= 0) {
		n_pending--;
		n_failed++;
		epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
		return;
	}
	c->inlen = (unsigned char)(c->inlen + r);
	c->in[c->inlen] = '\0';
	if (strchr(c->in, '\n') == NULL && c->inlen < CLIENTBUF - 1)
		return;
	n_pending--;
	if (strncmp(c->in, "PONG", 4) == 0) {
		n_pong++;
		c->state = C_OPEN;
		n_open++;
	} else {
		if (n_refused++ == 0)
			note("daemon said: %.*s", (int)strcspn(c->in, "\r\n"),
			    c->in);
		n_failed++;
		epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	}
	(void)events;
}

static void
clients_open(void)
{
	unsigned i;

	n_pending = nclients;
	for (i = 0; i < nclients; i++) {
		clients[i].kind = K_CLIENT;
		clients[i].fd = -1;
		client_connect(&clients[i]);
		if (clients[i].fd < 0 && strcmp(mode, "idle") == 0) {
			n_pending--;
			n_failed++;
		}
		if (i % 64 == 63)
			serve_links();
	}
}

static void
clients_close(void)
{
	unsigned i;

	for (i = 0; i < nclients; i++) {
		if (clients[i].fd >= 0)
			close(clients[i].fd);
		clients[i].fd = -1;
		clients[i].state = C_CLOSED;
		clients[i].next = UINT64_MAX;
		if (i % 64 == 63)
			serve_links();
	}
	n_open = 0;
}

/* ---- the /healthz probe ----------------------------------------------------- */

static struct probe hp = { .kind = K_PROBE, .fd = -1 };
static unsigned hz_ok, hz_refused, hz_timeout, hz_other;
static uint64_t hz_max_ns, hz_next;
static int probing;

static void
probe_end(int outcome)		/* 1 ok, 0 refused, -1 timeout, 2 other */
{
	uint64_t d = now_ns() - hp.t0;

	switch (outcome) {
	case 1:
		hz_ok++;
		if (d > hz_max_ns)
			hz_max_ns = d;
		break;
	case 0:
		hz_refused++;
		break;
	case -1:
		hz_timeout++;
		break;
	default:
		hz_other++;
	}
	close(hp.fd);
	hp.fd = -1;
}

static void
probe_start(void)
{
	hp.inlen = 0;
	hp.connected = 0;
	hp.t0 = now_ns();
	if ((hp.fd = tcp_socket()) < 0)
		return;
	if (connect(hp.fd, (struct sockaddr *)&http_sin, sizeof(http_sin)) < 0 &&
	    errno != EINPROGRESS) {
		close(hp.fd);
		hp.fd = -1;
		hz_refused++;
		return;
	}
	ep_add(ep, hp.fd, EPOLLOUT, &hp);
}

static void
probe_event(void)
{
	static const char req[] = "GET /healthz HTTP/1.0\r\n\r\n";
	int err = 0;
	socklen_t len = sizeof(err);
	ssize_t r;

	if (!hp.connected) {
		if (getsockopt(hp.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 ||
		    err != 0 || send_all(hp.fd, req, sizeof(req) - 1) < 0) {
			probe_end(0);
			return;
		}
		hp.connected = 1;
		ep_mod(hp.fd, EPOLLIN, &hp);
		return;
	}
	r = read(hp.fd, hp.in + hp.inlen, sizeof(hp.in) - 1 - hp.inlen);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r > 0) {
		hp.inlen += (size_t)r;
		hp.in[hp.inlen] = '\0';
		if (hp.inlen < 12 && hp.inlen < sizeof(hp.in) - 1)
			return;
	}
	if (hp.inlen >= 12)
		probe_end(strncmp(hp.in + 8, " 200", 4) == 0 ? 1 : 2);
	else
		probe_end(0);	/* closed before any status line */
}

/* ---- the loop ------------------------------------------------------------- */

static long fds_peak = -1;
static int sampling;		/* sample the daemon's fds and pings */
static uint64_t next_sample, next_ping;

static void
housekeeping(void)
{
	unsigned i;
	long n;

	now = now_ns();
	if (strcmp(mode, "http") == 0) {
		for (i = 0; i < nclients; i++) {
			struct client *c = &clients[i];

			if (c->state == C_OPEN && c->next <= now)
				slow_byte(c);
			else if (c->state == C_CLOSED && c->next <= now)
				client_connect(c);
			if (i % 256 == 255)
				serve_links();
		}
	}
	if (!sampling)
		return;
	if (now >= next_sample) {
		next_sample = now + 100 * NS_PER_MS;
		if ((n = proc_fds()) > fds_peak)
			fds_peak = n;
		for (i = 0; i < nclients; i++)
			if (clients[i].state == C_OPEN &&
			    now - clients[i].t_conn > hold_over_ns)
				hold_over_ns = now - clients[i].t_conn;
	}
	if (have_work && now >= next_ping) {
		next_ping = now + 100 * NS_PER_MS;
		if (wctl.waiting && now - wctl.t_sent > NS_PER_S)
			wctl.n_late++;	/* counted once more per 100 ms stuck */
		ctl_send(&wctl, "PING\n");
		if (pctl.fd >= 0 && pctl.replies > 0) {	/* WELCOMEd */
			char hb[64];

			if (pctl.waiting && now - pctl.t_sent > NS_PER_S)
				pctl.n_late++;
			snprintf(hb, sizeof(hb), "HB %" PRIu64 " %" PRIu64 "\n",
			    ++pseq, now);
			ctl_send(&pctl, hb);
		}
	}
	if (probing && have_http) {
		if (hp.fd >= 0 && now - hp.t0 > NS_PER_S)
			probe_end(-1);
		if (hp.fd < 0 && now >= hz_next) {
			hz_next = now + 250 * NS_PER_MS;
			probe_start();
		}
	}
}

static void
run_until(uint64_t deadline, int (*done)(void))
{
	struct epoll_event evs[256];
	uint64_t t, next_house = 0;
	int i, n, ms;

	while (done == NULL || !done()) {
		if ((t = now_ns()) >= deadline)
			break;
		if (t >= next_house) {
			housekeeping();
			next_house = t + HOUSE_MS * NS_PER_MS;
		}
		ms = (int)(((deadline < next_house ? deadline : next_house) - t +
		    NS_PER_MS - 1) / NS_PER_MS);
		serve_links();
		if ((n = epoll_wait(ep, evs, 256, ms)) < 0) {
			if (errno == EINTR)
				continue;
			fatal("epoll_wait: %s", strerror(errno));
		}
		for (i = 0; i < n; i++) {
			enum kind *k = evs[i].data.ptr;

			if (i % 16 == 15)
				serve_links();
			switch (*k) {
			case K_EPLINK:
			case K_LISTEN:
			case K_LINK:
				serve_links();
				break;
			case K_CLIENT:
				client_event((struct client *)(void *)k,
				    evs[i].events);
				break;
			case K_CTL:
				ctl_read((struct ctl *)(void *)k);
				break;
			case K_PROBE:
				probe_event();
				break;
			}
		}
	}
}

static int
have_heartbeat(void)
{
	return narrivals > 0;
}

static int
all_answered(void)
{
	return n_pending == 0;
}

static int
ctl_answered(void)
{
	return !wctl.waiting || wctl.fd < 0;
}

static int
ctl_answered_peer(void)
{
	return !pctl.waiting || pctl.fd < 0;
}

/* ---- figures -------------------------------------------------------------- */

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t
pct(const uint64_t *v, size_t n, unsigned p)
{
	size_t rank;

	if (n == 0)
		return 0;
	rank = (n * p + 99) / 100;
	return v[rank > 0 ? rank - 1 : 0];
}

static int
cmp_sent(const void *a, const void *b)
{
	const struct arrival *x = *(const struct arrival *const *)a;
	const struct arrival *y = *(const struct arrival *const *)b;

	return x->sent < y->sent ? -1 : x->sent > y->sent;
}

/* Lateness of the HBs that arrived in [t0, t1): one key=value line. */
static void
lateness(const char *name, uint64_t t0, uint64_t t1)
{
	const struct arrival **v;
	uint64_t *gap, *lag, *seen, *span, missed = 0, transit_max = 0;
	uint64_t first = 0;
	size_t i, n = 0, ngap = 0, nspan = 0;

	v = calloc(narrivals + 1, sizeof(*v));
	gap = calloc(narrivals + 1, sizeof(*gap));
	lag = calloc(narrivals + 1, sizeof(*lag));
	seen = calloc(narrivals + 1, sizeof(*seen));
	span = calloc(narrivals + 1, sizeof(*span));
	if (v == NULL || gap == NULL || lag == NULL || seen == NULL ||
	    span == NULL)
		fatal("out of memory");
	for (i = 0; i < narrivals; i++) {
		const struct arrival *a = &arrivals[i];

		if (a->t < t0 || a->t >= t1)
			continue;
		v[n] = a;
		lag[n++] = a->lag_us;
		missed += a->missed;
		if (a->gap != 0)
			gap[ngap++] = (a->gap > interval_ns ? a->gap -
			    interval_ns : 0) / NS_PER_US;
		if (a->t > a->sent && a->t - a->sent < 60 * NS_PER_S &&
		    a->t - a->sent > transit_max)
			transit_max = a->t - a->sent;
	}
	/* one tick's HBs: <t>s closer than half an interval to the previous */
	qsort(v, n, sizeof(*v), cmp_sent);
	for (i = 0; i < n; i++) {
		if (i == 0 || v[i]->sent - v[i - 1]->sent > interval_ns / 2) {
			first = v[i]->sent;
			nspan++;
		}
		/* a tick's span: its first HB's <t> to its last one's */
		span[nspan - 1] = (v[i]->sent - first) / NS_PER_US;
		seen[i] = v[i]->lag_us + (v[i]->t > first ? v[i]->t - first :
		    0) / NS_PER_US;
	}
	qsort(gap, ngap, sizeof(*gap), cmp_u64);
	qsort(lag, n, sizeof(*lag), cmp_u64);
	qsort(seen, n, sizeof(*seen), cmp_u64);
	qsort(span, nspan, sizeof(*span), cmp_u64);
	printf("%s hb=%zu missed=%" PRIu64 " gap_p50_us=%" PRIu64
	    " gap_p99_us=%" PRIu64 " gap_max_us=%" PRIu64 " lag_p50_us=%"
	    PRIu64 " lag_p99_us=%" PRIu64 " lag_max_us=%" PRIu64
	    " seen_p50_us=%" PRIu64 " seen_p99_us=%" PRIu64 " seen_max_us=%"
	    PRIu64 " ticks=%zu span_p50_us=%" PRIu64 " span_max_us=%" PRIu64
	    " transit_max_us=%" PRIu64 "\n",
	    name, n, missed, pct(gap, ngap, 50), pct(gap, ngap, 99),
	    ngap ? gap[ngap - 1] : 0, pct(lag, n, 50), pct(lag, n, 99),
	    n ? lag[n - 1] : 0, pct(seen, n, 50), pct(seen, n, 99),
	    n ? seen[n - 1] : 0, nspan, pct(span, nspan, 50),
	    nspan ? span[nspan - 1] : 0, transit_max / NS_PER_US);
	fflush(stdout);
	free(v);
	free(gap);
	free(lag);
	free(seen);
	free(span);
}

/* Measure [now, now + s) serving everything; then the HBs in it. */
static void
window(const char *name, unsigned ms)
{
	uint64_t t0 = now_ns(), t1 = t0 + ms * NS_PER_MS;

	run_until(t1, NULL);
	/* the HBs of the window's last tick may still be on their way */
	run_until(now_ns() + 50 * NS_PER_MS, NULL);
	lateness(name, t0, t1);
}

static void
wait_heartbeat(void)
{
	run_until(now_ns() + WAIT_PEER_S * NS_PER_S, have_heartbeat);
	if (narrivals == 0)
		fatal("no heartbeat from the daemon in %d s", WAIT_PEER_S);
	run_until(now_ns() + SETTLE_MS * NS_PER_MS, NULL);
}

static long
stats_now(const char *key)
{
	if (wctl.fd < 0)
		return -1;
	wctl.waiting = 0;
	ctl_send(&wctl, "STATS\n");
	run_until(now_ns() + 5 * NS_PER_S, ctl_answered);
	return wctl.waiting ? -1 : stats_field(key);
}

/* ---- the scenarios ---------------------------------------------------------- */

static void
scenario_idle(void)
{
	long rss0, fds0, rss1, hwm, fds1, conns;
	uint64_t t0, t_served;

	wait_heartbeat();
	rss0 = proc_status_kb("VmRSS:");
	fds0 = proc_fds();
	t0 = now_ns();
	clients_open();
	run_until(t0 + limit_s * NS_PER_S, all_answered);
	t_served = now_ns();
	lateness("idle_connect", t0, t_served);
	if (n_pending > 0)
		note("%u clients still waiting for PONG after %u s", n_pending,
		    limit_s);
	run_until(now_ns() + SETTLE_MS * NS_PER_MS, NULL);
	window("idle_held", window_s * 1000);
	rss1 = proc_status_kb("VmRSS:");
	hwm = proc_status_kb("VmHWM:");
	fds1 = proc_fds();
	conns = stats_now("connections");
	printf("idle clients=%u pongs=%u failed=%u refused=%u unexpected=%u "
	    "serve_us=%" PRIu64 " rss0_kb=%ld rss_kb=%ld hwm_kb=%ld "
	    "bytes_per_conn=%ld fds0=%ld fds=%ld connections=%ld\n", nclients,
	    n_pong, n_failed, n_refused, n_unexpected,
	    (t_served - t0) / NS_PER_US, rss0, rss1, hwm,
	    n_pong > 0 && rss1 > rss0 ? (rss1 - rss0) * 1024 / (long)n_pong : 0,
	    fds0, fds1, conns > 0 ? conns - 1 : conns);
	clients_close();
}

static int
peers_all_up(void)
{
	return stats_field("peers_up") >= (long)nclients;
}

static void
scenario_peers(void)
{
	long long cpu0, cpu1;
	long up = -1, rss0, rss1, hwm, hz = sysconf(_SC_CLK_TCK);
	uint64_t t_start = now_ns(), t_up = 0, t0, t1, next = 0;

	rss0 = proc_status_kb("VmRSS:");
	/* STATS every 100 ms until every peer is up */
	while (now_ns() < t_start + limit_s * NS_PER_S) {
		if (now_ns() >= next && !wctl.waiting) {
			ctl_send(&wctl, "STATS\n");
			next = now_ns() + 100 * NS_PER_MS;
		}
		run_until(now_ns() + 10 * NS_PER_MS, NULL);
		if (!wctl.waiting && (up = stats_field("peers_up")) >= 0 &&
		    peers_all_up()) {
			t_up = now_ns();
			break;
		}
	}
	if (t_up == 0)
		note("peers_up=%ld of %u after %u s", up, nclients, limit_s);
	run_until(now_ns() + 2 * interval_ns, NULL);	/* settle */
	cpu0 = proc_cpu_ticks();
	t0 = now_ns();
	window("peers_held", window_s * 1000);
	cpu1 = proc_cpu_ticks();
	t1 = now_ns();
	rss1 = proc_status_kb("VmRSS:");
	hwm = proc_status_kb("VmHWM:");
	up = stats_now("peers_up");
	printf("peers peers=%u links=%d links_open=%d peers_up=%ld "
	    "up_us=%" PRIu64 " up_first_us=%" PRIu64 " cpu_ticks=%lld "
	    "cpu_pct=%.2f window_us=%" PRIu64 " rss0_kb=%ld rss_kb=%ld "
	    "hwm_kb=%ld fds=%ld\n", nclients, links_total, nlinks, up,
	    t_up ? (t_up - t_start) / NS_PER_US : 0,
	    t_up && t_first_link ? (t_up - t_first_link) / NS_PER_US : 0,
	    cpu1 - cpu0, cpu0 >= 0 && cpu1 >= cpu0 ? 100.0 *
	    (double)(cpu1 - cpu0) / (double)hz / ((double)(t1 - t0) / 1e9) : -1.0,
	    (t1 - t0) / NS_PER_US, rss0, rss1, hwm, proc_fds());
}

static void
scenario_http(void)
{
	long fds0, fds1;
	uint64_t t0, t1;
	long up;

	wait_heartbeat();
	if (have_peer && ctl_open(&pctl, &peer_sin) == 0) {
		ctl_send(&pctl, "HELLO scale 1\n");
		run_until(now_ns() + NS_PER_S, ctl_answered_peer);
		if (strncmp(pctl.line, "WELCOME", 7) != 0)
			note("inbound peer: no WELCOME (\"%.40s\")", pctl.line);
	}
	fds0 = proc_fds();
	lateness("http_quiet", now_ns() - 1000 * NS_PER_MS, now_ns());
	sampling = probing = 1;
	hz_next = now_ns();
	t0 = now_ns();
	clients_open();
	window("http_flood", window_s * 1000);
	t1 = now_ns();
	sampling = probing = 0;
	if (hp.fd >= 0)
		probe_end(-1);
	clients_close();
	run_until(now_ns() + 500 * NS_PER_MS, NULL);
	fds1 = proc_fds();
	qsort(shed_ns, n_shed, sizeof(*shed_ns), cmp_u64);
	qsort(cut_ns, n_cut, sizeof(*cut_ns), cmp_u64);
	up = stats_now("peers_up");
	printf("http clients=%u connects=%u connect_err=%u conn_failed=%u "
	    "open_max=%u shed=%zu shed_p50_us=%" PRIu64 " shed_p99_us=%" PRIu64
	    " shed_max_us=%" PRIu64 " cut=%zu cut_min_us=%" PRIu64
	    " cut_max_us=%" PRIu64 " hold_max_us=%" PRIu64 " answered=%u "
	    "fds0=%ld fds_peak=%ld fds_after=%ld healthz_ok=%u "
	    "healthz_refused=%u healthz_timeout=%u healthz_other=%u "
	    "healthz_max_us=%" PRIu64 " pings=%u ping_max_us=%" PRIu64
	    " ping_late=%u acks=%u ack_max_us=%" PRIu64 " ack_late=%u "
	    "peers_up=%ld window_us=%" PRIu64 " timeout_ms=%u\n", nclients,
	    n_connects, n_connect_err, n_failed, n_open_max, n_shed,
	    pct(shed_ns, n_shed, 50) / NS_PER_US,
	    pct(shed_ns, n_shed, 99) / NS_PER_US,
	    n_shed ? shed_ns[n_shed - 1] / NS_PER_US : 0, n_cut,
	    n_cut ? cut_ns[0] / NS_PER_US : 0,
	    n_cut ? cut_ns[n_cut - 1] / NS_PER_US : 0,
	    hold_over_ns / NS_PER_US, n_unexpected, fds0, fds_peak, fds1,
	    hz_ok, hz_refused, hz_timeout, hz_other, hz_max_ns / NS_PER_US,
	    wctl.n_ok, wctl.rtt_max / NS_PER_US, wctl.n_late, pctl.n_ok,
	    pctl.rtt_max / NS_PER_US, pctl.n_late, up, (t1 - t0) / NS_PER_US,
	    timeout_ms);
}

/* "HOST:PORT" (IPv4) into *sin; "-" leaves *have 0. */
static void
address(const char *s, struct sockaddr_in *sin, int *have)
{
	char host[64];
	const char *colon = strrchr(s, ':');

	if (strcmp(s, "-") == 0)
		return;
	if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
		fatal("bad address \"%s\"", s);
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)number(colon + 1, 1, 65535));
	if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		fatal("bad address \"%s\" (IPv4 only)", s);
	*have = 1;
}

int
main(int argc, char **argv)
{
	static char line[512];
	char waddr[128], haddr[128], paddr[128];
	struct rlimit rl;
	int ch, port;

	while ((ch = getopt(argc, argv, "p:I:n:d:t:b:r:T:h")) != -1) {
		switch (ch) {
		case 'p':
			peer_port = number(optarg, 0, 65535);
			break;
		case 'I':
			interval_ns = number(optarg, 1, 60000) * NS_PER_MS;
			break;
		case 'n':
			nclients = number(optarg, 1, 1000000);
			break;
		case 'd':
			window_s = number(optarg, 1, 600);
			break;
		case 't':
			limit_s = number(optarg, 1, 600);
			break;
		case 'b':
			byte_ms = number(optarg, 1, 600000);
			break;
		case 'r':
			reconnect_ms = number(optarg, 0, 600000);
			break;
		case 'T':
			timeout_ms = number(optarg, 1, 600000);
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1)
		usage();
	mode = argv[optind];
	if (strcmp(mode, "idle") != 0 && strcmp(mode, "peers") != 0 &&
	    strcmp(mode, "http") != 0)
		usage();
	signal(SIGPIPE, SIG_IGN);
	srandom((unsigned)getpid());

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)nclients + 64)
		fatal("fd limit %lu is too low for %u (ulimit -n)",
		    (unsigned long)rl.rlim_cur, nclients);
	if ((clients = calloc(nclients, sizeof(*clients))) == NULL)
		fatal("out of memory");
	for (ch = 0; ch < (int)nclients; ch++) {	/* none until clients_open */
		clients[ch].kind = K_CLIENT;
		clients[ch].fd = -1;
		clients[ch].next = UINT64_MAX;
	}
	if ((ep = epoll_create1(0)) < 0 || (ep_link = epoll_create1(0)) < 0)
		fatal("epoll_create1: %s", strerror(errno));
	ep_add(ep, ep_link, EPOLLIN, &eplink_kind);

	port = peer_listen();
	printf("peer_port=%d\n", port);
	fflush(stdout);
	if (fgets(line, sizeof(line), stdin) == NULL ||
	    sscanf(line, "%127s %127s %127s %ld", waddr, haddr, paddr,
	    &dpid) != 4 || dpid <= 0)
		fatal("expected \"WORK HTTP PEER PID\" on stdin");
	address(waddr, &work_sin, &have_work);
	address(haddr, &http_sin, &have_http);
	address(paddr, &peer_sin, &have_peer);
	if (!have_work)
		fatal("no work address");
	if (strcmp(mode, "http") == 0 && !have_http)
		fatal("http needs the daemon's HTTP address");
	if (ctl_open(&wctl, &work_sin) < 0)
		fatal("work connection: %s", strerror(errno));

	if (strcmp(mode, "idle") == 0)
		scenario_idle();
	else if (strcmp(mode, "peers") == 0)
		scenario_peers();
	else
		scenario_http();

	printf("counts links=%d\n", links_total);
	fflush(stdout);
	clients_close();
	if (wctl.fd >= 0)
		close(wctl.fd);
	if (pctl.fd >= 0)
		close(pctl.fd);
	if (hp.fd >= 0)
		close(hp.fd);
	while (nlinks > 0)
		link_close(links[0]);
	free(links);
	free(clients);
	free(arrivals);
	free(shed_ns);
	free(cut_ns);
	close(listen_fd);
	close(ep_link);
	close(ep);
	return 0;
}
