/*
 * work.h - the work server (interface.md section 4): client connections on
 * bufferevents, the line protocol, limits, auth and WATCH. Job bookkeeping
 * is jobs.c's; reports come from the status snapshot the daemon provides.
 */
#ifndef HB_WORK_H
#define HB_WORK_H

#include <stddef.h>
#include <stdint.h>

#include <event2/util.h>

#include "config.h"

struct event_base;
struct hb_status;
struct jobs;
struct work;

/* Fill a status snapshot (STATS, PEERS); valid until the loop runs again. */
typedef void (*work_status_fn)(struct hb_status *st, void *arg);

/*
 * Connections at libevent priority priority; SUBMIT, STATUS and CANCEL go
 * to jobs.
 */
struct work *work_new(struct event_base *base, const struct config *cfg,
    struct jobs *jobs, int priority, work_status_fn status, void *arg);
/* Close every connection at once (their jobs are dropped), then free. */
void work_free(struct work *w);
/* Serve the listening socket fd (taken over). Returns 0 or -1. */
int work_listen(struct work *w, evutil_socket_t fd);
/* Reload: max_line, max_connections, auth_token. */
void work_reconfigure(struct work *w, const struct config *cfg);
/* A job outcome for connection conn_id: 0, or -1 when it is gone. */
int work_deliver(struct work *w, uint64_t conn_id, const char *line, size_t len);
/* The reply a held SUBMIT waited for; reading resumes. */
void work_settle(struct work *w, uint64_t conn_id, const char *line, size_t len);
/* Connections that asked for WATCH. */
unsigned work_watchers(const struct work *w);
/* One HEARTBEAT line to every WATCHing client. */
void work_watch_send(struct work *w, const char *line, size_t len);
/* SIGTERM: stop accepting connections (jobs refuse SUBMIT themselves). */
void work_drain(struct work *w);
/* Close every connection once its output is flushed (end of shutdown). */
void work_close_all(struct work *w);
unsigned work_connections(const struct work *w);
/* Fill the connection part of a status snapshot. */
void work_status(const struct work *w, struct hb_status *st);

#endif
