/*
 * job.c - the built-in job kinds: argument parsing and validation, and
 * running a job on the calling thread (a pool worker, or the loop in inline
 * mode).
 *
 * Every kind works in slices short enough that it checks the job's atomic
 * cancel flag and its deadline, and publishes progress, at least every
 * millisecond: sleep naps at most 1 ms at a time, spin and sha256 look at
 * the clock every few hundred iterations, and primes sieves one segment (well
 * under a millisecond of work) at a time in a fixed few hundred KiB.
 */

#include <openssl/evp.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "job.h"
#include "util.h"

#define JOB_SLICE_NS	HB_NS_PER_MS	/* longest nap of sleep */
#define JOB_SPIN_CHECK	1024		/* spin iterations between checks */
#define JOB_SHA_CHECK	256		/* sha256 rounds between checks */
#define JOB_SIEVE_BYTES	(64 * 1024)	/* odd numbers per primes segment */

static const char *const job_kind_names[JOB_KIND_COUNT] = {
	[JOB_SLEEP] = "sleep",
	[JOB_SPIN] = "spin",
	[JOB_PRIMES] = "primes",
	[JOB_SHA256] = "sha256",
};

static const char *const job_outcome_names[JOB_OUTCOME_COUNT] = {
	[JOB_DONE] = "done",
	[JOB_CANCELLED] = "cancelled",
	[JOB_TIMEOUT] = "timeout",
	[JOB_SHUTDOWN] = "shutdown",
	[JOB_ERROR] = "error",
};

/* What a running kind needs to decide whether to go on. */
struct job_ctx {
	struct job *j;
	uint64_t deadline;	/* ns; UINT64_MAX = none */
};

const char *
job_kind_name(enum job_kind kind)
{
	if ((unsigned)kind >= JOB_KIND_COUNT)
		return "unknown";
	return job_kind_names[kind];
}

int
job_kind_parse(const char *name, enum job_kind *out)
{
	unsigned i;

	if (name == NULL)
		return -1;
	for (i = 0; i < JOB_KIND_COUNT; i++) {
		if (strcasecmp(name, job_kind_names[i]) == 0) {
			*out = (enum job_kind)i;
			return 0;
		}
	}
	return -1;
}

const char *
job_outcome_name(enum job_outcome outcome)
{
	if ((unsigned)outcome >= JOB_OUTCOME_COUNT)
		return "unknown";
	return job_outcome_names[outcome];
}

int
job_outcome_parse(const char *name, enum job_outcome *out)
{
	int o;

	for (o = 0; o < JOB_OUTCOME_COUNT; o++)
		if (strcmp(name, job_outcome_names[o]) == 0) {
			*out = (enum job_outcome)o;
			return 0;
		}
	return -1;
}

/* The required numeric argument of kind: its key and range. */
static void
job_main_arg(enum job_kind kind, uint32_t job_max_ms, const char **key,
    uint64_t *lo, uint64_t *hi)
{
	switch (kind) {
	case JOB_PRIMES:
		*key = "n";
		*lo = 0;
		*hi = JOB_PRIMES_MAX;
		break;
	case JOB_SHA256:
		*key = "rounds";
		*lo = 1;
		*hi = JOB_ROUNDS_MAX;
		break;
	default:
		*key = "ms";
		*lo = 0;
		*hi = job_max_ms;
		break;
	}
}

int
job_args_parse(enum job_kind kind, char *const *keys, char *const *vals,
    size_t n, uint32_t job_max_ms, struct job_args *out, char *err, size_t errlen)
{
	struct job_args a;
	const char *mkey, *kname;
	uint64_t lo, hi, v;
	int have_main = 0, have_timeout = 0, have_seed = 0, have_detach = 0;
	size_t i;

	if ((unsigned)kind >= JOB_KIND_COUNT) {
		snprintf(err, errlen, "unknown kind");
		return -1;
	}
	memset(&a, 0, sizeof(a));
	a.kind = kind;
	kname = job_kind_names[kind];
	job_main_arg(kind, job_max_ms, &mkey, &lo, &hi);

	for (i = 0; i < n; i++) {
		const char *k = keys[i], *val = vals[i];

		if (k == NULL || *k == '\0') {
			snprintf(err, errlen, "empty argument name");
			goto fail;
		}
		if (strcmp(k, mkey) == 0) {
			if (have_main++) {
				snprintf(err, errlen, "duplicate argument %s", k);
				goto fail;
			}
			if (val == NULL || parse_u64(val, lo, hi, &a.n) < 0) {
				snprintf(err, errlen, "%s needs %s=%llu..%llu",
				    kname, mkey, (unsigned long long)lo,
				    (unsigned long long)hi);
				goto fail;
			}
		} else if (strcmp(k, "timeout_ms") == 0) {
			if (have_timeout++) {
				snprintf(err, errlen, "duplicate argument %s", k);
				goto fail;
			}
			if (val == NULL || job_max_ms == 0 ||
			    parse_u64(val, 1, job_max_ms, &v) < 0) {
				snprintf(err, errlen, "timeout_ms must be 1..%u",
				    (unsigned)job_max_ms);
				goto fail;
			}
			a.timeout_ms = (uint32_t)v;
		} else if (strcmp(k, "detach") == 0) {
			if (have_detach++) {
				snprintf(err, errlen, "duplicate argument %s", k);
				goto fail;
			}
			if (val == NULL || parse_u64(val, 0, 1, &v) < 0) {
				snprintf(err, errlen, "detach must be 0 or 1");
				goto fail;
			}
			a.detach = (int)v;
		} else if (kind == JOB_SHA256 && strcmp(k, "seed") == 0) {
			if (have_seed++) {
				snprintf(err, errlen, "duplicate argument %s", k);
				goto fail;
			}
			if (val == NULL) {
				snprintf(err, errlen, "seed needs a value");
				goto fail;
			}
			a.seed = xstrdup(val);
		} else {
			snprintf(err, errlen, "unknown argument %s", k);
			goto fail;
		}
	}
	if (!have_main) {
		snprintf(err, errlen, "%s needs %s=%llu..%llu", kname, mkey,
		    (unsigned long long)lo, (unsigned long long)hi);
		goto fail;
	}
	*out = a;
	return 0;
 fail:
	job_args_clear(&a);
	return -1;
}

void
job_args_clear(struct job_args *a)
{
	free(a->seed);
	a->seed = NULL;
}

struct job *
job_new(void)
{
	return xcalloc(1, sizeof(struct job));
}

void
job_free(struct job *j)
{
	if (j == NULL)
		return;
	job_args_clear(&j->args);
	free(j->waiters);
	free(j);
}

/*
 * Whether the job must stop now: the cancel reason, JOB_TIMEOUT once the
 * deadline has passed, or JOB_DONE (0) to go on.
 */
static enum job_outcome
job_check(const struct job_ctx *c, uint64_t now)
{
	int reason = atomic_load_explicit(&c->j->cancel, memory_order_relaxed);

	if (reason == JOB_CANCELLED || reason == JOB_SHUTDOWN)
		return (enum job_outcome)reason;
	if (now >= c->deadline)
		return JOB_TIMEOUT;
	return JOB_DONE;
}

static void
job_progress(struct job *j, uint64_t done, uint64_t total)
{
	unsigned pct = total == 0 ? 100 : (unsigned)(done * 100 / total);

	atomic_store_explicit(&j->progress, pct > 100 ? 100 : pct,
	    memory_order_relaxed);
}

/* Block the thread for ms, in naps of at most a millisecond. */
static enum job_outcome
job_run_sleep(struct job_ctx *c)
{
	uint64_t start = now_ns(), total = c->j->args.n * HB_NS_PER_MS;
	uint64_t now = start, left;
	enum job_outcome o;
	struct timespec ts;

	for (;;) {
		if (now - start >= total)
			break;
		if ((o = job_check(c, now)) != JOB_DONE)
			return o;
		left = total - (now - start);
		if (c->deadline - now < left)
			left = c->deadline - now;
		if (left > JOB_SLICE_NS)
			left = JOB_SLICE_NS;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)left;
		nanosleep(&ts, NULL);
		now = now_ns();
		job_progress(c->j, now - start, total);
	}
	snprintf(c->j->result, sizeof(c->j->result), "ok");
	return JOB_DONE;
}

/* Burn the CPU for ms; the result is the number of loop iterations. */
static enum job_outcome
job_run_spin(struct job_ctx *c)
{
	uint64_t start = now_ns(), total = c->j->args.n * HB_NS_PER_MS;
	uint64_t now = start, iters = 0;
	volatile uint64_t sink = 0;
	enum job_outcome o;
	unsigned i;

	while (now - start < total) {
		if ((o = job_check(c, now)) != JOB_DONE)
			return o;
		for (i = 0; i < JOB_SPIN_CHECK; i++)
			sink = sink + i;
		iters += JOB_SPIN_CHECK;
		now = now_ns();
		job_progress(c->j, now - start, total);
	}
	snprintf(c->j->result, sizeof(c->j->result), "%llu",
	    (unsigned long long)iters);
	return JOB_DONE;
}

/* Largest r with r * r <= n. */
static uint64_t
job_isqrt(uint64_t n)
{
	uint64_t r = (uint64_t)sqrt((double)n);

	while (r > 0 && r * r > n)
		r--;
	while ((r + 1) * (r + 1) <= n)
		r++;
	return r;
}

/*
 * Count the primes <= n with a segmented sieve of Eratosthenes over odd
 * numbers: index i stands for 2i + 1, one byte each (1 = maybe prime),
 * JOB_SIEVE_BYTES per segment. Each segment starts as a copy of a pattern
 * with the multiples of 3, 5, 7, 11 and 13 already crossed off (it repeats
 * every 3*5*7*11*13 indexes), which saves about 40% of the crossing; the
 * remaining odd base primes up to sqrt(n) (at most 10^5) come from a small
 * plain sieve, and next[k] is the index of the next odd multiple of base[k]
 * still to cross off. Memory: the segment, the pattern and the base primes,
 * a few hundred KiB for any n.
 */
#define JOB_WHEEL	15015u	/* 3 * 5 * 7 * 11 * 13 */

static const unsigned job_wheel_primes[] = { 3, 5, 7, 11, 13 };

static enum job_outcome
job_run_primes(struct job_ctx *c)
{
	uint64_t n = c->j->args.n, r, last, lo, hi, count, w, *next = NULL;
	uint32_t *base = NULL, nbase = 0, p;
	unsigned char *seg = NULL, *small = NULL, *wheel = NULL;
	enum job_outcome o = JOB_DONE;
	size_t k, i, len;

	if (n < 2) {
		count = 0;
		goto done;
	}
	r = job_isqrt(n);
	/* odd primes 17..r, with a plain sieve over 0..r */
	small = xcalloc(r + 1, 1);
	base = xmalloc(sizeof(*base) * (r / 2 + 1));
	for (p = 3; p <= r; p += 2) {
		if (small[p])
			continue;
		if (p > 13)
			base[nbase++] = p;
		for (i = (size_t)p * p; i <= r; i += 2 * (size_t)p)
			small[i] = 1;
	}
	free(small);
	small = NULL;
	next = xmalloc(sizeof(*next) * (nbase + 1));
	for (k = 0; k < nbase; k++)
		next[k] = ((uint64_t)base[k] * base[k]) / 2;

	/* long enough to copy a whole segment from any offset in one go */
	wheel = xmalloc(JOB_WHEEL + JOB_SIEVE_BYTES);
	memset(wheel, 1, JOB_WHEEL + JOB_SIEVE_BYTES);
	for (k = 0; k < sizeof(job_wheel_primes) / sizeof(job_wheel_primes[0]); k++) {
		p = job_wheel_primes[k];
		for (i = (p - 1) / 2; i < JOB_WHEEL + JOB_SIEVE_BYTES; i += p)
			wheel[i] = 0;
	}

	seg = xmalloc(JOB_SIEVE_BYTES + sizeof(uint64_t));
	last = (n - 1) / 2;	/* the index of the largest odd number <= n */
	count = 1;		/* 2 */
	for (k = 0; k < sizeof(job_wheel_primes) / sizeof(job_wheel_primes[0]); k++)
		if (job_wheel_primes[k] <= n)
			count++;
	for (lo = 1; lo <= last; lo = hi) {
		if ((o = job_check(c, now_ns())) != JOB_DONE)
			goto out;
		hi = lo + JOB_SIEVE_BYTES;
		if (hi > last + 1)
			hi = last + 1;
		len = (size_t)(hi - lo);
		memcpy(seg, wheel + lo % JOB_WHEEL, len);
		for (k = 0; k < nbase; k++) {
			uint64_t m = next[k];

			p = base[k];
			if (m >= hi) {
				/* the base primes are sorted; so are their squares */
				if ((uint64_t)p * p / 2 >= hi)
					break;
				continue;
			}
			for (; m < hi; m += p)
				seg[m - lo] = 0;
			next[k] = m;
		}
		/* the bytes are 0 or 1: sum them eight at a time */
		memset(seg + len, 0, sizeof(uint64_t));
		for (i = 0; i < len; i += sizeof(w)) {
			memcpy(&w, seg + i, sizeof(w));
			count += (w * 0x0101010101010101ull) >> 56;
		}
		job_progress(c->j, hi - 1, last);
	}
 done:
	snprintf(c->j->result, sizeof(c->j->result), "%llu",
	    (unsigned long long)count);
 out:
	free(seg);
	free(wheel);
	free(next);
	free(base);
	free(small);
	return o;
}

/* SHA-256 applied rounds times: first to the seed, then to each digest. */
static enum job_outcome
job_run_sha256(struct job_ctx *c)
{
	static const char hex[] = "0123456789abcdef";
	const char *seed = c->j->args.seed ? c->j->args.seed : "";
	uint64_t rounds = c->j->args.n, done;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	enum job_outcome o = JOB_DONE;
	EVP_MD_CTX *ctx = NULL;
	const char *what;
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	EVP_MD *type;

	/* an explicit fetch, so DigestInit does not look it up every round */
	what = "EVP_MD_fetch";
	if ((type = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
		goto fail;
#else
	const EVP_MD *type = EVP_sha256();
#endif

	what = "EVP_MD_CTX_new";
	if ((ctx = EVP_MD_CTX_new()) == NULL)
		goto fail;
	what = "EVP_Digest";
	if (EVP_DigestInit_ex(ctx, type, NULL) != 1 ||
	    EVP_DigestUpdate(ctx, seed, strlen(seed)) != 1 ||
	    EVP_DigestFinal_ex(ctx, md, &mdlen) != 1)
		goto fail;
	for (done = 1; done < rounds; done++) {
		if (done % JOB_SHA_CHECK == 0) {
			if ((o = job_check(c, now_ns())) != JOB_DONE)
				goto out;
			job_progress(c->j, done, rounds);
		}
		if (EVP_DigestInit_ex(ctx, type, NULL) != 1 ||
		    EVP_DigestUpdate(ctx, md, mdlen) != 1 ||
		    EVP_DigestFinal_ex(ctx, md, &mdlen) != 1)
			goto fail;
	}
	for (i = 0; i < mdlen && 2 * i + 2 < sizeof(c->j->result); i++) {
		c->j->result[2 * i] = hex[md[i] >> 4];
		c->j->result[2 * i + 1] = hex[md[i] & 0xf];
	}
	c->j->result[2 * i] = '\0';
	goto out;
 fail:
	snprintf(c->j->result, sizeof(c->j->result), "%s failed", what);
	o = JOB_ERROR;
 out:
	EVP_MD_CTX_free(ctx);
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	EVP_MD_free(type);
#endif
	return o;
}

enum job_outcome
job_run(struct job *j)
{
	struct job_ctx c;
	uint64_t start = atomic_load(&j->t_start);
	uint32_t limit = j->timeout_ms ? j->timeout_ms : j->args.timeout_ms;
	enum job_outcome o;

	if (start == 0) {
		start = now_ns();
		atomic_store(&j->t_start, start);
	}
	c.j = j;
	c.deadline = limit ? start + limit * HB_NS_PER_MS : UINT64_MAX;
	j->result[0] = '\0';

	/* cancelled between being taken and starting */
	if ((o = job_check(&c, start)) != JOB_DONE)
		goto out;
	switch (j->args.kind) {
	case JOB_SLEEP:
		o = job_run_sleep(&c);
		break;
	case JOB_SPIN:
		o = job_run_spin(&c);
		break;
	case JOB_PRIMES:
		o = job_run_primes(&c);
		break;
	case JOB_SHA256:
		o = job_run_sha256(&c);
		break;
	default:
		snprintf(j->result, sizeof(j->result), "unknown kind");
		o = JOB_ERROR;
		break;
	}
 out:
	if (o == JOB_DONE)
		atomic_store(&j->progress, 100);
	else if (o != JOB_ERROR)
		j->result[0] = '\0';
	j->t_end = now_ns();
	j->outcome = o;
	return o;
}
