/*
 * metrics.c - the Prometheus text exposition (format 0.0.4, interface.md
 * section 6) of a status snapshot.
 *
 * Every counter and gauge comes from the struct hb_status the caller
 * filled, so a scrape agrees with STATS and the heartbeat line taken at the
 * same moment. Rendering is O(buckets + kinds x outcomes + peers) with no
 * allocation beyond the output buffer, so a scrape costs the loop a few
 * microseconds. Durations are kept in nanoseconds and printed as exact
 * decimal seconds, so no floating point rounding shows up in the output.
 */

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "hist.h"
#include "job.h"
#include "liveness.h"
#include "metrics.h"
#include "proto.h"
#include "status.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#define METRICS_NS_PER_S 1000000000ull
#define METRICS_LABEL_MAX 256	/* an escaped label value, truncated beyond */

/* A histogram bucket: the le label as written, and its bound in ns. */
struct metrics_bucket {
	const char *le;
	uint64_t ns;
};

/* Tick lateness: from tens of microseconds (healthy) to seconds (stalled). */
static const struct metrics_bucket lag_buckets[] = {
	{ "0.00005", 50000ull },
	{ "0.0001", 100000ull },
	{ "0.00025", 250000ull },
	{ "0.0005", 500000ull },
	{ "0.001", 1000000ull },
	{ "0.0025", 2500000ull },
	{ "0.005", 5000000ull },
	{ "0.01", 10000000ull },
	{ "0.025", 25000000ull },
	{ "0.05", 50000000ull },
	{ "0.1", 100000000ull },
	{ "0.25", 250000000ull },
	{ "0.5", 500000000ull },
	{ "1", 1000000000ull },
	{ "2.5", 2500000000ull },
	{ "5", 5000000000ull },
	{ "10", 10000000000ull },
};

/* Job run time: from a millisecond up to the default job_max_ms. */
static const struct metrics_bucket run_buckets[] = {
	{ "0.001", 1000000ull },
	{ "0.005", 5000000ull },
	{ "0.01", 10000000ull },
	{ "0.05", 50000000ull },
	{ "0.1", 100000000ull },
	{ "0.5", 500000000ull },
	{ "1", 1000000000ull },
	{ "5", 5000000000ull },
	{ "10", 10000000000ull },
	{ "30", 30000000000ull },
	{ "60", 60000000000ull },
	{ "120", 120000000000ull },
	{ "300", 300000000000ull },
	{ "600", 600000000000ull },
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* # HELP and # TYPE lines that open a metric family. */
static void
metrics_family(struct evbuffer *out, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(out, "# HELP heartbeatd_%s %s\n"
	    "# TYPE heartbeatd_%s %s\n", name, help, name, type);
}

/* A family with one unlabelled sample. */
static void
metrics_scalar(struct evbuffer *out, const char *name, const char *type,
    const char *help, uint64_t v)
{
	metrics_family(out, name, type, help);
	evbuffer_add_printf(out, "heartbeatd_%s %" PRIu64 "\n", name, v);
}

/* Nanoseconds as exact decimal seconds, trailing zeros trimmed. */
static void
metrics_seconds(char *buf, size_t len, uint64_t ns)
{
	uint64_t s = ns / METRICS_NS_PER_S, frac = ns % METRICS_NS_PER_S;
	int digits = 9;

	if (frac == 0) {
		snprintf(buf, len, "%" PRIu64, s);
		return;
	}
	while (frac % 10 == 0) {
		frac /= 10;
		digits--;
	}
	snprintf(buf, len, "%" PRIu64 ".%0*" PRIu64, s, digits, frac);
}

/*
 * A label value escaped per the text format (backslash, double quote and
 * newline); cut at a character boundary when it would not fit.
 */
static void
metrics_escape(char *buf, size_t len, const char *s)
{
	size_t i = 0;

	for (; *s != '\0'; s++) {
		const char *rep = NULL;
		size_t n;

		if (*s == '\\')
			rep = "\\\\";
		else if (*s == '"')
			rep = "\\\"";
		else if (*s == '\n')
			rep = "\\n";
		n = rep != NULL ? 2 : 1;
		if (i + n >= len)
			break;
		if (rep != NULL)
			memcpy(buf + i, rep, n);
		else
			buf[i] = *s;
		i += n;
	}
	buf[i] = '\0';
}

/*
 * A histogram of nanosecond values in seconds: cumulative buckets (made
 * monotonic, since hist_count_le is approximate between its own bucket
 * edges), +Inf, _sum and _count. A missing histogram reads as empty.
 */
static void
metrics_histogram(struct evbuffer *out, const char *name, const char *help,
    const struct hist *h, const struct metrics_bucket *b, size_t nb)
{
	uint64_t count = h != NULL ? hist_count(h) : 0;
	uint64_t sum = h != NULL ? hist_sum(h) : 0;
	uint64_t prev = 0;
	char secs[32];
	size_t i;

	metrics_family(out, name, "histogram", help);
	for (i = 0; i < nb; i++) {
		uint64_t c = h != NULL ? hist_count_le(h, b[i].ns) : 0;

		if (c < prev)
			c = prev;
		if (c > count)
			c = count;
		prev = c;
		evbuffer_add_printf(out, "heartbeatd_%s_bucket{le=\"%s\"} %" PRIu64
		    "\n", name, b[i].le, c);
	}
	metrics_seconds(secs, sizeof(secs), sum);
	evbuffer_add_printf(out, "heartbeatd_%s_bucket{le=\"+Inf\"} %" PRIu64 "\n"
	    "heartbeatd_%s_sum %s\n"
	    "heartbeatd_%s_count %" PRIu64 "\n",
	    name, count, name, secs, name, count);
}

void
metrics_render(const struct hb_status *s, struct evbuffer *out)
{
	char name[METRICS_LABEL_MAX], secs[32];
	unsigned i;
	int k, o, r;

	metrics_family(out, "build_info", "gauge",
	    "Always 1; the version label names the running build.");
	evbuffer_add_printf(out, "heartbeatd_build_info{version=\"%s\"} 1\n",
	    PACKAGE_VERSION);

	metrics_scalar(out, "heartbeats_total", "counter",
	    "Firings of the heartbeat timer.", s->heartbeats);
	metrics_histogram(out, "loop_lag_seconds",
	    "How late each heartbeat tick fired, against its ideal schedule.",
	    s->loop_lag, lag_buckets, NELEM(lag_buckets));
	metrics_scalar(out, "ticks_missed_total", "counter",
	    "Heartbeat ticks swallowed whole by a stalled loop.", s->missed);

	metrics_family(out, "jobs_submitted_total", "counter",
	    "SUBMITs answered OK, by job kind.");
	for (k = 0; k < JOB_KIND_COUNT; k++)
		evbuffer_add_printf(out,
		    "heartbeatd_jobs_submitted_total{kind=\"%s\"} %" PRIu64 "\n",
		    job_kind_name((enum job_kind)k), s->submitted[k]);

	metrics_family(out, "jobs_finished_total", "counter",
	    "Jobs that ended, by kind and outcome.");
	for (k = 0; k < JOB_KIND_COUNT; k++)
		for (o = 0; o < JOB_OUTCOME_COUNT; o++)
			evbuffer_add_printf(out,
			    "heartbeatd_jobs_finished_total{kind=\"%s\","
			    "outcome=\"%s\"} %" PRIu64 "\n",
			    job_kind_name((enum job_kind)k),
			    job_outcome_name((enum job_outcome)o),
			    s->finished[k][o]);

	metrics_family(out, "jobs_rejected_total", "counter",
	    "SUBMITs refused, by reason.");
	for (r = 0; r < JOB_REJECT_COUNT; r++)
		evbuffer_add_printf(out,
		    "heartbeatd_jobs_rejected_total{reason=\"%s\"} %" PRIu64 "\n",
		    proto_reject_code((enum job_reject)r), s->rejected[r]);

	metrics_scalar(out, "pool_threads", "gauge",
	    "Worker threads in the pool.", s->threads);
	metrics_scalar(out, "pool_busy", "gauge",
	    "Worker threads running a job.", s->busy);
	metrics_scalar(out, "queue_depth", "gauge",
	    "Jobs waiting for a worker thread.", s->queued);
	metrics_histogram(out, "job_run_seconds",
	    "Run time of finished jobs, from start on a worker to the end.",
	    s->job_run, run_buckets, NELEM(run_buckets));

	metrics_scalar(out, "connections", "gauge",
	    "Open work connections.", s->connections);
	metrics_scalar(out, "connections_total", "counter",
	    "Work connections accepted.", s->connections_total);
	metrics_scalar(out, "outcomes_dropped_total", "counter",
	    "Job outcomes dropped because the client had gone.",
	    s->outcomes_dropped);

	/* one family at a time, so samples stay grouped */
	metrics_family(out, "peer_up", "gauge",
	    "1 while the peer acknowledges heartbeats on time, else 0.");
	for (i = 0; i < s->npeers; i++) {
		metrics_escape(name, sizeof(name), s->peers[i].name);
		evbuffer_add_printf(out, "heartbeatd_peer_up{peer=\"%s\"} %d\n",
		    name, s->peers[i].state == PEER_UP);
	}
	metrics_family(out, "peer_rtt_seconds", "gauge",
	    "Round-trip time of the last acknowledged heartbeat (0 before the first).");
	for (i = 0; i < s->npeers; i++) {
		metrics_escape(name, sizeof(name), s->peers[i].name);
		metrics_seconds(secs, sizeof(secs), s->peers[i].rtt_ns);
		evbuffer_add_printf(out, "heartbeatd_peer_rtt_seconds{peer=\"%s\"} %s\n",
		    name, secs);
	}

	metrics_seconds(secs, sizeof(secs), s->uptime_ns);
	metrics_family(out, "uptime_seconds", "gauge",
	    "Seconds since the daemon started.");
	evbuffer_add_printf(out, "heartbeatd_uptime_seconds %s\n", secs);
	metrics_scalar(out, "draining", "gauge",
	    "1 after SIGTERM or SIGINT, while jobs drain; else 0.", s->draining != 0);
}
