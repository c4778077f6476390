/*
 * daemon.h - the running daemon. daemon.c is the only module that knows
 * every other one: it creates the event base and the modules in dependency
 * order, wires their callbacks, composes each heartbeat tick, owns the
 * lifecycle (signals, drain, reload) and talks to systemd.
 */
#ifndef HB_DAEMON_H
#define HB_DAEMON_H

#include <stddef.h>

struct config;

/* Exit statuses of interface.md section 1. */
#define DAEMON_EXIT_OK 0
#define DAEMON_EXIT_CONFIG 1
#define DAEMON_EXIT_RUNTIME 2

/* Run the daemon with a valid config (taken over); returns the exit status. */
int daemon_run(struct config *cfg, const char *config_path, char *const *sets, size_t nsets);

#endif
