"""Whatever the network sends, the core does not raise: it closes that socket and reconnects with a reason."""

from __future__ import annotations

import dataclasses
import struct

import pytest
from helpers import CONFIG, Harness

from qqproto import Fatal, ReconnectScheduled, State


def frame(opcode: int, payload: bytes, *, masked: bool = False) -> bytes:
    """One unfragmented server frame, built by hand so it can be wrong."""
    head = bytes([0x80 | opcode])
    mask_bit = 0x80 if masked else 0
    if len(payload) < 126:
        head += bytes([mask_bit | len(payload)])
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", len(payload))
    if masked:
        head += b"\x00\x00\x00\x00"
    return head + payload


GATEWAY_MESSAGES = {
    "invalid JSON": frame(1, b"{not json"),
    "JSON array": frame(1, b"[1, 2]"),
    "no op": frame(1, b'{"d": {}}'),
    "string op": frame(1, b'{"op": "0"}'),
    "unknown opcode": frame(1, b'{"op": 99}'),
    "dispatch without s": frame(1, b'{"op": 0, "t": "X", "d": {}}'),
    "dispatch with string s": frame(1, b'{"op": 0, "s": "5", "t": "X", "d": {}}'),
    "dispatch without t": frame(1, b'{"op": 0, "s": 5, "d": {}}'),
    "deep nesting": frame(1, b"[" * 100_000 + b"]" * 100_000),
    "binary frame": frame(2, b'{"op": 11}'),
    "bad UTF-8": frame(1, b"\xff\xfe\xfd"),
    "masked server frame": frame(1, b'{"op": 11}', masked=True),
    "reserved opcode": frame(3, b""),
    "garbage bytes": b"\x00\x01\x02garbage" * 10,
    "oversized message": frame(1, b'{"op": 0, "d": "' + b"x" * 5000 + b'"}'),
}


@pytest.mark.parametrize("name", sorted(GATEWAY_MESSAGES))
def test_bad_gateway_message_closes_the_socket_and_resumes(name: str) -> None:
    config = dataclasses.replace(CONFIG, max_message_size=4096)
    h = Harness(config).connect()
    ws = h.ws_id()
    h.deliver(ws, GATEWAY_MESSAGES[name])
    assert ws in h.closed
    (scheduled,) = h.of_type(ReconnectScheduled)
    assert scheduled.cause == "bad_input"
    assert scheduled.resume
    assert len(scheduled.reason) > 10
    h.advance_until(lambda: h.conn.state is State.CONNECTED)
    assert h.sent_ops(6)[-1]["d"]["session_id"] == "session-1"


@pytest.mark.parametrize(
    "hello",
    [
        b'{"op": 10}',
        b'{"op": 10, "d": {"heartbeat_interval": 0}}',
        b'{"op": 10, "d": {"heartbeat_interval": -5}}',
        b'{"op": 10, "d": {"heartbeat_interval": "41250"}}',
        b'{"op": 10, "d": {"heartbeat_interval": true}}',
        b'{"op": 10, "d": []}',
    ],
)
def test_bad_hello_is_bad_input(hello: bytes) -> None:
    h = Harness()
    h.send_hello = False
    h.start()
    h.deliver(h.ws_id(), frame(1, hello))
    (scheduled,) = h.of_type(ReconnectScheduled)
    assert scheduled.cause == "bad_input"
    assert "heartbeat_interval" in scheduled.reason


def test_ready_without_session_id_is_bad_input() -> None:
    h = Harness()
    h.auto_ready = False
    h.start()
    h.deliver(h.ws_id(), frame(1, b'{"op": 0, "s": 1, "t": "READY", "d": {"user": {}}}'))
    assert h.of_type(ReconnectScheduled)[0].cause == "bad_input"


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: wrong\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nX-Long: " + b"a" * 100_000 + b"\r\n\r\n",
    ],
)
def test_bad_upgrade_answer_is_a_failed_connect_to_the_cached_url(raw: bytes) -> None:
    h = Harness()
    h.accept_upgrade = False
    h.start()
    ws = h.opens[-1].sock_id
    h.deliver(ws, raw)
    assert ws in h.closed
    (scheduled,) = h.of_type(ReconnectScheduled)
    assert scheduled.cause == "connect_failed"
    assert h.of_type(Fatal) == []


@pytest.mark.parametrize(
    "raw",
    [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 100_000 + b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n" + b"{" * 1_500_000,
        b"HTTP/9.9 200 OK\r\n\r\n",
    ],
)
def test_bad_http_answer_is_retried_not_raised(raw: bytes) -> None:
    h = Harness()
    h.answer_http = False
    h.start()
    token_sock = h.opens[-1].sock_id
    h.deliver(token_sock, raw)
    if token_sock not in h.closed:
        h.deliver(token_sock, b"")
    assert token_sock in h.closed
    (scheduled,) = h.of_type(ReconnectScheduled)
    assert scheduled.cause == "token"
    assert "token" in scheduled.reason
    h.answer_http = True
    h.advance_until(lambda: h.conn.state is State.CONNECTED)


def test_input_for_a_socket_the_core_already_closed_is_dropped() -> None:
    h = Harness().connect()
    old = h.ws_id()
    h.server_close(4009)
    h.conn.receive_data(old, b"late bytes", h.now)
    h.conn.socket_failed(old, "late failure", h.now)
    assert h.conn.next_actions() == []
    assert h.conn.state is State.CONNECTED


@pytest.mark.parametrize("split", [False, True], ids=["whole", "split"])
def test_a_message_that_is_not_utf8_ends_the_socket_even_while_closing(split: bool) -> None:
    h = Harness().connect()
    h.answer_close = False
    sock_id = h.ws_id()
    h.conn.close(h.now)
    h.pump()
    assert h.conn.state is State.CLOSING
    data = frame(0x1, b'{"op":\xff}')
    if split:  # the WebSocket layer checks the pieces
        h.deliver(sock_id, data[:4])
        h.deliver(sock_id, data[4:])
    else:  # the parser checks the whole frame
        h.deliver(sock_id, data)
    assert h.conn.state is State.CLOSED and sock_id in h.closed
