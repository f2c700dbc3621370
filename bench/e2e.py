"""End to end on loopback TLS: a server streams dispatches to each transport and to an aiohttp client."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import trio

import transports.asyncio
import transports.trio
from qqproto import Dispatch, Intents, Ready
from qqproto.testing import PlatformConfig
from transports.threaded import GatewayThread

from ._server import Server
from ._settings import Settings
from ._stats import Figures, median

#: open_gateway of transports.asyncio or transports.trio: same arguments, same async context manager.
OpenGateway = Callable[..., Any]

__all__ = ["run"]

INTENTS = Intents.GROUP_AND_C2C_EVENT | Intents.PUBLIC_GUILD_MESSAGES


class Clock:
    """When the first and the last of ``count`` dispatches reached the application."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.seen = 0
        self.first = self.last = 0.0

    def tick(self) -> bool:
        """One dispatch arrived; True once all have."""
        now = time.perf_counter()
        self.seen += 1
        if self.seen == 1:
            self.first = now
        if self.seen == self.count:
            self.last = now
        return self.seen == self.count

    @property
    def rate(self) -> float:
        """Dispatches per second between the first and the last."""
        return (self.count - 1) / (self.last - self.first)


async def _stream_through(open_gateway: OpenGateway, server: Server, count: int) -> float:
    """Read ``count`` dispatches through an ``async for`` transport (asyncio or trio)."""
    clock = Clock(count)
    async with open_gateway(server.client_config(), server.ssl_context()) as gateway:
        async for event in gateway:
            if isinstance(event, Ready):
                server.stream(count)
            elif type(event) is Dispatch and clock.tick():
                break
    server.wait()
    return clock.rate


def via_asyncio(server: Server, count: int) -> float:
    """The asyncio transport; the application is an ``async for`` on the same loop."""
    return asyncio.run(_stream_through(transports.asyncio.open_gateway, server, count))


def via_trio(server: Server, count: int) -> float:
    """The trio transport; the application is an ``async for`` in the same run."""
    return trio.run(_stream_through, transports.trio.open_gateway, server, count)


def via_thread(server: Server, count: int) -> float:
    """The thread transport; the application is a blocking ``for`` over ``events()`` on the main thread."""
    clock = Clock(count)
    gateway = GatewayThread(server.client_config(), server.ssl_context())
    gateway.start()
    try:
        for event in gateway.events():
            if isinstance(event, Ready):
                server.stream(count)
            elif type(event) is Dispatch and clock.tick():
                break
    finally:
        gateway.stop()
    server.wait()
    return clock.rate


def via_aiohttp(server: Server, count: int) -> float:
    """aiohttp's WebSocket client, as botpy uses it: token, Identify, then ``receive()`` and json.loads."""
    e = server.endpoints

    async def main() -> float:
        clock = Clock(count)
        async with aiohttp.ClientSession() as session:
            async with session.post(
                e.token_url, json={"appId": e.app_id, "clientSecret": e.client_secret}, ssl=server.ssl_context()
            ) as answer:
                token = (await answer.json())["access_token"]
            async with session.ws_connect(e.gateway_url, ssl=server.ssl_context()) as ws:
                await ws.receive()  # Hello
                identify = {"token": f"QQBot {token}", "intents": int(INTENTS), "shard": [0, 1], "properties": {}}
                await ws.send_str(json.dumps({"op": 2, "d": identify}))
                async for message in ws:
                    if message.type is not aiohttp.WSMsgType.TEXT:
                        break
                    payload = json.loads(message.data)
                    if payload.get("t") == "READY":
                        server.stream(count)
                    elif payload.get("op") == 0 and clock.tick():
                        break
        server.wait()
        return clock.rate

    return asyncio.run(main())


TRANSPORTS: dict[str, Callable[[Server, int], float]] = {
    "asyncio": via_asyncio,
    "trio": via_trio,
    "thread": via_thread,
}


def run(settings: Settings) -> Figures:
    """Each transport's dispatch rate over aiohttp's, median over repetitions that interleave them."""
    count = settings.e2e_messages
    ratios: dict[str, list[float]] = {name: [] for name in TRANSPORTS}
    with Server(PlatformConfig(identify_window=0.0)) as server:  # identifies back to back, unrationed
        for _ in range(settings.reps):
            peer = via_aiohttp(server, count)
            for name, client in TRANSPORTS.items():
                ratios[name].append(client(server, count) / peer)
    per_transport = {name: median(values) for name, values in ratios.items()}
    return {"e2e_best_vs_aiohttp": max(per_transport.values()), "e2e_vs_aiohttp": per_transport}
