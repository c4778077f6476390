/*
 * floor.c - the bare-timer floor: how late a process that does nothing but
 * sleep to a fixed schedule wakes up on this machine, under the same load.
 *
 *   floor [-I ms] [-d s] [-s slack_ns]
 *
 * A clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME) loop: tick k is due at
 * t0 + k * interval, as heartbeatd's tick (src/tick.c), with the timer slack
 * set as heartbeatd sets its loop thread's (prctl(PR_SET_TIMERSLACK),
 * timer_slack_ns, default 1000 ns). A late wake-up does not move the
 * schedule; the next sleep simply returns at once, so a stall is charged to
 * every tick it swallowed, as heartbeatd back-fills them.
 *
 * One line on stdout when done (times in microseconds):
 *   floor ticks=N slack_ns=S late_p50_us= late_p99_us= late_max_us=
 *         gap_p50_us= gap_p99_us= gap_max_us=
 * late: wake-up minus due time (comparable to heartbeatd's own lag_us);
 * gap:  how much longer than one interval since the previous wake-up
 *       (comparable to the gap figures bench/run.sh takes at the peer).
 * SIGTERM or SIGINT ends the run early; the line is still printed.
 */

#define _GNU_SOURCE
#include <sys/prctl.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_US	UINT64_C(1000)
#define NS_PER_MS	UINT64_C(1000000)
#define NS_PER_S	UINT64_C(1000000000)

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static unsigned long
number(const char *s, unsigned long lo, unsigned long hi)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || *s == '-' || v < lo ||
	    v > hi) {
		fprintf(stderr, "floor: bad number \"%s\" (%lu..%lu)\n", s, lo,
		    hi);
		exit(2);
	}
	return v;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t
pct(const uint64_t *v, size_t n, unsigned p)
{
	size_t rank;

	if (n == 0)
		return 0;
	rank = (n * p + 99) / 100;
	return v[rank > 0 ? rank - 1 : 0] / NS_PER_US;
}

int
main(int argc, char **argv)
{
	struct sigaction sa;
	struct timespec ts;
	uint64_t interval = 10 * NS_PER_MS, t0, due, woke, prev, *late, *gap;
	unsigned long slack = 1000, seconds = 10;
	size_t n = 0, cap, ngap = 0;
	int ch;

	while ((ch = getopt(argc, argv, "I:d:s:")) != -1) {
		switch (ch) {
		case 'I':
			interval = number(optarg, 1, 60000) * NS_PER_MS;
			break;
		case 'd':
			seconds = number(optarg, 1, 3600);
			break;
		case 's':
			slack = number(optarg, 1, 50000000);
			break;
		default:
			fprintf(stderr, "usage: floor [-I ms] [-d s] "
			    "[-s slack_ns]\n");
			return 2;
		}
	}
	if (prctl(PR_SET_TIMERSLACK, slack, 0, 0, 0) < 0)
		fprintf(stderr, "floor: PR_SET_TIMERSLACK: %s\n",
		    strerror(errno));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	cap = (size_t)(seconds * NS_PER_S / interval) + 1;
	late = malloc(cap * sizeof(*late));
	gap = malloc(cap * sizeof(*gap));
	if (late == NULL || gap == NULL) {
		fprintf(stderr, "floor: out of memory\n");
		return 1;
	}
	t0 = prev = now_ns();
	for (n = 0; n < cap - 1 && !stop; ) {
		due = t0 + (n + 1) * interval;
		ts.tv_sec = (time_t)(due / NS_PER_S);
		ts.tv_nsec = (long)(due % NS_PER_S);
		if (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts,
		    NULL) != 0)
			continue;	/* EINTR: stop is set, or sleep again */
		woke = now_ns();
		late[n++] = woke > due ? woke - due : 0;
		gap[ngap++] = woke - prev > interval ? woke - prev - interval :
		    0;
		prev = woke;
	}
	qsort(late, n, sizeof(*late), cmp_u64);
	qsort(gap, ngap, sizeof(*gap), cmp_u64);
	printf("floor ticks=%zu slack_ns=%lu late_p50_us=%" PRIu64
	    " late_p99_us=%" PRIu64 " late_max_us=%" PRIu64 " gap_p50_us=%"
	    PRIu64 " gap_p99_us=%" PRIu64 " gap_max_us=%" PRIu64 "\n", n, slack,
	    pct(late, n, 50), pct(late, n, 99),
	    n ? late[n - 1] / NS_PER_US : 0, pct(gap, ngap, 50),
	    pct(gap, ngap, 99), ngap ? gap[ngap - 1] / NS_PER_US : 0);
	free(late);
	free(gap);
	return 0;
}
