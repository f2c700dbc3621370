"""Heartbeats while the application blocks its loop: how late the server sees them, per transport."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import trio

import transports.asyncio
import transports.trio
from qqproto import Action, GatewayConfig, Health
from qqproto.testing import PlatformConfig
from transports.threaded import GatewayThread

from ._server import Server
from ._settings import Settings
from ._stats import Figures, percentile

__all__ = ["run"]

#: How long each block lasts, in heartbeat periods.
BLOCKED_PERIODS = 3
#: Calm periods before each block and after the last one.
CALM_PERIODS = 2
HEARTBEAT_RATIO = 0.8

Windows = list[tuple[float, float]]


def client_config(server: Server, period: float) -> GatewayConfig:
    """A client that counts a session healthy after one period, so each block is recovered on its own.

    Without it the blocks, two periods apart, would read as a flapping connection and earn its cooldown.
    """
    return server.client_config(
        healthy_after=period, quick_disconnect_window=period, heartbeat_interval_bounds=(0.05, 600.0)
    )


def block(seconds: float) -> tuple[float, float]:
    """Keep the calling thread busy in Python, holding the GIL as a CPU-bound handler would."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        pass
    return start, time.monotonic()


async def _blocks(
    sleep: Callable[[float], Awaitable[None]], health: Callable[[], Health], period: float, blocks: int
) -> Windows:
    """Once connected: calm, block, calm, ..., block, calm: the application's side of every run; the blocks' windows.

    A block before the session is up would measure the connect, not the heartbeats (and, on a
    slow machine, leave no beat to measure at all).
    """
    while not health().connected:
        await sleep(period / 10)
    windows = []
    for _ in range(blocks):
        await sleep(CALM_PERIODS * period)
        windows.append(block(BLOCKED_PERIODS * period))
    await sleep(CALM_PERIODS * period)
    return windows


async def _drain(events: AsyncIterator[Action]) -> None:
    async for _ in events:
        pass


def on_asyncio(server: Server, period: float, blocks: int) -> Windows:
    """The application shares its asyncio loop with the transport and blocks it."""

    async def main() -> Windows:
        async with transports.asyncio.open_gateway(client_config(server, period), server.ssl_context()) as gateway:
            consumer = asyncio.create_task(_drain(gateway))
            windows = await _blocks(asyncio.sleep, gateway.health, period, blocks)
            consumer.cancel()
        return windows

    return asyncio.run(main())


def on_trio(server: Server, period: float, blocks: int) -> Windows:
    """The application shares its trio run with the transport and blocks it."""

    async def main() -> Windows:
        async with transports.trio.open_gateway(client_config(server, period), server.ssl_context()) as gateway:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_drain, gateway)
                windows = await _blocks(trio.sleep, gateway.health, period, blocks)
                nursery.cancel_scope.cancel()
        return windows

    return trio.run(main)


def on_thread(server: Server, period: float, blocks: int) -> Windows:
    """The connection lives on its own thread; the application's asyncio loop reads its events and blocks."""

    async def main(gateway: GatewayThread) -> Windows:
        consumer = asyncio.create_task(_drain(gateway.aiter_events()))
        windows = await _blocks(asyncio.sleep, gateway.health, period, blocks)
        consumer.cancel()
        return windows

    gateway = GatewayThread(client_config(server, period), server.ssl_context())
    gateway.start()
    try:
        return asyncio.run(main(gateway))
    finally:
        gateway.stop()


TRANSPORTS: dict[str, Callable[[Server, float, int], Windows]] = {
    "asyncio": on_asyncio,
    "trio": on_trio,
    "thread": on_thread,
}


def lateness(beats: list[float], windows: Windows, period: float, until: float) -> list[float]:
    """For each gap between beats the server saw that overlaps a block: how much longer than one period it was.

    A block with no beat after it counts its silence up to ``until``, the end of the last calm stretch.
    """
    late = []
    for earlier, later in zip(beats, [*beats[1:], until]):
        if any(earlier < end and later > start for start, end in windows):
            late.append(max(0.0, later - earlier - period))
    return late


def run(settings: Settings) -> Figures:
    """p99 lateness in ms per transport, over ``settings.reps`` blocks of three heartbeat periods each."""
    interval_ms = settings.heartbeat_interval_ms
    period = interval_ms / 1000 * HEARTBEAT_RATIO
    p99: dict[str, float] = {}
    with Server(PlatformConfig(heartbeat_interval_ms=interval_ms, identify_window=0.0)) as server:
        for name, app in TRANSPORTS.items():
            seen = len(server.heartbeat_times())
            windows = app(server, period, settings.reps)
            beats = server.heartbeat_times()[seen:]
            until = windows[-1][1] + CALM_PERIODS * period
            p99[name] = percentile(lateness(beats, windows, period, until), 0.99) * 1000
    return {"heartbeat_p99_lateness_ms_thread": p99["thread"], "heartbeat_p99_lateness_ms": p99}
