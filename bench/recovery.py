"""Recovery from an idle-session close (4009) to RESUMED, against the cost of one fresh connection."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import trio

import transports.asyncio
import transports.trio
from qqproto import GatewayConfig, Ready, Resumed
from qqproto.testing import PlatformConfig
from transports.threaded import GatewayThread

from ._server import Endpoints, Server
from ._settings import Settings
from ._stats import Figures, median

__all__ = ["run"]

IDLE_CLOSE = 4009
#: Each close comes after the session was healthy this long, as the platform's idle closes do (~30 min apart).
HEALTHY_AFTER = 0.05
#: A masked client frame with an all-zero mask: op 1, the heartbeat.
HEARTBEAT = bytes((0x81, 0x80 | 17)) + bytes(4) + b'{"op":1,"d":null}'

Measure = Callable[[], float]
#: (recovery, floor measured just before it), in seconds, for each close.
Times = list[tuple[float, float]]


def client_config(server: Server) -> GatewayConfig:
    """A client whose sessions count as healthy after ``HEALTHY_AFTER``, so that every close is resumed at once."""
    return server.client_config(healthy_after=HEALTHY_AFTER, quick_disconnect_window=HEALTHY_AFTER)


def handshake_floor(endpoints: Endpoints, context: ssl.SSLContext) -> float:
    """Seconds for a bare client to open TCP, TLS and the WebSocket (Hello read), then one round trip (op 1 to op 11)."""
    url = urlsplit(endpoints.gateway_url)
    host, port = url.hostname or "", url.port or 443
    request = (
        f"GET {url.path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    start = time.monotonic()
    with socket.create_connection((host, port)) as raw, context.wrap_socket(raw, server_hostname=host) as tls:
        tls.sendall(request)
        received = b""
        while (
            (end := received.find(b"\r\n\r\n")) < 0
            or len(received) < end + 6
            or len(received) < end + 6 + received[end + 5]
        ):
            received += tls.recv(65536)
        tls.sendall(HEARTBEAT)
        ack = b""
        while len(ack) < 2 or len(ack) < 2 + ack[1]:
            ack += tls.recv(65536)
        elapsed = time.monotonic() - start
    if json.loads(ack[2:]) != {"op": 11}:
        raise RuntimeError(f"expected a heartbeat ACK, got {ack!r}")
    return elapsed


async def _recover_through(
    open_gateway: Callable[..., Any],
    sleep: Callable[[float], Awaitable[None]],
    server: Server,
    reps: int,
    floor: Measure,
) -> Times:
    """Recovery times on an ``async for`` transport (asyncio or trio), each with a floor measured just before it."""
    times = []
    async with open_gateway(client_config(server), server.ssl_context()) as gateway:
        async for event in gateway:
            if isinstance(event, Ready):
                break
        for _ in range(reps):
            await sleep(2 * HEALTHY_AFTER)
            base = floor()
            server.close_gateway(IDLE_CLOSE)
            async for event in gateway:
                if isinstance(event, Resumed):
                    break
            times.append((time.monotonic() - server.wait(), base))
    return times


def on_asyncio(server: Server, reps: int, floor: Measure) -> Times:
    """Recovery times on the asyncio transport, each with a floor measured just before it."""
    return asyncio.run(_recover_through(transports.asyncio.open_gateway, asyncio.sleep, server, reps, floor))


def on_trio(server: Server, reps: int, floor: Measure) -> Times:
    """Recovery times on the trio transport, each with a floor measured just before it."""
    return trio.run(_recover_through, transports.trio.open_gateway, trio.sleep, server, reps, floor)


def on_thread(server: Server, reps: int, floor: Measure) -> Times:
    """Recovery times on the thread transport, each with a floor measured just before it."""
    times = []
    gateway = GatewayThread(client_config(server), server.ssl_context())
    gateway.start()
    try:
        events = gateway.events()
        for event in events:
            if isinstance(event, Ready):
                break
        for _ in range(reps):
            time.sleep(2 * HEALTHY_AFTER)
            base = floor()
            server.close_gateway(IDLE_CLOSE)
            for event in events:
                if isinstance(event, Resumed):
                    break
            times.append((time.monotonic() - server.wait(), base))
    finally:
        gateway.stop()
    return times


TRANSPORTS: dict[str, Callable[[Server, int, Measure], Times]] = {
    "asyncio": on_asyncio,
    "trio": on_trio,
    "thread": on_thread,
}


def run(settings: Settings) -> Figures:
    """The slowest transport's median recovery over the median floor measured alongside it."""
    with Server(PlatformConfig(identify_window=0.0)) as server:  # identifies back to back, unrationed
        context = server.ssl_context()

        def floor() -> float:
            return handshake_floor(server.endpoints, context)

        ratios = []
        for measure in TRANSPORTS.values():
            recoveries, floors = zip(*measure(server, settings.recovery_closes, floor))
            ratios.append(median(recoveries) / median(floors))
    return {"recovery_vs_floor": max(ratios)}
