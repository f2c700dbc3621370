"""The gateway URL cache: one /gateway/bot call, reused, refetched only when stale; rate limits cool down."""

from __future__ import annotations

import pytest
from helpers import CONFIG, Harness

from qqproto import Fatal, ReconnectScheduled, State


def gateway_calls(h: Harness) -> int:
    return len(h.requests_to("/gateway/bot"))


def test_reconnect_after_4009_makes_no_gateway_call() -> None:
    h = Harness().connect()
    h.server_close(4009)
    assert h.conn.state is State.CONNECTED
    assert gateway_calls(h) == 1


@pytest.mark.parametrize("how", ["4009", "op7", "drop", "op9", "4900"])
def test_ten_reconnects_in_a_row_make_at_most_one_gateway_call(how: str) -> None:
    h = Harness().connect()
    for _ in range(10):
        h.advance(CONFIG.healthy_after)
        if how == "4009":
            h.server_close(4009)
        elif how == "op7":
            h.send(h.ws_id(), {"op": 7})
        elif how == "drop":
            h.deliver(h.ws_id(), b"")
        elif how == "op9":
            h.send(h.ws_id(), {"op": 9, "d": False})
        else:
            h.server_close(4900)
        h.advance_until(lambda: h.conn.state is State.CONNECTED)
    assert len(h.ws_peers()) == 11
    assert gateway_calls(h) <= 1
    assert h.conn.gateway_url_fetches == gateway_calls(h)


def test_rate_limited_gateway_call_cools_down_for_a_minute() -> None:
    h = Harness()
    h.gateway_answers = [(400, {"code": 100017, "message": "接口调用超过频率限制"})]
    h.start()
    (scheduled,) = h.of_type(ReconnectScheduled)
    assert scheduled.cause == "rate_limited"
    assert scheduled.delay >= CONFIG.cooldown
    h.advance(scheduled.delay)
    assert h.conn.state is State.CONNECTED
    assert gateway_calls(h) == 2


@pytest.mark.parametrize(
    "status, body",
    [
        (400, {"code": 100017, "message": "接口调用超过频率限制"}),
        (400, {"err_code": 40023001, "message": "limit"}),
        (400, {"code": 1, "message": "接口调用超过频率限制"}),
        (429, {"message": "too many requests"}),
    ],
)
def test_rate_limit_answers_are_recognised(status: int, body: dict[str, object]) -> None:
    h = Harness()
    h.gateway_answers = [(status, body)]
    h.start()
    assert h.of_type(ReconnectScheduled)[0].cause == "rate_limited"


def test_stale_url_is_refetched_and_a_rate_limit_keeps_the_cached_url() -> None:
    h = Harness().connect()
    h.refuse_connections = True
    h.deliver(h.ws_id(), b"")
    h.advance_until(lambda: h.conn.gateway_cache_invalidations == 1)
    # The refetch is rate limited: the cached URL stays in use while /gateway/bot cools down.
    h.refuse_connections = False
    h.gateway_answers = [(400, {"code": 100017, "message": "接口调用超过频率限制"})]
    h.advance_until(lambda: h.conn.state is State.CONNECTED)
    assert gateway_calls(h) == 2
    assert h.opens[-1].host == "gw.example.test"
    assert h.sent_ops(6)[-1]["d"]["session_id"] == "session-1"
    rate_limited = [s for s in h.of_type(ReconnectScheduled) if s.cause == "rate_limited"]
    assert rate_limited and rate_limited[0].delay < CONFIG.cooldown
    assert h.conn.health(h.now).gateway_url_cached


def test_stale_url_is_replaced_by_a_fresh_answer() -> None:
    h = Harness().connect()
    h.refuse_connections = True
    h.deliver(h.ws_id(), b"")
    h.advance_until(lambda: h.conn.gateway_cache_invalidations == 1)
    h.refuse_connections = False
    h.advance_until(lambda: h.conn.state is State.CONNECTED)
    assert gateway_calls(h) == 2
    assert h.conn.gateway_url_fetches <= 1 + h.conn.gateway_cache_invalidations


@pytest.mark.parametrize(
    "status, body",
    [
        (200, {"url": "https://not-a-websocket/"}),
        (200, {"url": 42}),
        (200, {}),
        (200, b"<html>oops</html>"),
        (200, [1, 2, 3]),
        (500, {"message": "internal"}),
        (502, b""),
    ],
)
def test_bad_gateway_answer_is_a_retryable_startup_error(status: int, body: object) -> None:
    h = Harness()
    h.gateway_answers = [(status, body)]
    h.start()
    (scheduled,) = h.of_type(ReconnectScheduled)
    assert scheduled.cause == "gateway_url"
    assert "/gateway/bot" in scheduled.reason
    h.advance(scheduled.delay)
    assert h.conn.state is State.CONNECTED
    assert h.of_type(Fatal) == []


def test_gateway_token_rejection_fetches_a_new_token() -> None:
    h = Harness()
    h.gateway_answers = [(401, {"code": 11244, "message": "token not exist or expire"})]
    h.start()
    assert h.conn.state is State.CONNECTED
    assert len(h.requests_to("/getAppAccessToken")) == 2


def test_session_start_limit_exhausted_waits_for_its_reset() -> None:
    h = Harness()
    h.gateway_default = (
        200,
        {
            "url": "wss://gw.example.test/websocket",
            "shards": 1,
            "session_start_limit": {"total": 1000, "remaining": 1, "reset_after": 3_600_000, "max_concurrency": 1},
        },
    )
    reset_at = h.now + 3600  # /gateway/bot answers at once: the budget comes back an hour from now
    h.connect()
    h.send(h.ws_id(), {"op": 9, "d": False})
    h.advance(max(CONFIG.invalid_session_delay))
    limit_waits = [s for s in h.of_type(ReconnectScheduled) if s.cause == "session_limit"]
    assert limit_waits and limit_waits[0].delay > 3500
    # The one identify left was spent on the first session: the next waits for the reset, and not longer.
    h.advance(reset_at - h.now - 0.01)
    assert len(h.sent_ops(2)) == 1
    h.advance(0.02)
    assert len(h.sent_ops(2)) == 2


def test_identifies_are_spaced_by_max_concurrency() -> None:
    h = Harness().connect()
    first = h.now
    h.send(h.ws_id(), {"op": 9, "d": False})
    h.advance_until(lambda: len(h.sent_ops(2)) == 2)
    assert h.now - first >= 5.0
