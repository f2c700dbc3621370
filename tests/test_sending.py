"""Replies that never get lost: each decision of the send policy, by itself and through the core."""

from __future__ import annotations

import dataclasses
import json
import random
from typing import Any

import pytest
from helpers import CONFIG, TOKEN, Harness

from qqproto import (
    LocalProtocolError,
    MessageFailed,
    MessageSent,
    OutgoingMessage,
    Scene,
    SendAsActive,
    SendAttempt,
    SendDone,
    SendFailed,
    SendPolicy,
    SendRefreshToken,
    SendRetry,
    SendRetryScheduled,
)

NOW = 1000.0


def policy(**options: Any) -> SendPolicy:
    return SendPolicy(random.Random(0), **options)


def reply(scene: Scene = Scene.GROUP, received_at: float = NOW, msg_id: str = "m-1") -> OutgoingMessage:
    return OutgoingMessage(scene, "target-1", {"content": "hi", "msg_type": 0}, msg_id=msg_id, received_at=received_at)


def answer(status: int | None, body: Any = None, trace: str = "t-1") -> tuple[int | None, dict[str, str], bytes]:
    raw = b"" if body is None else json.dumps(body).encode()
    return status, {"x-tps-trace-id": trace}, raw


def first_body(p: SendPolicy, message: OutgoingMessage, now: float = NOW) -> dict[str, Any]:
    attempt = p.attempt(message, now)
    assert isinstance(attempt, SendAttempt)
    body: dict[str, Any] = json.loads(attempt.body)
    return body


@pytest.mark.parametrize(
    "scene, path",
    [
        (Scene.C2C, "/v2/users/target-1/messages"),
        (Scene.GROUP, "/v2/groups/target-1/messages"),
        (Scene.CHANNEL, "/channels/target-1/messages"),
        (Scene.DM, "/dms/target-1/messages"),
    ],
)
def test_request_goes_to_the_scene_path_with_msg_id_and_msg_seq(scene: Scene, path: str) -> None:
    attempt = policy().attempt(reply(scene), NOW)
    assert isinstance(attempt, SendAttempt)
    assert attempt.path == path
    assert json.loads(attempt.body) == {"content": "hi", "msg_type": 0, "msg_id": "m-1", "msg_seq": 1}


def test_msg_seq_counts_per_msg_id() -> None:
    p = policy()
    assert [first_body(p, reply())["msg_seq"] for _ in range(3)] == [1, 2, 3]
    assert first_body(p, reply(msg_id="m-2"))["msg_seq"] == 1


def test_done_on_success_with_the_platform_message_id() -> None:
    p, message = policy(), reply()
    p.attempt(message, NOW)
    assert p.decide(message, *answer(200, {"id": "abc", "timestamp": 1}), NOW) == SendDone("abc")


def test_rate_limit_22009_retries_after_a_capped_jittered_delay() -> None:
    p, message = policy(backoff_base=1.0, backoff_cap=8.0), reply()
    delays = []
    for _ in range(8):
        p.attempt(message, NOW)
        decision = p.decide(message, *answer(400, {"code": 22009, "message": "msg limit exceed"}), NOW)
        assert isinstance(decision, SendRetry)
        delays.append(decision.delay)
    assert 0.5 <= delays[0] <= 1.0
    assert max(delays) <= 8.0 and delays[-1] >= 4.0
    assert len(set(delays)) == len(delays)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_server_errors_retry(status: int) -> None:
    p, message = policy(), reply()
    p.attempt(message, NOW)
    assert isinstance(p.decide(message, *answer(status, {"message": "busy"}), NOW), SendRetry)


def test_transport_failure_retries_with_the_same_msg_seq() -> None:
    p, message = policy(), reply()
    first = first_body(p, message)
    assert isinstance(p.decide(message, *answer(None), NOW), SendRetry)
    assert first_body(p, message)["msg_seq"] == first["msg_seq"]


# 11244 says the token expired whatever the HTTP status; a bare 401 says so too.
@pytest.mark.parametrize("status, code", [(400, 11244), (200, 11244), (401, 11244), (401, None)])
def test_an_expired_token_refreshes_and_retries_once(status: int, code: int | None) -> None:
    p, message = policy(), reply()
    body = {"message": "token not exist or expire"} if code is None else {"code": code}
    p.attempt(message, NOW)
    assert isinstance(p.decide(message, *answer(status, body), NOW), SendRefreshToken)
    p.attempt(message, NOW)
    failed = p.decide(message, *answer(status, body), NOW)
    assert isinstance(failed, SendFailed) and failed.code == code


@pytest.mark.parametrize("code", [40034005, 304027])
def test_expired_reply_is_sent_again_as_an_active_message(code: int) -> None:
    p, message = policy(), reply()
    p.attempt(message, NOW)
    assert isinstance(p.decide(message, *answer(400, {"code": code}), NOW), SendAsActive)
    body = first_body(p, message)
    assert "msg_id" not in body and "msg_seq" not in body and body["content"] == "hi"


def test_expired_reply_fails_where_active_messages_are_not_allowed() -> None:
    p, message = policy(allow_active=False), reply()
    p.attempt(message, NOW)
    failed = p.decide(message, *answer(400, {"code": 40034005, "message": "回复消息msg_id已过期"}, "t-9"), NOW)
    assert isinstance(failed, SendFailed)
    assert (failed.code, failed.trace_id) == (40034005, "t-9")


@pytest.mark.parametrize("scene, window", [(Scene.GROUP, 300.0), (Scene.C2C, 3600.0)])
def test_switches_to_active_before_the_reply_window_closes(scene: Scene, window: float) -> None:
    p = policy(window_margin=30.0)
    assert "msg_id" in first_body(p, reply(scene), NOW + window - 31)
    assert "msg_id" not in first_body(p, reply(scene), NOW + window - 30)


def test_the_sixth_reply_to_one_message_goes_active() -> None:
    p = policy()
    bodies = [first_body(p, reply(Scene.C2C)) for _ in range(6)]
    assert [b.get("msg_seq") for b in bodies] == [1, 2, 3, 4, 5, None]


def test_deduplicated_40054005_counts_as_already_sent() -> None:
    p, message = policy(), reply()
    p.attempt(message, NOW)
    decision = p.decide(message, *answer(400, {"code": 40054005, "message": "消息被去重"}), NOW)
    assert decision == SendDone(None, duplicate=True)


def test_other_errors_fail_with_the_platform_code_message_and_trace_id() -> None:
    p, message = policy(), reply()
    p.attempt(message, NOW)
    failed = p.decide(message, *answer(400, {"code": 40034024, "message": "请求参数msg_id无效或越权"}, "t-7"), NOW)
    assert isinstance(failed, SendFailed)
    assert (failed.code, failed.trace_id) == (40034024, "t-7")
    assert "请求参数msg_id无效或越权" in failed.reason


def test_retries_give_up_after_their_time_with_the_last_answer() -> None:
    p, message = policy(give_up_after=600.0), reply(Scene.C2C)
    p.attempt(message, NOW)
    assert isinstance(p.decide(message, *answer(503), NOW + 599), SendRetry)
    failed = p.decide(message, *answer(503), NOW + 600)
    assert isinstance(failed, SendFailed) and "600" in failed.reason


# ---------------------------------------------------------------- through the core


def sent_bodies(h: Harness) -> list[dict[str, Any]]:
    return [json.loads(peer.body) for peer in h.requests_to("/messages")]


def test_core_sends_with_the_gateway_token_and_reports_message_sent() -> None:
    h = Harness().connect()
    send_id = h.conn.send_message(reply(), h.now)
    h.pump()
    (request,) = h.requests_to("/messages")
    assert request.target == "/v2/groups/target-1/messages"
    assert request.headers["authorization"] == f"QQBot {TOKEN}"
    assert len(h.requests_to("/getAppAccessToken")) == 1
    assert h.of_type(MessageSent) == [MessageSent(send_id, "sent-1")]


def test_core_retries_a_rate_limited_send_on_its_own_timer() -> None:
    h = Harness().connect()
    h.send_answers = [(400, {"code": 22009, "message": "msg limit exceed"})]
    send_id = h.conn.send_message(reply(), h.now)
    h.pump()
    (retry,) = h.of_type(SendRetryScheduled)
    assert retry.send_id == send_id
    h.advance(retry.delay)
    assert h.of_type(MessageSent) == [MessageSent(send_id, "sent-1")]
    assert [b["msg_seq"] for b in sent_bodies(h)] == [1, 1]


@pytest.mark.parametrize("status", [401, 400])
def test_core_refreshes_the_token_on_11244_and_sends_again(status: int) -> None:
    h = Harness().connect()
    h.token_default = (200, {"access_token": "tok-2", "expires_in": "7200"})
    h.send_answers = [(status, {"code": 11244, "message": "token not exist or expire"})]
    h.conn.send_message(reply(), h.now)
    h.pump()
    assert len(h.requests_to("/getAppAccessToken")) == 2
    assert h.requests_to("/messages")[-1].headers["authorization"] == "QQBot tok-2"
    assert len(h.of_type(MessageSent)) == 1


def test_core_send_before_a_token_waits_for_one() -> None:
    h = Harness()
    h.answer_http = False
    h.start()
    h.conn.send_message(reply(), h.now)
    h.answer_http = True
    h.conn.socket_failed(h.opens[0].sock_id, "reset", h.now)
    h.pump()
    h.advance_until(lambda: bool(h.of_type(MessageSent)))


def test_core_fails_pending_sends_when_closed() -> None:
    h = Harness().connect()
    h.send_answers = [(503, {"message": "busy"})]
    send_id = h.conn.send_message(reply(), h.now)
    h.pump()
    h.conn.close(h.now)
    h.pump()
    (failed,) = h.of_type(MessageFailed)
    assert failed.send_id == send_id and "close()" in failed.reason
    with pytest.raises(LocalProtocolError, match="after the connection stopped"):
        h.conn.send_message(reply(), h.now)


def test_core_send_that_loses_its_answer_is_retried_and_the_duplicate_counts_as_sent() -> None:
    h = Harness().connect()
    h.send_answers = [None, (400, {"code": 40054005, "message": "消息被去重，请检查请求msgseq"})]
    send_id = h.conn.send_message(reply(), h.now)
    h.pump()
    h.advance(CONFIG.http_timeout)
    h.advance_until(lambda: bool(h.of_type(MessageSent)))
    assert h.of_type(MessageSent) == [MessageSent(send_id, None, duplicate=True)]
    assert [b["msg_seq"] for b in sent_bodies(h)] == [1, 1]


def test_send_message_takes_an_outgoing_message() -> None:
    h = Harness().connect()
    with pytest.raises(LocalProtocolError, match="OutgoingMessage"):
        h.conn.send_message({"content": "hi"}, h.now)  # type: ignore[arg-type]
    assert dataclasses.is_dataclass(reply())
