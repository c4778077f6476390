/*
 * harness.h - black-box helpers for the integration suites: spawn the real
 * heartbeatd (or any program) with its stderr and stdout captured, wait for
 * log lines, listening addresses, readiness and exit with deadlines; a
 * buffered line-oriented TCP client; a plain-socket HTTP GET; logfmt field
 * parsing.
 *
 * Functions named hb_expect_* fail the running Check test with a message
 * that shows what was received so far; the others return NULL or -1 and
 * leave the verdict to the caller. Every spawned child is killed when the
 * test process exits, and by PR_SET_PDEATHSIG if the test process is killed.
 */
#ifndef HB_HARNESS_H
#define HB_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Default deadlines, in milliseconds. */
#define HB_READY_MS	15000	/* a daemon's start, sanitizers included */
#define HB_REPLY_MS	5000	/* one reply line to a request */
#define HB_EXIT_MS	10000	/* exit after a signal */

#define HB_ADDR_MAX	128

/* A spawned process and everything it wrote. */
struct hb_proc {
	pid_t		 pid;
	int		 errfd;		/* read end of its stderr, -1 at EOF */
	int		 outfd;		/* read end of its stdout, -1 at EOF */
	char		*err;		/* all of stderr so far, with a NUL */
	size_t		 errlen;
	size_t		 errcap;
	char		*out;		/* all of stdout so far, with a NUL */
	size_t		 outlen;
	size_t		 outcap;
	int		 exited;	/* reaped: status is valid */
	int		 status;	/* waitpid status */
	size_t		 matched;	/* offset after the last line found */
	char		 work_addr[HB_ADDR_MAX];	/* from msg=listening */
	char		 peer_addr[HB_ADDR_MAX];
	char		 http_addr[HB_ADDR_MAX];
};

/* A line-buffered TCP client. */
struct hb_conn {
	int		 fd;
	int		 eof;		/* the peer closed (or reset) */
	char		*buf;		/* bytes received, not yet split */
	size_t		 len;
	size_t		 cap;
	char		**lines;	/* lines received, not yet consumed */
	size_t		 nlines;
	size_t		 linescap;
	char		 name[HB_ADDR_MAX];
};

/* What a child gets besides argv: environment and inherited sockets. */
struct hb_spawn_opts {
	const char *const *env;		/* "KEY=VALUE", NULL-terminated */
	const int	*fds;		/* become fds 3.. with LISTEN_FDS, */
	int		 nfds;		/* LISTEN_PID (the child's own pid) */
	const char	*fdnames;	/* and LISTEN_FDNAMES, if set */
};

/*
 * Processes. hb_daemon_path is $HEARTBEATD. hb_spawn_daemon runs it with
 * exactly the given NULL-terminated arguments; hb_start and hb_startv put
 * work_listen, peer_listen and http_listen on 127.0.0.1:0 first (later -s
 * win), wait for msg=ready, fill in the *_addr fields and fail the test if
 * the daemon does not come up.
 *
 * Log searches take a pattern of space-separated tokens, all of which the
 * line must carry (hb_line_has): key=value is a whole logfmt field (or a
 * JSON member), key= any value of key, a token without '=' a substring.
 * They start at offset from: 0 for the whole log, or hb_mark() taken before
 * the stimulus so that older lines do not count. After a match, matched is
 * the offset just past the line, to continue from there. hb_wait_line
 * returns NULL at the deadline or once the process has exited; the
 * hb_expect_* forms fail the test, quoting the log.
 */
const char	*hb_daemon_path(void);
struct hb_proc	*hb_spawnv(const char *path, char *const argv[]);
struct hb_proc	*hb_spawn_opts(const char *path, char *const argv[],
		    const struct hb_spawn_opts *);
struct hb_proc	*hb_spawn_daemon(const char *arg, ...);
struct hb_proc	*hb_start(const char *arg, ...);
struct hb_proc	*hb_startv(char *const args[]);
void		 hb_pump(struct hb_proc *, int timeout_ms);
size_t		 hb_mark(const struct hb_proc *);
char		*hb_wait_line(struct hb_proc *, size_t from, const char *pat,
		    int timeout_ms);
char		*hb_expect_log(struct hb_proc *, size_t from, const char *pat,
		    int timeout_ms);
void		 hb_expect_no_log(struct hb_proc *, size_t from,
		    const char *pat, int for_ms);
int		 hb_count_lines(const struct hb_proc *, size_t from,
		    const char *pat);
int		 hb_wait_ready(struct hb_proc *, int timeout_ms);
int		 hb_signal(struct hb_proc *, int sig);
int		 hb_wait_exit(struct hb_proc *, int timeout_ms);
void		 hb_expect_exit(struct hb_proc *, int code, int timeout_ms);
long		 hb_rss_kb(const struct hb_proc *);
void		 hb_dump(const struct hb_proc *, const char *why);
void		 hb_free(struct hb_proc *);

/*
 * Log lines and key=value fields. hb_field copies a field's value (quotes
 * and escapes removed; logfmt or JSON) and returns 0, or -1 if absent;
 * hb_num is the value as a non-negative integer, -1 if absent or not one;
 * hb_fields_in_order checks that the space-separated keys occur in order.
 */
int		 hb_line_has(const char *line, const char *pat);
int		 hb_field(const char *line, const char *key, char *out,
		    size_t outlen);
int		 hb_fields_in_order(const char *line, const char *keys);
int		 hb_field_u64(const char *line, const char *key, uint64_t *v);
long long	 hb_num(const char *line, const char *key);
long long	 hb_ts_us(const char *line);	/* ts= as microseconds */

/*
 * TCP clients and listeners. hb_recv takes the next line in order;
 * hb_await takes the first line starting with one of the '|'-separated
 * prefixes and leaves the others queued, in order, for later calls;
 * hb_reply takes the next line that is not a job outcome or a WATCH
 * heartbeat (DONE, FAIL, HEARTBEAT), which stay queued, and fails unless it
 * starts with prefix; hb_request sends a line and returns its hb_reply.
 */
struct hb_conn	*hb_connect(const char *addr);
struct hb_conn	*hb_try_connect(const char *addr);
int		 hb_send(struct hb_conn *, const char *data, size_t len);
int		 hb_sendf(struct hb_conn *, const char *fmt, ...)
		    __attribute__((format(printf, 2, 3)));
char		*hb_recv(struct hb_conn *, int timeout_ms);
char		*hb_expect(struct hb_conn *, const char *prefix,
		    int timeout_ms);
char		*hb_await(struct hb_conn *, const char *prefix, int timeout_ms);
char		*hb_reply(struct hb_conn *, const char *prefix,
		    int timeout_ms);
char		*hb_request(struct hb_conn *, const char *req,
		    const char *prefix);
void		 hb_expect_eof(struct hb_conn *, int timeout_ms);
void		 hb_close(struct hb_conn *);
/* Disconnect with a reset (SO_LINGER 0): the daemon sees the client gone,
 * not a half-close, and drops its attached jobs. */
void		 hb_reset(struct hb_conn *);
int		 hb_listen(char *addr, size_t addrlen);
struct hb_conn	*hb_accept(int lfd, int timeout_ms);

/* HTTP: GET over a fresh connection; the status, and the body (to free). */
int		 hb_http_get(const char *addr, const char *path, char **body,
		    int timeout_ms);

/* Files: a temp file removed at exit; an atomic rewrite (for SIGHUP). */
char		*hb_tmpfile(const char *contents);
char		*hb_tmppath(const char *tag);	/* a name only, for sockets */
void		 hb_write_file(const char *path, const char *contents);

/* Time: monotonic milliseconds; wall-clock microseconds, as in ts=. */
uint64_t	 hb_now_ms(void);
long long	 hb_wall_us(void);

#endif
