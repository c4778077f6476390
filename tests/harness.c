/*
 * harness.c - the integration suites' view of heartbeatd from outside: a
 * child process whose stderr and stdout are kept whole (so a test can search
 * any part of the log, and a failing test can print it), TCP clients that
 * read lines with deadlines, and a minimal HTTP client.
 *
 * Nothing here sleeps a fixed time: every wait is poll(2) on the thing
 * awaited, bounded by a deadline. Strings returned by hb_wait_line, hb_recv,
 * hb_expect and friends belong to the process or connection and stay valid
 * until the next such call on the same object; everything spawned, opened or
 * created is released by an atexit handler, so a failed assertion (which
 * exits the forked test) leaves no daemon behind, and the PR_SET_PDEATHSIG
 * set in each child covers a test killed by its timeout.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* pipe2, accept4, vasprintf, strcasestr, timegm */
#endif

#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define HB_MAX_OBJS	256	/* live processes, connections, files */
#define HB_MAX_ARGS	128	/* argv of a spawned daemon */
#define HB_MSG_TAIL	700	/* received text quoted in a failure message */
#define HB_DUMP_MAX	32768	/* stderr printed when a test fails */
#define HB_READ_CHUNK	65536

static struct hb_proc	*procs[HB_MAX_OBJS];
static struct hb_conn	*conns[HB_MAX_OBJS];
static char		*tmpfiles[HB_MAX_OBJS];
static char		*proc_last[HB_MAX_OBJS];	/* a line per proc */
static int		 cleanup_registered;

static void	hb_cleanup(void);

uint64_t
hb_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Milliseconds left until deadline, at least 0. */
static int
remaining(uint64_t deadline)
{
	uint64_t now = hb_now_ms();

	return now >= deadline ? 0 : (int)(deadline - now);
}

static void *
hb_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);

	if (q == NULL) {
		fprintf(stderr, "harness: out of memory\n");
		abort();
	}
	return q;
}

static char *
hb_xstrndup(const char *s, size_t n)
{
	char *p = hb_xrealloc(NULL, n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/*
 * Remove temp files left by test processes that are gone. Check ends a
 * failed forked test with _exit, so atexit cleanup does not run then; the
 * daemons die by PR_SET_PDEATHSIG, their temp files here, next time.
 */
static void
sweep_stale(void)
{
	char path[300];
	struct dirent *de;
	DIR *d;
	long pid;

	if ((d = opendir("/tmp")) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "hbtest.", 7) != 0 ||
		    sscanf(de->d_name + 7, "%ld.", &pid) != 1 || pid <= 0)
			continue;
		if (kill((pid_t)pid, 0) == -1 && errno == ESRCH) {
			snprintf(path, sizeof(path), "/tmp/%s", de->d_name);
			unlink(path);
		}
	}
	closedir(d);
}

static void
register_cleanup(void)
{
	if (!cleanup_registered) {
		cleanup_registered = 1;
		signal(SIGPIPE, SIG_IGN);
		sweep_stale();
		atexit(hb_cleanup);
	}
}

static int
slot_of_proc(const struct hb_proc *p)
{
	int i;

	for (i = 0; i < HB_MAX_OBJS; i++)
		if (procs[i] == p)
			return i;
	return -1;
}

/* Kill what is still running, close what is open, remove temp files. */
static void
hb_cleanup(void)
{
	int i;

	for (i = 0; i < HB_MAX_OBJS; i++) {
		if (procs[i] != NULL)
			hb_free(procs[i]);
		if (conns[i] != NULL)
			hb_close(conns[i]);
		if (tmpfiles[i] != NULL) {
			unlink(tmpfiles[i]);
			free(tmpfiles[i]);
			tmpfiles[i] = NULL;
		}
	}
}

const char *
hb_daemon_path(void)
{
	const char *p = getenv("HEARTBEATD");

	return p != NULL && *p != '\0' ? p : "src/heartbeatd";
}

/* Append what is readable on *fd to the buffer; close the fd at EOF. */
static void
drain_fd(int *fd, char **buf, size_t *len, size_t *cap)
{
	ssize_t n;

	for (;;) {
		if (*cap - *len < HB_READ_CHUNK + 1) {
			*cap = (*cap + HB_READ_CHUNK + 1) * 2;
			*buf = hb_xrealloc(*buf, *cap);
		}
		n = read(*fd, *buf + *len, HB_READ_CHUNK);
		if (n > 0) {
			*len += (size_t)n;
			(*buf)[*len] = '\0';
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		close(*fd);
		*fd = -1;
		return;
	}
}

/* In the child: move the inherited sockets to 3.. and say so. */
static void
child_setup(const struct hb_spawn_opts *o)
{
	char buf[32];
	int i, hi[64];

	if (o == NULL)
		return;
	for (i = 0; o->env != NULL && o->env[i] != NULL; i++)
		putenv((char *)o->env[i]);
	if (o->nfds <= 0 || o->nfds > 64)
		return;
	/* Out of the way first, so that no fd overwrites another. */
	for (i = 0; i < o->nfds; i++)
		hi[i] = fcntl(o->fds[i], F_DUPFD, 100);
	for (i = 0; i < o->nfds; i++) {
		dup2(hi[i], 3 + i);
		close(hi[i]);
	}
	snprintf(buf, sizeof(buf), "%d", o->nfds);
	setenv("LISTEN_FDS", buf, 1);
	snprintf(buf, sizeof(buf), "%d", (int)getpid());
	setenv("LISTEN_PID", buf, 1);
	if (o->fdnames != NULL)
		setenv("LISTEN_FDNAMES", o->fdnames, 1);
}

struct hb_proc *
hb_spawn_opts(const char *path, char *const argv[],
    const struct hb_spawn_opts *opts)
{
	struct hb_proc *p;
	int errp[2], outp[2], slot, devnull;
	pid_t parent = getpid();

	register_cleanup();
	for (slot = 0; slot < HB_MAX_OBJS && procs[slot] != NULL; slot++)
		;
	ck_assert_msg(slot < HB_MAX_OBJS, "harness: too many processes");
	if (pipe2(errp, O_CLOEXEC) == -1 || pipe2(outp, O_CLOEXEC) == -1)
		ck_abort_msg("harness: pipe: %s", strerror(errno));
	p = hb_xrealloc(NULL, sizeof(*p));
	memset(p, 0, sizeof(*p));
	p->errcap = p->outcap = 4096;
	p->err = hb_xrealloc(NULL, p->errcap);
	p->out = hb_xrealloc(NULL, p->outcap);
	p->err[0] = p->out[0] = '\0';

	fflush(stdout);
	fflush(stderr);
	p->pid = fork();
	if (p->pid == -1)
		ck_abort_msg("harness: fork: %s", strerror(errno));
	if (p->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, STDIN_FILENO);
		if (devnull > STDERR_FILENO)
			close(devnull);
		dup2(outp[1], STDOUT_FILENO);
		dup2(errp[1], STDERR_FILENO);
		signal(SIGPIPE, SIG_DFL);
		child_setup(opts);
		execv(path, argv);
		fprintf(stderr, "harness: exec %s: %s\n", path,
		    strerror(errno));
		_exit(127);
	}
	close(errp[1]);
	close(outp[1]);
	p->errfd = errp[0];
	p->outfd = outp[0];
	fcntl(p->errfd, F_SETFL, O_NONBLOCK);
	fcntl(p->outfd, F_SETFL, O_NONBLOCK);
	procs[slot] = p;
	return p;
}

struct hb_proc *
hb_spawnv(const char *path, char *const argv[])
{
	return hb_spawn_opts(path, argv, NULL);
}

/* Build argv for the daemon from a NULL-terminated list, with a prefix. */
static struct hb_proc *
spawn_daemon_va(const char *const *pre, size_t npre, const char *arg,
    va_list ap)
{
	char *argv[HB_MAX_ARGS];
	size_t n = 0, i;

	argv[n++] = (char *)hb_daemon_path();
	for (i = 0; i < npre; i++)
		argv[n++] = (char *)pre[i];
	for (; arg != NULL; arg = va_arg(ap, const char *)) {
		ck_assert_msg(n < HB_MAX_ARGS - 1, "harness: too many args");
		argv[n++] = (char *)arg;
	}
	argv[n] = NULL;
	return hb_spawnv(argv[0], argv);
}

struct hb_proc *
hb_spawn_daemon(const char *arg, ...)
{
	struct hb_proc *p;
	va_list ap;

	va_start(ap, arg);
	p = spawn_daemon_va(NULL, 0, arg, ap);
	va_end(ap);
	return p;
}

static const char *const ephemeral[] = {
	"-s", "work_listen=127.0.0.1:0",
	"-s", "peer_listen=127.0.0.1:0",
	"-s", "http_listen=127.0.0.1:0",
};

/* Wait for msg=ready; fail the test with the log if it does not come. */
static struct hb_proc *
start_common(struct hb_proc *p)
{
	if (hb_wait_ready(p, HB_READY_MS) == -1) {
		hb_dump(p, "daemon did not become ready");
		ck_abort_msg("heartbeatd did not log msg=ready within %d ms "
		    "(exited=%d); stderr tail: %s", HB_READY_MS, p->exited,
		    p->errlen > HB_MSG_TAIL ? p->err + p->errlen - HB_MSG_TAIL :
		    p->err);
	}
	ck_assert_msg(p->work_addr[0] != '\0',
	    "no msg=listening service=work line before msg=ready");
	ck_assert_msg(p->peer_addr[0] != '\0',
	    "no msg=listening service=peer line before msg=ready");
	return p;
}

struct hb_proc *
hb_start(const char *arg, ...)
{
	struct hb_proc *p;
	va_list ap;

	va_start(ap, arg);
	p = spawn_daemon_va((const char *const *)ephemeral,
	    sizeof(ephemeral) / sizeof(ephemeral[0]), arg, ap);
	va_end(ap);
	return start_common(p);
}

struct hb_proc *
hb_startv(char *const args[])
{
	char *argv[HB_MAX_ARGS];
	size_t n = 0, i;

	argv[n++] = (char *)hb_daemon_path();
	for (i = 0; i < sizeof(ephemeral) / sizeof(ephemeral[0]); i++)
		argv[n++] = (char *)ephemeral[i];
	for (i = 0; args != NULL && args[i] != NULL; i++) {
		ck_assert_msg(n < HB_MAX_ARGS - 1, "harness: too many args");
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	return start_common(hb_spawnv(argv[0], argv));
}

/* Reap the child if it has exited; never blocks. */
static void
reap(struct hb_proc *p)
{
	pid_t r;
	int st;

	if (p->exited)
		return;
	r = waitpid(p->pid, &st, WNOHANG);
	if (r == p->pid) {
		p->exited = 1;
		p->status = st;
	}
}

void
hb_pump(struct hb_proc *p, int timeout_ms)
{
	struct pollfd pfd[2];
	nfds_t n = 0;

	if (p->errfd >= 0) {
		pfd[n].fd = p->errfd;
		pfd[n++].events = POLLIN;
	}
	if (p->outfd >= 0) {
		pfd[n].fd = p->outfd;
		pfd[n++].events = POLLIN;
	}
	if (n == 0) {
		/* Both pipes at EOF: the process is exiting; poll its state. */
		reap(p);
		if (!p->exited && timeout_ms > 0)
			poll(NULL, 0, timeout_ms < 5 ? timeout_ms : 5);
		reap(p);
		return;
	}
	if (poll(pfd, n, timeout_ms) > 0) {
		if (p->errfd >= 0)
			drain_fd(&p->errfd, &p->err, &p->errlen, &p->errcap);
		if (p->outfd >= 0)
			drain_fd(&p->outfd, &p->out, &p->outlen, &p->outcap);
	}
	reap(p);
}

size_t
hb_mark(const struct hb_proc *p)
{
	const char *nl;
	size_t i;

	/* The start of the line being written: complete lines are "before". */
	for (i = p->errlen; i > 0; i--)
		if (p->err[i - 1] == '\n')
			break;
	nl = p->err + i;
	return (size_t)(nl - p->err);
}

/* Set the line owned by p, freeing the previous one. */
static char *
proc_keep(struct hb_proc *p, char *line)
{
	int slot = slot_of_proc(p);

	if (slot < 0)
		return line;
	free(proc_last[slot]);
	proc_last[slot] = line;
	return line;
}

/* Find a complete line at or after *pos matching pat; advance *pos. */
static char *
scan_lines(struct hb_proc *p, size_t *pos, const char *pat)
{
	char *start, *nl, *line;

	while (*pos < p->errlen) {
		start = p->err + *pos;
		if ((nl = memchr(start, '\n', p->errlen - *pos)) == NULL)
			return NULL;
		*pos = (size_t)(nl - p->err) + 1;
		line = hb_xstrndup(start, (size_t)(nl - start));
		if (hb_line_has(line, pat))
			return line;
		free(line);
	}
	return NULL;
}

char *
hb_wait_line(struct hb_proc *p, size_t from, const char *pat, int timeout_ms)
{
	uint64_t deadline = hb_now_ms() + (uint64_t)timeout_ms;
	size_t pos = from;
	char *line;
	int pumped = 0;

	for (;;) {
		if ((line = scan_lines(p, &pos, pat)) != NULL) {
			p->matched = pos;
			return proc_keep(p, line);
		}
		if (p->exited && p->errfd < 0)
			return NULL;
		/* Even with no time left, take in what is already there. */
		if (remaining(deadline) == 0 && pumped)
			return NULL;
		hb_pump(p, remaining(deadline) < 50 ? remaining(deadline) : 50);
		pumped = 1;
	}
}

/* The last len bytes of s, for a failure message. */
static const char *
tail(const char *s, size_t len, size_t max)
{
	return len > max ? s + len - max : s;
}

char *
hb_expect_log(struct hb_proc *p, size_t from, const char *pat, int timeout_ms)
{
	char *line = hb_wait_line(p, from, pat, timeout_ms);

	if (line == NULL) {
		hb_dump(p, pat);
		ck_abort_msg("no log line matching \"%s\" within %d ms%s; "
		    "stderr since mark: ...%s", pat, timeout_ms,
		    p->exited ? " (daemon exited)" : "",
		    tail(p->err + from, p->errlen - from, HB_MSG_TAIL));
	}
	return line;
}

void
hb_expect_no_log(struct hb_proc *p, size_t from, const char *pat, int for_ms)
{
	char *line = hb_wait_line(p, from, pat, for_ms);

	if (line != NULL) {
		hb_dump(p, pat);
		ck_abort_msg("unexpected log line matching \"%s\": %.1000s",
		    pat,
		    line);
	}
}

int
hb_count_lines(const struct hb_proc *p, size_t from, const char *pat)
{
	size_t pos = from;
	char *line;
	int n = 0;

	while ((line = scan_lines((struct hb_proc *)p, &pos, pat)) != NULL) {
		n++;
		free(line);
	}
	return n;
}

/* Record the address of every msg=listening line. */
static void
parse_listening(struct hb_proc *p)
{
	char service[32], addr[HB_ADDR_MAX];
	size_t pos = 0;
	char *line;

	while ((line = scan_lines(p, &pos, "msg=listening")) != NULL) {
		if (hb_field(line, "service", service, sizeof(service)) == 0 &&
		    hb_field(line, "addr", addr, sizeof(addr)) == 0) {
			if (strcmp(service, "work") == 0)
				memcpy(p->work_addr, addr, sizeof(addr));
			else if (strcmp(service, "peer") == 0)
				memcpy(p->peer_addr, addr, sizeof(addr));
			else if (strcmp(service, "http") == 0)
				memcpy(p->http_addr, addr, sizeof(addr));
		}
		free(line);
	}
}

int
hb_wait_ready(struct hb_proc *p, int timeout_ms)
{
	if (hb_wait_line(p, 0, "msg=ready", timeout_ms) == NULL)
		return -1;
	parse_listening(p);
	return 0;
}

int
hb_signal(struct hb_proc *p, int sig)
{
	reap(p);
	if (p->exited)
		return -1;
	return kill(p->pid, sig);
}

int
hb_wait_exit(struct hb_proc *p, int timeout_ms)
{
	uint64_t deadline = hb_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		reap(p);
		if (p->exited) {
			/* Collect what is still buffered in the pipes. */
			while (p->errfd >= 0 || p->outfd >= 0)
				hb_pump(p, 100);
			return p->status;
		}
		if (remaining(deadline) == 0)
			return -1;
		hb_pump(p, remaining(deadline) < 20 ? remaining(deadline) : 20);
	}
}

void
hb_expect_exit(struct hb_proc *p, int code, int timeout_ms)
{
	int st = hb_wait_exit(p, timeout_ms);

	if (st == -1) {
		hb_dump(p, "no exit");
		ck_abort_msg("process %d did not exit within %d ms (expected "
		    "status %d); stderr tail: %s", (int)p->pid, timeout_ms,
		    code,
		    tail(p->err, p->errlen, HB_MSG_TAIL));
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != code) {
		hb_dump(p, "wrong exit");
		if (WIFSIGNALED(st))
			ck_abort_msg("process killed by signal %d, expected "
			    "exit %d; stderr tail: %s", WTERMSIG(st), code,
			    tail(p->err, p->errlen, HB_MSG_TAIL));
		ck_abort_msg("exit status %d, expected %d; stderr tail: %s",
		    WEXITSTATUS(st), code,
		    tail(p->err, p->errlen, HB_MSG_TAIL));
	}
}

long
hb_rss_kb(const struct hb_proc *p)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)p->pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

void
hb_dump(const struct hb_proc *p, const char *why)
{
	fprintf(stderr, "---- %s: pid %d stderr (%zu bytes%s) ----\n%s\n"
	    "---- stdout (%zu bytes) ----\n%s\n---- end ----\n", why,
	    (int)p->pid, p->errlen, p->errlen > HB_DUMP_MAX ? ", tail" : "",
	    tail(p->err, p->errlen, HB_DUMP_MAX), p->outlen,
	    tail(p->out, p->outlen, HB_DUMP_MAX));
}

void
hb_free(struct hb_proc *p)
{
	int slot;

	if (p == NULL)
		return;
	reap(p);
	if (!p->exited) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, &p->status, 0);
		p->exited = 1;
	}
	if (p->errfd >= 0)
		close(p->errfd);
	if (p->outfd >= 0)
		close(p->outfd);
	if ((slot = slot_of_proc(p)) >= 0) {
		procs[slot] = NULL;
		free(proc_last[slot]);
		proc_last[slot] = NULL;
	}
	free(p->err);
	free(p->out);
	free(p);
}

/*
 * Does the line carry every space-separated token of pat? In logfmt a
 * token key=value must be a whole field, key= matches any value of key, and
 * a token without '=' is a plain substring. A JSON line ({...}) is matched
 * with the tokens rewritten as "key":"value" or "key":value.
 */
int
hb_line_has(const char *line, const char *pat)
{
	char tok[256], buf[300], *eq;
	const char *t = pat, *e, *hit;
	size_t tl;
	int json = line[0] == '{', ok;

	while (*t != '\0') {
		while (*t == ' ')
			t++;
		if (*t == '\0')
			break;
		e = t + strcspn(t, " ");
		tl = (size_t)(e - t);
		if (tl >= sizeof(tok))
			tl = sizeof(tok) - 1;
		memcpy(tok, t, tl);
		tok[tl] = '\0';
		t = e;
		eq = strchr(tok, '=');
		if (eq == NULL) {
			if (strstr(line, tok) == NULL)
				return 0;
			continue;
		}
		if (json) {
			/* Compare the decoded value of the key. */
			*eq = '\0';
			ok = hb_field(line, tok, buf, sizeof(buf)) == 0 &&
			    (eq[1] == '\0' || strcmp(buf, eq + 1) == 0);
			if (!ok)
				return 0;
			continue;
		}
		ok = 0;
		for (hit = strstr(line, tok); hit != NULL;
		    hit = strstr(hit + 1, tok)) {
			if (hit != line && hit[-1] != ' ')
				continue;
			if (eq[1] != '\0' && hit[tl] != '\0' && hit[tl] != ' ')
				continue;
			ok = 1;
			break;
		}
		if (!ok)
			return 0;
	}
	return 1;
}

/* Where field key= starts in a logfmt line, or NULL. */
static const char *
field_at(const char *line, const char *key)
{
	const char *hit;
	size_t kl = strlen(key);

	for (hit = strstr(line, key); hit != NULL; hit = strstr(hit + 1, key))
		if ((hit == line || hit[-1] == ' ') && hit[kl] == '=')
			return hit;
	return NULL;
}

int
hb_fields_in_order(const char *line, const char *keys)
{
	char key[64];
	const char *k = keys, *at, *prev = line;
	size_t l;

	while (*k != '\0') {
		l = strcspn(k, " ");
		if (l == 0 || l >= sizeof(key))
			return 0;
		memcpy(key, k, l);
		key[l] = '\0';
		k += l;
		while (*k == ' ')
			k++;
		if ((at = field_at(line, key)) == NULL || at < prev)
			return 0;
		prev = at;
	}
	return 1;
}

/* Copy a value that may be quoted ("...", with \" and \\) into out. */
static int
copy_value(const char *v, char *out, size_t outlen, int json)
{
	size_t n = 0;

	if (outlen == 0)
		return -1;
	if (*v == '"') {
		for (v++; *v != '\0' && *v != '"'; v++) {
			if (*v == '\\' && v[1] != '\0')
				v++;
			if (n + 1 < outlen)
				out[n++] = *v;
		}
		if (*v != '"')
			return -1;
	} else {
		for (; *v != '\0' && *v != ' ' && !(json && (*v == ',' ||
		    *v == '}')); v++)
			if (n + 1 < outlen)
				out[n++] = *v;
	}
	out[n] = '\0';
	return 0;
}

int
hb_field(const char *line, const char *key, char *out, size_t outlen)
{
	char buf[128];
	const char *hit;
	size_t kl = strlen(key);
	int json = line[0] == '{';

	if (json) {
		/* "key" then optional blanks and ':' (not a value "key"). */
		snprintf(buf, sizeof(buf), "\"%s\"", key);
		for (hit = strstr(line, buf); hit != NULL;
		    hit = strstr(hit + 1, buf)) {
			const char *v = hit + strlen(buf);

			while (*v == ' ')
				v++;
			if (*v != ':')
				continue;
			v++;
			while (*v == ' ')
				v++;
			return copy_value(v, out, outlen, 1);
		}
		return -1;
	}
	for (hit = strstr(line, key); hit != NULL; hit = strstr(hit + 1, key)) {
		if (hit != line && hit[-1] != ' ')
			continue;
		if (hit[kl] != '=')
			continue;
		return copy_value(hit + kl + 1, out, outlen, 0);
	}
	return -1;
}

int
hb_field_u64(const char *line, const char *key, uint64_t *v)
{
	char buf[64], *end;
	unsigned long long x;

	if (hb_field(line, key, buf, sizeof(buf)) == -1 || buf[0] == '\0' ||
	    buf[0] == '-')
		return -1;
	errno = 0;
	x = strtoull(buf, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*v = x;
	return 0;
}

long long
hb_num(const char *line, const char *key)
{
	uint64_t v;

	if (line == NULL || hb_field_u64(line, key, &v) == -1)
		return -1;
	return (long long)v;
}

long long
hb_ts_us(const char *line)
{
	char ts[64];
	struct tm tm;
	int us;

	if (line == NULL || hb_field(line, "ts", ts, sizeof(ts)) == -1)
		return -1;
	memset(&tm, 0, sizeof(tm));
	if (sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2d.%6dZ", &tm.tm_year,
	    &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec,
	    &us) != 7)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (long long)timegm(&tm) * 1000000 + us;
}

long long
hb_wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Split "host:port" or "[v6]:port". */
static int
split_addr(const char *addr, char *host, size_t hostlen, char *port,
    size_t portlen)
{
	const char *colon;
	size_t hl;

	if (addr[0] == '[') {
		const char *rb = strchr(addr, ']');

		if (rb == NULL || rb[1] != ':')
			return -1;
		hl = (size_t)(rb - addr - 1);
		if (hl >= hostlen)
			return -1;
		memcpy(host, addr + 1, hl);
		host[hl] = '\0';
		colon = rb + 1;
	} else {
		if ((colon = strrchr(addr, ':')) == NULL)
			return -1;
		hl = (size_t)(colon - addr);
		if (hl >= hostlen)
			return -1;
		memcpy(host, addr, hl);
		host[hl] = '\0';
	}
	if (strlen(colon + 1) >= portlen)
		return -1;
	strcpy(port, colon + 1);
	return 0;
}

static int
tcp_connect(const char *addr)
{
	struct addrinfo hints, *res, *ai;
	char host[HB_ADDR_MAX], port[16];
	int fd = -1, one = 1;

	if (split_addr(addr, host, sizeof(host), port, sizeof(port)) == -1)
		return -1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if (getaddrinfo(host, port, &hints, &res) != 0)
		return -1;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (fd == -1)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static struct hb_conn *
conn_wrap(int fd, const char *name)
{
	struct hb_conn *c;
	int slot;

	for (slot = 0; slot < HB_MAX_OBJS && conns[slot] != NULL; slot++)
		;
	if (slot == HB_MAX_OBJS) {
		close(fd);
		ck_abort_msg("harness: too many connections");
	}
	c = hb_xrealloc(NULL, sizeof(*c));
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	snprintf(c->name, sizeof(c->name), "%s", name);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	conns[slot] = c;
	return c;
}

struct hb_conn *
hb_try_connect(const char *addr)
{
	int fd;

	register_cleanup();
	if ((fd = tcp_connect(addr)) == -1)
		return NULL;
	return conn_wrap(fd, addr);
}

struct hb_conn *
hb_connect(const char *addr)
{
	struct hb_conn *c = hb_try_connect(addr);

	if (c == NULL)
		ck_abort_msg("cannot connect to \"%s\": %s", addr,
		    strerror(errno));
	return c;
}

int
hb_send(struct hb_conn *c, const char *data, size_t len)
{
	uint64_t deadline = hb_now_ms() + HB_REPLY_MS;
	struct pollfd pfd;
	ssize_t n;

	while (len > 0) {
		n = send(c->fd, data, len, MSG_NOSIGNAL);
		if (n > 0) {
			data += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		if (remaining(deadline) == 0)
			return -1;
		pfd.fd = c->fd;
		pfd.events = POLLOUT;
		poll(&pfd, 1, remaining(deadline));
	}
	return 0;
}

int
hb_sendf(struct hb_conn *c, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n, r;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	r = hb_send(c, s, (size_t)n);
	free(s);
	return r;
}

/* Move complete lines from the byte buffer to the line queue. */
static void
split_lines(struct hb_conn *c)
{
	char *start = c->buf, *nl, *end = c->buf + c->len;
	size_t l;

	while ((nl = memchr(start, '\n', (size_t)(end - start))) != NULL) {
		l = (size_t)(nl - start);
		if (l > 0 && start[l - 1] == '\r')
			l--;
		if (c->nlines == c->linescap) {
			c->linescap = c->linescap ? c->linescap * 2 : 16;
			c->lines = hb_xrealloc(c->lines,
			    c->linescap * sizeof(*c->lines));
		}
		c->lines[c->nlines++] = hb_xstrndup(start, l);
		start = nl + 1;
	}
	c->len = (size_t)(end - start);
	memmove(c->buf, start, c->len);
}

/* Read what arrives within timeout_ms; 0 if something (or EOF) came. */
static int
fill(struct hb_conn *c, int timeout_ms)
{
	struct pollfd pfd;
	ssize_t n;
	int got = 0;

	if (c->eof)
		return -1;
	pfd.fd = c->fd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, timeout_ms) <= 0)
		return -1;
	for (;;) {
		if (c->cap - c->len < HB_READ_CHUNK) {
			c->cap = (c->cap + HB_READ_CHUNK) * 2;
			c->buf = hb_xrealloc(c->buf, c->cap);
		}
		n = recv(c->fd, c->buf + c->len, HB_READ_CHUNK, 0);
		if (n > 0) {
			c->len += (size_t)n;
			got = 1;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		c->eof = 1;	/* 0: orderly close; -1: reset */
		got = 1;
		break;
	}
	split_lines(c);
	return got ? 0 : -1;
}

/* The last line handed out by c, freed at the next one. */
static char *last_line[HB_MAX_OBJS];

static char *
conn_keep(struct hb_conn *c, char *line)
{
	int i;

	for (i = 0; i < HB_MAX_OBJS; i++)
		if (conns[i] == c) {
			free(last_line[i]);
			last_line[i] = line;
			break;
		}
	return line;
}

/* Remove and return queued line i. */
static char *
take_line(struct hb_conn *c, size_t i)
{
	char *line = c->lines[i];

	memmove(c->lines + i, c->lines + i + 1,
	    (c->nlines - i - 1) * sizeof(*c->lines));
	c->nlines--;
	return conn_keep(c, line);
}

char *
hb_recv(struct hb_conn *c, int timeout_ms)
{
	uint64_t deadline = hb_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		if (c->nlines > 0)
			return take_line(c, 0);
		if (c->eof || remaining(deadline) == 0)
			return NULL;
		fill(c, remaining(deadline));
	}
}

/* What c has received but not consumed, for failure messages. */
static const char *
pending(const struct hb_conn *c)
{
	static char buf[HB_MSG_TAIL + 64];
	size_t i, n = 0;

	buf[0] = '\0';
	for (i = 0; i < c->nlines && n + 8 < sizeof(buf); i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "[%.*s] ",
		    (int)(sizeof(buf) - n > 8 ? sizeof(buf) - n - 8 : 0),
		    c->lines[i]);
	if (n >= sizeof(buf))
		n = sizeof(buf) - 1;
	if (c->len > 0 && n + 16 < sizeof(buf))
		snprintf(buf + n, sizeof(buf) - n, "partial[%.*s]",
		    (int)(c->len < 200 ? c->len : 200), c->buf);
	return buf;
}

static int
has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

char *
hb_expect(struct hb_conn *c, const char *prefix, int timeout_ms)
{
	char *line = hb_recv(c, timeout_ms);

	if (line == NULL)
		ck_abort_msg("%s: expected a line starting \"%s\", got %s "
		    "after %d ms; unread: %s", c->name, prefix,
		    c->eof ? "EOF" : "nothing", timeout_ms, pending(c));
	if (!has_prefix(line, prefix))
		ck_abort_msg("%s: expected a line starting \"%s\", "
		    "got \"%.1000s\"",
		    c->name, prefix, line);
	return line;
}

/* Does s start with one of the '|'-separated alternatives in prefixes? */
static int
has_any_prefix(const char *s, const char *prefixes)
{
	const char *p = prefixes;
	size_t l;

	for (;;) {
		l = strcspn(p, "|");
		if (strncmp(s, p, l) == 0)
			return 1;
		if (p[l] == '\0')
			return 0;
		p += l + 1;
	}
}

char *
hb_await(struct hb_conn *c, const char *prefix, int timeout_ms)
{
	uint64_t deadline = hb_now_ms() + (uint64_t)timeout_ms;
	size_t i, seen = 0;

	for (;;) {
		for (i = seen; i < c->nlines; i++)
			if (has_any_prefix(c->lines[i], prefix))
				return take_line(c, i);
		seen = c->nlines;
		if (c->eof || remaining(deadline) == 0)
			ck_abort_msg("%s: no line starting \"%s\" within %d ms"
			    "%s; unread: %s", c->name, prefix, timeout_ms,
			    c->eof ? " (EOF)" : "", pending(c));
		fill(c, remaining(deadline));
	}
}

/* Work protocol lines that come unasked: job outcomes and WATCH ticks. */
static int
is_async(const char *line)
{
	return has_any_prefix(line, "DONE |FAIL |HEARTBEAT ");
}

char *
hb_reply(struct hb_conn *c, const char *prefix, int timeout_ms)
{
	uint64_t deadline = hb_now_ms() + (uint64_t)timeout_ms;
	size_t i, seen = 0;

	for (;;) {
		for (i = seen; i < c->nlines; i++) {
			if (is_async(c->lines[i]))
				continue;
			if (!has_prefix(c->lines[i], prefix))
				ck_abort_msg("%s: expected a reply starting "
				    "\"%s\", got \"%.1000s\"", c->name, prefix,
				    c->lines[i]);
			return take_line(c, i);
		}
		seen = c->nlines;
		if (c->eof || remaining(deadline) == 0)
			ck_abort_msg("%s: no reply (expected \"%s\") within %d "
			    "ms%s; unread: %s", c->name, prefix, timeout_ms,
			    c->eof ? " (EOF)" : "", pending(c));
		fill(c, remaining(deadline));
	}
}

char *
hb_request(struct hb_conn *c, const char *req, const char *prefix)
{
	if (hb_sendf(c, "%s\n", req) == -1)
		ck_abort_msg("%s: cannot send \"%.200s\": %s", c->name, req,
		    strerror(errno));
	return hb_reply(c, prefix, HB_REPLY_MS);
}

void
hb_expect_eof(struct hb_conn *c, int timeout_ms)
{
	uint64_t deadline = hb_now_ms() + (uint64_t)timeout_ms;

	while (!c->eof) {
		if (c->nlines > 0)
			ck_abort_msg("%s: expected the connection to close, "
			    "got \"%.1000s\"", c->name, c->lines[0]);
		if (remaining(deadline) == 0)
			ck_abort_msg("%s: connection still open after %d ms; "
			    "unread: %s", c->name, timeout_ms, pending(c));
		fill(c, remaining(deadline));
	}
	if (c->nlines > 0)
		ck_abort_msg("%s: expected the connection to close, "
		    "got \"%.1000s\"",
		    c->name, c->lines[0]);
}

void
hb_reset(struct hb_conn *c)
{
	struct linger lg = { 1, 0 };

	if (c != NULL)
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	hb_close(c);
}

void
hb_close(struct hb_conn *c)
{
	size_t i;
	int slot;

	if (c == NULL)
		return;
	for (slot = 0; slot < HB_MAX_OBJS; slot++)
		if (conns[slot] == c) {
			conns[slot] = NULL;
			free(last_line[slot]);
			last_line[slot] = NULL;
			break;
		}
	close(c->fd);
	for (i = 0; i < c->nlines; i++)
		free(c->lines[i]);
	free(c->lines);
	free(c->buf);
	free(c);
}

int
hb_listen(char *addr, size_t addrlen)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	int fd, one = 1;

	register_cleanup();
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(fd, 64) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &sl) == -1) {
		close(fd);
		return -1;
	}
	snprintf(addr, addrlen, "127.0.0.1:%u", ntohs(sin.sin_port));
	return fd;
}

struct hb_conn *
hb_accept(int lfd, int timeout_ms)
{
	struct pollfd pfd;
	int fd, one = 1;

	pfd.fd = lfd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, timeout_ms) <= 0)
		return NULL;
	if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) == -1)
		return NULL;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return conn_wrap(fd, "accepted");
}

/* Decode a chunked body in place; -1 if malformed. */
static int
dechunk(char *body, size_t *len)
{
	char *in = body, *out = body, *end = body + *len, *crlf;
	unsigned long n;

	for (;;) {
		crlf = strstr(in, "\r\n");
		if (crlf == NULL || crlf >= end)
			return -1;
		n = strtoul(in, NULL, 16);
		in = crlf + 2;
		if (n == 0)
			break;
		if ((size_t)(end - in) < n + 2)
			return -1;
		memmove(out, in, n);
		out += n;
		in += n + 2;
	}
	*len = (size_t)(out - body);
	*out = '\0';
	return 0;
}

int
hb_http_get(const char *addr, const char *path, char **body, int timeout_ms)
{
	struct hb_conn *c;
	char *hdr_end, *b;
	size_t blen;
	int status;
	uint64_t deadline = hb_now_ms() + (uint64_t)timeout_ms;

	*body = NULL;
	if ((c = hb_try_connect(addr)) == NULL)
		return -1;
	if (hb_sendf(c, "GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n"
	    "\r\n", path, addr) == -1) {
		hb_close(c);
		return -1;
	}
	/* Read raw bytes to EOF: do not split lines. */
	while (!c->eof && remaining(deadline) > 0) {
		struct pollfd pfd;
		ssize_t n;

		pfd.fd = c->fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, remaining(deadline)) <= 0)
			break;
		if (c->cap - c->len < HB_READ_CHUNK + 1) {
			c->cap = (c->cap + HB_READ_CHUNK + 1) * 2;
			c->buf = hb_xrealloc(c->buf, c->cap);
		}
		n = recv(c->fd, c->buf + c->len, HB_READ_CHUNK, 0);
		if (n > 0)
			c->len += (size_t)n;
		else if (n == 0 || (errno != EINTR && errno != EAGAIN))
			c->eof = 1;
	}
	if (c->buf == NULL || !c->eof) {
		hb_close(c);
		return -1;
	}
	c->buf[c->len] = '\0';
	if (sscanf(c->buf, "HTTP/1.%*d %d", &status) != 1 ||
	    (hdr_end = strstr(c->buf, "\r\n\r\n")) == NULL) {
		hb_close(c);
		return -1;
	}
	*hdr_end = '\0';
	b = hdr_end + 4;
	blen = c->len - (size_t)(b - c->buf);
	if (strcasestr(c->buf, "transfer-encoding: chunked") != NULL &&
	    dechunk(b, &blen) == -1) {
		hb_close(c);
		return -1;
	}
	*body = hb_xstrndup(b, blen);
	hb_close(c);
	return status;
}

char *
hb_tmpfile(const char *contents)
{
	char *path, tmpl[64];
	int fd, slot;

	register_cleanup();
	snprintf(tmpl, sizeof(tmpl), "/tmp/hbtest.%d.XXXXXX", (int)getpid());
	path = hb_xstrndup(tmpl, strlen(tmpl));
	for (slot = 0; slot < HB_MAX_OBJS && tmpfiles[slot] != NULL; slot++)
		;
	ck_assert_msg(slot < HB_MAX_OBJS, "harness: too many temp files");
	if ((fd = mkstemp(path)) == -1)
		ck_abort_msg("mkstemp: %s", strerror(errno));
	close(fd);
	tmpfiles[slot] = path;
	hb_write_file(path, contents);
	return path;
}

char *
hb_tmppath(const char *tag)
{
	static unsigned int serial;
	char buf[108];
	int slot;

	register_cleanup();
	for (slot = 0; slot < HB_MAX_OBJS && tmpfiles[slot] != NULL; slot++)
		;
	ck_assert_msg(slot < HB_MAX_OBJS, "harness: too many temp files");
	snprintf(buf, sizeof(buf), "/tmp/hbtest.%d.%s%u", (int)getpid(), tag,
	    serial++);
	tmpfiles[slot] = hb_xstrndup(buf, strlen(buf));
	return tmpfiles[slot];
}

/* Replace the file's contents atomically, so a reload never sees half. */
void
hb_write_file(const char *path, const char *contents)
{
	char tmp[512];
	size_t len = strlen(contents);
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.new", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) ==
	    -1)
		ck_abort_msg("open %s: %s", tmp, strerror(errno));
	if (write(fd, contents, len) != (ssize_t)len)
		ck_abort_msg("write %s: %s", tmp, strerror(errno));
	close(fd);
	if (rename(tmp, path) == -1)
		ck_abort_msg("rename %s: %s", tmp, strerror(errno));
}
