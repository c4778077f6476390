/*
 * ctl_out.c - heartbeatctl's output: JSON objects for --json, aligned
 * "key  value" lines for people, durations in human units, and runtime
 * errors, which go to stderr and, with --json, also to stdout as an
 * {"error":...} object so scripts see every outcome on one stream.
 */

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "util.h"

#define CTL_JSON_INT_MAX	9007199254740991ull /* 2^53 - 1 */

int	 json_mode;

/* JSON: a string with the escapes RFC 8259 requires. */
static void
json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", f);
		else if (ch == '\t')
			fputs("\\t", f);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

/* An integer, no leading zero, exact in a double: safe as a JSON number. */
static int
json_is_int(const char *s)
{
	uint64_t v;

	if (s[0] == '-' && s[1] != '0')
		s++;
	if (s[0] == '0' && s[1] != '\0')
		return 0;
	return parse_u64(s, 0, CTL_JSON_INT_MAX, &v) == 0;
}

/* Open a JSON object on f; members follow with the jo_* calls. */
void
jo_begin(struct json_obj *o, FILE *f)
{
	o->f = f;
	o->n = 0;
	fputc('{', f);
}

/* A member's key, after a comma unless it is the first. */
static void
jo_key(struct json_obj *o, const char *k)
{
	if (o->n++ > 0)
		fputc(',', o->f);
	json_str(o->f, k);
	fputc(':', o->f);
}

/* A string member. */
void
jo_str(struct json_obj *o, const char *k, const char *v)
{
	jo_key(o, k);
	json_str(o->f, v);
}

/* A reply value: a number when it looks like one, else a string. */
void
jo_val(struct json_obj *o, const char *k, const char *v)
{
	jo_key(o, k);
	if (json_is_int(v))
		fputs(v, o->f);
	else
		json_str(o->f, v);
}

/* A number member. */
void
jo_u64(struct json_obj *o, const char *k, uint64_t v)
{
	jo_key(o, k);
	fprintf(o->f, "%llu", (unsigned long long)v);
}

/* Every field of a reply as a member, in the daemon's order. */
void
jo_fields(struct json_obj *o, const struct ctl_fields *f)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		jo_val(o, f->key[i], f->val[i]);
}

/* Close the object (the caller adds the newline). */
void
jo_end(struct json_obj *o)
{
	fputc('}', o->f);
}

/*
 * Report a runtime error: a line on stderr for people (prefixed with the
 * code when show_code) and, with --json, {"error":code,"message":msg} on
 * stdout for scripts.
 */
void
ctl_report(const char *code, int show_code, const char *msg)
{
	struct json_obj o;

	progress_clear();
	if (show_code)
		fprintf(stderr, "heartbeatctl: %s: %s\n", code, msg);
	else
		fprintf(stderr, "heartbeatctl: %s\n", msg);
	if (json_mode) {
		jo_begin(&o, stdout);
		jo_str(&o, "error", code);
		jo_str(&o, "message", msg);
		jo_end(&o);
		fputc('\n', stdout);
		fflush(stdout);
	}
}

/* ctl_report with the message formatted, without the code on stderr. */
void
ctl_error(const char *code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ctl_report(code, 0, msg);
}

/* A duration in microseconds as people read it: 85us, 1.25ms, 3.40s. */
const char *
fmt_us(char *buf, size_t n, const char *us)
{
	uint64_t v;

	if (us == NULL)
		return "-";
	if (parse_u64(us, 0, UINT64_MAX, &v) == -1)
		return us;
	if (v < 1000)
		snprintf(buf, n, "%lluus", (unsigned long long)v);
	else if (v < 1000000)
		snprintf(buf, n, "%.2fms", (double)v / 1e3);
	else
		snprintf(buf, n, "%.2fs", (double)v / 1e6);
	return buf;
}

/* fmt_us for a number we hold rather than a reply field. */
const char *
fmt_us_num(char *buf, size_t n, uint64_t us)
{
	char num[24];

	snprintf(num, sizeof(num), "%llu", (unsigned long long)us);
	fmt_us(buf, n, num);
	return buf;
}

/* An age in milliseconds; negative (never) is "-". */
const char *
fmt_ms(char *buf, size_t n, const char *ms)
{
	uint64_t v;

	if (ms == NULL || ms[0] == '-')
		return "-";
	if (parse_u64(ms, 0, UINT64_MAX, &v) == -1)
		return ms;
	if (v < 1000)
		snprintf(buf, n, "%llums", (unsigned long long)v);
	else
		snprintf(buf, n, "%.1fs", (double)v / 1e3);
	return buf;
}

/* Replace control bytes (unescaped from a quoted value) for a terminal. */
void
text_sanitize(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < ' ' || *s == 0x7f)
			*s = '?';
}

/* Print key=value fields as aligned "key  value" lines, or one JSON object. */
void
print_fields(const char *idkey, const char *id, const struct ctl_fields *f)
{
	struct json_obj o;
	size_t i, w = idkey ? strlen(idkey) : 0;

	if (json_mode) {
		jo_begin(&o, stdout);
		if (idkey != NULL)
			jo_val(&o, idkey, id);
		jo_fields(&o, f);
		jo_end(&o);
		fputc('\n', stdout);
		return;
	}
	for (i = 0; i < f->n; i++)
		if (strlen(f->key[i]) > w)
			w = strlen(f->key[i]);
	if (idkey != NULL)
		printf("%-*s  %s\n", (int)w, idkey, id);
	for (i = 0; i < f->n; i++)
		printf("%-*s  %s\n", (int)w, f->key[i], f->val[i]);
}
