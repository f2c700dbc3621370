"""Heartbeats at Hello's interval x ratio, ACK tracking, zombie detection and late timers."""

from __future__ import annotations

import pytest
from helpers import CONFIG, HELLO_MS, Harness

from qqproto import HeartbeatAcked, HeartbeatSent, ReconnectScheduled, State, TimerLate

INTERVAL = HELLO_MS / 1000 * CONFIG.heartbeat_ratio


def test_heartbeat_every_hello_interval_times_ratio_carrying_last_seq() -> None:
    h = Harness().connect()
    hello_at = h.now
    assert h.conn.next_timer() == pytest.approx(hello_at + INTERVAL)
    h.advance(INTERVAL - 0.001)
    assert h.sent_ops(1) == []
    h.advance(0.001)
    assert h.sent_ops(1) == [{"op": 1, "d": 1}]  # READY carried s=1
    h.dispatch()
    h.dispatch()
    h.advance(INTERVAL)
    assert h.sent_ops(1)[-1] == {"op": 1, "d": 3}
    assert [a.seq for a in h.of_type(HeartbeatSent)] == [1, 3]


def test_heartbeat_carries_null_before_any_sequence() -> None:
    h = Harness()
    h.auto_ready = False
    h.hello_ms = 10000
    h.start()
    h.advance(10 * CONFIG.heartbeat_ratio)
    assert h.sent_ops(1) == [{"op": 1, "d": None}]


def test_heartbeat_interval_follows_hello() -> None:
    h = Harness()
    h.hello_ms = 10000
    h.connect()
    h.advance(60)
    assert len(h.sent_ops(1)) == int(60 // (10 * CONFIG.heartbeat_ratio))


def test_heartbeat_ack_reports_latency() -> None:
    h = Harness()
    h.auto_ack = False
    h.connect()
    h.advance(INTERVAL)
    h.now += 0.25
    h.send(h.ws_id(), {"op": 11})
    assert h.of_type(HeartbeatAcked) == [HeartbeatAcked(pytest.approx(0.25))]
    assert h.conn.health(h.now).heartbeat_latency == pytest.approx(0.25)


def test_missing_heartbeat_ack_closes_the_zombie_socket_and_resumes() -> None:
    h = Harness().connect()
    zombie = h.ws_id()
    h.auto_ack = False
    h.advance(INTERVAL)  # beat 1 goes unanswered
    assert h.conn.state is State.CONNECTED
    h.auto_ack = True
    h.advance(INTERVAL)  # beat 2 is due with beat 1 unacknowledged
    assert zombie in h.closed
    assert h.peers[zombie].close_code not in (None, 1000)  # type: ignore[union-attr]
    scheduled = h.of_type(ReconnectScheduled)
    assert scheduled[-1].cause == "zombie" and scheduled[-1].resume and scheduled[-1].delay == 0
    assert h.sent_ops(6)[-1]["d"]["session_id"] == "session-1"
    assert h.conn.state is State.CONNECTED


def test_late_timer_reports_timer_late_and_beats_at_once() -> None:
    h = Harness().connect()
    h.jump(INTERVAL + 30)
    (late,) = h.of_type(TimerLate)
    assert late.lag == pytest.approx(30)
    assert len(h.sent_ops(1)) == 1
    assert h.conn.next_timer() == pytest.approx(h.now + INTERVAL)
    assert h.conn.health(h.now).timer_late_count == 1


def test_late_timer_gives_an_unacknowledged_beat_one_more_interval() -> None:
    h = Harness().connect()
    ws = h.ws_id()
    h.auto_ack = False
    h.advance(INTERVAL)  # beat 1, no ACK yet: it may be unread behind a blocked loop
    h.jump(INTERVAL + 20)
    assert ws not in h.closed
    assert len(h.sent_ops(1)) == 2
    h.send(ws, {"op": 11})
    h.auto_ack = True
    h.advance(INTERVAL * 3)
    assert ws not in h.closed
    assert h.conn.state is State.CONNECTED


def test_platform_heartbeat_request_is_answered_at_once() -> None:
    h = Harness().connect()
    h.send(h.ws_id(), {"op": 1})
    assert h.sent_ops(1) == [{"op": 1, "d": 1}]


def test_heartbeat_spacing_never_exceeds_the_interval_while_connected() -> None:
    h = Harness().connect()
    connected_at = h.now
    for _ in range(20):
        h.advance(INTERVAL * 4.5)
        h.dispatch()
    times = [connected_at, *h.ws_peers()[0].beat_times]
    assert len(times) > 80
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert gaps and max(gaps) <= INTERVAL + 1e-9


def test_a_timer_overdue_when_input_arrives_goes_first() -> None:
    # The loop was blocked past a heartbeat and the platform closed the socket meanwhile; the
    # transport hands over the close before it gets round to the timer.
    h = Harness().connect()
    ws = h.ws_id()
    h.now += INTERVAL + 5
    h.server_close(4009)
    kinds = [type(a).__name__ for a in h.notices]
    assert kinds.index("TimerLate") < kinds.index("ReconnectScheduled")
    assert h.of_type(TimerLate)[0].lag == pytest.approx(5)
    assert ws in h.closed


def test_connected_for_stops_counting_once_closed() -> None:
    h = Harness().connect()
    h.advance(10)
    h.conn.close(h.now)
    h.pump()
    h.advance(10)
    health = h.conn.health(h.now)
    assert health.state == "closed" and health.connected_for is None
