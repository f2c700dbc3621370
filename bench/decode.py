"""Dispatch decoding: bytes as a socket delivers them in, events out, against aiohttp, bare wsproto and json.loads."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable

from aiohttp import WSMsgType
from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
from aiohttp.helpers import DEFAULT_CHUNK_SIZE
from wsproto.connection import Connection, ConnectionType
from wsproto.events import TextMessage

from qqproto import Dispatch, _payloads
from qqproto.testing import DispatchGenerator, ServerSend

from ._pair import Pair
from ._settings import Settings
from ._stats import Figures, median, rate, timed

__all__ = ["Stream", "run"]

READ_SIZE = 64 * 1024
MAX_MESSAGE_SIZE = 4 * 1024 * 1024


class Stream:
    """``count`` realistic dispatches as the platform frames them, cut into socket-sized reads."""

    def __init__(self, count: int, seed: int = 0) -> None:
        pair = Pair(seed).connect()
        events = DispatchGenerator(random.Random(seed))
        for n in range(count):
            event_type, data, event_id = events.next(float(n))
            pair.platform.push_event(event_type, data, 0.0, event_id)
        wire = b"".join(a.data for a in pair.platform.next_actions() if isinstance(a, ServerSend))
        self.count = count
        self.chunks = [wire[i : i + READ_SIZE] for i in range(0, len(wire), READ_SIZE)]
        reader = Connection(ConnectionType.CLIENT)
        reader.receive_data(wire)
        self.payloads = [e.data.encode() for e in reader.events() if isinstance(e, TextMessage)]
        assert len(self.payloads) == count


def qqproto_core(stream: Stream) -> float:
    """Dispatches per second out of ``QQGatewayConnection.receive_data`` on a session at READY."""
    return _core_rate(stream)


def qqproto_core_json(stream: Stream) -> float:
    """:func:`qqproto_core` with json parsing every message, as without the ``speed`` extra."""
    fast_loads = _payloads.fast_loads
    _payloads.fast_loads = _payloads.loads_stdlib
    try:
        return _core_rate(stream)
    finally:
        _payloads.fast_loads = fast_loads


def _core_rate(stream: Stream) -> float:
    pair = Pair(1).connect()
    conn, sock_id = pair.conn, pair.gateway_sock
    assert sock_id is not None
    delivered = 0

    def decode() -> None:
        nonlocal delivered
        for chunk in stream.chunks:
            conn.receive_data(sock_id, chunk, 1.0)
            for action in conn.next_actions():
                if type(action) is Dispatch:
                    delivered += 1

    seconds = timed(decode)
    assert delivered == stream.count, (delivered, stream.count)
    return rate(delivered, seconds)


def aiohttp_reader(stream: Stream) -> float:
    """Messages per second through aiohttp's WebSocketReader and its queue, then json.loads."""

    class Transport:
        """The protocol half the queue pauses and resumes; reading never stalls here."""

        _reading_paused = False

        def pause_reading(self) -> None:
            self._reading_paused = True

        def resume_reading(self) -> None:
            self._reading_paused = False

    async def decode() -> int:
        queue = WebSocketDataQueue(Transport(), DEFAULT_CHUNK_SIZE, loop=asyncio.get_running_loop())  # type: ignore[arg-type]
        reader = WebSocketReader(queue, MAX_MESSAGE_SIZE, compress=False, decode_text=True)
        received = 0
        for chunk in stream.chunks:
            reader.feed_data(chunk)
            while queue._buffer:
                message = await queue.read()
                if message.type is WSMsgType.TEXT:
                    json.loads(message.data)
                    received += 1
        return received

    loop = asyncio.new_event_loop()
    try:
        received = 0

        def run() -> None:
            nonlocal received
            received = loop.run_until_complete(decode())

        seconds = timed(run)
    finally:
        loop.close()
    assert received == stream.count
    return rate(received, seconds)


def bare_wsproto(stream: Stream) -> float:
    """Messages per second through a bare wsproto connection, parts joined, then json.loads."""
    ws = Connection(ConnectionType.CLIENT)
    parts: list[str] = []
    received = 0

    def decode() -> None:
        nonlocal received
        for chunk in stream.chunks:
            ws.receive_data(chunk)
            for event in ws.events():
                if isinstance(event, TextMessage):
                    parts.append(event.data)
                    if event.message_finished:
                        json.loads("".join(parts))
                        parts.clear()
                        received += 1

    seconds = timed(decode)
    assert received == stream.count
    return rate(received, seconds)


def json_only(stream: Stream) -> float:
    """Payloads per second through json.loads alone, from the UTF-8 bytes of each payload."""
    loads = json.loads

    def decode() -> None:
        for payload in stream.payloads:
            loads(payload)

    return rate(stream.count, timed(decode))


PEERS: dict[str, Callable[[Stream], float]] = {
    "decode_vs_aiohttp": aiohttp_reader,
    "decode_vs_wsproto_floor": bare_wsproto,
    "decode_vs_json_limit": json_only,
}


def run(settings: Settings) -> Figures:
    """Each key: the core's dispatch rate over the peer's, median over repetitions that interleave them.

    ``decode_json_vs_aiohttp`` is the core parsing with json alone, as it does without the ``speed`` extra.
    """
    stream = Stream(settings.decode_messages)
    ratios: dict[str, list[float]] = {key: [] for key in [*PEERS, "decode_json_vs_aiohttp"]}
    for _ in range(settings.reps):
        ours, ours_json = qqproto_core(stream), qqproto_core_json(stream)
        for key, peer in PEERS.items():
            theirs = peer(stream)
            ratios[key].append(ours / theirs)
            if peer is aiohttp_reader:
                ratios["decode_json_vs_aiohttp"].append(ours_json / theirs)
    return {key: median(values) for key, values in ratios.items()}
