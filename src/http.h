/*
 * http.h - /metrics (Prometheus text) and /healthz over evhttp
 * (interface.md section 6).
 */
#ifndef HB_HTTP_H
#define HB_HTTP_H

#include <event2/util.h>

struct daemon;
struct http;

struct http *http_new(struct daemon *d, evutil_socket_t fd);
void http_free(struct http *h);

#endif
