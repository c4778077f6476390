/*
 * pool.c - the fixed-size worker pool: a bounded FIFO job queue, N worker
 * threads, a done list and the socketpair doorbell that hands finished jobs
 * back to the loop thread.
 *
 * DESIGN
 *
 * Queue. pool_submit (loop thread) stages a job on a list only the loop
 * touches; publish_ev, at the pool's priority, runs right after the callback
 * that submitted (libevent runs a higher-priority event before going on with
 * lower ones) and moves every staged job to the FIFO queue under p->lock in
 * one splice, waking at most as many idle workers as there are new jobs. So
 * a client's pipelined burst costs one lock and a few wake-ups, not one of
 * each per job. Each worker waits on p->cond, takes the head, moves it to the
 * running list (state RUNNING, t_start set) and runs it with the lock
 * released; finishing it and taking the next is one lock. A job is accepted
 * while fewer than threads + queue_max jobs are staged, queued or running
 * (p->occupied: the loop adds, whoever finishes a job subtracts), so the
 * limit is exact whatever the timing of wake-ups, and a cancelled queued job
 * frees its slot at once. Jobs start in submission
 * order; with more than one thread they may finish in any order. Anything
 * that looks at the queue (cancel, stats, free) publishes staged jobs first.
 *
 * Ownership. A job belongs to exactly one side at a time: the loop until
 * pool_submit returns 0, then the pool (queue, running list or done list,
 * all linked through pool_entry and guarded by p->lock; a running job's
 * fields are written only by its worker), then the loop again from done_fn,
 * which must free it. Other threads only read or write a job's atomics
 * (cancel, progress, state, t_start). One lock guards the queue, the running
 * list, the done list and the counters: it is held only for list splices,
 * never while a job runs or done_fn is called.
 *
 * Doorbell (memcached thread.c). A worker that finishes a job moves it to
 * the done list (state FINISHED) and writes one byte to the socketpair only
 * when the list was empty; those writes are stats.wakeups. The loop's
 * doorbell event (EV_READ|EV_PERSIST, at the priority given to pool_new)
 * drains the byte(s), takes at most POOL_DRAIN_MAX jobs off the list under
 * the lock and calls done_fn for each with the lock released. If jobs remain
 * it schedules itself again through a zero-timeout timer at the same
 * priority (drain_ev), not event_active: libevent runs an event re-activated
 * from its own callback in the same pass, before it polls or looks at timers,
 * so a flood of completions would starve the tick; a due timer is looked at
 * first, and runs first when its priority is higher. Workers keep quiet while
 * the list is non-empty, since the loop is bound to come back to it.
 * Invariant: the done list is non-empty only while a byte is unread or
 * drain_ev is pending.
 *
 * Cancellation. A queued job is taken off the queue under the lock, given
 * the reason as its outcome and put on the done list, so it comes back
 * through done_fn on a later loop iteration (after the caller has answered
 * the CANCEL). A running job gets its atomic cancel flag set and ends at its
 * next check (at most about a millisecond of work later).
 *
 * Threads. Workers are created with every signal blocked (the creator masks
 * them around pthread_create, so only the loop thread handles signals) and
 * each raises its own niceness by worker_nice above the loop's (Linux
 * per-thread nice), so the loop wins the CPU whenever both want it. Failing
 * to renice is logged once and otherwise ignored. They are named "hb-worker"
 * for top -H and ps -L.
 *
 * Inline mode (POOL_MODE_INLINE) has no threads: pool_submit queues the job
 * and activates an event at the base's lowest priority that runs one job on
 * the loop thread per callback (rescheduled the same way as drain_ev while
 * the queue is not empty), blocking the loop while it runs. It exists
 * to show what that breaks. Its jobs still come back through the doorbell.
 * The accept rule counts it as one thread; stats.threads is 0.
 *
 * Shutdown. pool_free cancels everything with JOB_SHUTDOWN, tells the
 * workers to exit once their current job ends, joins them, and frees every
 * job still held (their outcomes are not delivered), then the socketpair and
 * events.
 */

#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "pool.h"
#include "util.h"

struct pool {
	struct event_base *base;
	enum pool_mode mode;
	unsigned nthreads;	/* workers started */
	pthread_t *tids;
	int nice_target;	/* absolute niceness for workers */
	_Atomic int nice_warned;
	pool_done_fn done;
	void *done_arg;

	pthread_mutex_t lock;
	pthread_cond_t cond;	/* a job was queued, or stopping */
	struct job_list queue;	/* QUEUED, FIFO */
	struct job_list running;	/* RUNNING */
	struct job_list finished;	/* FINISHED, not yet handed back */
	unsigned nqueued;
	unsigned nrunning;
	unsigned nidle;		/* workers waiting on cond */
	unsigned queue_max;
	int stopping;
	uint64_t wakeups;
	uint64_t completions;

	struct job_list staged;	/* accepted, not yet published: loop only */
	_Atomic unsigned occupied;	/* staged, queued or running */
	struct event *publish_ev;

	int bell[2];		/* [0] read by the loop, [1] written by workers */
	struct event *bell_ev;
	struct event *drain_ev;	/* more to hand back: the next loop pass */
	struct event *inline_ev;
};

static void pool_drain(struct pool *);

/* Ring the doorbell: one byte, never blocking (a full pipe is rung already). */
static void
pool_ring(struct pool *p)
{
	static const char b = 1;

	while (send(p->bell[1], &b, 1, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

/*
 * Move j (already off the queue or running list) to the done list. Called
 * with the lock held; returns 1 when the caller must ring the doorbell after
 * unlocking.
 */
static int
pool_finish_locked(struct pool *p, struct job *j)
{
	int was_empty = TAILQ_EMPTY(&p->finished);

	atomic_fetch_sub(&p->occupied, 1);
	atomic_store(&j->state, JOB_FINISHED);
	TAILQ_INSERT_TAIL(&p->finished, j, pool_entry);
	if (was_empty)
		p->wakeups++;
	return was_empty;
}

/* Take a queued job off the queue with reason as its outcome. Lock held. */
static int
pool_drop_queued_locked(struct pool *p, struct job *j, int reason)
{
	TAILQ_REMOVE(&p->queue, j, pool_entry);
	p->nqueued--;
	j->outcome = (enum job_outcome)reason;
	j->result[0] = '\0';
	j->t_end = now_ns();
	/* never ran: no run time, and the queue time ends here */
	atomic_store(&j->t_start, j->t_end);
	return pool_finish_locked(p, j);
}

/* Take the head of the queue and mark it running. Lock held. */
static struct job *
pool_take_locked(struct pool *p)
{
	struct job *j = TAILQ_FIRST(&p->queue);

	TAILQ_REMOVE(&p->queue, j, pool_entry);
	p->nqueued--;
	TAILQ_INSERT_TAIL(&p->running, j, pool_entry);
	p->nrunning++;
	atomic_store(&j->t_start, now_ns());
	atomic_store(&j->state, JOB_RUNNING);
	return j;
}

/* j has run; move it from the running list to the done list and ring. */
static void
pool_complete(struct pool *p, struct job *j)
{
	int ring;

	pthread_mutex_lock(&p->lock);
	TAILQ_REMOVE(&p->running, j, pool_entry);
	p->nrunning--;
	ring = pool_finish_locked(p, j);
	pthread_mutex_unlock(&p->lock);
	if (ring)
		pool_ring(p);
}

/* Lower this thread's priority; Linux applies setpriority to one thread. */
static void
pool_worker_renice(struct pool *p)
{
	struct log_line *l;

	if (thread_renice(p->nice_target) == 0)
		return;
	if (atomic_exchange(&p->nice_warned, 1) == 0) {
		l = log_begin(LOG_WARN, "worker-nice-failed");
		log_int(l, "nice", p->nice_target);
		log_errno(l, errno);
		log_end(l);
	}
}

static void *
pool_worker(void *arg)
{
	struct pool *p = arg;
	struct job *j;

	pthread_setname_np(pthread_self(), "hb-worker");
	pool_worker_renice(p);
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->stopping && TAILQ_EMPTY(&p->queue)) {
			p->nidle++;
			pthread_cond_wait(&p->cond, &p->lock);
			p->nidle--;
		}
		if (p->stopping)
			break;
		j = pool_take_locked(p);
		pthread_mutex_unlock(&p->lock);
		job_run(j);
		pthread_mutex_lock(&p->lock);
		TAILQ_REMOVE(&p->running, j, pool_entry);
		p->nrunning--;
		if (pool_finish_locked(p, j)) {
			/* never hold the lock across a system call */
			pthread_mutex_unlock(&p->lock);
			pool_ring(p);
			pthread_mutex_lock(&p->lock);
		}
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/*
 * Run ev on a later pass of the loop, after it has polled and collected due
 * timers (event_active from ev's own callback would run it in this pass).
 */
static void
pool_later(struct event *ev)
{
	static const struct timeval zero = { 0, 0 };

	event_add(ev, &zero);
}

/* Inline mode: run one queued job on the loop thread. */
static void
pool_inline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pool *p = arg;
	struct job *j = NULL;
	int more;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&p->lock);
	if (!TAILQ_EMPTY(&p->queue))
		j = pool_take_locked(p);
	pthread_mutex_unlock(&p->lock);
	if (j != NULL) {
		job_run(j);
		pool_complete(p, j);
	}
	pthread_mutex_lock(&p->lock);
	more = !TAILQ_EMPTY(&p->queue);
	pthread_mutex_unlock(&p->lock);
	if (more)
		pool_later(p->inline_ev);
}

/* Move every staged job to the queue in one splice; wake idle workers. */
static void
pool_publish(struct pool *p)
{
	struct job *j;
	unsigned n = 0, wake;

	if (TAILQ_EMPTY(&p->staged))
		return;
	TAILQ_FOREACH(j, &p->staged, pool_entry)
		n++;
	pthread_mutex_lock(&p->lock);
	TAILQ_CONCAT(&p->queue, &p->staged, pool_entry);
	p->nqueued += n;
	for (wake = n < p->nidle ? n : p->nidle; wake > 0; wake--)
		pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	if (p->inline_ev != NULL)
		event_active(p->inline_ev, 0, 0);
}

static void
pool_publish_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pool_publish(arg);
}

/* The doorbell rang: empty the socket, then hand back finished jobs. */
static void
pool_bell_cb(evutil_socket_t fd, short what, void *arg)
{
	char buf[64];
	ssize_t r;

	(void)what;
	do
		r = read(fd, buf, sizeof(buf));
	while (r > 0 || (r < 0 && errno == EINTR));
	pool_drain(arg);
}

static void
pool_drain_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pool_drain(arg);
}

/* Hand back up to POOL_DRAIN_MAX finished jobs; come back for the rest. */
static void
pool_drain(struct pool *p)
{
	struct job_list batch;
	struct job *j;
	unsigned n;
	int more;

	TAILQ_INIT(&batch);
	pthread_mutex_lock(&p->lock);
	for (n = 0; n < POOL_DRAIN_MAX &&
	    (j = TAILQ_FIRST(&p->finished)) != NULL; n++) {
		TAILQ_REMOVE(&p->finished, j, pool_entry);
		TAILQ_INSERT_TAIL(&batch, j, pool_entry);
	}
	p->completions += n;
	more = !TAILQ_EMPTY(&p->finished);
	pthread_mutex_unlock(&p->lock);

	while ((j = TAILQ_FIRST(&batch)) != NULL) {
		TAILQ_REMOVE(&batch, j, pool_entry);
		p->done(j, p->done_arg);
	}
	if (more)
		pool_later(p->drain_ev);
}

static int
pool_set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	return 0;
}

/* Log a startup failure of the pool. */
static void
pool_log_fail(const char *what, int errnum)
{
	struct log_line *l = log_begin(LOG_ERROR, "pool-failed");

	log_str(l, "what", what);
	if (errnum)
		log_errno(l, errnum);
	log_end(l);
}

/* Stop and join the workers; free every job the pool still holds. */
static void
pool_stop(struct pool *p)
{
	struct job *j;
	unsigned i;

	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->tids[i], NULL);
	p->nthreads = 0;

	while ((j = TAILQ_FIRST(&p->queue)) != NULL) {
		TAILQ_REMOVE(&p->queue, j, pool_entry);
		job_free(j);
	}
	while ((j = TAILQ_FIRST(&p->finished)) != NULL) {
		TAILQ_REMOVE(&p->finished, j, pool_entry);
		job_free(j);
	}
	p->nqueued = 0;
}

struct pool *
pool_new(struct event_base *base, enum pool_mode mode, unsigned threads,
    unsigned queue_max, int worker_nice, int priority, pool_done_fn done,
    void *arg)
{
	struct pool *p;
	pthread_mutexattr_t attr;
	sigset_t all, old;
	unsigned i;
	int rc = 0;

	p = xcalloc(1, sizeof(*p));
	p->base = base;
	p->mode = mode;
	p->queue_max = queue_max;
	p->nice_target = thread_nice_target(worker_nice);
	p->done = done;
	p->done_arg = arg;
	p->bell[0] = p->bell[1] = -1;
	TAILQ_INIT(&p->queue);
	TAILQ_INIT(&p->running);
	TAILQ_INIT(&p->finished);
	TAILQ_INIT(&p->staged);
	/* critical sections are a few list splices: spin briefly, then sleep */
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(&p->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	pthread_cond_init(&p->cond, NULL);

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p->bell) < 0) {
		pool_log_fail("socketpair", errno);
		goto fail;
	}
	if (pool_set_nonblock(p->bell[0]) < 0 ||
	    pool_set_nonblock(p->bell[1]) < 0) {
		pool_log_fail("fcntl", errno);
		goto fail;
	}
	p->bell_ev = event_new(base, p->bell[0], EV_READ | EV_PERSIST,
	    pool_bell_cb, p);
	if (p->bell_ev == NULL ||
	    event_priority_set(p->bell_ev, priority) < 0 ||
	    event_add(p->bell_ev, NULL) < 0) {
		pool_log_fail("doorbell event", 0);
		goto fail;
	}
	p->drain_ev = event_new(base, -1, 0, pool_drain_cb, p);
	p->publish_ev = event_new(base, -1, 0, pool_publish_cb, p);
	if (p->drain_ev == NULL || event_priority_set(p->drain_ev, priority) < 0 ||
	    p->publish_ev == NULL || event_priority_set(p->publish_ev, priority) < 0) {
		pool_log_fail("drain event", 0);
		goto fail;
	}

	if (mode == POOL_MODE_INLINE) {
		p->inline_ev = event_new(base, -1, 0, pool_inline_cb, p);
		if (p->inline_ev == NULL || event_priority_set(p->inline_ev,
		    event_base_get_npriorities(base) - 1) < 0) {
			pool_log_fail("inline event", 0);
			goto fail;
		}
		return p;
	}

	if (threads == 0) {
		pool_log_fail("no threads", 0);
		goto fail;
	}
	p->tids = xcalloc(threads, sizeof(*p->tids));
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < threads; i++) {
		if ((rc = pthread_create(&p->tids[i], NULL, pool_worker, p)) != 0)
			break;
		p->nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (p->nthreads < threads) {
		pool_log_fail("pthread_create", rc);
		goto fail;
	}
	return p;
 fail:
	pool_free(p);
	return NULL;
}

void
pool_free(struct pool *p)
{
	if (p == NULL)
		return;
	pool_cancel_all(p, JOB_SHUTDOWN);
	pool_stop(p);
	if (p->bell_ev != NULL)
		event_free(p->bell_ev);
	if (p->drain_ev != NULL)
		event_free(p->drain_ev);
	if (p->publish_ev != NULL)
		event_free(p->publish_ev);
	if (p->inline_ev != NULL)
		event_free(p->inline_ev);
	if (p->bell[0] >= 0)
		close(p->bell[0]);
	if (p->bell[1] >= 0)
		close(p->bell[1]);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p->tids);
	free(p);
}

int
pool_submit(struct pool *p, struct job *j)
{
	unsigned slots = p->mode == POOL_MODE_INLINE ? 1 : p->nthreads;

	if (p->stopping ||
	    (uint64_t)atomic_load(&p->occupied) >= (uint64_t)slots + p->queue_max)
		return -1;
	if (j->t_submit == 0)
		j->t_submit = now_ns();
	atomic_store(&j->state, JOB_QUEUED);
	if (TAILQ_EMPTY(&p->staged))
		event_active(p->publish_ev, EV_TIMEOUT, 0);
	TAILQ_INSERT_TAIL(&p->staged, j, pool_entry);
	atomic_fetch_add(&p->occupied, 1);
	return 0;
}

int
pool_cancel(struct pool *p, struct job *j, int reason)
{
	int rc = 0, ring = 0;

	pool_publish(p);
	pthread_mutex_lock(&p->lock);
	switch (atomic_load(&j->state)) {
	case JOB_QUEUED:
		ring = pool_drop_queued_locked(p, j, reason);
		break;
	case JOB_RUNNING:
		atomic_store(&j->cancel, reason);
		break;
	default:
		rc = -1;
		break;
	}
	pthread_mutex_unlock(&p->lock);
	if (ring)
		pool_ring(p);
	return rc;
}

void
pool_cancel_all(struct pool *p, int reason)
{
	struct job *j;
	int ring = 0;

	pool_publish(p);
	pthread_mutex_lock(&p->lock);
	while ((j = TAILQ_FIRST(&p->queue)) != NULL)
		ring |= pool_drop_queued_locked(p, j, reason);
	TAILQ_FOREACH(j, &p->running, pool_entry)
		atomic_store(&j->cancel, reason);
	pthread_mutex_unlock(&p->lock);
	if (ring)
		pool_ring(p);
}

void
pool_set_queue_max(struct pool *p, unsigned queue_max)
{
	pthread_mutex_lock(&p->lock);
	p->queue_max = queue_max;
	pthread_mutex_unlock(&p->lock);
}

void
pool_stats(struct pool *p, struct pool_stats *out)
{
	struct job *j;

	pool_publish(p);
	pthread_mutex_lock(&p->lock);
	out->threads = p->nthreads;
	out->busy = p->nrunning;
	out->queued = p->nqueued;
	out->wakeups = p->wakeups;
	out->completions = p->completions;
	/* workers append to the running list as they start jobs */
	j = TAILQ_FIRST(&p->running);
	out->oldest_start_ns = j != NULL ? atomic_load(&j->t_start) : 0;
	pthread_mutex_unlock(&p->lock);
}

unsigned
pool_pending(struct pool *p)
{
	unsigned n;

	pool_publish(p);
	pthread_mutex_lock(&p->lock);
	n = p->nqueued + p->nrunning;
	pthread_mutex_unlock(&p->lock);
	return n;
}
