/* check_metrics.c - the Prometheus exposition of a status snapshot: every
 * family of interface.md section 6, exact label spellings and escaping,
 * histograms that are cumulative and end in +Inf = _count. */
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "check_common.h"
#include "hist.h"
#include "metrics.h"
#include "status.h"

#define MS 1000000ull

/* Render s and return the text (caller frees). */
static char *
render(const struct hb_status *s)
{
	struct evbuffer *b = evbuffer_new();
	size_t n;
	char *text;

	metrics_render(s, b);
	n = evbuffer_get_length(b);
	text = malloc(n + 1);
	evbuffer_remove(b, text, n);
	text[n] = '\0';
	evbuffer_free(b);
	return text;
}

/* The whole line that starts with prefix (a static copy), or NULL. */
static const char *
line_of(const char *text, const char *prefix)
{
	static char line[512];
	const char *p = text;
	size_t plen = strlen(prefix), n;

	while (p != NULL && *p != '\0') {
		if (strncmp(p, prefix, plen) == 0) {
			n = strcspn(p, "\n");
			if (n >= sizeof(line))
				n = sizeof(line) - 1;
			memcpy(line, p, n);
			line[n] = '\0';
			return line;
		}
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return NULL;
}

static void
assert_line(const char *text, const char *want)
{
	const char *got = line_of(text, want);

	ck_assert_msg(got != NULL && strcmp(got, want) == 0,
	    "want line \"%s\", got \"%s\"", want, got != NULL ? got : "(none)");
}

START_TEST(test_counters_and_gauges_come_from_the_snapshot)
{
	struct hb_status s;
	char *text;

	memset(&s, 0, sizeof(s));
	s.heartbeats = 42;
	s.missed = 3;
	s.threads = 4;
	s.busy = 2;
	s.queued = 7;
	s.connections = 5;
	s.connections_total = 9;
	s.outcomes_dropped = 1;
	s.submitted[JOB_SPIN] = 11;
	s.finished[JOB_SHA256][JOB_TIMEOUT] = 6;
	s.rejected[JOB_REJECT_BUSY] = 2;
	s.rejected[JOB_REJECT_TOO_MANY_JOBS] = 3;
	s.rejected[JOB_REJECT_SHUTTING_DOWN] = 4;
	s.uptime_ns = 1500 * MS;
	s.draining = 1;
	text = render(&s);
	assert_line(text, "heartbeatd_heartbeats_total 42");
	assert_line(text, "heartbeatd_ticks_missed_total 3");
	assert_line(text, "heartbeatd_pool_threads 4");
	assert_line(text, "heartbeatd_pool_busy 2");
	assert_line(text, "heartbeatd_queue_depth 7");
	assert_line(text, "heartbeatd_connections 5");
	assert_line(text, "heartbeatd_connections_total 9");
	assert_line(text, "heartbeatd_outcomes_dropped_total 1");
	assert_line(text, "heartbeatd_jobs_submitted_total{kind=\"spin\"} 11");
	assert_line(text, "heartbeatd_jobs_submitted_total{kind=\"sleep\"} 0");
	assert_line(text, "heartbeatd_jobs_finished_total{kind=\"sha256\",outcome=\"timeout\"} 6");
	/* the reason labels are the wire codes, spelled once (proto.c) */
	assert_line(text, "heartbeatd_jobs_rejected_total{reason=\"busy\"} 2");
	assert_line(text, "heartbeatd_jobs_rejected_total{reason=\"too-many-jobs\"} 3");
	assert_line(text, "heartbeatd_jobs_rejected_total{reason=\"shutting-down\"} 4");
	assert_line(text, "heartbeatd_uptime_seconds 1.5");
	assert_line(text, "heartbeatd_draining 1");
	assert_line(text, "# TYPE heartbeatd_heartbeats_total counter");
	assert_line(text, "# TYPE heartbeatd_loop_lag_seconds histogram");
	free(text);
}
END_TEST

START_TEST(test_every_outcome_label_is_present)
{
	static const char *const outcomes[] = { "done", "cancelled", "timeout",
	    "shutdown", "error" };
	struct hb_status s;
	char want[128], *text;
	size_t i;

	memset(&s, 0, sizeof(s));
	text = render(&s);
	for (i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]); i++) {
		snprintf(want, sizeof(want), "heartbeatd_jobs_finished_total{kind=\"primes\","
		    "outcome=\"%s\"} 0", outcomes[i]);
		assert_line(text, want);
	}
	free(text);
}
END_TEST

START_TEST(test_histograms_are_cumulative_and_end_in_count)
{
	struct hb_status s;
	struct hist *lag = hist_new();
	char *text;

	hist_add(lag, 30000);		/* 30 us */
	hist_add(lag, 2 * MS);
	hist_add(lag, 2 * MS);
	hist_add(lag, 700 * MS);
	memset(&s, 0, sizeof(s));
	s.loop_lag = lag;
	text = render(&s);
	assert_line(text, "heartbeatd_loop_lag_seconds_bucket{le=\"0.00005\"} 1");
	assert_line(text, "heartbeatd_loop_lag_seconds_bucket{le=\"0.001\"} 1");
	assert_line(text, "heartbeatd_loop_lag_seconds_bucket{le=\"0.0025\"} 3");
	assert_line(text, "heartbeatd_loop_lag_seconds_bucket{le=\"0.5\"} 3");
	assert_line(text, "heartbeatd_loop_lag_seconds_bucket{le=\"1\"} 4");
	assert_line(text, "heartbeatd_loop_lag_seconds_bucket{le=\"+Inf\"} 4");
	assert_line(text, "heartbeatd_loop_lag_seconds_count 4");
	assert_line(text, "heartbeatd_loop_lag_seconds_sum 0.70403");
	/* no job histogram in the snapshot reads as empty */
	assert_line(text, "heartbeatd_job_run_seconds_bucket{le=\"+Inf\"} 0");
	assert_line(text, "heartbeatd_job_run_seconds_count 0");
	free(text);
	hist_free(lag);
}
END_TEST

START_TEST(test_peers_are_labelled_and_escaped)
{
	struct peer_info peers[2] = {
		{ .name = "b", .addr = "127.0.0.1:1", .state = PEER_UP, .rtt_ns = 250000 },
		{ .name = "x\"y\\z", .addr = "127.0.0.1:2", .state = PEER_DOWN },
	};
	struct hb_status s;
	char *text;

	memset(&s, 0, sizeof(s));
	s.peers = peers;
	s.npeers = 2;
	text = render(&s);
	assert_line(text, "heartbeatd_peer_up{peer=\"b\"} 1");
	assert_line(text, "heartbeatd_peer_rtt_seconds{peer=\"b\"} 0.00025");
	assert_line(text, "heartbeatd_peer_up{peer=\"x\\\"y\\\\z\"} 0");
	assert_line(text, "heartbeatd_peer_rtt_seconds{peer=\"x\\\"y\\\\z\"} 0");
	free(text);
}
END_TEST

Suite *metrics_suite(void);

Suite *
metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("render");

	tcase_add_test(tc, test_counters_and_gauges_come_from_the_snapshot);
	tcase_add_test(tc, test_every_outcome_label_is_present);
	tcase_add_test(tc, test_histograms_are_cumulative_and_end_in_count);
	tcase_add_test(tc, test_peers_are_labelled_and_escaped);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(metrics_suite)
