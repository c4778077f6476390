/*
 * metrics.h - the daemon's counters, owned and written by the loop thread
 * only (workers never touch them), and their Prometheus text rendering.
 * Gauges that live elsewhere (pool, peers) are read when rendering.
 */
#ifndef HB_METRICS_H
#define HB_METRICS_H

#include <stdint.h>

#include "job.h"

struct hist;

enum metrics_reject { REJECT_BUSY, REJECT_TOO_MANY_JOBS, REJECT_SHUTTING_DOWN,
	REJECT_COUNT };

struct metrics {
	uint64_t start_ns;			/* for uptime */
	uint64_t heartbeats;			/* tick timer firings */
	uint64_t ticks_missed;			/* ticks a stall swallowed */
	struct hist *loop_lag;			/* lifetime tick lateness, ns */
	struct hist *job_run;			/* run time of finished jobs, ns */
	uint64_t submitted[JOB_KIND_COUNT];
	uint64_t finished[JOB_KIND_COUNT][JOB_OUTCOME_COUNT];
	uint64_t rejected[REJECT_COUNT];
	uint64_t connections;			/* open work connections */
	uint64_t connections_total;
	uint64_t outcomes_dropped;		/* the client was gone */
};

/* The one instance: loop thread only. */
extern struct metrics metrics;

void metrics_init(void);
void metrics_close(void);
const char *metrics_reject_name(enum metrics_reject r);
uint64_t metrics_submitted_total(void);
/* Outcomes counted as STATS completed (done) and failed (the rest). */
uint64_t metrics_completed_total(void);
uint64_t metrics_failed_total(void);
uint64_t metrics_rejected_total(void);

struct daemon;
struct evbuffer;
/* The Prometheus text exposition of everything, gauges included. */
void metrics_render(struct daemon *d, struct evbuffer *out);

#endif
