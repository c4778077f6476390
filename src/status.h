/*
 * status.h - one plain snapshot of the daemon's state. Every counter lives
 * once, with the module that owns it (tick, pool, jobs, work, peers);
 * daemon_status() copies them all into a struct hb_status, and everything
 * that reports state formats from that one snapshot: STATS and WATCH
 * (proto.c), /metrics and /healthz (metrics.c, http.c), the heartbeat line
 * and sd_notify STATUS= (daemon.c). So they can never disagree.
 *
 * Plain data only: the snapshot points at histograms and peer records that
 * stay valid until the loop runs again, and is never kept beyond that.
 */
#ifndef HB_STATUS_H
#define HB_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "job.h"
#include "liveness.h"

struct hist;

/* One peer as PEERS and /metrics show it. */
struct peer_info {
	const char *name;
	const char *addr;
	enum peer_state state;
	uint64_t rtt_ns;	/* last RTT, 0 = none yet */
	uint64_t srtt_ns;
	int64_t last_ack_ms;	/* age of the last ACK in ms, -1 = never */
};

struct hb_status {
	const char *node;
	uint64_t uptime_ns;
	int draining;			/* SIGTERM/SIGINT seen */

	/* tick: the heartbeat timer */
	uint64_t heartbeats;		/* ticks fired */
	uint64_t missed;		/* ticks a stall swallowed */
	uint64_t lag_ns;		/* lateness of the last tick */
	uint64_t lag_p50_ns, lag_p99_ns, lag_max_ns;	/* lifetime */
	uint64_t window_p99_ns, window_max_ns;	/* since the last heartbeat line */
	const struct hist *loop_lag;	/* lifetime lateness, ns */

	/* pool */
	unsigned threads, busy, queued;
	uint64_t oldest_job_ms;		/* age of the longest-running job */

	/* jobs */
	uint64_t submitted[JOB_KIND_COUNT];
	uint64_t finished[JOB_KIND_COUNT][JOB_OUTCOME_COUNT];
	uint64_t rejected[JOB_REJECT_COUNT];
	uint64_t outcomes_dropped;	/* the client had gone */
	const struct hist *job_run;	/* run time of finished jobs, ns */

	/* work connections */
	unsigned connections;
	uint64_t connections_total;

	/* peers */
	unsigned npeers, peers_up;
	const struct peer_info *peers;	/* npeers of them */
};

/* Totals as STATS names them. */
uint64_t status_submitted(const struct hb_status *s);
uint64_t status_completed(const struct hb_status *s);	/* DONE outcomes */
uint64_t status_failed(const struct hb_status *s);	/* FAIL outcomes */
uint64_t status_rejected(const struct hb_status *s);
uint64_t status_outcomes(const struct hb_status *s, enum job_outcome o);

#endif
