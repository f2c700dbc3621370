"""The access token: string or number expires_in, refresh ahead of expiry, bad credentials are fatal."""

from __future__ import annotations

import pytest
from helpers import CONFIG, Harness

from qqproto import Fatal, ReconnectScheduled, State


def token_calls(h: Harness) -> int:
    return len(h.requests_to("/getAppAccessToken"))


@pytest.mark.parametrize("expires_in", ["7200", 7200, " 7200 ", 7200.0])
def test_expires_in_may_be_a_string_or_a_number(expires_in: object) -> None:
    h = Harness()
    h.token_default = (200, {"access_token": "t", "expires_in": expires_in})
    h.connect()
    assert h.conn.health(h.now).token_expires_in == pytest.approx(7200)


def test_token_is_refreshed_ahead_of_expiry_without_disturbing_the_session() -> None:
    h = Harness().connect()
    start = h.now
    h.token_default = (200, {"access_token": "tok-2", "expires_in": "7200"})
    h.advance(7200 - CONFIG.token_refresh_margin - 1)
    assert token_calls(h) == 1
    h.advance(1)
    assert token_calls(h) == 2
    assert h.conn.state is State.CONNECTED
    assert len(h.ws_peers()) == 1
    h.advance(7200)
    assert token_calls(h) == 3
    # A reconnect after the refresh uses the new token.
    h.server_close(4009)
    assert h.sent_ops(6)[-1]["d"]["token"] == "QQBot tok-2"
    assert h.now - start > 7200


def test_short_lived_token_is_refreshed_halfway() -> None:
    h = Harness()
    h.token_default = (200, {"access_token": "t", "expires_in": "60"})
    h.connect()
    h.advance(29.9)
    assert token_calls(h) == 1
    h.advance(0.2)
    assert token_calls(h) == 2


def test_expired_token_is_fetched_again_before_reconnecting() -> None:
    h = Harness()
    h.token_answers = [(200, {"access_token": "old", "expires_in": "100"})]
    h.connect()
    h.answer_http = False  # the background refresh never gets an answer
    h.advance(100)
    h.answer_http = True
    h.server_close(4009)
    h.advance_until(lambda: h.conn.state is State.CONNECTED)
    assert h.sent_ops(6)[-1]["d"]["token"] != "QQBot old"


@pytest.mark.parametrize(
    "status, body",
    [
        (401, {"code": 100016, "message": "invalid appid or secret"}),
        (200, {"code": 100016, "message": "invalid appid or secret"}),
        (400, {"code": 11251, "message": "appid invalid"}),
        (403, {"message": "forbidden"}),
    ],
)
def test_bad_credentials_are_fatal_with_a_message_that_says_what_to_fix(status: int, body: object) -> None:
    h = Harness()
    h.token_answers = [(status, body)]
    h.start()
    (fatal,) = h.of_type(Fatal)
    assert "app_id and client_secret" in fatal.reason
    assert fatal.close_code is None
    assert h.conn.state is State.FATAL


@pytest.mark.parametrize(
    "status, body",
    [
        (503, {"message": "unavailable"}),
        (500, b""),
        (200, {"access_token": "", "expires_in": "7200"}),
        (200, {"access_token": "t", "expires_in": "soon"}),
        (200, {"access_token": "t", "expires_in": -5}),
        (200, {"access_token": "t", "expires_in": True}),
        (200, {"access_token": "t", "expires_in": 1e400}),
        (200, b"not json"),
    ],
)
def test_token_endpoint_failures_are_retried_with_backoff(status: int, body: object) -> None:
    h = Harness()
    h.token_answers = [(status, body), (status, body)]
    h.start()
    scheduled = h.of_type(ReconnectScheduled)
    assert scheduled and scheduled[0].cause == "token"
    h.advance_until(lambda: h.conn.state is State.CONNECTED)
    assert token_calls(h) == 3
    assert h.of_type(Fatal) == []


def test_failed_background_refresh_retries_while_the_token_lasts_then_stops() -> None:
    h = Harness().connect()
    h.token_default = (503, {"message": "unavailable"})
    h.advance(7200 + 3600)
    calls = token_calls(h)
    assert 3 <= calls <= 15
    assert h.conn.state is State.CONNECTED


def test_access_token_shows_the_held_token_until_it_expires() -> None:
    h = Harness()
    assert h.conn.access_token is None
    h.token_answers = [(200, {"access_token": "shared", "expires_in": "100"})]
    h.connect()
    assert h.conn.access_token == "shared"
    assert "shared" not in repr(h.conn)
    h.answer_http = False  # the refresh never gets an answer, so the token runs out
    h.jump(101)
    assert h.conn.access_token is None
