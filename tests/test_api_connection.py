"""``QQApiConnection``: sends with no gateway, by the gateway's rules, through real HTTP bytes."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from helpers import CONFIG, TOKEN, Harness

from qqproto import (
    Fatal,
    GatewayConfig,
    LocalProtocolError,
    MessageFailed,
    MessageSent,
    OutgoingMessage,
    QQApiConnection,
    QQGatewayConnection,
    Scene,
    SendRetryScheduled,
    State,
)


class ApiHarness(Harness):
    """The scripted platform of ``helpers``, talking to a QQApiConnection."""

    def __init__(self, config: GatewayConfig = CONFIG, *, mode: str = "api") -> None:
        super().__init__(config)
        self.conn: QQApiConnection | QQGatewayConnection  # type: ignore[assignment]
        self.conn = QQApiConnection(config, random.Random(0), mode=mode)


def reply(now: float, msg_id: str = "m-1") -> OutgoingMessage:
    return OutgoingMessage(Scene.GROUP, "group-1", {"content": "hi", "msg_type": 0}, msg_id=msg_id, received_at=now)


def sent_bodies(h: Harness) -> list[dict[str, Any]]:
    return [json.loads(peer.body) for peer in h.requests_to("/messages")]


def ready(kind: str) -> Harness:
    """A connection of ``kind`` that holds a token: an API-only one started, or a gateway one at READY."""
    return ApiHarness().start() if kind == "api" else Harness().connect()


def test_start_fetches_a_token_and_is_connected_once_it_is_issued() -> None:
    h = ApiHarness()
    assert h.conn.state is State.IDLE
    h.start()
    assert h.conn.state is State.CONNECTED
    assert len(h.requests_to("/getAppAccessToken")) == 1
    health = h.conn.health(h.now)
    assert (health.mode, health.connected, health.alive) == ("api", True, True)
    assert health.token_expires_in == 7200 and health.session_id is None


def test_it_never_touches_the_gateway() -> None:
    h = ApiHarness().start()
    h.conn.send_message(reply(h.now), h.now)
    h.pump()
    h.advance(3 * 7200)
    assert h.requests_to("/gateway/bot") == []
    assert {open_.host for open_ in h.opens} == {"bots.qq.com", "api.sgroup.qq.com"}


def test_a_reply_goes_out_with_msg_id_msg_seq_and_the_token() -> None:
    h = ApiHarness().start()
    send_id = h.conn.send_message(reply(h.now), h.now)
    h.pump()
    (request,) = h.requests_to("/messages")
    assert request.target == "/v2/groups/group-1/messages"
    assert request.headers["authorization"] == f"QQBot {TOKEN}"
    assert json.loads(request.body) == {"content": "hi", "msg_type": 0, "msg_id": "m-1", "msg_seq": 1}
    assert h.of_type(MessageSent) == [MessageSent(send_id, "sent-1")]


def test_a_send_before_the_first_token_waits_for_it() -> None:
    h = ApiHarness()
    h.answer_http = False
    h.start()
    send_id = h.conn.send_message(reply(h.now), h.now)
    h.pump()
    assert h.requests_to("/messages") == []
    h.answer_http = True
    h.conn.socket_failed(h.opens[0].sock_id, "reset", h.now)
    h.pump()
    h.advance_until(lambda: bool(h.of_type(MessageSent)))
    assert h.of_type(MessageSent) == [MessageSent(send_id, "sent-1")]


@pytest.mark.parametrize("kind", ["api", "gateway"])
def test_rate_limited_send_is_retried_on_its_own_timer_with_the_same_msg_seq(kind: str) -> None:
    h = ready(kind)
    h.send_answers = [(400, {"code": 22009, "message": "msg limit exceed"})]
    send_id = h.conn.send_message(reply(h.now), h.now)
    h.pump()
    (retry,) = h.of_type(SendRetryScheduled)
    h.advance(retry.delay)
    assert h.of_type(MessageSent) == [MessageSent(send_id, "sent-1")]
    assert [body["msg_seq"] for body in sent_bodies(h)] == [1, 1]


@pytest.mark.parametrize("kind", ["api", "gateway"])
def test_11244_refreshes_the_token_once_then_fails(kind: str) -> None:
    h = ready(kind)
    h.token_default = (200, {"access_token": "tok-2", "expires_in": "7200"})
    expired = (401, {"code": 11244, "message": "token not exist or expire"})
    h.send_answers = [expired, expired]
    send_id = h.conn.send_message(reply(h.now), h.now)
    h.pump()
    assert len(h.requests_to("/getAppAccessToken")) == 2
    assert [peer.headers["authorization"] for peer in h.requests_to("/messages")] == [f"QQBot {TOKEN}", "QQBot tok-2"]
    (failed,) = h.of_type(MessageFailed)
    assert (failed.send_id, failed.code) == (send_id, 11244)


@pytest.mark.parametrize("kind", ["api", "gateway"])
def test_a_refused_message_fails_with_the_platform_code_and_trace_id(kind: str) -> None:
    h = ready(kind)
    h.send_answers = [(400, {"code": 40034024, "message": "请求参数msg_id无效或越权"})]
    send_id = h.conn.send_message(reply(h.now), h.now)
    h.pump()
    (failed,) = h.of_type(MessageFailed)
    assert (failed.send_id, failed.code, failed.trace_id) == (send_id, 40034024, "trace-1")


def test_the_token_is_refreshed_ahead_of_expiry_with_no_send_waiting() -> None:
    h = ApiHarness().start()
    h.advance(7200 - CONFIG.token_refresh_margin)
    assert len(h.requests_to("/getAppAccessToken")) == 2
    assert h.conn.health(h.now).token_expires_in == 7200


def test_the_first_token_is_asked_for_until_it_is_issued() -> None:
    h = ApiHarness()
    h.token_answers = [(503, {"message": "unavailable"})] * 3
    h.start()
    assert h.conn.state is State.AUTHENTICATING
    assert "HTTP 503" in (h.conn.health(h.now).last_disconnect_reason or "")
    h.advance_until(lambda: h.conn.state is State.CONNECTED)
    assert len(h.requests_to("/getAppAccessToken")) == 4


def test_bad_credentials_are_fatal_and_fail_what_waits() -> None:
    h = ApiHarness()
    h.answer_http = False
    h.start()
    send_id = h.conn.send_message(reply(h.now), h.now)
    h.http_reply(h.opens[0].sock_id, 401, {"code": 100016, "message": "invalid appid or secret"})
    (fatal,) = h.of_type(Fatal)
    assert "app_id and client_secret" in fatal.reason
    (failed,) = h.of_type(MessageFailed)
    assert failed.send_id == send_id
    health = h.conn.health(h.now)
    assert h.conn.state is State.FATAL and not health.alive and health.fatal_reason == fatal.reason
    assert h.conn.next_timer() is None
    with pytest.raises(LocalProtocolError, match="after the connection stopped"):
        h.conn.send_message(reply(h.now), h.now)


def test_close_fails_pending_sends_closes_sockets_and_refuses_new_ones() -> None:
    h = ApiHarness().start()
    h.send_answers = [None]
    send_id = h.conn.send_message(reply(h.now), h.now)
    h.pump()
    h.conn.close(h.now)
    h.pump()
    (failed,) = h.of_type(MessageFailed)
    assert failed.send_id == send_id and "close()" in failed.reason
    assert {open_.sock_id for open_ in h.opens} <= h.closed
    assert h.conn.state is State.CLOSED and h.conn.next_timer() is None
    h.conn.close(h.now)  # a second close does nothing
    with pytest.raises(LocalProtocolError, match="after the connection stopped"):
        h.conn.send_message(reply(h.now), h.now)


def test_misuse_is_named() -> None:
    conn = QQApiConnection(CONFIG)
    with pytest.raises(LocalProtocolError, match="before start"):
        conn.send_message(reply(0.0), 0.0)
    with pytest.raises(LocalProtocolError, match="OutgoingMessage"):
        conn.start(0.0)
        conn.send_message({"content": "hi"}, 0.0)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="mode must be one of"):
        QQApiConnection(CONFIG, mode="gateway")
    with pytest.raises(LocalProtocolError, match="needs a GatewayConfig"):
        QQApiConnection({"app_id": "1"})  # type: ignore[arg-type]


def test_webhook_mode_is_named_in_health_and_the_gateway_says_gateway() -> None:
    h = ApiHarness(mode="webhook").start()
    assert json.loads(json.dumps(h.conn.health(h.now).to_dict()))["mode"] == "webhook"
    assert Harness().connect().conn.health(0.0).mode == "gateway"
