/*
 * http.c - GET /metrics and GET /healthz (interface.md section 6).
 *
 * Why not evhttp: libevent 2.1's evhttp cannot cap its connections, its
 * timeout restarts on every byte (so a client trickling one byte a second
 * holds a connection forever), and it accepts from its own listener, which
 * takes the whole backlog in one callback. Two read-only pages need very
 * little HTTP, so this is that little, on the shared listener (listen.c):
 *
 *   - at most http_max_connections at once: one more is closed at once;
 *   - a request must be complete within http_timeout_ms of the accept, a
 *     deadline, not an idle timer; the reply must be gone by then too;
 *   - the request line and headers may take HTTP_HEADERS_MAX bytes; a body
 *     is not read (GET and HEAD have none);
 *   - one request per connection: every reply says Connection: close.
 *
 * Everything runs on the loop thread at the priority given to http_new,
 * below the heartbeat timer. A scrape formats one status snapshot.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "http.h"
#include "listen.h"
#include "log.h"
#include "metrics.h"
#include "status.h"
#include "util.h"

#define HTTP_HEADERS_MAX 8192		/* request line and headers, bytes */
#define HTTP_LINE_MAX 1024		/* the request line */

#define HTTP_TYPE_METRICS "text/plain; version=0.0.4; charset=utf-8"
#define HTTP_TYPE_TEXT "text/plain; charset=utf-8"

struct http_conn {
	struct http *h;
	struct bufferevent *bev;
	struct event *ev_deadline;
	int replied;			/* closing once the reply is out */
	LIST_ENTRY(http_conn) entry;
};

struct http {
	struct event_base *base;
	int priority;
	http_status_fn status;
	void *status_arg;
	struct listen *listener;
	LIST_HEAD(, http_conn) conns;
	unsigned nconns;
	uint32_t max_connections;
	uint32_t timeout_ms;
};

/* The one destructor of a connection. */
static void
http_conn_close(struct http_conn *c)
{
	LIST_REMOVE(c, entry);
	c->h->nconns--;
	event_free(c->ev_deadline);
	bufferevent_free(c->bev);
	free(c);
}

/* Queue a whole reply and close once it has gone out. */
static void
http_reply(struct http_conn *c, int head, int code, const char *reason,
    const char *type, struct evbuffer *body)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\nCache-Control: no-store\r\n"
	    "Connection: close\r\n", code, reason, type,
	    body != NULL ? evbuffer_get_length(body) : 0);
	if (code == 405)
		evbuffer_add_printf(out, "Allow: GET, HEAD\r\n");
	evbuffer_add(out, "\r\n", 2);
	if (body != NULL && !head)
		evbuffer_add_buffer(out, body);
	c->replied = 1;
	bufferevent_disable(c->bev, EV_READ);
}

/* A reply whose body is one line of text. */
static void
http_reply_text(struct http_conn *c, int head, int code, const char *reason,
    const char *text)
{
	struct evbuffer *body = evbuffer_new();

	if (body != NULL)
		evbuffer_add_printf(body, "%s\n", text);
	http_reply(c, head, code, reason, HTTP_TYPE_TEXT, body);
	if (body != NULL)
		evbuffer_free(body);
}

/* Answer the request line "METHOD TARGET HTTP/1.x". */
static void
http_request(struct http_conn *c, char *line)
{
	char *method, *target, *version, *save = NULL;
	struct hb_status st;
	struct evbuffer *body;
	int head;

	method = strtok_r(line, " ", &save);
	target = strtok_r(NULL, " ", &save);
	version = strtok_r(NULL, " ", &save);
	if (method == NULL || target == NULL || version == NULL ||
	    strtok_r(NULL, " ", &save) != NULL || strncmp(version, "HTTP/1.", 7) != 0) {
		http_reply_text(c, 0, 400, "Bad Request", "bad request");
		return;
	}
	head = strcmp(method, "HEAD") == 0;
	if (!head && strcmp(method, "GET") != 0) {
		http_reply_text(c, 0, 405, "Method Not Allowed", "method not allowed");
		return;
	}
	target[strcspn(target, "?#")] = '\0';
	c->h->status(&st, c->h->status_arg);
	if (strcmp(target, "/metrics") == 0) {
		if ((body = evbuffer_new()) == NULL) {
			http_reply_text(c, head, 500, "Internal Server Error", "out of memory");
			return;
		}
		metrics_render(&st, body);
		http_reply(c, head, 200, "OK", HTTP_TYPE_METRICS, body);
		evbuffer_free(body);
	} else if (strcmp(target, "/healthz") == 0) {
		if (st.draining)
			http_reply_text(c, head, 503, "Service Unavailable", "draining");
		else
			http_reply_text(c, head, 200, "OK", "ok");
	} else {
		http_reply_text(c, head, 404, "Not Found", "not found");
	}
}

static void
http_conn_read(struct bufferevent *bev, void *arg)
{
	struct http_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr end;
	char *line;
	size_t len;

	if (c->replied)
		return;
	/* the headers end at an empty line */
	end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (end.pos < 0)
		end = evbuffer_search(in, "\n\n", 2, NULL);
	if (end.pos < 0) {
		if (evbuffer_get_length(in) >= HTTP_HEADERS_MAX)
			http_reply_text(c, 0, 431, "Request Header Fields Too Large",
			    "request header fields too large");
		return;
	}
	line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
	if (line == NULL || len > HTTP_LINE_MAX)
		http_reply_text(c, 0, 414, "URI Too Long", "request line too long");
	else
		http_request(c, line);
	free(line);
}

/* The reply is out (or the buffer drained): close if we are done. */
static void
http_conn_written(struct bufferevent *bev, void *arg)
{
	struct http_conn *c = arg;

	(void)bev;
	if (c->replied)
		http_conn_close(c);
}

static void
http_conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct http_conn *c = arg;

	(void)bev;
	/* a client that half-closed after its request still gets the reply */
	if ((what & BEV_EVENT_EOF) && c->replied)
		return;
	/* EOF before a whole request, or an error: nothing more to say */
	http_conn_close(c);
}

static void
http_conn_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	http_conn_close(arg);
}

static void
http_accept(evutil_socket_t fd, const struct sockaddr *sa, void *arg)
{
	struct http *h = arg;
	struct http_conn *c;
	struct timeval tv;

	(void)sa;
	if (h->nconns >= h->max_connections) {
		evutil_closesocket(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->h = h;
	c->bev = bufferevent_socket_new(h->base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->ev_deadline = evtimer_new(h->base, http_conn_deadline, c);
	if (c->bev == NULL || c->ev_deadline == NULL) {
		if (c->bev != NULL)
			bufferevent_free(c->bev);
		else
			evutil_closesocket(fd);
		if (c->ev_deadline != NULL)
			event_free(c->ev_deadline);
		free(c);
		return;
	}
	LIST_INSERT_HEAD(&h->conns, c, entry);
	h->nconns++;
	bufferevent_priority_set(c->bev, h->priority);
	event_priority_set(c->ev_deadline, h->priority);
	bufferevent_setcb(c->bev, http_conn_read, http_conn_written, http_conn_event, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, HTTP_HEADERS_MAX);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	tv.tv_sec = h->timeout_ms / 1000;
	tv.tv_usec = (suseconds_t)(h->timeout_ms % 1000) * 1000;
	event_add(c->ev_deadline, &tv);
}

struct http *
http_new(struct event_base *base, evutil_socket_t fd, const struct config *cfg,
    int priority, http_status_fn status, void *arg)
{
	struct http *h = xcalloc(1, sizeof(*h));

	h->base = base;
	h->priority = priority;
	h->status = status;
	h->status_arg = arg;
	LIST_INIT(&h->conns);
	http_reconfigure(h, cfg);
	if ((h->listener = listen_new(base, fd, "http", priority, http_accept, h)) == NULL) {
		free(h);
		return NULL;
	}
	return h;
}

void
http_reconfigure(struct http *h, const struct config *cfg)
{
	h->max_connections = cfg->http_max_connections;
	h->timeout_ms = cfg->http_timeout_ms;
}

void
http_free(struct http *h)
{
	if (h == NULL)
		return;
	listen_free(h->listener);
	while (!LIST_EMPTY(&h->conns))
		http_conn_close(LIST_FIRST(&h->conns));
	free(h);
}
