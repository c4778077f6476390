/*
 * ctl_jobs.c - jobs as people read them: the "jobs" table of queued and
 * running jobs (JOBS, one JOB line each, then END) and one job's "status"
 * (STATUS), with durations in human units and the outcome spelled out.
 * With --json every field the daemon sent is kept, numbers as numbers, so
 * a script sees the protocol's names (interface.md section 4).
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ctl.h"
#include "proto.h"
#include "util.h"

#define JOBS_COLS		7	/* columns of the jobs table */
#define JOB_LINES_MAX		(CTL_FIELDS_MAX + 8)	/* status lines */

/* The fields a status view names itself; others are shown as sent. */
static const char *const job_known[] = {
	"kind", "state", "progress", "queue_us", "run_us", "detached",
	"result", "reason", "detail", NULL
};

/* A field, or "-" when the daemon left it out. */
static const char *
field_or_dash(const struct ctl_fields *f, const char *key)
{
	const char *v = fields_get(f, key);

	return v != NULL ? v : "-";
}

/* The cells of one jobs-table row; buf holds the formatted ones. */
static void
job_cells(const struct ctl_rec *j, const char *cell[JOBS_COLS],
    char buf[3][32])
{
	const char *state = field_or_dash(&j->f, "state");
	const char *d = fields_get(&j->f, "detached");

	cell[0] = j->key;
	cell[1] = field_or_dash(&j->f, "kind");
	cell[2] = state;
	snprintf(buf[0], 32, "%llu%%",
	    (unsigned long long)fields_u64(&j->f, "progress"));
	cell[3] = buf[0];
	cell[4] = fmt_us(buf[1], 32, fields_get(&j->f, "queue_us"));
	cell[5] = strcmp(state, "queued") == 0 ? "-" :
	    fmt_us(buf[2], 32, fields_get(&j->f, "run_us"));
	cell[6] = d == NULL ? "-" : strcmp(d, "1") == 0 ? "yes" : "no";
}

/* The table: text left-aligned, numbers right-aligned. */
static void
jobs_table(const struct ctl_recs *js)
{
	static const char *head[JOBS_COLS] = { "ID", "KIND", "STATE",
	    "PROGRESS", "QUEUED", "RUNNING", "DETACHED" };
	static const int right[JOBS_COLS] = { 1, 0, 0, 1, 1, 1, 0 };
	const char *cell[JOBS_COLS];
	char buf[3][32];
	size_t w[JOBS_COLS], i, k, len;

	for (k = 0; k < JOBS_COLS; k++)
		w[k] = strlen(head[k]);
	for (i = 0; i < js->n; i++) {
		job_cells(&js->v[i], cell, buf);
		for (k = 0; k < JOBS_COLS; k++)
			if ((len = strlen(cell[k])) > w[k])
				w[k] = len;
	}
	for (i = 0; i <= js->n; i++) {
		if (i == 0)
			memcpy(cell, head, sizeof(cell));
		else
			job_cells(&js->v[i - 1], cell, buf);
		for (k = 0; k < JOBS_COLS; k++) {
			if (k == JOBS_COLS - 1)
				printf("%s\n", cell[k]);
			else
				printf(right[k] ? "%*s  " : "%-*s  ", (int)w[k],
				    cell[k]);
		}
	}
}

/* JOBS: the queued and running jobs, or {"jobs":[...]}. */
int
jobs_run(struct ctl_conn *c)
{
	struct ctl_recs js = { NULL, 0, 0 };
	struct json_obj o;
	size_t i;
	int status = CTL_EXIT_FAIL;

	if (conn_send(c, "JOBS") == -1 || recs_read(c, "JOB", &js) == -1)
		goto done;
	if (json_mode) {
		fputs("{\"jobs\":[", stdout);
		for (i = 0; i < js.n; i++) {
			if (i > 0)
				fputc(',', stdout);
			jo_begin(&o, stdout);
			jo_val(&o, "id", js.v[i].key);
			jo_fields(&o, &js.v[i].f);
			jo_end(&o);
		}
		fputs("]}\n", stdout);
	} else if (js.n == 0) {
		puts("no jobs");
	} else {
		jobs_table(&js);
	}
	status = CTL_EXIT_OK;
done:
	recs_free(&js);
	return status;
}

/* Whether key is one the status view shows in its own words. */
static int
job_field_known(const char *key)
{
	size_t i;

	for (i = 0; job_known[i] != NULL; i++)
		if (strcmp(job_known[i], key) == 0)
			return 1;
	return 0;
}

/* Lines of the status view, printed aligned at the end. */
struct job_view {
	const char	*key[JOB_LINES_MAX];
	const char	*val[JOB_LINES_MAX];
	size_t		 n;
};

static void
view_add(struct job_view *jv, const char *key, const char *val)
{
	if (jv->n < JOB_LINES_MAX) {
		jv->key[jv->n] = key;
		jv->val[jv->n++] = val;
	}
}

/* A free-text field (result, reason, detail) made safe for a terminal. */
static void
view_add_text(struct job_view *jv, const struct ctl_fields *f,
    const char *key)
{
	char *v = fields_get(f, key);

	if (v != NULL) {
		text_sanitize(v);
		view_add(jv, key, v);
	}
}

/*
 * One STATUS reply's fields for people: the state in a phrase with its
 * duration ("running 42% for 1.20s", "done in 3.00s"), the time queued,
 * detached or not, the result or the reason and detail, then any field
 * this client does not know, as sent. --json: every field as sent.
 */
void
job_print(const char *id, const struct ctl_fields *f)
{
	struct job_view jv;
	const char *state = field_or_dash(f, "state"), *d;
	char phrase[96], q[32], r[32];
	size_t i, w = 0;

	if (json_mode) {
		print_fields("id", id, f);
		return;
	}
	jv.n = 0;
	fmt_us(r, sizeof(r), fields_get(f, "run_us"));
	fmt_us(q, sizeof(q), fields_get(f, "queue_us"));
	if (strcmp(state, "queued") == 0)
		snprintf(phrase, sizeof(phrase), "queued for %s", q);
	else if (strcmp(state, "running") == 0)
		snprintf(phrase, sizeof(phrase), "running %llu%% for %s",
		    (unsigned long long)fields_u64(f, "progress"), r);
	else if (strcmp(state, "done") == 0)
		snprintf(phrase, sizeof(phrase), "done in %s", r);
	else if (strcmp(state, "failed") == 0)
		snprintf(phrase, sizeof(phrase), "failed after %s", r);
	else
		snprintf(phrase, sizeof(phrase), "%s", state);
	view_add(&jv, "id", id);
	view_add(&jv, "kind", field_or_dash(f, "kind"));
	view_add(&jv, "state", phrase);
	if (strcmp(state, "queued") != 0)
		view_add(&jv, "queued", q);
	d = fields_get(f, "detached");
	view_add(&jv, "detached", d == NULL ? "-" : strcmp(d, "1") == 0 ?
	    "yes" : "no");
	view_add_text(&jv, f, "result");
	view_add_text(&jv, f, "reason");
	view_add_text(&jv, f, "detail");
	for (i = 0; i < f->n; i++) {
		if (job_field_known(f->key[i]))
			continue;
		text_sanitize(f->val[i]);
		view_add(&jv, f->key[i], f->val[i]);
	}
	for (i = 0; i < jv.n; i++)
		if (strlen(jv.key[i]) > w)
			w = strlen(jv.key[i]);
	for (i = 0; i < jv.n; i++)
		printf("%-*s  %s\n", (int)w, jv.key[i], jv.val[i]);
}
