/*
 * check_ctl.c - heartbeatctl against the real heartbeatd, from outside:
 * each test starts a daemon on port 0, runs the client with its output
 * captured (or under a pseudo-terminal, for the live views) and checks the
 * output and the exit status the man page promises. --json output is run
 * through a strict JSON validator kept here.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* forkpty */
#endif

#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <errno.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_common.h"
#include "harness.h"

#define CTL_EXIT_MS	15000	/* a client run that should end by itself */
#define CTL_ARGS_MAX	32
#define JSON_DEPTH_MAX	64
#define PTY_ROWS	30
#define PTY_COLS	100

/* A client under a pseudo-terminal and everything it drew. */
struct pty_proc {
	pid_t	 pid;
	int	 fd;		/* master side, -1 at EOF */
	char	*buf;
	size_t	 len, cap;
	int	 exited, status;
};

static const char *
ctl_path(void)
{
	const char *p = getenv("HEARTBEATCTL");

	return p != NULL && *p != '\0' ? p : "src/heartbeatctl";
}

/* argv for the client: path, then -H addr unless addr is NULL, then args. */
static void
ctl_argv(char **argv, const char *addr, const char *arg, va_list ap)
{
	size_t n = 0;

	argv[n++] = (char *)ctl_path();
	if (addr != NULL) {
		argv[n++] = "-H";
		argv[n++] = (char *)addr;
	}
	for (; arg != NULL; arg = va_arg(ap, const char *)) {
		ck_assert_msg(n < CTL_ARGS_MAX - 1, "too many client args");
		argv[n++] = (char *)arg;
	}
	argv[n] = NULL;
}

/* Start the client without waiting; arguments end with NULL. */
static struct hb_proc *
ctl_spawn(const char *addr, const char *arg, ...)
{
	char *argv[CTL_ARGS_MAX];
	va_list ap;

	va_start(ap, arg);
	ctl_argv(argv, addr, arg, ap);
	va_end(ap);
	return hb_spawnv(argv[0], argv);
}

/* Wait for a client to exit; its exit status (a signal fails the test). */
static int
ctl_exit(struct hb_proc *p, int timeout_ms)
{
	int st = hb_wait_exit(p, timeout_ms);

	if (st == -1) {
		hb_dump(p, "heartbeatctl did not exit");
		ck_abort_msg("heartbeatctl did not exit within %d ms", timeout_ms);
	}
	if (!WIFEXITED(st)) {
		hb_dump(p, "heartbeatctl killed");
		ck_abort_msg("heartbeatctl killed by signal %d", WTERMSIG(st));
	}
	return WEXITSTATUS(st);
}

/* Run the client to completion; *code gets its exit status. */
static struct hb_proc *
ctl_run(int *code, const char *addr, const char *arg, ...)
{
	char *argv[CTL_ARGS_MAX];
	struct hb_proc *p;
	va_list ap;

	va_start(ap, arg);
	ctl_argv(argv, addr, arg, ap);
	va_end(ap);
	p = hb_spawnv(argv[0], argv);
	*code = ctl_exit(p, CTL_EXIT_MS);
	return p;
}

#define ck_assert_ctl(p, code, want) do {				\
	if ((code) != (want))						\
		hb_dump((p), "unexpected exit status");			\
	ck_assert_int_eq((code), (want));				\
} while (0)

/* A strict JSON parser (RFC 8259) that only says yes or no. */
struct json_parser {
	const char	*s;
	int		 depth;
};

static int	 json_value(struct json_parser *);

static void
json_ws(struct json_parser *p)
{
	while (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r')
		p->s++;
}

static int
json_digits(struct json_parser *p)
{
	if (*p->s < '0' || *p->s > '9')
		return 0;
	while (*p->s >= '0' && *p->s <= '9')
		p->s++;
	return 1;
}

static int
json_string(struct json_parser *p)
{
	int i;

	if (*p->s++ != '"')
		return 0;
	for (;;) {
		unsigned char ch = (unsigned char)*p->s;

		if (ch == '"') {
			p->s++;
			return 1;
		}
		if (ch < 0x20)		/* control characters and the NUL */
			return 0;
		p->s++;
		if (ch != '\\')
			continue;
		if (*p->s != '\0' && strchr("\"\\/bfnrt", *p->s) != NULL) {
			p->s++;
			continue;
		}
		if (*p->s++ != 'u')
			return 0;
		for (i = 0; i < 4; i++, p->s++)
			if (strchr("0123456789abcdefABCDEF", *p->s) == NULL ||
			    *p->s == '\0')
				return 0;
	}
}

static int
json_number(struct json_parser *p)
{
	if (*p->s == '-')
		p->s++;
	if (*p->s == '0')
		p->s++;
	else if (!json_digits(p))
		return 0;
	if (*p->s == '.') {
		p->s++;
		if (!json_digits(p))
			return 0;
	}
	if (*p->s == 'e' || *p->s == 'E') {
		p->s++;
		if (*p->s == '+' || *p->s == '-')
			p->s++;
		if (!json_digits(p))
			return 0;
	}
	return 1;
}

static int
json_literal(struct json_parser *p, const char *word)
{
	size_t n = strlen(word);

	if (strncmp(p->s, word, n) != 0)
		return 0;
	p->s += n;
	return 1;
}

/* An object or array: members separated by commas up to close. */
static int
json_container(struct json_parser *p, char close)
{
	p->s++;
	json_ws(p);
	if (*p->s == close) {
		p->s++;
		return 1;
	}
	for (;;) {
		json_ws(p);
		if (close == '}') {
			if (!json_string(p))
				return 0;
			json_ws(p);
			if (*p->s++ != ':')
				return 0;
		}
		if (!json_value(p))
			return 0;
		json_ws(p);
		if (*p->s == ',') {
			p->s++;
			continue;
		}
		return *p->s++ == close;
	}
}

static int
json_value(struct json_parser *p)
{
	int ok;

	json_ws(p);
	if (++p->depth > JSON_DEPTH_MAX)
		return 0;
	switch (*p->s) {
	case '{':
		ok = json_container(p, '}');
		break;
	case '[':
		ok = json_container(p, ']');
		break;
	case '"':
		ok = json_string(p);
		break;
	case 't':
		ok = json_literal(p, "true");
		break;
	case 'f':
		ok = json_literal(p, "false");
		break;
	case 'n':
		ok = json_literal(p, "null");
		break;
	default:
		ok = json_number(p);
		break;
	}
	p->depth--;
	return ok;
}

/* Exactly one JSON value, with optional whitespace around it. */
static int
json_valid(const char *s)
{
	struct json_parser p = { s, 0 };

	if (!json_value(&p))
		return 0;
	json_ws(&p);
	return *p.s == '\0';
}

/* Every line of out is one JSON object; returns the count (0: none, or bad). */
static int
json_lines(const char *out)
{
	char line[65536];
	const char *nl;
	size_t len;
	int n = 0;

	for (; *out != '\0'; out = nl + 1) {
		if ((nl = strchr(out, '\n')) == NULL)
			return 0;	/* a line must be complete */
		len = (size_t)(nl - out);
		if (len >= sizeof(line))
			return 0;
		memcpy(line, out, len);
		line[len] = '\0';
		if (line[0] != '{' || !json_valid(line))
			return 0;
		n++;
	}
	return n;
}

#define ck_assert_json(p) do {						\
	if (json_lines((p)->out) == 0)					\
		hb_dump((p), "not JSON lines");				\
	ck_assert_msg(json_lines((p)->out) > 0,				\
	    "stdout is not JSON, one object per line: \"%s\"", (p)->out); \
} while (0)

static int
count_lines(const char *s)
{
	int n = 0;

	for (; (s = strchr(s, '\n')) != NULL; s++)
		n++;
	return n;
}

/* The value on the "key  value" line for key in aligned output, or NULL. */
static const char *
aligned_value(const char *out, const char *key, char *buf, size_t n)
{
	size_t kl = strlen(key), i;
	const char *p = out;

	while (strncmp(p, key, kl) != 0 || p[kl] != ' ') {
		if ((p = strchr(p, '\n')) == NULL)
			return NULL;
		p++;
	}
	for (p += kl; *p == ' '; p++)
		;
	for (i = 0; i + 1 < n && p[i] != '\0' && p[i] != '\n'; i++)
		buf[i] = p[i];
	buf[i] = '\0';
	return buf;
}

/* Submit a job on a connection of our own and wait for its outcome. */
static unsigned long long
job_done(struct hb_conn *c, const char *req)
{
	unsigned long long id;
	char *line = hb_request(c, req, "OK ");

	ck_assert_int_eq(sscanf(line, "OK %llu", &id), 1);
	hb_await(c, "DONE ", HB_REPLY_MS);
	return id;
}

/* Submit a detached job on a connection of our own; its id. */
static unsigned long long
submit_detached(struct hb_conn *c, const char *req)
{
	unsigned long long id;
	char *line = hb_request(c, req, "OK ");

	ck_assert_int_eq(sscanf(line, "OK %llu", &id), 1);
	return id;
}

/* Poll STATUS id until its line has pat (hb_line_has), or fail. */
static void
wait_state(struct hb_conn *c, const char *id, const char *pat)
{
	uint64_t deadline = hb_now_ms() + HB_REPLY_MS;
	char req[64], *line;

	snprintf(req, sizeof(req), "STATUS %s", id);
	for (;;) {
		line = hb_request(c, req, "JOB ");
		if (hb_line_has(line, pat))
			return;
		ck_assert_msg(hb_now_ms() < deadline, "no %s: %s", pat, line);
		poll(NULL, 0, 10);
	}
}

/* Wait until the daemon counts n work connections (ours included). */
static void
wait_connections(struct hb_conn *c, long long n)
{
	uint64_t deadline = hb_now_ms() + HB_REPLY_MS;

	while (hb_num(hb_request(c, "STATS", "STATS "), "connections") < n) {
		ck_assert_msg(hb_now_ms() < deadline, "fewer than %lld "
		    "connections", n);
		poll(NULL, 0, 10);
	}
}

static void
pty_spawn(struct pty_proc *pp, char *const argv[])
{
	struct winsize ws = { PTY_ROWS, PTY_COLS, 0, 0 };
	pid_t parent = getpid();

	memset(pp, 0, sizeof(*pp));
	pp->cap = 65536;
	pp->buf = malloc(pp->cap);
	ck_assert_ptr_nonnull(pp->buf);
	pp->buf[0] = '\0';
	fflush(stdout);
	fflush(stderr);
	pp->pid = forkpty(&pp->fd, NULL, NULL, &ws);
	ck_assert_msg(pp->pid != -1, "forkpty: %s", strerror(errno));
	if (pp->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		execv(argv[0], argv);
		_exit(127);
	}
}

/* Read what the client drew, waiting up to timeout_ms; reap it if it exited. */
static void
pty_read(struct pty_proc *pp, int timeout_ms)
{
	struct pollfd pfd = { pp->fd, POLLIN, 0 };
	ssize_t n;

	if (pp->fd >= 0 && poll(&pfd, 1, timeout_ms) > 0) {
		if (pp->len + 4097 > pp->cap) {
			pp->cap *= 2;
			pp->buf = realloc(pp->buf, pp->cap);
			ck_assert_ptr_nonnull(pp->buf);
		}
		n = read(pp->fd, pp->buf + pp->len, 4096);
		if (n > 0) {
			pp->len += (size_t)n;
			pp->buf[pp->len] = '\0';
		} else if (n == 0 || errno != EINTR) {
			close(pp->fd);	/* EIO: the slave side is gone */
			pp->fd = -1;
		}
	} else if (pp->fd < 0 && timeout_ms > 0) {
		poll(NULL, 0, 10);
	}
	if (!pp->exited && waitpid(pp->pid, &pp->status, WNOHANG) == pp->pid)
		pp->exited = 1;
}

/* Read until match() holds on the output so far; 0, or -1 at the deadline. */
static int
pty_wait_for(struct pty_proc *pp, int (*match)(const char *), int timeout_ms)
{
	uint64_t deadline = hb_now_ms() + (uint64_t)timeout_ms;

	while (!match(pp->buf)) {
		if (hb_now_ms() >= deadline || (pp->exited && pp->fd < 0))
			return -1;
		pty_read(pp, 20);
	}
	return 0;
}

/* Wait for exit and the last output; the exit status, or -1. */
static int
pty_wait_exit(struct pty_proc *pp, int timeout_ms)
{
	uint64_t deadline = hb_now_ms() + (uint64_t)timeout_ms;

	while (!pp->exited || pp->fd >= 0) {
		if (hb_now_ms() >= deadline) {
			kill(pp->pid, SIGKILL);
			waitpid(pp->pid, &pp->status, 0);
			return -1;
		}
		pty_read(pp, 20);
	}
	return WIFEXITED(pp->status) ? WEXITSTATUS(pp->status) : -1;
}

static void
pty_free(struct pty_proc *pp)
{
	if (!pp->exited) {
		kill(pp->pid, SIGKILL);
		waitpid(pp->pid, &pp->status, 0);
	}
	if (pp->fd >= 0)
		close(pp->fd);
	free(pp->buf);
}

/* A redraw: the cursor moved up over the last frame, then "seq N" drawn. */
static int
has_redraw_with_seq(const char *s)
{
	const char *up, *p;

	for (up = strstr(s, "\033["); up != NULL; up = strstr(up + 1, "\033[")) {
		p = up + 2;
		if (*p < '1' || *p > '9')
			continue;
		while (*p >= '0' && *p <= '9')
			p++;
		if (*p != 'A')
			continue;
		if ((p = strstr(p, "seq ")) != NULL && p[4] >= '0' && p[4] <= '9')
			return 1;
	}
	return 0;
}

static int
has_progress(const char *s)
{
	return strstr(s, "%") != NULL && strstr(s, "\r") != NULL;
}

START_TEST(test_json_validator_is_strict)
{
	ck_assert(json_valid("{\"a\":1,\"b\":[true,null,\"x\\u00e9\"],\"c\":-0.5e3}"));
	ck_assert(json_valid(" [] "));
	ck_assert(!json_valid("{\"a\":1,}"));
	ck_assert(!json_valid("{\"a\":01}"));
	ck_assert(!json_valid("{\"a\":\"tab\there\"}"));
	ck_assert(!json_valid("{a:1}"));
	ck_assert(!json_valid("{\"a\":1}{\"b\":2}"));
	ck_assert(!json_valid("{\"a\":\"\\x\"}"));
	ck_assert(!json_valid(""));
	ck_assert_int_eq(json_lines("{\"a\":1}\n{\"b\":2}\n"), 2);
	ck_assert_int_eq(json_lines("{\"a\":1}"), 0);
}
END_TEST

START_TEST(test_ping_prints_pong_and_round_trip)
{
	struct hb_proc *d = hb_start(NULL), *p;
	int code;

	p = ctl_run(&code, d->work_addr, "ping", NULL);
	ck_assert_ctl(p, code, 0);
	ck_assert_msg(strncmp(p->out, "PONG", 4) == 0, "stdout: %s", p->out);
	ck_assert_ptr_nonnull(strstr(p->out, " ms"));
	hb_free(p);

	p = ctl_run(&code, d->work_addr, "--json", "ping", NULL);
	ck_assert_ctl(p, code, 0);
	ck_assert_json(p);
	ck_assert_ptr_nonnull(strstr(p->out, "\"reply\":\"PONG\""));
	ck_assert_ptr_nonnull(strstr(p->out, "\"rtt_us\":"));
}
END_TEST

START_TEST(test_stats_prints_aligned_fields_and_numbers_in_json)
{
	struct hb_proc *d = hb_start("-s", "threads=3", NULL), *p;
	char v[64];
	int code;

	p = ctl_run(&code, d->work_addr, "stats", NULL);
	ck_assert_ctl(p, code, 0);
	ck_assert_msg(aligned_value(p->out, "threads", v, sizeof(v)) != NULL &&
	    strcmp(v, "3") == 0, "stdout: %s", p->out);
	ck_assert_ptr_nonnull(aligned_value(p->out, "uptime_s", v, sizeof(v)));
	ck_assert_ptr_nonnull(aligned_value(p->out, "lag_p99_us", v, sizeof(v)));
	hb_free(p);

	p = ctl_run(&code, d->work_addr, "--json", "stats", NULL);
	ck_assert_ctl(p, code, 0);
	ck_assert_json(p);
	ck_assert_msg(strstr(p->out, "\"threads\":3") != NULL, "stdout: %s",
	    p->out);
}
END_TEST

START_TEST(test_peers_prints_a_table_of_configured_peers)
{
	struct hb_proc *d = hb_start("-s", "peer=ghost@127.0.0.1:1", NULL), *p;
	int code;

	p = ctl_run(&code, d->work_addr, "peers", NULL);
	ck_assert_ctl(p, code, 0);
	ck_assert_msg(strncmp(p->out, "NAME", 4) == 0, "stdout: %s", p->out);
	ck_assert_ptr_nonnull(strstr(p->out, "LAST_ACK"));
	ck_assert_ptr_nonnull(strstr(p->out, "\nghost "));
	ck_assert_ptr_nonnull(strstr(p->out, "127.0.0.1:1 "));
	hb_free(p);

	p = ctl_run(&code, d->work_addr, "--json", "peers", NULL);
	ck_assert_ctl(p, code, 0);
	ck_assert_json(p);
	ck_assert_ptr_nonnull(strstr(p->out, "{\"peers\":[{\"name\":\"ghost\""));
}
END_TEST

START_TEST(test_peers_without_peers_is_an_empty_list)
{
	struct hb_proc *d = hb_start(NULL), *p;
	int code;

	p = ctl_run(&code, d->work_addr, "--json", "peers", NULL);
	ck_assert_ctl(p, code, 0);
	ck_assert_json(p);
	ck_assert_str_eq(p->out, "{\"peers\":[]}\n");
}
END_TEST

START_TEST(test_status_shows_a_finished_job)
{
	struct hb_proc *d = hb_start(NULL), *p;
	struct hb_conn *c = hb_connect(d->work_addr);
	char id[32], v[64];
	int code;

	snprintf(id, sizeof(id), "%llu", job_done(c, "SUBMIT sleep ms=1"));
	p = ctl_run(&code, d->work_addr, "status", id, NULL);
	ck_assert_ctl(p, code, 0);
	ck_assert_msg(aligned_value(p->out, "id", v, sizeof(v)) != NULL &&
	    strcmp(v, id) == 0, "stdout: %s", p->out);
	ck_assert_msg(aligned_value(p->out, "state", v, sizeof(v)) != NULL &&
	    strncmp(v, "done in ", 8) == 0, "stdout: %s", p->out);
	ck_assert_msg(aligned_value(p->out, "result", v, sizeof(v)) != NULL &&
	    strcmp(v, "ok") == 0, "stdout: %s", p->out);
	ck_assert_msg(aligned_value(p->out, "detached", v, sizeof(v)) != NULL &&
	    strcmp(v, "no") == 0, "stdout: %s", p->out);
	hb_free(p);

	p = ctl_run(&code, d->work_addr, "--json", "status", id, NULL);
	ck_assert_ctl(p, code, 0);
	ck_assert_json(p);
	ck_assert_ptr_nonnull(strstr(p->out, "\"kind\":\"sleep\""));
	ck_assert_ptr_nonnull(strstr(p->out, "\"state\":\"done\""));
	ck_assert_ptr_nonnull(strstr(p->out, "\"result\":\"ok\""));
	ck_assert_ptr_nonnull(strstr(p->out, "\"queue_us\":"));
	ck_assert_ptr_nonnull(strstr(p->out, "\"run_us\":"));
	ck_assert_ptr_nonnull(strstr(p->out, "\"detached\":0"));
}
END_TEST

START_TEST(test_status_shows_a_running_job_and_a_failure_reason)
{
	struct hb_proc *d = hb_start(NULL), *p;
	struct hb_conn *c = hb_connect(d->work_addr);
	char id[32], v[64];
	int code;

	snprintf(id, sizeof(id), "%llu", submit_detached(c,
	    "SUBMIT sleep ms=30000 detach=1"));
	wait_state(c, id, "state=running");
	p = ctl_run(&code, d->work_addr, "status", id, NULL);
	ck_assert_ctl(p, code, 0);
	ck_assert_msg(aligned_value(p->out, "state", v, sizeof(v)) != NULL &&
	    strncmp(v, "running ", 8) == 0 && strstr(v, "% for ") != NULL,
	    "stdout: %s", p->out);
	ck_assert_msg(aligned_value(p->out, "detached", v, sizeof(v)) != NULL &&
	    strcmp(v, "yes") == 0, "stdout: %s", p->out);
	hb_free(p);

	snprintf(id, sizeof(id), "%llu", submit_detached(c,
	    "SUBMIT spin ms=5000 timeout_ms=10 detach=1"));
	wait_state(c, id, "state=failed");
	p = ctl_run(&code, d->work_addr, "status", id, NULL);
	ck_assert_ctl(p, code, 0);
	ck_assert_msg(aligned_value(p->out, "state", v, sizeof(v)) != NULL &&
	    strncmp(v, "failed after ", 13) == 0, "stdout: %s", p->out);
	ck_assert_msg(aligned_value(p->out, "reason", v, sizeof(v)) != NULL &&
	    strcmp(v, "timeout") == 0, "stdout: %s", p->out);
	hb_free(p);

	p = ctl_run(&code, d->work_addr, "--json", "status", id, NULL);
	ck_assert_ctl(p, code, 0);
	ck_assert_json(p);
	ck_assert_ptr_nonnull(strstr(p->out, "\"reason\":\"timeout\""));
	ck_assert_ptr_nonnull(strstr(p->out, "\"detached\":1"));
}
END_TEST

START_TEST(test_status_of_an_unknown_job_exits_1)
{
	struct hb_proc *d = hb_start(NULL), *p;
	int code;

	p = ctl_run(&code, d->work_addr, "status", "987654", NULL);
	ck_assert_ctl(p, code, 1);
	ck_assert_ptr_nonnull(strstr(p->err, "not-found"));
	hb_free(p);

	p = ctl_run(&code, d->work_addr, "--json", "status", "987654", NULL);
	ck_assert_ctl(p, code, 1);
	ck_assert_json(p);
	ck_assert_ptr_nonnull(strstr(p->out, "{\"error\":\"not-found\""));
}
END_TEST

START_TEST(test_cancel_stops_a_running_job)
{
	struct hb_proc *d = hb_start(NULL), *p;
	struct hb_conn *c = hb_connect(d->work_addr);
	unsigned long long id;
	char ids[32], *line;
	int code;

	line = hb_request(c, "SUBMIT sleep ms=30000", "OK ");
	ck_assert_int_eq(sscanf(line, "OK %llu", &id), 1);
	snprintf(ids, sizeof(ids), "%llu", id);
	p = ctl_run(&code, d->work_addr, "--json", "cancel", ids, NULL);
	ck_assert_ctl(p, code, 0);
	ck_assert_json(p);
	line = hb_await(c, "FAIL ", HB_REPLY_MS);
	ck_assert_msg(hb_line_has(line, "reason=cancelled"), "got %s", line);
}
END_TEST

START_TEST(test_cancel_of_an_unknown_job_exits_1)
{
	struct hb_proc *d = hb_start(NULL), *p;
	int code;

	p = ctl_run(&code, d->work_addr, "cancel", "987654", NULL);
	ck_assert_ctl(p, code, 1);
	ck_assert_ptr_nonnull(strstr(p->err, "not-found"));
	hb_free(p);

	p = ctl_run(&code, d->work_addr, "--json", "cancel", "987654", NULL);
	ck_assert_ctl(p, code, 1);
	ck_assert_json(p);
	ck_assert_ptr_nonnull(strstr(p->out, "{\"error\":\"not-found\""));
}
END_TEST

START_TEST(test_submit_prints_the_job_id)
{
	struct hb_proc *d = hb_start(NULL), *p;
	unsigned long long id;
	int code;

	p = ctl_run(&code, d->work_addr, "submit", "sleep", "ms=1", NULL);
	ck_assert_ctl(p, code, 0);
	ck_assert_msg(sscanf(p->out, "%llu\n", &id) == 1 && id > 0,
	    "stdout: %s", p->out);
	hb_free(p);

	p = ctl_run(&code, d->work_addr, "--json", "submit", "sleep", "ms=1",
	    NULL);
	ck_assert_ctl(p, code, 0);
	ck_assert_json(p);
	ck_assert_ptr_nonnull(strstr(p->out, "{\"id\":"));
}
END_TEST

START_TEST(test_submit_detaches_so_the_job_outlives_the_client)
{
	struct hb_proc *d = hb_start(NULL), *p;
	struct hb_conn *c;
	unsigned long long id;
	char req[64], *line;
	int code;

	p = ctl_run(&code, d->work_addr, "submit", "sleep", "ms=300", NULL);
	ck_assert_ctl(p, code, 0);
	ck_assert_msg(sscanf(p->out, "%llu\n", &id) == 1 && id > 0,
	    "stdout: %s", p->out);
	hb_free(p);
	/* The client is gone; the job is the daemon's now. */
	c = hb_connect(d->work_addr);
	snprintf(req, sizeof(req), "STATUS %llu", id);
	line = hb_request(c, req, "JOB ");
	ck_assert_msg(hb_line_has(line, "detached=1") &&
	    !hb_line_has(line, "state=failed"), "got %s", line);
	snprintf(req, sizeof(req), "WAIT %llu", id);
	hb_request(c, req, "OK ");
	line = hb_await(c, "DONE |FAIL ", HB_REPLY_MS);
	ck_assert_msg(strncmp(line, "DONE ", 5) == 0 &&
	    hb_line_has(line, "result=ok"), "got %s", line);
}
END_TEST

START_TEST(test_wait_prints_the_result_of_a_running_job_and_exits_0)
{
	struct hb_proc *d = hb_start(NULL), *p;
	struct hb_conn *c = hb_connect(d->work_addr);
	char id[32];
	int code;

	snprintf(id, sizeof(id), "%llu", submit_detached(c,
	    "SUBMIT sleep ms=300 detach=1"));
	p = ctl_run(&code, d->work_addr, "wait", id, NULL);
	ck_assert_ctl(p, code, 0);
	ck_assert_msg(strncmp(p->out, "job ", 4) == 0 &&
	    strstr(p->out, " done: ok (queued ") != NULL, "stdout: %s", p->out);
	hb_free(p);

	/* Finished by now: the outcome comes at once. */
	p = ctl_run(&code, d->work_addr, "--json", "wait", id, NULL);
	ck_assert_ctl(p, code, 0);
	ck_assert_json(p);
	ck_assert_msg(strstr(p->out, "\"state\":\"done\"") != NULL &&
	    strstr(p->out, "\"result\":\"ok\"") != NULL, "stdout: %s", p->out);
}
END_TEST

START_TEST(test_wait_on_a_failed_job_exits_1)
{
	struct hb_proc *d = hb_start(NULL), *p;
	struct hb_conn *c = hb_connect(d->work_addr);
	char id[32];
	int code;

	snprintf(id, sizeof(id), "%llu", submit_detached(c,
	    "SUBMIT spin ms=5000 timeout_ms=50 detach=1"));
	p = ctl_run(&code, d->work_addr, "wait", id, NULL);
	ck_assert_ctl(p, code, 1);
	ck_assert_msg(strstr(p->out, "failed: timeout") != NULL, "stdout: %s",
	    p->out);
	hb_free(p);

	p = ctl_run(&code, d->work_addr, "--json", "wait", id, NULL);
	ck_assert_ctl(p, code, 1);
	ck_assert_json(p);
	ck_assert_ptr_nonnull(strstr(p->out, "\"state\":\"failed\""));
	ck_assert_ptr_nonnull(strstr(p->out, "\"reason\":\"timeout\""));
}
END_TEST

START_TEST(test_wait_on_an_unknown_job_exits_1)
{
	struct hb_proc *d = hb_start(NULL), *p;
	int code;

	p = ctl_run(&code, d->work_addr, "wait", "987654", NULL);
	ck_assert_ctl(p, code, 1);
	ck_assert_msg(strstr(p->err, "not-found") != NULL &&
	    strstr(p->err, "987654") != NULL, "stderr: %s", p->err);
	ck_assert_str_eq(p->out, "");
	hb_free(p);

	p = ctl_run(&code, d->work_addr, "--json", "wait", "987654", NULL);
	ck_assert_ctl(p, code, 1);
	ck_assert_json(p);
	ck_assert_ptr_nonnull(strstr(p->out, "{\"error\":\"not-found\""));
}
END_TEST

START_TEST(test_interrupt_during_wait_leaves_the_job_alone)
{
	struct hb_proc *d = hb_start(NULL), *p;
	struct hb_conn *c = hb_connect(d->work_addr);
	char id[32], req[64], *line;
	int code;

	snprintf(id, sizeof(id), "%llu", submit_detached(c,
	    "SUBMIT sleep ms=30000 detach=1"));
	wait_state(c, id, "state=running");
	p = ctl_spawn(d->work_addr, "wait", id, NULL);
	wait_connections(c, 2);
	poll(NULL, 0, 100);	/* let it send WAIT */
	hb_signal(p, SIGINT);
	code = ctl_exit(p, CTL_EXIT_MS);
	ck_assert_ctl(p, code, 128 + SIGINT);
	ck_assert_msg(strstr(p->err, "stopped waiting") != NULL, "stderr: %s",
	    p->err);
	snprintf(req, sizeof(req), "STATUS %s", id);
	line = hb_request(c, req, "JOB ");
	ck_assert_msg(hb_line_has(line, "state=running"), "got %s", line);
}
END_TEST

START_TEST(test_wait_reconnects_and_waits_again)
{
	char addr[HB_ADDR_MAX], *line;
	struct hb_conn *s;
	struct hb_proc *p;
	int lfd = hb_listen(addr, sizeof(addr)), code;

	/* We play the daemon: it goes away once, then answers. */
	ck_assert_int_ge(lfd, 0);
	p = ctl_spawn(addr, "wait", "7", NULL);
	ck_assert_ptr_nonnull(s = hb_accept(lfd, HB_REPLY_MS));
	line = hb_expect(s, "WAIT ", HB_REPLY_MS);
	ck_assert_str_eq(line, "WAIT 7");
	hb_sendf(s, "OK 7\n");
	hb_reset(s);
	ck_assert_ptr_nonnull(s = hb_accept(lfd, HB_REPLY_MS));
	line = hb_expect(s, "WAIT ", HB_REPLY_MS);
	ck_assert_str_eq(line, "WAIT 7");
	hb_sendf(s, "OK 7\nDONE 7 result=ok queue_us=5 run_us=1200\n");
	code = ctl_exit(p, CTL_EXIT_MS);
	ck_assert_ctl(p, code, 0);
	ck_assert_str_eq(p->out, "job 7 done: ok (queued 5us, ran 1.20ms)\n");
	ck_assert_msg(strstr(p->err, "reconnecting") != NULL, "stderr: %s",
	    p->err);
	hb_close(s);
	close(lfd);
}
END_TEST

START_TEST(test_wait_reports_a_job_lost_in_a_daemon_restart)
{
	struct hb_proc *d = hb_start(NULL), *p;
	struct hb_conn *c = hb_connect(d->work_addr);
	char id[32], listen[HB_ADDR_MAX + 16];
	int code;

	snprintf(id, sizeof(id), "%llu", submit_detached(c,
	    "SUBMIT sleep ms=30000 detach=1"));
	p = ctl_spawn(d->work_addr, "wait", id, NULL);
	wait_connections(c, 2);
	/* No journal: a killed daemon forgets its detached jobs. */
	hb_signal(d, SIGKILL);
	hb_wait_exit(d, HB_EXIT_MS);
	hb_close(c);
	snprintf(listen, sizeof(listen), "work_listen=%s", d->work_addr);
	d = hb_start("-s", listen, NULL);
	code = ctl_exit(p, CTL_EXIT_MS);
	ck_assert_ctl(p, code, 1);
	ck_assert_msg(strstr(p->err, "reconnecting") != NULL &&
	    strstr(p->err, "not found after reconnecting") != NULL,
	    "stderr: %s", p->err);
}
END_TEST

START_TEST(test_jobs_lists_queued_and_running_jobs)
{
	struct hb_proc *d = hb_start("-s", "threads=1", NULL), *p;
	struct hb_conn *c = hb_connect(d->work_addr);
	char id1[32], id2[32], row[64];
	int code;

	p = ctl_run(&code, d->work_addr, "jobs", NULL);
	ck_assert_ctl(p, code, 0);
	ck_assert_str_eq(p->out, "no jobs\n");
	hb_free(p);
	p = ctl_run(&code, d->work_addr, "--json", "jobs", NULL);
	ck_assert_ctl(p, code, 0);
	ck_assert_str_eq(p->out, "{\"jobs\":[]}\n");
	hb_free(p);

	snprintf(id1, sizeof(id1), "%llu", submit_detached(c,
	    "SUBMIT sleep ms=30000 detach=1"));
	wait_state(c, id1, "state=running");
	snprintf(id2, sizeof(id2), "%llu", submit_detached(c,
	    "SUBMIT primes n=1000"));
	p = ctl_run(&code, d->work_addr, "jobs", NULL);
	ck_assert_ctl(p, code, 0);
	ck_assert_msg(strncmp(p->out, "ID  KIND ", 9) == 0 &&
	    strstr(p->out, "DETACHED\n") != NULL, "stdout: %s", p->out);
	ck_assert_int_eq(count_lines(p->out), 3);
	snprintf(row, sizeof(row), "%s  sleep   running ", id1);
	ck_assert_msg(strstr(p->out, row) != NULL, "no %s in: %s", row, p->out);
	ck_assert_msg(strstr(p->out, "yes\n") != NULL, "stdout: %s", p->out);
	snprintf(row, sizeof(row), "%s  primes  queued ", id2);
	ck_assert_msg(strstr(p->out, row) != NULL, "no %s in: %s", row, p->out);
	ck_assert_msg(strstr(p->out, "no\n") != NULL, "stdout: %s", p->out);
	hb_free(p);

	p = ctl_run(&code, d->work_addr, "--json", "jobs", NULL);
	ck_assert_ctl(p, code, 0);
	ck_assert_json(p);
	snprintf(row, sizeof(row), "{\"jobs\":[{\"id\":%s,\"kind\":\"sleep\"",
	    id1);
	ck_assert_msg(strncmp(p->out, row, strlen(row)) == 0, "stdout: %s",
	    p->out);
	ck_assert_ptr_nonnull(strstr(p->out, "\"state\":\"queued\""));
}
END_TEST

START_TEST(test_wait_on_a_terminal_shows_progress)
{
	struct hb_proc *d = hb_start(NULL);
	struct hb_conn *c = hb_connect(d->work_addr);
	struct pty_proc pp;
	char id[32];
	char *argv[] = { (char *)ctl_path(), "-H", d->work_addr, "wait", id,
	    NULL };

	snprintf(id, sizeof(id), "%llu", submit_detached(c,
	    "SUBMIT sleep ms=800 detach=1"));
	pty_spawn(&pp, argv);
	ck_assert_msg(pty_wait_for(&pp, has_progress, CTL_EXIT_MS) == 0,
	    "no progress line; got: %s", pp.buf);
	ck_assert_int_eq(pty_wait_exit(&pp, CTL_EXIT_MS), 0);
	ck_assert_msg(strstr(pp.buf, " sleep [") != NULL, "no kind: %s",
	    pp.buf);
	ck_assert_msg(strstr(pp.buf, "done: ok") != NULL, "got: %s", pp.buf);
	pty_free(&pp);
}
END_TEST

START_TEST(test_submit_wait_prints_the_result_and_exits_0)
{
	struct hb_proc *d = hb_start(NULL), *p;
	int code;

	p = ctl_run(&code, d->work_addr, "submit", "sleep", "ms=10", "--wait",
	    NULL);
	ck_assert_ctl(p, code, 0);
	ck_assert_msg(strstr(p->out, "done: ok") != NULL, "stdout: %s", p->out);
	hb_free(p);

	p = ctl_run(&code, d->work_addr, "--json", "submit", "primes", "n=100",
	    "--wait", NULL);
	ck_assert_ctl(p, code, 0);
	ck_assert_json(p);
	ck_assert_msg(strstr(p->out, "\"state\":\"done\"") != NULL &&
	    strstr(p->out, "\"result\":25") != NULL, "stdout: %s", p->out);
}
END_TEST

START_TEST(test_submit_wait_on_a_timeout_exits_1)
{
	struct hb_proc *d = hb_start(NULL), *p;
	int code;

	p = ctl_run(&code, d->work_addr, "submit", "spin", "ms=5000",
	    "timeout_ms=10", "--wait", NULL);
	ck_assert_ctl(p, code, 1);
	ck_assert_msg(strstr(p->out, "failed: timeout") != NULL, "stdout: %s",
	    p->out);
	hb_free(p);

	p = ctl_run(&code, d->work_addr, "--json", "submit", "spin", "ms=5000",
	    "timeout_ms=10", "--wait", NULL);
	ck_assert_ctl(p, code, 1);
	ck_assert_json(p);
	ck_assert_ptr_nonnull(strstr(p->out, "\"reason\":\"timeout\""));
}
END_TEST

START_TEST(test_submit_rejected_by_the_daemon_exits_1)
{
	struct hb_proc *d = hb_start(NULL), *p;
	int code;

	p = ctl_run(&code, d->work_addr, "submit", "nosuchkind", "--wait", NULL);
	ck_assert_ctl(p, code, 1);
	ck_assert_ptr_nonnull(strstr(p->err, "unknown-kind"));
	hb_free(p);

	p = ctl_run(&code, d->work_addr, "--json", "submit", "sleep", "ms=x",
	    NULL);
	ck_assert_ctl(p, code, 1);
	ck_assert_json(p);
	ck_assert_ptr_nonnull(strstr(p->out, "{\"error\":\"bad-arg\""));
}
END_TEST

START_TEST(test_interrupt_during_wait_cancels_the_job)
{
	struct hb_proc *d = hb_start(NULL), *p;
	struct hb_conn *c = hb_connect(d->work_addr);
	unsigned long long id;
	uint64_t deadline = hb_now_ms() + HB_REPLY_MS;
	long long failed0;
	char req[64], *line;
	int code;

	failed0 = hb_num(hb_request(c, "STATS", "STATS "), "failed");
	p = ctl_spawn(d->work_addr, "--json", "submit", "sleep", "ms=30000",
	    "--wait", NULL);
	/* Interrupt only once the job runs on the daemon. */
	while (hb_num(hb_request(c, "STATS", "STATS "), "busy") < 1) {
		ck_assert_msg(hb_now_ms() < deadline, "the job never started");
		poll(NULL, 0, 10);
	}
	hb_signal(p, SIGINT);
	code = ctl_exit(p, CTL_EXIT_MS);
	ck_assert_ctl(p, code, 1);
	ck_assert_json(p);
	ck_assert_msg(strstr(p->out, "\"reason\":\"cancelled\"") != NULL,
	    "stdout: %s", p->out);
	ck_assert_int_eq(sscanf(p->out, "{\"id\":%llu", &id), 1);
	snprintf(req, sizeof(req), "STATUS %llu", id);
	line = hb_request(c, req, "JOB ");
	ck_assert_msg(hb_line_has(line, "state=failed"), "got %s", line);
	ck_assert_int_eq(hb_num(hb_request(c, "STATS", "STATS "), "failed"),
	    failed0 + 1);
}
END_TEST

START_TEST(test_submit_wait_on_a_terminal_shows_progress)
{
	struct hb_proc *d = hb_start(NULL);
	struct pty_proc pp;
	char *argv[] = { (char *)ctl_path(), "-H", d->work_addr, "submit",
	    "sleep", "ms=600", "--wait", NULL };

	pty_spawn(&pp, argv);
	ck_assert_msg(pty_wait_for(&pp, has_progress, CTL_EXIT_MS) == 0,
	    "no progress line; got: %s", pp.buf);
	ck_assert_int_eq(pty_wait_exit(&pp, CTL_EXIT_MS), 0);
	ck_assert_msg(strstr(pp.buf, "done: ok") != NULL, "got: %s", pp.buf);
	pty_free(&pp);
}
END_TEST

START_TEST(test_watch_piped_prints_one_line_per_heartbeat)
{
	struct hb_proc *d = hb_start("-s", "heartbeat_interval_ms=20", NULL), *p;
	int code, json;

	for (json = 0; json <= 1; json++) {
		uint64_t deadline = hb_now_ms() + HB_REPLY_MS;

		p = json ? ctl_spawn(d->work_addr, "--json", "watch", NULL) :
		    ctl_spawn(d->work_addr, "watch", NULL);
		while (count_lines(p->out) < 3) {
			ck_assert_msg(hb_now_ms() < deadline,
			    "fewer than 3 heartbeat lines: %s", p->out);
			hb_pump(p, 20);
		}
		hb_signal(p, SIGINT);
		code = ctl_exit(p, CTL_EXIT_MS);
		ck_assert_ctl(p, code, 0);
		if (json) {
			ck_assert_json(p);
			ck_assert_ptr_nonnull(strstr(p->out, "{\"seq\":"));
		} else {
			ck_assert_msg(strncmp(p->out, "seq=", 4) == 0,
			    "stdout: %s", p->out);
			ck_assert_ptr_nonnull(strstr(p->out, " lag_us="));
		}
		hb_free(p);
	}
}
END_TEST

START_TEST(test_watch_on_a_terminal_redraws_in_place)
{
	struct hb_proc *d = hb_start("-s", "heartbeat_interval_ms=50",
	    "-s", "peer=ghost@127.0.0.1:1", NULL);
	struct pty_proc pp;
	char *argv[] = { (char *)ctl_path(), "-H", d->work_addr, "watch", NULL };

	pty_spawn(&pp, argv);
	ck_assert_msg(pty_wait_for(&pp, has_redraw_with_seq, CTL_EXIT_MS) == 0,
	    "no redraw showing the heartbeat seq; got: %s", pp.buf);
	ck_assert_ptr_nonnull(strstr(pp.buf, "\033[?25l"));
	ck_assert_ptr_nonnull(strstr(pp.buf, "pool"));
	kill(pp.pid, SIGINT);
	ck_assert_int_eq(pty_wait_exit(&pp, CTL_EXIT_MS), 0);
	ck_assert_msg(strstr(pp.buf, "ghost") != NULL, "no peer row: %s",
	    pp.buf);
	ck_assert_msg(pp.len >= 6 && strstr(pp.buf + pp.len - 6, "\033[?25h"),
	    "cursor not restored at exit");
	pty_free(&pp);
}
END_TEST

START_TEST(test_auth_token_is_sent_first)
{
	struct hb_proc *d = hb_start("-s", "auth_token=t0ken", NULL), *p;
	int code;

	p = ctl_run(&code, d->work_addr, "stats", NULL);
	ck_assert_ctl(p, code, 1);
	ck_assert_ptr_nonnull(strstr(p->err, "auth-required"));
	hb_free(p);

	p = ctl_run(&code, d->work_addr, "-a", "wrong", "stats", NULL);
	ck_assert_ctl(p, code, 1);
	ck_assert_ptr_nonnull(strstr(p->err, "auth-failed"));
	hb_free(p);

	p = ctl_run(&code, d->work_addr, "--auth", "t0ken", "--json", "stats",
	    NULL);
	ck_assert_ctl(p, code, 0);
	ck_assert_json(p);
	hb_free(p);

	setenv("HEARTBEAT_TOKEN", "t0ken", 1);
	p = ctl_run(&code, d->work_addr, "ping", NULL);
	unsetenv("HEARTBEAT_TOKEN");
	ck_assert_ctl(p, code, 0);
}
END_TEST

START_TEST(test_no_server_exits_2)
{
	char addr[HB_ADDR_MAX];
	struct hb_proc *p;
	int fd = hb_listen(addr, sizeof(addr)), code;

	ck_assert_int_ge(fd, 0);
	close(fd);		/* nothing listens there now */
	p = ctl_run(&code, addr, "ping", NULL);
	ck_assert_ctl(p, code, 2);
	ck_assert_msg(strstr(p->err, "cannot connect to ") != NULL &&
	    strstr(p->err, "Connection refused") != NULL, "stderr: %s", p->err);
	hb_free(p);

	p = ctl_run(&code, addr, "--json", "stats", NULL);
	ck_assert_ctl(p, code, 2);
	ck_assert_json(p);
	ck_assert_ptr_nonnull(strstr(p->out, "{\"error\":\"connect-failed\""));
}
END_TEST

START_TEST(test_bad_usage_exits_2)
{
	static const char *const bad[][4] = {
		{ NULL },
		{ "frobnicate", NULL },
		{ "status", NULL },
		{ "status", "abc", NULL },
		{ "cancel", "0", NULL },
		{ "ping", "--wait", NULL },
		{ "wait", NULL },
		{ "wait", "x1", NULL },
		{ "wait", "--wait", "1", NULL },
		{ "jobs", "1", NULL },
		{ "ping", "extra", NULL },
		{ "submit", NULL },
		{ "submit", "sleep", "ms", NULL },
		{ "--no-such-option", "ping", NULL },
		{ "-H", "::1", "ping", NULL },
	};
	struct hb_proc *p;
	size_t i;
	int code;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p = ctl_run(&code, NULL, bad[i][0], bad[i][1], bad[i][2], NULL);
		ck_assert_msg(code == 2, "case %zu (%s %s): exit %d", i,
		    bad[i][0] ? bad[i][0] : "", bad[i][1] ? bad[i][1] : "", code);
		ck_assert_msg(p->err[0] != '\0', "case %zu: no message", i);
		hb_free(p);
	}
}
END_TEST

START_TEST(test_help_and_version_exit_0)
{
	struct hb_proc *p;
	int code;

	p = ctl_run(&code, NULL, "--help", NULL);
	ck_assert_ctl(p, code, 0);
	ck_assert_ptr_nonnull(strstr(p->out, "usage: heartbeatctl"));
	hb_free(p);

	p = ctl_run(&code, NULL, "-V", NULL);
	ck_assert_ctl(p, code, 0);
	ck_assert_msg(strncmp(p->out, "heartbeatctl ", 13) == 0, "stdout: %s",
	    p->out);
}
END_TEST

Suite *ctl_suite(void);

Suite *
ctl_suite(void)
{
	Suite *s = suite_create("ctl");
	TCase *tc = tcase_create("client");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_json_validator_is_strict);
	tcase_add_test(tc, test_ping_prints_pong_and_round_trip);
	tcase_add_test(tc, test_stats_prints_aligned_fields_and_numbers_in_json);
	tcase_add_test(tc, test_peers_prints_a_table_of_configured_peers);
	tcase_add_test(tc, test_peers_without_peers_is_an_empty_list);
	tcase_add_test(tc, test_status_shows_a_finished_job);
	tcase_add_test(tc, test_status_shows_a_running_job_and_a_failure_reason);
	tcase_add_test(tc, test_status_of_an_unknown_job_exits_1);
	tcase_add_test(tc, test_cancel_stops_a_running_job);
	tcase_add_test(tc, test_cancel_of_an_unknown_job_exits_1);
	tcase_add_test(tc, test_submit_prints_the_job_id);
	tcase_add_test(tc, test_submit_detaches_so_the_job_outlives_the_client);
	tcase_add_test(tc, test_wait_prints_the_result_of_a_running_job_and_exits_0);
	tcase_add_test(tc, test_wait_on_a_failed_job_exits_1);
	tcase_add_test(tc, test_wait_on_an_unknown_job_exits_1);
	tcase_add_test(tc, test_interrupt_during_wait_leaves_the_job_alone);
	tcase_add_test(tc, test_wait_reconnects_and_waits_again);
	tcase_add_test(tc, test_wait_reports_a_job_lost_in_a_daemon_restart);
	tcase_add_test(tc, test_wait_on_a_terminal_shows_progress);
	tcase_add_test(tc, test_jobs_lists_queued_and_running_jobs);
	tcase_add_test(tc, test_submit_wait_prints_the_result_and_exits_0);
	tcase_add_test(tc, test_submit_wait_on_a_timeout_exits_1);
	tcase_add_test(tc, test_submit_rejected_by_the_daemon_exits_1);
	tcase_add_test(tc, test_interrupt_during_wait_cancels_the_job);
	tcase_add_test(tc, test_submit_wait_on_a_terminal_shows_progress);
	tcase_add_test(tc, test_watch_piped_prints_one_line_per_heartbeat);
	tcase_add_test(tc, test_watch_on_a_terminal_redraws_in_place);
	tcase_add_test(tc, test_auth_token_is_sent_first);
	tcase_add_test(tc, test_no_server_exits_2);
	tcase_add_test(tc, test_bad_usage_exits_2);
	tcase_add_test(tc, test_help_and_version_exit_0);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(ctl_suite)
