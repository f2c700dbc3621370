"""Platform instructions are no storms: op 7 and 4009 to a live session never earn the long cooldown."""

from __future__ import annotations

from helpers import CONFIG, Harness

from qqproto import ReconnectScheduled, State

# ---------------------------------------------------------------- the long cooldown


def delays(h: Harness) -> list[float]:
    """The delay of each reconnect after a lost socket (not the waits for the session start budget)."""
    return [s.delay for s in h.of_type(ReconnectScheduled) if s.cause != "session_limit"]


def test_op7_five_times_within_a_minute_is_no_storm() -> None:
    h = Harness().connect()
    started = h.now
    for _ in range(5):
        h.advance_until(lambda: h.conn.state is State.CONNECTED)
        h.send(h.ws_id(), {"op": 7})
    h.advance_until(lambda: h.conn.state is State.CONNECTED)
    assert h.now - started < 60
    assert len(delays(h)) == 5 and max(delays(h)) < CONFIG.cooldown
    assert len(h.sent_ops(6)) == 5 and len(h.sent_ops(2)) == 1


def test_4009_right_after_resumed_is_no_storm() -> None:
    h = Harness().connect()
    for _ in range(CONFIG.quick_disconnect_limit + 3):
        h.advance_until(lambda: h.conn.state is State.CONNECTED)
        h.server_close(4009)  # the moment RESUMED arrived
    assert max(delays(h)) < CONFIG.cooldown


def test_a_drop_without_a_word_after_resumed_still_counts() -> None:
    h = Harness().connect()
    for _ in range(CONFIG.quick_disconnect_limit + 1):
        h.advance_until(lambda: h.conn.state is State.CONNECTED)
        h.deliver(h.ws_id(), b"")
    assert delays(h)[-1] >= CONFIG.cooldown


def test_a_refused_identify_five_times_cools_down() -> None:
    h = Harness()
    h.auto_ready = False
    h.start()
    for identifies in range(1, 6):
        h.advance_until(lambda: len(h.sent_ops(2)) == identifies, limit=4000)
        h.send(h.ws_id(), {"op": 9, "d": False})
    assert max(delays(h)[: CONFIG.quick_disconnect_limit - 1]) < CONFIG.cooldown
    assert min(delays(h)[CONFIG.quick_disconnect_limit - 1 :]) >= CONFIG.cooldown


def test_4009_while_resuming_counts_for_no_session_was_let_in() -> None:
    h = Harness().connect()
    h.auto_ready = False
    for resumes in range(1, CONFIG.quick_disconnect_limit + 1):
        h.server_close(4009)
        h.advance_until(lambda: len(h.sent_ops(6)) == resumes, limit=4000)
    h.server_close(4009)
    assert delays(h)[-1] >= CONFIG.cooldown
