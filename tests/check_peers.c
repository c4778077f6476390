/*
 * check_peers.c - the peer protocol of interface.md section 5 and the peer
 * events of section 3: links between real daemons coming up, going
 * suspect and down when a peer is stopped or killed, and coming back; a
 * scripted fake peer that stops acknowledging; protocol errors on the peer
 * port; and a node that was itself stalled, which must blame the stall,
 * not its healthy peer.
 *
 * Peers run with a 100 ms interval and a 500 ms timeout: long enough for
 * sanitizer builds on two cores, short enough to keep the suite quick.
 * Durations are measured from the moment a signal is sent to the moment
 * the line is seen, with deadlines, never by sleeping.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* memmem */
#endif

#include <sys/socket.h>

#include <netinet/in.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check_common.h"
#include "harness.h"

Suite	*peers_suite(void);

#define INTERVAL_MS	100
#define TIMEOUT_MS	500
#define SLACK_MS	700	/* scheduling on a loaded two-core machine */
#define UP_MS		10000	/* a link comes up, backoff included */

/* Start a node named name with the peer timings and extra -s settings. */
static struct hb_proc *
start_node(const char *name, const char *set1, const char *set2)
{
	char n[64], i[64], t[64];
	char *args[16];
	int k = 0;

	snprintf(n, sizeof(n), "node_name=%s", name);
	snprintf(i, sizeof(i), "heartbeat_interval_ms=%d", INTERVAL_MS);
	snprintf(t, sizeof(t), "peer_timeout_ms=%d", TIMEOUT_MS);
	args[k++] = "-s";
	args[k++] = n;
	args[k++] = "-s";
	args[k++] = i;
	args[k++] = "-s";
	args[k++] = t;
	args[k++] = "-s";
	args[k++] = "heartbeat_log_ms=0";
	if (set1 != NULL) {
		args[k++] = "-s";
		args[k++] = (char *)set1;
	}
	if (set2 != NULL) {
		args[k++] = "-s";
		args[k++] = (char *)set2;
	}
	args[k] = NULL;
	return hb_startv(args);
}

/* "peer=name@addr" for -s. */
static char *
peer_arg(char *buf, size_t len, const char *name, const char *addr)
{
	snprintf(buf, len, "peer=%s@%s", name, addr);
	return buf;
}

/* Wait for event (peer-up, ...) about peer name after mark. */
static char *
expect_peer_event(struct hb_proc *p, size_t from, const char *event,
    const char *name, int timeout_ms)
{
	char pat[256];

	snprintf(pat, sizeof(pat), "msg=%s peer=%s", event, name);
	return hb_expect_log(p, from, pat, timeout_ms);
}

/* The PEER line for name from PEERS; lines up to END are checked. */
static char *
peer_line(struct hb_conn *c, const char *name, char *out, size_t len)
{
	char want[96], *line;
	int found = 0;

	snprintf(want, sizeof(want), "PEER %s ", name);
	hb_sendf(c, "PEERS\n");
	for (;;) {
		line = hb_reply(c, "", HB_REPLY_MS);
		if (strcmp(line, "END") == 0)
			break;
		ck_assert_msg(strncmp(line, "PEER ", 5) == 0,
		    "PEERS gave \"%s\"", line);
		ck_assert_msg(hb_fields_in_order(line, "addr state rtt_us "
		    "last_ack_ms"), "not PEER <name> addr= state= rtt_us= "
		    "last_ack_ms=: %s", line);
		if (strncmp(line, want, strlen(want)) == 0) {
			snprintf(out, len, "%s", line);
			found = 1;
		}
	}
	ck_assert_msg(found, "PEERS does not list %s", name);
	return out;
}

START_TEST(test_link_to_a_peer_comes_up_with_rtt)
{
	struct hb_proc *b = start_node("b", NULL, NULL);
	struct hb_proc *a;
	struct hb_conn *c;
	char arg[160], addr[128], line[512], *ev;

	a = start_node("a", peer_arg(arg, sizeof(arg), "b", b->peer_addr),
	    NULL);
	ev = expect_peer_event(a, 0, "peer-up", "b", UP_MS);
	ck_assert_msg(hb_field(ev, "addr", addr, sizeof(addr)) == 0 &&
	    strcmp(addr, b->peer_addr) == 0, "peer-up addr is not %s: %s",
	    b->peer_addr, ev);
	ck_assert_msg(hb_num(ev, "rtt_us") >= 0, "peer-up without rtt_us: %s",
	    ev);

	c = hb_connect(a->work_addr);
	peer_line(c, "b", line, sizeof(line));
	ck_assert_msg(hb_line_has(line, "state=up"), "not up: %s", line);
	ck_assert_msg(hb_field(line, "addr", addr, sizeof(addr)) == 0 &&
	    strcmp(addr, b->peer_addr) == 0, "PEER addr: %s", line);
	ck_assert_msg(hb_num(line, "rtt_us") >= 0 &&
	    hb_num(line, "rtt_us") < 1000000, "rtt_us: %s", line);
	ck_assert_msg(hb_num(line, "last_ack_ms") >= 0 &&
	    hb_num(line, "last_ack_ms") < 3 * INTERVAL_MS + SLACK_MS,
	    "last_ack_ms is not recent: %s", line);
	line[0] = '\0';
	snprintf(line, sizeof(line), "%s", hb_request(c, "STATS", "STATS "));
	ck_assert_msg(hb_num(line, "peers") == 1 && hb_num(line, "peers_up") ==
	    1, "STATS peers: %s", line);
	/* The node without peers lists none. */
	hb_close(c);
	c = hb_connect(b->work_addr);
	hb_request(c, "PEERS", "END");
	hb_close(c);
	hb_free(a);
	hb_free(b);
}
END_TEST

START_TEST(test_peer_name_defaults_to_host_port)
{
	struct hb_proc *b = start_node("b", NULL, NULL);
	struct hb_proc *a;
	struct hb_conn *c;
	char arg[160], line[512];

	snprintf(arg, sizeof(arg), "peer=%s", b->peer_addr);
	a = start_node("a", arg, NULL);
	expect_peer_event(a, 0, "peer-up", b->peer_addr, UP_MS);
	c = hb_connect(a->work_addr);
	peer_line(c, b->peer_addr, line, sizeof(line));
	hb_close(c);
	hb_free(a);
	hb_free(b);
}
END_TEST

START_TEST(test_unreachable_peer_is_listed_but_not_up)
{
	struct hb_proc *a = start_node("a", "peer=ghost@127.0.0.1:1", NULL);
	struct hb_conn *c = hb_connect(a->work_addr);
	char line[512];

	peer_line(c, "ghost", line, sizeof(line));
	ck_assert_msg(!hb_line_has(line, "state=up") &&
	    !hb_line_has(line, "state=suspect"),
	    "unreachable peer: %s", line);
	ck_assert_msg(hb_line_has(line, "state=connecting") ||
	    hb_line_has(line, "state=down"), "state of an unreachable peer: %s",
	    line);
	hb_expect_no_log(a, 0, "msg=peer-up", 0);
	hb_close(c);
	hb_free(a);
}
END_TEST

START_TEST(test_stopped_peer_goes_suspect_then_down_in_time_then_back_up)
{
	struct hb_proc *b = start_node("b", NULL, NULL);
	struct hb_proc *a;
	struct hb_conn *c;
	char arg[160], line[512], *ev;
	uint64_t t0, t_suspect, t_down;
	size_t m;

	a = start_node("a", peer_arg(arg, sizeof(arg), "b", b->peer_addr),
	    NULL);
	expect_peer_event(a, 0, "peer-up", "b", UP_MS);
	m = hb_mark(a);
	t0 = hb_now_ms();
	hb_signal(b, SIGSTOP);
	ev = expect_peer_event(a, m, "peer-suspect", "b",
	    TIMEOUT_MS + INTERVAL_MS + SLACK_MS);
	t_suspect = hb_now_ms() - t0;
	ck_assert_msg(hb_line_has(ev, "addr= reason="),
	    "peer-suspect without addr and reason: %s", ev);
	ev = expect_peer_event(a, m, "peer-down", "b",
	    TIMEOUT_MS + INTERVAL_MS + SLACK_MS);
	t_down = hb_now_ms() - t0;
	ck_assert_msg(hb_line_has(ev, "reason="), "peer-down without reason: "
	    "%s", ev);
	ck_assert_msg(t_down <= TIMEOUT_MS + INTERVAL_MS + SLACK_MS,
	    "peer-down %llu ms after SIGSTOP (timeout %d, interval %d)",
	    (unsigned long long)t_down, TIMEOUT_MS, INTERVAL_MS);
	ck_assert_msg(t_down + INTERVAL_MS >= TIMEOUT_MS,
	    "peer-down only %llu ms after SIGSTOP: before peer_timeout_ms",
	    (unsigned long long)t_down);
	ck_assert_msg(t_suspect <= t_down, "suspect after down");
	ck_assert_msg(strstr(a->err + m, "msg=peer-suspect") <
	    strstr(a->err + m, "msg=peer-down"), "down logged before suspect");

	c = hb_connect(a->work_addr);
	peer_line(c, "b", line, sizeof(line));
	ck_assert_msg(hb_line_has(line, "state=down") ||
	    hb_line_has(line, "state=connecting"), "after down: %s", line);
	ck_assert_msg(hb_num(hb_request(c, "STATS", "STATS "), "peers_up") ==
	    0, "peers_up not 0 with the peer down");

	m = hb_mark(a);
	hb_signal(b, SIGCONT);
	expect_peer_event(a, m, "peer-up", "b", UP_MS);
	peer_line(c, "b", line, sizeof(line));
	ck_assert_msg(hb_line_has(line, "state=up"), "after SIGCONT: %s", line);
	hb_close(c);
	hb_free(a);
	hb_free(b);
}
END_TEST

START_TEST(test_killed_peer_restarted_on_the_same_port_is_reconnected)
{
	struct hb_proc *b = start_node("b", NULL, NULL);
	struct hb_proc *a;
	char arg[160], listen[160], *ev;
	size_t m;

	a = start_node("a", peer_arg(arg, sizeof(arg), "b", b->peer_addr),
	    NULL);
	expect_peer_event(a, 0, "peer-up", "b", UP_MS);
	snprintf(listen, sizeof(listen), "peer_listen=%s", b->peer_addr);
	m = hb_mark(a);
	hb_signal(b, SIGKILL);
	hb_wait_exit(b, HB_EXIT_MS);
	ev = expect_peer_event(a, m, "peer-down", "b",
	    TIMEOUT_MS + INTERVAL_MS + SLACK_MS);
	ck_assert_msg(hb_line_has(ev, "reason="), "peer-down without reason: "
	    "%s", ev);
	hb_free(b);

	m = hb_mark(a);
	b = start_node("b", listen, NULL);
	expect_peer_event(a, m, "peer-up", "b", UP_MS);
	hb_free(a);
	hb_free(b);
}
END_TEST

START_TEST(test_two_nodes_peer_each_other_after_a_reload_adds_the_peer)
{
	char *conf = hb_tmpfile("node_name = b\n");
	struct hb_proc *b, *a;
	struct hb_conn *c;
	char arg[160], buf[512], line[512];
	size_t m;

	b = hb_start("-c", conf, "-s", "heartbeat_interval_ms=100",
	    "-s", "peer_timeout_ms=500", NULL);
	a = start_node("a", peer_arg(arg, sizeof(arg), "b", b->peer_addr),
	    NULL);
	expect_peer_event(a, 0, "peer-up", "b", UP_MS);

	snprintf(buf, sizeof(buf), "node_name = b\npeer = a@%s\n",
	    a->peer_addr);
	hb_write_file(conf, buf);
	m = hb_mark(b);
	hb_signal(b, SIGHUP);
	hb_expect_log(b, m, "msg=reloaded", HB_REPLY_MS);
	expect_peer_event(b, m, "peer-up", "a", UP_MS);
	c = hb_connect(b->work_addr);
	peer_line(c, "a", line, sizeof(line));
	ck_assert_msg(hb_line_has(line, "state=up"), "b sees a: %s", line);

	/* Removing the peer by reload removes it from PEERS. */
	hb_write_file(conf, "node_name = b\n");
	m = hb_mark(b);
	hb_signal(b, SIGHUP);
	hb_expect_log(b, m, "msg=reloaded", HB_REPLY_MS);
	hb_request(c, "PEERS", "END");
	ck_assert_msg(hb_num(hb_request(c, "STATS", "STATS "), "peers") == 0,
	    "peers not 0 after removing the only peer");
	/* a's link to b is undisturbed. */
	hb_expect_no_log(a, 0, "msg=peer-down", 0);
	hb_close(c);
	hb_free(a);
	hb_free(b);
}
END_TEST

/* The value of name{...label...}, or -1 if there is no such sample. */
static double
sample(const char *body, const char *name, const char *label)
{
	const char *l, *close;
	size_t nl = strlen(name);

	for (l = body; l != NULL; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		if (strncmp(l, name, nl) != 0 || l[nl] != '{')
			continue;
		close = strchr(l, '}');
		if (close == NULL || memchr(l, '\n', (size_t)(close - l)))
			continue;
		if (memmem(l, (size_t)(close - l), label, strlen(label)) ==
		    NULL)
			continue;
		return strtod(close + 1, NULL);
	}
	return -1;
}

START_TEST(test_metrics_show_an_up_peer_and_its_rtt)
{
	struct hb_proc *b = start_node("b", NULL, NULL);
	struct hb_proc *a;
	char arg[160], *body;
	double v;
	int st;

	a = start_node("a", peer_arg(arg, sizeof(arg), "b", b->peer_addr),
	    NULL);
	expect_peer_event(a, 0, "peer-up", "b", UP_MS);
	st = hb_http_get(a->http_addr, "/metrics", &body, HB_REPLY_MS);
	ck_assert_int_eq(st, 200);
	v = sample(body, "heartbeatd_peer_up", "peer=\"b\"");
	ck_assert_msg(v == 1, "peer_up{peer=\"b\"} is %g:\n%.3000s", v, body);
	v = sample(body, "heartbeatd_peer_rtt_seconds", "peer=\"b\"");
	ck_assert_msg(v > 0 && v < 1,
	    "peer_rtt_seconds{peer=\"b\"} is %g:\n%.3000s",
	    v, body);
	free(body);
	hb_free(a);
	hb_free(b);
}
END_TEST

/* Accept the daemon's link, expect HELLO <node> 1, answer WELCOME. */
static struct hb_conn *
fake_accept(int lfd, const char *node)
{
	struct hb_conn *f = hb_accept(lfd, UP_MS);
	char want[96];

	ck_assert_msg(f != NULL, "the daemon never connected to the fake peer");
	snprintf(want, sizeof(want), "HELLO %s 1", node);
	ck_assert_str_eq(hb_expect(f, "HELLO ", HB_REPLY_MS), want);
	hb_sendf(f, "WELCOME fake 1\n");
	return f;
}

/* Read one HB, check its shape, ACK it unless told not to; the line. */
static char *
fake_hb(struct hb_conn *f, unsigned long long *seq, int ack)
{
	unsigned long long s, t, now;
	char *line = hb_expect(f, "HB ", 2 * INTERVAL_MS + SLACK_MS);
	struct timespec ts;
	int n = 0;

	ck_assert_msg(sscanf(line, "HB %llu %llu%n", &s, &t, &n) == 2 &&
	    (line[n] == '\0' || line[n] == ' '), "malformed HB: %s", line);
	/* Same machine: t is near our own CLOCK_MONOTONIC in ns. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (unsigned long long)ts.tv_sec * 1000000000ull +
	    (unsigned long long)ts.tv_nsec;
	ck_assert_msg(t <= now && now - t < 2000000000ull,
	    "HB t=%llu is not the monotonic clock in ns (now %llu)", t, now);
	ck_assert_msg(s > *seq, "HB seq %llu after %llu", s, *seq);
	*seq = s;
	if (ack)
		hb_sendf(f, "ACK %llu %llu\n", s, t);
	return line;
}

START_TEST(test_fake_peer_that_stops_acking_goes_suspect_then_down)
{
	char addr[64], arg[160];
	int lfd = hb_listen(addr, sizeof(addr));
	struct hb_proc *a;
	struct hb_conn *f;
	unsigned long long seq = 0;
	long long last_ack, suspect, down;
	uint64_t t0, t;
	char *ev;
	size_t m;
	int i;

	ck_assert_int_ge(lfd, 0);
	a = start_node("a", peer_arg(arg, sizeof(arg), "fake", addr), NULL);
	f = fake_accept(lfd, "a");
	t0 = hb_now_ms();
	for (i = 0; i < 6; i++)
		fake_hb(f, &seq, 1);
	t = hb_now_ms() - t0;
	ck_assert_msg(t >= 4 * INTERVAL_MS && t <= 6 * INTERVAL_MS +
	    SLACK_MS, "6 HBs at %d ms intervals took %llu ms", INTERVAL_MS,
	    (unsigned long long)t);
	expect_peer_event(a, 0, "peer-up", "fake", HB_REPLY_MS);

	/* Keep reading, stop answering. */
	m = hb_mark(a);
	t0 = hb_now_ms();
	last_ack = hb_wall_us();
	while (hb_wait_line(a, m, "msg=peer-down peer=fake", 0) == NULL &&
	    hb_now_ms() - t0 < (uint64_t)(TIMEOUT_MS + INTERVAL_MS + SLACK_MS))
		hb_recv(f, 20);
	ev = expect_peer_event(a, m, "peer-suspect", "fake", 0);
	suspect = (hb_ts_us(ev) - last_ack) / 1000;
	ev = expect_peer_event(a, m, "peer-down", "fake", 0);
	down = (hb_ts_us(ev) - last_ack) / 1000;
	t = hb_now_ms() - t0;
	ck_assert_msg(t + INTERVAL_MS >= TIMEOUT_MS,
	    "peer-down %llu ms after the last ACK", (unsigned long long)t);
	/* By the daemon's own clock: suspect once an ACK is more than an
	 * interval overdue, down at peer_timeout_ms. */
	ck_assert_msg(suspect >= INTERVAL_MS && suspect <= 3 * INTERVAL_MS +
	    300, "peer-suspect %lld ms after the last ACK (interval %d)",
	    suspect, INTERVAL_MS);
	ck_assert_msg(down >= TIMEOUT_MS - INTERVAL_MS && down <= TIMEOUT_MS +
	    INTERVAL_MS + 300, "peer-down %lld ms after the last ACK (timeout "
	    "%d, interval %d)", down, TIMEOUT_MS, INTERVAL_MS);

	/* The link that went down while open is closed and redialled. */
	while (hb_recv(f, HB_REPLY_MS) != NULL)
		;
	ck_assert_msg(f->eof, "the daemon kept a dead link open");
	hb_close(f);
	m = hb_mark(a);
	f = fake_accept(lfd, "a");
	for (i = 0; i < 3; i++)
		fake_hb(f, &seq, 1);
	expect_peer_event(a, m, "peer-up", "fake", HB_REPLY_MS);
	hb_close(f);
	close(lfd);
	hb_free(a);
}
END_TEST

START_TEST(test_heartbeats_to_peers_carry_a_lag_us_field)
{
	char addr[64], arg[160], *line;
	int lfd = hb_listen(addr, sizeof(addr));
	struct hb_proc *a;
	struct hb_conn *f;
	unsigned long long seq = 0;

	ck_assert_int_ge(lfd, 0);
	a = start_node("a", peer_arg(arg, sizeof(arg), "fake", addr), NULL);
	f = fake_accept(lfd, "a");
	fake_hb(f, &seq, 1);
	line = fake_hb(f, &seq, 1);
	ck_assert_msg(hb_num(line, "lag_us") >= 0, "HB without lag_us=N: %s",
	    line);
	hb_close(f);
	close(lfd);
	hb_free(a);
}
END_TEST

START_TEST(test_peer_port_answers_hello_and_echoes_hb_as_ack)
{
	struct hb_proc *a = start_node("qa-a", NULL, NULL);
	struct hb_conn *c = hb_connect(a->peer_addr);

	hb_sendf(c, "HELLO tester 1\n");
	ck_assert_str_eq(hb_expect(c, "WELCOME", HB_REPLY_MS),
	    "WELCOME qa-a 1");
	hb_sendf(c, "HB 1 123\n");
	ck_assert_str_eq(hb_expect(c, "ACK", HB_REPLY_MS), "ACK 1 123");
	hb_sendf(c, "HB 2 18446744073709551615 lag_us=7 future=x\r\n");
	ck_assert_str_eq(hb_expect(c, "ACK", HB_REPLY_MS),
	    "ACK 2 18446744073709551615");
	hb_sendf(c, "HB 3 5\nHB 4 6\nHB 5 7\n");
	ck_assert_str_eq(hb_expect(c, "ACK", HB_REPLY_MS), "ACK 3 5");
	ck_assert_str_eq(hb_expect(c, "ACK", HB_REPLY_MS), "ACK 4 6");
	ck_assert_str_eq(hb_expect(c, "ACK", HB_REPLY_MS), "ACK 5 7");
	hb_sendf(c, "PING\n");
	hb_expect(c, "ERR bad-request", HB_REPLY_MS);
	hb_expect_eof(c, HB_REPLY_MS);
	hb_close(c);
	hb_free(a);
}
END_TEST

START_TEST(test_peer_port_refuses_garbage_and_hb_before_hello)
{
	static const char *const bad[] = { "garbage here\n", "HB 1 123\n",
	    "ACK 1 2\n", "\n", "HELLO x 1\nHB abc def\n",
	    "HELLO x 1\nHB 1\n", "HELLO x 1\nWELCOME x 1\n", NULL };
	struct hb_proc *a = start_node("a", NULL, NULL);
	struct hb_conn *c;
	size_t i;

	for (i = 0; bad[i] != NULL; i++) {
		c = hb_connect(a->peer_addr);
		hb_sendf(c, "%s", bad[i]);
		if (strncmp(bad[i], "HELLO", 5) == 0)
			hb_expect(c, "WELCOME ", HB_REPLY_MS);
		hb_expect(c, "ERR bad-request", HB_REPLY_MS);
		hb_expect_eof(c, HB_REPLY_MS);
		hb_close(c);
	}
	c = hb_connect(a->work_addr);
	hb_request(c, "PING", "PONG");
	hb_close(c);
	hb_free(a);
}
END_TEST

START_TEST(test_peer_port_closes_an_overlong_line)
{
	struct hb_proc *a = start_node("a", NULL, NULL);
	struct hb_conn *c = hb_connect(a->peer_addr);
	size_t n = 256 * 1024;
	char *big = malloc(n);
	char *line;

	ck_assert_ptr_nonnull(big);
	memset(big, 'H', n);
	hb_sendf(c, "HELLO tester 1\n");
	hb_expect(c, "WELCOME ", HB_REPLY_MS);
	/* The daemon may stop reading before all of it is sent. */
	hb_send(c, big, n);
	free(big);
	while ((line = hb_recv(c, HB_REPLY_MS)) != NULL)
		ck_assert_msg(strncmp(line, "ERR", 3) == 0,
		    "overlong line answered \"%s\"", line);
	ck_assert_msg(c->eof, "connection still open after an overlong line");
	hb_close(c);
	c = hb_connect(a->peer_addr);
	hb_sendf(c, "HELLO tester 1\n");
	hb_expect(c, "WELCOME ", HB_REPLY_MS);
	hb_close(c);
	hb_free(a);
}
END_TEST

START_TEST(test_stalled_node_blames_itself_not_its_healthy_peer)
{
	struct hb_proc *b = start_node("b", NULL, NULL);
	struct hb_proc *a;
	struct hb_conn *c;
	char arg[160], line[512];
	size_t m;

	a = start_node("a", peer_arg(arg, sizeof(arg), "b", b->peer_addr),
	    NULL);
	expect_peer_event(a, 0, "peer-up", "b", UP_MS);
	m = hb_mark(a);
	hb_signal(a, SIGSTOP);
	/* The stall itself is the stimulus: three times peer_timeout_ms. */
	poll(NULL, 0, 3 * TIMEOUT_MS);
	hb_signal(a, SIGCONT);
	hb_expect_log(a, m, "msg=local-stall", HB_REPLY_MS);
	/* Give it several intervals to (wrongly) declare b down. */
	hb_expect_no_log(a, m, "msg=peer-down peer=b", 3 * INTERVAL_MS +
	    TIMEOUT_MS);
	c = hb_connect(a->work_addr);
	peer_line(c, "b", line, sizeof(line));
	ck_assert_msg(hb_line_has(line, "state=up"), "after a local stall: %s",
	    line);
	hb_close(c);
	hb_free(a);
	hb_free(b);
}
END_TEST

START_TEST(test_rtt_reflects_a_slow_peers_ack_delay)
{
	char addr[64], arg[160], line[512], *hb;
	int lfd = hb_listen(addr, sizeof(addr));
	struct hb_proc *a;
	struct hb_conn *f, *c;
	unsigned long long seq = 0, s1, t1;
	long long rtt;
	int i;

	ck_assert_int_ge(lfd, 0);
	a = start_node("a", peer_arg(arg, sizeof(arg), "slow", addr), NULL);
	f = fake_accept(lfd, "a");
	for (i = 0; i < 5; i++) {
		hb = fake_hb(f, &seq, 0);
		ck_assert(sscanf(hb, "HB %llu %llu", &s1, &t1) == 2);
		/* The delay is the stimulus: answer 60 ms late. */
		poll(NULL, 0, 60);
		hb_sendf(f, "ACK %llu %llu\n", s1, t1);
	}
	expect_peer_event(a, 0, "peer-up", "slow", HB_REPLY_MS);
	c = hb_connect(a->work_addr);
	peer_line(c, "slow", line, sizeof(line));
	rtt = hb_num(line, "rtt_us");
	ck_assert_msg(rtt >= 60000 && rtt < 60000 + SLACK_MS * 1000,
	    "ACKs 60 ms late but rtt_us=%lld: %s", rtt, line);
	hb_close(c);
	hb_close(f);
	close(lfd);
	hb_free(a);
}
END_TEST

START_TEST(test_late_acks_make_a_peer_suspect_but_not_down)
{
	char addr[64], arg[160], line[512], *hb;
	int lfd = hb_listen(addr, sizeof(addr));
	struct hb_proc *a;
	struct hb_conn *f, *c;
	unsigned long long seq = 0, s1, t1, held[16][2];
	int i, nheld = 0;
	uint64_t t0;
	size_t m;

	ck_assert_int_ge(lfd, 0);
	a = start_node("a", peer_arg(arg, sizeof(arg), "lazy", addr), NULL);
	f = fake_accept(lfd, "a");
	for (i = 0; i < 3; i++)
		fake_hb(f, &seq, 1);
	expect_peer_event(a, 0, "peer-up", "lazy", HB_REPLY_MS);
	m = hb_mark(a);
	/* Hold the ACKs until a says suspect (well before the timeout). */
	t0 = hb_now_ms();
	while (hb_wait_line(a, m, "msg=peer-suspect peer=lazy", 0) == NULL) {
		ck_assert_msg(hb_now_ms() - t0 < TIMEOUT_MS + SLACK_MS,
		    "no peer-suspect with ACKs held for %llu ms",
		    (unsigned long long)(hb_now_ms() - t0));
		hb = hb_recv(f, 10);
		if (hb != NULL && nheld < 16 &&
		    sscanf(hb, "HB %llu %llu", &s1, &t1) == 2) {
			held[nheld][0] = s1;
			held[nheld++][1] = t1;
		}
	}
	for (i = 0; i < nheld; i++)
		hb_sendf(f, "ACK %llu %llu\n", held[i][0], held[i][1]);
	seq = nheld > 0 ? held[nheld - 1][0] : seq;
	for (i = 0; i < 8; i++)
		fake_hb(f, &seq, 1);
	ck_assert_msg(hb_count_lines(a, m, "msg=peer-down") == 0,
	    "late ACKs made the peer down");
	c = hb_connect(a->work_addr);
	peer_line(c, "lazy", line, sizeof(line));
	ck_assert_msg(hb_line_has(line, "state=up"), "after ACKs resumed: %s",
	    line);
	hb_close(c);
	hb_close(f);
	close(lfd);
	hb_free(a);
}
END_TEST

START_TEST(test_peer_that_closes_at_once_is_not_redialled_in_a_tight_loop)
{
	char addr[64], arg[160];
	int lfd = hb_listen(addr, sizeof(addr));
	struct hb_proc *a;
	struct hb_conn *f;
	uint64_t t0;
	int n = 0;

	ck_assert_int_ge(lfd, 0);
	a = start_node("a", peer_arg(arg, sizeof(arg), "rude", addr), NULL);
	t0 = hb_now_ms();
	/* Watch for two seconds: every attempt is accepted and closed. */
	while (hb_now_ms() - t0 < 2000) {
		f = hb_accept(lfd, (int)(2000 - (hb_now_ms() - t0)) + 1);
		if (f == NULL)
			continue;
		n++;
		hb_close(f);
	}
	ck_assert_msg(n >= 2, "only %d connection attempts in 2 s", n);
	ck_assert_msg(n <= 25, "%d connection attempts in 2 s: no backoff", n);
	hb_expect_no_log(a, 0, "msg=peer-up", 0);
	close(lfd);
	hb_free(a);
}
END_TEST

START_TEST(test_peer_answering_garbage_to_hello_never_comes_up)
{
	char addr[64], arg[160];
	int lfd = hb_listen(addr, sizeof(addr));
	struct hb_proc *a;
	struct hb_conn *f;
	int i;

	ck_assert_int_ge(lfd, 0);
	a = start_node("a", peer_arg(arg, sizeof(arg), "odd", addr), NULL);
	for (i = 0; i < 2; i++) {
		f = hb_accept(lfd, UP_MS);
		ck_assert_msg(f != NULL, "attempt %d never came", i + 1);
		hb_expect(f, "HELLO a 1", HB_REPLY_MS);
		hb_sendf(f, "NONSENSE here\nACK 1 1\n");
		/* The daemon drops this link (maybe after an ERR line). */
		while (hb_recv(f, HB_REPLY_MS) != NULL)
			;
		ck_assert_msg(f->eof, "link kept after a bad WELCOME");
		hb_close(f);
	}
	hb_expect_no_log(a, 0, "msg=peer-up", 0);
	close(lfd);
	hb_free(a);
}
END_TEST

START_TEST(test_acks_stay_prompt_while_workers_burn_every_cpu)
{
	struct hb_proc *a = start_node("a", "threads=4", NULL);
	struct hb_conn *w = hb_connect(a->work_addr);
	struct hb_conn *c = hb_connect(a->peer_addr);
	uint64_t t, worst = 0, total = 0;
	int i, n = 30;
	char *line;

	for (i = 0; i < 4; i++)
		hb_request(w, "SUBMIT spin ms=8000", "OK ");
	hb_sendf(c, "HELLO probe 1\n");
	hb_expect(c, "WELCOME a 1", HB_REPLY_MS);
	for (i = 0; i < n; i++) {
		t = hb_now_ms();
		hb_sendf(c, "HB %d %d\n", i + 1, i);
		line = hb_expect(c, "ACK ", HB_REPLY_MS);
		t = hb_now_ms() - t;
		(void)line;
		total += t;
		if (t > worst)
			worst = t;
		poll(NULL, 0, 20);
	}
	ck_assert_msg(worst < 200 && total / (uint64_t)n < 20,
	    "ACK latency with all workers busy: mean %llu ms, worst %llu ms",
	    (unsigned long long)(total / (uint64_t)n),
	    (unsigned long long)worst);
	line = hb_request(w, "STATS", "STATS ");
	ck_assert_int_eq(hb_num(line, "busy"), 4);
	hb_close(c);
	hb_close(w);
	hb_free(a);
}
END_TEST

START_TEST(test_reload_moves_a_peer_to_a_new_address)
{
	struct hb_proc *b1 = start_node("b1", NULL, NULL);
	struct hb_proc *b2 = start_node("b2", NULL, NULL);
	struct hb_proc *a;
	struct hb_conn *c;
	char *conf, buf[512], line[512], addr[128], *ev;
	size_t m;

	snprintf(buf, sizeof(buf), "node_name = a\nheartbeat_interval_ms = "
	    "%d\npeer_timeout_ms = %d\npeer = b@%s\n", INTERVAL_MS, TIMEOUT_MS,
	    b1->peer_addr);
	conf = hb_tmpfile(buf);
	a = hb_start("-c", conf, NULL);
	ev = expect_peer_event(a, 0, "peer-up", "b", UP_MS);
	ck_assert_msg(hb_line_has(ev, "addr=") && strstr(ev, b1->peer_addr),
	    "first link not to b1: %s", ev);
	snprintf(buf, sizeof(buf), "node_name = a\nheartbeat_interval_ms = "
	    "%d\npeer_timeout_ms = %d\npeer = b@%s\n", INTERVAL_MS, TIMEOUT_MS,
	    b2->peer_addr);
	hb_write_file(conf, buf);
	m = hb_mark(a);
	hb_signal(a, SIGHUP);
	hb_expect_log(a, m, "msg=reloaded", HB_REPLY_MS);
	ev = expect_peer_event(a, m, "peer-up", "b", UP_MS);
	ck_assert_msg(hb_field(ev, "addr", addr, sizeof(addr)) == 0 &&
	    strcmp(addr, b2->peer_addr) == 0, "after reload: %s", ev);
	c = hb_connect(a->work_addr);
	peer_line(c, "b", line, sizeof(line));
	ck_assert_msg(hb_field(line, "addr", addr, sizeof(addr)) == 0 &&
	    strcmp(addr, b2->peer_addr) == 0, "PEERS after reload: %s", line);
	ck_assert_int_eq(hb_num(hb_request(c, "STATS", "STATS "), "peers"), 1);
	hb_close(c);
	hb_free(a);
	hb_free(b1);
	hb_free(b2);
}
END_TEST

START_TEST(test_a_lost_connection_is_down_at_once_not_after_the_timeout)
{
	char addr[64], arg[160], *ev;
	int lfd = hb_listen(addr, sizeof(addr));
	struct hb_proc *a;
	struct hb_conn *f;
	unsigned long long seq = 0;
	uint64_t t0, t;
	size_t m;
	int i;

	ck_assert_int_ge(lfd, 0);
	/* A long timeout: only the closed connection can explain a down. */
	a = start_node("a", peer_arg(arg, sizeof(arg), "fake", addr),
	    "peer_timeout_ms=5000");
	f = fake_accept(lfd, "a");
	for (i = 0; i < 3; i++)
		fake_hb(f, &seq, 1);
	expect_peer_event(a, 0, "peer-up", "fake", HB_REPLY_MS);
	m = hb_mark(a);
	t0 = hb_now_ms();
	hb_close(f);
	ev = expect_peer_event(a, m, "peer-down", "fake", 5000);
	t = hb_now_ms() - t0;
	ck_assert_msg(t < 1500, "peer-down %llu ms after the peer closed the "
	    "connection (peer_timeout_ms=5000)", (unsigned long long)t);
	ck_assert_msg(hb_line_has(ev, "reason="), "no reason: %s", ev);
	/* And it redials. */
	f = fake_accept(lfd, "a");
	hb_close(f);
	close(lfd);
	hb_free(a);
}
END_TEST

START_TEST(test_sigterm_with_peer_links_up_exits_cleanly)
{
	struct hb_proc *b = start_node("b", NULL, NULL);
	struct hb_proc *a;
	char arg[160];
	size_t m;
	uint64_t t;

	a = start_node("a", peer_arg(arg, sizeof(arg), "b", b->peer_addr),
	    NULL);
	expect_peer_event(a, 0, "peer-up", "b", UP_MS);
	m = hb_mark(a);
	t = hb_now_ms();
	hb_signal(b, SIGTERM);
	hb_expect_exit(b, 0, HB_EXIT_MS);
	ck_assert_msg(hb_now_ms() - t < 3000, "b with an inbound peer took "
	    "%llu ms to stop", (unsigned long long)(hb_now_ms() - t));
	expect_peer_event(a, m, "peer-down", "b", TIMEOUT_MS + SLACK_MS);
	t = hb_now_ms();
	hb_signal(a, SIGTERM);
	hb_expect_exit(a, 0, HB_EXIT_MS);
	ck_assert_msg(hb_now_ms() - t < 3000, "a redialling a peer took %llu "
	    "ms to stop", (unsigned long long)(hb_now_ms() - t));
	hb_free(a);
	hb_free(b);
}
END_TEST

START_TEST(test_inbound_peer_that_never_reads_acks_is_bounded)
{
	struct hb_proc *a = start_node("a", NULL, NULL);
	struct hb_conn *c = hb_connect(a->peer_addr);
	struct hb_conn *w;
	const char hb[] = "HB 123456789 123456789012345\n";
	size_t chunk = (sizeof(hb) - 1) * 2000, off = 0, sent = 0, i;
	char *buf = malloc(chunk);
	uint64_t t0, stalled = 0;
	long rss0, rss1;
	int rcv = 4096;
	ssize_t n;

	ck_assert_ptr_nonnull(buf);
	for (i = 0; i < chunk; i++)
		buf[i] = hb[i % (sizeof(hb) - 1)];
	setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	hb_sendf(c, "HELLO greedy 1\n");
	rss0 = hb_rss_kb(a);
	/* 64 MiB of HBs whose ACKs are never read, for at most 15 s. */
	t0 = hb_now_ms();
	while (sent < (64u << 20) && hb_now_ms() - t0 < 15000) {
		n = send(c->fd, buf + off, chunk - off, MSG_NOSIGNAL);
		if (n > 0) {
			sent += (size_t)n;
			off = (off + (size_t)n) % chunk;
			stalled = 0;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			break;	/* closed by the daemon: bounded too */
		if (stalled == 0)
			stalled = hb_now_ms();
		else if (hb_now_ms() - stalled > 1000)
			break;
		poll(NULL, 0, 10);
	}
	rss1 = hb_rss_kb(a);
	ck_assert_msg(rss1 - rss0 < 64 * 1024, "daemon grew from %ld kB to "
	    "%ld kB for a peer that never reads (%zu bytes taken)", rss0, rss1,
	    sent);
	free(buf);
	w = hb_connect(a->work_addr);
	hb_request(w, "PING", "PONG");
	hb_close(w);
	hb_close(c);
	hb_free(a);
}
END_TEST

START_TEST(test_three_node_mesh_isolates_only_the_stopped_node)
{
	static const char *const names[] = { "n0", "n1", "n2" };
	struct hb_proc *n[3];
	char *conf[3], buf[512], line[512];
	struct hb_conn *c;
	size_t m[3];
	int i, j;

	for (i = 0; i < 3; i++) {
		snprintf(buf, sizeof(buf), "node_name = %s\n"
		    "heartbeat_interval_ms = %d\npeer_timeout_ms = %d\n",
		    names[i], INTERVAL_MS, TIMEOUT_MS);
		conf[i] = hb_tmpfile(buf);
		n[i] = hb_start("-c", conf[i], NULL);
	}
	/* Now that every port is known, each node learns the other two. */
	for (i = 0; i < 3; i++) {
		int k = snprintf(buf, sizeof(buf), "node_name = %s\n"
		    "heartbeat_interval_ms = %d\npeer_timeout_ms = %d\n",
		    names[i], INTERVAL_MS, TIMEOUT_MS);

		for (j = 0; j < 3; j++)
			if (j != i)
				k += snprintf(buf + k, sizeof(buf) - (size_t)k,
				    "peer = %s@%s\n", names[j],
				    n[j]->peer_addr);
		hb_write_file(conf[i], buf);
		m[i] = hb_mark(n[i]);
		hb_signal(n[i], SIGHUP);
	}
	for (i = 0; i < 3; i++)
		for (j = 0; j < 3; j++)
			if (j != i)
				expect_peer_event(n[i], m[i], "peer-up",
				    names[j], UP_MS);
	for (i = 0; i < 2; i++)
		m[i] = hb_mark(n[i]);
	hb_signal(n[2], SIGSTOP);
	expect_peer_event(n[0], m[0], "peer-down", "n2",
	    TIMEOUT_MS + INTERVAL_MS + SLACK_MS);
	expect_peer_event(n[1], m[1], "peer-down", "n2",
	    TIMEOUT_MS + INTERVAL_MS + SLACK_MS);
	for (i = 0; i < 2; i++) {
		c = hb_connect(n[i]->work_addr);
		peer_line(c, names[1 - i], line, sizeof(line));
		ck_assert_msg(hb_line_has(line, "state=up"), "%s sees %s",
		    names[i], line);
		ck_assert_int_eq(hb_num(hb_request(c, "STATS", "STATS "),
		    "peers_up"), 1);
		hb_close(c);
		ck_assert_msg(hb_count_lines(n[i], m[i], "msg=peer-down "
		    "peer=n0") + hb_count_lines(n[i], m[i], "msg=peer-down "
		    "peer=n1") == 0, "%s lost a healthy peer", names[i]);
	}
	hb_signal(n[2], SIGCONT);
	expect_peer_event(n[0], m[0], "peer-up", "n2", UP_MS);
	expect_peer_event(n[1], m[1], "peer-up", "n2", UP_MS);
	for (i = 0; i < 3; i++)
		hb_free(n[i]);
}
END_TEST

START_TEST(test_peer_link_works_over_ipv6)
{
	struct sockaddr_in6 sin6;
	struct hb_proc *a, *b;
	char arg[160], addr[128], *ev;
	int fd = socket(AF_INET6, SOCK_STREAM, 0);

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_addr = in6addr_loopback;
	if (fd == -1 || bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) ==
	    -1) {
		/* No IPv6 loopback on this machine: nothing to test. */
		if (fd != -1)
			close(fd);
		return;
	}
	close(fd);
	b = start_node("b", "peer_listen=[::1]:0", NULL);
	ck_assert_msg(strncmp(b->peer_addr, "[::1]:", 6) == 0,
	    "IPv6 peer addr logged as %s", b->peer_addr);
	a = start_node("a", peer_arg(arg, sizeof(arg), "b", b->peer_addr),
	    NULL);
	ev = expect_peer_event(a, 0, "peer-up", "b", UP_MS);
	ck_assert_msg(hb_field(ev, "addr", addr, sizeof(addr)) == 0 &&
	    strcmp(addr, b->peer_addr) == 0, "peer-up addr: %s", ev);
	hb_free(a);
	hb_free(b);
}
END_TEST

START_TEST(test_hello_with_a_name_no_node_could_have_is_refused)
{
	static const char *const bad[] = { "HELLO \"evil\\name\x01 1\n",
	    "HELLO a=b 1\n", "HELLO tab\there 1\n", "HELLO x 2\n",
	    "HELLO 1\n", NULL };
	struct hb_proc *a = start_node("a", NULL, NULL);
	struct hb_conn *c;
	char hello[200];
	size_t i;

	for (i = 0; bad[i] != NULL; i++) {
		c = hb_connect(a->peer_addr);
		hb_sendf(c, "%s", bad[i]);
		hb_expect(c, "ERR bad-request", HB_REPLY_MS);
		hb_expect_eof(c, HB_REPLY_MS);
		hb_close(c);
	}
	/* Longer than the 64 characters a node_name may have. */
	snprintf(hello, sizeof(hello), "HELLO %0100d 1\n", 0);
	c = hb_connect(a->peer_addr);
	hb_sendf(c, "%s", hello);
	hb_expect(c, "ERR bad-request", HB_REPLY_MS);
	hb_close(c);
	hb_free(a);
}
END_TEST

START_TEST(test_acks_with_a_wrong_echo_do_not_poison_the_rtt)
{
	char addr[64], arg[160], line[512], *hb;
	int lfd = hb_listen(addr, sizeof(addr));
	struct hb_proc *a;
	struct hb_conn *f, *c;
	unsigned long long s1, t1;
	char *ev;
	int i;

	ck_assert_int_ge(lfd, 0);
	a = start_node("a", peer_arg(arg, sizeof(arg), "liar", addr), NULL);
	f = fake_accept(lfd, "a");
	/* Echo t=1 instead of t: "now - t" would be the machine's uptime. */
	for (i = 0; i < 4 && (hb = hb_recv(f, HB_REPLY_MS)) != NULL; i++) {
		ck_assert(sscanf(hb, "HB %llu %llu", &s1, &t1) == 2);
		hb_sendf(f, "ACK %llu 1\n", s1);
	}
	c = hb_connect(a->work_addr);
	peer_line(c, "liar", line, sizeof(line));
	ck_assert_msg(hb_num(line, "rtt_us") < 10000000,
	    "an ACK echoing t=1 set rtt_us to %lld: %s", hb_num(line, "rtt_us"),
	    line);
	ev = hb_wait_line(a, 0, "msg=peer-up peer=liar", 0);
	ck_assert_msg(ev == NULL || hb_num(ev, "rtt_us") < 10000000,
	    "peer-up with an absurd rtt: %s", ev);
	hb_close(c);
	hb_close(f);
	close(lfd);
	hb_free(a);
}
END_TEST

/* HELLO tester 1, answered WELCOME. */
static struct hb_conn *
hello_conn(struct hb_proc *a, const char *name)
{
	struct hb_conn *c = hb_connect(a->peer_addr);

	hb_sendf(c, "HELLO %s 1\n", name);
	hb_expect(c, "WELCOME ", HB_REPLY_MS);
	return c;
}

/* An HB on an inbound connection is still answered: it was kept. */
static void
expect_acked(struct hb_conn *c, unsigned long long seq)
{
	char want[64];

	hb_sendf(c, "HB %llu 1\n", seq);
	snprintf(want, sizeof(want), "ACK %llu 1", seq);
	ck_assert_str_eq(hb_expect(c, "ACK ", HB_REPLY_MS), want);
}

START_TEST(test_inbound_connection_without_hello_is_closed_at_the_deadline)
{
	struct hb_proc *a = start_node("a", "hello_timeout_ms=400", NULL);
	struct hb_conn *quiet = hb_connect(a->peer_addr);
	struct hb_conn *slow = hb_connect(a->peer_addr);
	struct hb_conn *c;
	uint64_t t0 = hb_now_ms(), t;

	/* A byte every 100 ms never makes a line: a deadline, not idleness. */
	while (!slow->eof && hb_now_ms() - t0 < 400 + 4 * SLACK_MS) {
		hb_send(slow, "H", 1);
		hb_recv(slow, 100);
	}
	t = hb_now_ms() - t0;
	ck_assert_msg(slow->eof, "a connection trickling bytes without HELLO "
	    "was still open after %llu ms", (unsigned long long)t);
	ck_assert_msg(t >= 300, "closed after %llu ms, before the 400 ms "
	    "hello_timeout_ms", (unsigned long long)t);
	hb_expect_eof(quiet, SLACK_MS);
	/* One that says HELLO in time stays. */
	c = hello_conn(a, "tester");
	poll(NULL, 0, 600);
	expect_acked(c, 1);
	hb_close(c);
	hb_close(slow);
	hb_close(quiet);
	hb_free(a);
}
END_TEST

START_TEST(test_full_peer_port_closes_the_longest_silent_connection)
{
	struct hb_proc *a = start_node("a", "peer_in_max=4", NULL);
	struct hb_conn *talker, *idle1, *idle2, *hello, *e, *f, *g;

	/* Accepted in this order; talker is heard from last. */
	talker = hello_conn(a, "talker");
	idle1 = hb_connect(a->peer_addr);
	idle2 = hb_connect(a->peer_addr);
	hello = hello_conn(a, "hello");
	expect_acked(talker, 1);

	/* Full: each newcomer gets in, the longest silent one goes. */
	e = hello_conn(a, "e");
	hb_expect_eof(idle1, HB_REPLY_MS);
	f = hello_conn(a, "f");
	hb_expect_eof(idle2, HB_REPLY_MS);
	g = hello_conn(a, "g");
	hb_expect_eof(hello, HB_REPLY_MS);
	expect_acked(talker, 2);
	expect_acked(e, 1);
	hb_expect_log(a, 0, "msg=peer-in-evicted", HB_REPLY_MS);
	hb_close(talker);
	hb_close(idle1);
	hb_close(idle2);
	hb_close(hello);
	hb_close(e);
	hb_close(f);
	hb_close(g);
	hb_free(a);
}
END_TEST

START_TEST(test_inbound_limits_are_checked_and_applied_on_reload)
{
	char *path = hb_tmpfile("peer_in_max = 0\n");
	struct hb_proc *p = hb_spawn_daemon("-t", "-c", path, NULL);
	struct hb_conn *quiet;
	char want[512];
	size_t m;

	hb_expect_exit(p, 1, HB_EXIT_MS);
	snprintf(want, sizeof(want), "%s:1: peer_in_max: ", path);
	ck_assert_msg(strstr(p->err, want) != NULL, "no \"%s\" in: %s", want,
	    p->err);
	hb_free(p);
	hb_write_file(path, "hello_timeout_ms = 3600001\n");
	p = hb_spawn_daemon("-t", "-c", path, NULL);
	hb_expect_exit(p, 1, HB_EXIT_MS);
	snprintf(want, sizeof(want), "%s:1: hello_timeout_ms: ", path);
	ck_assert_msg(strstr(p->err, want) != NULL, "no \"%s\" in: %s", want,
	    p->err);
	hb_free(p);

	/* A reload shortens the wait of a connection already waiting. */
	hb_write_file(path, "work_listen = 127.0.0.1:0\n"
	    "peer_listen = 127.0.0.1:0\nhttp_listen = 127.0.0.1:0\n"
	    "hello_timeout_ms = 60000\n");
	p = hb_spawn_daemon("-c", path, NULL);
	ck_assert_int_eq(hb_wait_ready(p, HB_READY_MS), 0);
	quiet = hb_connect(p->peer_addr);
	hb_write_file(path, "work_listen = 127.0.0.1:0\n"
	    "peer_listen = 127.0.0.1:0\nhttp_listen = 127.0.0.1:0\n"
	    "hello_timeout_ms = 200\n");
	m = hb_mark(p);
	hb_signal(p, SIGHUP);
	hb_expect_log(p, m, "msg=reloaded", HB_REPLY_MS);
	hb_expect_eof(quiet, 200 + SLACK_MS);
	hb_close(quiet);
	hb_free(p);
}
END_TEST

START_TEST(test_peer_that_acks_once_then_misbehaves_is_not_redialled_fast)
{
	char addr[64], arg[160];
	int lfd = hb_listen(addr, sizeof(addr));
	unsigned long long seq = 0, s, t;
	struct hb_proc *a;
	struct hb_conn *f;
	uint64_t t0;
	char *line;
	int n = 0;

	ck_assert_int_ge(lfd, 0);
	a = start_node("a", peer_arg(arg, sizeof(arg), "flaky", addr), NULL);
	t0 = hb_now_ms();
	/* Each attempt: WELCOME, ACK the first HB (up), then garbage. */
	while (hb_now_ms() - t0 < 3000) {
		f = hb_accept(lfd, (int)(3000 - (hb_now_ms() - t0)) + 1);
		if (f == NULL)
			continue;
		n++;
		hb_expect(f, "HELLO a 1", HB_REPLY_MS);
		hb_sendf(f, "WELCOME flaky 1\n");
		line = hb_expect(f, "HB ", HB_REPLY_MS);
		ck_assert(sscanf(line, "HB %llu %llu", &s, &t) == 2);
		ck_assert_msg(s > seq, "HB seq %llu after %llu", s, seq);
		seq = s;
		hb_sendf(f, "ACK %llu %llu\nGARBAGE\n", s, t);
		while (hb_recv(f, HB_REPLY_MS) != NULL)
			;
		hb_close(f);
	}
	hb_expect_log(a, 0, "msg=peer-up peer=flaky", HB_REPLY_MS);
	hb_pump(a, 100);
	ck_assert_msg(hb_count_lines(a, 0, "msg=peer-up peer=flaky") >= 2,
	    "the ACK never brought the link up");
	/* 100, 200, 400, 800, 1600 ms (+ 25 %): 5 or 6 attempts in 3 s. */
	ck_assert_msg(n >= 3 && n <= 7, "%d connection attempts in 3 s to a "
	    "peer that acks once, then sends garbage", n);
	close(lfd);
	hb_free(a);
}
END_TEST

START_TEST(test_heartbeats_report_ticks_missed_by_a_stalled_sender)
{
	char addr[64], arg[160], *line;
	int lfd = hb_listen(addr, sizeof(addr));
	struct hb_proc *a;
	struct hb_conn *f;
	unsigned long long seq = 0;
	uint64_t t0;
	long long missed = 0;

	ck_assert_int_ge(lfd, 0);
	/* a long peer timeout: on a loaded machine this test process itself
	 * may be slow to ACK, and the link must not go down for that; the
	 * HBs are what is looked at */
	a = start_node("a", peer_arg(arg, sizeof(arg), "fake", addr),
	    "peer_timeout_ms=5000");
	f = fake_accept(lfd, "a");
	line = fake_hb(f, &seq, 1);
	line = fake_hb(f, &seq, 1);
	ck_assert_msg(hb_num(line, "missed") == 0, "HB without missed=0: %s",
	    line);
	hb_signal(a, SIGSTOP);
	poll(NULL, 0, 5 * INTERVAL_MS);
	hb_signal(a, SIGCONT);
	t0 = hb_now_ms();
	while (missed <= 0 && hb_now_ms() - t0 < (uint64_t)(10 * INTERVAL_MS)) {
		line = fake_hb(f, &seq, 1);
		missed = hb_num(line, "missed");
		ck_assert_msg(missed >= 0, "HB without missed=N: %s", line);
	}
	ck_assert_msg(missed >= 3, "after a 5-interval stall the HB said "
	    "missed=%lld", missed);
	hb_close(f);
	close(lfd);
	hb_free(a);
}
END_TEST

START_TEST(test_receiver_logs_a_stalled_sender_once_per_stall)
{
	struct hb_proc *a = start_node("a", NULL, NULL);
	struct hb_conn *c = hello_conn(a, "slowpoke");
	size_t m = hb_mark(a);

	/* the interval is 100 ms: lag_us over 100000 is a stall */
	hb_sendf(c, "HB 1 1 lag_us=90000 missed=0\n");
	hb_expect(c, "ACK 1 ", HB_REPLY_MS);
	hb_sendf(c, "HB 2 2 lag_us=250000 missed=0\n");
	hb_expect(c, "ACK 2 ", HB_REPLY_MS);
	hb_expect_log(a, m, "level=warn msg=peer-stalled peer=slowpoke "
	    "lag_us=250000 missed=0", HB_REPLY_MS);
	hb_sendf(c, "HB 3 3 lag_us=10 missed=2\n");
	hb_expect(c, "ACK 3 ", HB_REPLY_MS);
	hb_sendf(c, "HB 4 4 lag_us=10 missed=0\n");
	hb_expect(c, "ACK 4 ", HB_REPLY_MS);
	hb_sendf(c, "HB 5 5 lag_us=10 missed=3 future=1\n");
	hb_expect(c, "ACK 5 ", HB_REPLY_MS);
	hb_expect_log(a, m, "msg=peer-stalled peer=slowpoke missed=3",
	    HB_REPLY_MS);
	ck_assert_int_eq(hb_count_lines(a, m, "msg=peer-stalled"), 2);
	hb_close(c);
	hb_free(a);
}
END_TEST

Suite *
peers_suite(void)
{
	Suite *s = suite_create("peers");
	TCase *tc;

	tc = tcase_create("links");
	tcase_add_test(tc, test_link_to_a_peer_comes_up_with_rtt);
	tcase_add_test(tc, test_peer_name_defaults_to_host_port);
	tcase_add_test(tc, test_unreachable_peer_is_listed_but_not_up);
	tcase_add_test(tc, test_peer_link_works_over_ipv6);
	tcase_add_test(tc,
	    test_stopped_peer_goes_suspect_then_down_in_time_then_back_up);
	tcase_add_test(tc,
	    test_killed_peer_restarted_on_the_same_port_is_reconnected);
	tcase_add_test(tc,
	    test_two_nodes_peer_each_other_after_a_reload_adds_the_peer);
	tcase_add_test(tc, test_metrics_show_an_up_peer_and_its_rtt);
	tcase_add_test(tc, test_reload_moves_a_peer_to_a_new_address);
	tcase_add_test(tc, test_three_node_mesh_isolates_only_the_stopped_node);
	tcase_add_test(tc, test_sigterm_with_peer_links_up_exits_cleanly);
	tcase_add_test(tc,
	    test_stalled_node_blames_itself_not_its_healthy_peer);
	suite_add_tcase(s, tc);

	tc = tcase_create("protocol");
	tcase_add_test(tc,
	    test_fake_peer_that_stops_acking_goes_suspect_then_down);
	tcase_add_test(tc, test_heartbeats_to_peers_carry_a_lag_us_field);
	tcase_add_test(tc, test_peer_port_answers_hello_and_echoes_hb_as_ack);
	tcase_add_test(tc, test_peer_port_refuses_garbage_and_hb_before_hello);
	tcase_add_test(tc,
	    test_hello_with_a_name_no_node_could_have_is_refused);
	tcase_add_test(tc, test_peer_port_closes_an_overlong_line);
	tcase_add_test(tc, test_inbound_peer_that_never_reads_acks_is_bounded);
	tcase_add_test(tc, test_rtt_reflects_a_slow_peers_ack_delay);
	tcase_add_test(tc, test_acks_with_a_wrong_echo_do_not_poison_the_rtt);
	tcase_add_test(tc, test_late_acks_make_a_peer_suspect_but_not_down);
	tcase_add_test(tc,
	    test_peer_that_closes_at_once_is_not_redialled_in_a_tight_loop);
	tcase_add_test(tc, test_peer_answering_garbage_to_hello_never_comes_up);
	tcase_add_test(tc, test_acks_stay_prompt_while_workers_burn_every_cpu);
	tcase_add_test(tc,
	    test_a_lost_connection_is_down_at_once_not_after_the_timeout);
	tcase_add_test(tc,
	    test_peer_that_acks_once_then_misbehaves_is_not_redialled_fast);
	tcase_add_test(tc,
	    test_heartbeats_report_ticks_missed_by_a_stalled_sender);
	tcase_add_test(tc, test_receiver_logs_a_stalled_sender_once_per_stall);
	suite_add_tcase(s, tc);

	tc = tcase_create("inbound-limits");
	tcase_add_test(tc,
	    test_inbound_connection_without_hello_is_closed_at_the_deadline);
	tcase_add_test(tc,
	    test_full_peer_port_closes_the_longest_silent_connection);
	tcase_add_test(tc, test_inbound_limits_are_checked_and_applied_on_reload);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(peers_suite)
