/*
 * jobs.c - job records from SUBMIT to outcome (see jobs.h).
 *
 * A job's life, all on the loop thread except the run itself:
 *
 *   jobs_submit    checks the limits (draining, max_jobs_per_conn, the
 *                  pool's capacity), gives the job the next id, files it in
 *                  the registry (id -> job) and in its connection's index,
 *                  and hands it to the pool.
 *   pool           queues it, a worker runs it, the doorbell brings it back
 *                  to jobs_done on the loop.
 *   jobs_done      takes it out of the registry and the index, remembers
 *                  its outcome in the finished ring (STATUS), counts it,
 *                  formats DONE/FAIL and hands the line to the deliver
 *                  callback for its connection (dropped and counted if the
 *                  connection has gone), then frees it.
 *
 * While the pool owns a job, only its atomics are read here (state,
 * progress, t_start). A connection that goes away has its jobs cancelled:
 * they still come back through jobs_done, with nobody to tell.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"
#include "idmap.h"
#include "jobs.h"
#include "log.h"
#include "pool.h"
#include "proto.h"
#include "status.h"
#include "util.h"

#define JOBS_LINE_MAX 512	/* one DONE or FAIL line */

/* The jobs of one connection, queued or running. */
struct jobs_conn {
	struct job_list list;
	unsigned n;
};

/* What STATUS reports of a finished job. */
struct jobs_finished {
	uint64_t id;
	enum job_kind kind;
	enum job_outcome outcome;
	unsigned progress;
	uint64_t queue_us, run_us;
};

struct jobs {
	struct pool *pool;
	struct jobs_callbacks cb;
	struct idmap *by_id;		/* queued or running */
	struct idmap *by_conn;		/* conn id -> struct jobs_conn */
	uint64_t next_id;
	uint32_t job_max_ms;
	uint32_t max_per_conn;
	int draining;

	struct jobs_finished finished_ring[JOBS_FINISHED_MAX];
	size_t nfinished;		/* total ever; ring index = n % MAX */

	uint64_t submitted[JOB_KIND_COUNT];
	uint64_t finished[JOB_KIND_COUNT][JOB_OUTCOME_COUNT];
	uint64_t rejected[JOB_REJECT_COUNT];
	uint64_t dropped;		/* outcomes whose client had gone */
	struct hist *run;		/* run time of finished jobs, ns */
};

/* A job's time in the queue and running, in us, as of end (ns). */
static void
jobs_times(const struct job *j, uint64_t end, uint64_t *queue_us, uint64_t *run_us)
{
	uint64_t start = atomic_load(&j->t_start);

	*queue_us = ((start != 0 ? start : end) - j->t_submit) / HB_NS_PER_US;
	*run_us = start != 0 ? (end - start) / HB_NS_PER_US : 0;
}

/* Take j out of its connection's index, if it is in one. */
static void
jobs_unlink_conn(struct jobs *js, struct job *j)
{
	struct jobs_conn *jc;

	if (j->conn_id == 0 || (jc = idmap_get(js->by_conn, j->conn_id)) == NULL)
		return;
	TAILQ_REMOVE(&jc->list, j, conn_entry);
	if (--jc->n == 0) {
		idmap_del(js->by_conn, j->conn_id);
		free(jc);
	}
}

static const struct jobs_finished *
jobs_remember(struct jobs *js, const struct job *j)
{
	struct jobs_finished *f = &js->finished_ring[js->nfinished++ % JOBS_FINISHED_MAX];

	f->id = j->id;
	f->kind = j->args.kind;
	f->outcome = j->outcome;
	f->progress = atomic_load(&j->progress);
	jobs_times(j, j->t_end, &f->queue_us, &f->run_us);
	return f;
}

/* The pool's done callback: the loop owns j again. */
static void
jobs_done(struct job *j, void *arg)
{
	struct jobs *js = arg;
	uint64_t start = atomic_load(&j->t_start);
	const struct jobs_finished *f;
	char line[JOBS_LINE_MAX];
	int n;

	idmap_del(js->by_id, j->id);
	if (j->t_end == 0)
		j->t_end = now_ns();
	f = jobs_remember(js, j);
	js->finished[j->args.kind][j->outcome]++;
	if (start != 0)
		hist_add(js->run, j->t_end - start);

	if (j->conn_id != 0) {
		jobs_unlink_conn(js, j);
		if (j->outcome == JOB_DONE)
			n = proto_fmt_done(line, sizeof(line), j->id, j->result,
			    f->queue_us, f->run_us);
		else
			n = proto_fmt_fail(line, sizeof(line), j->id,
			    job_outcome_name(j->outcome),
			    j->outcome == JOB_ERROR ? j->result : NULL);
		if (js->cb.deliver(j->conn_id, line, (size_t)n, js->cb.arg) < 0)
			js->dropped++;
	} else {
		js->dropped++;
	}
	job_free(j);
	js->cb.finished(js->cb.arg);
}

struct jobs *
jobs_new(struct event_base *base, const struct config *cfg, int done_priority,
    const struct jobs_callbacks *cb)
{
	struct jobs *js = xcalloc(1, sizeof(*js));

	js->cb = *cb;
	js->by_id = idmap_new();
	js->by_conn = idmap_new();
	js->next_id = 1;
	js->run = hist_new();
	jobs_reconfigure(js, cfg);
	js->pool = pool_new(base, cfg->pool_mode, cfg->threads, cfg->queue_max,
	    (int)cfg->worker_nice, done_priority, jobs_done, js);
	if (js->pool == NULL) {
		jobs_free(js);
		return NULL;
	}
	return js;
}

void
jobs_reconfigure(struct jobs *js, const struct config *cfg)
{
	js->job_max_ms = cfg->job_max_ms;
	js->max_per_conn = cfg->max_jobs_per_conn;
	if (js->pool != NULL)
		pool_set_queue_max(js->pool, cfg->queue_max);
}

/* Refuse a SUBMIT: count it and say why. */
static int
jobs_refuse(struct jobs *js, enum job_reject r, const char *text,
    struct proto_error *err)
{
	js->rejected[r]++;
	err->code = proto_reject_code(r);
	snprintf(err->text, sizeof(err->text), "%s", text);
	return -1;
}

int
jobs_submit(struct jobs *js, uint64_t conn_id, const struct proto_request *req,
    uint64_t *id, struct proto_error *err)
{
	struct job_args args;
	struct jobs_conn *jc;
	enum job_kind kind;
	struct job *j;
	char text[sizeof(err->text)];
	unsigned n;

	if (js->draining)
		return jobs_refuse(js, JOB_REJECT_SHUTTING_DOWN,
		    "the daemon is stopping; no new jobs", err);
	if (job_kind_parse(req->kind, &kind) < 0) {
		err->code = "unknown-kind";
		snprintf(err->text, sizeof(err->text),
		    "unknown job kind; kinds: sleep spin primes sha256");
		return -1;
	}
	if (job_args_parse(kind, req->keys, req->vals, req->nargs, js->job_max_ms,
	    &args, err->text, sizeof(err->text)) < 0) {
		err->code = "bad-arg";
		return -1;
	}
	if ((n = jobs_of_conn(js, conn_id)) >= js->max_per_conn) {
		job_args_clear(&args);
		snprintf(text, sizeof(text), "this connection has %u jobs queued or "
		    "running (max_jobs_per_conn)", n);
		return jobs_refuse(js, JOB_REJECT_TOO_MANY_JOBS, text, err);
	}
	j = job_new();
	j->args = args;
	j->id = js->next_id;
	j->conn_id = conn_id;
	j->timeout_ms = args.timeout_ms != 0 ? args.timeout_ms : js->job_max_ms;
	j->t_submit = now_ns();
	if (pool_submit(js->pool, j) < 0) {
		job_free(j);
		return jobs_refuse(js, JOB_REJECT_BUSY,
		    "the job queue is full; try again later", err);
	}
	js->next_id++;
	idmap_put(js->by_id, j->id, j);
	if ((jc = idmap_get(js->by_conn, conn_id)) == NULL) {
		jc = xcalloc(1, sizeof(*jc));
		TAILQ_INIT(&jc->list);
		idmap_put(js->by_conn, conn_id, jc);
	}
	TAILQ_INSERT_TAIL(&jc->list, j, conn_entry);
	jc->n++;
	js->submitted[kind]++;
	*id = j->id;
	return 0;
}

int
jobs_cancel(struct jobs *js, uint64_t id)
{
	struct job *j = idmap_get(js->by_id, id);

	return j != NULL ? pool_cancel(js->pool, j, JOB_CANCELLED) : -1;
}

static const struct jobs_finished *
jobs_find_finished(const struct jobs *js, uint64_t id)
{
	size_t i, n = js->nfinished < JOBS_FINISHED_MAX ? js->nfinished : JOBS_FINISHED_MAX;

	for (i = 0; i < n; i++)
		if (js->finished_ring[i].id == id)
			return &js->finished_ring[i];
	return NULL;
}

int
jobs_info(const struct jobs *js, uint64_t id, struct jobs_info *out)
{
	const struct job *j = idmap_get(js->by_id, id);
	const struct jobs_finished *f;
	uint64_t end;

	out->id = id;
	if (j != NULL) {
		if (atomic_load(&j->state) == JOB_FINISHED) {
			/* back on the done list, not yet handed to the loop */
			out->state = j->outcome == JOB_DONE ? "done" : "failed";
			end = j->t_end;
		} else {
			out->state = atomic_load(&j->t_start) != 0 ? "running" : "queued";
			end = now_ns();
		}
		out->kind = j->args.kind;
		out->progress = atomic_load(&j->progress);
		jobs_times(j, end, &out->queue_us, &out->run_us);
		return 0;
	}
	if ((f = jobs_find_finished(js, id)) == NULL)
		return -1;
	out->kind = f->kind;
	out->state = f->outcome == JOB_DONE ? "done" : "failed";
	out->progress = f->progress;
	out->queue_us = f->queue_us;
	out->run_us = f->run_us;
	return 0;
}

void
jobs_drop_conn(struct jobs *js, uint64_t conn_id)
{
	struct jobs_conn *jc = idmap_del(js->by_conn, conn_id);
	struct job *j;

	if (jc == NULL)
		return;
	while ((j = TAILQ_FIRST(&jc->list)) != NULL) {
		TAILQ_REMOVE(&jc->list, j, conn_entry);
		j->conn_id = 0;
		pool_cancel(js->pool, j, JOB_CANCELLED);
	}
	free(jc);
}

unsigned
jobs_of_conn(const struct jobs *js, uint64_t conn_id)
{
	const struct jobs_conn *jc = idmap_get(js->by_conn, conn_id);

	return jc != NULL ? jc->n : 0;
}

void
jobs_drain(struct jobs *js)
{
	js->draining = 1;
}

void
jobs_cancel_all(struct jobs *js)
{
	pool_cancel_all(js->pool, JOB_SHUTDOWN);
}

unsigned
jobs_live(const struct jobs *js)
{
	return (unsigned)idmap_count(js->by_id);
}

void
jobs_status(struct jobs *js, uint64_t now, struct hb_status *st)
{
	struct pool_stats ps;

	pool_stats(js->pool, &ps);
	st->threads = ps.threads;
	st->busy = ps.busy;
	st->queued = ps.queued;
	/* a job may have started after now was read */
	st->oldest_job_ms = ps.oldest_start_ns != 0 && ps.oldest_start_ns < now ?
	    (now - ps.oldest_start_ns) / HB_NS_PER_MS : 0;
	memcpy(st->submitted, js->submitted, sizeof(st->submitted));
	memcpy(st->finished, js->finished, sizeof(st->finished));
	memcpy(st->rejected, js->rejected, sizeof(st->rejected));
	st->outcomes_dropped = js->dropped;
	st->job_run = js->run;
}

static void
jobs_free_conn(uint64_t id, void *p, void *arg)
{
	(void)id;
	(void)arg;
	free(p);
}

void
jobs_free(struct jobs *js)
{
	if (js == NULL)
		return;
	/* the index goes first: it points into jobs the pool is about to free */
	idmap_foreach(js->by_conn, jobs_free_conn, NULL);
	if (js->pool != NULL)
		pool_free(js->pool);
	idmap_free(js->by_id);
	idmap_free(js->by_conn);
	hist_free(js->run);
	free(js);
}
