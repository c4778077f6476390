/*
 * proto.h - pure parsing and formatting of the work protocol (interface.md
 * section 4) and the peer protocol (section 5). No I/O, no allocation: lines
 * are tokenised in place, so this is unit-tested and fuzzed directly.
 */
#ifndef HB_PROTO_H
#define HB_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "job.h"
#include "status.h"

#define PROTO_ARGS_MAX 32	/* key=value arguments to one SUBMIT */

enum proto_verb {
	PROTO_PING, PROTO_AUTH, PROTO_SUBMIT, PROTO_CANCEL, PROTO_STATUS,
	PROTO_STATS, PROTO_PEERS, PROTO_WATCH, PROTO_UNWATCH, PROTO_HELP,
	PROTO_QUIT, PROTO_WAIT, PROTO_JOBS, PROTO_VERB_COUNT
};

struct proto_request {
	enum proto_verb verb;
	const char *token;	/* AUTH */
	uint64_t id;		/* CANCEL, STATUS, WAIT */
	const char *kind;	/* SUBMIT (not yet checked against the kinds) */
	size_t nargs;		/* SUBMIT */
	char *keys[PROTO_ARGS_MAX];
	char *vals[PROTO_ARGS_MAX];
};

/* A parse error: the wire code ("bad-request", "bad-arg") and human text. */
struct proto_error {
	const char *code;
	char text[160];
};

/*
 * Split the first token off *s in place, as the parsers below do: blanks
 * (spaces, tabs) before it become NULs, as does the one blank after it, and
 * *s is left just past that blank, so the rest of the line stays as written
 * (for free text such as an ERR message). Returns the token; "" when the
 * line holds no more.
 */
char *proto_token(char **s);

/*
 * Parse one request line in place (line ending already removed; a trailing
 * CR is removed here). Tokens are separated by spaces or tabs. Returns 0 for
 * a request, 1 for a blank line (no reply), -1 with *err filled in.
 */
int proto_parse_request(char *line, struct proto_request *req, struct proto_error *err);

const char *proto_verb_name(enum proto_verb verb);

/* Reply formatting: each writes one whole line ending in "\n" into buf and
 * returns its length (truncated to n - 1 like snprintf). */
int proto_fmt_ok_id(char *buf, size_t n, uint64_t id);
int proto_fmt_err(char *buf, size_t n, const char *code, const char *text);
int proto_fmt_done(char *buf, size_t n, uint64_t id, const char *result,
    uint64_t queue_us, uint64_t run_us);
/* detail may be NULL; it is quoted and escaped. */
int proto_fmt_fail(char *buf, size_t n, uint64_t id, const char *reason, const char *detail);
/* A job as STATUS and JOBS show it. */
struct proto_job {
	uint64_t id;
	const char *kind;
	const char *state;	/* queued, running, done, failed */
	unsigned progress;
	uint64_t queue_us, run_us;
	int detached;
	const char *result;	/* state done */
	const char *reason;	/* state failed: cancelled, timeout, shutdown, error */
	const char *detail;	/* with reason error, or NULL */
};
int proto_fmt_job(char *buf, size_t n, const struct proto_job *j);

/* The wire code of a refused SUBMIT ("busy", "too-many-jobs", ...); also
 * the reason label of heartbeatd_jobs_rejected_total. */
const char *proto_reject_code(enum job_reject r);

/* The HELP reply: line i (no "\n"), NULL past the last; END follows. */
const char *proto_help_line(size_t i);

/* Report lines, each formatted from the one status snapshot. */
int proto_fmt_stats(char *buf, size_t n, const struct hb_status *s);
int proto_fmt_peer(char *buf, size_t n, const struct peer_info *pi);
/* The WATCH line of one tick. */
int proto_fmt_heartbeat(char *buf, size_t n, const struct hb_status *s);

/* Peer protocol messages. */
enum proto_peer_type { PROTO_HELLO, PROTO_WELCOME, PROTO_HB, PROTO_ACK };

struct proto_peer_msg {
	enum proto_peer_type type;
	const char *name;	/* HELLO, WELCOME */
	uint64_t seq, t;	/* HB, ACK */
	int has_lag;		/* HB carried lag_us=N */
	uint64_t lag_us;	/* how late the sender's tick fired */
	int has_missed;		/* HB carried missed=N */
	uint64_t missed;	/* ticks the sender missed since its last HB */
};

/*
 * Parse one peer-protocol line in place. HELLO/WELCOME need a valid name
 * (name_valid in util.h) and version 1; HB/ACK need two numbers; HB may
 * carry trailing key=value fields (lag_us and missed are parsed, unknown
 * ones ignored). Verbs are exact (upper case). Returns 0 or -1.
 */
int proto_parse_peer(char *line, struct proto_peer_msg *msg);

int proto_fmt_hello(char *buf, size_t n, const char *verb, const char *name); /* HELLO or WELCOME */
int proto_fmt_hb(char *buf, size_t n, uint64_t seq, uint64_t t, uint64_t lag_us,
    uint64_t missed);
int proto_fmt_ack(char *buf, size_t n, uint64_t seq, uint64_t t);

/*
 * Split a reply's "key=value" fields in place (values may be "quoted" with
 * \" and \\ escapes, which are undone, as are the \n \r \t and \xHH that
 * proto_fmt_fail writes for control bytes). Tokens without '=' get an empty
 * value with key = the token. Returns the count stored (at most max).
 */
size_t proto_split_kv(char *s, char **keys, char **vals, size_t max);

#endif
