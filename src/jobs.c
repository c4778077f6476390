/*
 * jobs.c - job records from SUBMIT to outcome (see jobs.h).
 *
 * A job's life, all on the loop thread except the run itself:
 *
 *   jobs_submit    checks the limits (draining, max_jobs_per_conn, the
 *                  pool's capacity), gives the job the next id, files it in
 *                  the registry (id -> job) and, when attached, in its
 *                  connection's index, and hands it to the pool.
 *   pool           queues it, a worker runs it, the doorbell brings it back
 *                  to jobs_done on the loop.
 *   jobs_done      takes it out of the registry and the index, keeps its
 *                  outcome (STATUS, WAIT), counts it, sends the DONE/FAIL
 *                  line to its connection (attached) and to every
 *                  connection WAITing for it, then frees it.
 *
 * Finished outcomes are kept for STATUS and WAIT: the last
 * JOBS_FINISHED_MAX attached ones in a fixed ring (nothing allocated per
 * job on the hot path), the last job_retention detached ones in a FIFO
 * behind an id index (their result strings sized to fit, so memory
 * follows the count).
 *
 * Journal (state_dir set): a detached job is handed to the pool at once
 * and its "accepted" record to the journal thread; its "OK <id>" goes out
 * only when the record is committed (jobs_committed). If the commit fails
 * the job is cancelled and the client told "ERR unavailable"; if it ran
 * to its end meanwhile, the outcome is simply not journaled. A finished
 * journaled job's outcome is journaled too, except one stopped by SIGTERM:
 * that one stays unfinished in the journal and runs again at the next
 * start, and nobody is told an outcome (interface.md section 7).
 *
 * While the pool owns a job, only its atomics are read here (state,
 * progress, t_start); its waiters list is the loop's alone. A connection
 * that goes away has its attached jobs cancelled: they still come back
 * through jobs_done, with nobody to tell. Connection ids are never reused,
 * so a stale waiter id only finds nobody.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"
#include "idmap.h"
#include "jobs.h"
#include "journal.h"
#include "log.h"
#include "pool.h"
#include "proto.h"
#include "status.h"
#include "util.h"

#define JOBS_LINE_MAX 512	/* one DONE or FAIL line */

/* A detached SUBMIT whose OK waits for its journal record. */
struct jobs_ack {
	uint64_t conn_id;
	enum job_kind kind;
};

/* What a connection still expects: attached jobs, and WAITs. */
struct jobs_conn {
	struct job_list list;	/* attached, queued or running */
	unsigned n;
	unsigned waits;
};

/* A finished job's outcome, as STATUS and WAIT report it. */
struct jobs_outcome {
	uint64_t id;
	enum job_kind kind;
	enum job_outcome outcome;
	unsigned progress;
	int detached;
	uint64_t queue_us, run_us;
	char *text;		/* DONE: the result; FAIL error: the detail */
	TAILQ_ENTRY(jobs_outcome) entry;
};
TAILQ_HEAD(jobs_outcome_list, jobs_outcome);

/* The FIFO of kept detached outcomes, oldest first. */
struct jobs_kept {
	struct jobs_outcome_list list;
	size_t n, max;
};

struct jobs {
	struct pool *pool;
	struct journal *journal;	/* NULL: detached jobs in memory only */
	struct idmap *acks;		/* id -> struct jobs_ack */
	struct jobs_callbacks cb;
	struct idmap *by_id;		/* queued or running */
	struct idmap *by_conn;		/* conn id -> struct jobs_conn */
	struct idmap *outcomes;		/* id -> struct jobs_outcome */
	struct jobs_kept detached;	/* job_retention, behind outcomes */
	/* the last JOBS_FINISHED_MAX attached outcomes: a ring, no allocation
	 * on the hot path; STATUS of a finished attached job scans it */
	struct jobs_outcome ring[JOBS_FINISHED_MAX];
	char ring_text[JOBS_FINISHED_MAX][JOB_RESULT_MAX];
	size_t nring;			/* total ever; slot = n % MAX */
	uint64_t next_id;
	uint32_t job_max_ms;
	uint32_t max_per_conn;
	int draining;

	uint64_t submitted[JOB_KIND_COUNT];
	uint64_t finished[JOB_KIND_COUNT][JOB_OUTCOME_COUNT];
	uint64_t rejected[JOB_REJECT_COUNT];
	uint64_t dropped;		/* outcomes nobody was there to read */
	struct hist *run;		/* run time of finished jobs, ns */
};

static void jobs_committed(uint64_t id, int ok, void *arg);
static int jobs_recover(struct jobs *js, const struct config *cfg);
static void jobs_journal_accept(struct jobs *js, struct job *j, uint64_t conn_id,
    const struct proto_request *req);

/* A job's time in the queue and running, in us, as of end (ns). */
static void
jobs_times(const struct job *j, uint64_t end, uint64_t *queue_us, uint64_t *run_us)
{
	uint64_t start = atomic_load(&j->t_start);

	*queue_us = ((start != 0 ? start : end) - j->t_submit) / HB_NS_PER_US;
	*run_us = start != 0 ? (end - start) / HB_NS_PER_US : 0;
}

/* The entry for conn_id, made when make is set. */
static struct jobs_conn *
jobs_conn_get(struct jobs *js, uint64_t conn_id, int make)
{
	struct jobs_conn *jc = idmap_get(js->by_conn, conn_id);

	if (jc == NULL && make) {
		jc = xcalloc(1, sizeof(*jc));
		TAILQ_INIT(&jc->list);
		idmap_put(js->by_conn, conn_id, jc);
	}
	return jc;
}

/* Forget the entry once nothing more is expected on it. */
static void
jobs_conn_put(struct jobs *js, uint64_t conn_id, struct jobs_conn *jc)
{
	if (jc->n == 0 && jc->waits == 0) {
		idmap_del(js->by_conn, conn_id);
		free(jc);
	}
}

static void
jobs_outcome_free(struct jobs_outcome *o)
{
	free(o->text);
	free(o);
}

/* Forget the oldest outcomes of k beyond its limit. */
static void
jobs_trim(struct jobs *js, struct jobs_kept *k)
{
	struct jobs_outcome *gone;

	while (k->n > k->max && (gone = TAILQ_FIRST(&k->list)) != NULL) {
		TAILQ_REMOVE(&k->list, gone, entry);
		k->n--;
		idmap_del(js->outcomes, gone->id);
		jobs_outcome_free(gone);
	}
}

/* Keep a detached outcome, forgetting the oldest beyond job_retention. */
static void
jobs_keep(struct jobs *js, struct jobs_outcome *o)
{
	TAILQ_INSERT_TAIL(&js->detached.list, o, entry);
	js->detached.n++;
	idmap_put(js->outcomes, o->id, o);
	jobs_trim(js, &js->detached);
}

/* The kept outcome of job id, or NULL. */
static const struct jobs_outcome *
jobs_find_outcome(const struct jobs *js, uint64_t id)
{
	const struct jobs_outcome *o = idmap_get(js->outcomes, id);
	size_t i, n = js->nring < JOBS_FINISHED_MAX ? js->nring : JOBS_FINISHED_MAX;

	for (i = 0; o == NULL && i < n; i++)
		if (js->ring[i].id == id)
			o = &js->ring[i];
	return o;
}

/* The DONE or FAIL line of a kept outcome. */
static int
jobs_outcome_line(const struct jobs_outcome *o, char *buf, size_t n)
{
	if (o->outcome == JOB_DONE)
		return proto_fmt_done(buf, n, o->id, o->text != NULL ? o->text : "",
		    o->queue_us, o->run_us);
	return proto_fmt_fail(buf, n, o->id, job_outcome_name(o->outcome),
	    o->outcome == JOB_ERROR ? o->text : NULL);
}

/* Send line to conn_id; count it dropped when nobody is there. */
static void
jobs_send(struct jobs *js, uint64_t conn_id, const char *line, int n)
{
	if (js->cb.deliver(conn_id, line, (size_t)n, js->cb.arg) < 0)
		js->dropped++;
}

/* A journaled job ended: its outcome goes to the journal too. */
static void
jobs_journal_finish(struct jobs *js, const struct jobs_outcome *o)
{
	struct journal_outcome jo;

	memset(&jo, 0, sizeof(jo));
	jo.id = o->id;
	jo.kind = job_kind_name(o->kind);
	jo.failed = o->outcome != JOB_DONE;
	jo.text = o->outcome == JOB_DONE ? (o->text != NULL ? o->text : "") :
	    job_outcome_name(o->outcome);
	jo.detail = o->outcome == JOB_ERROR && o->text != NULL ? o->text : "";
	jo.progress = o->progress;
	jo.queue_us = o->queue_us;
	jo.run_us = o->run_us;
	journal_finish(js->journal, &jo);
}

/* Connection conn_id waits for one outcome less. */
static void
jobs_unwait(struct jobs *js, uint64_t conn_id)
{
	struct jobs_conn *jc = jobs_conn_get(js, conn_id, 0);

	if (jc != NULL) {
		jc->waits--;
		jobs_conn_put(js, conn_id, jc);
	}
}

/* Nobody will be told: forget the WAITs on j. */
static void
jobs_forget_waiters(struct jobs *js, struct job *j)
{
	size_t i;

	for (i = 0; i < j->nwaiters; i++)
		jobs_unwait(js, j->waiters[i]);
	j->nwaiters = 0;
}

/* The pool's done callback: the loop owns j again. */
static void
jobs_done(struct job *j, void *arg)
{
	struct jobs *js = arg;
	uint64_t start = atomic_load(&j->t_start);
	struct jobs_outcome *o;
	struct jobs_conn *jc;
	char line[JOBS_LINE_MAX];
	size_t i;
	int n;

	idmap_del(js->by_id, j->id);
	if (j->t_end == 0)
		j->t_end = now_ns();
	if (j->journaled < 0 || (j->journaled && j->outcome == JOB_SHUTDOWN)) {
		/* refused for want of a journal, nobody knows its id; or
		 * stopped, not failed: it runs again at the next start */
		jobs_forget_waiters(js, j);
		job_free(j);
		js->cb.finished(js->cb.arg);
		return;
	}
	js->finished[j->args.kind][j->outcome]++;
	if (start != 0)
		hist_add(js->run, j->t_end - start);

	if (j->args.detach) {
		o = xcalloc(1, sizeof(*o));
	} else {
		size_t slot = js->nring++ % JOBS_FINISHED_MAX;

		o = &js->ring[slot];
		memset(o, 0, sizeof(*o));
		o->text = js->ring_text[slot];
		o->text[0] = '\0';
	}
	o->id = j->id;
	o->kind = j->args.kind;
	o->outcome = j->outcome;
	o->progress = atomic_load(&j->progress);
	o->detached = j->args.detach;
	jobs_times(j, j->t_end, &o->queue_us, &o->run_us);
	if (j->outcome == JOB_DONE || j->outcome == JOB_ERROR) {
		size_t len = strnlen(j->result, JOB_RESULT_MAX - 1);

		if (o->detached)
			o->text = xstrdup(j->result);
		else {
			memcpy(o->text, j->result, len);
			o->text[len] = '\0';
		}
	}
	n = jobs_outcome_line(o, line, sizeof(line));
	if (j->journaled > 0)
		jobs_journal_finish(js, o);
	if (o->detached)
		jobs_keep(js, o);	/* may free o: do not use it below */

	if (j->conn_id != 0) {
		if ((jc = jobs_conn_get(js, j->conn_id, 0)) != NULL) {
			TAILQ_REMOVE(&jc->list, j, conn_entry);
			jc->n--;
			jobs_conn_put(js, j->conn_id, jc);
		}
		jobs_send(js, j->conn_id, line, n);
	} else if (j->nwaiters == 0 && !j->args.detach) {
		js->dropped++;		/* its client went away */
	}
	for (i = 0; i < j->nwaiters; i++) {
		jobs_unwait(js, j->waiters[i]);
		jobs_send(js, j->waiters[i], line, n);
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
	js->outcomes = idmap_new();
	TAILQ_INIT(&js->detached.list);
	js->next_id = 1;
	js->run = hist_new();
	js->acks = idmap_new();
	jobs_reconfigure(js, cfg);
	if (cfg->state_dir != NULL &&
	    (js->journal = journal_open(cfg->state_dir, cfg->journal_sync_ms,
	    cfg->job_retention, base, done_priority, jobs_committed, js)) == NULL)
		goto fail;
	js->pool = pool_new(base, cfg->pool_mode, cfg->threads, cfg->queue_max,
	    (int)cfg->worker_nice, done_priority, jobs_done, js);
	if (js->pool == NULL)
		goto fail;
	if (js->journal != NULL) {
		journal_set_nice(js->journal, (int)cfg->worker_nice);
		if (jobs_recover(js, cfg) < 0)
			goto fail;
	}
	return js;
fail:
	jobs_free(js);
	return NULL;
}

void
jobs_reconfigure(struct jobs *js, const struct config *cfg)
{
	js->job_max_ms = cfg->job_max_ms;
	js->max_per_conn = cfg->max_jobs_per_conn;
	js->detached.max = cfg->job_retention;
	jobs_trim(js, &js->detached);
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
	if (!args.detach && (n = jobs_of_conn(js, conn_id)) >= js->max_per_conn) {
		job_args_clear(&args);
		snprintf(text, sizeof(text), "this connection has %u jobs queued or "
		    "running (max_jobs_per_conn)", n);
		return jobs_refuse(js, JOB_REJECT_TOO_MANY_JOBS, text, err);
	}
	j = job_new();
	j->args = args;
	j->id = js->next_id;
	j->conn_id = args.detach ? 0 : conn_id;
	j->timeout_ms = args.timeout_ms != 0 ? args.timeout_ms : js->job_max_ms;
	j->t_submit = now_ns();
	if (pool_submit(js->pool, j) < 0) {
		job_free(j);
		return jobs_refuse(js, JOB_REJECT_BUSY,
		    "the job queue is full; try again later", err);
	}
	js->next_id++;
	idmap_put(js->by_id, j->id, j);
	if (j->conn_id != 0) {
		jc = jobs_conn_get(js, conn_id, 1);
		TAILQ_INSERT_TAIL(&jc->list, j, conn_entry);
		jc->n++;
	}
	*id = j->id;
	if (js->journal != NULL && j->args.detach) {
		jobs_journal_accept(js, j, conn_id, req);
		return 1;
	}
	js->submitted[kind]++;
	return 0;
}

/* The arguments as the request carried them, "k=v k=v". */
static char *
jobs_args_text(const struct proto_request *req)
{
	size_t i, len = 1;
	char *s, *p;

	for (i = 0; i < req->nargs; i++)
		len += strlen(req->keys[i]) + strlen(req->vals[i]) + 2;
	p = s = xmalloc(len);
	*p = '\0';
	for (i = 0; i < req->nargs; i++)
		p += sprintf(p, "%s%s=%s", i > 0 ? " " : "", req->keys[i], req->vals[i]);
	return s;
}

/* Journal a detached job; its OK waits for the commit. */
static void
jobs_journal_accept(struct jobs *js, struct job *j, uint64_t conn_id,
    const struct proto_request *req)
{
	struct jobs_ack *ack = xcalloc(1, sizeof(*ack));
	char *args = jobs_args_text(req);

	j->journaled = 1;
	journal_accept(js->journal, j->id, job_kind_name(j->args.kind), args);
	free(args);
	ack->conn_id = conn_id;
	ack->kind = j->args.kind;
	idmap_put(js->acks, j->id, ack);
}

/* The journal's answer for an accepted job (journal_done_fn). */
static void
jobs_committed(uint64_t id, int ok, void *arg)
{
	struct jobs *js = arg;
	struct jobs_ack *ack = idmap_del(js->acks, id);
	struct job *j;
	char line[JOBS_LINE_MAX];
	int n;

	if (ack == NULL)
		return;		/* a re-queued job's record, say */
	if (ok == 0) {
		js->submitted[ack->kind]++;
		n = proto_fmt_ok_id(line, sizeof(line), id);
	} else {
		/* never acknowledged: it must not run, nor come back */
		if ((j = idmap_get(js->by_id, id)) != NULL) {
			j->journaled = -1;
			pool_cancel(js->pool, j, JOB_CANCELLED);
		}
		js->rejected[JOB_REJECT_UNAVAILABLE]++;
		n = proto_fmt_err(line, sizeof(line), proto_reject_code(JOB_REJECT_UNAVAILABLE),
		    "the job journal cannot be written; try again later");
	}
	js->cb.committed(ack->conn_id, line, (size_t)n, js->cb.arg);
	free(ack);
}

/* Recovery: an unfinished detached job runs again under its id. */
static void
jobs_requeue(uint64_t id, const char *kind_name, const char *args, void *arg)
{
	struct jobs *js = arg;
	char *keys[PROTO_ARGS_MAX], *vals[PROTO_ARGS_MAX], *copy, *tok, *save = NULL;
	char err[160];
	struct job_args a;
	enum job_kind kind;
	struct job *j;
	size_t n = 0;

	if (id >= js->next_id)
		js->next_id = id + 1;
	copy = xstrdup(args);
	for (tok = strtok_r(copy, " ", &save); tok != NULL && n < PROTO_ARGS_MAX;
	    tok = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(tok, '=');

		if (eq == NULL)
			continue;
		*eq = '\0';
		keys[n] = tok;
		vals[n++] = eq + 1;
	}
	if (job_kind_parse(kind_name, &kind) < 0)
		snprintf(err, sizeof(err), "unknown kind %s", kind_name);
	else if (job_args_parse(kind, keys, vals, n, js->job_max_ms, &a, err,
	    sizeof(err)) == 0) {
		j = job_new();
		j->args = a;
		j->args.detach = 1;
		j->id = id;
		j->timeout_ms = a.timeout_ms != 0 ? a.timeout_ms : js->job_max_ms;
		j->t_submit = now_ns();
		j->journaled = 1;
		if (pool_submit(js->pool, j) == 0) {
			idmap_put(js->by_id, id, j);
			js->submitted[kind]++;
			free(copy);
			return;
		}
		job_free(j);
		snprintf(err, sizeof(err), "the pool refused it");
	}
	free(copy);
	/* it cannot run again here: end it, so it is not tried forever */
	{
		struct log_line *l = log_begin(LOG_ERROR, "journal-requeue-failed");
		struct journal_outcome jo;

		log_uint(l, "id", id);
		log_str(l, "reason", err);
		log_end(l);
		memset(&jo, 0, sizeof(jo));
		jo.id = id;
		jo.kind = kind_name;
		jo.failed = 1;
		jo.text = job_outcome_name(JOB_ERROR);
		jo.detail = err;
		journal_finish(js->journal, &jo);
	}
}

/* Recovery: a retained outcome, oldest finished first. */
static void
jobs_retain(const struct journal_outcome *jo, void *arg)
{
	struct jobs *js = arg;
	struct jobs_outcome *o = xcalloc(1, sizeof(*o));

	if (jo->id >= js->next_id)
		js->next_id = jo->id + 1;
	o->id = jo->id;
	if (job_kind_parse(jo->kind, &o->kind) < 0)
		o->kind = JOB_SLEEP;	/* a kind this release lacks: still show it */
	o->outcome = JOB_DONE;
	if (jo->failed && job_outcome_parse(jo->text, &o->outcome) < 0)
		o->outcome = JOB_ERROR;
	if (!jo->failed)
		o->text = xstrdup(jo->text);
	else if (o->outcome == JOB_ERROR)
		o->text = xstrdup(jo->detail);
	o->progress = jo->progress;
	o->detached = 1;
	o->queue_us = jo->queue_us;
	o->run_us = jo->run_us;
	jobs_keep(js, o);
}

/* Read the journal once, before the loop runs. */
static int
jobs_recover(struct jobs *js, const struct config *cfg)
{
	struct journal_recovery rcb = { jobs_requeue, jobs_retain, js };
	uint64_t max_id = 0;
	int rc;

	/* every unfinished job comes back, whatever queue_max says */
	pool_set_queue_max(js->pool, UINT32_MAX / 2);
	rc = journal_recover(js->journal, &rcb, &max_id);
	pool_set_queue_max(js->pool, cfg->queue_max);
	if (max_id >= js->next_id)
		js->next_id = max_id + 1;
	return rc;
}

int
jobs_cancel(struct jobs *js, uint64_t id)
{
	struct job *j = idmap_get(js->by_id, id);

	return j != NULL ? pool_cancel(js->pool, j, JOB_CANCELLED) : -1;
}

int
jobs_wait(struct jobs *js, uint64_t conn_id, uint64_t id)
{
	struct job *j = idmap_get(js->by_id, id);
	const struct jobs_outcome *o;
	char line[JOBS_LINE_MAX];
	size_t i;

	if (j != NULL) {
		if (j->conn_id == conn_id)
			return 0;	/* its own job: the outcome comes anyway */
		for (i = 0; i < j->nwaiters; i++)
			if (j->waiters[i] == conn_id)
				return 0;	/* waiting already: one outcome */
		j->waiters = xrealloc(j->waiters, (j->nwaiters + 1) * sizeof(*j->waiters));
		j->waiters[j->nwaiters++] = conn_id;
		jobs_conn_get(js, conn_id, 1)->waits++;
		return 0;
	}
	if ((o = jobs_find_outcome(js, id)) == NULL)
		return -1;
	jobs_send(js, conn_id, line, jobs_outcome_line(o, line, sizeof(line)));
	return 0;
}

/* A live job as STATUS and JOBS show it. */
static void
jobs_live_info(const struct job *j, struct proto_job *out)
{
	uint64_t end;

	memset(out, 0, sizeof(*out));
	out->id = j->id;
	out->kind = job_kind_name(j->args.kind);
	if (atomic_load(&j->state) == JOB_FINISHED) {
		/* back on the done list, not yet handed to the loop */
		out->state = j->outcome == JOB_DONE ? "done" : "failed";
		end = j->t_end;
		if (j->outcome == JOB_DONE)
			out->result = j->result;
		else
			out->reason = job_outcome_name(j->outcome);
	} else {
		out->state = atomic_load(&j->t_start) != 0 ? "running" : "queued";
		end = now_ns();
	}
	out->progress = atomic_load(&j->progress);
	out->detached = j->args.detach;
	jobs_times(j, end, &out->queue_us, &out->run_us);
}

int
jobs_info(const struct jobs *js, uint64_t id, struct proto_job *out)
{
	const struct job *j = idmap_get(js->by_id, id);
	const struct jobs_outcome *o;

	if (j != NULL) {
		jobs_live_info(j, out);
		return 0;
	}
	if ((o = jobs_find_outcome(js, id)) == NULL)
		return -1;
	memset(out, 0, sizeof(*out));
	out->id = id;
	out->kind = job_kind_name(o->kind);
	out->progress = o->progress;
	out->queue_us = o->queue_us;
	out->run_us = o->run_us;
	out->detached = o->detached;
	if (o->outcome == JOB_DONE) {
		out->state = "done";
		out->result = o->text != NULL ? o->text : "";
	} else {
		out->state = "failed";
		out->reason = job_outcome_name(o->outcome);
		if (o->outcome == JOB_ERROR)
			out->detail = o->text;
	}
	return 0;
}

/* idmap_foreach: collect the live jobs. */
struct jobs_collect {
	const struct job **v;
	size_t n;
};

static void
jobs_collect(uint64_t id, void *p, void *arg)
{
	struct jobs_collect *c = arg;

	(void)id;
	c->v[c->n++] = p;
}

static int
jobs_by_id(const void *a, const void *b)
{
	uint64_t x = (*(const struct job *const *)a)->id;
	uint64_t y = (*(const struct job *const *)b)->id;

	return x < y ? -1 : x > y;
}

void
jobs_foreach_live(const struct jobs *js,
    void (*fn)(const struct proto_job *j, void *arg), void *arg)
{
	struct jobs_collect c;
	struct proto_job pj;
	size_t i;

	c.v = xmalloc((idmap_count(js->by_id) + 1) * sizeof(*c.v));
	c.n = 0;
	idmap_foreach(js->by_id, jobs_collect, &c);
	qsort(c.v, c.n, sizeof(*c.v), jobs_by_id);
	for (i = 0; i < c.n; i++) {
		jobs_live_info(c.v[i], &pj);
		fn(&pj, arg);
	}
	free(c.v);
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
	/* its WAITs stay on their jobs: the id finds nobody when they end */
	free(jc);
}

unsigned
jobs_of_conn(const struct jobs *js, uint64_t conn_id)
{
	const struct jobs_conn *jc = idmap_get(js->by_conn, conn_id);

	return jc != NULL ? jc->n : 0;
}

unsigned
jobs_pending_for(const struct jobs *js, uint64_t conn_id)
{
	const struct jobs_conn *jc = idmap_get(js->by_conn, conn_id);

	return jc != NULL ? jc->n + jc->waits : 0;
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
jobs_free_entry(uint64_t id, void *p, void *arg)
{
	(void)id;
	(void)arg;
	free(p);
}

void
jobs_free(struct jobs *js)
{
	struct jobs_outcome *o;

	if (js == NULL)
		return;
	/* the index goes first: it points into jobs the pool is about to free */
	idmap_foreach(js->by_conn, jobs_free_entry, NULL);
	if (js->pool != NULL)
		pool_free(js->pool);
	/* after the pool: what it still held stays unfinished in the journal */
	if (js->journal != NULL)
		journal_close(js->journal);
	idmap_foreach(js->acks, jobs_free_entry, NULL);
	idmap_free(js->acks);
	while ((o = TAILQ_FIRST(&js->detached.list)) != NULL) {
		TAILQ_REMOVE(&js->detached.list, o, entry);
		jobs_outcome_free(o);
	}
	idmap_free(js->by_id);
	idmap_free(js->by_conn);
	idmap_free(js->outcomes);
	hist_free(js->run);
	free(js);
}
