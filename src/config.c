/*
 * config.c - the keys of interface.md section 2: built-in defaults, the
 * config file, -s overrides, derived defaults and cross-key checks, the
 * effective config for -t and the diff a SIGHUP reload applies.
 *
 * One table describes every key (type, field, range, whether a change needs
 * a restart); parsing, printing and diffing all walk it. A bad value is
 * always an error naming file, line and key, never replaced by a default.
 *
 * The file goes through inih (ini_parse_stream) behind a reader that feeds it
 * one line at a time. The reader counts lines (the system libinih is built
 * without INI_HANDLER_LINENO), rejects [sections] and lines without '=' at
 * the line they occur on, strips comments, and hands inih a normalised
 * "key=value" line. That keeps the syntax exactly what heartbeatd.conf(5)
 * says: an indented line is not an inih continuation line, ':' is not a
 * second delimiter, and a value longer than inih's fixed line buffer (an
 * auth_token of 256 characters) reaches the handler whole, through
 * parse->longval, instead of being split into two lines.
 *
 * Errors go to a sink: config_read keeps the first and stops there, as the
 * daemon and a reload need; config_read_all (for -t) keeps going after a bad
 * line, -s or cross-key check and collects every error, each with a "did you
 * mean" for a mistyped key.
 */

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <ini.h>

#include "config.h"
#include "util.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

#define CONFIG_LINE_MAX 4096	/* longest line in the file, in bytes */
#define CONFIG_TOKEN_MAX 256	/* longest auth_token */
#define CONFIG_PATH_MAX 4096	/* state_dir, auth_token_file */
#define CONFIG_VALUE_MAX 512	/* a formatted value (print, diff) */
#define CONFIG_SUGGEST_LEN 64	/* longest unknown key given a suggestion */

enum config_type {
	CONFIG_NAME,		/* node_name */
	CONFIG_LISTEN,		/* host:port to bind */
	CONFIG_LISTEN_OPT,	/* the same, or empty = off */
	CONFIG_PEER,		/* [name@]host:port, repeatable */
	CONFIG_U32,
	CONFIG_POOL_MODE,
	CONFIG_TOKEN,		/* empty = none */
	CONFIG_PATH,		/* a file or directory; empty = none */
	CONFIG_LOG_FORMAT,
	CONFIG_LOG_LEVEL
};

struct config_key {
	const char		*name;
	enum config_type	 type;
	size_t			 off;
	uint32_t		 lo, hi;
	int			 restart;	/* a change needs a restart */
};

#define F(field) offsetof(struct config, field)
static const struct config_key config_keys[] = {
	{ "node_name", CONFIG_NAME, F(node_name), 0, 0, 0 },
	{ "work_listen", CONFIG_LISTEN, F(work_listen), 0, 0, 1 },
	{ "peer_listen", CONFIG_LISTEN, F(peer_listen), 0, 0, 1 },
	{ "http_listen", CONFIG_LISTEN_OPT, F(http_listen), 0, 0, 1 },
	{ "peer", CONFIG_PEER, 0, 0, 0, 0 },
	{ "heartbeat_interval_ms", CONFIG_U32, F(heartbeat_interval_ms),
	    1, 3600000, 0 },
	{ "peer_timeout_ms", CONFIG_U32, F(peer_timeout_ms), 1, 86400000, 0 },
	{ "threads", CONFIG_U32, F(threads), 1, CONFIG_THREADS_MAX, 1 },
	{ "worker_nice", CONFIG_U32, F(worker_nice), 0, 19, 1 },
	{ "pool_mode", CONFIG_POOL_MODE, F(pool_mode), 0, 0, 1 },
	{ "queue_max", CONFIG_U32, F(queue_max), 0, 1000000, 0 },
	{ "job_max_ms", CONFIG_U32, F(job_max_ms), 1, 86400000, 0 },
	{ "max_line", CONFIG_U32, F(max_line), 64, 1048576, 0 },
	{ "max_connections", CONFIG_U32, F(max_connections), 1, 1000000, 0 },
	{ "max_jobs_per_conn", CONFIG_U32, F(max_jobs_per_conn), 1, 1000000, 0 },
	{ "auth_token", CONFIG_TOKEN, F(auth_token), 0, 0, 0 },
	{ "log_format", CONFIG_LOG_FORMAT, F(log_format), 0, 0, 0 },
	{ "log_level", CONFIG_LOG_LEVEL, F(log_level), 0, 0, 0 },
	{ "heartbeat_log_ms", CONFIG_U32, F(heartbeat_log_ms), 0, 3600000, 0 },
	{ "shutdown_grace_ms", CONFIG_U32, F(shutdown_grace_ms), 0, 3600000, 0 },
	{ "http_max_connections", CONFIG_U32, F(http_max_connections), 1, 1000000, 0 },
	{ "http_timeout_ms", CONFIG_U32, F(http_timeout_ms), 1, 3600000, 0 },
	{ "state_dir", CONFIG_PATH, F(state_dir), 0, 0, 1 },
	{ "journal_sync_ms", CONFIG_U32, F(journal_sync_ms), 0, 3600000, 1 },
	{ "job_retention", CONFIG_U32, F(job_retention), 0, 10000000, 0 },
	{ "auth_token_file", CONFIG_PATH, F(auth_token_file), 0, 0, 0 },
	{ "auth_timeout_ms", CONFIG_U32, F(auth_timeout_ms), 1, 86400000, 0 },
	{ "idle_timeout_ms", CONFIG_U32, F(idle_timeout_ms), 0, 86400000, 0 },
	{ "timer_slack_ns", CONFIG_U32, F(timer_slack_ns), 1, 50000000, 0 },
	{ "watchdog_lag_ms", CONFIG_U32, F(watchdog_lag_ms), 1, 3600000, 0 },
	{ "peer_in_max", CONFIG_U32, F(peer_in_max), 1, 1000000, 0 },
	{ "hello_timeout_ms", CONFIG_U32, F(hello_timeout_ms), 1, 3600000, 0 },
};
#undef F
#define CONFIG_NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

_Static_assert(CONFIG_NKEYS <= sizeof(((struct config *)0)->seen_line) /
    sizeof(unsigned), "seen_line needs a slot per key");

/* Where errors go: the first to *first, every one to *all when collecting. */
struct config_sink {
	struct config_error	*first;		/* or NULL */
	struct config_errors	*all;		/* NULL: stop at the first */
	size_t			 n;		/* errors so far */
};

/* State of one file read, shared by the line reader and the inih handler. */
struct config_parse {
	struct config		*c;
	const char		*file;
	FILE			*fp;
	unsigned		 line;
	char			*raw;		/* getline buffer */
	size_t			 rawcap;
	const char		*longval;	/* value too long for inih */
	int			 read_errno;	/* why getline failed, or 0 */
	struct config_sink	*sink;
	size_t			 nerr_at_start;	/* sink->n before this file */
};

static void config_err(struct config_sink *, const char *, unsigned,
    const char *, const char *, ...) __attribute__((format(printf, 5, 6)));

/* Whether the sink wants no more errors: it keeps only the first. */
static int
config_sink_done(const struct config_sink *sink)
{
	return sink->all == NULL && sink->n > 0;
}

/*
 * Copy src into dst with bytes outside printable ASCII as \xNN, so a key or
 * value from the file cannot put control characters on a terminal.
 */
static void
config_escape(char *dst, size_t n, const char *src)
{
	size_t o = 0;
	unsigned char ch;

	for (; *src != '\0' && o + 1 < n; src++) {
		ch = (unsigned char)*src;
		if (ch >= ' ' && ch < 0x7f)
			dst[o++] = (char)ch;
		else if (o + 4 < n)
			o += (size_t)snprintf(dst + o, n - o, "\\x%02x", ch);
		else
			break;
	}
	dst[o] = '\0';
}

/* Record an error: the sink's first, and one more of all when collecting. */
static void
config_err(struct config_sink *sink, const char *file, unsigned line,
    const char *key, const char *fmt, ...)
{
	struct config_error e;
	struct config_errors *all = sink->all;
	char reason[sizeof(e.reason)];
	va_list ap;

	memset(&e, 0, sizeof(e));
	snprintf(e.file, sizeof(e.file), "%s", file);
	e.line = line;
	config_escape(e.key, sizeof(e.key), key);
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	config_escape(e.reason, sizeof(e.reason), reason);
	if (sink->n == 0 && sink->first != NULL)
		*sink->first = e;
	sink->n++;
	if (all == NULL)
		return;
	if (all->n == CONFIG_ERRORS_MAX) {
		all->more++;
		return;
	}
	all->v = xrealloc(all->v, (all->n + 1) * sizeof(*all->v));
	all->v[all->n++] = e;
}

static const struct config_key *
config_key_find(const char *name)
{
	size_t i;

	for (i = 0; i < CONFIG_NKEYS; i++)
		if (strcmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	return NULL;
}

/*
 * Edit distance between a and b, case folded, counting an insertion, a
 * deletion, a substitution or a swap of two neighbours as one (optimal
 * string alignment). Both are at most CONFIG_SUGGEST_LEN long.
 */
static size_t
config_distance(const char *a, const char *b)
{
	size_t d[CONFIG_SUGGEST_LEN + 1][CONFIG_SUGGEST_LEN + 1];
	size_t la = strlen(a), lb = strlen(b), i, j, cost, v;

	for (i = 0; i <= la; i++)
		d[i][0] = i;
	for (j = 0; j <= lb; j++)
		d[0][j] = j;
	for (i = 1; i <= la; i++) {
		for (j = 1; j <= lb; j++) {
			cost = tolower((unsigned char)a[i - 1]) !=
			    tolower((unsigned char)b[j - 1]);
			v = d[i - 1][j - 1] + cost;
			if (d[i - 1][j] + 1 < v)
				v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (i > 1 && j > 1 &&
			    tolower((unsigned char)a[i - 1]) ==
			    tolower((unsigned char)b[j - 2]) &&
			    tolower((unsigned char)a[i - 2]) ==
			    tolower((unsigned char)b[j - 1]) &&
			    d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[la][lb];
}

/*
 * The known key nearest to an unknown one, when it is close enough to be a
 * typo (1 edit, plus 1 per 6 characters of the known key, at most 3), else
 * NULL. Ties go to the key listed first.
 */
static const char *
config_key_nearest(const char *name)
{
	const char *best = NULL;
	size_t i, d, best_d = SIZE_MAX, limit;

	if (strlen(name) > CONFIG_SUGGEST_LEN)
		return NULL;
	for (i = 0; i < CONFIG_NKEYS; i++) {
		limit = 1 + strlen(config_keys[i].name) / 6;
		if (limit > 3)
			limit = 3;
		d = config_distance(name, config_keys[i].name);
		if (d <= limit && d < best_d) {
			best = config_keys[i].name;
			best_d = d;
		}
	}
	return best;
}

/* "unknown key", with the nearest known key when there is one. */
static void
config_err_unknown(struct config_sink *sink, const char *file, unsigned line,
    const char *key)
{
	const char *near = config_key_nearest(key);

	if (near != NULL)
		config_err(sink, file, line, key,
		    "unknown key; did you mean %s?", near);
	else
		config_err(sink, file, line, key, "unknown key");
}

static char **
config_str(struct config *c, const struct config_key *k)
{
	return (char **)(void *)((char *)c + k->off);
}

static uint32_t *
config_u32(struct config *c, const struct config_key *k)
{
	return (uint32_t *)(void *)((char *)c + k->off);
}

static const char *
config_cstr(const struct config *c, const struct config_key *k)
{
	return *(char *const *)(const void *)((const char *)c + k->off);
}

static uint32_t
config_cu32(const struct config *c, const struct config_key *k)
{
	return *(const uint32_t *)(const void *)((const char *)c + k->off);
}

static void
config_replace(char **field, const char *val)
{
	free(*field);
	*field = val != NULL ? xstrdup(val) : NULL;
}

/* A listen address must split and resolve, so a typo fails at startup. */
static int
config_check_listen(const char *val, char *reason, size_t rlen)
{
	char host[256];
	uint16_t port;
	struct sockaddr_storage ss;
	socklen_t sslen;

	if (addr_split(val, host, sizeof(host), &port) < 0) {
		snprintf(reason, rlen,
		    "expected host:port or [addr]:port with port 0..65535");
		return -1;
	}
	if (addr_resolve(val, 1, &ss, &sslen) < 0) {
		snprintf(reason, rlen, "cannot resolve host %.200s", host);
		return -1;
	}
	return 0;
}

/* Append "[name@]host:port" to the peers; names must be unique. */
static int
config_add_peer(struct config *c, const char *val, char *reason, size_t rlen)
{
	const char *at = strchr(val, '@'), *addr = at != NULL ? at + 1 : val;
	size_t namelen = at != NULL ? (size_t)(at - val) : strlen(val), i;
	char host[256];
	uint16_t port;
	struct config_peer *p;

	if (strchr(addr, '@') != NULL ||
	    addr_split(addr, host, sizeof(host), &port) < 0 || port == 0) {
		snprintf(reason, rlen,
		    "expected [name@]host:port with port 1..65535");
		return -1;
	}
	if (!name_valid(val, namelen)) {
		snprintf(reason, rlen, at != NULL ?
		    "expected a peer name of 1..%d visible characters without = or \"" :
		    "host:port is too long for a peer name (max %d); use name@host:port",
		    CONFIG_NAME_MAX);
		return -1;
	}
	for (i = 0; i < c->npeers; i++) {
		if (strlen(c->peers[i].name) == namelen &&
		    memcmp(c->peers[i].name, val, namelen) == 0) {
			snprintf(reason, rlen, "duplicate peer name %.*s",
			    (int)namelen, val);
			return -1;
		}
	}
	c->peers = xrealloc(c->peers, (c->npeers + 1) * sizeof(*c->peers));
	p = &c->peers[c->npeers++];
	p->name = xmalloc(namelen + 1);
	memcpy(p->name, val, namelen);
	p->name[namelen] = '\0';
	p->addr = xstrdup(addr);
	return 0;
}

/* Validate val for key k and store it; on error leave c alone. */
/* A token: 1..CONFIG_TOKEN_MAX visible characters, no spaces. */
static int
config_token_ok(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (s[i] <= ' ' || s[i] > '~' || i >= CONFIG_TOKEN_MAX)
			return 0;
	return i > 0;
}

static int
config_apply(struct config *c, const struct config_key *k, const char *val,
    char *reason, size_t rlen)
{
	uint64_t n;
	size_t i, len;
	enum pool_mode mode;
	enum log_format format;
	enum log_level level;

	switch (k->type) {
	case CONFIG_NAME:
		if (!name_valid(val, strlen(val))) {
			snprintf(reason, rlen, "expected a name of 1..%d "
			    "visible characters without = or \"",
			    CONFIG_NAME_MAX);
			return -1;
		}
		config_replace(config_str(c, k), val);
		return 0;
	case CONFIG_LISTEN_OPT:
		if (*val == '\0') {
			config_replace(config_str(c, k), "");
			return 0;
		}
		/* FALLTHROUGH */
	case CONFIG_LISTEN:
		if (config_check_listen(val, reason, rlen) < 0)
			return -1;
		config_replace(config_str(c, k), val);
		return 0;
	case CONFIG_PEER:
		return config_add_peer(c, val, reason, rlen);
	case CONFIG_U32:
		if (parse_u64(val, k->lo, k->hi, &n) < 0) {
			snprintf(reason, rlen, "expected an integer %u..%u",
			    k->lo, k->hi);
			return -1;
		}
		*config_u32(c, k) = (uint32_t)n;
		return 0;
	case CONFIG_POOL_MODE:
		if (strcmp(val, "threads") == 0)
			mode = POOL_MODE_THREADS;
		else if (strcmp(val, "inline") == 0)
			mode = POOL_MODE_INLINE;
		else {
			snprintf(reason, rlen, "expected threads or inline");
			return -1;
		}
		c->pool_mode = mode;
		return 0;
	case CONFIG_TOKEN:
		len = strlen(val);
		if (len > 0 && !config_token_ok(val)) {
			snprintf(reason, rlen, "expected 1..%d visible "
			    "characters without spaces, or nothing",
			    CONFIG_TOKEN_MAX);
			return -1;
		}
		config_replace(config_str(c, k), len > 0 ? val : NULL);
		return 0;
	case CONFIG_PATH:
		len = strlen(val);
		for (i = 0; i < len; i++)
			if ((unsigned char)val[i] < ' ' || val[i] == 0x7f)
				break;
		if (i < len || len >= CONFIG_PATH_MAX) {
			snprintf(reason, rlen, "expected a path of 1..%d printable "
			    "characters, or nothing", CONFIG_PATH_MAX - 1);
			return -1;
		}
		config_replace(config_str(c, k), len > 0 ? val : NULL);
		return 0;
	case CONFIG_LOG_FORMAT:
		if (log_format_parse(val, &format) < 0) {
			snprintf(reason, rlen, "expected logfmt or json");
			return -1;
		}
		c->log_format = format;
		return 0;
	case CONFIG_LOG_LEVEL:
		if (log_level_parse(val, &level) < 0) {
			snprintf(reason, rlen,
			    "expected debug, info, warn or error");
			return -1;
		}
		c->log_level = level;
		return 0;
	}
	return -1;
}

/* Apply one key=value from file:line (or --set:ordinal). */
static int
config_set_value(struct config *c, const char *key, const char *val,
    const char *file, unsigned line, struct config_sink *sink)
{
	const struct config_key *k;
	char reason[sizeof(((struct config_error *)0)->reason)];

	if ((k = config_key_find(key)) == NULL) {
		config_err_unknown(sink, file, line, key);
		return -1;
	}
	if (config_apply(c, k, val, reason, sizeof(reason)) < 0) {
		config_err(sink, file, line, key, "%s", reason);
		c->bad[k - config_keys] = 1;
		return -1;
	}
	snprintf(c->where[k - config_keys].file, sizeof(c->where[0].file), "%s", file);
	c->where[k - config_keys].line = line;
	if (strcmp(key, "peer_timeout_ms") == 0)
		c->peer_timeout_set = 1;
	return 0;
}

static char *
config_trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/*
 * The inih reader: one physical line per call, returned to inih as blank
 * (comments, errors) or as "key=value". A bad line is recorded in the sink
 * and read as blank, so the parse goes on to the next line unless the sink
 * keeps only the first error. Returns NULL at the end of the file, or once
 * the sink wants no more errors.
 */
static char *
config_reader(char *buf, int num, void *arg)
{
	struct config_parse *st = arg;
	const char *file = st->file;
	ssize_t n;
	size_t i, klen, vlen;
	char *s, *eq, *key, *val;

	st->longval = NULL;
	if (config_sink_done(st->sink))
		return NULL;
	if ((n = getline(&st->raw, &st->rawcap, st->fp)) < 0) {
		st->read_errno = ferror(st->fp) ? errno : 0;
		return NULL;
	}
	st->line++;
	snprintf(buf, (size_t)num, "\n");	/* until the line proves good */
	s = st->raw;
	if ((size_t)n > CONFIG_LINE_MAX) {
		config_err(st->sink, file, st->line, "",
		    "line longer than %d bytes", CONFIG_LINE_MAX);
		return buf;
	}
	if (strlen(s) != (size_t)n) {
		config_err(st->sink, file, st->line, "", "NUL byte in line");
		return buf;
	}
	if (st->line == 1 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
		s += 3;		/* a UTF-8 byte order mark */
	s = config_trim(s);
	if (*s == '[') {
		config_err(st->sink, file, st->line, "",
		    "sections are not supported");
		return buf;
	}
	if (*s == '\0' || *s == '#' || *s == ';')
		return buf;
	if ((eq = strchr(s, '=')) == NULL || eq == s) {
		config_err(st->sink, file, st->line, "",
		    "expected key = value");
		return buf;
	}
	*eq = '\0';
	key = config_trim(s);
	klen = strlen(key);
	for (i = 0; key[i] != '\0'; i++)
		if (!islower((unsigned char)key[i]) && key[i] != '_')
			break;
	if (key[i] != '\0' || klen + 3 > (size_t)num) {
		config_err_unknown(st->sink, file, st->line, key);
		return buf;
	}
	/*
	 * A # or ; after whitespace inside the value starts a comment (no
	 * valid value has spaces); one that begins the value is the value.
	 */
	val = config_trim(eq + 1);
	for (i = 1; val[0] != '\0' && val[i] != '\0'; i++) {
		if ((val[i] == '#' || val[i] == ';') &&
		    isspace((unsigned char)val[i - 1])) {
			val[i] = '\0';
			break;
		}
	}
	val = config_trim(val);
	vlen = strlen(val);
	if (klen + vlen + 3 > (size_t)num) {
		st->longval = val;
		vlen = 0;
	}
	snprintf(buf, (size_t)num, "%s=%.*s\n", key, (int)vlen, val);
	return buf;
}

/* The inih handler: one key=value line, already split. */
static int
config_handler(void *arg, const char *section, const char *name,
    const char *value)
{
	struct config_parse *st = arg;
	const struct config_key *k;

	if (config_sink_done(st->sink))
		return 1;
	if (*section != '\0') {	/* the reader lets none through */
		config_err(st->sink, st->file, st->line, "",
		    "sections are not supported");
		return 1;
	}
	if (st->longval != NULL)
		value = st->longval;
	if ((k = config_key_find(name)) != NULL && k->type != CONFIG_PEER) {
		unsigned *seen = &st->c->seen_line[k - config_keys];

		if (*seen != 0) {
			config_err(st->sink, st->file, st->line, name,
			    "duplicate key, first set at line %u", *seen);
			return 1;
		}
		*seen = st->line;
	}
	(void)config_set_value(st->c, name, value, st->file, st->line,
	    st->sink);
	return 1;
}

struct config *
config_new(void)
{
	struct config *c = xcalloc(1, sizeof(*c));
	char host[256];
	long ncpu;

	memset(host, 0, sizeof(host));
	if (gethostname(host, sizeof(host) - 1) < 0 ||
	    !name_valid(host, strlen(host)))
		snprintf(host, sizeof(host), "localhost");
	c->node_name = xstrdup(host);
	c->work_listen = xstrdup("127.0.0.1:7070");
	c->peer_listen = xstrdup("127.0.0.1:7071");
	c->http_listen = xstrdup("127.0.0.1:7072");
	c->heartbeat_interval_ms = 1000;
	c->peer_timeout_ms = 3000;
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	c->threads = ncpu < 1 ? 1 : ncpu > CONFIG_THREADS_MAX ?
	    CONFIG_THREADS_MAX : (uint32_t)ncpu;
	c->worker_nice = 10;
	c->pool_mode = POOL_MODE_THREADS;
	c->queue_max = 4096;
	c->job_max_ms = 600000;
	c->max_line = 4096;
	c->max_connections = 1024;
	c->max_jobs_per_conn = 1024;
	c->auth_token = NULL;
	c->log_format = LOG_FORMAT_LOGFMT;
	c->log_level = LOG_INFO;
	c->heartbeat_log_ms = 1000;
	c->shutdown_grace_ms = 10000;
	c->http_max_connections = 64;
	c->http_timeout_ms = 10000;
	c->journal_sync_ms = 0;
	c->job_retention = 10000;
	c->auth_timeout_ms = 10000;
	c->idle_timeout_ms = 0;
	c->timer_slack_ns = 1000;
	c->watchdog_lag_ms = 250;
	c->peer_in_max = 1024;
	c->hello_timeout_ms = 5000;
	return c;
}

void
config_free(struct config *c)
{
	size_t i;

	if (c == NULL)
		return;
	free(c->node_name);
	free(c->work_listen);
	free(c->peer_listen);
	free(c->http_listen);
	for (i = 0; i < c->npeers; i++) {
		free(c->peers[i].name);
		free(c->peers[i].addr);
	}
	free(c->peers);
	free(c->auth_token);
	free(c->state_dir);
	free(c->auth_token_file);
	free(c->auth_token_value);
	free(c);
}

/*
 * Read one file into c; -1 when it added an error to the sink. *unread is
 * set when the file could not be opened or read to its end.
 */
static int
config_load_file_sink(struct config *c, const char *path, int must_exist,
    struct config_sink *sink, int *unread)
{
	struct config_parse st;
	int rc;

	memset(&st, 0, sizeof(st));
	st.c = c;
	st.file = path;
	st.sink = sink;
	st.nerr_at_start = sink->n;
	if ((st.fp = fopen(path, "r")) == NULL) {
		if (!must_exist && errno == ENOENT)
			return 0;
		config_err(sink, path, 0, "", "cannot open: %s",
		    strerror(errno));
		*unread = 1;
		return -1;
	}
	memset(c->seen_line, 0, sizeof(c->seen_line));
	rc = ini_parse_stream(config_reader, &st, config_handler, &st);
	if (!config_sink_done(sink) && st.read_errno != 0) {
		config_err(sink, path, 0, "", "cannot read: %s",
		    strerror(st.read_errno));
		*unread = 1;
	} else if (!config_sink_done(sink) && rc != 0) {
		/* the reader lets through nothing inih rejects; be safe */
		config_err(sink, path, rc > 0 ? (unsigned)rc : 0, "",
		    "cannot parse");
	}
	free(st.raw);
	fclose(st.fp);
	return sink->n > st.nerr_at_start ? -1 : 0;
}

int
config_load_file(struct config *c, const char *path, int must_exist,
    struct config_error *err)
{
	struct config_sink sink = { err, NULL, 0 };
	int unread = 0;

	return config_load_file_sink(c, path, must_exist, &sink, &unread);
}

static int
config_set_sink(struct config *c, const char *keyval, unsigned ordinal,
    struct config_sink *sink)
{
	char *copy, *eq;
	int rc;

	if ((eq = strchr(keyval, '=')) == NULL) {
		config_err(sink, "--set", ordinal, keyval,
		    "expected key=value");
		return -1;
	}
	copy = xstrdup(keyval);
	copy[eq - keyval] = '\0';
	rc = config_set_value(c, config_trim(copy),
	    config_trim(copy + (eq - keyval) + 1), "--set", ordinal, sink);
	free(copy);
	return rc;
}

int
config_set(struct config *c, const char *keyval, unsigned ordinal,
    struct config_error *err)
{
	struct config_sink sink = { err, NULL, 0 };

	return config_set_sink(c, keyval, ordinal, &sink);
}

/* A cross-key error, reported where key was last set. */
static void __attribute__((format(printf, 4, 5)))
config_where_err(const struct config *c, struct config_sink *sink,
    const char *key, const char *fmt, ...)
{
	const struct config_where *w = &c->where[config_key_find(key) - config_keys];
	char reason[sizeof(((struct config_error *)0)->reason)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	config_err(sink, w->file[0] != '\0' ? w->file : "(defaults)", w->line, key,
	    "%s", reason);
}

/* Whether two listen addresses would bind the same port (port 0 never does). */
static int
config_listeners_clash(const char *a, const char *b)
{
	struct sockaddr_storage sa, sb;
	socklen_t la, lb;
	uint16_t pa, pb;
	char host[256];
	int wild_a, wild_b;

	if (*a == '\0' || *b == '\0' ||
	    addr_split(a, host, sizeof(host), &pa) < 0 ||
	    addr_split(b, host, sizeof(host), &pb) < 0 ||
	    pa == 0 || pa != pb ||
	    addr_resolve(a, 1, &sa, &la) < 0 || addr_resolve(b, 1, &sb, &lb) < 0)
		return 0;
	wild_a = sa.ss_family == AF_INET ?
	    ((struct sockaddr_in *)&sa)->sin_addr.s_addr == htonl(INADDR_ANY) :
	    IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&sa)->sin6_addr);
	wild_b = sb.ss_family == AF_INET ?
	    ((struct sockaddr_in *)&sb)->sin_addr.s_addr == htonl(INADDR_ANY) :
	    IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&sb)->sin6_addr);
	return wild_a || wild_b || (la == lb && memcmp(&sa, &sb, la) == 0);
}

/* Whether a value of key was rejected, so its field still holds the default. */
static int
config_key_bad(const struct config *c, const char *key)
{
	return c->bad[config_key_find(key) - config_keys];
}

/*
 * Two listeners on one address could never both start. A pair with a
 * rejected value is not compared: the default in its place would clash
 * for no reason the user wrote.
 */
static int
config_check_listeners(const struct config *c, struct config_sink *sink)
{
	const char *key[] = { "work_listen", "peer_listen", "http_listen" };
	const char *val[] = { c->work_listen, c->peer_listen, c->http_listen };
	size_t i, j;
	int rc = 0;

	for (i = 0; i < 3; i++)
		for (j = i + 1; j < 3; j++)
			if (!config_key_bad(c, key[i]) && !config_key_bad(c, key[j]) &&
			    config_listeners_clash(val[i], val[j])) {
				/* reported at the second key of the pair */
				config_where_err(c, sink, key[j], "same address as %s (%s)",
				    key[i], val[i]);
				rc = -1;
				if (config_sink_done(sink))
					return rc;
			}
	return rc;
}

/*
 * The token in force: auth_token, or the first line of auth_token_file
 * (a systemd credential, say), read afresh at start and on every reload.
 */
static int
config_read_token(struct config *c, struct config_sink *sink)
{
	char line[CONFIG_TOKEN_MAX + 2];
	FILE *f;

	free(c->auth_token_value);
	c->auth_token_value = NULL;
	if (c->auth_token_file == NULL) {
		if (c->auth_token != NULL)
			c->auth_token_value = xstrdup(c->auth_token);
		return 0;
	}
	if (c->auth_token != NULL) {
		config_where_err(c, sink, "auth_token_file",
		    "auth_token and auth_token_file are exclusive");
		return -1;
	}
	if ((f = fopen(c->auth_token_file, "re")) == NULL) {
		config_where_err(c, sink, "auth_token_file", "%s: %s",
		    c->auth_token_file, strerror(errno));
		return -1;
	}
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	line[strcspn(line, "\r\n")] = '\0';
	if (!config_token_ok(line)) {
		config_where_err(c, sink, "auth_token_file", "%s: the first line must be "
		    "a token of 1..%d visible characters without spaces",
		    c->auth_token_file, CONFIG_TOKEN_MAX);
		return -1;
	}
	c->auth_token_value = xstrdup(line);
	return 0;
}

/* Derived defaults and cross-key checks; -1 when one added an error. */
static int
config_finish_sink(struct config *c, struct config_sink *sink)
{
	size_t n = sink->n;

	if (!c->peer_timeout_set) {
		c->peer_timeout_ms = 3 * c->heartbeat_interval_ms;
	} else if (c->peer_timeout_ms < c->heartbeat_interval_ms &&
	    !config_key_bad(c, "heartbeat_interval_ms")) {
		config_where_err(c, sink, "peer_timeout_ms",
		    "must be at least heartbeat_interval_ms (%u)",
		    c->heartbeat_interval_ms);
		if (config_sink_done(sink))
			return -1;
	}
	if (config_check_listeners(c, sink) < 0 && config_sink_done(sink))
		return -1;
	(void)config_read_token(c, sink);
	return sink->n > n ? -1 : 0;
}

int
config_finish(struct config *c, struct config_error *err)
{
	struct config_sink sink = { err, NULL, 0 };

	return config_finish_sink(c, &sink);
}

const char *
config_default_path(void)
{
	return SYSCONFDIR "/heartbeatd/heartbeatd.conf";
}

/*
 * The whole read into a sink. Collecting, it goes on after errors: every -s
 * is still applied and checked, and the cross-key checks run unless the file
 * could not be read at all (its values are unknown then).
 */
static struct config *
config_read_sink(const char *path, char *const *sets, size_t nsets,
    struct config_sink *sink)
{
	struct config *c = config_new();
	const char *file = path != NULL ? path : config_default_path();
	size_t i;
	int unread = 0;

	if (config_load_file_sink(c, file, path != NULL, sink, &unread) < 0 &&
	    config_sink_done(sink))
		goto fail;
	for (i = 0; i < nsets; i++)
		if (config_set_sink(c, sets[i], (unsigned)(i + 1), sink) < 0 &&
		    config_sink_done(sink))
			goto fail;
	if (!unread)
		(void)config_finish_sink(c, sink);
	if (sink->n > 0)
		goto fail;
	return c;
fail:
	config_free(c);
	return NULL;
}

struct config *
config_read(const char *path, char *const *sets, size_t nsets,
    struct config_error *err)
{
	struct config_sink sink = { err, NULL, 0 };

	if (err != NULL)
		memset(err, 0, sizeof(*err));
	return config_read_sink(path, sets, nsets, &sink);
}

struct config *
config_read_all(const char *path, char *const *sets, size_t nsets,
    struct config_errors *errs)
{
	struct config_sink sink = { NULL, errs, 0 };

	memset(errs, 0, sizeof(*errs));
	return config_read_sink(path, sets, nsets, &sink);
}

void
config_errors_free(struct config_errors *errs)
{
	free(errs->v);
	memset(errs, 0, sizeof(*errs));
}

void
config_error_format(const struct config_error *err, char *buf, size_t n)
{
	char line[16] = "";

	if (err->line > 0)
		snprintf(line, sizeof(line), ":%u", err->line);
	snprintf(buf, n, "%s%s: %s%s%s", err->file, line, err->key,
	    err->key[0] != '\0' ? ": " : "", err->reason);
}

void
config_error_log(const struct config_error *err, const char *msg)
{
	struct log_line *l;
	char text[sizeof(err->file) + sizeof(err->key) + sizeof(err->reason) + 32];

	config_error_format(err, text, sizeof(text));
	l = log_begin(LOG_ERROR, msg);
	log_str(l, "file", err->file);
	log_uint(l, "line", err->line);
	log_str(l, "key", err->key);
	log_str(l, "reason", err->reason);
	log_str(l, "error", text);
	log_end(l);
}

/* The value of a non-peer key as the file would spell it. */
static void
config_value(const struct config *c, const struct config_key *k, char *buf,
    size_t n)
{
	const char *s;

	switch (k->type) {
	case CONFIG_NAME:
	case CONFIG_LISTEN:
	case CONFIG_LISTEN_OPT:
	case CONFIG_TOKEN:
	case CONFIG_PATH:
		s = config_cstr(c, k);
		snprintf(buf, n, "%s", s != NULL ? s : "");
		return;
	case CONFIG_U32:
		snprintf(buf, n, "%u", config_cu32(c, k));
		return;
	case CONFIG_POOL_MODE:
		snprintf(buf, n, "%s", c->pool_mode == POOL_MODE_INLINE ?
		    "inline" : "threads");
		return;
	case CONFIG_LOG_FORMAT:
		snprintf(buf, n, "%s", log_format_name(c->log_format));
		return;
	case CONFIG_LOG_LEVEL:
		snprintf(buf, n, "%s", log_level_name(c->log_level));
		return;
	case CONFIG_PEER:
		break;
	}
	buf[0] = '\0';
}

void
config_print(const struct config *c, FILE *out)
{
	char val[CONFIG_VALUE_MAX];
	size_t i, j;

	fprintf(out, "# heartbeatd effective configuration\n");
	for (i = 0; i < CONFIG_NKEYS; i++) {
		if (config_keys[i].type == CONFIG_PEER) {
			if (c->npeers == 0)
				fprintf(out, "# no peer\n");
			for (j = 0; j < c->npeers; j++)
				fprintf(out, "peer = %s@%s\n",
				    c->peers[j].name, c->peers[j].addr);
			continue;
		}
		config_value(c, &config_keys[i], val, sizeof(val));
		fprintf(out, "%s =%s%s\n", config_keys[i].name,
		    val[0] != '\0' ? " " : "", val);
	}
}

/* Same peers (name and address), in any order. */
static int
config_peers_equal(const struct config *a, const struct config *b)
{
	size_t i, j;

	if (a->npeers != b->npeers)
		return 0;
	for (i = 0; i < a->npeers; i++) {
		for (j = 0; j < b->npeers; j++)
			if (strcmp(a->peers[i].name, b->peers[j].name) == 0 &&
			    strcmp(a->peers[i].addr, b->peers[j].addr) == 0)
				break;
		if (j == b->npeers)
			return 0;
	}
	return 1;
}

/* Append ",name" (or "name") to a list if it fits whole. */
static void
config_list_add(char *buf, size_t n, const char *name)
{
	size_t len;

	if (n == 0)
		return;
	len = strlen(buf);
	if (len + (len > 0) + strlen(name) + 1 > n)
		return;
	snprintf(buf + len, n - len, "%s%s", len > 0 ? "," : "", name);
}

void
config_diff(const struct config *old, const struct config *new,
    char *applied, size_t applied_len, char *restart, size_t restart_len)
{
	char a[CONFIG_VALUE_MAX], b[CONFIG_VALUE_MAX];
	size_t i;
	int same;

	if (applied_len > 0)
		applied[0] = '\0';
	if (restart_len > 0)
		restart[0] = '\0';
	for (i = 0; i < CONFIG_NKEYS; i++) {
		const struct config_key *k = &config_keys[i];

		if (k->type == CONFIG_PEER)
			same = config_peers_equal(old, new);
		else {
			config_value(old, k, a, sizeof(a));
			config_value(new, k, b, sizeof(b));
			same = strcmp(a, b) == 0;
		}
		if (same)
			continue;
		if (k->restart)
			config_list_add(restart, restart_len, k->name);
		else
			config_list_add(applied, applied_len, k->name);
	}
}
