/*
 * work.h - the work server (interface.md section 4): listener, client
 * connections on bufferevents, the line protocol, per-connection job
 * bookkeeping, limits, auth, WATCH, and the job registry for STATUS/CANCEL.
 */
#ifndef HB_WORK_H
#define HB_WORK_H

#include <stddef.h>

#include <event2/util.h>

struct daemon;
struct job;
struct work;

struct work *work_new(struct daemon *d);
void work_free(struct work *w);
int work_listen(struct work *w, evutil_socket_t fd);
/* The pool's done callback: write the outcome to the client, if still there. */
void work_job_done(struct job *j, void *arg);
/* One HEARTBEAT line to every WATCHing client. */
void work_watch_send(struct work *w, const char *line, size_t len);
/* SIGTERM: stop accepting connections; SUBMIT gets ERR shutting-down. */
void work_drain(struct work *w);
/* Close every connection once its output is flushed (end of shutdown). */
void work_close_all(struct work *w);
unsigned work_connections(const struct work *w);
/* Jobs known to the registry (queued or running). */
unsigned work_jobs_live(const struct work *w);

#endif
