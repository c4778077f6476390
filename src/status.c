/*
 * status.c - the totals every report derives from a struct hb_status.
 */
#include "status.h"

uint64_t
status_submitted(const struct hb_status *s)
{
	uint64_t n = 0;
	int k;

	for (k = 0; k < JOB_KIND_COUNT; k++)
		n += s->submitted[k];
	return n;
}

uint64_t
status_outcomes(const struct hb_status *s, enum job_outcome o)
{
	uint64_t n = 0;
	int k;

	for (k = 0; k < JOB_KIND_COUNT; k++)
		n += s->finished[k][o];
	return n;
}

uint64_t
status_completed(const struct hb_status *s)
{
	return status_outcomes(s, JOB_DONE);
}

uint64_t
status_failed(const struct hb_status *s)
{
	uint64_t n = 0;
	int o;

	for (o = 0; o < JOB_OUTCOME_COUNT; o++)
		if (o != JOB_DONE)
			n += status_outcomes(s, (enum job_outcome)o);
	return n;
}

uint64_t
status_rejected(const struct hb_status *s)
{
	uint64_t n = 0;
	int r;

	for (r = 0; r < JOB_REJECT_COUNT; r++)
		n += s->rejected[r];
	return n;
}
