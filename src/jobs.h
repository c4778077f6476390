/*
 * jobs.h - every job's record, from an accepted SUBMIT to its outcome: ids,
 * the registry of queued and running jobs (STATUS, WAIT, CANCEL from any
 * connection), attached and detached jobs (interface.md section 4), the
 * per-connection index (jobs hold connection ids, never connection
 * pointers), the finished outcomes STATUS and WAIT remember, the job
 * counters, and the worker pool that runs them. The work server turns lines
 * into calls here; outcome lines go back out through the deliver callback.
 */
#ifndef HB_JOBS_H
#define HB_JOBS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "job.h"
#include "proto.h"

struct event_base;
struct hb_status;
struct jobs;

#define JOBS_FINISHED_MAX 1024	/* finished attached jobs STATUS remembers */

struct jobs_callbacks {
	/* Send a job's line to connection conn_id: 0, or -1 when it is gone. */
	int (*deliver)(uint64_t conn_id, const char *line, size_t len, void *arg);
	/* A job has ended and its outcome has gone out (drain progress). */
	void (*finished)(void *arg);
	/*
	 * A detached SUBMIT that jobs_submit left pending (returned 1) is
	 * settled: the reply line for connection conn_id ("OK <id>" once its
	 * journal record is committed, else "ERR unavailable ...").
	 */
	void (*committed)(uint64_t conn_id, const char *line, size_t len, void *arg);
	void *arg;
};

/*
 * The registry and its pool (threads or inline per cfg), completions
 * handled at libevent priority done_priority. With cfg->state_dir, the
 * journal too: read once here (unfinished detached jobs re-queued under
 * their ids, retained outcomes loaded, ids continued above the journal's).
 * NULL after logging.
 */
struct jobs *jobs_new(struct event_base *base, const struct config *cfg,
    int done_priority, const struct jobs_callbacks *cb);
/* Cancel and drop every job (outcomes are not delivered), stop the pool. */
void jobs_free(struct jobs *js);
/* Reload: queue_max, max_jobs_per_conn, job_max_ms, job_retention. */
void jobs_reconfigure(struct jobs *js, const struct config *cfg);

/*
 * SUBMIT for connection conn_id: kind and its key=value arguments as the
 * request carried them (detach=1 makes the job the daemon's). Returns 0
 * with *id set (reply "OK <id>" now), 1 with *id set when the reply waits
 * for the journal (the committed callback brings it; answer nothing else
 * on that connection meanwhile), or -1 with the wire code and text in
 * *err (refusals are counted).
 */
int jobs_submit(struct jobs *js, uint64_t conn_id, const struct proto_request *req,
    uint64_t *id, struct proto_error *err);
/* CANCEL: 0, or -1 when no queued or running job has this id. */
int jobs_cancel(struct jobs *js, uint64_t id);
/*
 * WAIT from connection conn_id: 0 when the outcome line will come through
 * deliver (at once when the job has finished: call after "OK <id>" is out),
 * or -1 when the id is unknown.
 */
int jobs_wait(struct jobs *js, uint64_t conn_id, uint64_t id);
/* STATUS: fill *out (strings valid until the loop runs again); 0 or -1. */
int jobs_info(const struct jobs *js, uint64_t id, struct proto_job *out);
/* JOBS: call fn for every queued or running job, in id order. */
void jobs_foreach_live(const struct jobs *js,
    void (*fn)(const struct proto_job *j, void *arg), void *arg);
/*
 * The client went away: its attached jobs are cancelled (outcomes dropped)
 * and its WAITs forgotten. Detached jobs run on.
 */
void jobs_drop_conn(struct jobs *js, uint64_t conn_id);
/* Attached jobs queued or running for conn_id. */
unsigned jobs_of_conn(const struct jobs *js, uint64_t conn_id);
/* Outcomes conn_id still expects: its attached jobs and its WAITs. */
unsigned jobs_pending_for(const struct jobs *js, uint64_t conn_id);
/* SIGTERM: refuse new jobs with shutting-down. */
void jobs_drain(struct jobs *js);
/* End of the grace period: cancel everything with reason shutdown. */
void jobs_cancel_all(struct jobs *js);
/* Jobs queued or running. */
unsigned jobs_live(const struct jobs *js);
/* Fill the jobs and pool part of a status snapshot. */
void jobs_status(struct jobs *js, uint64_t now, struct hb_status *st);

#endif
