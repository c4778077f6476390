/*
 * ctl.h - what the parts of heartbeatctl share (interface.md section 8).
 *
 * The client is split by concern, as chronyc and redis-cli are:
 *
 *   heartbeatctl.c  options, the command table (usage, checks, dispatch)
 *                   and the one-request commands
 *   ctl_conn.c      the connection: connect with a timeout, send, read
 *                   lines, check replies and report ERR, reply fields
 *   ctl_out.c       output: JSON, aligned fields, human units, errors
 *   ctl_term.c      the terminal: size, UTF-8, drawing, progress line,
 *                   signals through a self-pipe
 *   ctl_jobs.c      the jobs table and one job's status, for people
 *   ctl_wait.c      submit --wait and wait ID: the outcome, with a
 *                   progress line; wait ID survives a daemon restart
 *   ctl_watch.c     the peers table and the watch view
 *
 * Only proto, backoff and util come from libheartbeat.a; no libevent.
 */
#ifndef HB_CTL_H
#define HB_CTL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CTL_EXIT_OK		0
#define CTL_EXIT_FAIL		1
#define CTL_EXIT_USAGE		2

#define CTL_TIMEOUT_MS		10000	/* connect, and each reply */
#define CTL_BUF_MAX		65536	/* longest reply line we accept */
#define CTL_REQ_MAX		4096	/* the daemon's default max_line */
#define CTL_FIELDS_MAX		64	/* key=value fields in one reply */
#define CTL_PENDING_MAX		8	/* outstanding requests in a loop */

enum ctl_read { CTL_LINE, CTL_TIMEOUT, CTL_EOF, CTL_SIGNAL, CTL_ERROR };

/* What an outstanding request in a loop was, to match its reply. */
enum ctl_req { REQ_STATUS, REQ_CANCEL, REQ_PEERS, REQ_WAIT };

struct ctl_conn {
	int		 fd;
	const char	*addr;		/* as given, for messages */
	const char	*token;		/* for AUTH, again after a redial */
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

/* A tiny FIFO of request kinds, oldest first. */
struct ctl_pending {
	enum ctl_req	 req[CTL_PENDING_MAX];
	size_t		 head, n;
};

/*
 * One "VERB <key> k=v ..." line of a listing (PEER, JOB), owned: line
 * holds the storage key and fields point into.
 */
struct ctl_rec {
	char			*line;
	const char		*key;		/* peer name, job id */
	struct ctl_fields	 f;
};

struct ctl_recs {
	struct ctl_rec	*v;
	size_t		 n, cap;
};

struct json_obj {
	FILE	*f;
	int	 n;
};

/* ctl_conn.c */
int		 conn_nonblock(int);
uint64_t	 deadline_in(unsigned);
int		 conn_open(struct ctl_conn *);
int		 conn_redial(struct ctl_conn *, unsigned);
void		 conn_close(struct ctl_conn *);
int		 conn_send(struct ctl_conn *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
int		 conn_send_quiet(struct ctl_conn *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
enum ctl_read	 conn_readline(struct ctl_conn *, uint64_t, char **);
void		 conn_read_error(const struct ctl_conn *, enum ctl_read);
int		 conn_reply(struct ctl_conn *, char **);
char		*conn_request(struct ctl_conn *, const char *, const char *);
int		 conn_auth(struct ctl_conn *, const char *);
char		*reply_expect(char *, const char *);
void		 pending_push(struct ctl_pending *, enum ctl_req);
int		 pending_pop(struct ctl_pending *, enum ctl_req *);
void		 fields_split(struct ctl_fields *, char *);
void		 recs_add(struct ctl_recs *, const char *);
int		 recs_read(struct ctl_conn *, const char *, struct ctl_recs *);
void		 recs_clear(struct ctl_recs *);
void		 recs_free(struct ctl_recs *);
char		*fields_get(const struct ctl_fields *, const char *);
uint64_t	 fields_u64(const struct ctl_fields *, const char *);

/* ctl_out.c */
extern int	 json_mode;	/* --json: set once by main */
void		 jo_begin(struct json_obj *, FILE *);
void		 jo_str(struct json_obj *, const char *, const char *);
void		 jo_val(struct json_obj *, const char *, const char *);
void		 jo_u64(struct json_obj *, const char *, uint64_t);
void		 jo_fields(struct json_obj *, const struct ctl_fields *);
void		 jo_end(struct json_obj *);
void		 ctl_report(const char *, int, const char *);
void		 ctl_error(const char *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
const char	*fmt_us(char *, size_t, const char *);
const char	*fmt_us_num(char *, size_t, uint64_t);
const char	*fmt_ms(char *, size_t, const char *);
void		 text_sanitize(char *);
void		 print_fields(const char *, const char *,
		    const struct ctl_fields *);

/* ctl_term.c */
void		 term_size(int, int *, int *);
int		 term_utf8(void);
void		 term_put(FILE *, const char *, int);
void		 progress_shown(void);
void		 progress_clear(void);
int		 sig_install(void);
int		 sig_fd(void);
int		 sig_take_stop(void);
int		 sig_take_winch(void);

/* ctl_jobs.c */
int		 jobs_run(struct ctl_conn *);
void		 job_print(const char *, const struct ctl_fields *);

/* ctl_wait.c */
int		 wait_run(struct ctl_conn *, const char *, const char *);
int		 wait_id_run(struct ctl_conn *, const char *);

/* ctl_watch.c */
void		 peers_table(const struct ctl_recs *, size_t, int,
		    void (*)(const char *, void *), void *);
int		 watch_run(struct ctl_conn *);

#endif
