/*
 * peer_net.h - private to the peer modules (peer.c, peer_in.c): the limits
 * of the peer protocol's lines and buffers, and the socket options both
 * directions of a heartbeat link use.
 */
#ifndef HB_PEER_NET_H
#define HB_PEER_NET_H

#include <stdint.h>

#include <event2/util.h>

#define PEER_LINE_MAX 1024		/* longest peer-protocol line */
#define PEER_READ_HIGHWAT (2 * PEER_LINE_MAX)
#define PEER_OUT_MAX (64 * 1024)	/* output queued for a peer not reading */
#define PEER_MSG_MAX 256		/* one formatted protocol line */

struct bufferevent;
struct timeval;

/*
 * Write one line: straight to the socket when nothing is queued before it
 * (a heartbeat or an ACK leaves now, not at the loop's next turn), the
 * rest (or all of it) through the bufferevent. Returns 0 or -1.
 */
int peer_net_write(struct bufferevent *bev, const char *buf, size_t n);

/*
 * TCP_NODELAY for the small lines, and keepalive plus a user timeout so a
 * dead path is noticed by the kernel within about timeout_ms too.
 */
void peer_net_sockopts(evutil_socket_t fd, uint32_t timeout_ms);
void peer_net_tv_ms(struct timeval *tv, uint64_t ms);
void peer_net_tv_ns(struct timeval *tv, uint64_t ns);

#endif
