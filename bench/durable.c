/*
 * durable.c - durable submission from the outside: how fast a daemon
 * acknowledges work it has promised to keep, and how long it takes to come
 * back with a big journal. Two modes:
 *
 *   durable submit -w HOST:PORT [-P hb|bs] [-c conns] [-o outstanding]
 *                  [-T seconds | -n total] [-F seconds]
 *
 *     Pipelined submissions over -c connections, each keeping -o requests
 *     outstanding (a new one written for every reply read, batched per
 *     read), and counts the acknowledgements:
 *       hb  heartbeatd, interface.md section 4: "SUBMIT primes n=0 detach=1"
 *           -> "OK <id>" (with state_dir, sent only once the job's journal
 *           record is committed; synced first with journal_sync_ms=0);
 *       bs  beanstalkd: "put 0 0 60 10\r\nprimes n=0\r\n" -> "INSERTED <id>"
 *           (with -b, written to its binlog first; fsynced first with -f 0).
 *     With -T: for that many seconds; acks/s = replies read in the window
 *     / the window (the requests still outstanding are then drained and
 *     not counted). With -n: exactly that many, acks/s = total / time to
 *     the last reply. -F (hb): afterwards poll STATS until completed +
 *     failed reaches the number acknowledged (the jobs ran and their
 *     outcomes went to the journal), for at most that many seconds.
 *     Output: "submit proto=P acks=N errs=N seconds=S acks_per_s=R
 *     ack_p50_us=.. ack_p99_us=.. ack_max_us=.." (ack = time from writing
 *     a request to reading its reply, the client's view of the commit
 *     latency) and, with -F, "finished jobs=N wait_ms=M".
 *
 *   durable restart [-t seconds] [-l LOG] -- COMMAND [ARG]...
 *
 *     Runs COMMAND (a daemon) with its stderr on a pipe, copies that to
 *     LOG, and times from just before exec to the line carrying
 *     "msg=journal-recovered" and to the one carrying "msg=ready"; then
 *     reads its resident set, sends SIGTERM and times the exit. Output:
 *     "restart ready_ms=.. recovered_ms=.. requeued=N retained=N
 *     max_id=N rss_kb=N exit_ms=.. status=N".
 *
 * Results go to stdout as key=value lines (times in microseconds unless the
 * key says ms), progress and problems to stderr. Every wait has a limit.
 */

#define _GNU_SOURCE
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

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
#define MAX_OUTSTANDING	4096
#define INBUF		65536
#define DRAIN_S		30	/* for replies still outstanding at the end */

enum proto { P_HB, P_BS };

static const char hb_req[] = "SUBMIT primes n=0 detach=1\n";
static const char bs_req[] = "put 0 0 60 10\r\nprimes n=0\r\n";

struct conn {
	int		 fd;
	char		 in[INBUF];
	size_t		 inlen;
	char		*out;
	size_t		 outlen, outcap;
	uint64_t	*sent;		/* ring: when each outstanding request went */
	unsigned	 head, n;	/* oldest, count outstanding */
	uint64_t	 written;	/* requests written */
};

/* Options. */
static const char	*work_addr;
static enum proto	 proto = P_HB;
static unsigned		 nconns = 4, outstanding = 128;
static unsigned		 seconds, finish_s;
static uint64_t		 total;

static struct conn	 conns[MAX_CONNS];
static uint64_t		 n_ack, n_err, n_sent;
static uint64_t		*lat;
static size_t		 nlat, latcap;
static int		 sending;
static char		 first_err[160];

static void
usage(void)
{
	fprintf(stderr,
	    "usage: durable submit -w HOST:PORT [-P hb|bs] [-c conns] "
	    "[-o outstanding]\n"
	    "                      [-T seconds | -n total] [-F seconds]\n"
	    "       durable restart [-t seconds] [-l log] -- COMMAND [ARG]...\n"
	    "  -P  protocol: hb (heartbeatd SUBMIT ... detach=1) or bs "
	    "(beanstalkd put)\n"
	    "  -c  connections (4)   -o  requests outstanding per connection "
	    "(128)\n"
	    "  -T  run for this long (5)   -n  or submit exactly this many\n"
	    "  -F  hb: then wait at most this long for the jobs to finish "
	    "(STATS)\n"
	    "  -t  restart: limit for the ready line and for the exit (120)\n"
	    "  -l  restart: copy the daemon's stderr here\n");
	exit(2);
}

static void
note(const char *fmt, ...)
{
	va_list ap;

	fputs("durable: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void
fatal(const char *fmt, ...)
{
	va_list ap;

	fputs("durable: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
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

static uint64_t
number(const char *s, uint64_t lo, uint64_t hi)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || *s == '-' || v < lo ||
	    v > hi)
		fatal("bad number \"%s\" (%" PRIu64 "..%" PRIu64 ")", s, lo, hi);
	return v;
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

/* ---- connections ------------------------------------------------------ */

static int
dial(void)
{
	struct addrinfo hints, *res;
	char host[256];
	const char *colon;
	int fd, one = 1;

	colon = strrchr(work_addr, ':');
	if (colon == NULL || (size_t)(colon - work_addr) >= sizeof(host))
		fatal("bad address \"%s\"", work_addr);
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
		fatal("bad address \"%s\"", work_addr);
	/* Loopback: a blocking connect completes at once or fails. */
	if ((fd = socket(res->ai_family, SOCK_STREAM, 0)) < 0 ||
	    connect(fd, res->ai_addr, res->ai_addrlen) < 0)
		fatal("connect %s: %s", work_addr, strerror(errno));
	freeaddrinfo(res);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

/* Write what the socket takes now; the rest waits for POLLOUT. */
static void
conn_flush(struct conn *c)
{
	ssize_t w;

	if (c->outlen == 0)
		return;
	w = write(c->fd, c->out, c->outlen);
	if (w < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		fatal("write: %s", strerror(errno));
	}
	memmove(c->out, c->out + w, c->outlen - (size_t)w);
	c->outlen -= (size_t)w;
}

/* Queue k more requests on c, stamped now, and write them. */
static void
conn_submit(struct conn *c, unsigned k)
{
	const char *req = proto == P_HB ? hb_req : bs_req;
	size_t len = strlen(req);
	uint64_t t = now_ns();
	unsigned i;

	if (total != 0 && n_sent + k > total)
		k = (unsigned)(total - n_sent);
	if (k == 0)
		return;
	if (c->outlen + k * len > c->outcap) {
		c->outcap = (c->outlen + k * len) * 2;
		c->out = xrealloc(c->out, c->outcap);
	}
	for (i = 0; i < k; i++) {
		memcpy(c->out + c->outlen, req, len);
		c->outlen += len;
		c->sent[(c->head + c->n) % outstanding] = t;
		c->n++;
	}
	c->written += k;
	n_sent += k;
	conn_flush(c);
}

/* One reply line: the oldest outstanding request on c is answered. */
static void
conn_reply(struct conn *c, const char *line, uint64_t t, int counting)
{
	int ok = proto == P_HB ? strncmp(line, "OK ", 3) == 0 :
	    strncmp(line, "INSERTED ", 9) == 0;

	if (c->n == 0) {
		note("a line nobody asked for: %s", line);
		return;
	}
	if (ok) {
		if (counting) {
			n_ack++;
			if (nlat == latcap) {
				latcap = latcap ? latcap * 2 : 65536;
				lat = xrealloc(lat, latcap * sizeof(*lat));
			}
			lat[nlat++] = t - c->sent[c->head];
		}
	} else {
		if (n_err++ == 0)
			snprintf(first_err, sizeof(first_err), "%s", line);
	}
	c->head = (c->head + 1) % outstanding;
	c->n--;
}

/* Read what c has; 0, or -1 at EOF. Returns the replies read in *k. */
static int
conn_read(struct conn *c, int counting, unsigned *k)
{
	char *line, *nl;
	uint64_t t;
	ssize_t r;
	size_t used;

	*k = 0;
	r = read(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen);
	if (r < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	if (r == 0)
		return -1;
	t = now_ns();
	c->inlen += (size_t)r;
	line = c->in;
	while ((nl = memchr(line, '\n', c->inlen - (size_t)(line - c->in))) !=
	    NULL) {
		*nl = '\0';
		if (nl > line && nl[-1] == '\r')
			nl[-1] = '\0';
		conn_reply(c, line, t, counting);
		(*k)++;
		line = nl + 1;
	}
	used = (size_t)(line - c->in);
	memmove(c->in, line, c->inlen - used);
	c->inlen -= used;
	if (c->inlen == sizeof(c->in))
		fatal("a reply line longer than %d bytes", INBUF);
	return 0;
}

/*
 * The loop until deadline (or, with total, until every reply is in), over
 * all connections: read replies, and while sending, top each connection up
 * to outstanding again.
 */
static void
run_until(uint64_t deadline, int counting)
{
	struct pollfd pfd[MAX_CONNS];
	unsigned i, k, busy;
	uint64_t t;

	for (;;) {
		busy = 0;
		for (i = 0; i < nconns; i++) {
			pfd[i].fd = conns[i].fd;
			pfd[i].events = POLLIN | (conns[i].outlen ? POLLOUT : 0);
			busy += conns[i].n;
		}
		if (!sending && busy == 0)
			return;
		if (total != 0 && n_sent == total && busy == 0)
			return;
		t = now_ns();
		if (t >= deadline)
			return;
		if (poll(pfd, nconns, (int)((deadline - t) / NS_PER_MS) + 1) < 0) {
			if (errno == EINTR)
				continue;
			fatal("poll: %s", strerror(errno));
		}
		for (i = 0; i < nconns; i++) {
			struct conn *c = &conns[i];

			if (pfd[i].revents & POLLOUT)
				conn_flush(c);
			if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (conn_read(c, counting, &k) < 0)
				fatal("connection %u closed by the server with "
				    "%u requests outstanding", i, c->n);
			if (sending && k > 0)
				conn_submit(c, k);
		}
	}
}

/* Poll STATS on a connection of its own until completed + failed >= n. */
static int
await_finished(uint64_t n, unsigned limit_s, uint64_t *wait_ms)
{
	uint64_t t0 = now_ns(), deadline = t0 + limit_s * NS_PER_S, done = 0;
	char buf[2048], *p;
	size_t len;
	ssize_t r;
	int fd = dial();

	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	for (;;) {
		if (write(fd, "STATS\n", 6) != 6)
			fatal("STATS: %s", strerror(errno));
		len = 0;
		for (;;) {
			struct pollfd pfd = { fd, POLLIN, 0 };

			if (poll(&pfd, 1, 5000) <= 0)
				fatal("no reply to STATS in 5 s");
			r = read(fd, buf + len, sizeof(buf) - 1 - len);
			if (r <= 0)
				fatal("STATS: connection closed");
			len += (size_t)r;
			buf[len] = '\0';
			if (strchr(buf, '\n') != NULL || len == sizeof(buf) - 1)
				break;
		}
		done = 0;
		if ((p = strstr(buf, " completed=")) != NULL)
			done += strtoull(p + 11, NULL, 10);
		if ((p = strstr(buf, " failed=")) != NULL)
			done += strtoull(p + 8, NULL, 10);
		if (done >= n)
			break;
		if (now_ns() > deadline) {
			close(fd);
			note("only %" PRIu64 " of %" PRIu64 " jobs finished in "
			    "%u s", done, n, limit_s);
			return -1;
		}
		poll(NULL, 0, 20);
	}
	close(fd);
	*wait_ms = (now_ns() - t0) / NS_PER_MS;
	return 0;
}

static int
mode_submit(void)
{
	uint64_t t0, t_stop, t_end, elapsed, wait_ms = 0;
	unsigned i;
	int rc = 0;

	if (work_addr == NULL)
		usage();
	if (seconds == 0 && total == 0)
		seconds = 5;
	for (i = 0; i < nconns; i++) {
		conns[i].fd = dial();
		conns[i].sent = xrealloc(NULL, outstanding * sizeof(uint64_t));
	}
	sending = 1;
	t0 = now_ns();
	for (i = 0; i < nconns; i++)
		conn_submit(&conns[i], outstanding);
	if (total != 0) {
		run_until(t0 + (seconds ? seconds : 600) * NS_PER_S, 1);
		t_stop = t_end = now_ns();
		sending = 0;
		if (n_ack + n_err < total)
			note("only %" PRIu64 " of %" PRIu64 " replies in time",
			    n_ack + n_err, total);
	} else {
		run_until(t0 + seconds * NS_PER_S, 1);
		t_stop = now_ns();
		sending = 0;
		/* the rest is answered but not counted: outside the window */
		run_until(t_stop + DRAIN_S * NS_PER_S, 0);
		t_end = now_ns();
	}
	elapsed = t_stop - t0;
	qsort(lat, nlat, sizeof(*lat), cmp_u64);
	printf("submit proto=%s conns=%u outstanding=%u acks=%" PRIu64
	    " errs=%" PRIu64 " seconds=%.3f acks_per_s=%.0f ack_p50_us=%"
	    PRIu64 " ack_p99_us=%" PRIu64 " ack_max_us=%" PRIu64
	    " drain_ms=%" PRIu64 "\n",
	    proto == P_HB ? "hb" : "bs", nconns, outstanding, n_ack, n_err,
	    (double)elapsed / NS_PER_S,
	    elapsed ? (double)n_ack * NS_PER_S / (double)elapsed : 0.0,
	    pct_us(lat, nlat, 50), pct_us(lat, nlat, 99),
	    nlat ? lat[nlat - 1] / NS_PER_US : 0,
	    (t_end - t_stop) / NS_PER_MS);
	if (n_err > 0)
		note("%" PRIu64 " refused; the first: %s", n_err, first_err);
	fflush(stdout);
	for (i = 0; i < nconns; i++)
		if (conns[i].n > 0) {
			note("%u replies never came on connection %u",
			    conns[i].n, i);
			rc = 1;
		}
	if (finish_s > 0 && proto == P_HB) {
		if (await_finished(n_ack, finish_s, &wait_ms) < 0)
			rc = 1;
		else
			printf("finished jobs=%" PRIu64 " wait_ms=%" PRIu64 "\n",
			    n_ack, wait_ms);
	}
	for (i = 0; i < nconns; i++)
		close(conns[i].fd);
	return rc;
}

/* ---- restart ---------------------------------------------------------- */

/* The value of key= in a logfmt line, copied into out ("" if absent). */
static void
field(const char *line, const char *key, char *out, size_t len)
{
	size_t klen = strlen(key);
	const char *p = line;

	out[0] = '\0';
	while ((p = strstr(p, key)) != NULL) {
		if ((p == line || p[-1] == ' ') && p[klen] == '=') {
			p += klen + 1;
			snprintf(out, len, "%.*s", (int)strcspn(p, " \""), p);
			return;
		}
		p += klen;
	}
}

static long
rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "VmHWM:", 6) == 0)
			kb = strtol(line + 6, NULL, 10);
	fclose(f);
	return kb;
}

static int
mode_restart(char **cmd, unsigned limit_s, const char *log_path)
{
	char buf[INBUF], *line, *nl, requeued[32] = "", retained[32] = "",
	    max_id[32] = "";
	uint64_t t0, t_rec = 0, t_ready = 0, t_term = 0, t_exit = 0, deadline;
	size_t len = 0;
	int pfd[2], status = -1, eof = 0;
	long rss = -1;
	FILE *log = NULL;
	pid_t pid;
	ssize_t r;

	if (log_path != NULL && (log = fopen(log_path, "w")) == NULL)
		fatal("%s: %s", log_path, strerror(errno));
	if (pipe(pfd) < 0)
		fatal("pipe: %s", strerror(errno));
	t0 = now_ns();
	if ((pid = fork()) < 0)
		fatal("fork: %s", strerror(errno));
	if (pid == 0) {
		close(pfd[0]);
		dup2(pfd[1], 2);
		close(pfd[1]);
		execvp(cmd[0], cmd);
		fprintf(stderr, "exec %s: %s\n", cmd[0], strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	deadline = t0 + limit_s * NS_PER_S;
	/* Read its stderr to EOF; SIGTERM once it is ready. */
	while (!eof) {
		struct pollfd p = { pfd[0], POLLIN, 0 };
		uint64_t t = now_ns();

		if (t >= deadline) {
			note("%s in %u s; SIGKILL", t_ready ? "no exit" :
			    "not ready", limit_s);
			kill(pid, SIGKILL);
			break;
		}
		if (poll(&p, 1, (int)((deadline - t) / NS_PER_MS) + 1) <= 0)
			continue;
		r = read(pfd[0], buf + len, sizeof(buf) - 1 - len);
		t = now_ns();
		if (r <= 0) {
			eof = 1;
			t_exit = t;
			break;
		}
		len += (size_t)r;
		buf[len] = '\0';
		line = buf;
		while ((nl = strchr(line, '\n')) != NULL) {
			*nl = '\0';
			if (log != NULL)
				fprintf(log, "%s\n", line);
			if (t_rec == 0 && strstr(line, "msg=journal-recovered")) {
				t_rec = t;
				field(line, "requeued", requeued, sizeof(requeued));
				field(line, "retained", retained, sizeof(retained));
				field(line, "max_id", max_id, sizeof(max_id));
			}
			if (t_ready == 0 && strstr(line, "msg=ready")) {
				t_ready = t;
				rss = rss_kb(pid);
				t_term = now_ns();
				kill(pid, SIGTERM);
				deadline = t_term + limit_s * NS_PER_S;
			}
			line = nl + 1;
		}
		len -= (size_t)(line - buf);
		memmove(buf, line, len);
		if (len == sizeof(buf) - 1)
			len = 0;	/* an overlong line: dropped */
	}
	close(pfd[0]);
	if (log != NULL)
		fclose(log);
	if (waitpid(pid, &status, 0) > 0 && t_exit == 0)
		t_exit = now_ns();
	printf("restart ready_ms=%.1f recovered_ms=%.1f requeued=%s "
	    "retained=%s max_id=%s rss_kb=%ld exit_ms=%.1f status=%d\n",
	    t_ready ? (double)(t_ready - t0) / NS_PER_MS : -1.0,
	    t_rec ? (double)(t_rec - t0) / NS_PER_MS : -1.0,
	    requeued[0] ? requeued : "-", retained[0] ? retained : "-",
	    max_id[0] ? max_id : "-", rss,
	    t_term && t_exit > t_term ? (double)(t_exit - t_term) / NS_PER_MS :
	    -1.0, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	return t_ready != 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ?
	    0 : 1;
}

int
main(int argc, char **argv)
{
	const char *mode, *log_path = NULL;
	unsigned limit_s = 120;
	int ch;

	if (argc < 2)
		usage();
	mode = argv[1];
	argv++;
	argc--;
	signal(SIGPIPE, SIG_IGN);
	while ((ch = getopt(argc, argv, "+w:P:c:o:T:n:F:t:l:")) != -1) {
		switch (ch) {
		case 'w': work_addr = optarg; break;
		case 'P':
			if (strcmp(optarg, "hb") == 0)
				proto = P_HB;
			else if (strcmp(optarg, "bs") == 0)
				proto = P_BS;
			else
				usage();
			break;
		case 'c': nconns = (unsigned)number(optarg, 1, MAX_CONNS); break;
		case 'o':
			outstanding = (unsigned)number(optarg, 1, MAX_OUTSTANDING);
			break;
		case 'T': seconds = (unsigned)number(optarg, 1, 3600); break;
		case 'n': total = number(optarg, 1, UINT64_C(100000000)); break;
		case 'F': finish_s = (unsigned)number(optarg, 1, 3600); break;
		case 't': limit_s = (unsigned)number(optarg, 1, 3600); break;
		case 'l': log_path = optarg; break;
		default: usage();
		}
	}
	if (strcmp(mode, "submit") == 0 && optind == argc)
		return mode_submit();
	if (strcmp(mode, "restart") == 0 && optind < argc)
		return mode_restart(argv + optind, limit_s, log_path);
	usage();
	return 2;
}
