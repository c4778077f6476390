/*
 * peer_net.c - socket options and timeval helpers shared by the outbound
 * links (peer.c) and the inbound connections (peer_in.c).
 */

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <errno.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "peer_net.h"

#define PEER_KEEPALIVE_CNT 3

void
peer_net_sockopts(evutil_socket_t fd, uint32_t timeout_ms)
{
	int on = 1, idle, cnt = PEER_KEEPALIVE_CNT;
	unsigned int ut = timeout_ms;

	idle = (int)(timeout_ms / 1000 / (PEER_KEEPALIVE_CNT + 1));
	if (idle < 1)
		idle = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
#ifdef TCP_KEEPIDLE
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
#endif
#ifdef TCP_KEEPINTVL
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &idle, sizeof(idle));
#endif
#ifdef TCP_KEEPCNT
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
#endif
#ifdef TCP_USER_TIMEOUT
	(void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof(ut));
#endif
	(void)cnt;
	(void)ut;
}

void
peer_net_tv_ms(struct timeval *tv, uint64_t ms)
{
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
}

void
peer_net_tv_ns(struct timeval *tv, uint64_t ns)
{
	tv->tv_sec = (time_t)(ns / 1000000000ull);
	tv->tv_usec = (suseconds_t)(ns % 1000000000ull / 1000);
}

int
peer_net_write(struct bufferevent *bev, const char *buf, size_t n)
{
	evutil_socket_t fd = bufferevent_getfd(bev);
	ssize_t w = -1;

	if (fd >= 0 && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		w = send(fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (w == (ssize_t)n)
		return 0;
	if (w < 0)
		w = 0;	/* not connected yet, full, or failing: the bufferevent says */
	return bufferevent_write(bev, buf + w, n - (size_t)w);
}
