"""Every limit on what the network may make the core buffer: exactly at it passes, one byte over fails clearly."""

from __future__ import annotations

import dataclasses
import json
import tracemalloc
from collections.abc import Callable

import pytest
from helpers import CONFIG, TOKEN, Harness, WsPeer
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from qqproto import Dispatch, GatewayConfig, LocalProtocolError, ReconnectScheduled, State
from qqproto._frames import encode_frame

LIMIT = 4096
LIMITED = dataclasses.replace(CONFIG, max_message_size=LIMIT, max_http_header_size=LIMIT, max_http_body_size=LIMIT)
ONE_CHUNK: Callable[[bytes], list[bytes]] = lambda data: [data]
BYTEWISE: Callable[[bytes], list[bytes]] = lambda data: [data[i : i + 1] for i in range(len(data))]
CHUNKINGS = pytest.mark.parametrize("chunks", [ONE_CHUNK, BYTEWISE], ids=["one chunk", "byte by byte"])


def dispatch_of_size(size: int, pad_char: str = "x") -> str:
    """A dispatch whose UTF-8 encoding is exactly ``size`` bytes (``pad_char`` may be multi-byte)."""
    bare = '{"op":0,"s":2,"t":"C2C_MESSAGE_CREATE","d":{"pad":"%s"},"id":"ev-2"}'
    room = size - len((bare % "").encode())
    width = len(pad_char.encode())
    return bare % (pad_char * (room // width) + "x" * (room % width))


def http_answer(head_size: int, body: bytes, *, chunked: bool = False) -> bytes:
    """A 200 answer whose head (status line to blank line) is exactly ``head_size`` bytes."""
    framing = b"Transfer-Encoding: chunked\r\n" if chunked else b"Content-Length: %d\r\n" % len(body)
    bare = b"HTTP/1.1 200 OK\r\n" + framing + b"X-Pad: %s\r\n\r\n"
    head = bare % (b"a" * (head_size - len(bare % b"")))
    assert len(head) == head_size
    if chunked:
        body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    return head + body


def token_body(size: int) -> bytes:
    """A good token answer of exactly ``size`` bytes."""
    bare = json.dumps({"access_token": TOKEN, "expires_in": "7200", "pad": ""}).encode()
    return json.dumps({"access_token": TOKEN, "expires_in": "7200", "pad": "p" * (size - len(bare))}).encode()


def token_exchange(answer: bytes, chunks: Callable[[bytes], list[bytes]]) -> Harness:
    h = Harness(LIMITED)
    h.answer_http = False
    h.start()
    h.answer_http = True  # only the token request is left for the test to answer
    token_sock = h.opens[-1].sock_id
    for chunk in chunks(answer):
        h.deliver(token_sock, chunk)
    return h


def failure(h: Harness) -> str:
    (scheduled,) = h.of_type(ReconnectScheduled)
    reason: str = scheduled.reason
    return reason


# ---------------------------------------------------------------- max_message_size


@pytest.mark.parametrize("pad_char", ["x", "é", "测"])
def test_a_message_of_exactly_max_message_size_is_delivered(pad_char: str) -> None:
    h = Harness(LIMITED).connect()
    h.send_text(h.ws_id(), dispatch_of_size(LIMIT, pad_char))
    assert [d.seq for d in h.of_type(Dispatch)] == [2]
    assert h.of_type(ReconnectScheduled) == []


@pytest.mark.parametrize("pad_char", ["x", "é", "测"])
def test_one_byte_over_max_message_size_closes_with_1009_and_resumes(pad_char: str) -> None:
    h = Harness(LIMITED).connect()
    ws = h.ws_id()
    h.send_text(ws, dispatch_of_size(LIMIT + 1, pad_char))
    assert h.peers[ws].close_code == 1009  # type: ignore[union-attr]
    assert "max_message_size (4096 bytes)" in failure(h)
    assert h.of_type(ReconnectScheduled)[0].resume


@pytest.mark.parametrize("size, delivered", [(LIMIT, True), (LIMIT + 1, False)])
def test_max_message_size_counts_every_fragment(size: int, delivered: bool) -> None:
    h = Harness(LIMITED).connect()
    ws = h.ws_id()
    peer = h.peers[ws]
    text = dispatch_of_size(size, "测")
    cut = len(text) // 3
    for part, last in ((text[:cut], False), (text[cut : 2 * cut], False), (text[2 * cut :], True)):
        h.deliver(ws, peer.ws.send(TextMessage(data=part, message_finished=last)))  # type: ignore[union-attr]
    assert (ws not in h.closed) is delivered
    if not delivered:
        assert "max_message_size" in failure(h)


# ---------------------------------------------------------------- max_http_header_size


@CHUNKINGS
def test_an_http_head_of_exactly_max_http_header_size_is_read(chunks: Callable[[bytes], list[bytes]]) -> None:
    h = token_exchange(http_answer(LIMIT, token_body(100)), chunks)
    assert h.conn.token_fetches == 1
    assert h.conn.state is State.CONNECTED


@CHUNKINGS
def test_one_byte_over_max_http_header_size_fails_the_request(chunks: Callable[[bytes], list[bytes]]) -> None:
    h = token_exchange(http_answer(LIMIT + 1, token_body(100)), chunks)
    assert "max_http_header_size (4096 bytes)" in failure(h)
    assert h.conn.state is State.WAITING


def throwaway_accept(extra_headers: list[tuple[bytes, bytes]]) -> bytes:
    """A 101 answer to some upgrade: its size does not depend on the key."""
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    assert isinstance(next(server.events()), Request)
    return server.send(AcceptConnection(extra_headers=extra_headers))


def upgrade_answer(peer: WsPeer, head_size: int) -> bytes:
    """The 101 for ``peer``'s pending upgrade, padded so its head is exactly ``head_size`` bytes."""
    pad = head_size - len(throwaway_accept([(b"x-pad", b"")]))
    answer: bytes = peer.ws.send(AcceptConnection(extra_headers=[(b"x-pad", b"a" * pad)]))
    assert len(answer) == head_size
    return answer


def upgrade(head_size: int, chunks: Callable[[bytes], list[bytes]]) -> Harness:
    h = Harness(LIMITED)
    h.accept_upgrade = False
    h.start()
    peer = h.peers[h.opens[-1].sock_id]
    assert isinstance(peer, WsPeer)
    for chunk in chunks(upgrade_answer(peer, head_size)):
        h.deliver(peer.sock_id, chunk)
    if peer.sock_id not in h.closed:
        h.send(peer.sock_id, {"op": 10, "d": {"heartbeat_interval": 40000}})
    return h


@CHUNKINGS
def test_an_upgrade_head_of_exactly_max_http_header_size_is_accepted(chunks: Callable[[bytes], list[bytes]]) -> None:
    h = upgrade(LIMIT, chunks)
    assert h.conn.state is State.CONNECTED


@CHUNKINGS
def test_one_byte_over_max_http_header_size_fails_the_upgrade(chunks: Callable[[bytes], list[bytes]]) -> None:
    h = upgrade(LIMIT + 1, chunks)
    assert "max_http_header_size (4096 bytes)" in failure(h)
    assert h.of_type(ReconnectScheduled)[0].cause == "connect_failed"


# ---------------------------------------------------------------- max_http_body_size


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_http_body_of_exactly_max_http_body_size_is_read(chunked: bool) -> None:
    h = token_exchange(http_answer(200, token_body(LIMIT), chunked=chunked), ONE_CHUNK)
    assert h.conn.state is State.CONNECTED


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_one_byte_over_max_http_body_size_fails_the_request(chunked: bool) -> None:
    h = token_exchange(http_answer(200, token_body(LIMIT + 1), chunked=chunked), ONE_CHUNK)
    assert "max_http_body_size (4096 bytes)" in failure(h)
    assert h.conn.state is State.WAITING


# ---------------------------------------------------------------- nothing else accumulates


def peak_streaming(h: Harness, sock_id: int, data: bytes, times: int) -> int:
    """The most memory allocated at once while ``data`` arrives ``times`` times on one socket."""
    tracemalloc.start()
    try:
        for _ in range(times):
            h.deliver(sock_id, data)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_endless_valid_traffic_leaves_nothing_buffered() -> None:
    """Far more heads and messages than any limit, each within its limit, are consumed as they come."""
    h = Harness(LIMITED)
    h.answer_http = False
    h.start()
    h.answer_http = True
    token_sock = h.opens[-1].sock_id
    continues = b"HTTP/1.1 100 Continue\r\n\r\n" * 50
    assert peak_streaming(h, token_sock, continues, 300) < 8 * LIMIT < len(continues) * 300 // 10
    assert h.conn.state is State.AUTHENTICATING

    h.deliver(token_sock, http_answer(200, token_body(100)))
    acks = encode_frame(0x1, b'{"op":11,"d":"%s"}' % (b"x" * (LIMIT - 16))) * 16
    assert peak_streaming(h, h.ws_id(), acks, 200) < 4 * len(acks) < len(acks) * 200 // 10
    assert h.conn.health(h.now).connected


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize("name", ["max_message_size", "max_http_header_size", "max_http_body_size"])
@pytest.mark.parametrize("value", [0, -1, 1.5, True, "4096"])
def test_limits_must_be_whole_numbers_of_at_least_one(name: str, value: object) -> None:
    with pytest.raises(LocalProtocolError, match=f"{name} must be a whole number of at least 1"):
        GatewayConfig(app_id="1", client_secret="s", **{name: value})  # type: ignore[arg-type]
