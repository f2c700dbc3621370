"""Caller mistakes raise LocalProtocolError naming the mistake."""

from __future__ import annotations

import pytest
from helpers import CONFIG, Harness

from qqproto import LocalProtocolError, QQGatewayConnection


def test_inputs_before_start_are_refused() -> None:
    conn = QQGatewayConnection(CONFIG)
    with pytest.raises(LocalProtocolError, match=r"receive_data\(\) was called before start\(\)"):
        conn.receive_data(1, b"x", 0.0)
    with pytest.raises(LocalProtocolError, match="before start"):
        conn.handle_timer(0.0)


def test_start_twice_is_refused() -> None:
    h = Harness().start()
    with pytest.raises(LocalProtocolError, match="already called"):
        h.conn.start(h.now)


def test_unknown_socket_is_named() -> None:
    h = Harness().start()
    with pytest.raises(LocalProtocolError, match="never asked to open socket 99"):
        h.conn.socket_opened(99, h.now)
    with pytest.raises(LocalProtocolError, match="never asked to open socket 99"):
        h.conn.receive_data(99, b"", h.now)


def test_socket_opened_twice_and_data_before_open_are_refused() -> None:
    h = Harness()
    h.hold_opens = True
    h.answer_http = False
    h.start()
    sock = h.pending_opens[0].sock_id
    with pytest.raises(LocalProtocolError, match="before socket_opened"):
        h.conn.receive_data(sock, b"HTTP/1.1 200 OK\r\n", h.now)
    h.open_pending()
    with pytest.raises(LocalProtocolError, match="called twice"):
        h.conn.socket_opened(sock, h.now)


def test_bad_argument_types_are_named() -> None:
    h = Harness().connect()
    with pytest.raises(LocalProtocolError, match="takes bytes"):
        h.conn.receive_data(h.ws_id(), "text", h.now)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="needs now"):
        h.conn.handle_timer(float("nan"))
    with pytest.raises(LocalProtocolError, match="GatewayConfig"):
        QQGatewayConnection({"app_id": "1"})  # type: ignore[arg-type]


def test_a_clock_that_steps_back_is_taken_as_standing_still() -> None:
    h = Harness().connect()
    timer = h.conn.next_timer()
    h.conn.handle_timer(h.now - 100)
    assert h.conn.next_actions() == []
    assert h.conn.next_timer() == timer
