/*
 * log.h - one event per line on stderr (or another fd), logfmt or JSON, with
 * ts (RFC 3339 UTC, microseconds, "Z"), level and msg first, then fields in
 * the order they are added. Lines are built in a thread-local buffer and
 * written with one write(2), so threads never interleave partial lines.
 *
 *	struct log_line *l = log_begin(LOG_INFO, "listening");
 *	log_str(l, "service", "work");
 *	log_str(l, "addr", addr);
 *	log_end(l);
 *
 * log_begin returns NULL when the level is filtered out; every log_* call
 * accepts NULL and does nothing, so callers never test it. A thread builds
 * one line at a time: log_begin before the previous line's log_end drops
 * that line. Keys are trusted identifiers and written as they are.
 */
#ifndef HB_LOG_H
#define HB_LOG_H

#include <stdarg.h>
#include <stdint.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_FORMAT_LOGFMT, LOG_FORMAT_JSON };

#define LOG_LINE_MAX 8192	/* longer lines are cut, staying valid */

struct log_line;

/* Set format and threshold (startup and SIGHUP reload; loop thread). */
void log_setup(enum log_format format, enum log_level level);
/* Write lines to fd instead of 2 (tests). */
void log_set_fd(int fd);
int log_enabled(enum log_level level);
/* Under systemd (JOURNAL_STREAM names our fd), start every line with its
 * syslog priority, <3> for error ... <7> for debug, which journald takes
 * off and applies; elsewhere lines stay as they are. */
void log_detect_journal(void);

int log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level level);
int log_format_parse(const char *s, enum log_format *out);
const char *log_format_name(enum log_format format);

struct log_line *log_begin(enum log_level level, const char *msg);
void log_str(struct log_line *l, const char *key, const char *val);
void log_int(struct log_line *l, const char *key, int64_t val);
void log_uint(struct log_line *l, const char *key, uint64_t val);
void log_bool(struct log_line *l, const char *key, int val);
/* A string value built with printf formatting. */
void log_fmt(struct log_line *l, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* error="strerror(errnum)" */
void log_errno(struct log_line *l, int errnum);
void log_end(struct log_line *l);

/* A line with only ts, level and msg. */
void log_msg(enum log_level level, const char *msg);

#endif
