"""Every Fatal reason and every LocalProtocolError says what happened and what to do about it."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable

import pytest
from helpers import CONFIG, Harness

from qqproto import Fatal, GatewayConfig, LocalProtocolError, QQGatewayConnection


def fatal_reason(h: Harness) -> str:
    (fatal,) = h.of_type(Fatal)
    assert h.conn.health(h.now).fatal_reason == fatal.reason
    reason: str = fatal.reason
    return reason


def credentials_rejected() -> Harness:
    h = Harness()
    h.token_answers = [(401, {"code": 100016, "message": "invalid appid or secret"})]
    return h.start()


def token_rejected_on_the_gateway_twice() -> Harness:
    h = Harness().connect()
    h.server_close(4004)
    h.auto_ready = False
    resumes = len(h.sent_ops(6))
    h.advance_until(lambda: len(h.sent_ops(6)) > resumes)
    h.server_close(4004)
    return h


def token_rejected_by_gateway_bot_twice() -> Harness:
    h = Harness()
    h.gateway_answers = [(401, {"code": 11244, "message": "token not exist or expire"})] * 2
    return h.start()


def out_of_reconnect_attempts() -> Harness:
    h = Harness(dataclasses.replace(CONFIG, max_reconnect_attempts=2)).connect()
    h.refuse_connections = True
    h.deliver(h.ws_id(), b"")
    h.advance(600)
    return h


def closed_with(code: int) -> Callable[[], Harness]:
    def close() -> Harness:
        h = Harness().connect()
        h.server_close(code)
        return h

    return close


FATALS: dict[str, tuple[Callable[[], Harness], str, str]] = {
    "credentials": (credentials_rejected, "rejected the credentials", "check app_id and client_secret"),
    "4004 twice": (token_rejected_on_the_gateway_twice, "4004", "check that app_id and client_secret belong"),
    "gateway 401 twice": (token_rejected_by_gateway_bot_twice, "rejected the access token", "check that app_id"),
    "attempts": (out_of_reconnect_attempts, "gave up after 2 reconnect attempts", "raise max_reconnect_attempts"),
    "4001": (closed_with(4001), "4001", "please report it"),
    "4002": (closed_with(4002), "4002", "please report it"),
    "4010": (closed_with(4010), "4010", "check GatewayConfig.shard"),
    "4011": (closed_with(4011), "4011", "run more shards"),
    "4012": (closed_with(4012), "4012", "please report it"),
    "4013": (closed_with(4013), "4013", "check GatewayConfig.intents"),
    "4014": (closed_with(4014), "4014", "remove them from GatewayConfig.intents"),
    "4914": (closed_with(4914), "4914", "use the sandbox api_base"),
    "4915": (closed_with(4915), "4915", "apply for an unban"),
}


@pytest.mark.parametrize("kind", sorted(FATALS))
def test_each_fatal_reason_says_what_happened_and_what_to_do(kind: str) -> None:
    trigger, what_happened, what_to_do = FATALS[kind]
    reason = fatal_reason(trigger())
    assert what_happened in reason
    assert what_to_do in reason


def started() -> QQGatewayConnection:
    conn = QQGatewayConnection(CONFIG, random.Random(0))
    conn.start(0.0)
    return conn


def started_opened() -> QQGatewayConnection:
    conn = started()
    conn.socket_opened(1, 0.5)
    return conn


MISUSES: dict[str, tuple[Callable[[], object], str]] = {
    "not a config": (lambda: QQGatewayConnection({"app_id": "1"}), "pass GatewayConfig("),  # type: ignore[arg-type]
    "bad config": (lambda: GatewayConfig(app_id="1", client_secret="s", shard=(5, 1)), "shard must be"),
    "start twice": (lambda: started().start(1.0), "create a new QQGatewayConnection"),
    "before start": (lambda: QQGatewayConnection(CONFIG).handle_timer(0.0), "call start(now) first"),
    "now not a number": (lambda: started().handle_timer(float("nan")), "same monotonic clock as every other input"),
    "unknown socket": (lambda: started().socket_opened(99, 1.0), "pass the sock_id of an OpenSocket action"),
    "opened twice": (lambda: started_opened().socket_opened(1, 1.0), "report each OpenSocket once"),
    "data before open": (lambda: started().receive_data(1, b"x", 1.0), "call socket_opened(1, now)"),
    "data not bytes": (lambda: started_opened().receive_data(1, "x", 1.0), "pass the bytes"),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("mistake", sorted(MISUSES))
def test_each_local_protocol_error_says_what_to_do(mistake: str) -> None:
    misuse, what_to_do = MISUSES[mistake]
    with pytest.raises(LocalProtocolError) as info:
        misuse()
    assert what_to_do in str(info.value)
