"""Runs one of the three transports for the command line: events to a callback, a health tick, a stop rule."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import AsyncIterator, Callable, Optional

from qqproto import Action, GatewayConfig, Health, SessionStore

TRANSPORTS = ("thread", "asyncio", "trio")
TICK = 0.25

OnEvent = Callable[[Action], None]
OnTick = Callable[[Health], None]
Until = Callable[[], bool]


def run(
    transport: str,
    config: GatewayConfig,
    ssl_context: Optional[ssl.SSLContext],
    *,
    on_event: OnEvent,
    on_tick: OnTick,
    until: Until = lambda: False,
    session_store: Optional[SessionStore] = None,
) -> None:
    """Run until ``until()`` holds; ``GatewayFatalError`` comes out when the core gives up.

    Stopping because ``until()`` held is graceful: with a ``session_store``, the last event
    handed to ``on_event`` is saved as finished and the session is kept for the next run.
    """
    if transport == "trio":
        import trio

        trio.run(_trio, config, ssl_context, on_event, on_tick, until, session_store)
    elif transport in ("asyncio", "thread"):
        asyncio.run(_asyncio(transport, config, ssl_context, on_event, on_tick, until, session_store))
    else:
        raise ValueError(f"unknown transport {transport!r}; choose one of {', '.join(TRANSPORTS)}")


async def _asyncio(
    transport: str,
    config: GatewayConfig,
    ssl_context: Optional[ssl.SSLContext],
    on_event: OnEvent,
    on_tick: OnTick,
    until: Until,
    session_store: Optional[SessionStore],
) -> None:
    if transport == "thread":
        from transports.threaded import GatewayThread

        thread = GatewayThread(config, ssl_context, session_store=session_store)
        thread.start()
        try:
            await _consume(thread.aiter_events(), thread.health, on_event, on_tick, until)
        finally:
            thread.stop()
    else:
        from transports.asyncio import open_gateway

        async with open_gateway(config, ssl_context, session_store=session_store) as gateway:
            await _consume(gateway, gateway.health, on_event, on_tick, until)


async def _consume(
    events: AsyncIterator[Action], health: Callable[[], Health], on_event: OnEvent, on_tick: OnTick, until: Until
) -> None:
    async def consume() -> None:
        async for event in events:
            on_event(event)

    task = asyncio.ensure_future(consume())
    try:
        while not task.done() and not until():
            await asyncio.wait({task}, timeout=TICK)
            on_tick(health())
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if not task.cancelled():
        task.result()


async def _trio(
    config: GatewayConfig,
    ssl_context: Optional[ssl.SSLContext],
    on_event: OnEvent,
    on_tick: OnTick,
    until: Until,
    session_store: Optional[SessionStore],
) -> None:
    import trio

    from transports.trio import GatewayFatalError, open_gateway

    failure: list[GatewayFatalError] = []
    async with open_gateway(config, ssl_context, session_store=session_store) as gateway:
        async with trio.open_nursery() as nursery:

            async def consume() -> None:
                try:
                    async for event in gateway:
                        on_event(event)
                except GatewayFatalError as exc:
                    failure.append(exc)
                nursery.cancel_scope.cancel()

            nursery.start_soon(consume)
            while not until():
                await trio.sleep(TICK)
                on_tick(gateway.health())
            nursery.cancel_scope.cancel()
    if failure:
        raise failure[0]
