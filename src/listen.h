/*
 * listen.h - the listening sockets of all three ports (work, peer, http):
 * bind one, or adopt the one systemd passed under the service's name
 * (socket activation), and accept on it without ever hurting the loop: at
 * most LISTEN_ACCEPT_MAX connections per callback, so a burst of clients
 * cannot hold the loop away from the heartbeat timer, and a pause of
 * LISTEN_PAUSE_MS when accept(2) fails for want of descriptors or memory,
 * instead of spinning on a socket that stays readable.
 */
#ifndef HB_LISTEN_H
#define HB_LISTEN_H

#include <sys/socket.h>

#include <event2/util.h>

struct event_base;
struct listen;

#define LISTEN_ACCEPT_MAX 16	/* connections accepted per callback */
#define LISTEN_PAUSE_MS 50	/* after EMFILE, ENFILE, ENOBUFS, ENOMEM */
#define LISTEN_WARN_MS 10000	/* at most one accept-failed line per this */

/* A new connection: fd is nonblocking and close-on-exec, and now the callee's. */
typedef void (*listen_accept_fn)(evutil_socket_t fd, const struct sockaddr *sa,
    void *arg);

/*
 * The listening socket for service ("work", "peer", "http"): the one systemd
 * passed by that FileDescriptorName, made nonblocking, or a new one bound to
 * addr. Logs msg=listening service= addr= with the port actually bound.
 * Returns the fd, or -1 after logging.
 */
evutil_socket_t listen_open(const char *service, const char *addr);

/*
 * Accept on fd (taken over: closed by listen_free) at libevent priority
 * priority, calling fn for each new connection.
 */
struct listen *listen_new(struct event_base *base, evutil_socket_t fd,
    const char *service, int priority, listen_accept_fn fn, void *arg);
/* Stop accepting and close the socket, so new clients are refused at once. */
void listen_free(struct listen *l);

#endif
