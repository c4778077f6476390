/*
 * fuzz_config.c - libFuzzer harness for config.c: the input is written to a
 * temporary file and read with config_read, as -c FILE would; the lines of
 * the input are also applied as -s overrides. A config that is accepted is
 * printed and must be accepted again (config_print promises a file that
 * config_read takes).
 *
 * Build and run with fuzz/run.sh.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_SETS_MAX 16
#define FUZZ_INPUT_MAX 65536

static char fuzz_path[] = "/tmp/hb-fuzz-config.XXXXXX";
static char fuzz_path2[] = "/tmp/hb-fuzz-config2.XXXXXX";
static int fuzz_fd = -1, fuzz_fd2 = -1;

static void
fuzz_cleanup(void)
{
	unlink(fuzz_path);
	unlink(fuzz_path2);
}

static void
fuzz_write(int fd, const void *p, size_t n)
{
	if (ftruncate(fd, 0) < 0 || pwrite(fd, p, n, 0) != (ssize_t)n)
		abort();
}

/* Accepted configs print as a file that reads back to the same output. */
static void
fuzz_reprint(const struct config *c)
{
	struct config_error err;
	struct config *again;
	char *text = NULL, *text2 = NULL;
	size_t len = 0, len2 = 0;
	FILE *f;

	if ((f = open_memstream(&text, &len)) == NULL)
		abort();
	config_print(c, f);
	fclose(f);
	fuzz_write(fuzz_fd2, text, len);
	if ((again = config_read(fuzz_path2, NULL, 0, &err)) == NULL) {
		char msg[1024];

		config_error_format(&err, msg, sizeof(msg));
		fprintf(stderr, "printed config rejected: %s\n%s", msg, text);
		abort();
	}
	if ((f = open_memstream(&text2, &len2)) == NULL)
		abort();
	config_print(again, f);
	fclose(f);
	if (len != len2 || memcmp(text, text2, len) != 0) {
		fprintf(stderr, "config_print not stable:\n%s---\n%s", text, text2);
		abort();
	}
	config_free(again);
	free(text);
	free(text2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_error err;
	struct config *c;
	char *copy, *sets[FUZZ_SETS_MAX], *p, msg[1024];
	size_t nsets = 0;

	if (size > FUZZ_INPUT_MAX)
		return 0;
	if (fuzz_fd < 0) {
		log_set_fd(-1);		/* no log output while fuzzing */
		if ((fuzz_fd = mkstemp(fuzz_path)) < 0 ||
		    (fuzz_fd2 = mkstemp(fuzz_path2)) < 0)
			abort();
		atexit(fuzz_cleanup);
	}

	/* as a file */
	fuzz_write(fuzz_fd, data, size);
	memset(&err, 0, sizeof(err));
	if ((c = config_read(fuzz_path, NULL, 0, &err)) != NULL) {
		fuzz_reprint(c);
		config_free(c);
	} else {
		config_error_format(&err, msg, sizeof(msg));
	}

	/* its lines as -s KEY=VALUE overrides, on an empty file */
	if ((copy = malloc(size + 1)) == NULL)
		abort();
	memcpy(copy, data, size);
	copy[size] = '\0';
	for (p = strtok(copy, "\n"); p != NULL && nsets < FUZZ_SETS_MAX;
	    p = strtok(NULL, "\n"))
		sets[nsets++] = p;
	fuzz_write(fuzz_fd, "", 0);
	memset(&err, 0, sizeof(err));
	if ((c = config_read(fuzz_path, sets, nsets, &err)) != NULL) {
		fuzz_reprint(c);
		config_free(c);
	} else {
		config_error_format(&err, msg, sizeof(msg));
	}
	free(copy);
	return 0;
}
