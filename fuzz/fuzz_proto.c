/*
 * fuzz_proto.c - libFuzzer harness for proto.c: any bytes as a request line,
 * a peer line and a reply to split, then everything parsed is formatted
 * again. Besides the sanitizers it checks the promises of proto.h: every
 * formatted line is one line ending in "\n" whatever the buffer size, and a
 * FAIL detail comes back unchanged through proto_split_kv.
 *
 * Build and run with fuzz/run.sh.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_LINE_MAX 65536

/* A formatted line of len bytes in a buffer of n: one line, "\n" last. */
static void
fuzz_check_line(const char *buf, size_t n, int len)
{
	if (n < 2) {
		if (len != 0 || (n == 1 && buf[0] != '\0'))
			abort();
		return;
	}
	if (len < 1 || (size_t)len > n - 1 || (size_t)len != strlen(buf))
		abort();
	if (buf[len - 1] != '\n' || memchr(buf, '\n', (size_t)len - 1) != NULL)
		abort();
	if (memchr(buf, '\r', (size_t)len) != NULL)
		abort();
}

/* An ERR line never carries a raw byte outside printable ASCII. */
static void
fuzz_check_printable(const char *buf, int len)
{
	int i;

	for (i = 0; i + 1 < len; i++)
		if ((unsigned char)buf[i] < 0x20 || (unsigned char)buf[i] >= 0x7f)
			abort();
}

static void
fuzz_request(char *line, char *out, size_t outn, size_t cut)
{
	struct proto_request req;
	struct proto_error err;
	char small[96];
	size_t i;
	int rc;

	rc = proto_parse_request(line, &req, &err);
	if (rc == 1)
		return;
	if (rc < 0) {
		if (err.code == NULL || strlen(err.text) >= sizeof(err.text))
			abort();
		fuzz_check_line(out, outn,
		    proto_fmt_err(out, outn, err.code, err.text));
		fuzz_check_line(small, cut,
		    proto_fmt_err(small, cut, err.code, err.text));
		fuzz_check_printable(out, proto_fmt_err(out, outn, err.code, err.text));
		return;
	}
	if (rc != 0 || (unsigned)req.verb >= PROTO_VERB_COUNT)
		abort();
	fuzz_check_line(small, cut, proto_fmt_ok_id(small, cut, req.id));
	if (req.verb == PROTO_AUTH) {
		fuzz_check_line(out, outn,
		    proto_fmt_fail(out, outn, 1, "error", req.token));
		fuzz_check_line(small, cut,
		    proto_fmt_fail(small, cut, 1, "error", req.token));
	}
	fuzz_check_printable(out, proto_fmt_err(out, outn, "bad-arg", line));
	if ((req.verb == PROTO_CANCEL || req.verb == PROTO_STATUS ||
	    req.verb == PROTO_WAIT) && req.id == 0)
		abort();
	if (req.verb != PROTO_SUBMIT)
		return;
	if (req.kind == NULL || req.nargs > PROTO_ARGS_MAX)
		abort();
	for (i = 0; i < req.nargs; i++) {
		if (req.keys[i][0] == '\0')
			abort();
		fuzz_check_line(out, outn, proto_fmt_done(out, outn, req.id, req.vals[i],
		    i, i));
		fuzz_check_line(small, cut, proto_fmt_job(small, cut, &(struct proto_job){
		    .id = i, .kind = req.kind, .state = req.keys[i], .progress = (unsigned)i,
		    .queue_us = i, .run_us = i, .detached = (int)(i & 1),
		    .result = (i & 1) ? req.vals[i] : NULL,
		    .reason = (i & 1) ? NULL : req.keys[i],
		    .detail = (i & 2) ? req.vals[i] : NULL }));
	}
}

static void
fuzz_peer(char *line, char *out, size_t outn, size_t cut)
{
	struct proto_peer_msg m;
	char small[96];

	if (proto_parse_peer(line, &m) < 0)
		return;
	switch (m.type) {
	case PROTO_HELLO:
	case PROTO_WELCOME:
		if (m.name == NULL || m.name[0] == '\0')
			abort();
		fuzz_check_line(out, outn, proto_fmt_hello(out, outn, "WELCOME", m.name));
		fuzz_check_line(small, cut, proto_fmt_hello(small, cut, "HELLO", m.name));
		break;
	case PROTO_HB:
	case PROTO_ACK:
		fuzz_check_line(out, outn, proto_fmt_hb(out, outn, m.seq, m.t, m.lag_us,
		    m.missed));
		fuzz_check_line(small, cut, proto_fmt_ack(small, cut, m.seq, m.t));
		break;
	default:
		abort();
	}
}

/* A detail survives proto_fmt_fail and proto_split_kv unchanged. */
static void
fuzz_detail_round_trip(const char *detail, char *out, size_t outn)
{
	char *keys[8], *vals[8];
	int len;

	len = proto_fmt_fail(out, outn, 42, "error", detail);
	fuzz_check_line(out, outn, len);
	out[len - 1] = '\0';
	if (proto_split_kv(out, keys, vals, 8) != 4 ||
	    strcmp(keys[3], "detail") != 0 || strcmp(vals[3], detail) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line, *copy, *out;
	char *keys[PROTO_ARGS_MAX], *vals[PROTO_ARGS_MAX];
	size_t len, outn, cut, i, n;

	if (size > FUZZ_LINE_MAX)
		return 0;
	line = malloc(size + 1);
	copy = malloc(size + 1);
	outn = 4 * size + 128;		/* room for any escaping */
	out = malloc(outn);
	if (line == NULL || copy == NULL || out == NULL)
		abort();
	memcpy(line, data, size);
	line[size] = '\0';
	len = strlen(line);
	cut = size > 0 ? data[0] % 96 : 0;

	memcpy(copy, line, len + 1);
	fuzz_request(copy, out, outn, cut);

	memcpy(copy, line, len + 1);
	fuzz_peer(copy, out, outn, cut);

	memcpy(copy, line, len + 1);
	n = proto_split_kv(copy, keys, vals, PROTO_ARGS_MAX);
	if (n > PROTO_ARGS_MAX)
		abort();
	for (i = 0; i < n; i++)
		if (strlen(keys[i]) > len || strlen(vals[i]) > len)
			abort();

	fuzz_detail_round_trip(line, out, outn);

	free(line);
	free(copy);
	free(out);
	return 0;
}
