/*
 * heartbeatctl.c - the command-line client (interface.md section 8): its
 * options, the command table and the commands that send one request.
 *
 * The table drives --help, the argument checks made before connecting and
 * dispatch. Simple commands send one request and read its reply under a
 * timeout; "submit --wait" and "wait" (ctl_wait.c) and "watch"
 * (ctl_watch.c) run a small loop instead. ctl.h says where the rest lives.
 *
 * Exit status: 0 on success or DONE; 1 on FAIL, an ERR reply, a timeout or
 * a lost connection; 2 on bad usage or when no connection can be made.
 */

#include <errno.h>
#include <getopt.h>
#include <locale.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "proto.h"
#include "util.h"

#define CTL_DEFAULT_ADDR	"127.0.0.1:7070"
#define CTL_DEFAULT_PORT	"7070"
#define CTL_USAGE_COL		29	/* command synopses, then their help */

/* What a command's arguments must look like, checked before connecting. */
enum ctl_args { ARGS_NONE, ARGS_ID, ARGS_SUBMIT };

struct ctl_cmd {
	const char	*name;
	const char	*synopsis;		/* its arguments, for usage */
	const char	*help;
	int		 minargs, maxargs;	/* maxargs -1: any */
	enum ctl_args	 args;
	int		 wait;			/* takes --wait */
	int		(*run)(struct ctl_conn *, char **);
};

static int	 wait_mode;

static int	 cmd_ping(struct ctl_conn *, char **);
static int	 cmd_stats(struct ctl_conn *, char **);
static int	 cmd_peers(struct ctl_conn *, char **);
static int	 cmd_watch(struct ctl_conn *, char **);
static int	 cmd_jobs(struct ctl_conn *, char **);
static int	 cmd_submit(struct ctl_conn *, char **);
static int	 cmd_wait(struct ctl_conn *, char **);
static int	 cmd_status(struct ctl_conn *, char **);
static int	 cmd_cancel(struct ctl_conn *, char **);

/* In the order usage lists them. */
static const struct ctl_cmd ctl_cmds[] = {
	{ "ping", "", "check the daemon answers, show the round trip",
	    0, 0, ARGS_NONE, 0, cmd_ping },
	{ "stats", "", "the daemon's counters",
	    0, 0, ARGS_NONE, 0, cmd_stats },
	{ "peers", "", "the peer table",
	    0, 0, ARGS_NONE, 0, cmd_peers },
	{ "watch", "", "live heartbeats, pool and peers (Ctrl-C quits)",
	    0, 0, ARGS_NONE, 0, cmd_watch },
	{ "jobs", "", "the queued and running jobs",
	    0, 0, ARGS_NONE, 0, cmd_jobs },
	{ "submit", "KIND [key=value]... [--wait]",
	    "submit a detached job, print its id",
	    1, -1, ARGS_SUBMIT, 1, cmd_submit },
	{ "wait", "ID", "wait for any job's outcome (Ctrl-C: stop waiting)",
	    1, 1, ARGS_ID, 0, cmd_wait },
	{ "status", "ID", "the state of a job",
	    1, 1, ARGS_ID, 0, cmd_status },
	{ "cancel", "ID", "cancel a queued or running job",
	    1, 1, ARGS_ID, 0, cmd_cancel },
};

/* The --help text; the commands come from ctl_cmds. */
static void
usage(FILE *f)
{
	char syn[128];
	size_t i;

	fputs("usage: heartbeatctl [-H HOST:PORT] [-a TOKEN] [--json] COMMAND\n"
	    "commands:\n", f);
	for (i = 0; i < sizeof(ctl_cmds) / sizeof(ctl_cmds[0]); i++) {
		const struct ctl_cmd *verb = &ctl_cmds[i];

		snprintf(syn, sizeof(syn), "%s%s%s", verb->name,
		    *verb->synopsis != '\0' ? " " : "", verb->synopsis);
		if (strlen(syn) < CTL_USAGE_COL)
			fprintf(f, "  %-*s%s\n", CTL_USAGE_COL, syn, verb->help);
		else
			fprintf(f, "  %s\n  %-*s%s\n", syn, CTL_USAGE_COL, "",
			    verb->help);
	}
	fputs("options:\n"
	    "  -H, --host HOST:PORT   the daemon's work address (default $HEARTBEAT_HOST,\n"
	    "                         else " CTL_DEFAULT_ADDR "; IPv6 as [addr]:port)\n"
	    "  -a, --auth TOKEN       send AUTH TOKEN first (default $HEARTBEAT_TOKEN)\n"
	    "  -j, --json             JSON output for scripts\n"
	    "  -w, --wait             with submit: run the job attached and wait for its\n"
	    "                         outcome (Ctrl-C cancels the job)\n"
	    "  -h, --help             this text\n"
	    "  -V, --version          print the version\n"
	    "exit status: 0 success or DONE, 1 FAIL or error, 2 bad usage or no connection,\n"
	    "             128+N wait stopped by signal N (the job goes on)\n",
	    f);
}

/* A usage error on stderr, with a pointer to --help. */
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

/* peers_table's output on stdout. */
static void
put_stdout(const char *line, void *arg)
{
	(void)arg;
	puts(line);
}

/* PING, and the round trip. */
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

/* STATS as aligned fields or one object. */
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

/* PEERS as a table or {"peers":[...]}. */
static int
cmd_peers(struct ctl_conn *c, char **args)
{
	struct ctl_recs ps = { NULL, 0, 0 };
	struct json_obj o;
	size_t i;
	int status = CTL_EXIT_FAIL;

	(void)args;

	if (conn_send(c, "PEERS") == -1 || recs_read(c, "PEER", &ps) == -1)
		goto done;
	if (json_mode) {
		fputs("{\"peers\":[", stdout);
		for (i = 0; i < ps.n; i++) {
			if (i > 0)
				fputc(',', stdout);
			jo_begin(&o, stdout);
			jo_str(&o, "name", ps.v[i].key);
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
	recs_free(&ps);
	free(ps.v);
	return status;
}

/* STATUS ID: the job's fields. */
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
	job_print(id, &f);
	return CTL_EXIT_OK;
}

/* JOBS: see ctl_jobs.c. */
static int
cmd_jobs(struct ctl_conn *c, char **args)
{
	(void)args;

	return jobs_run(c);
}

/* WAIT ID: see ctl_wait.c. */
static int
cmd_wait(struct ctl_conn *c, char **args)
{
	return wait_id_run(c, args[0]);
}

/* CANCEL ID; the outcome goes to whoever waits for the job. */
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

/* Whether the user's SUBMIT arguments set detach= themselves. */
static const char *
submit_detach(char **args)
{
	int i;

	for (i = 1; args[i] != NULL; i++)
		if (strncmp(args[i], "detach=", 7) == 0)
			return args[i] + 7;
	return NULL;
}

/*
 * SUBMIT: detached (the job outlives the client), print the id; with
 * --wait, attached (Ctrl-C cancels it) and waited for. A detach= of the
 * user's own wins; --wait with detach=1 waits with WAIT instead.
 */
static int
cmd_submit(struct ctl_conn *c, char **args)
{
	char req[CTL_REQ_MAX + 1], id[24];
	const char *detach = submit_detach(args);
	struct json_obj o;
	size_t off;
	char *p;
	int i;

	off = (size_t)snprintf(req, sizeof(req), "SUBMIT %s", args[0]);
	for (i = 1; args[i] != NULL && off < sizeof(req); i++)
		off += (size_t)snprintf(req + off, sizeof(req) - off, " %s",
		    args[i]);
	if (detach == NULL && !wait_mode && off < sizeof(req))
		off += (size_t)snprintf(req + off, sizeof(req) - off,
		    " detach=1");
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
	if (detach != NULL && strcmp(detach, "0") != 0)
		return wait_id_run(c, id);
	return wait_run(c, id, args[0]);
}

/* WATCH: see ctl_watch.c. */
static int
cmd_watch(struct ctl_conn *c, char **args)
{
	(void)args;

	return watch_run(c);
}

/* Check a command's arguments before connecting; reports a usage error. */
static int
check_args(const struct ctl_cmd *verb, char **args, int nargs)
{
	uint64_t id;
	int i;

	if (nargs < verb->minargs || (verb->maxargs >= 0 && nargs > verb->maxargs)) {
		usage_error("%s: wrong number of arguments", verb->name);
		return -1;
	}
	if (wait_mode && !verb->wait) {
		usage_error("--wait goes with submit only");
		return -1;
	}
	if (verb->args == ARGS_ID) {
		if (parse_u64(args[0], 1, UINT64_MAX, &id) == -1) {
			usage_error("%s: bad job id '%s'", verb->name, args[0]);
			return -1;
		}
	}
	if (verb->args == ARGS_SUBMIT) {
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

/* Parse options, check the command, connect, authenticate, run it. */
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
	const struct ctl_cmd *verb = NULL;
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
			verb = &ctl_cmds[i];
	if (verb == NULL) {
		usage_error("unknown command '%s'", argv[optind]);
		return CTL_EXIT_USAGE;
	}
	if (check_args(verb, argv + optind + 1, argc - optind - 1) == -1)
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

	/* the commands Ctrl-C means something to take it from the start: a
	 * signal before the job's OK must not kill the client outright */
	if ((wait_mode || strcmp(verb->name, "wait") == 0 ||
	    strcmp(verb->name, "watch") == 0) && sig_install() == -1)
		return CTL_EXIT_FAIL;
	c = xmalloc(sizeof(*c));
	c->addr = host;
	c->token = token;
	if (conn_open(c) == -1) {
		free(c);
		return CTL_EXIT_USAGE;
	}
	if (token != NULL && conn_auth(c, token) == -1)
		status = CTL_EXIT_FAIL;
	else
		status = verb->run(c, argv + optind + 1);
	conn_close(c);
	free(c);
	if (fflush(stdout) == EOF && status == CTL_EXIT_OK) {
		fprintf(stderr, "heartbeatctl: write error: %s\n",
		    strerror(errno));
		status = CTL_EXIT_FAIL;
	}
	return status;
}
