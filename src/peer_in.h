/*
 * peer_in.h - private to peer.c: the inbound side of the peer protocol
 * (interface.md section 5). It owns the peer_listen listener and every
 * accepted connection: HELLO answered with WELCOME, each HB with ACK at
 * once, anything else with "ERR bad-request" and a close.
 */
#ifndef HB_PEER_IN_H
#define HB_PEER_IN_H

#include <event2/util.h>

struct config;
struct event_base;
struct peer_in;

/* priority is the libevent priority of every event of the inbound side. */
struct peer_in *peer_in_new(struct event_base *base, const struct config *cfg, int priority);
void peer_in_free(struct peer_in *in);
/* Accept on a listening fd; 0, or -1 logged. */
int peer_in_listen(struct peer_in *in, evutil_socket_t fd);
/* Names and timing from a reloaded config (cfg is not kept). */
void peer_in_configure(struct peer_in *in, const struct config *cfg);

#endif
