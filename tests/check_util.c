/* check_util.c - strict numbers, host:port addresses and the clock. */
#include <netinet/in.h>
#include <string.h>
#include <time.h>

#include "check_common.h"
#include "util.h"

START_TEST(test_parse_u64_accepts_only_digits_in_range)
{
	static const struct {
		const char *s;
		int ok;
		uint64_t v;
	} cases[] = {
		{ "0", 1, 0 }, { "42", 1, 42 }, { "007", 1, 7 },
		{ "18446744073709551615", 1, UINT64_MAX },
		{ "18446744073709551616", 0, 0 }, { "", 0, 0 }, { "-1", 0, 0 },
		{ "+1", 0, 0 }, { " 1", 0, 0 }, { "1 ", 0, 0 }, { "1e3", 0, 0 },
		{ "0x10", 0, 0 }, { "10ms", 0, 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 12345;
		int rc = parse_u64(cases[i].s, 0, UINT64_MAX, &v);

		ck_assert_msg((rc == 0) == cases[i].ok, "parse_u64(\"%s\")", cases[i].s);
		ck_assert_uint_eq(v, cases[i].ok ? cases[i].v : 12345);
	}
}
END_TEST

START_TEST(test_parse_u64_enforces_bounds)
{
	uint64_t v;

	ck_assert_int_eq(parse_u64("5", 1, 10, &v), 0);
	ck_assert_int_eq(parse_u64("0", 1, 10, &v), -1);
	ck_assert_int_eq(parse_u64("11", 1, 10, &v), -1);
}
END_TEST

START_TEST(test_addr_split_handles_ipv4_ipv6_and_names)
{
	char host[64];
	uint16_t port;

	ck_assert_int_eq(addr_split("127.0.0.1:7070", host, sizeof(host), &port), 0);
	ck_assert_str_eq(host, "127.0.0.1");
	ck_assert_uint_eq(port, 7070);
	ck_assert_int_eq(addr_split("[::1]:0", host, sizeof(host), &port), 0);
	ck_assert_str_eq(host, "::1");
	ck_assert_uint_eq(port, 0);
	ck_assert_int_eq(addr_split("localhost:65535", host, sizeof(host), &port), 0);
	ck_assert_str_eq(host, "localhost");
}
END_TEST

START_TEST(test_addr_split_rejects_malformed_addresses)
{
	static const char *bad[] = { "", "7070", ":7070", "host:", "host:65536",
		"host:-1", "::1:7070", "[::1]7070", "[::1:7070", "[]:1", "a b:1",
		"host:70x" };
	char host[64];
	uint16_t port;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(addr_split(bad[i], host, sizeof(host), &port) == -1,
		    "accepted \"%s\"", bad[i]);
}
END_TEST

START_TEST(test_addr_resolve_and_format_round_trip)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char buf[HB_ADDRSTRLEN];

	ck_assert_int_eq(addr_resolve("127.0.0.1:8080", 1, &ss, &len), 0);
	addr_format((struct sockaddr *)&ss, buf, sizeof(buf));
	ck_assert_str_eq(buf, "127.0.0.1:8080");
	ck_assert_int_eq(addr_resolve("[::1]:9", 1, &ss, &len), 0);
	addr_format((struct sockaddr *)&ss, buf, sizeof(buf));
	ck_assert_str_eq(buf, "[::1]:9");
}
END_TEST

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	ck_assert_int_eq(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * now_ns is CLOCK_MONOTONIC in nanoseconds: bracketed by two direct reads
 * of that clock (the wall clock, another unit or an offset would fall
 * outside), and it advances by at least the time slept.
 */
START_TEST(test_now_ns_reads_the_monotonic_clock_in_nanoseconds)
{
	const struct timespec ten_ms = { 0, 10 * 1000000L };
	uint64_t lo, t, hi, t2;

	lo = mono_ns();
	t = now_ns();
	hi = mono_ns();
	ck_assert_uint_ge(t, lo);
	ck_assert_uint_le(t, hi);
	ck_assert_int_eq(nanosleep(&ten_ms, NULL), 0);
	t2 = now_ns();
	ck_assert_uint_ge(t2 - t, 10 * HB_NS_PER_MS);
}
END_TEST

Suite *util_suite(void);

Suite *
util_suite(void)
{
	Suite *s = suite_create("util");
	TCase *tc = tcase_create("util");

	tcase_add_test(tc, test_parse_u64_accepts_only_digits_in_range);
	tcase_add_test(tc, test_parse_u64_enforces_bounds);
	tcase_add_test(tc, test_addr_split_handles_ipv4_ipv6_and_names);
	tcase_add_test(tc, test_addr_split_rejects_malformed_addresses);
	tcase_add_test(tc, test_addr_resolve_and_format_round_trip);
	tcase_add_test(tc, test_now_ns_reads_the_monotonic_clock_in_nanoseconds);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(util_suite)
