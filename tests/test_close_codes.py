"""Every close code of docs/protocol.md §5, table-driven: resume, identify, refresh the token, or stop."""

from __future__ import annotations

import pytest
from helpers import CONFIG, Harness

from qqproto import Fatal, ReconnectScheduled, State

RESUME, COOLDOWN, IDENTIFY, TOKEN, FATAL = "resume", "resume after cooldown", "identify", "token", "fatal"

# What docs/protocol.md §5.1, §5.2 and §5.3 ask for, written out independently of the core's table.
EXPECTED: dict[int, str] = {
    4000: RESUME,
    4001: FATAL,
    4002: FATAL,
    4003: IDENTIFY,
    4004: TOKEN,
    4005: IDENTIFY,
    4006: IDENTIFY,
    4007: IDENTIFY,
    4008: COOLDOWN,
    4009: RESUME,
    4010: FATAL,
    4011: FATAL,
    4012: FATAL,
    4013: FATAL,
    4014: FATAL,
    **dict.fromkeys(range(4900, 4914), IDENTIFY),
    4914: FATAL,
    4915: FATAL,
    # Codes no source documents are unknown: identify.
    4015: IDENTIFY,
    4016: IDENTIFY,
    4500: IDENTIFY,
    4916: IDENTIFY,
    # WebSocket-level codes are transport drops: resume.
    1000: RESUME,
    1001: RESUME,
    1011: RESUME,
}


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_close_code_table(code: int) -> None:
    h = Harness().connect()
    h.dispatch()
    h.server_close(code, "bye")
    expected = EXPECTED[code]

    if expected == FATAL:
        (fatal,) = h.of_type(Fatal)
        assert fatal.close_code == code
        assert str(code) in fatal.reason and len(fatal.reason) > 40
        assert h.conn.state is State.FATAL
        assert h.conn.next_timer() is None
        assert set(h.peers) <= h.closed
        h.advance(3600)
        assert len(h.ws_peers()) == 1
        return

    (scheduled,) = h.of_type(ReconnectScheduled)
    assert scheduled.cause == f"close_{code}"
    if expected == COOLDOWN:
        assert scheduled.delay >= CONFIG.cooldown
    if expected == RESUME:
        assert scheduled.delay == 0
    h.advance(CONFIG.cooldown + CONFIG.backoff_cap)
    assert len(h.ws_peers()) == 2
    identifies, resumes = h.sent_ops(2), h.sent_ops(6)
    if expected == IDENTIFY:
        assert not scheduled.resume
        assert len(identifies) == 2 and resumes == []
    else:
        assert scheduled.resume
        assert len(identifies) == 1
        assert [r["d"]["seq"] for r in resumes] == [2]
    token_calls = len(h.requests_to("/getAppAccessToken"))
    assert token_calls == (2 if expected == TOKEN else 1)
    assert h.conn.state is State.CONNECTED


@pytest.mark.parametrize("how", ["eof", "socket_failed"])
def test_drop_without_close_code_resumes_at_once(how: str) -> None:
    h = Harness().connect()
    ws = h.ws_id()
    if how == "eof":
        h.deliver(ws, b"")
    else:
        h.conn.socket_failed(ws, "connection reset by peer", h.now)
        h.pump()
    (scheduled,) = h.of_type(ReconnectScheduled)
    assert (scheduled.cause, scheduled.resume, scheduled.delay) == ("connection_lost", True, 0)
    assert h.sent_ops(6)[0]["d"]["session_id"] == "session-1"


def test_resume_that_keeps_failing_falls_back_to_identify() -> None:
    h = Harness().connect()
    h.auto_ready = False
    for attempt in range(1, CONFIG.resume_failure_limit + 1):
        h.server_close(4009)
        h.advance_until(lambda: len(h.sent_ops(6)) == attempt)
    h.auto_ready = True
    h.server_close(4009)
    h.advance_until(lambda: h.conn.state is State.CONNECTED)
    assert len(h.sent_ops(6)) == CONFIG.resume_failure_limit
    assert len(h.sent_ops(2)) == 2
    assert h.conn.session_id == "session-2"


def test_op7_closes_without_1000_and_resumes_at_once() -> None:
    h = Harness().connect()
    old = h.ws_id()
    h.send(old, {"op": 7})
    assert old in h.closed
    assert h.peers[old].close_code not in (None, 1000)  # type: ignore[union-attr]
    (scheduled,) = h.of_type(ReconnectScheduled)
    assert (scheduled.cause, scheduled.resume, scheduled.delay) == ("reconnect_request", True, 0)
    assert len(h.sent_ops(6)) == 1


@pytest.mark.parametrize("d, resumes", [(True, True), (False, False), (None, False)])
def test_op9_resumes_only_when_d_is_true_after_a_short_random_delay(d: bool | None, resumes: bool) -> None:
    h = Harness().connect()
    h.send(h.ws_id(), {"op": 9, "d": d})
    (scheduled,) = h.of_type(ReconnectScheduled)
    low, high = CONFIG.invalid_session_delay
    assert scheduled.cause == "invalid_session"
    assert scheduled.resume is resumes
    assert low <= scheduled.delay <= high
    h.advance(high)
    assert len(h.sent_ops(6)) == (1 if resumes else 0)
    assert len(h.sent_ops(2)) == (1 if resumes else 2)


def test_repeated_4004_with_fresh_tokens_is_fatal_with_advice() -> None:
    h = Harness().connect()
    h.auto_ready = False
    h.server_close(4004)
    h.advance_until(lambda: len(h.sent_ops(6)) == 1)
    h.server_close(4004)
    (fatal,) = h.of_type(Fatal)
    assert fatal.close_code == 4004
    assert "client_secret" in fatal.reason
    assert len(h.requests_to("/getAppAccessToken")) == 2
