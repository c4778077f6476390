/*
 * http.h - GET /metrics (Prometheus text) and GET /healthz (interface.md
 * section 6): a small HTTP/1.x server on the shared listener, with a cap on
 * connections and a deadline on every request.
 */
#ifndef HB_HTTP_H
#define HB_HTTP_H

#include <event2/util.h>

#include "config.h"

struct event_base;
struct hb_status;
struct http;

/* Fill a status snapshot; valid until the loop runs again. */
typedef void (*http_status_fn)(struct hb_status *st, void *arg);

/* Serve the listening socket fd (taken over) at libevent priority priority. */
struct http *http_new(struct event_base *base, evutil_socket_t fd,
    const struct config *cfg, int priority, http_status_fn status, void *arg);
void http_free(struct http *h);
/* Reload: http_max_connections, http_timeout_ms. */
void http_reconfigure(struct http *h, const struct config *cfg);

#endif
