/*
 * config.h - every key of interface.md section 2: defaults, parsing with inih,
 * typed validation with file:line errors, -s overrides, the effective config
 * for -t, and the diff a SIGHUP reload applies. A config is parsed into a
 * fresh struct and only swapped in by the caller once it is valid.
 */
#ifndef HB_CONFIG_H
#define HB_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "log.h"
#include "util.h"

#define CONFIG_NAME_MAX HB_NAME_MAX
#define CONFIG_THREADS_MAX 1024
#define CONFIG_KEYS_MAX 48	/* room for every key */

enum pool_mode { POOL_MODE_THREADS, POOL_MODE_INLINE };

struct config_peer {
	char *name;		/* the name before '@', or host:port */
	char *addr;		/* host:port as written */
};

struct config {
	char *node_name;
	char *work_listen;
	char *peer_listen;
	char *http_listen;	/* "" = HTTP off */
	struct config_peer *peers;
	size_t npeers;
	uint32_t heartbeat_interval_ms;
	uint32_t peer_timeout_ms;	/* 3 x interval unless set */
	uint32_t threads;
	uint32_t worker_nice;
	enum pool_mode pool_mode;
	uint32_t queue_max;
	uint32_t job_max_ms;
	uint32_t max_line;
	uint32_t max_connections;
	uint32_t max_jobs_per_conn;
	char *auth_token;	/* NULL = no AUTH needed */
	enum log_format log_format;
	enum log_level log_level;
	uint32_t heartbeat_log_ms;	/* 0 = never */
	uint32_t shutdown_grace_ms;
	uint32_t http_max_connections;
	uint32_t http_timeout_ms;	/* a whole request, not an idle timer */
	char *state_dir;		/* NULL = detached jobs in memory only */
	uint32_t journal_sync_ms;	/* 0 = synced before OK */
	uint32_t job_retention;		/* finished detached outcomes kept */
	char *auth_token_file;		/* NULL = none */
	uint32_t auth_timeout_ms;
	uint32_t idle_timeout_ms;	/* 0 = never */
	uint32_t timer_slack_ns;	/* the loop thread's */
	uint32_t watchdog_lag_ms;
	/* the token in force: auth_token, or auth_token_file's first line */
	char *auth_token_value;
	uint32_t peer_in_max;		/* inbound peer connections kept */
	uint32_t hello_timeout_ms;	/* for an inbound peer to say HELLO */

	/* private to config.c */
	int peer_timeout_set;
	unsigned seen_line[CONFIG_KEYS_MAX];	/* line where each key was set, by key index */
	unsigned char bad[CONFIG_KEYS_MAX];	/* a value of this key was rejected */
	struct config_where {	/* where each key was last set, by key index, */
		char file[256];	/* for the cross-key checks of config_finish */
		unsigned line;
	} where[CONFIG_KEYS_MAX];
};

/* What went wrong, for "file:line: key: reason" messages. */
struct config_error {
	char file[256];		/* the config file, or "--set" for -s */
	unsigned line;		/* line in file, or the -s ordinal (1-based) */
	char key[64];
	char reason[256];
};

/* Every error of one read, in the order found (config_read_all). */
#define CONFIG_ERRORS_MAX 100	/* errors kept; more are only counted */
struct config_errors {
	struct config_error *v;
	size_t n;
	size_t more;		/* errors beyond CONFIG_ERRORS_MAX */
};

/*
 * The whole read: built-in defaults, then path (when path is NULL the
 * default file SYSCONFDIR/heartbeatd/heartbeatd.conf is read if it exists;
 * an explicit path must exist), then each "key=value" of sets in order, then
 * derived defaults and cross-key checks. Returns a new config, or NULL with
 * *err filled in.
 */
struct config *config_read(const char *path, char *const *sets, size_t nsets,
    struct config_error *err);
/*
 * The same read, but it goes on after an error and collects every one (for
 * -t): each bad line of the file, each bad -s, and each cross-key check not
 * spoiled by a bad value it depends on. Returns a new config and leaves
 * errs empty, or NULL with errs filled in; free errs with
 * config_errors_free either way.
 */
struct config *config_read_all(const char *path, char *const *sets,
    size_t nsets, struct config_errors *errs);
void config_errors_free(struct config_errors *errs);

struct config *config_new(void);	/* built-in defaults only */
void config_free(struct config *c);
int config_load_file(struct config *c, const char *path, int must_exist,
    struct config_error *err);
int config_set(struct config *c, const char *keyval, unsigned ordinal,
    struct config_error *err);
int config_finish(struct config *c, struct config_error *err);

/* The default config file path. */
const char *config_default_path(void);

/*
 * "file:line: key: reason" into buf; ":line" is left out when line is 0 (the
 * file itself could not be read) and "key: " when no key is concerned.
 */
void config_error_format(const struct config_error *err, char *buf, size_t n);
/* Log it: level=error msg=<msg> file= line= key= reason= */
void config_error_log(const struct config_error *err, const char *msg);

/* The effective config as a config file that config_read accepts. */
void config_print(const struct config *c, FILE *out);

/*
 * Comma-separated key names that differ between old and new: those a reload
 * applies (applied) and those that need a restart (restart). Empty strings
 * when nothing differs.
 */
void config_diff(const struct config *old, const struct config *new,
    char *applied, size_t applied_len, char *restart, size_t restart_len);

#endif
