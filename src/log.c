/*
 * log.c - one event per line, logfmt or JSON (interface.md section 3).
 *
 * Each thread builds its line in a thread-local buffer of LOG_LINE_MAX bytes
 * and hands it to write(2) in one call, under a mutex so that lines longer
 * than PIPE_BUF from different threads never interleave. Room for the line
 * ending (and the closing brace in JSON) is always reserved, and values are
 * appended one escape unit at a time, so a line that overflows loses the end
 * of a value and the fields after it but stays well-formed: quotes closed,
 * JSON parseable, "\n" last. JSON strings are valid UTF-8 for any input:
 * control bytes become \u00XX and bytes that are not valid UTF-8 become
 * \ufffd. Format, threshold and fd are atomics, read by every thread and set
 * by the loop thread at startup and on SIGHUP.
 */

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sys/stat.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

struct log_line {
	char		 buf[LOG_LINE_MAX];
	size_t		 len;
	enum log_format	 format;
	int		 active;	/* between log_begin and log_end */
	int		 full;		/* a field was cut: drop the rest */
};

static _Thread_local struct log_line log_tl;
static _Thread_local char log_scratch[LOG_LINE_MAX];

static atomic_int log_cur_format = LOG_FORMAT_LOGFMT;
static atomic_int log_cur_prefix;	/* "<N>" syslog priority first: journald */
static atomic_int log_cur_level = LOG_INFO;
static atomic_int log_cur_fd = 2;
static pthread_mutex_t log_write_mtx = PTHREAD_MUTEX_INITIALIZER;

static const char *const log_level_names[] = { "debug", "info", "warn", "error" };
static const char *const log_format_names[] = { "logfmt", "json" };

#define LOG_NLEVELS (sizeof(log_level_names) / sizeof(log_level_names[0]))
#define LOG_NFORMATS (sizeof(log_format_names) / sizeof(log_format_names[0]))
#define LOG_UNIT_MAX 8		/* longest escape unit: "\ufffd" or "\u00XX" */

void
log_setup(enum log_format format, enum log_level level)
{
	atomic_store(&log_cur_format, (int)format);
	atomic_store(&log_cur_level, (int)level);
}

void
log_set_fd(int fd)
{
	atomic_store(&log_cur_fd, fd);
}

void
log_detect_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	int fd = atomic_load(&log_cur_fd);

	/* JOURNAL_STREAM=dev:ino names the stream journald reads; a line
	 * starting <N> there gets priority N (SyslogLevelPrefix=, on by
	 * default) */
	atomic_store(&log_cur_prefix, env != NULL &&
	    sscanf(env, "%llu:%llu", &dev, &ino) == 2 && fstat(fd, &st) == 0 &&
	    (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino);
}

int
log_enabled(enum log_level level)
{
	return (int)level >= atomic_load_explicit(&log_cur_level,
	    memory_order_relaxed);
}

/* The index of s in names[n], or -1. */
static int
log_name_index(const char *const *names, size_t n, const char *s)
{
	size_t i;

	for (i = 0; s != NULL && i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

int
log_level_parse(const char *s, enum log_level *out)
{
	int i = log_name_index(log_level_names, LOG_NLEVELS, s);

	if (i < 0)
		return -1;
	*out = (enum log_level)i;
	return 0;
}

const char *
log_level_name(enum log_level level)
{
	if ((size_t)level >= LOG_NLEVELS)
		return "unknown";
	return log_level_names[level];
}

int
log_format_parse(const char *s, enum log_format *out)
{
	int i = log_name_index(log_format_names, LOG_NFORMATS, s);

	if (i < 0)
		return -1;
	*out = (enum log_format)i;
	return 0;
}

const char *
log_format_name(enum log_format format)
{
	if ((size_t)format >= LOG_NFORMATS)
		return "unknown";
	return log_format_names[format];
}

/* Bytes still free, keeping room for the line's closing "}\n" or "\n". */
static size_t
log_room(const struct log_line *l)
{
	size_t tail = l->format == LOG_FORMAT_JSON ? 2 : 1;

	return LOG_LINE_MAX - tail - l->len;
}

/* Append n raw bytes if they fit with reserve bytes to spare. */
static int
log_put(struct log_line *l, const char *s, size_t n, size_t reserve)
{
	if (n + reserve > log_room(l))
		return -1;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
	return 0;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if it is invalid. */
static size_t
utf8_len(const unsigned char *p, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4;
	else
		return 0;	/* continuation byte, overlong lead, > U+10FFFF */
	/* the second byte's range rules out overlongs and surrogates */
	if (p[0] == 0xe0)
		lo = 0xa0;
	else if (p[0] == 0xed)
		hi = 0x9f;
	else if (p[0] == 0xf0)
		lo = 0x90;
	else if (p[0] == 0xf4)
		hi = 0x8f;
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return len;
}

/* The letter of the two-character escape for c (\" \\ \n \r \t), or 0. */
static char
short_escape(unsigned char c)
{
	switch (c) {
	case '"':
	case '\\':
		return (char)c;
	case '\n':
		return 'n';
	case '\r':
		return 'r';
	case '\t':
		return 't';
	}
	return '\0';
}

/* One JSON escape unit for the input at p; *used gets the bytes consumed. */
static size_t
json_unit(const unsigned char *p, size_t n, char *out, size_t *used)
{
	size_t len;
	char c;

	*used = 1;
	if ((c = short_escape(p[0])) != '\0') {
		out[0] = '\\';
		out[1] = c;
		return 2;
	}
	if (p[0] < 0x20 || p[0] == 0x7f)
		return (size_t)snprintf(out, LOG_UNIT_MAX, "\\u%04x", p[0]);
	if ((len = utf8_len(p, n)) == 0) {
		memcpy(out, "\\ufffd", 6);
		return 6;
	}
	memcpy(out, p, len);
	*used = len;
	return len;
}

/* One unit of a quoted logfmt value: \" \\ \n \r \t, \xHH for controls. */
static size_t
logfmt_unit(const unsigned char *p, size_t n, char *out, size_t *used)
{
	size_t len;
	char c;

	*used = 1;
	if ((c = short_escape(p[0])) != '\0') {
		out[0] = '\\';
		out[1] = c;
		return 2;
	}
	if (p[0] < 0x20 || p[0] == 0x7f)
		return (size_t)snprintf(out, LOG_UNIT_MAX, "\\x%02x", p[0]);
	/* keep a UTF-8 sequence whole so a cut never splits a character */
	if ((len = utf8_len(p, n)) == 0)
		len = 1;
	memcpy(out, p, len);
	*used = len;
	return len;
}

/* logfmt quotes a value that is empty or has a space, control, = " or \. */
static int
logfmt_needs_quotes(const unsigned char *p, size_t n)
{
	size_t i;

	if (n == 0)
		return 1;
	for (i = 0; i < n; i++)
		if (p[i] <= ' ' || p[i] == 0x7f || p[i] == '=' ||
		    p[i] == '"' || p[i] == '\\')
			return 1;
	return 0;
}

/*
 * Append a string value: quoted and escaped in JSON, quoted in logfmt when
 * needed. Units that do not fit are dropped, keeping room for the quote.
 */
static void
log_value(struct log_line *l, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
	size_t n = strlen((const char *)p), used;
	size_t (*unit)(const unsigned char *, size_t, char *, size_t *);
	char out[LOG_UNIT_MAX];
	int quoted = 1;

	if (l->format == LOG_FORMAT_JSON)
		unit = json_unit;
	else {
		unit = logfmt_unit;
		quoted = logfmt_needs_quotes(p, n);
	}
	if (quoted)
		log_put(l, "\"", 1, 1);	/* room checked by the caller */
	while (n > 0) {
		size_t ulen = unit(p, n, out, &used);

		if (log_put(l, out, ulen, quoted) < 0) {
			l->full = 1;
			break;
		}
		p += used;
		n -= used;
	}
	if (quoted)
		log_put(l, "\"", 1, 0);
}

/*
 * Start a field: ,"key": or " key=". minval is the least the value needs;
 * if the key and that much do not fit the field is dropped and so is the
 * rest of the line.
 */
static int
log_key(struct log_line *l, const char *key, size_t minval)
{
	size_t klen = strlen(key), need;

	if (l->full)
		return -1;
	need = klen + (l->format == LOG_FORMAT_JSON ? 4 : 2) + minval;
	if (need > log_room(l)) {
		l->full = 1;
		return -1;
	}
	if (l->format == LOG_FORMAT_JSON) {
		log_put(l, ",\"", 2, 0);
		log_put(l, key, klen, 0);
		log_put(l, "\":", 2, 0);
	} else {
		log_put(l, " ", 1, 0);
		log_put(l, key, klen, 0);
		log_put(l, "=", 1, 0);
	}
	return 0;
}

/* A bare (unquoted) token value: numbers and booleans. */
static void
log_token(struct log_line *l, const char *key, const char *tok)
{
	size_t n;

	if (l == NULL || !l->active || key == NULL)
		return;
	n = strlen(tok);
	if (log_key(l, key, n) == 0)
		log_put(l, tok, n, 0);
}

struct log_line *
log_begin(enum log_level level, const char *msg)
{
	struct log_line *l = &log_tl;
	struct timespec ts;
	struct tm tm;
	/* syslog priorities of debug, info, warn, error */
	static const int prio[] = { 7, 6, 4, 3 };
	char head[128];
	int n, pre = 0;

	if (!log_enabled(level))
		return NULL;
	l->format = (enum log_format)atomic_load_explicit(&log_cur_format,
	    memory_order_relaxed);
	l->len = 0;
	l->full = 0;
	l->active = 1;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	if (atomic_load_explicit(&log_cur_prefix, memory_order_relaxed))
		pre = snprintf(head, sizeof(head), "<%d>", prio[level]);
	n = pre + snprintf(head + pre, sizeof(head) - (size_t)pre,
	    l->format == LOG_FORMAT_JSON ?
	    "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ\",\"level\":\"%s\",\"msg\":" :
	    "ts=%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ level=%s msg=",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (long)(ts.tv_nsec / 1000),
	    log_level_name(level));
	log_put(l, head, (size_t)n, 0);
	log_value(l, msg);
	return l;
}

void
log_str(struct log_line *l, const char *key, const char *val)
{
	if (l == NULL || !l->active || key == NULL)
		return;
	if (log_key(l, key, 2) == 0)
		log_value(l, val);
}

void
log_int(struct log_line *l, const char *key, int64_t val)
{
	char tok[32];

	snprintf(tok, sizeof(tok), "%" PRId64, val);
	log_token(l, key, tok);
}

void
log_uint(struct log_line *l, const char *key, uint64_t val)
{
	char tok[32];

	snprintf(tok, sizeof(tok), "%" PRIu64, val);
	log_token(l, key, tok);
}

void
log_bool(struct log_line *l, const char *key, int val)
{
	log_token(l, key, val ? "true" : "false");
}

void
log_fmt(struct log_line *l, const char *key, const char *fmt, ...)
{
	va_list ap;

	if (l == NULL || !l->active || key == NULL || fmt == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(log_scratch, sizeof(log_scratch), fmt, ap);
	va_end(ap);
	log_str(l, key, log_scratch);
}

void
log_errno(struct log_line *l, int errnum)
{
	char buf[128];
	const char *s;
	int saved = errno;

	if (l == NULL || !l->active)
		return;
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
	s = strerror_r(errnum, buf, sizeof(buf));
#else
	if (strerror_r(errnum, buf, sizeof(buf)) != 0)
		snprintf(buf, sizeof(buf), "error %d", errnum);
	s = buf;
#endif
	log_str(l, "error", s);
	errno = saved;
}

/* Close the line and write it whole; errno is left as the caller had it. */
void
log_end(struct log_line *l)
{
	const char *p;
	size_t n;
	int fd, saved = errno;

	if (l == NULL || !l->active)
		return;
	l->active = 0;
	/* log_room always kept these bytes free */
	if (l->format == LOG_FORMAT_JSON)
		l->buf[l->len++] = '}';
	l->buf[l->len++] = '\n';
	fd = atomic_load_explicit(&log_cur_fd, memory_order_relaxed);
	p = l->buf;
	n = l->len;
	pthread_mutex_lock(&log_write_mtx);
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			break;		/* nowhere to report it */
		}
		p += w;
		n -= (size_t)w;
	}
	pthread_mutex_unlock(&log_write_mtx);
	errno = saved;
}

void
log_msg(enum log_level level, const char *msg)
{
	log_end(log_begin(level, msg));
}
