/*
 * main.c - heartbeatd's command line (interface.md section 1): parse the
 * options, read and validate the config, then hand over to daemon_run.
 * Exit status: 0 clean shutdown, 1 bad usage or config, 2 runtime failure
 * at start.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "util.h"

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: heartbeatd [-c FILE] [-s KEY=VALUE]... [-t] [-V] [-h]\n"
	    "  -c, --config FILE     read FILE (default %s)\n"
	    "  -s, --set KEY=VALUE   override one config key after the file is read\n"
	    "                        (repeatable; peer accumulates)\n"
	    "  -t, --check-config    validate, print the effective config, exit 0 or 1\n"
	    "  -V, --version         print the version and exit\n"
	    "  -h, --help            this help\n",
	    config_default_path());
}

/*
 * -t: every config error on stderr, each as "file:line: key: reason" on its
 * own line, and exit 1; or the effective config on stdout and exit 0.
 */
static int
check_config(const char *path, char *const *sets, size_t nsets)
{
	struct config_errors errs;
	struct config *cfg;
	char text[sizeof(errs.v->file) + sizeof(errs.v->key) +
	    sizeof(errs.v->reason) + 32];
	size_t i;

	if ((cfg = config_read_all(path, sets, nsets, &errs)) == NULL) {
		for (i = 0; i < errs.n; i++) {
			config_error_format(&errs.v[i], text, sizeof(text));
			fprintf(stderr, "%s\n", text);
		}
		if (errs.more > 0)
			fprintf(stderr, "heartbeatd: %zu more errors not shown\n",
			    errs.more);
		config_errors_free(&errs);
		return DAEMON_EXIT_CONFIG;
	}
	config_print(cfg, stdout);
	config_free(cfg);
	config_errors_free(&errs);
	return DAEMON_EXIT_OK;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "set", required_argument, NULL, 's' },
		{ "check-config", no_argument, NULL, 't' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL;
	char **sets;
	size_t nsets = 0;
	int ch, check_only = 0, rc;
	struct config *cfg;
	struct config_error err;

	sets = xcalloc((size_t)argc, sizeof(*sets));
	while ((ch = getopt_long(argc, argv, "c:s:tVh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 's':
			sets[nsets++] = optarg;
			break;
		case 't':
			check_only = 1;
			break;
		case 'V':
			printf("heartbeatd %s\n", PACKAGE_VERSION);
			free(sets);
			return DAEMON_EXIT_OK;
		case 'h':
			usage(stdout);
			free(sets);
			return DAEMON_EXIT_OK;
		default:
			usage(stderr);
			free(sets);
			return DAEMON_EXIT_CONFIG;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "heartbeatd: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		free(sets);
		return DAEMON_EXIT_CONFIG;
	}

	if (check_only) {
		rc = check_config(path, sets, nsets);
		free(sets);
		return rc;
	}
	log_detect_journal();
	if ((cfg = config_read(path, sets, nsets, &err)) == NULL) {
		config_error_log(&err, "bad-config");
		free(sets);
		return DAEMON_EXIT_CONFIG;
	}
	log_setup(cfg->log_format, cfg->log_level);
	rc = daemon_run(cfg, path, sets, nsets);
	free(sets);
	return rc;
}
