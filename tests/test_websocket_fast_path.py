"""The direct decoder for plain text frames and wsproto agree on every byte stream, however it is split.

A whole text frame comes out of the direct path as bytes whose UTF-8 its reader checks;
the tests read them as the connection does, failing on the first that is not UTF-8.
"""

from __future__ import annotations

import random
import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request

from qqproto._http import Endpoint
from qqproto._websocket import WebSocketClient, WsClosed, WsFailed, WsOpened, WsReceived

ENDPOINT = Endpoint("gw.example.test", 443, True, "/websocket")
LIMIT = 2048


def opened_client(fast_path: bool) -> WebSocketClient:
    client = WebSocketClient(ENDPOINT, max_message_size=LIMIT, rng=random.Random(0), fast_path=fast_path)
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(client.handshake_bytes())
    assert isinstance(next(server.events()), Request)
    events, _ = client.receive(server.send(AcceptConnection()))
    assert events == [WsOpened()]
    return client


def frame(first: int, payload: bytes, *, length_bytes: int = 0, mask: bytes = b"") -> bytes:
    """A frame laid out by hand, so that it can break the rules on purpose."""
    size = len(payload)
    mask_bit = 0x80 if mask else 0
    if length_bytes == 2 or (not length_bytes and 126 <= size <= 0xFFFF):
        head = bytes((first, mask_bit | 126)) + struct.pack("!H", size)
    elif length_bytes == 8 or (not length_bytes and size > 0xFFFF):
        head = bytes((first, mask_bit | 127)) + struct.pack("!Q", size)
    else:
        head = bytes((first, mask_bit | size))
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + payload


texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300)
frames = st.one_of(
    texts.map(lambda t: frame(0x81, t.encode())),
    texts.map(lambda t: frame(0x81, t.encode(), length_bytes=2)),  # length not minimally encoded
    texts.map(lambda t: frame(0x81, t.encode(), length_bytes=8)),
    texts.map(lambda t: frame(0x81, t.encode(), mask=b"\x01\x02\x03\x04")),
    st.binary(max_size=40).map(lambda b: frame(0x81, b)),  # often invalid UTF-8
    texts.map(lambda t: frame(0x01, t.encode()[:50]) + frame(0x80, t.encode()[50:])),  # fragmented
    texts.map(lambda t: frame(0x01, t.encode()[:50])),  # a fragment whose rest never comes
    st.binary(max_size=20).map(lambda b: frame(0x89, b)),  # ping
    st.binary(max_size=20).map(lambda b: frame(0x8A, b)),  # pong
    st.binary(max_size=20).map(lambda b: frame(0x82, b)),  # binary
    st.sampled_from([4009, 4914, 1000, 1011]).map(lambda c: frame(0x88, struct.pack("!H", c) + b"bye")),
    st.sampled_from([0xC1, 0x91, 0x83, 0x8B, 0x80]).map(lambda first: frame(first, b'{"op":11}')),
    st.integers(LIMIT - 5, LIMIT + 5).map(lambda n: frame(0x81, b"a" * n)),  # around the size limit
    st.binary(min_size=1, max_size=12),  # garbage
)


def read(client: WebSocketClient, events: list[WsReceived]) -> tuple[list[object], bool]:
    """Messages as text and closes, up to the first failure; a message that is not UTF-8 fails as the connection fails it.

    The wording of failures is left out: both paths must agree on what, not on how it is said.
    """
    result: list[object] = []
    for event in events:
        if isinstance(event, bytes):
            try:
                event = event.decode("utf-8")
            except UnicodeDecodeError:
                client.close(1007)
                return result + ["failed"], True
        if isinstance(event, WsFailed):
            return result + ["failed"], False
        if isinstance(event, (str, WsClosed)):
            result.append(event)
    return result, False


def feed(client: WebSocketClient, stream: bytes, cuts: list[int]) -> tuple[list[object], bool]:
    events: list[WsReceived] = []
    wrote = False
    start = 0
    for cut in sorted(set(cuts)) + [len(stream)]:
        if cut <= start:
            continue
        got, out = client.receive(stream[start:cut])
        events += got
        wrote = wrote or bool(out)
        start = cut
    got, out = client.receive(b"")
    result, closed = read(client, events + got)
    return result, wrote or bool(out) or closed


@settings(max_examples=400, deadline=None)
@given(st.lists(frames, min_size=1, max_size=8), st.lists(st.integers(0, 4000), max_size=6))
def test_direct_decoding_and_wsproto_agree_on_every_split(parts: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(parts)
    cuts = [c % (len(stream) + 1) for c in cuts]
    assert feed(opened_client(True), stream, cuts) == feed(opened_client(False), stream, cuts)


def test_plain_text_frames_are_decoded_without_wsproto() -> None:
    client = opened_client(True)
    data = b"".join(frame(0x81, f'{{"op":0,"s":{i}}}'.encode()) for i in range(3))
    events, out = client.receive(data[:7])
    assert events == [] and out == b""
    events, out = client.receive(data[7:])
    # The first frame came in two reads and was decoded piece by piece; the others came whole.
    assert events == ['{"op":0,"s":0}', b'{"op":0,"s":1}', b'{"op":0,"s":2}']


def test_client_frames_are_masked_with_the_injected_rng() -> None:
    one, two = opened_client(True), opened_client(True)
    assert one.send_text('{"op":1,"d":null}') == two.send_text('{"op":1,"d":null}')
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(one.handshake_bytes())
    list(server.events())
    server.send(AcceptConnection())
    server.receive_data(one.send_text("héllo") + one.close(4000, "bye"))
    kinds = [type(e).__name__ for e in server.events()]
    assert kinds == ["TextMessage", "CloseConnection"]
