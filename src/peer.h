/*
 * peer.h - heartbeat links (interface.md section 5): one outbound TCP link
 * per configured peer (HELLO/WELCOME, HB/ACK, reconnect with backoff, the
 * liveness state machine of liveness.h, peer-up/suspect/down events) and the
 * inbound side (answer every HB at once; close on garbage).
 */
#ifndef HB_PEER_H
#define HB_PEER_H

#include <stdint.h>

#include <event2/util.h>

#include "liveness.h"
#include "status.h"

struct config;
struct event_base;
struct peers;


/*
 * Links for cfg's peers; they connect at once. priority is the libevent
 * priority of every peer event and bufferevent. cfg is not kept. NULL on
 * failure (logged).
 */
struct peers *peers_new(struct event_base *base, const struct config *cfg, int priority);
void peers_free(struct peers *ps);
/* Accept inbound heartbeats on a listening fd (from daemon_listen). */
int peers_listen(struct peers *ps, evutil_socket_t fd);
/*
 * The heartbeat tick: send HB (with our lag_us) on every connected link,
 * then run the liveness checks. lag_ns is this tick's lateness and missed
 * the ticks the timer missed before it (both go out in the HBs); when our own
 * stall explains missing ACKs, deadlines are extended and msg=local-stall is
 * logged instead of a false peer-down.
 */
void peers_tick(struct peers *ps, uint64_t now, uint64_t lag_ns, uint64_t missed);
/* Reload: add new peers, drop removed ones, keep the rest; new timing. */
void peers_reconfigure(struct peers *ps, const struct config *cfg);
unsigned peers_count(const struct peers *ps);
unsigned peers_up(const struct peers *ps);
void peers_foreach(const struct peers *ps,
    void (*fn)(const struct peer_info *pi, void *arg), void *arg);

#endif
