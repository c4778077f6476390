/*
 * hbbench.c - measure a heartbeatd-compatible daemon from the outside.
 *
 * One single-threaded poll(2) loop plays two parts at once:
 *
 *  - the daemon's peer. It listens on 127.0.0.1 (the daemon is started with
 *    -s peer=bench@127.0.0.1:PORT), answers "HELLO ..." with
 *    "WELCOME bench 1" and every "HB <seq> <t>" at once with
 *    "ACK <seq> <t>" (interface.md section 5), and notes when each HB
 *    arrived (see sock_read: the kernel's receive stamp, CLOCK_MONOTONIC);
 *  - the daemon's clients on its work port (interface.md section 4).
 *
 * The peer link is served during every phase, so the daemon never sees its
 * peer go quiet. The measurements, in this order (any subset may be named on
 * the command line):
 *
 *  idle    heartbeat lateness over -i seconds with no work.
 *  loaded  heartbeat lateness over -d seconds while -c connections each keep
 *          -o "SUBMIT spin ms=M" outstanding (a new SUBMIT for every outcome
 *          line), which keeps the pool saturated. Afterwards the outstanding
 *          jobs are let finish, so the next phase starts with an idle pool.
 *  tput    no-op jobs ("SUBMIT spin ms=0") pipelined over -c connections in
 *          batches of -b: write the batch, read its -b OK and -b outcome
 *          lines, repeat, for -T seconds (the batches in flight then
 *          complete). jobs/s = DONE lines / time from the first write to the
 *          last DONE.
 *  rtt     one connection, one no-op job at a time, -n jobs: the time from
 *          writing the SUBMIT line to reading its DONE line.
 *
 * With -f FLOOR, the loaded window also runs the bare-timer floor
 * (bench/floor.c: a clock_nanosleep loop on the same interval, with -S ns of
 * timer slack, as the daemon's loop) for the same -d seconds, and passes on
 * its "floor ..." line: how late a timer that does nothing else wakes under
 * the same load, to read the daemon's lateness against.
 *
 * Lateness is reported two ways (report_lateness):
 *
 *  gap     how much longer than one interval the peer waited for each HB
 *          since the previous one. This is what a peer's liveness check
 *          feels, it does not grow with the length of the window, and it is
 *          how the figures in shared/anchors/README.md were taken.
 *  sched   against a fixed schedule: the daemon means to send HB k at
 *          phase + k * interval; take the earliest phase consistent with the
 *          arrivals, phase = min(arrival_k - k * interval), and lateness_k =
 *          arrival_k - k * interval - phase. This also charges drift (a
 *          timer re-armed from when it fired, as libuv's repeat does) and
 *          ticks skipped without a sequence number, so it grows with the
 *          window and a slowly drifting daemon looks worse than one that
 *          stalls now and then.
 *  lag     the daemon's own lateness of each tick against its fixed
 *          schedule, from the "lag_us=N" on its HB lines (heartbeatd's; the
 *          anchors send none, and then no lag_* figures are printed). It is
 *          taken the way floor.c takes its own.
 *
 * Results go to stdout, one line per measurement, as key=value pairs with
 * times in microseconds, for bench/run.sh to tabulate; progress and problems
 * go to stderr. Every wait is bounded in time.
 */

#define _GNU_SOURCE
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
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
#define MAX_CONNS	64
#define INBUF		65536
#define WAIT_PEER_S	10	/* for the daemon's first HB */
#define SETTLE_MS	500	/* skipped after the first HB */
#define DRAIN_S		15	/* for jobs still outstanding after a phase */
#define RTT_LIMIT_S	30	/* for the whole rtt measurement */

enum role {
	R_LISTEN,	/* the peer listener */
	R_PEER,		/* a heartbeat link from the daemon */
	R_LOAD,		/* keeps -o long jobs outstanding */
	R_TPUT,		/* pipelines batches of no-op jobs */
	R_RTT		/* one no-op job at a time */
};

struct conn {
	int		 fd;
	enum role	 role;
	int		 link;		/* R_PEER: number of the link */
	char		*in;
	size_t		 inlen;
	char		*out;
	size_t		 outlen, outcap;
	unsigned	 replies;	/* SUBMITs written, no OK/ERR read yet */
	unsigned	 outcomes;	/* OK read, no DONE/FAIL read yet */
	uint64_t	 t_submit;	/* R_RTT: when the SUBMIT was written */
};

struct arrival {
	uint64_t	 seq;
	uint64_t	 t;		/* CLOCK_MONOTONIC, ns: kernel stamp */
	uint64_t	 tu;		/* ... when hbbench read it */
	uint64_t	 lag_us;	/* the HB's lag_us=N, if it has one */
	int		 has_lag;
	int		 link;
};

/* Options. */
static const char	*work_addr;
static unsigned		 peer_port;
static uint64_t		 interval_ns = 10 * NS_PER_MS;
static unsigned		 idle_s = 3, loaded_s = 10, tput_s = 5;
static unsigned		 nclients = 4, outstanding = 4, spin_ms = 50;
static unsigned		 batch = 256, rtt_jobs = 2000;
static const char	*raw_path;
static const char	*floor_path;
static unsigned		 slack_ns = 1000;

/* State shared by the loop and the phases. */
static struct conn	*conns[MAX_CONNS];
static int		 nconns;
static int		 nlinks;
static struct arrival	*arrivals;
static size_t		 narrivals, arrivals_cap;
static int		 loading, pipelining;	/* start new jobs? */
static int		 broken;		/* a work connection failed */
static uint64_t		 n_ok, n_err, n_done, n_fail, n_other;
static uint64_t		 t_last_done;
static uint64_t		*rtt;
static size_t		 nrtt;
static unsigned		 rtt_tries;

static void
usage(void)
{
	fprintf(stderr,
	    "usage: hbbench -w HOST:PORT|- [-p PORT] [-I ms] [-i s] [-d s] "
	    "[-T s]\n"
	    "               [-c conns] [-o jobs] [-m ms] [-b batch] [-n jobs] "
	    "[-r file]\n"
	    "               [-f floor] [-S ns]\n"
	    "               [idle] [loaded] [tput] [rtt]\n"
	    "  -w  the daemon's work address; \"-\": print peer_port=N, then "
	    "read it\n"
	    "      from stdin (so the daemon can be started in between)\n"
	    "  -p  peer port to listen on, 127.0.0.1 (0: any; default)\n"
	    "  -I  the daemon's heartbeat interval (10)\n"
	    "  -i  idle window (3)    -d  loaded window (10)   -T  tput run (5)\n"
	    "  -c  connections (4)    -o  jobs outstanding per connection under "
	    "load (4)\n"
	    "  -m  spin ms of a load job (50)   -b  tput batch (256)   -n  rtt "
	    "jobs (2000)\n"
	    "  -r  write every HB to file: link seq arrival_ns read_ns "
	    "(monotonic)\n"
	    "  -f  run this bare-timer floor (bench/floor.c) during the loaded "
	    "window\n"
	    "  -S  the floor's timer slack, ns (1000, as the daemon's "
	    "timer_slack_ns)\n"
	    "Without measurements named, all four run.\n");
	exit(2);
}

static void
vnote(const char *fmt, va_list ap)
{
	fputs("hbbench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static void
note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vnote(fmt, ap);
	va_end(ap);
}

static void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vnote(fmt, ap);
	va_end(ap);
	exit(1);
}

static void *
xrealloc(void *p, size_t n)
{
	if ((p = realloc(p, n)) == NULL)
		fatal("out of memory");
	return p;
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

/* ---- connections ------------------------------------------------------ */

static struct conn *
conn_add(int fd, enum role role)
{
	struct conn *c;
	int one = 1;

	if (nconns == MAX_CONNS)
		fatal("too many connections");
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->in = malloc(INBUF)) == NULL)
		fatal("out of memory");
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	if (role != R_LISTEN)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->fd = fd;
	c->role = role;
	conns[nconns++] = c;
	return c;
}

static void
conn_close(struct conn *c)
{
	int i;

	for (i = 0; i < nconns; i++)
		if (conns[i] == c) {
			conns[i] = conns[--nconns];
			break;
		}
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
}

static void
close_role(enum role role)
{
	int i;

	for (i = nconns - 1; i >= 0; i--)
		if (conns[i]->role == role)
			conn_close(conns[i]);
}

/* Write now what the socket takes; keep the rest for POLLOUT. */
static int
conn_send(struct conn *c, const char *s, size_t n)
{
	ssize_t w;

	if (c->outlen == 0) {
		w = write(c->fd, s, n);
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		if (w > 0) {
			s += w;
			n -= (size_t)w;
		}
	}
	if (n == 0)
		return 0;
	if (c->outlen + n > c->outcap) {
		c->outcap = (c->outlen + n) * 2;
		c->out = xrealloc(c->out, c->outcap);
	}
	memcpy(c->out + c->outlen, s, n);
	c->outlen += n;
	return 0;
}

static int
conn_flush(struct conn *c)
{
	ssize_t w;

	w = write(c->fd, c->out, c->outlen);
	if (w < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	memmove(c->out, c->out + w, c->outlen - (size_t)w);
	c->outlen -= (size_t)w;
	return 0;
}

static struct conn *
work_connect(enum role role)
{
	struct addrinfo hints, *res;
	char host[256];
	const char *colon;
	int fd;

	colon = strrchr(work_addr, ':');
	if (colon == NULL || (size_t)(colon - work_addr) >= sizeof(host))
		fatal("bad work address \"%s\"", work_addr);
	memcpy(host, work_addr, (size_t)(colon - work_addr));
	host[colon - work_addr] = '\0';
	if (host[0] == '[') {
		memmove(host, host + 1, strlen(host));
		host[strcspn(host, "]")] = '\0';
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
		fatal("bad work address \"%s\"", work_addr);
	/* Loopback: a blocking connect completes at once or fails. */
	if ((fd = socket(res->ai_family, SOCK_STREAM, 0)) < 0 ||
	    connect(fd, res->ai_addr, res->ai_addrlen) < 0)
		fatal("connect %s: %s", work_addr, strerror(errno));
	freeaddrinfo(res);
	return conn_add(fd, role);
}

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
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(fd, 16) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) < 0)
		fatal("peer listener on port %u: %s", peer_port, strerror(errno));
	conn_add(fd, R_LISTEN);
	return ntohs(sin.sin_port);
}

/* ---- protocol --------------------------------------------------------- */

static int
submit(struct conn *c, unsigned n, unsigned ms)
{
	char line[64], *buf;
	size_t len, total;
	unsigned i;
	int rc;

	len = (size_t)snprintf(line, sizeof(line), "SUBMIT spin ms=%u\n", ms);
	total = len * n;
	buf = xrealloc(NULL, total);
	for (i = 0; i < n; i++)
		memcpy(buf + i * len, line, len);
	c->replies += n;
	if (c->role == R_RTT)
		c->t_submit = now_ns();
	rc = conn_send(c, buf, total);
	free(buf);
	return rc;
}

/*
 * One line from the daemon's heartbeat link; t is when it arrived (kernel
 * stamp), tu when this process read it.
 */
static int
peer_line(struct conn *c, char *line, uint64_t t, uint64_t tu)
{
	char reply[128], *verb, *seq, *ts, *save, *tok;
	int n;

	if ((verb = strtok_r(line, " \t", &save)) == NULL)
		return 0;
	if (strcmp(verb, "HELLO") == 0)
		return conn_send(c, "WELCOME bench 1\n", 16);
	if (strcmp(verb, "HB") != 0 ||
	    (seq = strtok_r(NULL, " \t", &save)) == NULL ||
	    (ts = strtok_r(NULL, " \t", &save)) == NULL) {
		note("peer link: unexpected line \"%s\"", verb);
		return 0;
	}
	n = snprintf(reply, sizeof(reply), "ACK %s %s\n", seq, ts);
	if (n <= 0 || (size_t)n >= sizeof(reply) ||
	    conn_send(c, reply, (size_t)n) < 0)
		return -1;
	if (narrivals == arrivals_cap) {
		arrivals_cap = arrivals_cap ? arrivals_cap * 2 : 4096;
		arrivals = xrealloc(arrivals, arrivals_cap * sizeof(*arrivals));
	}
	arrivals[narrivals].seq = strtoull(seq, NULL, 10);
	arrivals[narrivals].t = t;
	arrivals[narrivals].tu = tu;
	arrivals[narrivals].link = c->link;
	arrivals[narrivals].has_lag = 0;
	while ((tok = strtok_r(NULL, " \t", &save)) != NULL)
		if (strncmp(tok, "lag_us=", 7) == 0) {
			arrivals[narrivals].lag_us = strtoull(tok + 7, NULL, 10);
			arrivals[narrivals].has_lag = 1;
		}
	narrivals++;
	return 0;
}

/* One line from a work connection: replies and job outcomes. */
static int
work_line(struct conn *c, char *line, uint64_t t)
{
	int outcome = 0, refused = 0;

	if (strncmp(line, "OK ", 3) == 0) {
		n_ok++;
		if (c->replies > 0) {
			c->replies--;
			c->outcomes++;
		}
	} else if (strncmp(line, "ERR ", 4) == 0) {
		if (n_err++ == 0)
			note("daemon said: %s", line);
		if (c->replies > 0)
			c->replies--;
		refused = 1;
	} else if (strncmp(line, "DONE ", 5) == 0 ||
	    strncmp(line, "FAIL ", 5) == 0) {
		if (line[0] == 'D') {
			n_done++;
			t_last_done = t;
		} else if (n_fail++ == 0)
			note("daemon said: %s", line);
		if (c->outcomes > 0)
			c->outcomes--;
		outcome = 1;
	} else {
		if (n_other++ == 0)
			note("unexpected line: %s", line);
		return 0;
	}

	switch (c->role) {
	case R_LOAD:
		/* Keep the pool saturated: a new job for every one that ends. */
		if (outcome && loading)
			return submit(c, 1, spin_ms);
		break;
	case R_TPUT:
		if (pipelining && c->replies == 0 && c->outcomes == 0)
			return submit(c, batch, 0);
		break;
	case R_RTT:
		/* The job is over when refused or ended; only DONE is timed. */
		if (!outcome && !refused)
			break;
		if (line[0] == 'D')
			rtt[nrtt++] = t - c->t_submit;
		if (++rtt_tries < rtt_jobs)
			return submit(c, 1, 0);
		break;
	default:
		break;
	}
	return 0;
}

static void
accept_peer(struct conn *l)
{
	struct conn *c;
	int fd, one = 1;

	if ((fd = accept(l->fd, NULL, NULL)) < 0)
		return;
	c = conn_add(fd, R_PEER);
	if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one)) < 0)
		note("SO_TIMESTAMPNS: %s; HB arrival = read time",
		    strerror(errno));
	c->link = ++nlinks;
	if (nlinks > 1)
		note("the daemon opened heartbeat link %d", nlinks);
}

/*
 * read(2) into c->in, and say when the data arrived: *tu is CLOCK_MONOTONIC
 * right after the read, *t the same unless the kernel stamped the data on
 * arrival (SO_TIMESTAMPNS, set on heartbeat links), in which case it is that
 * stamp moved from CLOCK_REALTIME to CLOCK_MONOTONIC. The stamp is taken
 * when the daemon's write reaches the loopback device, so it leaves out how
 * long this process took to be scheduled and to get round to the socket.
 */
static ssize_t
sock_read(struct conn *c, uint64_t *t, uint64_t *tu)
{
	union {
		char		buf[CMSG_SPACE(sizeof(struct timespec))];
		struct cmsghdr	align;
	} ctl;
	struct iovec iov;
	struct msghdr msg;
	struct cmsghdr *cm;
	struct timespec real, stamp;
	ssize_t r;

	iov.iov_base = c->in + c->inlen;
	iov.iov_len = INBUF - c->inlen;
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = ctl.buf;
	msg.msg_controllen = sizeof(ctl.buf);
	r = recvmsg(c->fd, &msg, 0);
	*t = *tu = now_ns();
	if (r <= 0 || c->role != R_PEER)
		return r;
	clock_gettime(CLOCK_REALTIME, &real);
	for (cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm)) {
		if (cm->cmsg_level != SOL_SOCKET ||
		    cm->cmsg_type != SCM_TIMESTAMPNS)
			continue;
		memcpy(&stamp, CMSG_DATA(cm), sizeof(stamp));
		/* real - stamp: how long ago it arrived */
		*t = *tu - (uint64_t)((int64_t)(real.tv_sec - stamp.tv_sec) *
		    (int64_t)NS_PER_S + (real.tv_nsec - stamp.tv_nsec));
	}
	return r;
}

/* Read what is there and handle every complete line. -1: closed. */
static int
conn_read(struct conn *c)
{
	char *p, *nl, *end;
	ssize_t r;
	uint64_t t, tu;
	int rc = 0;

	r = sock_read(c, &t, &tu);
	if (r < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	if (r == 0)
		return -1;
	c->inlen += (size_t)r;
	p = c->in;
	end = c->in + c->inlen;
	while (rc == 0 && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		*nl = '\0';
		if (nl > p && nl[-1] == '\r')
			nl[-1] = '\0';
		rc = c->role == R_PEER ? peer_line(c, p, t, tu) :
		    work_line(c, p, tu);
		p = nl + 1;
	}
	c->inlen = (size_t)(end - p);
	memmove(c->in, p, c->inlen);
	if (c->inlen == INBUF) {
		note("line too long from the daemon");
		return -1;
	}
	return rc;
}

/*
 * The event loop: serve every connection until the deadline, or until
 * done() says the phase is over. Returns 0, or -1 if a work connection
 * failed (the peer link may come and go: the daemon reconnects).
 */
static int
run_until(uint64_t deadline, int (*done)(void))
{
	struct pollfd pfd[MAX_CONNS];
	struct conn *snap[MAX_CONNS];
	uint64_t now;
	int i, n, ms;

	while (!broken && (done == NULL || !done())) {
		if ((now = now_ns()) >= deadline)
			break;
		ms = (int)((deadline - now + NS_PER_MS - 1) / NS_PER_MS);
		n = nconns;
		for (i = 0; i < n; i++) {
			snap[i] = conns[i];
			pfd[i].fd = conns[i]->fd;
			pfd[i].events = POLLIN | (conns[i]->outlen ? POLLOUT : 0);
			pfd[i].revents = 0;
		}
		if (poll(pfd, (nfds_t)n, ms) < 0) {
			if (errno == EINTR)
				continue;
			fatal("poll: %s", strerror(errno));
		}
		for (i = 0; i < n; i++) {
			struct conn *c = snap[i];

			if (pfd[i].revents == 0)
				continue;
			if (c->role == R_LISTEN) {
				accept_peer(c);
				continue;
			}
			if (((pfd[i].revents & POLLOUT) && conn_flush(c) < 0) ||
			    ((pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) &&
			    conn_read(c) < 0)) {
				if (c->role == R_PEER)
					note("heartbeat link %d closed",
					    c->link);
				else {
					note("work connection closed by the "
					    "daemon");
					broken = 1;
				}
				conn_close(c);
			}
		}
	}
	return broken ? -1 : 0;
}

/* ---- phases ----------------------------------------------------------- */

static int
have_heartbeat(void)
{
	return narrivals > 0;
}

static int
role_idle(enum role role)
{
	int i;

	for (i = 0; i < nconns; i++)
		if (conns[i]->role == role &&
		    (conns[i]->replies > 0 || conns[i]->outcomes > 0))
			return 0;
	return 1;
}

static int
load_drained(void)
{
	return role_idle(R_LOAD);
}

static int
tput_drained(void)
{
	return role_idle(R_TPUT);
}

static int
rtt_finished(void)
{
	return rtt_tries >= rtt_jobs;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array, in microseconds. */
static uint64_t
pct_us(const uint64_t *v, size_t n, unsigned pct)
{
	size_t rank;

	if (n == 0)
		return 0;
	rank = (n * pct + 99) / 100;
	return v[rank > 0 ? rank - 1 : 0] / NS_PER_US;
}

/*
 * Heartbeat figures over arrivals [from, to), one output line:
 *  gap_*    lateness as the observer waits it out: how much longer than one
 *           interval it waited for each HB since the one before it
 *           (0 if not longer);
 *  sched_*  lateness against a fixed schedule: for each run of rising
 *           sequence numbers on one link the earliest phase consistent with
 *           it, phase = min(arrival_k - k * interval), then
 *           arrival_k - k * interval - phase;
 *  hb_per_s HBs that arrived per second of the window;
 *  missed   sequence numbers never seen (ticks the daemon skipped);
 *  read_*   how long after its arrival hbbench read each HB (its own
 *           scheduling delay, left out of the figures above).
 */
static void
report_lateness(const char *name, size_t from, size_t to, uint64_t t0,
    uint64_t t1)
{
	uint64_t *gap, *sched, *rd, *lag, phase, missed = 0, d;
	size_t i, j, start, ngap = 0, n = 0, nlag = 0;

	gap = xrealloc(NULL, (to - from + 1) * sizeof(*gap));
	sched = xrealloc(NULL, (to - from + 1) * sizeof(*sched));
	rd = xrealloc(NULL, (to - from + 1) * sizeof(*rd));
	lag = xrealloc(NULL, (to - from + 1) * sizeof(*lag));
	for (i = from; i < to; i++)
		if (arrivals[i].has_lag)
			lag[nlag++] = arrivals[i].lag_us * NS_PER_US;
	for (i = from; i < to; i++)
		rd[i - from] = arrivals[i].tu > arrivals[i].t ?
		    arrivals[i].tu - arrivals[i].t : 0;
	for (i = from; i < to; i++) {
		if (i == 0 || arrivals[i].link != arrivals[i - 1].link)
			continue;
		d = arrivals[i].t - arrivals[i - 1].t;
		gap[ngap++] = d > interval_ns ? d - interval_ns : 0;
	}
	for (start = from; start < to; start = i) {
		for (i = start + 1; i < to; i++) {
			if (arrivals[i].link != arrivals[start].link ||
			    arrivals[i].seq <= arrivals[i - 1].seq)
				break;
			missed += arrivals[i].seq - arrivals[i - 1].seq - 1;
		}
		phase = UINT64_MAX;
		for (j = start; j < i; j++)
			if (arrivals[j].t - arrivals[j].seq * interval_ns < phase)
				phase = arrivals[j].t -
				    arrivals[j].seq * interval_ns;
		for (j = start; j < i; j++)
			sched[n++] = arrivals[j].t -
			    arrivals[j].seq * interval_ns - phase;
	}
	qsort(gap, ngap, sizeof(*gap), cmp_u64);
	qsort(sched, n, sizeof(*sched), cmp_u64);
	qsort(rd, to - from, sizeof(*rd), cmp_u64);
	qsort(lag, nlag, sizeof(*lag), cmp_u64);
	printf("%s hb=%zu hb_per_s=%.1f missed=%" PRIu64 " gap_p50_us=%"
	    PRIu64 " gap_p99_us=%" PRIu64 " gap_max_us=%" PRIu64
	    " sched_p50_us=%" PRIu64 " sched_p99_us=%" PRIu64
	    " sched_max_us=%" PRIu64 " read_p99_us=%" PRIu64 " read_max_us=%"
	    PRIu64, name, n,
	    t1 > t0 ? (double)n * NS_PER_S / (double)(t1 - t0) : 0.0, missed,
	    pct_us(gap, ngap, 50), pct_us(gap, ngap, 99),
	    ngap ? gap[ngap - 1] / NS_PER_US : 0,
	    pct_us(sched, n, 50), pct_us(sched, n, 99),
	    n ? sched[n - 1] / NS_PER_US : 0, pct_us(rd, to - from, 99),
	    to > from ? rd[to - from - 1] / NS_PER_US : 0);
	if (nlag > 0)
		printf(" lag_p50_us=%" PRIu64 " lag_p99_us=%" PRIu64
		    " lag_max_us=%" PRIu64, pct_us(lag, nlag, 50),
		    pct_us(lag, nlag, 99), lag[nlag - 1] / NS_PER_US);
	printf("\n");
	fflush(stdout);
	free(lag);
	free(gap);
	free(sched);
	free(rd);
}

/* Start the floor for the loaded window; its line goes to our stdout. */
static pid_t
floor_start(void)
{
	char iv[32], dur[32], sl[32];
	pid_t pid;

	snprintf(iv, sizeof(iv), "%" PRIu64, interval_ns / NS_PER_MS);
	snprintf(dur, sizeof(dur), "%u", loaded_s);
	snprintf(sl, sizeof(sl), "%u", slack_ns);
	fflush(stdout);
	if ((pid = fork()) < 0) {
		note("fork: %s; no floor", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		execl(floor_path, "floor", "-I", iv, "-d", dur, "-s", sl,
		    (char *)NULL);
		note("%s: %s", floor_path, strerror(errno));
		_exit(127);
	}
	return pid;
}

static int floor_exited;
static pid_t floor_pid = -1;

static int
floor_done(void)
{
	int st;

	if (!floor_exited && waitpid(floor_pid, &st, WNOHANG) == floor_pid)
		floor_exited = 1;
	return floor_exited;
}

/* Wait for the floor (serving the peer meanwhile), at most 3 s. */
static void
floor_wait(void)
{
	uint64_t limit = now_ns() + 3 * NS_PER_S;

	if (floor_pid < 0)
		return;
	floor_exited = 0;
	while (!floor_done() && now_ns() < limit)
		run_until(now_ns() + 20 * NS_PER_MS, NULL);
	if (!floor_exited) {
		note("the floor did not end; stopping it");
		kill(floor_pid, SIGTERM);
		run_until(now_ns() + 500 * NS_PER_MS, NULL);
		if (!floor_done())
			kill(floor_pid, SIGKILL);
		waitpid(floor_pid, NULL, 0);
	}
	floor_pid = -1;
}

static void
phase_loaded(void)
{
	uint64_t done0 = n_done, t0, t1;
	size_t from, to;
	unsigned i;

	from = narrivals;
	t0 = now_ns();
	loading = 1;
	for (i = 0; i < nclients; i++)
		if (submit(work_connect(R_LOAD), outstanding, spin_ms) < 0)
			broken = 1;
	if (floor_path != NULL)
		floor_pid = floor_start();
	run_until(t0 + loaded_s * NS_PER_S, NULL);
	t1 = now_ns();
	to = narrivals;
	/* the floor's last sleep ends with the window; the load goes on */
	floor_wait();
	loading = 0;
	report_lateness("loaded", from, to, t0, t1);
	printf("loaded_jobs done=%" PRIu64 " seconds=%u\n", n_done - done0,
	    loaded_s);
	/* Let the outstanding jobs finish, so the next phase finds the pool
	 * idle (closing instead would leave them running on some daemons). */
	if (run_until(now_ns() + DRAIN_S * NS_PER_S, load_drained) == 0 &&
	    !load_drained())
		note("load jobs still outstanding after %d s", DRAIN_S);
	close_role(R_LOAD);
}

static void
phase_tput(void)
{
	uint64_t done0 = n_done, t0;
	unsigned i;

	t0 = now_ns();
	t_last_done = t0;
	pipelining = 1;
	for (i = 0; i < nclients; i++)
		if (submit(work_connect(R_TPUT), batch, 0) < 0)
			broken = 1;
	run_until(t0 + tput_s * NS_PER_S, NULL);
	pipelining = 0;
	if (run_until(now_ns() + DRAIN_S * NS_PER_S, tput_drained) == 0 &&
	    !tput_drained())
		note("tput batches still outstanding after %d s", DRAIN_S);
	printf("tput jobs=%" PRIu64 " elapsed_us=%" PRIu64
	    " jobs_per_s=%.0f\n", n_done - done0, (t_last_done - t0) / NS_PER_US,
	    t_last_done > t0 ? (double)(n_done - done0) * NS_PER_S /
	    (double)(t_last_done - t0) : 0.0);
	fflush(stdout);
	close_role(R_TPUT);
}

static void
phase_rtt(void)
{
	rtt = xrealloc(NULL, rtt_jobs * sizeof(*rtt));
	nrtt = 0;
	if (submit(work_connect(R_RTT), 1, 0) < 0)
		broken = 1;
	run_until(now_ns() + RTT_LIMIT_S * NS_PER_S, rtt_finished);
	if (nrtt < rtt_jobs)
		note("rtt: %zu of %u jobs timed in %d s", nrtt, rtt_jobs,
		    RTT_LIMIT_S);
	qsort(rtt, nrtt, sizeof(*rtt), cmp_u64);
	printf("rtt n=%zu p50_us=%" PRIu64 " p99_us=%" PRIu64 " max_us=%"
	    PRIu64 "\n", nrtt, pct_us(rtt, nrtt, 50), pct_us(rtt, nrtt, 99),
	    nrtt ? rtt[nrtt - 1] / NS_PER_US : 0);
	fflush(stdout);
	close_role(R_RTT);
}

static void
write_raw(void)
{
	FILE *f;
	size_t i;

	if ((f = fopen(raw_path, "w")) == NULL) {
		note("%s: %s", raw_path, strerror(errno));
		return;
	}
	for (i = 0; i < narrivals; i++)
		fprintf(f, "%d %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
		    arrivals[i].link, arrivals[i].seq, arrivals[i].t,
		    arrivals[i].tu);
	fclose(f);
}

int
main(int argc, char **argv)
{
	static char line[512];
	int ch, i, want_idle = 0, want_loaded = 0, want_tput = 0;
	int want_rtt = 0, port;
	uint64_t t0;
	size_t from;

	while ((ch = getopt(argc, argv, "w:p:I:i:d:T:c:o:m:b:n:r:f:S:h")) !=
	    -1) {
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
		case 'i':
			idle_s = number(optarg, 1, 600);
			break;
		case 'd':
			loaded_s = number(optarg, 1, 600);
			break;
		case 'T':
			tput_s = number(optarg, 1, 600);
			break;
		case 'c':
			nclients = number(optarg, 1, MAX_CONNS / 2);
			break;
		case 'o':
			outstanding = number(optarg, 1, 1024);
			break;
		case 'm':
			spin_ms = number(optarg, 0, 10000);
			break;
		case 'b':
			batch = number(optarg, 1, 4096);
			break;
		case 'n':
			rtt_jobs = number(optarg, 1, 10000000);
			break;
		case 'r':
			raw_path = optarg;
			break;
		case 'f':
			floor_path = optarg;
			break;
		case 'S':
			slack_ns = number(optarg, 1, 50000000);
			break;
		default:
			usage();
		}
	}
	if (work_addr == NULL)
		usage();
	for (i = optind; i < argc; i++) {
		if (strcmp(argv[i], "idle") == 0)
			want_idle = 1;
		else if (strcmp(argv[i], "loaded") == 0)
			want_loaded = 1;
		else if (strcmp(argv[i], "tput") == 0)
			want_tput = 1;
		else if (strcmp(argv[i], "rtt") == 0)
			want_rtt = 1;
		else
			usage();
	}
	if (optind == argc)
		want_idle = want_loaded = want_tput = want_rtt = 1;
	signal(SIGPIPE, SIG_IGN);

	/* The peer port first: the daemon must be told it before it starts. */
	port = peer_listen();
	printf("peer_port=%d\n", port);
	fflush(stdout);
	if (strcmp(work_addr, "-") == 0) {
		if (fgets(line, sizeof(line), stdin) == NULL)
			fatal("no work address on stdin");
		line[strcspn(line, "\r\n")] = '\0';
		work_addr = line;
	}

	/* The daemon connects at start; skip its first half second. */
	run_until(now_ns() + WAIT_PEER_S * NS_PER_S, have_heartbeat);
	if (narrivals == 0)
		fatal("no heartbeat from the daemon in %d s", WAIT_PEER_S);
	run_until(now_ns() + SETTLE_MS * NS_PER_MS, NULL);

	if (want_idle) {
		from = narrivals;
		t0 = now_ns();
		run_until(t0 + idle_s * NS_PER_S, NULL);
		report_lateness("idle", from, narrivals, t0, now_ns());
	}
	if (want_loaded && !broken)
		phase_loaded();
	if (want_tput && !broken)
		phase_tput();
	if (want_rtt && !broken)
		phase_rtt();
	printf("counts ok=%" PRIu64 " err=%" PRIu64 " done=%" PRIu64
	    " fail=%" PRIu64 " other=%" PRIu64 " links=%d\n", n_ok, n_err,
	    n_done, n_fail, n_other, nlinks);
	if (raw_path != NULL)
		write_raw();
	return broken ? 1 : 0;
}
