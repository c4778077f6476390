/*
 * pool.h - the fixed-size worker pool. The loop submits jobs into a bounded
 * queue; workers run them and push them on a done list; the first push onto
 * an empty list rings a socketpair doorbell, and the loop drains the list
 * (a bounded number per callback) and hands each job back through done_fn.
 * See the DESIGN comment in pool.c.
 */
#ifndef HB_POOL_H
#define HB_POOL_H

#include <stdint.h>

#include "config.h"
#include "job.h"

struct event_base;
struct pool;

#define POOL_DRAIN_MAX 256	/* completions handled per loop callback */

/* Called on the loop thread; the loop owns j again (it must free it). */
typedef void (*pool_done_fn)(struct job *j, void *arg);

struct pool_stats {
	unsigned threads;	/* workers; 0 in POOL_MODE_INLINE */
	unsigned busy;		/* jobs running */
	unsigned queued;	/* jobs waiting */
	uint64_t wakeups;	/* doorbell bytes written */
	uint64_t completions;	/* jobs handed back */
	uint64_t oldest_start_ns;	/* t_start of the longest-running job, 0 = none */
};

/*
 * Start threads workers (niceness worker_nice above the loop) in
 * POOL_MODE_THREADS, or none in POOL_MODE_INLINE, where each job runs on the
 * loop thread from a low-priority event (to demonstrate what that breaks).
 * The doorbell event gets priority. Returns NULL after logging on failure.
 */
struct pool *pool_new(struct event_base *base, enum pool_mode mode,
    unsigned threads, unsigned queue_max, int worker_nice, int priority,
    pool_done_fn done, void *arg);

/*
 * Cancel everything still queued or running with JOB_SHUTDOWN, stop and
 * join the workers, and free jobs not yet handed back (their outcomes are
 * not delivered). Loop thread, not from done_fn.
 */
void pool_free(struct pool *p);

/*
 * Take j (its args, id, conn_id and timeout_ms set). Accepted while fewer
 * than threads + queue_max jobs are queued or running (inline mode counts
 * as one thread). Sets t_submit when it is 0. Returns 0 (the pool
 * owns j until done_fn) or -1 when full (the caller keeps j).
 */
int pool_submit(struct pool *p, struct job *j);

/*
 * Cancel j with reason (JOB_CANCELLED or JOB_SHUTDOWN): a queued job is
 * taken off the queue under the lock and comes back through done_fn with
 * that outcome (and t_start = t_end: it never ran); a running job has its
 * flag set and ends at its next check. Returns 0, or -1 when j has already
 * finished.
 */
int pool_cancel(struct pool *p, struct job *j, int reason);

/* Cancel every queued and running job with reason. */
void pool_cancel_all(struct pool *p, int reason);

void pool_set_queue_max(struct pool *p, unsigned queue_max);
void pool_stats(struct pool *p, struct pool_stats *out);
/* Jobs queued or running (not yet back on the loop). */
unsigned pool_pending(struct pool *p);

#endif
