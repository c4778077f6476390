/* check_liveness.c - the peer state machine, on a fake clock. */
#include "check_common.h"
#include "liveness.h"

Suite *liveness_suite(void);

#define MS 1000000ull		/* ns */
#define INTERVAL (1000 * MS)
#define TIMEOUT (3000 * MS)
#define T0 (5000 * MS)		/* the fake clock starts here */

/* A link at T0 whose first HB (seq 1, sent at T0) was acked at T0 + 2 ms. */
static void
link_up(struct liveness *lv)
{
	liveness_init(lv, T0 - 10 * MS, INTERVAL, TIMEOUT);
	liveness_on_connected(lv, T0 - MS);
	liveness_on_sent(lv, 1, T0);
	ck_assert_int_eq(liveness_on_ack(lv, 1, T0, T0 + 2 * MS), LV_UP);
}

START_TEST(test_a_new_link_is_connecting_until_its_first_ack)
{
	struct liveness lv;

	liveness_init(&lv, T0, INTERVAL, TIMEOUT);
	ck_assert_int_eq(lv.state, PEER_CONNECTING);
	ck_assert_uint_eq(lv.since_ns, T0);
	ck_assert_uint_eq(lv.last_ack_ns, 0);
	ck_assert_int_eq(liveness_check(&lv, T0 + TIMEOUT - 1), LV_NONE);
	liveness_on_connected(&lv, T0 + 10 * MS);
	liveness_on_sent(&lv, 1, T0 + 11 * MS);
	ck_assert_int_eq(lv.state, PEER_CONNECTING);
	ck_assert_uint_eq(lv.unacked_ns, T0 + 11 * MS);
	ck_assert_uint_eq(lv.unacked_seq, 1);
}
END_TEST

START_TEST(test_the_first_ack_brings_the_link_up_with_its_rtt)
{
	struct liveness lv;

	liveness_init(&lv, T0, INTERVAL, TIMEOUT);
	liveness_on_connected(&lv, T0);
	liveness_on_sent(&lv, 1, T0 + MS);
	ck_assert_int_eq(liveness_on_ack(&lv, 1, T0 + MS, T0 + 6 * MS), LV_UP);
	ck_assert_int_eq(lv.state, PEER_UP);
	ck_assert_uint_eq(lv.rtt_ns, 5 * MS);
	ck_assert_uint_eq(lv.srtt_ns, 5 * MS);
	ck_assert_uint_eq(lv.last_ack_ns, T0 + 6 * MS);
	ck_assert_uint_eq(lv.unacked_ns, 0);

	/* later samples are smoothed with a gain of 1/8 */
	liveness_on_sent(&lv, 2, T0 + 1000 * MS);
	ck_assert_int_eq(liveness_on_ack(&lv, 2, T0 + 1000 * MS, T0 + 1013 * MS),
	    LV_NONE);
	ck_assert_uint_eq(lv.rtt_ns, 13 * MS);
	ck_assert_uint_eq(lv.srtt_ns, 6 * MS);
	ck_assert_str_eq(liveness_state_name(lv.state), "up");
}
END_TEST

START_TEST(test_an_ack_with_a_wrong_echo_updates_state_but_not_rtt)
{
	struct liveness lv;

	link_up(&lv);
	liveness_on_sent(&lv, 2, T0 + INTERVAL);
	/* t=1 is not what was sent: now - 1 would be the machine's uptime */
	ck_assert_int_eq(liveness_on_ack(&lv, 2, 1, T0 + INTERVAL + MS), LV_NONE);
	ck_assert_uint_eq(lv.rtt_ns, 2 * MS);
	ck_assert_uint_eq(lv.last_ack_ns, T0 + INTERVAL + MS);
	ck_assert_int_eq(lv.state, PEER_UP);
}
END_TEST

START_TEST(test_an_ack_from_the_future_updates_state_but_not_rtt)
{
	struct liveness lv;

	link_up(&lv);
	liveness_on_sent(&lv, 2, T0 + INTERVAL);
	ck_assert_int_eq(liveness_on_ack(&lv, 2, UINT64_MAX, T0 + INTERVAL + MS),
	    LV_NONE);
	ck_assert_uint_eq(lv.rtt_ns, 2 * MS);
	ck_assert_uint_eq(lv.last_ack_ns, T0 + INTERVAL + MS);
}
END_TEST

START_TEST(test_an_ack_overdue_by_an_interval_makes_the_link_suspect_then_up)
{
	struct liveness lv;
	uint64_t sent = T0 + INTERVAL;

	link_up(&lv);
	liveness_on_sent(&lv, 2, sent);
	ck_assert_int_eq(liveness_check(&lv, sent + INTERVAL / 2), LV_NONE);
	ck_assert_int_eq(liveness_check(&lv, sent + INTERVAL), LV_NONE);
	ck_assert_int_eq(liveness_check(&lv, sent + INTERVAL + 1), LV_SUSPECT);
	ck_assert_int_eq(lv.state, PEER_SUSPECT);
	ck_assert_str_eq(liveness_state_name(lv.state), "suspect");
	/* reported once */
	ck_assert_int_eq(liveness_check(&lv, sent + INTERVAL + 2), LV_NONE);
	liveness_on_sent(&lv, 3, sent + INTERVAL);
	ck_assert_int_eq(liveness_on_ack(&lv, 2, sent, sent + INTERVAL + 100 * MS),
	    LV_UP);
	ck_assert_int_eq(lv.state, PEER_UP);
	ck_assert_uint_eq(lv.rtt_ns, INTERVAL + 100 * MS);
}
END_TEST

START_TEST(test_a_silent_peer_goes_down_at_the_timeout_and_not_before)
{
	struct liveness lv;
	uint64_t last_ack = T0 + 2 * MS, t, seq = 2;
	int suspects = 0;

	link_up(&lv);
	for (t = T0 + MS; t < last_ack + TIMEOUT; t += MS) {
		enum liveness_event ev;

		if ((t - T0) % INTERVAL == 0)
			liveness_on_sent(&lv, seq++, t);
		ev = liveness_check(&lv, t);
		ck_assert_msg(ev != LV_DOWN, "down at +%llu ms",
		    (unsigned long long)((t - last_ack) / MS));
		suspects += ev == LV_SUSPECT;
	}
	ck_assert_int_eq(suspects, 1);
	ck_assert_int_eq(liveness_check(&lv, last_ack + TIMEOUT), LV_DOWN);
	ck_assert_int_eq(lv.state, PEER_DOWN);
	ck_assert_str_eq(lv.reason, "timeout");
	ck_assert_int_eq(liveness_check(&lv, last_ack + 2 * TIMEOUT), LV_NONE);
	ck_assert_str_eq(liveness_state_name(lv.state), "down");
}
END_TEST

START_TEST(test_a_lost_connection_takes_the_link_down_until_an_ack)
{
	struct liveness lv;
	uint64_t t = T0 + 500 * MS;

	link_up(&lv);
	ck_assert_int_eq(liveness_on_lost(&lv, t, "connection-lost"), LV_DOWN);
	ck_assert_int_eq(lv.state, PEER_DOWN);
	ck_assert_str_eq(lv.reason, "connection-lost");
	ck_assert_int_eq(liveness_on_lost(&lv, t + MS, "connect-failed"), LV_NONE);
	ck_assert_str_eq(lv.reason, "connection-lost");

	/* reconnecting alone is not enough, and no event repeats */
	liveness_on_connected(&lv, t + 100 * MS);
	ck_assert_int_eq(lv.state, PEER_DOWN);
	ck_assert_int_eq(liveness_check(&lv, t + 10 * TIMEOUT), LV_NONE);
	liveness_on_sent(&lv, 2, t + 10 * TIMEOUT);
	ck_assert_int_eq(liveness_on_ack(&lv, 2, t + 10 * TIMEOUT,
	    t + 10 * TIMEOUT + MS), LV_UP);
	ck_assert_int_eq(lv.state, PEER_UP);
}
END_TEST

START_TEST(test_a_suspect_link_that_loses_its_connection_goes_down)
{
	struct liveness lv;

	link_up(&lv);
	liveness_on_sent(&lv, 2, T0 + INTERVAL);
	ck_assert_int_eq(liveness_check(&lv, T0 + 2 * INTERVAL + 1), LV_SUSPECT);
	ck_assert_int_eq(liveness_on_lost(&lv, T0 + 2 * INTERVAL + 2, NULL), LV_DOWN);
	ck_assert_str_eq(lv.reason, "connection-lost");
}
END_TEST

START_TEST(test_a_link_that_never_connects_goes_down_after_the_timeout)
{
	struct liveness lv;
	uint64_t t;

	liveness_init(&lv, T0, INTERVAL, TIMEOUT);
	/* connect attempts keep failing: that does not restart the wait */
	for (t = T0 + 100 * MS; t < T0 + TIMEOUT; t += 400 * MS) {
		ck_assert_int_eq(liveness_on_lost(&lv, t, "connect-failed"), LV_NONE);
		ck_assert_int_eq(lv.state, PEER_CONNECTING);
		ck_assert_int_eq(liveness_check(&lv, t), LV_NONE);
	}
	ck_assert_int_eq(liveness_check(&lv, T0 + TIMEOUT - 1), LV_NONE);
	ck_assert_int_eq(liveness_check(&lv, T0 + TIMEOUT), LV_DOWN);
	ck_assert_int_eq(lv.state, PEER_DOWN);
	ck_assert_str_eq(lv.reason, "timeout");
	ck_assert_int_eq(liveness_check(&lv, T0 + 2 * TIMEOUT), LV_NONE);
}
END_TEST

START_TEST(test_a_link_connected_without_acks_goes_down_after_the_timeout)
{
	struct liveness lv;

	liveness_init(&lv, T0, INTERVAL, TIMEOUT);
	liveness_on_connected(&lv, T0 + 2000 * MS);
	liveness_on_sent(&lv, 1, T0 + 2000 * MS);
	/* no suspect while connecting: there was never an ACK to be late */
	ck_assert_int_eq(liveness_check(&lv, T0 + 3500 * MS), LV_NONE);
	ck_assert_int_eq(liveness_check(&lv, T0 + 2000 * MS + TIMEOUT - 1), LV_NONE);
	ck_assert_int_eq(liveness_check(&lv, T0 + 2000 * MS + TIMEOUT), LV_DOWN);
}
END_TEST

START_TEST(test_stale_duplicate_and_unsent_acks_are_ignored)
{
	struct liveness lv;
	uint64_t ack_at;

	link_up(&lv);
	liveness_on_sent(&lv, 2, T0 + 1000 * MS);
	liveness_on_sent(&lv, 3, T0 + 2000 * MS);
	liveness_on_sent(&lv, 4, T0 + 3000 * MS);
	ck_assert_int_eq(liveness_on_ack(&lv, 3, T0 + 2000 * MS, T0 + 3001 * MS),
	    LV_NONE);
	ack_at = lv.last_ack_ns;
	ck_assert_uint_eq(ack_at, T0 + 3001 * MS);
	ck_assert_uint_eq(lv.unacked_seq, 4);

	ck_assert_int_eq(liveness_on_ack(&lv, 2, T0 + 1000 * MS, T0 + 3100 * MS),
	    LV_NONE);	/* older than the last acked */
	ck_assert_int_eq(liveness_on_ack(&lv, 3, T0 + 2000 * MS, T0 + 3100 * MS),
	    LV_NONE);	/* duplicate */
	ck_assert_int_eq(liveness_on_ack(&lv, 9, T0, T0 + 3100 * MS),
	    LV_NONE);	/* never sent */
	ck_assert_uint_eq(lv.last_ack_ns, ack_at);
	ck_assert_uint_eq(lv.rtt_ns, 1001 * MS);

	/* a late ACK cannot revive a link that went down */
	ck_assert_int_eq(liveness_on_lost(&lv, T0 + 3200 * MS, "connection-lost"),
	    LV_DOWN);
	ck_assert_int_eq(liveness_on_ack(&lv, 4, T0 + 3000 * MS, T0 + 3300 * MS),
	    LV_NONE);
	ck_assert_int_eq(lv.state, PEER_DOWN);
	ck_assert_uint_eq(lv.last_ack_ns, ack_at);
}
END_TEST

START_TEST(test_a_partial_ack_keeps_the_next_heartbeats_send_time)
{
	struct liveness lv;

	link_up(&lv);
	liveness_on_sent(&lv, 2, T0 + 1000 * MS);
	liveness_on_sent(&lv, 3, T0 + 2000 * MS);
	ck_assert_int_eq(liveness_on_ack(&lv, 2, T0 + 1000 * MS, T0 + 2100 * MS),
	    LV_NONE);
	ck_assert_uint_eq(lv.unacked_seq, 3);
	ck_assert_uint_eq(lv.unacked_ns, T0 + 2000 * MS);
	ck_assert_int_eq(liveness_check(&lv, T0 + 3000 * MS), LV_NONE);
	ck_assert_int_eq(liveness_check(&lv, T0 + 3000 * MS + 1), LV_SUSPECT);
}
END_TEST

START_TEST(test_extend_prevents_a_false_down_after_a_local_stall)
{
	struct liveness lv;
	uint64_t ack = T0 + 2 * MS, sent = T0 + 400 * MS, stall = 3000 * MS;
	uint64_t now = sent + stall;

	link_up(&lv);
	liveness_on_sent(&lv, 2, sent);
	/* the loop stalled from sent to now: without extend the peer is blamed */
	ck_assert_uint_ge(now - ack, TIMEOUT);
	ck_assert_int_eq(liveness_extend(&lv, stall, now), 1);
	ck_assert_int_eq(liveness_check(&lv, now), LV_NONE);
	ck_assert_int_eq(lv.state, PEER_UP);
	ck_assert_uint_eq(lv.last_ack_ns, ack);	/* still the true time */
	ck_assert_uint_le(lv.since_ns, now);
	ck_assert_uint_le(lv.unacked_ns, now);

	/* the answer that was stuck behind our stall arrives */
	ck_assert_int_eq(liveness_on_ack(&lv, 2, sent, now + MS), LV_NONE);
	ck_assert_int_eq(lv.state, PEER_UP);
}
END_TEST

START_TEST(test_extend_does_not_hide_a_peer_that_is_really_dead)
{
	struct liveness lv;
	uint64_t now = T0 + 1000 * MS;

	link_up(&lv);
	/* a huge stall moves deadlines to now, never past it */
	ck_assert_int_eq(liveness_extend(&lv, UINT64_MAX, now), 0);
	ck_assert_uint_eq(lv.since_ns, now);
	ck_assert_int_eq(liveness_check(&lv, now + TIMEOUT - 1), LV_NONE);
	ck_assert_int_eq(liveness_check(&lv, now + TIMEOUT), LV_DOWN);
}
END_TEST

START_TEST(test_extend_reports_only_transitions_it_prevented)
{
	struct liveness lv;

	link_up(&lv);
	/* nothing was due */
	ck_assert_int_eq(liveness_extend(&lv, 500 * MS, T0 + 1000 * MS), 0);
	/* a suspect was due, a short stall keeps it from firing */
	liveness_on_sent(&lv, 2, T0 + 1000 * MS);
	ck_assert_int_eq(liveness_extend(&lv, 600 * MS, T0 + 2100 * MS), 1);
	ck_assert_int_eq(liveness_check(&lv, T0 + 2100 * MS), LV_NONE);
	/* too short a stall to matter: the suspect still fires */
	ck_assert_int_eq(liveness_extend(&lv, 1 * MS, T0 + 2700 * MS), 0);
	ck_assert_int_eq(liveness_check(&lv, T0 + 2700 * MS), LV_SUSPECT);
}
END_TEST

START_TEST(test_set_timing_moves_the_deadlines)
{
	struct liveness lv;

	link_up(&lv);
	liveness_set_timing(&lv, 100 * MS, 300 * MS);
	ck_assert_uint_eq(lv.interval_ns, 100 * MS);
	ck_assert_uint_eq(lv.timeout_ns, 300 * MS);
	ck_assert_int_eq(liveness_check(&lv, T0 + 2 * MS + 300 * MS), LV_DOWN);
}
END_TEST

START_TEST(test_state_names_are_the_wire_names)
{
	ck_assert_str_eq(liveness_state_name(PEER_CONNECTING), "connecting");
	ck_assert_str_eq(liveness_state_name(PEER_UP), "up");
	ck_assert_str_eq(liveness_state_name(PEER_SUSPECT), "suspect");
	ck_assert_str_eq(liveness_state_name(PEER_DOWN), "down");
	ck_assert_str_eq(liveness_state_name((enum peer_state)42), "unknown");
}
END_TEST

Suite *
liveness_suite(void)
{
	Suite *s = suite_create("liveness");
	TCase *tc;

	tc = tcase_create("states");
	tcase_add_test(tc, test_a_new_link_is_connecting_until_its_first_ack);
	tcase_add_test(tc, test_the_first_ack_brings_the_link_up_with_its_rtt);
	tcase_add_test(tc, test_an_ack_from_the_future_updates_state_but_not_rtt);
	tcase_add_test(tc, test_an_ack_with_a_wrong_echo_updates_state_but_not_rtt);
	tcase_add_test(tc, test_an_ack_overdue_by_an_interval_makes_the_link_suspect_then_up);
	tcase_add_test(tc, test_a_silent_peer_goes_down_at_the_timeout_and_not_before);
	tcase_add_test(tc, test_a_lost_connection_takes_the_link_down_until_an_ack);
	tcase_add_test(tc, test_a_suspect_link_that_loses_its_connection_goes_down);
	tcase_add_test(tc, test_a_link_that_never_connects_goes_down_after_the_timeout);
	tcase_add_test(tc, test_a_link_connected_without_acks_goes_down_after_the_timeout);
	tcase_add_test(tc, test_stale_duplicate_and_unsent_acks_are_ignored);
	tcase_add_test(tc, test_a_partial_ack_keeps_the_next_heartbeats_send_time);
	tcase_add_test(tc, test_set_timing_moves_the_deadlines);
	tcase_add_test(tc, test_state_names_are_the_wire_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("stalls");
	tcase_add_test(tc, test_extend_prevents_a_false_down_after_a_local_stall);
	tcase_add_test(tc, test_extend_does_not_hide_a_peer_that_is_really_dead);
	tcase_add_test(tc, test_extend_reports_only_transitions_it_prevented);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(liveness_suite)
