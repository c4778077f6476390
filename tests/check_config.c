/*
 * check_config.c - the config module: every key's default, a good and a bad
 * value with file:line and key in the error, the file syntax, -s overrides,
 * peers, peer_timeout_ms, the print/read round trip, the reload diff and the
 * shipped conf/heartbeatd.conf. Config files are written with mkstemp.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_common.h"
#include "config.h"

Suite *config_suite(void);

static char conf_path[64];

static void
setup(void)
{
	conf_path[0] = '\0';
}

static void
teardown(void)
{
	if (conf_path[0] != '\0')
		unlink(conf_path);
}

/* Write text to a fresh temporary file; its path is conf_path. */
static const char *
write_conf(const char *text)
{
	int fd;
	size_t len = strlen(text);

	if (conf_path[0] != '\0')
		unlink(conf_path);
	snprintf(conf_path, sizeof(conf_path), "/tmp/check_config.XXXXXX");
	fd = mkstemp(conf_path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
	return conf_path;
}

static struct config *
read_text(const char *text, struct config_error *err)
{
	return config_read(write_conf(text), NULL, 0, err);
}

/* The text must fail at line with key, and the reason must contain want. */
static void
expect_error(const char *text, unsigned line, const char *key,
    const char *want)
{
	struct config_error err;
	struct config *c;

	memset(&err, 0, sizeof(err));
	c = read_text(text, &err);
	ck_assert_msg(c == NULL, "accepted: %s", text);
	ck_assert_str_eq(err.file, conf_path);
	ck_assert_msg(err.line == line, "%s: line %u, want %u", text,
	    err.line, line);
	ck_assert_str_eq(err.key, key);
	ck_assert_msg(strstr(err.reason, want) != NULL,
	    "%s: reason \"%s\", want \"%s\"", text, err.reason, want);
}

static struct config *
defaults(void)
{
	struct config *c = config_new();

	ck_assert_int_eq(config_finish(c, NULL), 0);
	return c;
}

static void
expect_same(const struct config *a, const struct config *b)
{
	char applied[512], restart[512];
	size_t i;

	config_diff(a, b, applied, sizeof(applied), restart, sizeof(restart));
	ck_assert_str_eq(applied, "");
	ck_assert_str_eq(restart, "");
	ck_assert_uint_eq(a->peer_timeout_ms, b->peer_timeout_ms);
	ck_assert_uint_eq(a->npeers, b->npeers);
	for (i = 0; i < a->npeers; i++) {
		ck_assert_str_eq(a->peers[i].name, b->peers[i].name);
		ck_assert_str_eq(a->peers[i].addr, b->peers[i].addr);
	}
}

START_TEST(test_defaults_match_the_interface)
{
	struct config *c = defaults();
	char host[256] = "";
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	gethostname(host, sizeof(host) - 1);
	ck_assert_str_eq(c->node_name, host);
	ck_assert_str_eq(c->work_listen, "127.0.0.1:7070");
	ck_assert_str_eq(c->peer_listen, "127.0.0.1:7071");
	ck_assert_str_eq(c->http_listen, "127.0.0.1:7072");
	ck_assert_uint_eq(c->npeers, 0);
	ck_assert_uint_eq(c->heartbeat_interval_ms, 1000);
	ck_assert_uint_eq(c->peer_timeout_ms, 3000);
	ck_assert_uint_eq(c->threads, ncpu > 1024 ? 1024 : (uint32_t)ncpu);
	ck_assert_uint_eq(c->worker_nice, 10);
	ck_assert_int_eq(c->pool_mode, POOL_MODE_THREADS);
	ck_assert_uint_eq(c->queue_max, 4096);
	ck_assert_uint_eq(c->job_max_ms, 600000);
	ck_assert_uint_eq(c->max_line, 4096);
	ck_assert_uint_eq(c->max_connections, 1024);
	ck_assert_uint_eq(c->max_jobs_per_conn, 1024);
	ck_assert_ptr_null(c->auth_token);
	ck_assert_int_eq(c->log_format, LOG_FORMAT_LOGFMT);
	ck_assert_int_eq(c->log_level, LOG_INFO);
	ck_assert_uint_eq(c->heartbeat_log_ms, 1000);
	ck_assert_uint_eq(c->shutdown_grace_ms, 10000);
	config_free(c);
}
END_TEST

START_TEST(test_each_key_accepts_a_valid_value)
{
	struct config_error err;
	struct config *c = read_text(
	    "node_name = alpha-1\n"
	    "work_listen = 0.0.0.0:0\n"
	    "peer_listen = [::1]:9001\n"
	    "http_listen = localhost:65535\n"
	    "peer = beta@10.0.0.2:7071\n"
	    "heartbeat_interval_ms = 250\n"
	    "peer_timeout_ms = 900\n"
	    "threads = 7\n"
	    "worker_nice = 19\n"
	    "pool_mode = inline\n"
	    "queue_max = 0\n"
	    "job_max_ms = 86400000\n"
	    "max_line = 64\n"
	    "max_connections = 1000000\n"
	    "max_jobs_per_conn = 1\n"
	    "auth_token = s3cr3t!\n"
	    "log_format = json\n"
	    "log_level = debug\n"
	    "heartbeat_log_ms = 0\n"
	    "shutdown_grace_ms = 0\n", &err);

	ck_assert_msg(c != NULL, "%s:%u: %s: %s", err.file, err.line, err.key,
	    err.reason);
	ck_assert_str_eq(c->node_name, "alpha-1");
	ck_assert_str_eq(c->work_listen, "0.0.0.0:0");
	ck_assert_str_eq(c->peer_listen, "[::1]:9001");
	ck_assert_str_eq(c->http_listen, "localhost:65535");
	ck_assert_uint_eq(c->npeers, 1);
	ck_assert_str_eq(c->peers[0].name, "beta");
	ck_assert_str_eq(c->peers[0].addr, "10.0.0.2:7071");
	ck_assert_uint_eq(c->heartbeat_interval_ms, 250);
	ck_assert_uint_eq(c->peer_timeout_ms, 900);
	ck_assert_uint_eq(c->threads, 7);
	ck_assert_uint_eq(c->worker_nice, 19);
	ck_assert_int_eq(c->pool_mode, POOL_MODE_INLINE);
	ck_assert_uint_eq(c->queue_max, 0);
	ck_assert_uint_eq(c->job_max_ms, 86400000);
	ck_assert_uint_eq(c->max_line, 64);
	ck_assert_uint_eq(c->max_connections, 1000000);
	ck_assert_uint_eq(c->max_jobs_per_conn, 1);
	ck_assert_str_eq(c->auth_token, "s3cr3t!");
	ck_assert_int_eq(c->log_format, LOG_FORMAT_JSON);
	ck_assert_int_eq(c->log_level, LOG_DEBUG);
	ck_assert_uint_eq(c->heartbeat_log_ms, 0);
	ck_assert_uint_eq(c->shutdown_grace_ms, 0);
	config_free(c);
}
END_TEST

static const struct {
	const char *key, *value, *reason;
} bad_values[] = {
	{ "node_name", "two words", "expected a name of 1..64" },
	{ "node_name", "a=b", "expected a name" },
	{ "node_name", "a\"b", "expected a name" },
	{ "node_name", "n\303\251", "expected a name" },
	{ "node_name", "12345678901234567890123456789012345678901234567890"
	    "123456789012345", "expected a name" },
	{ "node_name", "", "expected a name" },
	{ "work_listen", "127.0.0.1", "expected host:port" },
	{ "work_listen", "127.0.0.1:65536", "port 0..65535" },
	{ "work_listen", "::1:7070", "expected host:port" },
	{ "work_listen", ":7070", "expected host:port" },
	{ "work_listen", "", "expected host:port" },
	{ "peer_listen", "nosuch.invalid:7071", "cannot resolve host nosuch" },
	{ "http_listen", "127.0.0.1:-1", "expected host:port" },
	{ "peer", "10.0.0.1:0", "expected [name@]host:port with port 1..65535" },
	{ "peer", "10.0.0.1", "expected [name@]host:port" },
	{ "peer", "", "expected [name@]host:port" },
	{ "peer", "a@", "expected [name@]host:port" },
	{ "peer", "@10.0.0.1:1", "expected a peer name" },
	{ "peer", "a@b@10.0.0.1:1", "expected [name@]host:port" },
	{ "peer", "a=b@10.0.0.1:1", "expected a peer name" },
	{ "heartbeat_interval_ms", "0", "expected an integer 1..3600000" },
	{ "heartbeat_interval_ms", "3600001", "expected an integer 1..3600000" },
	{ "heartbeat_interval_ms", "-1", "expected an integer" },
	{ "heartbeat_interval_ms", "+5", "expected an integer" },
	{ "heartbeat_interval_ms", "1e3", "expected an integer" },
	{ "heartbeat_interval_ms", "10ms", "expected an integer" },
	{ "heartbeat_interval_ms", "0x10", "expected an integer" },
	{ "heartbeat_interval_ms", "", "expected an integer" },
	{ "heartbeat_interval_ms", "99999999999999999999999", "expected an integer" },
	{ "peer_timeout_ms", "0", "expected an integer 1..86400000" },
	{ "threads", "0", "expected an integer 1..1024" },
	{ "threads", "1025", "expected an integer 1..1024" },
	{ "worker_nice", "20", "expected an integer 0..19" },
	{ "pool_mode", "thread", "expected threads or inline" },
	{ "pool_mode", "", "expected threads or inline" },
	{ "queue_max", "1000001", "expected an integer 0..1000000" },
	{ "job_max_ms", "0", "expected an integer 1..86400000" },
	{ "max_line", "63", "expected an integer 64..1048576" },
	{ "max_line", "1048577", "expected an integer 64..1048576" },
	{ "max_connections", "0", "expected an integer 1..1000000" },
	{ "max_jobs_per_conn", "1000001", "expected an integer 1..1000000" },
	{ "auth_token", "two words", "expected 1..256 visible characters" },
	{ "auth_token", "tab\there", "expected 1..256 visible characters" },
	{ "auth_token", "caf\303\251", "expected 1..256 visible characters" },
	{ "log_format", "text", "expected logfmt or json" },
	{ "log_format", "JSON", "expected logfmt or json" },
	{ "log_level", "verbose", "expected debug, info, warn or error" },
	{ "log_level", "INFO", "expected debug, info, warn or error" },
	{ "heartbeat_log_ms", "3600001", "expected an integer 0..3600000" },
	{ "shutdown_grace_ms", "3600001", "expected an integer 0..3600000" },
};

START_TEST(test_each_key_rejects_an_invalid_value)
{
	char text[512];

	snprintf(text, sizeof(text), "# a comment\n\npeer = z@h:1\n%s = %s\n",
	    bad_values[_i].key, bad_values[_i].value);
	expect_error(text, 4, bad_values[_i].key, bad_values[_i].reason);
}
END_TEST

START_TEST(test_bad_set_values_are_rejected_like_file_values)
{
	struct config_error err;
	struct config *c = config_new();
	char kv[512];

	snprintf(kv, sizeof(kv), "%s=%s", bad_values[_i].key,
	    bad_values[_i].value);
	ck_assert_int_eq(config_set(c, kv, 3, &err), -1);
	ck_assert_str_eq(err.file, "--set");
	ck_assert_uint_eq(err.line, 3);
	ck_assert_str_eq(err.key, bad_values[_i].key);
	ck_assert(strstr(err.reason, bad_values[_i].reason) != NULL);
	config_free(c);
}
END_TEST

START_TEST(test_long_auth_token_is_read_whole)
{
	char token[300], text[400];
	struct config_error err;
	struct config *c;

	memset(token, 'T', 256);
	token[0] = '#';		/* not a comment: a value starts here */
	token[256] = '\0';
	snprintf(text, sizeof(text), "threads = 2\nauth_token = %s\n"
	    "worker_nice = 3\n", token);
	ck_assert_ptr_nonnull(c = read_text(text, &err));
	ck_assert_str_eq(c->auth_token, token);
	ck_assert_uint_eq(c->worker_nice, 3);
	config_free(c);

	snprintf(text, sizeof(text), "threads = 2\nauth_token = %sT\n", token);
	expect_error(text, 2, "auth_token", "expected 1..256");
}
END_TEST

START_TEST(test_empty_values_turn_http_and_auth_off)
{
	struct config_error err;
	struct config *c = read_text("http_listen =\nauth_token=\n", &err);

	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(c->http_listen, "");
	ck_assert_ptr_null(c->auth_token);
	config_free(c);
}
END_TEST

/* Found by fuzz/fuzz_config.c: an empty value on a last line of its own. */
START_TEST(test_empty_value_at_end_of_file_is_read_safely)
{
	struct config_error err;

	ck_assert_ptr_null(read_text("http_listen =\npool_modedog_forpeequeue"
	    "_masten =", &err));
	ck_assert_uint_eq(err.line, 2);
	ck_assert_str_eq(err.reason, "unknown key");
}
END_TEST

START_TEST(test_comments_blank_lines_and_indentation_are_ignored)
{
	struct config_error err;
	struct config *c = read_text(
	    "\xef\xbb\xbf# heartbeatd.conf\r\n"
	    "; another comment\r\n"
	    "\r\n"
	    "   threads = 3   # inline comment\r\n"
	    "\tworker_nice=5 ; also a comment\n"
	    "  # indented comment\n"
	    "node_name = n#1\n"
	    "log_level\t=\twarn", &err);

	ck_assert_msg(c != NULL, "%s:%u: %s: %s", err.file, err.line, err.key,
	    err.reason);
	ck_assert_uint_eq(c->threads, 3);
	ck_assert_uint_eq(c->worker_nice, 5);
	ck_assert_str_eq(c->node_name, "n#1");
	ck_assert_int_eq(c->log_level, LOG_WARN);
	config_free(c);
}
END_TEST

START_TEST(test_indented_line_is_not_a_continuation)
{
	/* inih would read the second line as more of node_name's value */
	expect_error("node_name = a\n    b\n", 2, "", "expected key = value");
}
END_TEST

START_TEST(test_error_lines_count_long_lines_once)
{
	char text[1024];

	snprintf(text, sizeof(text), "# %0300d\nthreads = 2\nbogus = 1\n", 0);
	expect_error(text, 3, "bogus", "unknown key");
}
END_TEST

START_TEST(test_unknown_key_is_an_error)
{
	expect_error("threads = 2\nthread = 2\n", 2, "thread", "unknown key");
	expect_error("threads = 2\nThreads = 2\n", 2, "Threads", "unknown key");
}
END_TEST

START_TEST(test_duplicate_key_is_an_error)
{
	expect_error("threads = 2\n# again\nthreads = 2\n", 3, "threads",
	    "duplicate key, first set at line 1");
}
END_TEST

START_TEST(test_section_header_is_an_error)
{
	expect_error("threads = 2\n[main]\nworker_nice = 1\n", 2, "",
	    "sections are not supported");
}
END_TEST

START_TEST(test_line_without_equals_is_an_error)
{
	expect_error("threads = 2\nworker_nice 5\n", 2, "",
	    "expected key = value");
	expect_error("threads: 2\n", 1, "", "expected key = value");
	expect_error("= 2\n", 1, "", "expected key = value");
}
END_TEST

START_TEST(test_nul_byte_and_overlong_line_are_errors)
{
	static char text[8192];
	int fd;

	fd = open(write_conf(""), O_WRONLY | O_TRUNC);
	ck_assert_int_eq(write(fd, "threads = 2\nnode_name = a\0b\n", 28), 28);
	close(fd);
	{
		struct config_error err;

		ck_assert_ptr_null(config_read(conf_path, NULL, 0, &err));
		ck_assert_uint_eq(err.line, 2);
		ck_assert_str_eq(err.reason, "NUL byte in line");
	}
	memset(text, 'x', sizeof(text) - 1);
	memcpy(text, "# \n# ", 5);
	expect_error(text, 2, "", "line longer than 4096 bytes");
}
END_TEST

START_TEST(test_missing_explicit_file_is_an_error)
{
	struct config_error err;
	char msg[600];

	ck_assert_ptr_null(config_read("/nonexistent/heartbeatd.conf", NULL, 0,
	    &err));
	ck_assert_str_eq(err.file, "/nonexistent/heartbeatd.conf");
	ck_assert_uint_eq(err.line, 0);
	ck_assert_str_eq(err.key, "");
	ck_assert_str_eq(err.reason, "cannot open: No such file or directory");
	config_error_format(&err, msg, sizeof(msg));
	ck_assert_str_eq(msg, "/nonexistent/heartbeatd.conf: "
	    "cannot open: No such file or directory");
}
END_TEST

START_TEST(test_missing_default_file_gives_defaults)
{
	struct config_error err;
	struct config *c = config_new(), *d;

	ck_assert_int_eq(config_load_file(c, "/nonexistent/heartbeatd.conf",
	    0, &err), 0);
	ck_assert_int_eq(config_load_file(c, "/nonexistent/heartbeatd.conf",
	    1, &err), -1);
	config_free(c);
	if (access(config_default_path(), F_OK) < 0) {
		ck_assert_ptr_nonnull(c = config_read(NULL, NULL, 0, &err));
		d = defaults();
		expect_same(c, d);
		config_free(c);
		config_free(d);
	}
}
END_TEST

START_TEST(test_directory_is_not_a_config_file)
{
	struct config_error err;

	ck_assert_ptr_null(config_read("/", NULL, 0, &err));
	ck_assert_uint_eq(err.line, 0);
	ck_assert(strncmp(err.reason, "cannot ", 7) == 0);
}
END_TEST

START_TEST(test_default_path_is_under_sysconfdir)
{
	const char *p = config_default_path();
	const char *tail = "/heartbeatd/heartbeatd.conf";

	ck_assert_uint_gt(strlen(p), strlen(tail));
	ck_assert_str_eq(p + strlen(p) - strlen(tail), tail);
	ck_assert_int_eq(p[0], '/');
}
END_TEST

START_TEST(test_error_format_names_file_line_and_key)
{
	struct config_error err;
	char msg[600];

	expect_error("threads = 2000\n", 1, "threads",
	    "expected an integer 1..1024");
	memset(&err, 0, sizeof(err));
	ck_assert_ptr_null(read_text("\nthreads = 2000\n", &err));
	config_error_format(&err, msg, sizeof(msg));
	ck_assert_str_eq(msg + strlen(conf_path),
	    ":2: threads: expected an integer 1..1024");
	ck_assert(strncmp(msg, conf_path, strlen(conf_path)) == 0);
}
END_TEST

START_TEST(test_error_log_line_carries_every_part)
{
	struct config_error err = { "/etc/h.conf", 7, "threads",
	    "expected an integer 1..1024" };
	char buf[2048];
	ssize_t n;
	int p[2];

	ck_assert_int_eq(pipe(p), 0);
	log_set_fd(p[1]);
	config_error_log(&err, "bad-config");
	log_set_fd(2);
	n = read(p[0], buf, sizeof(buf) - 1);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_str_eq(strstr(buf, " level="), " level=error msg=bad-config "
	    "file=/etc/h.conf line=7 key=threads "
	    "reason=\"expected an integer 1..1024\" "
	    "error=\"/etc/h.conf:7: threads: expected an integer 1..1024\"\n");
	close(p[0]);
	close(p[1]);
}
END_TEST

/* config_read_all of text with sets: must fail with want errors. */
static struct config_errors
read_all_failing(const char *text, char **sets, size_t nsets, size_t want)
{
	struct config_errors errs;
	size_t i;

	ck_assert_ptr_null(config_read_all(write_conf(text), sets, nsets, &errs));
	if (errs.n != want) {
		for (i = 0; i < errs.n; i++)
			fprintf(stderr, "%s:%u: %s: %s\n", errs.v[i].file,
			    errs.v[i].line, errs.v[i].key, errs.v[i].reason);
	}
	ck_assert_uint_eq(errs.n, want);
	ck_assert_uint_eq(errs.more, 0);
	return errs;
}

START_TEST(test_read_all_reports_every_error_in_order)
{
	char *sets[] = { "worker_nice=99", "bogus=1" };
	struct config_errors errs;
	struct config_error first;

	errs = read_all_failing("threads = 0\n"
	    "node_name = ok\n"
	    "frobnicate = 1\n"
	    "[main]\n"
	    "log_level = loud\n", sets, 2, 6);
	ck_assert_str_eq(errs.v[0].file, conf_path);
	ck_assert_uint_eq(errs.v[0].line, 1);
	ck_assert_str_eq(errs.v[0].key, "threads");
	ck_assert_uint_eq(errs.v[1].line, 3);
	ck_assert_str_eq(errs.v[1].key, "frobnicate");
	ck_assert_uint_eq(errs.v[2].line, 4);
	ck_assert_str_eq(errs.v[2].reason, "sections are not supported");
	ck_assert_uint_eq(errs.v[3].line, 5);
	ck_assert_str_eq(errs.v[3].key, "log_level");
	ck_assert_str_eq(errs.v[4].file, "--set");
	ck_assert_uint_eq(errs.v[4].line, 1);
	ck_assert_str_eq(errs.v[4].key, "worker_nice");
	ck_assert_str_eq(errs.v[5].file, "--set");
	ck_assert_uint_eq(errs.v[5].line, 2);
	ck_assert_str_eq(errs.v[5].key, "bogus");
	/* config_read stops at the first of them */
	ck_assert_ptr_null(config_read(conf_path, sets, 2, &first));
	ck_assert_str_eq(first.key, "threads");
	ck_assert_uint_eq(first.line, 1);
	config_errors_free(&errs);
}
END_TEST

START_TEST(test_read_all_of_a_good_config_has_no_errors)
{
	struct config_errors errs;
	struct config *c;

	c = config_read_all(write_conf("threads = 2\n"), NULL, 0, &errs);
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(errs.n, 0);
	ck_assert_uint_eq(c->threads, 2);
	config_free(c);
	config_errors_free(&errs);
}
END_TEST

START_TEST(test_read_all_checks_cross_keys_after_line_errors)
{
	struct config_errors errs;

	errs = read_all_failing("bogus = 1\n"
	    "heartbeat_interval_ms = 500\n"
	    "peer_timeout_ms = 100\n", NULL, 0, 2);
	ck_assert_str_eq(errs.v[0].key, "bogus");
	ck_assert_str_eq(errs.v[1].key, "peer_timeout_ms");
	ck_assert_uint_eq(errs.v[1].line, 3);
	ck_assert_ptr_nonnull(strstr(errs.v[1].reason, "heartbeat_interval_ms (500)"));
	config_errors_free(&errs);
}
END_TEST

START_TEST(test_rejected_value_does_not_cause_cross_key_errors)
{
	struct config_errors errs;

	/* the default work_listen left by the bad value would clash */
	errs = read_all_failing("work_listen = nowhere\n"
	    "peer_listen = 127.0.0.1:7070\n", NULL, 0, 1);
	ck_assert_str_eq(errs.v[0].key, "work_listen");
	config_errors_free(&errs);
	/* and the default interval left by a bad one is not compared */
	errs = read_all_failing("heartbeat_interval_ms = 0\n"
	    "peer_timeout_ms = 100\n", NULL, 0, 1);
	ck_assert_str_eq(errs.v[0].key, "heartbeat_interval_ms");
	config_errors_free(&errs);
}
END_TEST

START_TEST(test_read_all_keeps_a_bounded_number_of_errors)
{
	static char text[CONFIG_ERRORS_MAX * 20 + 1024];
	struct config_errors errs;
	size_t i, len = 0;

	for (i = 0; i < CONFIG_ERRORS_MAX + 50; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len,
		    "bogus%zu = 1\n", i);
	ck_assert_ptr_null(config_read_all(write_conf(text), NULL, 0, &errs));
	ck_assert_uint_eq(errs.n, CONFIG_ERRORS_MAX);
	ck_assert_uint_eq(errs.more, 50);
	config_errors_free(&errs);
}
END_TEST

START_TEST(test_mistyped_key_gets_the_nearest_key)
{
	char *sets[] = { "thraeds=2" };
	struct config_error err;
	struct config_errors errs;

	expect_error("heartbeat_intervl_ms = 500\n", 1, "heartbeat_intervl_ms",
	    "unknown key; did you mean heartbeat_interval_ms?");
	expect_error("node-name = a\n", 1, "node-name",
	    "unknown key; did you mean node_name?");
	expect_error("Threads = 2\n", 1, "Threads",
	    "unknown key; did you mean threads?");
	ck_assert_ptr_null(config_read(write_conf(""), sets, 1, &err));
	ck_assert_str_eq(err.reason, "unknown key; did you mean threads?");
	errs = read_all_failing("peers = a@127.0.0.1:7071\n", NULL, 0, 1);
	ck_assert_str_eq(errs.v[0].reason, "unknown key; did you mean peer?");
	config_errors_free(&errs);
}
END_TEST

START_TEST(test_unknown_key_far_from_any_gets_no_suggestion)
{
	struct config_error err;

	ck_assert_ptr_null(read_text("frobnicate = 1\n", &err));
	ck_assert_str_eq(err.reason, "unknown key");
	ck_assert_ptr_null(read_text("colour = red\n", &err));
	ck_assert_str_eq(err.reason, "unknown key");
	ck_assert_ptr_null(read_text("interval = 5\n", &err));
	ck_assert_str_eq(err.reason, "unknown key");
}
END_TEST

START_TEST(test_error_text_escapes_control_characters)
{
	struct config_error err;

	ck_assert_ptr_null(read_text("ke\x1by = 1\n", &err));
	ck_assert_str_eq(err.key, "ke\\x1by");
}
END_TEST

START_TEST(test_set_overrides_the_file)
{
	char *sets[] = { "threads=3", " worker_nice = 4 ", "http_listen=" };
	struct config_error err;
	struct config *c;

	c = config_read(write_conf("threads = 2\nworker_nice = 1\n"), sets, 3,
	    &err);
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->threads, 3);
	ck_assert_uint_eq(c->worker_nice, 4);
	ck_assert_str_eq(c->http_listen, "");
	config_free(c);
}
END_TEST

START_TEST(test_set_may_repeat_a_key_and_the_last_wins)
{
	char *sets[] = { "threads=3", "threads=5" };
	struct config_error err;
	struct config *c = config_read(write_conf(""), sets, 2, &err);

	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->threads, 5);
	config_free(c);
}
END_TEST

START_TEST(test_set_errors_name_set_and_ordinal)
{
	char *sets[] = { "threads=4", "worker_nice=99" };
	struct config_error err;
	char msg[600];

	ck_assert_ptr_null(config_read(write_conf(""), sets, 2, &err));
	ck_assert_str_eq(err.file, "--set");
	ck_assert_uint_eq(err.line, 2);
	ck_assert_str_eq(err.key, "worker_nice");
	config_error_format(&err, msg, sizeof(msg));
	ck_assert_str_eq(msg, "--set:2: worker_nice: expected an integer 0..19");
}
END_TEST

START_TEST(test_set_without_equals_is_an_error)
{
	struct config_error err;
	struct config *c = config_new();

	ck_assert_int_eq(config_set(c, "threads", 1, &err), -1);
	ck_assert_str_eq(err.file, "--set");
	ck_assert_uint_eq(err.line, 1);
	ck_assert_str_eq(err.reason, "expected key=value");
	ck_assert_int_eq(config_set(c, "bogus=1", 2, &err), -1);
	ck_assert_str_eq(err.key, "bogus");
	ck_assert_str_eq(err.reason, "unknown key");
	config_free(c);
}
END_TEST

START_TEST(test_peers_from_file_and_set_accumulate)
{
	char *sets[] = { "peer=c@10.0.0.3:7071" };
	struct config_error err;
	struct config *c;

	c = config_read(write_conf("peer = a@10.0.0.1:7071\n"
	    "peer = b@10.0.0.2:7071\n"), sets, 1, &err);
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->npeers, 3);
	ck_assert_str_eq(c->peers[0].name, "a");
	ck_assert_str_eq(c->peers[1].name, "b");
	ck_assert_str_eq(c->peers[2].name, "c");
	ck_assert_str_eq(c->peers[2].addr, "10.0.0.3:7071");
	config_free(c);
}
END_TEST

START_TEST(test_peer_name_defaults_to_host_port)
{
	struct config_error err;
	struct config *c = read_text("peer = 10.0.0.1:7071\n"
	    "peer = [::1]:7071\npeer = peer.example:1\n"
	    "peer = x@[fe80::1]:65535\n", &err);

	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->npeers, 4);
	ck_assert_str_eq(c->peers[0].name, "10.0.0.1:7071");
	ck_assert_str_eq(c->peers[0].addr, "10.0.0.1:7071");
	ck_assert_str_eq(c->peers[1].name, "[::1]:7071");
	ck_assert_str_eq(c->peers[2].name, "peer.example:1");
	ck_assert_str_eq(c->peers[3].name, "x");
	ck_assert_str_eq(c->peers[3].addr, "[fe80::1]:65535");
	config_free(c);
}
END_TEST

START_TEST(test_duplicate_peer_names_are_an_error)
{
	expect_error("peer = a@10.0.0.1:1\npeer = a@10.0.0.2:1\n", 2, "peer",
	    "duplicate peer name a");
	expect_error("peer = 10.0.0.1:1\npeer = 10.0.0.1:1\n", 2, "peer",
	    "duplicate peer name 10.0.0.1:1");
}
END_TEST

START_TEST(test_peer_timeout_defaults_to_three_intervals)
{
	char *sets[] = { "heartbeat_interval_ms=400" };
	struct config_error err;
	struct config *c;

	c = config_read(write_conf("heartbeat_interval_ms = 250\n"), NULL, 0,
	    &err);
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->peer_timeout_ms, 750);
	config_free(c);
	c = config_read(conf_path, sets, 1, &err);
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->peer_timeout_ms, 1200);
	config_free(c);
}
END_TEST

START_TEST(test_explicit_peer_timeout_is_kept)
{
	struct config_error err;
	struct config *c = read_text("heartbeat_interval_ms = 100\n"
	    "peer_timeout_ms = 100\n", &err);

	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->peer_timeout_ms, 100);
	config_free(c);
}
END_TEST

START_TEST(test_peer_timeout_below_interval_is_an_error)
{
	char *sets[] = { "heartbeat_interval_ms=600" };
	struct config_error err;

	expect_error("peer_timeout_ms = 499\nheartbeat_interval_ms = 500\n", 1,
	    "peer_timeout_ms", "must be at least heartbeat_interval_ms (500)");
	/* a later -s interval makes the file's timeout too short */
	ck_assert_ptr_null(config_read(write_conf("peer_timeout_ms = 500\n"),
	    sets, 1, &err));
	ck_assert_str_eq(err.file, conf_path);
	ck_assert_uint_eq(err.line, 1);
	ck_assert_str_eq(err.key, "peer_timeout_ms");
}
END_TEST

/* Print c to a file and read it back. */
static struct config *
round_trip(const struct config *c)
{
	struct config_error err;
	struct config *back;
	FILE *f;
	int fd;

	write_conf("");
	fd = open(conf_path, O_WRONLY | O_TRUNC);
	ck_assert_ptr_nonnull(f = fdopen(fd, "w"));
	config_print(c, f);
	fclose(f);
	back = config_read(conf_path, NULL, 0, &err);
	ck_assert_msg(back != NULL, "%s:%u: %s: %s", err.file, err.line,
	    err.key, err.reason);
	return back;
}

START_TEST(test_print_then_read_gives_the_same_config)
{
	char token[257], set_token[300];
	char *sets[] = { "node_name=n\\1", "work_listen=[::]:0",
	    "http_listen=", "peer=a@10.0.0.1:7071", "peer=[::1]:7072",
	    "heartbeat_interval_ms=20", "peer_timeout_ms=45", "threads=9",
	    "worker_nice=0", "pool_mode=inline", "queue_max=0",
	    "job_max_ms=5", "max_line=100", "max_connections=3",
	    "max_jobs_per_conn=2", set_token, "log_format=json",
	    "log_level=error", "heartbeat_log_ms=0", "shutdown_grace_ms=1" };
	struct config_error err;
	struct config *c, *back;

	memset(token, ';', 256);
	token[256] = '\0';
	snprintf(set_token, sizeof(set_token), "auth_token=%s", token);
	c = config_read(write_conf(""), sets, sizeof(sets) / sizeof(sets[0]),
	    &err);
	ck_assert_msg(c != NULL, "%s:%u: %s: %s", err.file, err.line, err.key,
	    err.reason);
	back = round_trip(c);
	expect_same(c, back);
	ck_assert_str_eq(back->auth_token, token);
	ck_assert_str_eq(back->http_listen, "");
	ck_assert_str_eq(back->peers[1].name, "[::1]:7072");
	config_free(back);
	config_free(c);

	c = defaults();
	back = round_trip(c);
	expect_same(c, back);
	ck_assert_ptr_null(back->auth_token);
	config_free(back);
	config_free(c);
}
END_TEST

START_TEST(test_print_shows_every_key)
{
	static const char *keys[] = { "node_name", "work_listen",
	    "peer_listen", "http_listen", "peer", "heartbeat_interval_ms",
	    "peer_timeout_ms", "threads", "worker_nice", "pool_mode",
	    "queue_max", "job_max_ms", "max_line", "max_connections",
	    "max_jobs_per_conn", "auth_token", "log_format", "log_level",
	    "heartbeat_log_ms", "shutdown_grace_ms", "http_max_connections",
	    "http_timeout_ms", "state_dir", "journal_sync_ms", "job_retention",
	    "auth_token_file", "auth_timeout_ms", "idle_timeout_ms",
	    "timer_slack_ns", "watchdog_lag_ms", "peer_in_max",
	    "hello_timeout_ms" };
	char *sets[] = { "peer=b@h:1", "http_listen=" };
	char buf[4096], want[64];
	struct config *c;
	FILE *f;
	size_t i, n;

	c = config_read(write_conf(""), sets, 2, NULL);
	ck_assert_ptr_nonnull(c);
	f = tmpfile();
	config_print(c, f);
	rewind(f);
	n = fread(buf + 1, 1, sizeof(buf) - 2, f);
	fclose(f);
	buf[0] = '\n';
	buf[n + 1] = '\0';
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		snprintf(want, sizeof(want), "\n%s =", keys[i]);
		ck_assert_msg(strstr(buf, want) != NULL, "%s missing", keys[i]);
	}
	ck_assert(strstr(buf, "\npeer = b@h:1\n") != NULL);
	ck_assert(strstr(buf, "\nhttp_listen =\n") != NULL);
	ck_assert(strstr(buf, "\nauth_token =\n") != NULL);
	ck_assert(strstr(buf, "\nlog_format = logfmt\n") != NULL);
	config_free(c);
}
END_TEST

START_TEST(test_diff_is_empty_for_equal_configs)
{
	struct config *a = defaults(), *b = defaults();
	char applied[64] = "junk", restart[64] = "junk";

	config_diff(a, b, applied, sizeof(applied), restart, sizeof(restart));
	ck_assert_str_eq(applied, "");
	ck_assert_str_eq(restart, "");
	config_free(a);
	config_free(b);
}
END_TEST

START_TEST(test_diff_splits_applied_and_restart_keys)
{
	char *sets[] = { "threads=99", "work_listen=127.0.0.1:1",
	    "log_level=debug", "peer=a@h:1", "auth_token=x", "worker_nice=1",
	    "pool_mode=inline", "http_listen=", "peer_listen=127.0.0.1:2",
	    "node_name=other", "heartbeat_interval_ms=5" };
	struct config *a = defaults(), *b;
	char applied[256], restart[256];

	b = config_read(write_conf(""), sets, sizeof(sets) / sizeof(sets[0]),
	    NULL);
	ck_assert_ptr_nonnull(b);
	config_diff(a, b, applied, sizeof(applied), restart, sizeof(restart));
	ck_assert_str_eq(applied, "node_name,peer,heartbeat_interval_ms,"
	    "peer_timeout_ms,auth_token,log_level");
	ck_assert_str_eq(restart, "work_listen,peer_listen,http_listen,"
	    "threads,worker_nice,pool_mode");
	config_free(a);
	config_free(b);
}
END_TEST

START_TEST(test_diff_ignores_peer_order_but_not_addresses)
{
	char *ab[] = { "peer=a@h:1", "peer=b@h:2" };
	char *ba[] = { "peer=b@h:2", "peer=a@h:1" };
	char *moved[] = { "peer=b@h:2", "peer=a@h:3" };
	struct config *x, *y, *z;
	char applied[64], restart[64];

	x = config_read(write_conf(""), ab, 2, NULL);
	y = config_read(conf_path, ba, 2, NULL);
	z = config_read(conf_path, moved, 2, NULL);
	config_diff(x, y, applied, sizeof(applied), restart, sizeof(restart));
	ck_assert_str_eq(applied, "");
	config_diff(x, z, applied, sizeof(applied), restart, sizeof(restart));
	ck_assert_str_eq(applied, "peer");
	ck_assert_str_eq(restart, "");
	config_free(x);
	config_free(y);
	config_free(z);
}
END_TEST

START_TEST(test_diff_keeps_only_whole_names_in_a_small_buffer)
{
	char *sets[] = { "queue_max=1", "max_line=100" };
	struct config *a = defaults(), *b;
	char applied[16], restart[1];

	b = config_read(write_conf(""), sets, 2, NULL);
	config_diff(a, b, applied, sizeof(applied), restart, sizeof(restart));
	ck_assert_str_eq(applied, "queue_max");
	ck_assert_str_eq(restart, "");
	config_free(a);
	config_free(b);
}
END_TEST

/* conf/heartbeatd.conf from the source tree. */
static void
shipped_conf_path(char *buf, size_t n)
{
	const char *src = getenv("HB_SRCDIR");
	const char *slash;

	if (src != NULL) {
		snprintf(buf, n, "%s/conf/heartbeatd.conf", src);
		return;
	}
	/* __FILE__ is srcdir/tests/check_config.c */
	slash = strrchr(__FILE__, '/');
	snprintf(buf, n, "%.*s/../conf/heartbeatd.conf",
	    slash != NULL ? (int)(slash - __FILE__) : 1,
	    slash != NULL ? __FILE__ : ".");
}

START_TEST(test_shipped_conf_is_valid_and_documents_every_key)
{
	static const char *keys[] = { "node_name", "work_listen",
	    "peer_listen", "http_listen", "peer", "heartbeat_interval_ms",
	    "peer_timeout_ms", "threads", "worker_nice", "pool_mode",
	    "queue_max", "job_max_ms", "max_line", "max_connections",
	    "max_jobs_per_conn", "auth_token", "log_format", "log_level",
	    "heartbeat_log_ms", "shutdown_grace_ms", "http_max_connections",
	    "http_timeout_ms", "state_dir", "journal_sync_ms", "job_retention",
	    "auth_token_file", "auth_timeout_ms", "idle_timeout_ms",
	    "timer_slack_ns", "watchdog_lag_ms", "peer_in_max",
	    "hello_timeout_ms" };
	char path[PATH_MAX], want[64];
	static char text[65536];
	struct config_error err;
	struct config *c, *d;
	FILE *f;
	size_t i, n;

	shipped_conf_path(path, sizeof(path));
	ck_assert_msg((f = fopen(path, "r")) != NULL, "%s", path);
	n = fread(text + 1, 1, sizeof(text) - 2, f);
	fclose(f);
	text[0] = '\n';
	text[n + 1] = '\0';
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		snprintf(want, sizeof(want), "\n#%s =", keys[i]);
		ck_assert_msg(strstr(text, want) != NULL, "%s missing", keys[i]);
	}
	c = config_read(path, NULL, 0, &err);
	ck_assert_msg(c != NULL, "%s:%u: %s: %s", err.file, err.line, err.key,
	    err.reason);
	d = defaults();
	expect_same(c, d);
	config_free(c);
	config_free(d);
}
END_TEST

Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc;
	int nbad = (int)(sizeof(bad_values) / sizeof(bad_values[0]));

	tc = tcase_create("keys");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_defaults_match_the_interface);
	tcase_add_test(tc, test_each_key_accepts_a_valid_value);
	tcase_add_loop_test(tc, test_each_key_rejects_an_invalid_value, 0, nbad);
	tcase_add_loop_test(tc, test_bad_set_values_are_rejected_like_file_values,
	    0, nbad);
	tcase_add_test(tc, test_long_auth_token_is_read_whole);
	tcase_add_test(tc, test_empty_values_turn_http_and_auth_off);
	tcase_add_test(tc, test_empty_value_at_end_of_file_is_read_safely);
	tcase_add_test(tc, test_peers_from_file_and_set_accumulate);
	tcase_add_test(tc, test_peer_name_defaults_to_host_port);
	tcase_add_test(tc, test_duplicate_peer_names_are_an_error);
	tcase_add_test(tc, test_peer_timeout_defaults_to_three_intervals);
	tcase_add_test(tc, test_explicit_peer_timeout_is_kept);
	tcase_add_test(tc, test_peer_timeout_below_interval_is_an_error);
	suite_add_tcase(s, tc);

	tc = tcase_create("syntax");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_comments_blank_lines_and_indentation_are_ignored);
	tcase_add_test(tc, test_indented_line_is_not_a_continuation);
	tcase_add_test(tc, test_error_lines_count_long_lines_once);
	tcase_add_test(tc, test_unknown_key_is_an_error);
	tcase_add_test(tc, test_duplicate_key_is_an_error);
	tcase_add_test(tc, test_section_header_is_an_error);
	tcase_add_test(tc, test_line_without_equals_is_an_error);
	tcase_add_test(tc, test_nul_byte_and_overlong_line_are_errors);
	tcase_add_test(tc, test_missing_explicit_file_is_an_error);
	tcase_add_test(tc, test_missing_default_file_gives_defaults);
	tcase_add_test(tc, test_directory_is_not_a_config_file);
	tcase_add_test(tc, test_default_path_is_under_sysconfdir);
	tcase_add_test(tc, test_error_format_names_file_line_and_key);
	tcase_add_test(tc, test_error_log_line_carries_every_part);
	tcase_add_test(tc, test_mistyped_key_gets_the_nearest_key);
	tcase_add_test(tc, test_unknown_key_far_from_any_gets_no_suggestion);
	tcase_add_test(tc, test_error_text_escapes_control_characters);
	suite_add_tcase(s, tc);

	tc = tcase_create("every_error");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_read_all_reports_every_error_in_order);
	tcase_add_test(tc, test_read_all_of_a_good_config_has_no_errors);
	tcase_add_test(tc, test_read_all_checks_cross_keys_after_line_errors);
	tcase_add_test(tc, test_rejected_value_does_not_cause_cross_key_errors);
	tcase_add_test(tc, test_read_all_keeps_a_bounded_number_of_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("overrides");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_set_overrides_the_file);
	tcase_add_test(tc, test_set_may_repeat_a_key_and_the_last_wins);
	tcase_add_test(tc, test_set_errors_name_set_and_ordinal);
	tcase_add_test(tc, test_set_without_equals_is_an_error);
	suite_add_tcase(s, tc);

	tc = tcase_create("print_and_diff");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_print_then_read_gives_the_same_config);
	tcase_add_test(tc, test_print_shows_every_key);
	tcase_add_test(tc, test_diff_is_empty_for_equal_configs);
	tcase_add_test(tc, test_diff_splits_applied_and_restart_keys);
	tcase_add_test(tc, test_diff_ignores_peer_order_but_not_addresses);
	tcase_add_test(tc, test_diff_keeps_only_whole_names_in_a_small_buffer);
	tcase_add_test(tc, test_shipped_conf_is_valid_and_documents_every_key);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(config_suite)
