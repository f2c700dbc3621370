"""Every wait has a deadline: connect, HTTP answer, Hello, READY/RESUMED, and the closing handshake."""

from __future__ import annotations

import pytest
from helpers import CONFIG, Harness

from qqproto import ReconnectScheduled, State


@pytest.mark.parametrize(
    "stall, deadline, words",
    [
        ("hold_opens", CONFIG.connect_timeout, "connecting for the token request timed out"),
        ("answer_http", CONFIG.http_timeout, "no answer to the token request"),
        ("send_hello", CONFIG.hello_timeout, "no Hello"),
        ("auto_ready", CONFIG.ready_timeout, "no READY"),
    ],
)
def test_every_wait_on_the_way_to_a_session_has_a_deadline(stall: str, deadline: float, words: str) -> None:
    h = Harness()
    setattr(h, stall, stall == "hold_opens")
    h.start()
    stalled = h.opens[-1].sock_id
    h.advance(deadline - 0.01)
    assert h.of_type(ReconnectScheduled) == []
    assert stalled not in h.closed
    h.advance(0.01)
    (scheduled,) = h.of_type(ReconnectScheduled)
    assert words in scheduled.reason
    assert f"after {deadline:g}s" in scheduled.reason
    # The stalled socket is closed, and after the backoff the client tries again on a new one.
    assert stalled in h.closed
    h.advance(scheduled.delay)
    assert h.opens[-1].sock_id != stalled


def test_resume_has_a_deadline_too() -> None:
    h = Harness().connect()
    h.auto_ready = False
    h.server_close(4009)
    h.advance(CONFIG.ready_timeout)
    assert "no RESUMED" in h.of_type(ReconnectScheduled)[-1].reason


def test_late_timer_extends_a_deadline_once_so_unread_answers_can_arrive() -> None:
    h = Harness()
    h.send_hello = False
    h.start()
    ws = h.ws_id()
    h.jump(CONFIG.hello_timeout + 5)  # the host loop was blocked past the Hello deadline
    assert ws not in h.closed
    h.send(ws, {"op": 10, "d": {"heartbeat_interval": 40000}})
    assert h.conn.state is State.CONNECTED


def test_a_deadline_extended_once_still_expires() -> None:
    h = Harness()
    h.send_hello = False
    h.start()
    ws = h.ws_id()
    h.jump(CONFIG.hello_timeout + 5)
    h.advance(CONFIG.late_timer_threshold)
    assert ws in h.closed
