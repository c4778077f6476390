/*
 * liveness.c - the pure logic of one peer link: its state, RTT, the
 * allowance for our own stalls. peer.c feeds it events with the current
 * time and logs the transitions it returns (reconnect delays are backoff.c's).
 *
 *	connecting, suspect, down  --ACK-->  up
 *	up  --oldest unacked HB sent more than one interval ago-->  suspect
 *	up, suspect  --no ACK for timeout_ns, or connection lost-->  down
 *	connecting  --timeout_ns after the start or the last handshake-->  down
 *
 * A down peer leaves that state only through an ACK; reconnecting alone
 * does not make it up. A connecting peer that fails to connect stays
 * connecting until peer_timeout after the last handshake (or the start),
 * then goes down, so a peer that never came up is reported once.
 *
 * Outstanding HBs are unacked_seq..last_seq. When an ACK covers some but
 * not all of them, the next one's send time comes from a small ring of
 * recent send times; if it has been overwritten (more than LIVENESS_RING
 * HBs unacked, i.e. the peer is long overdue anyway), the ACK's arrival
 * time stands in, which can only delay a suspect, never invent one.
 *
 * since_ns only moves forward and is set on every ACK, so since_ns >=
 * last_ack_ns always holds and the timeout runs from since_ns. Because of
 * that, liveness_extend shifts since_ns and the send times but leaves
 * last_ack_ns alone: it stays the true time of the last ACK, which PEERS
 * reports as an age.
 */

#include <stddef.h>
#include <string.h>

#include "liveness.h"

static const char *const liveness_state_names[] = {
	"connecting", "up", "suspect", "down"
};

const char *
liveness_state_name(enum peer_state s)
{
	if ((unsigned)s >= sizeof(liveness_state_names) /
	    sizeof(liveness_state_names[0]))
		return "unknown";
	return liveness_state_names[s];
}

static uint64_t
liveness_elapsed(uint64_t then, uint64_t now)
{
	return now > then ? now - then : 0;
}

/* then + d, but not past now (and never backwards). */
static uint64_t
liveness_shift(uint64_t then, uint64_t d, uint64_t now)
{
	if (then >= now)
		return then;
	return d >= now - then ? now : then + d;
}

static void
liveness_clear_sent(struct liveness *lv)
{
	lv->outstanding = 0;
	lv->unacked_ns = 0;
	memset(lv->sent_seq, 0, sizeof(lv->sent_seq));
	memset(lv->sent_ns, 0, sizeof(lv->sent_ns));
}

void
liveness_init(struct liveness *lv, uint64_t now, uint64_t interval_ns,
    uint64_t timeout_ns)
{
	memset(lv, 0, sizeof(*lv));
	lv->state = PEER_CONNECTING;
	lv->interval_ns = interval_ns;
	lv->timeout_ns = timeout_ns;
	lv->since_ns = now;
	lv->reason = NULL;
}

void
liveness_set_timing(struct liveness *lv, uint64_t interval_ns,
    uint64_t timeout_ns)
{
	lv->interval_ns = interval_ns;
	lv->timeout_ns = timeout_ns;
}

void
liveness_on_connected(struct liveness *lv, uint64_t now)
{
	lv->since_ns = now;
	liveness_clear_sent(lv);
}

void
liveness_on_sent(struct liveness *lv, uint64_t seq, uint64_t now)
{
	size_t slot = (size_t)(seq % LIVENESS_RING);

	lv->last_seq = seq;
	lv->sent_seq[slot] = seq;
	lv->sent_ns[slot] = now;
	if (!lv->outstanding) {
		lv->outstanding = 1;
		lv->unacked_ns = now;
		lv->unacked_seq = seq;
	}
}

enum liveness_event
liveness_on_ack(struct liveness *lv, uint64_t seq, uint64_t t_sent,
    uint64_t now)
{
	size_t slot = (size_t)(seq % LIVENESS_RING);
	int known = lv->sent_seq[slot] == seq;

	if (!lv->outstanding || seq > lv->last_seq || seq < lv->unacked_seq)
		return LV_NONE;		/* stale, duplicate or never sent */

	/* the peer answered seq: proof of life; but an RTT only from an echo
	 * that is the send time we recorded (a bad echo would poison it) */
	if (known && t_sent == lv->sent_ns[slot] && t_sent <= now) {
		lv->rtt_ns = now - t_sent;
		if (!lv->has_rtt)
			lv->srtt_ns = lv->rtt_ns;
		else
			lv->srtt_ns = lv->srtt_ns - lv->srtt_ns / 8 +
			    lv->rtt_ns / 8;
		lv->has_rtt = 1;
	}
	lv->acked = 1;
	lv->last_ack_ns = now;
	if (now > lv->since_ns)
		lv->since_ns = now;

	if (seq == lv->last_seq) {
		lv->outstanding = 0;
		lv->unacked_ns = 0;
		lv->unacked_seq = seq + 1;
	} else {
		lv->unacked_seq = seq + 1;
		slot = (size_t)(lv->unacked_seq % LIVENESS_RING);
		lv->unacked_ns = lv->sent_seq[slot] == lv->unacked_seq ?
		    lv->sent_ns[slot] : now;
	}

	if (lv->state == PEER_UP)
		return LV_NONE;
	lv->state = PEER_UP;
	lv->reason = NULL;
	return LV_UP;
}

enum liveness_event
liveness_on_lost(struct liveness *lv, uint64_t now, const char *reason)
{
	liveness_clear_sent(lv);
	if (lv->state != PEER_UP && lv->state != PEER_SUSPECT)
		return LV_NONE;
	lv->state = PEER_DOWN;
	lv->reason = reason != NULL ? reason : "connection-lost";
	if (now > lv->since_ns)
		lv->since_ns = now;
	return LV_DOWN;
}

/* The transition liveness_check would make at now, without making it. */
static enum liveness_event
liveness_eval(const struct liveness *lv, uint64_t now)
{
	switch (lv->state) {
	case PEER_CONNECTING:
		if (liveness_elapsed(lv->since_ns, now) >= lv->timeout_ns)
			return LV_DOWN;
		return LV_NONE;
	case PEER_UP:
	case PEER_SUSPECT:
		/* since_ns >= last_ack_ns: it is max(last_ack, since) */
		if (liveness_elapsed(lv->since_ns, now) >= lv->timeout_ns)
			return LV_DOWN;
		if (lv->state == PEER_UP && lv->outstanding &&
		    liveness_elapsed(lv->unacked_ns, now) > lv->interval_ns)
			return LV_SUSPECT;
		return LV_NONE;
	default:
		return LV_NONE;
	}
}

enum liveness_event
liveness_check(struct liveness *lv, uint64_t now)
{
	enum liveness_event ev = liveness_eval(lv, now);

	switch (ev) {
	case LV_DOWN:
		lv->state = PEER_DOWN;
		lv->reason = "timeout";
		if (now > lv->since_ns)
			lv->since_ns = now;
		break;
	case LV_SUSPECT:
		lv->state = PEER_SUSPECT;
		break;
	default:
		break;
	}
	return ev;
}

int
liveness_extend(struct liveness *lv, uint64_t stall_ns, uint64_t now)
{
	enum liveness_event before, after;
	size_t i;

	before = liveness_eval(lv, now);
	lv->since_ns = liveness_shift(lv->since_ns, stall_ns, now);
	if (lv->outstanding)
		lv->unacked_ns = liveness_shift(lv->unacked_ns, stall_ns, now);
	for (i = 0; i < LIVENESS_RING; i++)
		lv->sent_ns[i] = liveness_shift(lv->sent_ns[i], stall_ns, now);
	after = liveness_eval(lv, now);
	return before != LV_NONE && after != before;
}
