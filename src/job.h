/*
 * job.h - a unit of work and the table of built-in kinds (sleep, spin,
 * primes, sha256): argument parsing and validation, and running a job on the
 * calling thread while polling its cancel flag and deadline at least every
 * millisecond of work and publishing progress (0-100).
 *
 * A job is owned by one side at a time: the loop, the pool's queue, a
 * worker, the pool's done list, then the loop again, which frees it. Only
 * the atomics below are read across threads while another side owns it.
 */
#ifndef HB_JOB_H
#define HB_JOB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#define JOB_RESULT_MAX 128	/* result value on DONE, detail on ERROR */
#define JOB_PRIMES_MAX 10000000000ull
#define JOB_ROUNDS_MAX 1000000000ull

enum job_kind { JOB_SLEEP, JOB_SPIN, JOB_PRIMES, JOB_SHA256, JOB_KIND_COUNT };

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_FINISHED };

/* How a job ended; the FAIL reasons are the names of the last four. */
enum job_outcome { JOB_DONE, JOB_CANCELLED, JOB_TIMEOUT, JOB_SHUTDOWN, JOB_ERROR,
	JOB_OUTCOME_COUNT };

/* Why a SUBMIT was refused; proto_reject_code() spells each on the wire. */
enum job_reject { JOB_REJECT_BUSY, JOB_REJECT_TOO_MANY_JOBS,
	JOB_REJECT_SHUTTING_DOWN, JOB_REJECT_UNAVAILABLE, JOB_REJECT_COUNT };

struct job_args {
	enum job_kind kind;
	uint64_t n;		/* ms (sleep, spin), n (primes), rounds (sha256) */
	char *seed;		/* sha256 seed, NULL = empty */
	uint32_t timeout_ms;	/* 0 = the job_max_ms given at submit */
	int detach;		/* detach=1: the daemon's, not the connection's */
};

struct job {
	uint64_t id;
	uint64_t conn_id;	/* the client's connection id, 0 = none */
	/* loop thread only: connections WAITing for the outcome */
	uint64_t *waiters;
	size_t nwaiters;
	int journaled;		/* its accept record is (being) committed */
	struct job_args args;
	uint32_t timeout_ms;	/* effective run-time limit */

	_Atomic int cancel;	/* 0, or JOB_CANCELLED / JOB_SHUTDOWN */
	_Atomic unsigned progress;	/* 0..100 */
	_Atomic int state;	/* enum job_state */
	_Atomic uint64_t t_start;	/* ns; set when a worker takes it */
	uint64_t t_submit;	/* ns */
	uint64_t t_end;		/* ns; set when it finishes */

	enum job_outcome outcome;
	char result[JOB_RESULT_MAX];

	TAILQ_ENTRY(job) pool_entry;	/* owned by the pool while queued/done */
	TAILQ_ENTRY(job) conn_entry;	/* the work module's per-client list */
};
TAILQ_HEAD(job_list, job);

const char *job_kind_name(enum job_kind kind);
/* Case-insensitive. Returns 0 or -1. */
int job_kind_parse(const char *name, enum job_kind *out);
const char *job_outcome_name(enum job_outcome outcome);
/* The outcome named name (done, cancelled, ...). Returns 0 or -1. */
int job_outcome_parse(const char *name, enum job_outcome *out);

/*
 * Validate key=value arguments for kind (timeout_ms and detach are accepted
 * by every kind). Every number must be digits only and in range; ms and timeout_ms
 * are at most job_max_ms. Returns 0, or -1 with a human reason in err (the
 * wire code is bad-arg).
 */
int job_args_parse(enum job_kind kind, char *const *keys, char *const *vals,
    size_t n, uint32_t job_max_ms, struct job_args *out, char *err, size_t errlen);
void job_args_clear(struct job_args *a);

struct job *job_new(void);
void job_free(struct job *j);

/*
 * Run j on the calling thread: sets t_start when not yet set, computes the
 * deadline from timeout_ms, runs the kind, sets t_end, outcome and result.
 * Returns the outcome.
 */
enum job_outcome job_run(struct job *j);

#endif
