/*
 * check_log.c - the log module: line layout, logfmt quoting, JSON validity
 * for any byte string, cutting of long lines, level filtering and whole
 * lines from concurrent threads. Output is captured through a pipe given to
 * log_set_fd.
 */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check_common.h"
#include "log.h"

#define CAPTURE_MAX (1 << 16)

Suite *log_suite(void);

static int pipefd[2] = { -1, -1 };
static char out[CAPTURE_MAX + 1];

static void
setup(void)
{
	ck_assert_int_eq(pipe(pipefd), 0);
	fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
	log_set_fd(pipefd[1]);
	log_setup(LOG_FORMAT_LOGFMT, LOG_DEBUG);
}

static void
teardown(void)
{
	log_set_fd(2);
	log_setup(LOG_FORMAT_LOGFMT, LOG_INFO);
	close(pipefd[0]);
	close(pipefd[1]);
}

/* Everything written so far, NUL-terminated. */
static const char *
captured(void)
{
	size_t len = 0;
	ssize_t n;

	while (len < CAPTURE_MAX &&
	    (n = read(pipefd[0], out + len, CAPTURE_MAX - len)) > 0)
		len += (size_t)n;
	out[len] = '\0';
	return out;
}

static int
matches(const char *s, const char *pattern)
{
	regex_t re;
	int rc;

	ck_assert_int_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
	rc = regexec(&re, s, 0, NULL, 0);
	regfree(&re);
	return rc == 0;
}

/*
 * A strict checker for what the log writes: one JSON object of string,
 * integer and boolean members, RFC 8259 strings (no raw control bytes,
 * valid escapes, valid UTF-8), then "\n" and nothing else.
 */
static const unsigned char *
json_string(const unsigned char *p)
{
	size_t i, len;

	if (*p++ != '"')
		return NULL;
	for (;;) {
		if (*p == '"')
			return p + 1;
		if (*p < 0x20)
			return NULL;	/* also the NUL at the end */
		if (*p == '\\') {
			p++;
			if (*p == 'u') {
				for (i = 1; i <= 4; i++)
					if (!strchr("0123456789abcdefABCDEF",
					    p[i]) || p[i] == '\0')
						return NULL;
				p += 5;
			} else if (*p != '\0' && strchr("\"\\/bfnrt", *p)) {
				p++;
			} else {
				return NULL;
			}
			continue;
		}
		if (*p < 0x80) {
			p++;
			continue;
		}
		if (*p >= 0xc2 && *p <= 0xdf)
			len = 2;
		else if (*p >= 0xe0 && *p <= 0xef)
			len = 3;
		else if (*p >= 0xf0 && *p <= 0xf4)
			len = 4;
		else
			return NULL;
		if ((p[0] == 0xe0 && p[1] < 0xa0) ||
		    (p[0] == 0xed && p[1] > 0x9f) ||
		    (p[0] == 0xf0 && p[1] < 0x90) ||
		    (p[0] == 0xf4 && p[1] > 0x8f))
			return NULL;
		for (i = 1; i < len; i++)
			if (p[i] < 0x80 || p[i] > 0xbf)
				return NULL;
		p += len;
	}
}

static int
json_line_valid(const char *line)
{
	const unsigned char *p = (const unsigned char *)line;

	if (*p++ != '{')
		return 0;
	for (;;) {
		if ((p = json_string(p)) == NULL || *p++ != ':')
			return 0;
		if (*p == '"') {
			if ((p = json_string(p)) == NULL)
				return 0;
		} else if (strncmp((const char *)p, "true", 4) == 0) {
			p += 4;
		} else if (strncmp((const char *)p, "false", 5) == 0) {
			p += 5;
		} else {
			if (*p == '-')
				p++;
			if (*p < '0' || *p > '9')
				return 0;
			while (*p >= '0' && *p <= '9')
				p++;
		}
		if (*p == ',') {
			p++;
			continue;
		}
		return p[0] == '}' && p[1] == '\n' && p[2] == '\0';
	}
}

static const char *
log_one(const char *key, const char *val)
{
	struct log_line *l = log_begin(LOG_INFO, "m");

	log_str(l, key, val);
	log_end(l);
	return captured();
}

START_TEST(test_logfmt_line_has_ts_level_msg_first)
{
	log_msg(LOG_INFO, "hello");
	ck_assert(matches(captured(), "^ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T"
	    "[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z level=info msg=hello\n$"));
}
END_TEST

START_TEST(test_ts_is_the_current_utc_time)
{
	struct tm tm;
	time_t t, now = time(NULL);

	log_msg(LOG_INFO, "x");
	memset(&tm, 0, sizeof(tm));
	ck_assert_ptr_nonnull(strptime(captured() + 3, "%Y-%m-%dT%H:%M:%S",
	    &tm));
	t = timegm(&tm);
	ck_assert(t >= now - 2 && t <= now + 2);
}
END_TEST

START_TEST(test_logfmt_leaves_plain_values_unquoted)
{
	ck_assert(strstr(log_one("addr", "127.0.0.1:7070/a,b"),
	    " addr=127.0.0.1:7070/a,b\n") != NULL);
}
END_TEST

START_TEST(test_logfmt_quotes_values_with_spaces)
{
	ck_assert(strstr(log_one("k", "two words"), " k=\"two words\"\n"));
}
END_TEST

START_TEST(test_logfmt_quotes_empty_values)
{
	ck_assert(strstr(log_one("k", ""), " k=\"\"\n"));
}
END_TEST

START_TEST(test_logfmt_quotes_values_with_equals)
{
	ck_assert(strstr(log_one("k", "a=b"), " k=\"a=b\"\n"));
}
END_TEST

START_TEST(test_logfmt_escapes_quotes_and_backslashes)
{
	ck_assert(strstr(log_one("k", "say \"hi\\\""),
	    " k=\"say \\\"hi\\\\\\\"\"\n"));
	ck_assert(strstr(log_one("k", "a\"b"), " k=\"a\\\"b\"\n"));
	ck_assert(strstr(log_one("k", "a\\b"), " k=\"a\\\\b\"\n"));
}
END_TEST

START_TEST(test_logfmt_escapes_newlines_and_control_bytes)
{
	const char *s = log_one("k", "a\nb\rc\td\001e\177");

	ck_assert_str_eq(strstr(s, " k="), " k=\"a\\nb\\rc\\td\\x01e\\x7f\"\n");
	ck_assert_ptr_eq(strchr(s, '\n'), s + strlen(s) - 1);
}
END_TEST

START_TEST(test_logfmt_keeps_utf8_unquoted)
{
	ck_assert(strstr(log_one("k", "h\xc3\xa9llo"), " k=h\xc3\xa9llo\n"));
}
END_TEST

START_TEST(test_logfmt_quotes_the_msg_too)
{
	log_msg(LOG_WARN, "not ready");
	ck_assert(strstr(captured(), " level=warn msg=\"not ready\"\n"));
}
END_TEST

START_TEST(test_fields_keep_the_order_they_were_added)
{
	struct log_line *l = log_begin(LOG_INFO, "order");

	log_str(l, "zeta", "1");
	log_int(l, "alpha", -5);
	log_uint(l, "mid", UINT64_MAX);
	log_bool(l, "yes", 1);
	log_bool(l, "no", 0);
	log_fmt(l, "f", "%d-%s", 7, "x");
	log_end(l);
	ck_assert_str_eq(strstr(captured(), " msg="), " msg=order zeta=1 "
	    "alpha=-5 mid=18446744073709551615 yes=true no=false f=7-x\n");
}
END_TEST

START_TEST(test_log_errno_adds_strerror_and_keeps_errno)
{
	struct log_line *l = log_begin(LOG_ERROR, "open");
	char want[128];

	errno = EAGAIN;
	log_errno(l, ENOENT);
	log_end(l);
	ck_assert_int_eq(errno, EAGAIN);
	snprintf(want, sizeof(want), " error=\"%s\"\n", strerror(ENOENT));
	ck_assert(strstr(captured(), want) != NULL);
}
END_TEST

START_TEST(test_json_line_has_ts_level_msg_first)
{
	log_setup(LOG_FORMAT_JSON, LOG_DEBUG);
	log_msg(LOG_WARN, "hello");
	ck_assert(matches(captured(), "^\\{\"ts\":\"[0-9]{4}-[0-9]{2}-[0-9]{2}T"
	    "[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z\",\"level\":\"warn\","
	    "\"msg\":\"hello\"\\}\n$"));
}
END_TEST

START_TEST(test_json_numbers_and_booleans_are_not_quoted)
{
	struct log_line *l;
	const char *s;

	log_setup(LOG_FORMAT_JSON, LOG_DEBUG);
	l = log_begin(LOG_INFO, "n");
	log_int(l, "i", INT64_MIN);
	log_uint(l, "u", 42);
	log_bool(l, "b", 1);
	log_str(l, "s", "7");
	log_end(l);
	s = captured();
	ck_assert_str_eq(strstr(s, ",\"msg\""), ",\"msg\":\"n\","
	    "\"i\":-9223372036854775808,\"u\":42,\"b\":true,\"s\":\"7\"}\n");
	ck_assert(json_line_valid(s));
}
END_TEST

START_TEST(test_json_escapes_control_characters)
{
	const char *s;

	log_setup(LOG_FORMAT_JSON, LOG_DEBUG);
	s = log_one("k", "a\nb\rc\td\001e\037f\177");
	ck_assert_str_eq(strstr(s, ",\"k\""),
	    ",\"k\":\"a\\nb\\rc\\td\\u0001e\\u001ff\\u007f\"}\n");
	ck_assert(json_line_valid(s));
}
END_TEST

START_TEST(test_json_escapes_quotes_and_backslashes)
{
	const char *s;

	log_setup(LOG_FORMAT_JSON, LOG_DEBUG);
	s = log_one("k", "\"a\\b\"");
	ck_assert_str_eq(strstr(s, ",\"k\""), ",\"k\":\"\\\"a\\\\b\\\"\"}\n");
	ck_assert(json_line_valid(s));
}
END_TEST

START_TEST(test_json_replaces_invalid_utf8)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "\xff", "\\ufffd" },
		{ "a\x80z", "a\\ufffdz" },
		{ "\xc0\xaf", "\\ufffd\\ufffd" },		/* overlong '/' */
		{ "\xed\xa0\x80", "\\ufffd\\ufffd\\ufffd" },	/* surrogate */
		{ "\xf4\x90\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd" },
		{ "\xe2\x82", "\\ufffd\\ufffd" },		/* cut short */
		{ "\xe2\x82\xac", "\xe2\x82\xac" },		/* valid: kept */
		{ "\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80" },
	};
	char want[64];
	const char *s;
	size_t i;

	log_setup(LOG_FORMAT_JSON, LOG_DEBUG);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		s = log_one("k", cases[i].in);
		snprintf(want, sizeof(want), ",\"k\":\"%s\"}\n", cases[i].want);
		ck_assert_str_eq(strstr(s, ",\"k\""), want);
		ck_assert(json_line_valid(s));
	}
}
END_TEST

START_TEST(test_json_is_valid_for_every_byte)
{
	char all[256];
	int i;

	log_setup(LOG_FORMAT_JSON, LOG_DEBUG);
	for (i = 1; i < 256; i++)
		all[i - 1] = (char)i;
	all[255] = '\0';
	ck_assert(json_line_valid(log_one("k", all)));
}
END_TEST

START_TEST(test_json_is_valid_for_random_hostile_strings)
{
	static char buf[3 * LOG_LINE_MAX];
	static const char pool[] = "\"\\\n\r\t\001\037\177\200\277\300\301"
	    "\355\340\360\364\365\377a \xe2\x82\xac";
	unsigned seed = 12345;
	size_t i, len;
	int round;
	const char *s;

	log_setup(LOG_FORMAT_JSON, LOG_DEBUG);
	for (round = 0; round < 300; round++) {
		len = (size_t)rand_r(&seed) % (round < 200 ? 64 : sizeof(buf));
		for (i = 0; i < len; i++) {
			buf[i] = (rand_r(&seed) & 1) ?
			    pool[(size_t)rand_r(&seed) % (sizeof(pool) - 1)] :
			    (char)(1 + rand_r(&seed) % 255);
		}
		buf[len] = '\0';
		s = log_one("k", buf);
		ck_assert_msg(json_line_valid(s), "round %d: %s", round, s);
		ck_assert_uint_le(strlen(s), LOG_LINE_MAX);
	}
}
END_TEST

START_TEST(test_long_json_value_is_cut_but_line_stays_valid)
{
	static char big[3 * LOG_LINE_MAX];
	struct log_line *l;
	const char *s;
	size_t len;

	log_setup(LOG_FORMAT_JSON, LOG_DEBUG);
	memset(big, 'a', sizeof(big) - 1);
	l = log_begin(LOG_INFO, "big");
	log_str(l, "first", "1");
	log_str(l, "v", big);
	log_str(l, "after", "dropped");
	log_uint(l, "n", 1);
	log_end(l);
	s = captured();
	len = strlen(s);
	ck_assert_uint_eq(len, LOG_LINE_MAX);
	ck_assert_str_eq(s + len - 4, "a\"}\n");
	ck_assert(strstr(s, ",\"first\":\"1\",\"v\":\"aaa") != NULL);
	ck_assert(strstr(s, "after") == NULL);
	ck_assert(json_line_valid(s));
}
END_TEST

/* Cutting at every possible point never splits an escape or a character. */
START_TEST(test_json_cut_at_every_length_stays_valid)
{
	static const char *units[] = { "\001", "\xe2\x82\xac", "\xff", "\"" };
	static char buf[LOG_LINE_MAX + 16];
	size_t u, len, ulen, i;
	const char *s;

	log_setup(LOG_FORMAT_JSON, LOG_DEBUG);
	for (u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
		ulen = strlen(units[u]);
		for (len = LOG_LINE_MAX - 120; len < LOG_LINE_MAX - 40; len++) {
			/* a prefix of plain bytes moves the cut point */
			memset(buf, 'p', len % 7);
			for (i = len % 7; i + ulen < len; i += ulen)
				memcpy(buf + i, units[u], ulen);
			buf[i] = '\0';
			s = log_one("k", buf);
			ck_assert_msg(json_line_valid(s), "unit %zu len %zu",
			    u, len);
		}
	}
}
END_TEST

START_TEST(test_long_logfmt_value_is_cut_with_its_quote_closed)
{
	static char big[3 * LOG_LINE_MAX];
	struct log_line *l;
	const char *s;
	size_t len, i, quotes = 0;

	for (i = 0; i + 2 < sizeof(big); i += 2)
		memcpy(big + i, "\" ", 2);
	big[i] = '\0';
	l = log_begin(LOG_INFO, "big");
	log_str(l, "v", big);
	log_int(l, "after", 1);
	log_end(l);
	s = captured();
	len = strlen(s);
	ck_assert_uint_le(len, LOG_LINE_MAX);
	ck_assert_uint_gt(len, LOG_LINE_MAX - 8);
	ck_assert_str_eq(s + len - 2, "\"\n");
	ck_assert(strstr(s, "after") == NULL);
	/* every quote inside the value is escaped: only two bare ones */
	for (i = 0; i < len; i++)
		if (s[i] == '"' && s[i - 1] != '\\')
			quotes++;
	ck_assert_uint_eq(quotes, 2);
}
END_TEST

START_TEST(test_level_filter_drops_lower_levels)
{
	log_setup(LOG_FORMAT_LOGFMT, LOG_WARN);
	ck_assert_ptr_null(log_begin(LOG_INFO, "quiet"));
	ck_assert_ptr_null(log_begin(LOG_DEBUG, "quiet"));
	ck_assert(!log_enabled(LOG_INFO));
	ck_assert(log_enabled(LOG_ERROR));
	log_msg(LOG_INFO, "quiet");
	log_msg(LOG_ERROR, "loud");
	ck_assert(matches(captured(), "^ts=[^ ]+ level=error msg=loud\n$"));
}
END_TEST

/* No fixture: the state a process starts with (or teardown restored). */
START_TEST(test_defaults_are_logfmt_at_info_on_stderr)
{
	int p[2], saved;

	ck_assert_int_eq(pipe(p), 0);
	pipefd[0] = p[0];
	pipefd[1] = p[1];
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	saved = dup(2);
	dup2(p[1], 2);
	log_msg(LOG_DEBUG, "hidden");
	log_msg(LOG_INFO, "shown");
	dup2(saved, 2);
	close(saved);
	ck_assert(matches(captured(), "^ts=[^ ]+Z level=info msg=shown\n$"));
	close(p[0]);
	close(p[1]);
}
END_TEST

START_TEST(test_null_line_is_accepted_everywhere)
{
	log_str(NULL, "k", "v");
	log_int(NULL, "k", 1);
	log_uint(NULL, "k", 1);
	log_bool(NULL, "k", 1);
	log_fmt(NULL, "k", "%d", 1);
	log_errno(NULL, EIO);
	log_end(NULL);
	ck_assert_str_eq(captured(), "");
}
END_TEST

START_TEST(test_level_and_format_names_parse_back)
{
	enum log_level lv;
	enum log_format f;
	int i;

	for (i = LOG_DEBUG; i <= LOG_ERROR; i++) {
		ck_assert_int_eq(log_level_parse(
		    log_level_name((enum log_level)i), &lv), 0);
		ck_assert_int_eq(lv, i);
	}
	ck_assert_str_eq(log_level_name(LOG_WARN), "warn");
	ck_assert_int_eq(log_format_parse("json", &f), 0);
	ck_assert_int_eq(f, LOG_FORMAT_JSON);
	ck_assert_str_eq(log_format_name(LOG_FORMAT_LOGFMT), "logfmt");
	ck_assert_int_eq(log_level_parse("INFO", &lv), -1);
	ck_assert_int_eq(log_level_parse("warning", &lv), -1);
	ck_assert_int_eq(log_level_parse("", &lv), -1);
	ck_assert_int_eq(log_format_parse("text", &f), -1);
}
END_TEST

#define THREAD_N 4
#define THREAD_LINES 200
#define THREAD_VALUE 6000	/* longer than PIPE_BUF */

struct sink {
	char	*buf;
	size_t	 len, cap;
};

static void *
thread_writer(void *arg)
{
	char val[THREAD_VALUE + 1];
	struct log_line *l;
	int i;

	memset(val, *(const char *)arg, THREAD_VALUE);
	val[THREAD_VALUE] = '\0';
	for (i = 0; i < THREAD_LINES; i++) {
		l = log_begin(LOG_INFO, "t");
		log_str(l, "v", val);
		log_end(l);
	}
	return NULL;
}

static void *
thread_reader(void *arg)
{
	struct sink *sk = arg;
	ssize_t n;

	for (;;) {
		if (sk->len == sk->cap) {
			sk->cap = sk->cap ? 2 * sk->cap : 1 << 20;
			sk->buf = realloc(sk->buf, sk->cap + 1);
		}
		n = read(pipefd[0], sk->buf + sk->len, sk->cap - sk->len);
		if (n == 0)
			break;
		if (n > 0)
			sk->len += (size_t)n;
	}
	sk->buf[sk->len] = '\0';
	return NULL;
}

START_TEST(test_threads_never_interleave_lines)
{
	static const char ids[THREAD_N] = { 'a', 'b', 'c', 'd' };
	pthread_t w[THREAD_N], r;
	struct sink sk = { NULL, 0, 0 };
	char *line, *nl, *v;
	size_t i, count = 0;

	fcntl(pipefd[0], F_SETFL, 0);	/* the reader blocks */
	ck_assert_int_eq(pthread_create(&r, NULL, thread_reader, &sk), 0);
	for (i = 0; i < THREAD_N; i++)
		ck_assert_int_eq(pthread_create(&w[i], NULL, thread_writer,
		    (void *)&ids[i]), 0);
	for (i = 0; i < THREAD_N; i++)
		pthread_join(w[i], NULL);
	close(pipefd[1]);
	pipefd[1] = -1;
	pthread_join(r, NULL);
	for (line = sk.buf; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
		ck_assert(strncmp(line, "ts=", 3) == 0);
		ck_assert_ptr_nonnull(v = strstr(line, " v="));
		v += 3;
		ck_assert_int_eq(nl - v, THREAD_VALUE);
		ck_assert_uint_eq(strspn(v, (char[]){ *v, '\0' }),
		    THREAD_VALUE);
		count++;
	}
	ck_assert_uint_eq(count, THREAD_N * THREAD_LINES);
	free(sk.buf);
}
END_TEST

Suite *
log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc;

	tc = tcase_create("logfmt");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_logfmt_line_has_ts_level_msg_first);
	tcase_add_test(tc, test_ts_is_the_current_utc_time);
	tcase_add_test(tc, test_logfmt_leaves_plain_values_unquoted);
	tcase_add_test(tc, test_logfmt_quotes_values_with_spaces);
	tcase_add_test(tc, test_logfmt_quotes_empty_values);
	tcase_add_test(tc, test_logfmt_quotes_values_with_equals);
	tcase_add_test(tc, test_logfmt_escapes_quotes_and_backslashes);
	tcase_add_test(tc, test_logfmt_escapes_newlines_and_control_bytes);
	tcase_add_test(tc, test_logfmt_keeps_utf8_unquoted);
	tcase_add_test(tc, test_logfmt_quotes_the_msg_too);
	tcase_add_test(tc, test_fields_keep_the_order_they_were_added);
	tcase_add_test(tc, test_log_errno_adds_strerror_and_keeps_errno);
	tcase_add_test(tc, test_long_logfmt_value_is_cut_with_its_quote_closed);
	suite_add_tcase(s, tc);

	tc = tcase_create("json");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_json_line_has_ts_level_msg_first);
	tcase_add_test(tc, test_json_numbers_and_booleans_are_not_quoted);
	tcase_add_test(tc, test_json_escapes_control_characters);
	tcase_add_test(tc, test_json_escapes_quotes_and_backslashes);
	tcase_add_test(tc, test_json_replaces_invalid_utf8);
	tcase_add_test(tc, test_json_is_valid_for_every_byte);
	tcase_add_test(tc, test_json_is_valid_for_random_hostile_strings);
	tcase_add_test(tc, test_long_json_value_is_cut_but_line_stays_valid);
	tcase_add_test(tc, test_json_cut_at_every_length_stays_valid);
	suite_add_tcase(s, tc);

	tc = tcase_create("levels");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_level_filter_drops_lower_levels);
	tcase_add_test(tc, test_null_line_is_accepted_everywhere);
	tcase_add_test(tc, test_level_and_format_names_parse_back);
	tcase_add_test(tc, test_threads_never_interleave_lines);
	suite_add_tcase(s, tc);

	tc = tcase_create("defaults");
	tcase_add_test(tc, test_defaults_are_logfmt_at_info_on_stderr);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(log_suite)
