/*
 * burst.c - heartbeat lateness while 10,000 clients connect at once.
 *
 * One single-threaded epoll loop plays two parts, as hbbench does:
 *
 *  - the daemon's peer: it listens on 127.0.0.1 (the daemon is started with
 *    -s peer=bench@127.0.0.1:PORT), answers "HELLO ..." with
 *    "WELCOME bench 1" and every "HB <seq> <t> [lag_us=N missed=M]" with
 *    "ACK <seq> <t>", and notes when each HB arrived: the kernel's receive
 *    stamp (SO_TIMESTAMPNS, moved to CLOCK_MONOTONIC), so this process's own
 *    scheduling delay during the burst is not charged to the daemon;
 *  - -n clients of its work port, all opened at once: nonblocking connect()
 *    in a tight loop, then each writes "PING\n" when its connect completes
 *    and reads its "PONG".
 *
 * A round: wait for the first HB, let 0.5 s settle, measure 1 s before the
 * burst (the "quiet" line), then open every client, serve until each has its
 * PONG (or failed, or -t seconds passed), take STATS on a separate
 * connection (the daemon's count of open connections), then close every
 * client at once and measure 1 s more (the "close" line: the daemon now
 * reads 10,000 EOFs). -R rounds repeat the burst and close.
 *
 * Lateness, for the HBs that arrived in a window (see report()):
 *  gap    how much longer than one interval the peer waited for each HB
 *         since the one before it (0 if not longer), as bench/run.sh's
 *         table; the HB after the window's end is included, since its gap
 *         covers the end of the window;
 *  lag    the daemon's own lateness of each tick against its fixed schedule,
 *         the lag_us=N it puts on each HB (heartbeatd only; 0 otherwise);
 *  missed the daemon's count of ticks it swallowed (missed=M on its HBs),
 *         over the window;
 *  drops  packets the kernel dropped from its input backlog meanwhile
 *         (softnet_drops(): why a transit can be 200 ms and more);
 *  transit from the HB's own <t> (the daemon's CLOCK_MONOTONIC when it
 *         queued the line) to its arrival: time the HB spent in the daemon's
 *         output buffer and the kernel. lag + transit is what the peer sees.
 *
 * Results: key=value lines on stdout, times in microseconds; notes on
 * stderr. Every wait is bounded; every socket is closed before exit.
 * Needs an fd limit above -n (it raises its soft limit to the hard one).
 */

#define _GNU_SOURCE
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <arpa/inet.h>
#include <errno.h>
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
#define SETTLE_MS	500	/* after the first HB */
#define QUIET_MS	1000	/* the window before the burst */
#define CLOSE_MS	1000	/* the window after closing every client */
#define MAX_LINKS	8
#define LINKBUF		8192
#define CLIENTBUF	64

enum kind { K_LISTEN, K_LINK, K_CLIENT, K_STATS };

enum cstate { C_CONNECTING, C_WAITING, C_DONE, C_FAILED };

struct link {			/* a heartbeat link from the daemon */
	enum kind	 kind;
	int		 fd;
	int		 id;
	size_t		 inlen;
	char		 in[LINKBUF];
};

struct client {			/* one burst client */
	enum kind	 kind;
	int		 fd;
	enum cstate	 state;
	unsigned char	 inlen;
	char		 in[CLIENTBUF];
};

struct arrival {
	uint64_t	 t;		/* kernel stamp, CLOCK_MONOTONIC ns */
	uint64_t	 tu;		/* when read */
	uint64_t	 seq, lag_us, missed;
	uint64_t	 sent;		/* the HB's own <t>: when it was written */
	int		 link;
};

static const char	*work_addr;
static struct sockaddr_in work_sin;
static unsigned		 peer_port;
static uint64_t		 interval_ns = 10 * NS_PER_MS;
static unsigned		 nclients = 10000, rounds = 1, limit_s = 30;

static int		 ep;		/* clients, STATS, and ep_link */
static int		 ep_link;	/* the peer listener and links */
static enum kind	 link_ep_kind = K_LINK;	/* ep_link inside ep */
static struct link	*links[MAX_LINKS];
static int		 nlinks, links_total;
static struct client	*clients;
static struct arrival	*arrivals;
static size_t		 narrivals, arrivals_cap;
static unsigned		 n_connected, n_pong, n_refused, n_failed, n_pending;
static uint64_t		 t_last_pong;
static int		 stats_fd = -1;
static char		 stats_line[1024];
static size_t		 stats_len;
static int		 stats_done;

static void
note(const char *fmt, ...)
{
	va_list ap;

	fputs("burst: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void
fatal(const char *fmt, ...)
{
	va_list ap;

	fputs("burst: ", stderr);
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
	    "usage: burst -w HOST:PORT|- [-p PORT] [-I ms] [-n clients] "
	    "[-R rounds] [-t s]\n"
	    "  -w  the daemon's work address (IPv4); \"-\": print "
	    "peer_port=N, then read it\n"
	    "      from stdin (so the daemon can be started in between)\n"
	    "  -p  peer port to listen on, 127.0.0.1 (0: any; default)\n"
	    "  -I  the daemon's heartbeat interval (10)\n"
	    "  -n  clients opened at once (10000)   -R  rounds (1)\n"
	    "  -t  time limit for serving one burst, seconds (30)\n");
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
static void
send_all(int fd, const char *s, size_t n)
{
	if (send(fd, s, n, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)n)
		note("short write to the daemon (%s)", strerror(errno));
}

/* ---- the peer ----------------------------------------------------------- */

static enum kind listen_kind = K_LISTEN;
static int listen_fd = -1;

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
	    listen(fd, 16) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) < 0)
		fatal("peer listener on port %u: %s", peer_port, strerror(errno));
	listen_fd = fd;
	ep_add(ep_link, fd, EPOLLIN, &listen_kind);
	return ntohs(sin.sin_port);
}

static void
link_accept(int lfd)
{
	struct link *l;
	int fd, one = 1;

	if ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) < 0)
		return;
	if (nlinks == MAX_LINKS) {
		close(fd);
		return;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL)
		fatal("out of memory");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one)) < 0)
		note("SO_TIMESTAMPNS: %s; HB arrival = read time",
		    strerror(errno));
	l->kind = K_LINK;
	l->fd = fd;
	l->id = ++links_total;
	if (links_total > 1)
		note("the daemon opened heartbeat link %d", links_total);
	links[nlinks++] = l;
	ep_add(ep_link, fd, EPOLLIN, l);
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

/* A trailing "key=N" of an HB line, or 0. */
static uint64_t
hb_field(const char *rest, const char *key)
{
	const char *p = strstr(rest, key);

	return p != NULL ? strtoull(p + strlen(key), NULL, 10) : 0;
}

static void
link_line(struct link *l, char *line, uint64_t t, uint64_t tu)
{
	char reply[128], *seq, *ts, *rest, *save;
	struct arrival *a;
	int n;

	if (strncmp(line, "HELLO", 5) == 0) {
		send_all(l->fd, "WELCOME bench 1\n", 16);
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
	a->tu = tu;
	a->seq = strtoull(seq, NULL, 10);
	a->sent = strtoull(ts, NULL, 10);
	a->lag_us = hb_field(rest, "lag_us=");
	a->missed = hb_field(rest, "missed=");
	a->link = l->id;
}

/* Read a heartbeat link; the arrival time is the kernel's stamp. */
static void
link_read(struct link *l)
{
	union {
		char		buf[CMSG_SPACE(sizeof(struct timespec))];
		struct cmsghdr	align;
	} ctl;
	struct iovec iov;
	struct msghdr msg;
	struct cmsghdr *cm;
	struct timespec real, stamp;
	uint64_t t, tu;
	char *p, *nl, *end;
	ssize_t r;

	iov.iov_base = l->in + l->inlen;
	iov.iov_len = LINKBUF - l->inlen;
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = ctl.buf;
	msg.msg_controllen = sizeof(ctl.buf);
	r = recvmsg(l->fd, &msg, 0);
	t = tu = now_ns();
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		note("heartbeat link %d closed", l->id);
		link_close(l);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &real);
	for (cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm))
		if (cm->cmsg_level == SOL_SOCKET &&
		    cm->cmsg_type == SCM_TIMESTAMPNS) {
			memcpy(&stamp, CMSG_DATA(cm), sizeof(stamp));
			t = tu - (uint64_t)((int64_t)(real.tv_sec -
			    stamp.tv_sec) * (int64_t)NS_PER_S +
			    (real.tv_nsec - stamp.tv_nsec));
		}
	l->inlen += (size_t)r;
	p = l->in;
	end = l->in + l->inlen;
	while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		*nl = '\0';
		if (nl > p && nl[-1] == '\r')
			nl[-1] = '\0';
		link_line(l, p, t, tu);
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
 * arrives. A TCP read returns the receive stamp of the last segment it
 * took, so HBs left waiting together would all get the latest one.
 */
static void
serve_links(void)
{
	struct epoll_event evs[MAX_LINKS + 1];
	int i, n;

	if ((n = epoll_wait(ep_link, evs, MAX_LINKS + 1, 0)) <= 0)
		return;
	for (i = 0; i < n; i++) {
		enum kind *k = evs[i].data.ptr;

		if (*k == K_LISTEN)
			link_accept(listen_fd);
		else
			link_read((struct link *)(void *)k);
	}
}

/* ---- the clients ---------------------------------------------------------- */

static void
client_end(struct client *c, enum cstate state)
{
	c->state = state;
	n_pending--;
	if (state == C_FAILED)
		n_failed++;
	/* keep the socket open until the round ends: 10,000 at once */
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
}

static void
client_event(struct client *c, uint32_t events)
{
	int err = 0;
	socklen_t len = sizeof(err);
	ssize_t r;
	char *nl;

	if (c->state == C_CONNECTING) {
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 ||
		    err != 0) {
			client_end(c, C_FAILED);
			return;
		}
		n_connected++;
		c->state = C_WAITING;
		if (send(c->fd, "PING\n", 5, MSG_NOSIGNAL) != 5) {
			client_end(c, C_FAILED);
			return;
		}
		ep_mod(c->fd, EPOLLIN, c);
		return;
	}
	r = read(c->fd, c->in + c->inlen, CLIENTBUF - 1 - c->inlen);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		client_end(c, C_FAILED);
		return;
	}
	c->inlen = (unsigned char)(c->inlen + r);
	c->in[c->inlen] = '\0';
	if ((nl = strchr(c->in, '\n')) == NULL) {
		if (c->inlen == CLIENTBUF - 1)
			client_end(c, C_FAILED);
		return;
	}
	if (strncmp(c->in, "PONG", 4) == 0) {
		n_pong++;
		t_last_pong = now_ns();
		client_end(c, C_DONE);
	} else {
		if (n_refused++ == 0)
			note("daemon said: %.*s", (int)(nl - c->in), c->in);
		client_end(c, C_FAILED);
	}
	(void)events;
}

/* Open every client at once; a connect refused at once counts as failed. */
static void
clients_open(void)
{
	unsigned i;
	int one = 1;

	n_connected = n_pong = n_refused = n_failed = 0;
	n_pending = nclients;
	for (i = 0; i < nclients; i++) {
		struct client *c = &clients[i];

		memset(c, 0, sizeof(*c));
		c->kind = K_CLIENT;
		c->state = C_CONNECTING;
		if ((c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK,
		    0)) < 0)
			fatal("socket: %s (raise ulimit -n above %u)",
			    strerror(errno), nclients);
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(c->fd, (struct sockaddr *)&work_sin,
		    sizeof(work_sin)) < 0 && errno != EINPROGRESS) {
			if (n_failed == 0)
				note("connect: %s", strerror(errno));
			c->state = C_FAILED;
			n_pending--;
			n_failed++;
			continue;
		}
		ep_add(ep, c->fd, EPOLLOUT, c);
		if (i % 64 == 63)
			serve_links();
	}
}

static void
clients_close(void)
{
	unsigned i;

	for (i = 0; i < nclients; i++)
		if (clients[i].fd >= 0) {
			close(clients[i].fd);	/* drops it from epoll too */
			clients[i].fd = -1;
			if (i % 64 == 63)
				serve_links();
		}
}

/* ---- STATS on a connection of its own ------------------------------------- */

static enum kind stats_kind = K_STATS;

static void
stats_read(void)
{
	ssize_t r;

	r = read(stats_fd, stats_line + stats_len,
	    sizeof(stats_line) - 1 - stats_len);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		stats_done = -1;
		return;
	}
	stats_len += (size_t)r;
	stats_line[stats_len] = '\0';
	if (strchr(stats_line, '\n') != NULL || stats_len ==
	    sizeof(stats_line) - 1) {
		stats_line[strcspn(stats_line, "\r\n")] = '\0';
		stats_done = 1;
	}
}

/* ---- the loop ------------------------------------------------------------- */

static void
run_until(uint64_t deadline, int (*done)(void))
{
	struct epoll_event evs[256];
	uint64_t now;
	int i, n, ms;

	while (done == NULL || !done()) {
		if ((now = now_ns()) >= deadline)
			break;
		ms = (int)((deadline - now + NS_PER_MS - 1) / NS_PER_MS);
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
			case K_LISTEN:
				break;
			case K_LINK:	/* ep_link is readable */
				serve_links();
				break;
			case K_CLIENT:
				client_event((struct client *)(void *)k,
				    evs[i].events);
				break;
			case K_STATS:
				stats_read();
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
all_served(void)
{
	return n_pending == 0;
}

static int
stats_answered(void)
{
	return stats_done != 0;
}

static uint64_t window_end;

static int
hb_after_end(void)
{
	return narrivals > 0 && arrivals[narrivals - 1].t >= window_end;
}

/* STATS' "connections=N", or -1. */
static long
daemon_connections(void)
{
	const char *p;
	int one = 1;

	stats_fd = socket(AF_INET, SOCK_STREAM, 0);
	if (stats_fd < 0 || connect(stats_fd, (struct sockaddr *)&work_sin,
	    sizeof(work_sin)) < 0) {
		note("STATS connection: %s", strerror(errno));
		if (stats_fd >= 0)
			close(stats_fd);
		stats_fd = -1;
		return -1;
	}
	setsockopt(stats_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	stats_len = 0;
	stats_done = 0;
	ep_add(ep, stats_fd, EPOLLIN, &stats_kind);
	send_all(stats_fd, "STATS\n", 6);
	run_until(now_ns() + 5 * NS_PER_S, stats_answered);
	close(stats_fd);
	stats_fd = -1;
	if (stats_done != 1 || (p = strstr(stats_line, " connections=")) ==
	    NULL)
		return -1;
	/* less this STATS connection itself */
	return strtol(p + 13, NULL, 10) - 1;
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

/* First arrival at or after t. */
static size_t
arrival_at(uint64_t t)
{
	size_t i;

	for (i = 0; i < narrivals; i++)
		if (arrivals[i].t >= t)
			return i;
	return narrivals;
}

/*
 * Lateness of HBs [from, to): gaps between arrivals (each HB's gap to the
 * one before it, so the first HB of the window is measured from the last
 * before it), the daemon's lag_us, and its missed ticks over the window.
 * Pooled into *all when all != NULL.
 */
struct pool {
	uint64_t	*gap, *lag, *transit;
	size_t		 ngap, nlag;
	uint64_t	 missed;
};

static void
pool_add(struct pool *p, size_t from, size_t to)
{
	size_t i;
	uint64_t d;

	p->gap = realloc(p->gap, (p->ngap + to - from + 1) * sizeof(*p->gap));
	p->lag = realloc(p->lag, (p->nlag + to - from + 1) * sizeof(*p->lag));
	p->transit = realloc(p->transit, (p->nlag + to - from + 1) *
	    sizeof(*p->transit));
	if (p->gap == NULL || p->lag == NULL || p->transit == NULL)
		fatal("out of memory");
	for (i = from; i < to; i++) {
		/* the daemon's <t> is its CLOCK_MONOTONIC, as ours (heartbeatd) */
		p->transit[p->nlag] = arrivals[i].t > arrivals[i].sent &&
		    arrivals[i].t - arrivals[i].sent < 60 * NS_PER_S ?
		    (arrivals[i].t - arrivals[i].sent) / NS_PER_US : 0;
		p->lag[p->nlag++] = arrivals[i].lag_us;
		if (i > 0 && arrivals[i].link == arrivals[i - 1].link) {
			d = arrivals[i].t - arrivals[i - 1].t;
			p->gap[p->ngap++] = (d > interval_ns ? d - interval_ns :
			    0) / NS_PER_US;
			if (arrivals[i].missed > arrivals[i - 1].missed)
				p->missed += arrivals[i].missed -
				    arrivals[i - 1].missed;
		}
	}
}

static void
pool_print(const char *name, struct pool *p, const char *extra)
{
	qsort(p->gap, p->ngap, sizeof(*p->gap), cmp_u64);
	qsort(p->lag, p->nlag, sizeof(*p->lag), cmp_u64);
	qsort(p->transit, p->nlag, sizeof(*p->transit), cmp_u64);
	printf("%s%s hb=%zu missed=%" PRIu64 " gap_p50_us=%" PRIu64
	    " gap_p99_us=%" PRIu64 " gap_max_us=%" PRIu64 " lag_p50_us=%"
	    PRIu64 " lag_p99_us=%" PRIu64 " lag_max_us=%" PRIu64
	    " transit_p99_us=%" PRIu64 " transit_max_us=%" PRIu64 "\n", name,
	    extra, p->nlag, p->missed, pct(p->gap, p->ngap, 50),
	    pct(p->gap, p->ngap, 99), p->ngap ? p->gap[p->ngap - 1] : 0,
	    pct(p->lag, p->nlag, 50), pct(p->lag, p->nlag, 99),
	    p->nlag ? p->lag[p->nlag - 1] : 0,
	    pct(p->transit, p->nlag, 99),
	    p->nlag ? p->transit[p->nlag - 1] : 0);
	fflush(stdout);
}

static void
pool_free(struct pool *p)
{
	free(p->gap);
	free(p->lag);
	free(p->transit);
	memset(p, 0, sizeof(*p));
}

/* Measure [t0, t1) and the HB after it; one line, and pooled into *all. */
static void
window(const char *name, uint64_t t0, uint64_t t1, const char *extra,
    struct pool *all)
{
	struct pool p = { 0 };
	size_t from, to;

	window_end = t1;
	run_until(t1 + 5 * interval_ns + 100 * NS_PER_MS, hb_after_end);
	from = arrival_at(t0);
	to = arrival_at(t1);
	if (to < narrivals)
		to++;		/* its gap covers the window's end */
	pool_add(&p, from, to);
	if (all != NULL)
		pool_add(all, from, to);
	pool_print(name, &p, extra);
	pool_free(&p);
}

/*
 * Packets the kernel dropped from its per-CPU input backlog
 * (/proc/net/softnet_stat, second column, summed; net.core.netdev_max_backlog
 * long). Loopback traffic all goes through it: 10,000 handshakes at once
 * overflow it, and a dropped HB segment waits for TCP's retransmission
 * timeout (200 ms and more) however punctual the daemon was.
 */
static unsigned long
softnet_drops(void)
{
	FILE *f = fopen("/proc/net/softnet_stat", "r");
	unsigned long sum = 0, processed, dropped;

	if (f == NULL)
		return 0;
	while (fscanf(f, "%lx %lx%*[^\n]", &processed, &dropped) == 2)
		sum += dropped;
	fclose(f);
	return sum;
}

static void
work_address(void)
{
	char host[64];
	const char *colon = strrchr(work_addr, ':');

	if (colon == NULL || (size_t)(colon - work_addr) >= sizeof(host))
		fatal("bad work address \"%s\"", work_addr);
	memcpy(host, work_addr, (size_t)(colon - work_addr));
	host[colon - work_addr] = '\0';
	memset(&work_sin, 0, sizeof(work_sin));
	work_sin.sin_family = AF_INET;
	work_sin.sin_port = htons((uint16_t)number(colon + 1, 1, 65535));
	if (inet_pton(AF_INET, host, &work_sin.sin_addr) != 1)
		fatal("bad work address \"%s\" (IPv4 only)", work_addr);
}

int
main(int argc, char **argv)
{
	static char line[512];
	struct pool all_burst = { 0 }, all_close = { 0 };
	struct rlimit rl;
	char extra[256];
	uint64_t t0, t_open, t_end, t_close;
	unsigned long drops0;
	unsigned r;
	long accepted;
	int ch, port;

	while ((ch = getopt(argc, argv, "w:p:I:n:R:t:h")) != -1) {
		switch (ch) {
		case 'w':
			work_addr = optarg;
			break;
		case 'p':
			peer_port = number(optarg, 0, 65535);
			break;
		case 'I':
			interval_ns = number(optarg, 1, 60000) * NS_PER_MS;
			break;
		case 'n':
			nclients = number(optarg, 1, 1000000);
			break;
		case 'R':
			rounds = number(optarg, 1, 100);
			break;
		case 't':
			limit_s = number(optarg, 1, 600);
			break;
		default:
			usage();
		}
	}
	if (work_addr == NULL || optind != argc)
		usage();
	signal(SIGPIPE, SIG_IGN);

	/* 10,000 sockets and a few more */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)nclients + 32)
		fatal("fd limit %lu is too low for %u clients (ulimit -n)",
		    (unsigned long)rl.rlim_cur, nclients);
	if ((clients = calloc(nclients, sizeof(*clients))) == NULL)
		fatal("out of memory");
	if ((ep = epoll_create1(0)) < 0 || (ep_link = epoll_create1(0)) < 0)
		fatal("epoll_create1: %s", strerror(errno));
	ep_add(ep, ep_link, EPOLLIN, &link_ep_kind);

	port = peer_listen();
	printf("peer_port=%d\n", port);
	fflush(stdout);
	if (strcmp(work_addr, "-") == 0) {
		if (fgets(line, sizeof(line), stdin) == NULL)
			fatal("no work address on stdin");
		line[strcspn(line, "\r\n")] = '\0';
		work_addr = line;
	}
	work_address();

	run_until(now_ns() + WAIT_PEER_S * NS_PER_S, have_heartbeat);
	if (narrivals == 0)
		fatal("no heartbeat from the daemon in %d s", WAIT_PEER_S);
	run_until(now_ns() + SETTLE_MS * NS_PER_MS, NULL);

	t0 = now_ns();
	run_until(t0 + QUIET_MS * NS_PER_MS, NULL);
	window("quiet", t0, now_ns(), "", NULL);

	for (r = 1; r <= rounds; r++) {
		drops0 = softnet_drops();
		t0 = now_ns();
		t_last_pong = t0;
		clients_open();
		t_open = now_ns();
		run_until(t0 + limit_s * NS_PER_S, all_served);
		t_end = now_ns();
		if (n_pending > 0)
			note("round %u: %u clients still waiting after %u s",
			    r, n_pending, limit_s);
		accepted = daemon_connections();
		snprintf(extra, sizeof(extra), " round=%u clients=%u "
		    "connected=%u accepted=%ld pongs=%u refused=%u failed=%u "
		    "open_us=%" PRIu64 " serve_us=%" PRIu64 " drops=%lu", r,
		    nclients, n_connected, accepted, n_pong, n_refused,
		    n_failed, (t_open - t0) / NS_PER_US,
		    (t_last_pong - t0) / NS_PER_US, softnet_drops() - drops0);
		window("burst", t0, t_end, extra, &all_burst);

		drops0 = softnet_drops();
		t_close = now_ns();
		clients_close();
		t_end = now_ns();
		run_until(t_close + CLOSE_MS * NS_PER_MS, NULL);
		snprintf(extra, sizeof(extra), " round=%u close_us=%" PRIu64
		    " drops=%lu", r, (t_end - t_close) / NS_PER_US,
		    softnet_drops() - drops0);
		window("close", t_close, now_ns(), extra, &all_close);
	}
	if (rounds > 1) {
		snprintf(extra, sizeof(extra), " rounds=%u", rounds);
		pool_print("burst_all", &all_burst, extra);
		pool_print("close_all", &all_close, extra);
	}
	printf("counts links=%d\n", links_total);
	pool_free(&all_burst);
	pool_free(&all_close);
	while (nlinks > 0)
		link_close(links[0]);
	free(clients);
	free(arrivals);
	close(listen_fd);
	close(ep_link);
	close(ep);
	return 0;
}
