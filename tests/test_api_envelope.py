"""The open API's error envelope, read one way for the token, ``/gateway/bot`` and sends alike."""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers import CONFIG, Harness

from qqproto import Fatal, MessageFailed, MessageSent, OutgoingMessage, ReconnectScheduled, Scene, State
from qqproto._api import ApiAnswer, api_request
from qqproto._http import Endpoint


def read(status: int, body: Any, headers: dict[str, str] | None = None) -> ApiAnswer:
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return ApiAnswer.read(status, raw, headers or {})


def test_err_code_is_the_code_reported_and_either_code_matches() -> None:
    answer = read(400, {"code": 100017, "err_code": 40023001, "message": "接口调用超过频率限制"})
    assert answer.code == 40023001
    assert answer.codes == {100017, 40023001}
    assert answer.has(frozenset({100017})) and answer.has(frozenset({40023001}))
    assert not answer.has(frozenset({11244}))


@pytest.mark.parametrize(
    "body, code",
    [
        ({"code": 11244}, 11244),
        ({"err_code": 11244}, 11244),
        ({"code": "11244"}, 11244),
        ({"code": 0, "err_code": 22009}, 22009),
        ({"code": 0}, None),
        ({"code": True}, None),
        ({"code": "soon"}, None),
        ({"code": 1.5}, None),
        ({}, None),
    ],
)
def test_a_code_is_a_nonzero_integer_or_a_string_of_digits(body: dict[str, Any], code: int | None) -> None:
    assert read(400, body).code == code


@pytest.mark.parametrize("body", [b"", b"not json", b"[1, 2]", b'"text"', b"[" * 100_000])
def test_a_body_that_is_not_a_json_object_has_no_fields(body: bytes) -> None:
    answer = read(502, body)
    assert answer.fields == {} and answer.code is None and answer.message == ""
    assert answer.detail == "HTTP 502"


def test_detail_carries_status_code_and_a_cut_message() -> None:
    answer = read(400, {"code": 40034024, "message": "请求参数msg_id无效或越权" + "x" * 500})
    assert answer.detail.startswith("HTTP 400, code 40034024: 请求参数msg_id无效或越权")
    assert len(answer.message) == 200


def test_trace_id_comes_from_the_header_then_from_the_body() -> None:
    assert read(400, {"trace_id": "body-1"}, {"x-tps-trace-id": "head-1"}).trace_id == "head-1"
    assert read(400, {"trace_id": "body-1"}).trace_id == "body-1"
    assert read(400, {"trace_id": 7}).trace_id is None


def test_ok_is_a_2xx_without_an_error_code() -> None:
    assert read(200, {"id": "m"}).ok and read(204, b"").ok and read(200, {"code": 0}).ok
    assert not read(200, {"code": 22009}).ok and not read(400, {}).ok


def test_every_open_api_request_carries_the_same_headers() -> None:
    endpoint = Endpoint.from_url("https://api.example.test/gateway/bot")
    raw = api_request(CONFIG, "GET", endpoint, token="tok-1").request_bytes().decode()
    assert "Authorization: QQBot tok-1\r\n" in raw and f"X-Union-Appid: {CONFIG.app_id}\r\n" in raw
    assert f"User-Agent: {CONFIG.user_agent}\r\n" in raw and "Content-Type" not in raw
    raw = api_request(CONFIG, "POST", endpoint, body=b"{}").request_bytes().decode()
    assert "Authorization" not in raw and "Content-Type: application/json\r\n" in raw


# ---------------------------------------------------------------- through the core: one rule everywhere


def test_token_endpoint_credential_error_in_err_code_is_fatal() -> None:
    h = Harness()
    h.token_answers = [(400, {"err_code": 11251, "message": "appid invalid"})]
    h.start()
    (fatal,) = h.of_type(Fatal)
    assert "app_id and client_secret" in fatal.reason and "code 11251" in fatal.reason
    assert h.conn.state is State.FATAL


def test_gateway_rate_limit_known_by_err_code_alone_cools_down() -> None:
    h = Harness()
    h.gateway_answers = [(400, {"err_code": 40023001, "message": "busy"})]
    h.start()
    (scheduled,) = h.of_type(ReconnectScheduled)
    assert scheduled.cause == "rate_limited" and scheduled.delay >= CONFIG.cooldown


def test_send_refused_with_a_stringly_code_reports_it_as_a_number() -> None:
    h = Harness().connect()
    h.send_answers = [(400, {"code": "40034024", "message": "请求参数msg_id无效或越权", "trace_id": "body-9"})]
    message = OutgoingMessage(Scene.GROUP, "g-1", {"content": "hi"}, msg_id="m-1", received_at=h.now)
    send_id = h.conn.send_message(message, h.now)
    h.pump()
    (failed,) = h.of_type(MessageFailed)
    assert (failed.send_id, failed.code, failed.trace_id) == (send_id, 40034024, "trace-1")
    assert h.of_type(MessageSent) == []
