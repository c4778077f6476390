/*
 * util.h - small helpers every module uses: the monotonic clock, allocation
 * wrappers that never return NULL, strict number parsing, and host:port
 * addresses (IPv6 as [addr]:port).
 */
#ifndef HB_UTIL_H
#define HB_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define HB_NS_PER_MS ((uint64_t)1000000)
#define HB_NS_PER_US ((uint64_t)1000)
#define HB_ADDRSTRLEN 64	/* "[v6addr]:port" plus NUL */

#define HB_NAME_MAX 64		/* node and peer names */

/*
 * A node or peer name: 1..HB_NAME_MAX visible ASCII characters without '='
 * or '"', so it is one token on the wire and a bare value in logfmt.
 */
int name_valid(const char *s, size_t len);

/*
 * Niceness for a background thread: delta above the calling thread's,
 * at most 19. Then, on that thread, thread_renice(target): Linux applies
 * setpriority to one thread. Returns 0 or -1 (errno set).
 */
int thread_nice_target(int delta);
int thread_renice(int target);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t now_ns(void);

/* Allocation wrappers: abort with a message instead of returning NULL. */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

/*
 * Parse a decimal number made only of digits (no sign, no spaces, no
 * overflow) within [lo, hi]. Returns 0, or -1 and leaves *out alone.
 */
int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);

/*
 * Split "host:port" or "[v6addr]:port" into host and port. The host may be
 * empty only for listeners ("":port is not accepted; use 0.0.0.0 or [::]).
 * Returns 0 or -1.
 */
int addr_split(const char *s, char *host, size_t hostlen, uint16_t *port);

/*
 * Resolve "host:port" (numeric or a name, via getaddrinfo; blocking, so only
 * at startup and reload). passive: for bind. Returns 0 or -1.
 */
int addr_resolve(const char *s, int passive, struct sockaddr_storage *ss, socklen_t *len);

/* Format a socket address as "1.2.3.4:port" or "[v6]:port". */
void addr_format(const struct sockaddr *sa, char *buf, size_t n);

#endif
