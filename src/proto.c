/*
 * proto.c - pure parsing and formatting of the work protocol (interface.md
 * section 4) and the peer protocol (section 5).
 *
 * Parsing tokenises the caller's line in place: separators (runs of spaces
 * and tabs) become NULs and the request points into the line. Nothing is
 * allocated and nothing is written anywhere else, so work.c, peer.c and
 * heartbeatctl share this code and it is fuzzed directly.
 *
 * Formatting goes through a small bounded writer that always keeps room for
 * the final "\n": a reply that does not fit loses the end of a field, never
 * its line ending, and a quoted value that is cut still gets its closing
 * quote, so a reader never sees half a line or an open quote. Text from
 * outside (an echoed token, a job's detail) is escaped or sanitised so that
 * every reply stays exactly one line.
 *
 * Quoted values use the escapes \" \\ \n \r \t and \xHH (other control
 * bytes); proto_split_kv undoes all of them.
 */

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "liveness.h"
#include "proto.h"
#include "util.h"

#define PROTO_TOKENS_MAX (PROTO_ARGS_MAX + 3)	/* verb, kind, args, one extra */
#define PROTO_ECHO_MAX 32	/* bytes of a client's token echoed in an error */
#define PROTO_PEER_TOKENS 32	/* tokens in a peer line; more is an error */

static const char *const proto_verb_names[PROTO_VERB_COUNT] = {
	"PING", "AUTH", "SUBMIT", "CANCEL", "STATUS", "STATS", "PEERS",
	"WATCH", "UNWATCH", "HELP", "QUIT", "WAIT", "JOBS"
};

/* A bounded line writer: len never exceeds n - 2, keeping room for "\n". */
struct proto_out {
	char	*buf;
	size_t	 n;
	size_t	 len;
	int	 full;		/* something did not fit */
};

static int
proto_is_blank(char c)
{
	return c == ' ' || c == '\t';
}

char *
proto_token(char **s)
{
	char *p = *s, *tok;

	while (proto_is_blank(*p))
		*p++ = '\0';
	tok = p;
	while (*p != '\0' && !proto_is_blank(*p))
		p++;
	if (*p != '\0')
		*p++ = '\0';
	*s = p;
	return tok;
}

/*
 * Split s in place into at most max tokens; returns how many there were,
 * which may exceed max (the excess is counted but not stored).
 */
static size_t
proto_tokenize(char *s, char **tok, size_t max)
{
	size_t n = 0;
	char *t;

	for (;;) {
		t = proto_token(&s);
		if (*t == '\0')
			return n;
		if (n < max)
			tok[n] = t;
		n++;
	}
}

/* Remove one trailing CR. */
static void
proto_strip_cr(char *line)
{
	size_t len = strlen(line);

	if (len > 0 && line[len - 1] == '\r')
		line[len - 1] = '\0';
}

/* ASCII-only case-insensitive equality, independent of the locale. */
static int
proto_verb_eq(const char *a, const char *b)
{
	for (; *a != '\0' && *b != '\0'; a++, b++) {
		char ca = *a, cb = *b;

		if (ca >= 'a' && ca <= 'z')
			ca = (char)(ca - 'a' + 'A');
		if (cb >= 'a' && cb <= 'z')
			cb = (char)(cb - 'a' + 'A');
		if (ca != cb)
			return 0;
	}
	return *a == '\0' && *b == '\0';
}

/*
 * Copy a client's token for an error message: printable ASCII other than
 * '"' and '\\' kept, anything else as '?', at most PROTO_ECHO_MAX bytes
 * and "..." when cut.
 */
static void
proto_echo(char *dst, size_t n, const char *src)
{
	size_t i, o = 0;

	for (i = 0; i < PROTO_ECHO_MAX && src[i] != '\0'; i++) {
		unsigned char c = (unsigned char)src[i];

		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			if (o + 2 > n)
				break;
			dst[o++] = (char)c;
		} else {
			/* never echo raw bytes, and keep the quotes balanced */
			if (o + 5 > n)
				break;
			snprintf(dst + o, 5, "\\x%02x", c);
			o += 4;
		}
	}
	dst[o] = '\0';
	if (src[i] != '\0' && o + 4 <= n)
		memcpy(dst + o, "...", 4);
}

static int
proto_fail(struct proto_error *err, const char *code, const char *text,
    const char *token)
{
	err->code = code;
	if (token == NULL) {
		snprintf(err->text, sizeof(err->text), "%s", text);
	} else {
		char echo[PROTO_ECHO_MAX * 4 + 4];

		proto_echo(echo, sizeof(echo), token);
		snprintf(err->text, sizeof(err->text), "%s \"%s\"", text, echo);
	}
	return -1;
}

/* "CANCEL <id>" and "STATUS <id>": exactly one positive integer. */
static int
proto_parse_id(char **tok, size_t ntok, struct proto_request *req,
    struct proto_error *err)
{
	if (ntok != 2) {
		char usage[64];

		snprintf(usage, sizeof(usage), "usage: %s <id>",
		    proto_verb_names[req->verb]);
		return proto_fail(err, "bad-request", usage, NULL);
	}
	if (parse_u64(tok[1], 1, UINT64_MAX, &req->id) < 0)
		return proto_fail(err, "bad-arg", "id must be a positive integer",
		    NULL);
	return 0;
}

/* "SUBMIT <kind> [key=value]...": the kind and args are checked by job.c. */
static int
proto_parse_submit(char **tok, size_t ntok, struct proto_request *req,
    struct proto_error *err)
{
	size_t i;

	if (ntok < 2)
		return proto_fail(err, "bad-request",
		    "usage: SUBMIT <kind> [key=value]...", NULL);
	if (ntok - 2 > PROTO_ARGS_MAX) {
		char text[64];

		snprintf(text, sizeof(text), "too many arguments (at most %d)",
		    PROTO_ARGS_MAX);
		return proto_fail(err, "bad-arg", text, NULL);
	}
	req->kind = tok[1];
	for (i = 2; i < ntok; i++) {
		char *eq = strchr(tok[i], '=');

		if (eq == NULL || eq == tok[i])
			return proto_fail(err, "bad-arg", "expected key=value, got",
			    tok[i]);
		*eq = '\0';
		req->keys[req->nargs] = tok[i];
		req->vals[req->nargs] = eq + 1;
		req->nargs++;
	}
	return 0;
}

int
proto_parse_request(char *line, struct proto_request *req,
    struct proto_error *err)
{
	char *tok[PROTO_TOKENS_MAX];
	size_t ntok;
	int v;

	memset(req, 0, sizeof(*req));
	err->code = NULL;
	err->text[0] = '\0';
	proto_strip_cr(line);
	ntok = proto_tokenize(line, tok, PROTO_TOKENS_MAX);
	if (ntok == 0)
		return 1;

	for (v = 0; v < PROTO_VERB_COUNT; v++)
		if (proto_verb_eq(tok[0], proto_verb_names[v]))
			break;
	if (v == PROTO_VERB_COUNT)
		return proto_fail(err, "bad-request", "unknown verb", tok[0]);
	req->verb = (enum proto_verb)v;

	switch (req->verb) {
	case PROTO_AUTH:
		if (ntok != 2)
			return proto_fail(err, "bad-request",
			    "usage: AUTH <token>", NULL);
		req->token = tok[1];
		return 0;
	case PROTO_CANCEL:
	case PROTO_STATUS:
	case PROTO_WAIT:
		return proto_parse_id(tok, ntok, req, err);
	case PROTO_SUBMIT:
		return proto_parse_submit(tok, ntok, req, err);
	default:
		if (ntok != 1) {
			char text[64];

			snprintf(text, sizeof(text), "%s takes no arguments",
			    proto_verb_names[req->verb]);
			return proto_fail(err, "bad-request", text, NULL);
		}
		return 0;
	}
}

const char *
proto_verb_name(enum proto_verb verb)
{
	if ((unsigned)verb >= PROTO_VERB_COUNT)
		return "?";
	return proto_verb_names[verb];
}

/* Formatting. */

static void
proto_out_init(struct proto_out *o, char *buf, size_t n)
{
	o->buf = buf;
	o->n = n;
	o->len = 0;
	o->full = 0;
	if (n > 0)
		buf[0] = '\0';
}

/* Room left for content, keeping reserve bytes plus "\n" and NUL. */
static size_t
proto_out_room(const struct proto_out *o, size_t reserve)
{
	size_t limit;

	if (o->n < 2 + reserve)
		return 0;
	limit = o->n - 2 - reserve;
	return o->len < limit ? limit - o->len : 0;
}

/* Append s[0..len) whole or not at all (one escape unit, one number). */
static int
proto_out_unit(struct proto_out *o, const char *s, size_t len, size_t reserve)
{
	if (o->full || len > proto_out_room(o, reserve)) {
		o->full = 1;
		return -1;
	}
	memcpy(o->buf + o->len, s, len);
	o->len += len;
	return 0;
}

/* Append a string, as much of it as fits, with control bytes as spaces. */
static void
proto_out_str(struct proto_out *o, const char *s)
{
	size_t run, room;

	/* runs of ordinary bytes go in one memcpy; a control byte becomes a
	 * space (this is on every reply's path) */
	while (s != NULL && *s != '\0' && !o->full) {
		for (run = 0; (unsigned char)s[run] >= 0x20 && s[run] != 0x7f; run++)
			;
		if (run > 0) {
			room = proto_out_room(o, 0);
			if (run > room) {
				memcpy(o->buf + o->len, s, room);
				o->len += room;
				o->buf[o->len] = '\0';
				o->full = 1;
				return;
			}
			proto_out_unit(o, s, run, 0);
			s += run;
		} else {
			proto_out_unit(o, " ", 1, 0);
			s++;
		}
	}
}

/* Text from anywhere: bytes outside printable ASCII become \xHH. */
static void
proto_out_escaped(struct proto_out *o, const char *s)
{
	char unit[5];

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c >= 0x20 && c < 0x7f) {
			if (proto_out_unit(o, (const char *)s, 1, 0) < 0)
				return;
			continue;
		}
		snprintf(unit, sizeof(unit), "\\x%02x", c);
		if (proto_out_unit(o, unit, 4, 0) < 0)
			return;
	}
}

/* Decimal digits by hand: this runs for every OK and DONE line. */
static void
proto_out_u64(struct proto_out *o, uint64_t v)
{
	char num[24], *p = num + sizeof(num);

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	proto_out_unit(o, p, (size_t)(num + sizeof(num) - p), 0);
}

/*
 * Append prefix and "value", quoted and escaped: all of it, or the prefix,
 * the quotes and as many whole escape units as fit, or nothing.
 */
static void
proto_out_quoted(struct proto_out *o, const char *prefix, const char *s)
{
	char open[32];
	int plen = snprintf(open, sizeof(open), "%s\"", prefix);

	if (plen < 0 || (size_t)plen >= sizeof(open) ||
	    proto_out_unit(o, open, (size_t)plen, 1) < 0)
		return;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		char unit[5];
		size_t len = 2;

		unit[0] = '\\';
		switch (c) {
		case '"':  unit[1] = '"'; break;
		case '\\': unit[1] = '\\'; break;
		case '\n': unit[1] = 'n'; break;
		case '\r': unit[1] = 'r'; break;
		case '\t': unit[1] = 't'; break;
		default:
			if (c < 0x20 || c == 0x7f) {
				snprintf(unit, sizeof(unit), "\\x%02x", c);
				len = 4;
			} else {
				unit[0] = (char)c;
				len = 1;
			}
			break;
		}
		if (proto_out_unit(o, unit, len, 1) < 0)
			break;
	}
	/* the reserved byte */
	o->buf[o->len++] = '"';
}

/* Terminate the line: "\n" and NUL always fit when n >= 2. */
static int
proto_out_end(struct proto_out *o)
{
	if (o->n == 0)
		return 0;
	if (o->n == 1) {
		o->buf[0] = '\0';
		return 0;
	}
	o->buf[o->len++] = '\n';
	o->buf[o->len] = '\0';
	return (int)o->len;
}

/* " key=value" with a decimal value. */
static void
proto_out_kv(struct proto_out *o, const char *key, uint64_t v)
{
	proto_out_str(o, " ");
	proto_out_str(o, key);
	proto_out_str(o, "=");
	proto_out_u64(o, v);
}

int
proto_fmt_ok_id(char *buf, size_t n, uint64_t id)
{
	struct proto_out o;

	proto_out_init(&o, buf, n);
	proto_out_str(&o, "OK ");
	proto_out_u64(&o, id);
	return proto_out_end(&o);
}

int
proto_fmt_err(char *buf, size_t n, const char *code, const char *text)
{
	struct proto_out o;

	proto_out_init(&o, buf, n);
	proto_out_str(&o, "ERR ");
	proto_out_str(&o, code);
	if (text != NULL && *text != '\0') {
		proto_out_str(&o, " ");
		proto_out_escaped(&o, text);
	}
	return proto_out_end(&o);
}

int
proto_fmt_done(char *buf, size_t n, uint64_t id, const char *result,
    uint64_t queue_us, uint64_t run_us)
{
	struct proto_out o;

	proto_out_init(&o, buf, n);
	proto_out_str(&o, "DONE ");
	proto_out_u64(&o, id);
	proto_out_str(&o, " result=");
	proto_out_str(&o, result);
	proto_out_str(&o, " queue_us=");
	proto_out_u64(&o, queue_us);
	proto_out_str(&o, " run_us=");
	proto_out_u64(&o, run_us);
	return proto_out_end(&o);
}

int
proto_fmt_fail(char *buf, size_t n, uint64_t id, const char *reason,
    const char *detail)
{
	struct proto_out o;

	proto_out_init(&o, buf, n);
	proto_out_str(&o, "FAIL ");
	proto_out_u64(&o, id);
	proto_out_str(&o, " reason=");
	proto_out_str(&o, reason);
	if (detail != NULL)
		proto_out_quoted(&o, " detail=", detail);
	return proto_out_end(&o);
}

int
proto_fmt_job(char *buf, size_t n, const struct proto_job *j)
{
	struct proto_out o;

	proto_out_init(&o, buf, n);
	proto_out_str(&o, "JOB ");
	proto_out_u64(&o, j->id);
	proto_out_str(&o, " kind=");
	proto_out_str(&o, j->kind);
	proto_out_str(&o, " state=");
	proto_out_str(&o, j->state);
	proto_out_kv(&o, "progress", j->progress);
	proto_out_kv(&o, "queue_us", j->queue_us);
	proto_out_kv(&o, "run_us", j->run_us);
	proto_out_kv(&o, "detached", j->detached != 0);
	if (j->result != NULL) {
		proto_out_str(&o, " result=");
		proto_out_str(&o, j->result);
	}
	if (j->reason != NULL) {
		proto_out_str(&o, " reason=");
		proto_out_str(&o, j->reason);
	}
	if (j->detail != NULL)
		proto_out_quoted(&o, " detail=", j->detail);
	return proto_out_end(&o);
}

static const char *const proto_reject_codes[JOB_REJECT_COUNT] = {
	[JOB_REJECT_BUSY] = "busy",
	[JOB_REJECT_TOO_MANY_JOBS] = "too-many-jobs",
	[JOB_REJECT_SHUTTING_DOWN] = "shutting-down",
	[JOB_REJECT_UNAVAILABLE] = "unavailable",
};

const char *
proto_reject_code(enum job_reject r)
{
	return (unsigned)r < JOB_REJECT_COUNT ? proto_reject_codes[r] : "unknown";
}

static const char *const proto_help[] = {
	"PING",
	"AUTH <token>",
	"SUBMIT <kind> [key=value]...  kinds: sleep ms=N | spin ms=N | primes n=N | "
	    "sha256 rounds=N [seed=S]; any kind: timeout_ms=N detach=0|1",
	"CANCEL <id>",
	"STATUS <id>",
	"STATS",
	"PEERS",
	"WATCH",
	"UNWATCH",
	"HELP",
	"QUIT",
	"WAIT <id>",
	"JOBS",
};

const char *
proto_help_line(size_t i)
{
	return i < sizeof(proto_help) / sizeof(proto_help[0]) ? proto_help[i] : NULL;
}

int
proto_fmt_stats(char *buf, size_t n, const struct hb_status *s)
{
	struct proto_out o;

	proto_out_init(&o, buf, n);
	proto_out_str(&o, "STATS");
	proto_out_kv(&o, "uptime_s", s->uptime_ns / (HB_NS_PER_MS * 1000));
	proto_out_kv(&o, "threads", s->threads);
	proto_out_kv(&o, "busy", s->busy);
	proto_out_kv(&o, "queued", s->queued);
	proto_out_kv(&o, "submitted", status_submitted(s));
	proto_out_kv(&o, "completed", status_completed(s));
	proto_out_kv(&o, "failed", status_failed(s));
	proto_out_kv(&o, "rejected", status_rejected(s));
	proto_out_kv(&o, "connections", s->connections);
	proto_out_kv(&o, "heartbeats", s->heartbeats);
	proto_out_kv(&o, "lag_p50_us", s->lag_p50_ns / HB_NS_PER_US);
	proto_out_kv(&o, "lag_p99_us", s->lag_p99_ns / HB_NS_PER_US);
	proto_out_kv(&o, "lag_max_us", s->lag_max_ns / HB_NS_PER_US);
	proto_out_kv(&o, "peers", s->npeers);
	proto_out_kv(&o, "peers_up", s->peers_up);
	proto_out_kv(&o, "missed", s->missed);
	proto_out_kv(&o, "dropped", s->outcomes_dropped);
	proto_out_kv(&o, "draining", s->draining != 0);
	return proto_out_end(&o);
}

int
proto_fmt_peer(char *buf, size_t n, const struct peer_info *pi)
{
	struct proto_out o;

	proto_out_init(&o, buf, n);
	proto_out_str(&o, "PEER ");
	proto_out_str(&o, pi->name);
	proto_out_str(&o, " addr=");
	proto_out_str(&o, pi->addr);
	proto_out_str(&o, " state=");
	proto_out_str(&o, liveness_state_name(pi->state));
	proto_out_kv(&o, "rtt_us", pi->rtt_ns / HB_NS_PER_US);
	proto_out_str(&o, " last_ack_ms=");
	if (pi->last_ack_ms < 0)
		proto_out_str(&o, "-1");
	else
		proto_out_u64(&o, (uint64_t)pi->last_ack_ms);
	return proto_out_end(&o);
}

int
proto_fmt_heartbeat(char *buf, size_t n, const struct hb_status *s)
{
	struct proto_out o;

	proto_out_init(&o, buf, n);
	proto_out_str(&o, "HEARTBEAT");
	proto_out_kv(&o, "seq", s->heartbeats);
	proto_out_kv(&o, "lag_us", s->lag_ns / HB_NS_PER_US);
	proto_out_kv(&o, "busy", s->busy);
	proto_out_kv(&o, "queued", s->queued);
	proto_out_kv(&o, "peers_up", s->peers_up);
	proto_out_kv(&o, "peers", s->npeers);
	proto_out_kv(&o, "threads", s->threads);
	proto_out_kv(&o, "missed", s->missed);
	return proto_out_end(&o);
}

/* Peer protocol. */

/* Trailing HB fields: lag_us=N and missed=N are known, others skipped. */
static int
proto_parse_hb_fields(char **tok, size_t ntok, struct proto_peer_msg *msg)
{
	size_t i;

	for (i = 0; i < ntok; i++) {
		char *eq = strchr(tok[i], '=');

		if (eq == NULL || eq == tok[i])
			return -1;
		*eq = '\0';
		if (strcmp(tok[i], "lag_us") == 0) {
			if (parse_u64(eq + 1, 0, UINT64_MAX, &msg->lag_us) < 0)
				return -1;
			msg->has_lag = 1;
		} else if (strcmp(tok[i], "missed") == 0) {
			if (parse_u64(eq + 1, 0, UINT64_MAX, &msg->missed) < 0)
				return -1;
			msg->has_missed = 1;
		}
	}
	return 0;
}

int
proto_parse_peer(char *line, struct proto_peer_msg *msg)
{
	char *tok[PROTO_PEER_TOKENS];
	size_t ntok;

	memset(msg, 0, sizeof(*msg));
	proto_strip_cr(line);
	ntok = proto_tokenize(line, tok, PROTO_PEER_TOKENS);
	if (ntok == 0 || ntok > PROTO_PEER_TOKENS)
		return -1;

	if (strcmp(tok[0], "HELLO") == 0 || strcmp(tok[0], "WELCOME") == 0) {
		msg->type = tok[0][0] == 'H' ? PROTO_HELLO : PROTO_WELCOME;
		if (ntok != 3 || strcmp(tok[2], "1") != 0 ||
		    !name_valid(tok[1], strlen(tok[1])))
			return -1;
		msg->name = tok[1];
		return 0;
	}
	if (strcmp(tok[0], "HB") == 0)
		msg->type = PROTO_HB;
	else if (strcmp(tok[0], "ACK") == 0)
		msg->type = PROTO_ACK;
	else
		return -1;
	if (ntok < 3 || (msg->type == PROTO_ACK && ntok != 3))
		return -1;
	if (parse_u64(tok[1], 0, UINT64_MAX, &msg->seq) < 0 ||
	    parse_u64(tok[2], 0, UINT64_MAX, &msg->t) < 0)
		return -1;
	return proto_parse_hb_fields(tok + 3, ntok - 3, msg);
}

int
proto_fmt_hello(char *buf, size_t n, const char *verb, const char *name)
{
	struct proto_out o;

	proto_out_init(&o, buf, n);
	proto_out_str(&o, verb);
	proto_out_str(&o, " ");
	proto_out_str(&o, name);
	proto_out_str(&o, " 1");
	return proto_out_end(&o);
}

int
proto_fmt_hb(char *buf, size_t n, uint64_t seq, uint64_t t, uint64_t lag_us,
    uint64_t missed)
{
	struct proto_out o;

	proto_out_init(&o, buf, n);
	proto_out_str(&o, "HB ");
	proto_out_u64(&o, seq);
	proto_out_str(&o, " ");
	proto_out_u64(&o, t);
	proto_out_str(&o, " lag_us=");
	proto_out_u64(&o, lag_us);
	proto_out_str(&o, " missed=");
	proto_out_u64(&o, missed);
	return proto_out_end(&o);
}

int
proto_fmt_ack(char *buf, size_t n, uint64_t seq, uint64_t t)
{
	struct proto_out o;

	proto_out_init(&o, buf, n);
	proto_out_str(&o, "ACK ");
	proto_out_u64(&o, seq);
	proto_out_str(&o, " ");
	proto_out_u64(&o, t);
	return proto_out_end(&o);
}

/* Reply fields. */

static int
proto_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Undo the quoting of a value starting at the opening quote *r; the result
 * is written from w (w <= r, in place). Returns the first byte after the
 * token and NUL-terminates the value.
 */
static char *
proto_unquote(char *r, char *w)
{
	r++;
	while (*r != '\0' && *r != '"') {
		int hi, lo;

		if (*r != '\\' || r[1] == '\0') {
			*w++ = *r++;
			continue;
		}
		r++;
		switch (*r) {
		case 'n': *w++ = '\n'; r++; break;
		case 'r': *w++ = '\r'; r++; break;
		case 't': *w++ = '\t'; r++; break;
		case 'x':
			hi = proto_hexval(r[1]);
			lo = hi < 0 ? -1 : proto_hexval(r[2]);
			if (lo < 0 || (hi == 0 && lo == 0)) {
				/* not an escape we make: keep it as written */
				*w++ = '\\';
				*w++ = *r++;
				break;
			}
			*w++ = (char)(hi << 4 | lo);
			r += 3;
			break;
		default:
			*w++ = *r++;	/* \" \\ and anything else */
			break;
		}
	}
	if (*r == '"')
		r++;
	/* bytes glued after the closing quote belong to the value, as written */
	while (*r != '\0' && !proto_is_blank(*r))
		*w++ = *r++;
	if (*r != '\0')
		r++;
	*w = '\0';
	return r;
}

size_t
proto_split_kv(char *s, char **keys, char **vals, size_t max)
{
	size_t n = 0;

	while (n < max) {
		char *key, *eq;

		while (proto_is_blank(*s))
			s++;
		if (*s == '\0')
			break;
		key = s;
		while (*s != '\0' && *s != '=' && !proto_is_blank(*s))
			s++;
		keys[n] = key;
		if (*s != '=') {
			/* a bare token: empty value at its terminating NUL */
			if (*s != '\0')
				*s++ = '\0';
			vals[n] = key + strlen(key);
			n++;
			continue;
		}
		eq = s;
		*eq = '\0';
		vals[n] = eq + 1;
		if (eq[1] == '"') {
			s = proto_unquote(eq + 1, eq + 1);
		} else {
			s = eq + 1;
			while (*s != '\0' && !proto_is_blank(*s))
				s++;
			if (*s != '\0')
				*s++ = '\0';
		}
		n++;
	}
	return n;
}
