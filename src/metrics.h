/*
 * metrics.h - the Prometheus text exposition (format 0.0.4, interface.md
 * section 6) of one status snapshot. Pure: it reads the snapshot and writes
 * the buffer, nothing else.
 */
#ifndef HB_METRICS_H
#define HB_METRICS_H

struct evbuffer;
struct hb_status;

void metrics_render(const struct hb_status *s, struct evbuffer *out);

#endif
