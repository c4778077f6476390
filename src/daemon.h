/*
 * daemon.h - the running daemon: the event base and every module hang off
 * struct daemon, owned by the loop thread. daemon.c creates the base
 * (precise timer, three priorities), binds or inherits (socket activation)
 * the listeners, handles signals (SIGTERM/SIGINT drain, SIGHUP reload),
 * talks to systemd (READY, STOPPING, WATCHDOG) and runs the lifecycle.
 */
#ifndef HB_DAEMON_H
#define HB_DAEMON_H

#include <stdint.h>

#include <event2/util.h>

struct config;
struct event;
struct event_base;
struct pool;
struct work;
struct peers;
struct tick;
struct http;

/* libevent priorities: lower runs first. */
#define DAEMON_PRI_TICK 0	/* heartbeat timer, peer links, signals */
#define DAEMON_PRI_DONE 1	/* job completions */
#define DAEMON_PRI_IO 2		/* client connections, HTTP, inline jobs */
#define DAEMON_NPRI 3

/* Exit statuses of interface.md section 1. */
#define DAEMON_EXIT_OK 0
#define DAEMON_EXIT_CONFIG 1
#define DAEMON_EXIT_RUNTIME 2

struct daemon {
	struct event_base *base;
	struct config *cfg;		/* in force; replaced whole on reload */
	const char *config_path;	/* -c, or NULL for the default */
	char *const *sets;		/* -s KEY=VALUE, re-applied on reload */
	size_t nsets;

	struct pool *pool;
	struct work *work;
	struct peers *peers;
	struct tick *tick;
	struct http *http;

	int draining;			/* SIGTERM/SIGINT seen */
	uint64_t drain_deadline_ns;	/* end of the grace period */
	int drain_cancelled;		/* grace over: the rest was cancelled */
	uint64_t close_deadline_ns;	/* last chance for clients' output */
	uint64_t jobs_cancelled;	/* by the end of the grace period */

	int signal_fd;			/* SIGTERM, SIGINT, SIGHUP */
	struct event *ev_signal, *ev_drain, *ev_watchdog;
};

/* Run the daemon with a valid config; returns the exit status. */
int daemon_run(struct config *cfg, const char *config_path, char *const *sets, size_t nsets);

/* A job left the pool: called by work once it has written the outcome. */
void daemon_job_finished(struct daemon *d);

#endif
