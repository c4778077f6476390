/*
 * liveness.h - the pure logic of a peer link: the state machine
 * (connecting, up, suspect, down), RTT and the local-stall allowance.
 * Every function takes the current time, so tests drive it with a fake
 * clock; peer.c does the I/O.
 */
#ifndef HB_LIVENESS_H
#define HB_LIVENESS_H

#include <stdint.h>

enum peer_state { PEER_CONNECTING, PEER_UP, PEER_SUSPECT, PEER_DOWN };

/* A state change to report (peer-up, peer-suspect, peer-down). */
enum liveness_event { LV_NONE, LV_UP, LV_SUSPECT, LV_DOWN };

#define LIVENESS_RING 8		/* send times remembered for unacked HBs */

struct liveness {
	enum peer_state state;
	uint64_t interval_ns;
	uint64_t timeout_ns;
	uint64_t since_ns;	/* start of the current wait for an ACK */
	uint64_t last_ack_ns;	/* 0 = never */
	uint64_t unacked_ns;	/* send time of the oldest unacked HB, 0 = none */
	uint64_t unacked_seq;
	uint64_t last_seq;	/* last HB sent */
	uint64_t rtt_ns;	/* last */
	uint64_t srtt_ns;	/* smoothed, 1/8 gain as TCP */
	const char *reason;	/* why it went down: "timeout", "connection-lost", ... */

	/* private to liveness.c */
	int acked;		/* an ACK arrived: last_ack_ns is valid */
	int has_rtt;		/* rtt_ns and srtt_ns hold a sample */
	int outstanding;	/* unacked_seq..last_seq wait for ACKs */
	uint64_t sent_seq[LIVENESS_RING];	/* recent HBs: seq and send time */
	uint64_t sent_ns[LIVENESS_RING];
};

const char *liveness_state_name(enum peer_state s);

void liveness_init(struct liveness *lv, uint64_t now, uint64_t interval_ns, uint64_t timeout_ns);
void liveness_set_timing(struct liveness *lv, uint64_t interval_ns, uint64_t timeout_ns);
/* Handshake done on a new connection: the wait for ACKs starts now. */
void liveness_on_connected(struct liveness *lv, uint64_t now);
void liveness_on_sent(struct liveness *lv, uint64_t seq, uint64_t now);
/*
 * An ACK for seq sent at t_sent (echoed). Stale or unknown seqs are ignored.
 * An RTT sample is taken only when t_sent is the send time recorded for seq,
 * so a peer echoing garbage cannot poison it.
 */
enum liveness_event liveness_on_ack(struct liveness *lv, uint64_t seq, uint64_t t_sent, uint64_t now);
/* The connection failed or closed; reason is a static string. */
enum liveness_event liveness_on_lost(struct liveness *lv, uint64_t now, const char *reason);
/* Time-driven transitions: suspect after an ACK is one interval overdue,
 * down after timeout_ns without an ACK. */
enum liveness_event liveness_check(struct liveness *lv, uint64_t now);
/*
 * Our own loop stalled for stall_ns (we could neither send nor read): push
 * every deadline back by that much so our stall is not blamed on the peer.
 * Returns 1 when this kept the link from a transition at now.
 */
int liveness_extend(struct liveness *lv, uint64_t stall_ns, uint64_t now);

#endif
