/*
 * http.c - GET /metrics (Prometheus text) and GET /healthz over evhttp
 * (interface.md section 6), on a listening socket from daemon_listen.
 *
 * Everything runs on the loop thread and every handler is cheap: a scrape
 * renders counters the loop already keeps (metrics.c) into one buffer, and
 * /healthz reads one flag. evhttp has no priority setter, so each
 * connection's bufferevent is moved to DAEMON_PRI_IO on its first request,
 * below the heartbeat timer and job completions; the listener itself stays
 * at libevent's default (middle) priority, which is still below the tick.
 *
 * Limits: header size, body size and an idle/read/write timeout bound what
 * one client can hold. Accept errors such as EMFILE pause the listener for
 * HTTP_ACCEPT_PAUSE_MS instead of letting it spin on a readable socket.
 */

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "daemon.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define HTTP_HEADERS_MAX 8192		/* request line and headers, bytes */
#define HTTP_BODY_MAX 1024		/* GET and HEAD carry no body */
#define HTTP_TIMEOUT_S 10		/* idle, read or write, per connection */
#define HTTP_ACCEPT_PAUSE_MS 100	/* after accept fails (EMFILE, ...) */
#define HTTP_ACCEPT_LOG_MS 10000	/* at most one accept warning per this */

#define HTTP_TYPE_METRICS "text/plain; version=0.0.4; charset=utf-8"
#define HTTP_TYPE_TEXT "text/plain; charset=utf-8"

struct http {
	struct daemon *d;
	struct evhttp *evh;
	struct evconnlistener *listener;	/* owned by evh */
	struct event *ev_resume;		/* re-enables the listener */
	uint64_t accept_warned_ns;		/* last accept-failed line */
	uint64_t accept_failures;		/* since that line */
	struct http *next;			/* in http_all */
};

/*
 * Live servers, so that the accept error callback, whose argument evhttp
 * reserves for itself, can find its own (loop thread only).
 */
static struct http *http_all;

/*
 * Send a reply. HEAD gets the headers GET would get, Content-Length
 * included, and no body; evhttp would otherwise write the body anyway.
 */
static void
http_reply(struct evhttp_request *req, int code, const char *reason,
    const char *type, struct evbuffer *body)
{
	struct evkeyvalq *hdr = evhttp_request_get_output_headers(req);

	evhttp_add_header(hdr, "Content-Type", type);
	evhttp_add_header(hdr, "Cache-Control", "no-store");
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
		char len[32];

		snprintf(len, sizeof(len), "%zu", evbuffer_get_length(body));
		evhttp_add_header(hdr, "Content-Length", len);
		evbuffer_drain(body, evbuffer_get_length(body));
	}
	evhttp_send_reply(req, code, reason, body);
}

/* Later events of this connection run with client I/O, below the tick. */
static void
http_lower_priority(struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev;

	if (evcon == NULL)
		return;
	bev = evhttp_connection_get_bufferevent(evcon);
	if (bev != NULL)
		(void)bufferevent_priority_set(bev, DAEMON_PRI_IO);
}

/* Every request: evhttp has already refused methods other than GET/HEAD. */
static void
http_request(struct evhttp_request *req, void *arg)
{
	struct http *h = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	struct evbuffer *body;

	http_lower_priority(req);
	if ((body = evbuffer_new()) == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	if (path != NULL && strcmp(path, "/metrics") == 0) {
		metrics_render(h->d, body);
		http_reply(req, HTTP_OK, "OK", HTTP_TYPE_METRICS, body);
	} else if (path != NULL && strcmp(path, "/healthz") == 0) {
		if (h->d->draining) {
			evbuffer_add(body, "draining\n", 9);
			http_reply(req, HTTP_SERVUNAVAIL, "Service Unavailable",
			    HTTP_TYPE_TEXT, body);
		} else {
			evbuffer_add(body, "ok\n", 3);
			http_reply(req, HTTP_OK, "OK", HTTP_TYPE_TEXT, body);
		}
	} else {
		evbuffer_add(body, "not found\n", 10);
		http_reply(req, HTTP_NOTFOUND, "Not Found", HTTP_TYPE_TEXT, body);
	}
	evbuffer_free(body);
}

/* Accept failed (EMFILE, ENFILE, ENOBUFS, ...): pause instead of spinning. */
static void
http_accept_error(struct evconnlistener *lev, void *arg)
{
	struct http *h;
	struct timeval tv = { 0, HTTP_ACCEPT_PAUSE_MS * 1000 };
	int err = EVUTIL_SOCKET_ERROR();
	uint64_t now;

	for (h = http_all; h != NULL; h = h->next)
		if (h->listener == lev)
			break;
	if (h == NULL)
		return;

	h->accept_failures++;
	now = now_ns();
	if (h->accept_warned_ns == 0 ||
	    now - h->accept_warned_ns >= HTTP_ACCEPT_LOG_MS * HB_NS_PER_MS) {
		struct log_line *l = log_begin(LOG_WARN, "accept-failed");

		log_str(l, "service", "http");
		log_errno(l, err);
		log_uint(l, "pause_ms", HTTP_ACCEPT_PAUSE_MS);
		log_uint(l, "failures", h->accept_failures);
		log_end(l);
		h->accept_warned_ns = now;
		h->accept_failures = 0;
	}
	evconnlistener_disable(lev);
	event_add(h->ev_resume, &tv);
}

static void
http_accept_resume(evutil_socket_t fd, short what, void *arg)
{
	struct http *h = arg;

	evconnlistener_enable(h->listener);
}

struct http *
http_new(struct daemon *d, evutil_socket_t fd)
{
	struct http *h;
	struct evhttp_bound_socket *bound;

	h = xcalloc(1, sizeof(*h));
	h->d = d;
	if ((h->evh = evhttp_new(d->base)) == NULL) {
		log_msg(LOG_ERROR, "http-failed");
		goto fail;
	}
	h->ev_resume = evtimer_new(d->base, http_accept_resume, h);
	if (h->ev_resume == NULL) {
		log_msg(LOG_ERROR, "http-failed");
		goto fail;
	}
	evhttp_set_allowed_methods(h->evh, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_max_headers_size(h->evh, HTTP_HEADERS_MAX);
	evhttp_set_max_body_size(h->evh, HTTP_BODY_MAX);
	evhttp_set_timeout(h->evh, HTTP_TIMEOUT_S);
	evhttp_set_default_content_type(h->evh, HTTP_TYPE_TEXT);
	evhttp_set_gencb(h->evh, http_request, h);

	if ((bound = evhttp_accept_socket_with_handle(h->evh, fd)) == NULL) {
		struct log_line *l = log_begin(LOG_ERROR, "http-failed");

		log_str(l, "reason", "cannot accept on the listening socket");
		log_errno(l, errno);
		log_end(l);
		goto fail;
	}
	h->listener = evhttp_bound_socket_get_listener(bound);
	evconnlistener_set_error_cb(h->listener, http_accept_error);
	h->next = http_all;
	http_all = h;
	return h;

fail:
	if (h->ev_resume != NULL)
		event_free(h->ev_resume);
	if (h->evh != NULL)
		evhttp_free(h->evh);
	free(h);
	return NULL;
}

void
http_free(struct http *h)
{
	struct http **pp;

	if (h == NULL)
		return;
	for (pp = &http_all; *pp != NULL; pp = &(*pp)->next)
		if (*pp == h) {
			*pp = h->next;
			break;
		}
	/* Frees the open connections and the listener, closing its socket. */
	evhttp_free(h->evh);
	event_free(h->ev_resume);
	free(h);
}
