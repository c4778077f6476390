/* check_proto.c - request parsing, reply formatting, the peer protocol. */
#include <stdio.h>
#include <string.h>

#include "check_common.h"
#include "proto.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Parse a copy of line (the parser writes into it). */
static int
parse(const char *line, char *copy, size_t n, struct proto_request *req,
    struct proto_error *err)
{
	snprintf(copy, n, "%s", line);
	return proto_parse_request(copy, req, err);
}

START_TEST(test_every_verb_is_recognised_in_any_case)
{
	static const struct {
		const char *line;
		enum proto_verb verb;
	} cases[] = {
		{ "PING", PROTO_PING }, { "ping", PROTO_PING }, { "PiNg", PROTO_PING },
		{ "AUTH t", PROTO_AUTH }, { "auth t", PROTO_AUTH },
		{ "SUBMIT sleep", PROTO_SUBMIT }, { "Submit sleep", PROTO_SUBMIT },
		{ "CANCEL 1", PROTO_CANCEL }, { "cancel 1", PROTO_CANCEL },
		{ "STATUS 1", PROTO_STATUS }, { "sTaTuS 1", PROTO_STATUS },
		{ "STATS", PROTO_STATS }, { "stats", PROTO_STATS },
		{ "PEERS", PROTO_PEERS }, { "peers", PROTO_PEERS },
		{ "WATCH", PROTO_WATCH }, { "watch", PROTO_WATCH },
		{ "UNWATCH", PROTO_UNWATCH }, { "unWatch", PROTO_UNWATCH },
		{ "HELP", PROTO_HELP }, { "help", PROTO_HELP },
		{ "QUIT", PROTO_QUIT }, { "quit", PROTO_QUIT },
	};
	struct proto_request req;
	struct proto_error err;
	char buf[64];
	size_t i;

	for (i = 0; i < NELEM(cases); i++) {
		ck_assert_msg(parse(cases[i].line, buf, sizeof(buf), &req, &err) == 0,
		    "\"%s\": %s", cases[i].line, err.text);
		ck_assert_msg(req.verb == cases[i].verb, "\"%s\"", cases[i].line);
	}
}
END_TEST

START_TEST(test_tabs_runs_of_spaces_and_crlf_separate_tokens)
{
	static const char *const lines[] = {
		"SUBMIT sleep ms=5", "  SUBMIT\tsleep  \t ms=5", "SUBMIT sleep ms=5\r",
		"\tSUBMIT sleep ms=5 \t\r",
	};
	struct proto_request req;
	struct proto_error err;
	char buf[64];
	size_t i;

	for (i = 0; i < NELEM(lines); i++) {
		ck_assert_int_eq(parse(lines[i], buf, sizeof(buf), &req, &err), 0);
		ck_assert_int_eq(req.verb, PROTO_SUBMIT);
		ck_assert_str_eq(req.kind, "sleep");
		ck_assert_uint_eq(req.nargs, 1);
		ck_assert_str_eq(req.keys[0], "ms");
		ck_assert_str_eq(req.vals[0], "5");
	}
	/* only one CR is removed, and only at the end */
	ck_assert_int_eq(parse("PING\r\r", buf, sizeof(buf), &req, &err), -1);
	ck_assert_int_eq(parse("PI\rNG", buf, sizeof(buf), &req, &err), -1);
}
END_TEST

START_TEST(test_blank_lines_need_no_reply)
{
	static const char *const lines[] = { "", " ", "\t", " \t  \t", "\r", "  \r" };
	struct proto_request req;
	struct proto_error err;
	char buf[16];
	size_t i;

	for (i = 0; i < NELEM(lines); i++)
		ck_assert_msg(parse(lines[i], buf, sizeof(buf), &req, &err) == 1,
		    "blank line %zu", i);
}
END_TEST

/* Each error case: the line, the code and the exact text. */
struct err_case {
	const char *line;
	const char *code;
	const char *text;
};

static void
check_errors(const struct err_case *cases, size_t n)
{
	struct proto_request req;
	struct proto_error err;
	char buf[512];
	size_t i;

	for (i = 0; i < n; i++) {
		ck_assert_msg(parse(cases[i].line, buf, sizeof(buf), &req, &err) == -1,
		    "\"%s\" parsed", cases[i].line);
		ck_assert_msg(strcmp(err.code, cases[i].code) == 0,
		    "\"%s\": code %s", cases[i].line, err.code);
		ck_assert_msg(strcmp(err.text, cases[i].text) == 0,
		    "\"%s\": text %s", cases[i].line, err.text);
	}
}

START_TEST(test_unknown_verbs_are_bad_requests_naming_the_verb)
{
	static const struct err_case cases[] = {
		{ "FOO", "bad-request", "unknown verb \"FOO\"" },
		{ "foo bar baz", "bad-request", "unknown verb \"foo\"" },
		{ "PINGX", "bad-request", "unknown verb \"PINGX\"" },
		{ "PIN", "bad-request", "unknown verb \"PIN\"" },
		{ "GET / HTTP/1.0", "bad-request", "unknown verb \"GET\"" },
		{ "a\"b\\c\x01\x7f\xff", "bad-request",
		    "unknown verb \"a\\x22b\\x5cc\\x01\\x7f\\xff\"" },
		{ "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", "bad-request",
		  "unknown verb \"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345...\"" },
		{ "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", "bad-request",
		  "unknown verb \"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345\"" },
	};

	check_errors(cases, NELEM(cases));
}
END_TEST

START_TEST(test_verbs_without_arguments_reject_extra_tokens)
{
	static const struct err_case cases[] = {
		{ "PING x", "bad-request", "PING takes no arguments" },
		{ "ping\tx", "bad-request", "PING takes no arguments" },
		{ "STATS all", "bad-request", "STATS takes no arguments" },
		{ "PEERS x", "bad-request", "PEERS takes no arguments" },
		{ "WATCH 1", "bad-request", "WATCH takes no arguments" },
		{ "UNWATCH 1", "bad-request", "UNWATCH takes no arguments" },
		{ "help me", "bad-request", "HELP takes no arguments" },
		{ "QUIT now", "bad-request", "QUIT takes no arguments" },
	};

	check_errors(cases, NELEM(cases));
}
END_TEST

START_TEST(test_auth_takes_exactly_one_token)
{
	static const struct err_case cases[] = {
		{ "AUTH", "bad-request", "usage: AUTH <token>" },
		{ "AUTH  \t", "bad-request", "usage: AUTH <token>" },
		{ "AUTH a b", "bad-request", "usage: AUTH <token>" },
	};
	struct proto_request req;
	struct proto_error err;
	char buf[64];

	check_errors(cases, NELEM(cases));
	ck_assert_int_eq(parse("auth s3cr=t\r", buf, sizeof(buf), &req, &err), 0);
	ck_assert_str_eq(req.token, "s3cr=t");
}
END_TEST

START_TEST(test_cancel_and_status_need_exactly_one_id)
{
	static const struct err_case cases[] = {
		{ "CANCEL", "bad-request", "usage: CANCEL <id>" },
		{ "cancel 1 2", "bad-request", "usage: CANCEL <id>" },
		{ "STATUS", "bad-request", "usage: STATUS <id>" },
		{ "status 1 x", "bad-request", "usage: STATUS <id>" },
	};

	check_errors(cases, NELEM(cases));
}
END_TEST

START_TEST(test_ids_must_be_positive_integers)
{
	static const struct {
		const char *id;
		int ok;
		uint64_t v;
	} cases[] = {
		{ "1", 1, 1 }, { "42", 1, 42 }, { "007", 1, 7 },
		{ "18446744073709551615", 1, UINT64_MAX },
		{ "0", 0, 0 }, { "00", 0, 0 }, { "-1", 0, 0 }, { "abc", 0, 0 },
		{ "18446744073709551616", 0, 0 }, { "99999999999999999999999", 0, 0 },
		{ "+5", 0, 0 }, { "5x", 0, 0 }, { "0x5", 0, 0 }, { "1.0", 0, 0 },
	};
	static const char *const verbs[] = { "CANCEL", "STATUS" };
	struct proto_request req;
	struct proto_error err;
	char line[64], buf[64];
	size_t i, j;

	for (j = 0; j < NELEM(verbs); j++) {
		for (i = 0; i < NELEM(cases); i++) {
			int rc;

			snprintf(line, sizeof(line), "%s %s", verbs[j], cases[i].id);
			rc = parse(line, buf, sizeof(buf), &req, &err);
			if (cases[i].ok) {
				ck_assert_msg(rc == 0, "\"%s\": %s", line, err.text);
				ck_assert_uint_eq(req.id, cases[i].v);
			} else {
				ck_assert_msg(rc == -1, "\"%s\" parsed", line);
				ck_assert_str_eq(err.code, "bad-arg");
				ck_assert_str_eq(err.text, "id must be a positive integer");
			}
		}
	}
}
END_TEST

START_TEST(test_submit_splits_kind_and_key_value_arguments)
{
	static const struct {
		const char *line;
		const char *kind;
		size_t nargs;
		const char *kv[3][2];
	} cases[] = {
		{ "SUBMIT sleep", "sleep", 0, { { 0 } } },
		{ "submit primes n=100", "primes", 1, { { "n", "100" } } },
		{ "SUBMIT sha256 rounds=3 seed=a=b timeout_ms=9", "sha256", 3,
		  { { "rounds", "3" }, { "seed", "a=b" }, { "timeout_ms", "9" } } },
		{ "SUBMIT sleep ms=", "sleep", 1, { { "ms", "" } } },
		{ "SUBMIT NoSuchKind x=1", "NoSuchKind", 1, { { "x", "1" } } },
	};
	struct proto_request req;
	struct proto_error err;
	char buf[128];
	size_t i, k;

	for (i = 0; i < NELEM(cases); i++) {
		ck_assert_msg(parse(cases[i].line, buf, sizeof(buf), &req, &err) == 0,
		    "\"%s\": %s", cases[i].line, err.text);
		ck_assert_int_eq(req.verb, PROTO_SUBMIT);
		ck_assert_str_eq(req.kind, cases[i].kind);
		ck_assert_uint_eq(req.nargs, cases[i].nargs);
		for (k = 0; k < cases[i].nargs; k++) {
			ck_assert_str_eq(req.keys[k], cases[i].kv[k][0]);
			ck_assert_str_eq(req.vals[k], cases[i].kv[k][1]);
		}
	}
}
END_TEST

START_TEST(test_submit_rejects_missing_kind_and_malformed_arguments)
{
	static const struct err_case cases[] = {
		{ "SUBMIT", "bad-request", "usage: SUBMIT <kind> [key=value]..." },
		{ "submit \t ", "bad-request", "usage: SUBMIT <kind> [key=value]..." },
		{ "SUBMIT sleep =x", "bad-arg", "expected key=value, got \"=x\"" },
		{ "SUBMIT sleep k", "bad-arg", "expected key=value, got \"k\"" },
		{ "SUBMIT sleep ms=1 k", "bad-arg", "expected key=value, got \"k\"" },
		{ "SUBMIT sleep =", "bad-arg", "expected key=value, got \"=\"" },
	};

	check_errors(cases, NELEM(cases));
}
END_TEST

START_TEST(test_submit_accepts_at_most_the_maximum_number_of_arguments)
{
	struct proto_request req;
	struct proto_error err;
	char line[1024], buf[1024];
	size_t i, len;

	len = (size_t)snprintf(line, sizeof(line), "SUBMIT spin");
	for (i = 0; i < PROTO_ARGS_MAX; i++)
		len += (size_t)snprintf(line + len, sizeof(line) - len, " k%zu=%zu", i, i);
	ck_assert_int_eq(parse(line, buf, sizeof(buf), &req, &err), 0);
	ck_assert_uint_eq(req.nargs, PROTO_ARGS_MAX);
	ck_assert_str_eq(req.keys[PROTO_ARGS_MAX - 1], "k31");
	ck_assert_str_eq(req.vals[PROTO_ARGS_MAX - 1], "31");

	snprintf(line + len, sizeof(line) - len, " one=more");
	ck_assert_int_eq(parse(line, buf, sizeof(buf), &req, &err), -1);
	ck_assert_str_eq(err.code, "bad-arg");
	ck_assert_str_eq(err.text, "too many arguments (at most 32)");

	/* far too many is the same error, not an overflow */
	for (i = 0; i < 200; i++)
		len += (size_t)snprintf(line + len, sizeof(line) - len, " a=b");
	ck_assert_int_eq(parse(line, buf, sizeof(buf), &req, &err), -1);
	ck_assert_str_eq(err.code, "bad-arg");
}
END_TEST

START_TEST(test_verb_names_are_upper_case)
{
	ck_assert_str_eq(proto_verb_name(PROTO_PING), "PING");
	ck_assert_str_eq(proto_verb_name(PROTO_UNWATCH), "UNWATCH");
	ck_assert_str_eq(proto_verb_name(PROTO_QUIT), "QUIT");
	ck_assert_str_eq(proto_verb_name(PROTO_VERB_COUNT), "?");
}
END_TEST

START_TEST(test_replies_are_formatted_exactly)
{
	char buf[256];
	int n;

	n = proto_fmt_ok_id(buf, sizeof(buf), 17);
	ck_assert_str_eq(buf, "OK 17\n");
	ck_assert_int_eq(n, 6);
	proto_fmt_ok_id(buf, sizeof(buf), UINT64_MAX);
	ck_assert_str_eq(buf, "OK 18446744073709551615\n");
	proto_fmt_err(buf, sizeof(buf), "bad-arg", "ms must be 0..600000");
	ck_assert_str_eq(buf, "ERR bad-arg ms must be 0..600000\n");
	proto_fmt_err(buf, sizeof(buf), "busy", "two\nlines\r");
	ck_assert_str_eq(buf, "ERR busy two\\x0alines\\x0d\n");
	/* no raw byte outside printable ASCII is ever echoed */
	proto_fmt_err(buf, sizeof(buf), "bad-arg", "unknown argument \xff\x01z");
	ck_assert_str_eq(buf, "ERR bad-arg unknown argument \\xff\\x01z\n");
	proto_fmt_err(buf, sizeof(buf), "busy", NULL);
	ck_assert_str_eq(buf, "ERR busy\n");
	n = proto_fmt_done(buf, sizeof(buf), 3, "ok", 12, 3456);
	ck_assert_str_eq(buf, "DONE 3 result=ok queue_us=12 run_us=3456\n");
	ck_assert_int_eq(n, (int)strlen(buf));
	proto_fmt_fail(buf, sizeof(buf), 4, "cancelled", NULL);
	ck_assert_str_eq(buf, "FAIL 4 reason=cancelled\n");
	proto_fmt_fail(buf, sizeof(buf), 5, "error", "disk full");
	ck_assert_str_eq(buf, "FAIL 5 reason=error detail=\"disk full\"\n");
	proto_fmt_fail(buf, sizeof(buf), 5, "error", "");
	ck_assert_str_eq(buf, "FAIL 5 reason=error detail=\"\"\n");
	proto_fmt_job(buf, sizeof(buf), &(struct proto_job){ .id = 9, .kind = "spin",
	    .state = "running", .progress = 42, .queue_us = 10, .run_us = 20 });
	ck_assert_str_eq(buf, "JOB 9 kind=spin state=running progress=42 "
	    "queue_us=10 run_us=20 detached=0\n");
	proto_fmt_job(buf, sizeof(buf), &(struct proto_job){ .id = 10, .kind = "primes",
	    .state = "done", .progress = 100, .queue_us = 1, .run_us = 2,
	    .detached = 1, .result = "4" });
	ck_assert_str_eq(buf, "JOB 10 kind=primes state=done progress=100 "
	    "queue_us=1 run_us=2 detached=1 result=4\n");
	proto_fmt_job(buf, sizeof(buf), &(struct proto_job){ .id = 11, .kind = "sleep",
	    .state = "failed", .reason = "error", .detail = "bad \"x\"" });
	ck_assert_str_eq(buf, "JOB 11 kind=sleep state=failed progress=0 "
	    "queue_us=0 run_us=0 detached=0 reason=error detail=\"bad \\\"x\\\"\"\n");
}
END_TEST

START_TEST(test_fail_detail_is_escaped_onto_one_line)
{
	static const struct {
		const char *detail, *want;
	} cases[] = {
		{ "say \"hi\"", "FAIL 1 reason=error detail=\"say \\\"hi\\\"\"\n" },
		{ "a\\b", "FAIL 1 reason=error detail=\"a\\\\b\"\n" },
		{ "l1\nl2\r\tx", "FAIL 1 reason=error detail=\"l1\\nl2\\r\\tx\"\n" },
		{ "\x01\x1f\x7f", "FAIL 1 reason=error detail=\"\\x01\\x1f\\x7f\"\n" },
		{ "caf\xc3\xa9", "FAIL 1 reason=error detail=\"caf\xc3\xa9\"\n" },
	};
	char buf[128];
	size_t i;

	for (i = 0; i < NELEM(cases); i++) {
		proto_fmt_fail(buf, sizeof(buf), 1, "error", cases[i].detail);
		ck_assert_str_eq(buf, cases[i].want);
	}
}
END_TEST

START_TEST(test_cut_replies_keep_their_newline_and_closing_quote)
{
	char buf[64], big[300];
	size_t n;
	int len;

	for (n = 2; n < sizeof(buf); n++) {
		len = proto_fmt_done(buf, n, 123456789, "0123456789abcdef", 1, 2);
		ck_assert_int_eq(len, (int)strlen(buf));
		ck_assert_int_le(len, (int)n - 1);
		ck_assert_msg(buf[len - 1] == '\n', "n=%zu: \"%s\"", n, buf);
		ck_assert_ptr_null(memchr(buf, '\n', (size_t)len - 1));

		len = proto_fmt_fail(buf, n, 7, "error", "q\"q\"q\"q\"q\"q\"q\"q\"q\"q\"");
		ck_assert_int_eq(len, (int)strlen(buf));
		ck_assert_msg(buf[len - 1] == '\n', "n=%zu: \"%s\"", n, buf);
		if (strstr(buf, "detail=\"") != NULL) {
			ck_assert_msg(buf[len - 2] == '"', "n=%zu: \"%s\"", n, buf);
			ck_assert_msg(len < 4 || buf[len - 3] != '\\' ||
			    buf[len - 4] == '\\', "n=%zu: \"%s\"", n, buf);
		}
	}
	/* a cut never leaves half an escape */
	proto_fmt_fail(buf, 30, 7, "error", "\\\\\\\\\\\\\\\\\\\\");
	ck_assert_str_eq(buf, "FAIL 7 reason=error\n");
	proto_fmt_fail(buf, 31, 7, "error", "\\\\\\\\\\\\\\\\\\\\");
	ck_assert_str_eq(buf, "FAIL 7 reason=error detail=\"\"\n");
	proto_fmt_fail(buf, 32, 7, "error", "\\\\\\\\\\\\\\\\\\\\");
	ck_assert_str_eq(buf, "FAIL 7 reason=error detail=\"\"\n");
	proto_fmt_fail(buf, 33, 7, "error", "\\\\\\\\\\\\\\\\\\\\");
	ck_assert_str_eq(buf, "FAIL 7 reason=error detail=\"\\\\\"\n");

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	len = proto_fmt_err(buf, sizeof(buf), "bad-arg", big);
	ck_assert_int_eq(len, (int)sizeof(buf) - 1);
	ck_assert_int_eq(buf[sizeof(buf) - 2], '\n');

	/* n of 1 or 0 cannot hold a line: empty, nothing written past n */
	buf[0] = 'z';
	buf[1] = 'z';
	ck_assert_int_eq(proto_fmt_ok_id(buf, 1, 5), 0);
	ck_assert_int_eq(buf[0], '\0');
	ck_assert_int_eq(buf[1], 'z');
	ck_assert_int_eq(proto_fmt_ok_id(buf, 0, 5), 0);
	ck_assert_int_eq(proto_fmt_ok_id(buf, 2, 5), 1);
	ck_assert_str_eq(buf, "\n");
}
END_TEST

START_TEST(test_peer_lines_parse_valid_messages)
{
	struct proto_peer_msg m;
	char line[128];

	snprintf(line, sizeof(line), "HELLO node-a 1\r");
	ck_assert_int_eq(proto_parse_peer(line, &m), 0);
	ck_assert_int_eq(m.type, PROTO_HELLO);
	ck_assert_str_eq(m.name, "node-a");

	snprintf(line, sizeof(line), "WELCOME  b:7071\t1");
	ck_assert_int_eq(proto_parse_peer(line, &m), 0);
	ck_assert_int_eq(m.type, PROTO_WELCOME);
	ck_assert_str_eq(m.name, "b:7071");

	snprintf(line, sizeof(line), "HB 7 123456789");
	ck_assert_int_eq(proto_parse_peer(line, &m), 0);
	ck_assert_int_eq(m.type, PROTO_HB);
	ck_assert_uint_eq(m.seq, 7);
	ck_assert_uint_eq(m.t, 123456789);
	ck_assert_int_eq(m.has_lag, 0);

	snprintf(line, sizeof(line), "ACK 0 18446744073709551615\r");
	ck_assert_int_eq(proto_parse_peer(line, &m), 0);
	ck_assert_int_eq(m.type, PROTO_ACK);
	ck_assert_uint_eq(m.seq, 0);
	ck_assert_uint_eq(m.t, UINT64_MAX);
}
END_TEST

START_TEST(test_hb_fields_carry_lag_and_unknown_ones_are_ignored)
{
	static const struct {
		const char *line;
		int rc, has_lag;
		uint64_t lag;
	} cases[] = {
		{ "HB 1 2 lag_us=350", 0, 1, 350 },
		{ "HB 1 2 load=0.5 lag_us=0 cpu=", 0, 1, 0 },
		{ "HB 1 2 future=x", 0, 0, 0 },
		{ "HB 1 2 lag_us=5 lag_us=6", 0, 1, 6 },
		{ "HB 1 2 lag_us=abc", -1, 0, 0 },
		{ "HB 1 2 lag_us=", -1, 0, 0 },
		{ "HB 1 2 lag_us=1 trailing", -1, 0, 0 },
		{ "HB 1 2 =5", -1, 0, 0 },
	};
	struct proto_peer_msg m;
	char line[128];
	size_t i;

	for (i = 0; i < NELEM(cases); i++) {
		snprintf(line, sizeof(line), "%s", cases[i].line);
		ck_assert_msg(proto_parse_peer(line, &m) == cases[i].rc, "\"%s\"",
		    cases[i].line);
		if (cases[i].rc == 0) {
			ck_assert_int_eq(m.has_lag, cases[i].has_lag);
			ck_assert_uint_eq(m.lag_us, cases[i].lag);
			ck_assert_uint_eq(m.seq, 1);
			ck_assert_uint_eq(m.t, 2);
		}
	}
}
END_TEST

START_TEST(test_hb_fields_carry_missed_ticks_beside_lag)
{
	static const struct {
		const char *line;
		int rc, has_missed;
		uint64_t missed;
	} cases[] = {
		{ "HB 1 2 lag_us=350 missed=4", 0, 1, 4 },
		{ "HB 1 2 missed=0 lag_us=9", 0, 1, 0 },
		{ "HB 1 2 lag_us=350", 0, 0, 0 },
		{ "HB 1 2 future=x missed=18446744073709551615", 0, 1, UINT64_MAX },
		{ "HB 1 2 missed=-1", -1, 0, 0 },
		{ "HB 1 2 missed=", -1, 0, 0 },
		{ "HB 1 2 missed=18446744073709551616", -1, 0, 0 },
	};
	struct proto_peer_msg m;
	char line[128];
	size_t i;

	for (i = 0; i < NELEM(cases); i++) {
		snprintf(line, sizeof(line), "%s", cases[i].line);
		ck_assert_msg(proto_parse_peer(line, &m) == cases[i].rc, "\"%s\"",
		    cases[i].line);
		if (cases[i].rc == 0) {
			ck_assert_int_eq(m.has_missed, cases[i].has_missed);
			ck_assert_uint_eq(m.missed, cases[i].missed);
		}
	}
}
END_TEST

START_TEST(test_peer_lines_reject_anything_else)
{
	static const char *const lines[] = {
		"", " ", "hello a 1", "Hello a 1", "HELLO", "HELLO a", "HELLO a 2",
		"HELLO a 01", "HELLO a 1 extra", "WELCOME a", "welcome a 1",
		"HELLO a=b 1", "HELLO \"q\" 1", "HELLO a\x01 1", "WELCOME \x7f 1",
		"HELLO 01234567890123456789012345678901234567890123456789012345678901234 1",
		"HB", "HB 1", "hb 1 2", "HB x 2", "HB 1 -2", "HB 1 2x",
		"HB 18446744073709551616 1", "ACK", "ACK 1", "ACK 1 2 3",
		"ACK 1 2 lag_us=3", "ack 1 2", "ACK +1 2", "PING", "ERR bad-request x",
		"HB 1 2\r\r",
	};
	struct proto_peer_msg m;
	char line[64];
	size_t i;

	for (i = 0; i < NELEM(lines); i++) {
		snprintf(line, sizeof(line), "%s", lines[i]);
		ck_assert_msg(proto_parse_peer(line, &m) == -1, "\"%s\" parsed",
		    lines[i]);
	}
}
END_TEST

START_TEST(test_peer_messages_are_formatted_exactly)
{
	char buf[128];
	struct proto_peer_msg m;

	ck_assert_int_eq(proto_fmt_hello(buf, sizeof(buf), "HELLO", "a"), 10);
	ck_assert_str_eq(buf, "HELLO a 1\n");
	proto_fmt_hello(buf, sizeof(buf), "WELCOME", "node-b");
	ck_assert_str_eq(buf, "WELCOME node-b 1\n");
	proto_fmt_hb(buf, sizeof(buf), 12, 987654321, 77, 3);
	ck_assert_str_eq(buf, "HB 12 987654321 lag_us=77 missed=3\n");
	proto_fmt_ack(buf, sizeof(buf), 12, 987654321);
	ck_assert_str_eq(buf, "ACK 12 987654321\n");

	/* what one side writes the other side reads */
	proto_fmt_hb(buf, sizeof(buf), UINT64_MAX, 5, 6, UINT64_MAX);
	buf[strlen(buf) - 1] = '\0';
	ck_assert_int_eq(proto_parse_peer(buf, &m), 0);
	ck_assert_uint_eq(m.seq, UINT64_MAX);
	ck_assert_uint_eq(m.t, 5);
	ck_assert_int_eq(m.has_lag, 1);
	ck_assert_uint_eq(m.lag_us, 6);
	ck_assert_int_eq(m.has_missed, 1);
	ck_assert_uint_eq(m.missed, UINT64_MAX);
}
END_TEST

START_TEST(test_token_splits_one_word_and_leaves_the_rest_as_written)
{
	char line[64];
	char *p = line;

	snprintf(line, sizeof(line), " \tERR  not-found  no  such job\t");
	ck_assert_str_eq(proto_token(&p), "ERR");
	ck_assert_str_eq(p, " not-found  no  such job\t");
	ck_assert_str_eq(proto_token(&p), "not-found");
	ck_assert_str_eq(p, " no  such job\t");
	ck_assert_str_eq(proto_token(&p), "no");
	ck_assert_str_eq(proto_token(&p), "such");
	ck_assert_str_eq(proto_token(&p), "job");
	ck_assert_str_eq(p, "");
	ck_assert_str_eq(proto_token(&p), "");
	ck_assert_str_eq(proto_token(&p), "");

	/* quotes mean nothing here: proto_split_kv reads quoted values */
	snprintf(line, sizeof(line), "FAIL 7 detail=\"a b\"");
	p = line;
	ck_assert_str_eq(proto_token(&p), "FAIL");
	ck_assert_str_eq(proto_token(&p), "7");
	ck_assert_str_eq(p, "detail=\"a b\"");
}
END_TEST

START_TEST(test_split_kv_reads_plain_bare_and_quoted_values)
{
	char line[256];
	char *k[16], *v[16];
	size_t n;

	snprintf(line, sizeof(line),
	    "JOB 9 kind=spin  state=running\tprogress= "
	    "detail=\"a \\\"b\\\" \\\\ c\" x=\"\" end");
	n = proto_split_kv(line, k, v, 16);
	ck_assert_uint_eq(n, 8);
	ck_assert_str_eq(k[0], "JOB");
	ck_assert_str_eq(v[0], "");
	ck_assert_str_eq(k[1], "9");
	ck_assert_str_eq(v[1], "");
	ck_assert_str_eq(k[2], "kind");
	ck_assert_str_eq(v[2], "spin");
	ck_assert_str_eq(k[3], "state");
	ck_assert_str_eq(v[3], "running");
	ck_assert_str_eq(k[4], "progress");
	ck_assert_str_eq(v[4], "");
	ck_assert_str_eq(k[5], "detail");
	ck_assert_str_eq(v[5], "a \"b\" \\ c");
	ck_assert_str_eq(k[6], "x");
	ck_assert_str_eq(v[6], "");
	ck_assert_str_eq(k[7], "end");
	ck_assert_str_eq(v[7], "");

	/* an unterminated quote runs to the end; a=b=c keeps the rest */
	snprintf(line, sizeof(line), "a=b=c q=\"open ended \\");
	n = proto_split_kv(line, k, v, 16);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(v[0], "b=c");
	ck_assert_str_eq(k[1], "q");
	ck_assert_str_eq(v[1], "open ended \\");

	snprintf(line, sizeof(line), "   \t ");
	ck_assert_uint_eq(proto_split_kv(line, k, v, 16), 0);
}
END_TEST

START_TEST(test_split_kv_undoes_what_fail_detail_escapes)
{
	static const char *const details[] = {
		"plain", "with \"quotes\" and \\ slashes", "multi\nline\r\n\ttab",
		"\x01\x02\x1b[31m\x7f", "", "\\x41 not an escape", "trailing \\",
	};
	char buf[256];
	char *k[8], *v[8];
	size_t i;

	for (i = 0; i < NELEM(details); i++) {
		size_t n;

		proto_fmt_fail(buf, sizeof(buf), 3, "error", details[i]);
		buf[strlen(buf) - 1] = '\0';
		n = proto_split_kv(buf, k, v, 8);
		ck_assert_uint_eq(n, 4);
		ck_assert_str_eq(k[2], "reason");
		ck_assert_str_eq(v[2], "error");
		ck_assert_str_eq(k[3], "detail");
		ck_assert_msg(strcmp(v[3], details[i]) == 0, "detail %zu: \"%s\"",
		    i, v[3]);
	}
}
END_TEST

START_TEST(test_split_kv_stores_at_most_max_fields)
{
	char line[64];
	char *k[2], *v[2];

	snprintf(line, sizeof(line), "a=1 b=2 c=3 d=4");
	ck_assert_uint_eq(proto_split_kv(line, k, v, 2), 2);
	ck_assert_str_eq(k[1], "b");
	ck_assert_str_eq(v[1], "2");
	ck_assert_uint_eq(proto_split_kv(line, k, v, 0), 0);
}
END_TEST

START_TEST(test_report_lines_are_formatted_from_the_snapshot)
{
	struct peer_info pi = { .name = "b", .addr = "[::1]:7071", .state = PEER_SUSPECT,
	    .rtt_ns = 1234567, .last_ack_ms = 250 };
	struct hb_status st;
	char buf[512];

	memset(&st, 0, sizeof(st));
	st.uptime_ns = 61999000000ull;
	st.threads = 4;
	st.busy = 3;
	st.queued = 2;
	st.submitted[JOB_SLEEP] = 5;
	st.submitted[JOB_SHA256] = 1;
	st.finished[JOB_SLEEP][JOB_DONE] = 3;
	st.finished[JOB_SPIN][JOB_CANCELLED] = 1;
	st.finished[JOB_SPIN][JOB_SHUTDOWN] = 1;
	st.rejected[JOB_REJECT_BUSY] = 2;
	st.rejected[JOB_REJECT_SHUTTING_DOWN] = 1;
	st.connections = 7;
	st.heartbeats = 100;
	st.lag_ns = 45000;
	st.lag_p50_ns = 1999;
	st.lag_p99_ns = 120000;
	st.lag_max_ns = 3000000;
	st.npeers = 2;
	st.peers_up = 1;
	st.missed = 4;
	st.outcomes_dropped = 1;
	st.draining = 1;
	proto_fmt_stats(buf, sizeof(buf), &st);
	ck_assert_str_eq(buf, "STATS uptime_s=61 threads=4 busy=3 queued=2 "
	    "submitted=6 completed=3 failed=2 rejected=3 connections=7 "
	    "heartbeats=100 lag_p50_us=1 lag_p99_us=120 lag_max_us=3000 "
	    "peers=2 peers_up=1 missed=4 dropped=1 draining=1\n");
	proto_fmt_heartbeat(buf, sizeof(buf), &st);
	ck_assert_str_eq(buf, "HEARTBEAT seq=100 lag_us=45 busy=3 queued=2 "
	    "peers_up=1 peers=2 threads=4 missed=4\n");
	proto_fmt_peer(buf, sizeof(buf), &pi);
	ck_assert_str_eq(buf, "PEER b addr=[::1]:7071 state=suspect rtt_us=1234 "
	    "last_ack_ms=250\n");
	pi.last_ack_ms = -1;
	pi.state = PEER_CONNECTING;
	pi.rtt_ns = 0;
	proto_fmt_peer(buf, sizeof(buf), &pi);
	ck_assert_str_eq(buf, "PEER b addr=[::1]:7071 state=connecting rtt_us=0 "
	    "last_ack_ms=-1\n");
}
END_TEST

START_TEST(test_reject_codes_and_help_are_spelled_once)
{
	size_t i;

	ck_assert_str_eq(proto_reject_code(JOB_REJECT_BUSY), "busy");
	ck_assert_str_eq(proto_reject_code(JOB_REJECT_TOO_MANY_JOBS), "too-many-jobs");
	ck_assert_str_eq(proto_reject_code(JOB_REJECT_SHUTTING_DOWN), "shutting-down");
	ck_assert_str_eq(proto_reject_code(JOB_REJECT_COUNT), "unknown");
	/* one help line per verb, in verb order, each starting with the verb */
	for (i = 0; i < PROTO_VERB_COUNT; i++) {
		const char *line = proto_help_line(i);
		const char *verb = proto_verb_name((enum proto_verb)i);

		ck_assert_ptr_nonnull(line);
		ck_assert_msg(strncmp(line, verb, strlen(verb)) == 0,
		    "help line %zu \"%s\" is not about %s", i, line, verb);
	}
	ck_assert_ptr_null(proto_help_line(PROTO_VERB_COUNT));
}
END_TEST

Suite *proto_suite(void);

Suite *
proto_suite(void)
{
	Suite *s = suite_create("proto");
	TCase *tc;

	tc = tcase_create("requests");
	tcase_add_test(tc, test_every_verb_is_recognised_in_any_case);
	tcase_add_test(tc, test_tabs_runs_of_spaces_and_crlf_separate_tokens);
	tcase_add_test(tc, test_blank_lines_need_no_reply);
	tcase_add_test(tc, test_unknown_verbs_are_bad_requests_naming_the_verb);
	tcase_add_test(tc, test_verbs_without_arguments_reject_extra_tokens);
	tcase_add_test(tc, test_auth_takes_exactly_one_token);
	tcase_add_test(tc, test_cancel_and_status_need_exactly_one_id);
	tcase_add_test(tc, test_ids_must_be_positive_integers);
	tcase_add_test(tc, test_submit_splits_kind_and_key_value_arguments);
	tcase_add_test(tc, test_submit_rejects_missing_kind_and_malformed_arguments);
	tcase_add_test(tc, test_submit_accepts_at_most_the_maximum_number_of_arguments);
	tcase_add_test(tc, test_verb_names_are_upper_case);
	suite_add_tcase(s, tc);

	tc = tcase_create("replies");
	tcase_add_test(tc, test_replies_are_formatted_exactly);
	tcase_add_test(tc, test_fail_detail_is_escaped_onto_one_line);
	tcase_add_test(tc, test_cut_replies_keep_their_newline_and_closing_quote);
	tcase_add_test(tc, test_report_lines_are_formatted_from_the_snapshot);
	tcase_add_test(tc, test_reject_codes_and_help_are_spelled_once);
	suite_add_tcase(s, tc);

	tc = tcase_create("peer");
	tcase_add_test(tc, test_peer_lines_parse_valid_messages);
	tcase_add_test(tc, test_hb_fields_carry_lag_and_unknown_ones_are_ignored);
	tcase_add_test(tc, test_hb_fields_carry_missed_ticks_beside_lag);
	tcase_add_test(tc, test_peer_lines_reject_anything_else);
	tcase_add_test(tc, test_peer_messages_are_formatted_exactly);
	suite_add_tcase(s, tc);

	tc = tcase_create("fields");
	tcase_add_test(tc, test_token_splits_one_word_and_leaves_the_rest_as_written);
	tcase_add_test(tc, test_split_kv_reads_plain_bare_and_quoted_values);
	tcase_add_test(tc, test_split_kv_undoes_what_fail_detail_escapes);
	tcase_add_test(tc, test_split_kv_stores_at_most_max_fields);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(proto_suite)
