"""Runs one of the three transports for the command line: events to a callback, a health tick, a stop rule.

``on_end`` gets the health once the gateway has stopped, however it stopped (a close, ``Fatal``,
an error of the consumer's, Ctrl-C), so that the last word of a health file is the true one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from qqproto import Action, GatewayConfig, Health, SessionStore

TRANSPORTS = ("thread", "asyncio", "trio")
TICK = 0.25

OnEvent = Callable[[Action], None]
OnTick = Callable[[Health], None]
Until = Callable[[], bool]


@dataclass(frozen=True)
class _Hooks:
    """What the caller hears: each event, a health tick, when to stop, and the final health; and the store."""

    on_event: OnEvent
    on_tick: OnTick
    until: Until
    on_end: OnTick
    session_store: SessionStore | None = None


def run(
    transport: str,
    config: GatewayConfig,
    ssl_context: ssl.SSLContext | None,
    *,
    on_event: OnEvent,
    on_tick: OnTick,
    until: Until = lambda: False,
    on_end: OnTick = lambda health: None,
    session_store: SessionStore | None = None,
) -> None:
    """Run until ``until()`` holds; ``GatewayFatalError`` comes out when the core gives up.

    Stopping because ``until()`` held is graceful: with a ``session_store``, the last event
    handed to ``on_event`` is saved as finished and the session is kept for the next run.
    """
    hooks = _Hooks(on_event, on_tick, until, on_end, session_store)
    if transport == "trio":
        import trio

        trio.run(_trio, config, ssl_context, hooks)
    elif transport in ("asyncio", "thread"):
        asyncio.run(_asyncio(transport, config, ssl_context, hooks))
    else:
        raise ValueError(f"unknown transport {transport!r}; choose one of {', '.join(TRANSPORTS)}")


async def _asyncio(transport: str, config: GatewayConfig, ssl_context: ssl.SSLContext | None, hooks: _Hooks) -> None:
    if transport == "thread":
        from transports.threaded import GatewayFatalError, GatewayThread

        thread = GatewayThread(config, ssl_context, session_store=hooks.session_store)
        thread.start()
        handled = False  # the last event printed counts as finished only if printing it did not fail
        try:
            await _consume(thread.aiter_events(), thread.health, hooks)
            handled = True
        except GatewayFatalError:
            handled = True
            raise
        finally:
            thread.stop(last_event_finished=handled)
            hooks.on_end(thread.health())
    else:
        from transports.asyncio import open_gateway

        gateway = open_gateway(config, ssl_context, session_store=hooks.session_store)
        try:
            async with gateway:
                await _consume(gateway, gateway.health, hooks)
        finally:
            hooks.on_end(gateway.health())


async def _consume(events: AsyncIterator[Action], health: Callable[[], Health], hooks: _Hooks) -> None:
    async def consume() -> None:
        async for event in events:
            hooks.on_event(event)

    task = asyncio.ensure_future(consume())
    try:
        while not task.done() and not hooks.until():
            await asyncio.wait({task}, timeout=TICK)
            hooks.on_tick(health())
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if not task.cancelled():
        task.result()


async def _trio(config: GatewayConfig, ssl_context: ssl.SSLContext | None, hooks: _Hooks) -> None:
    import trio

    from transports.trio import Gateway, GatewayFatalError, one_error_as_itself, open_gateway

    failure: list[GatewayFatalError] = []
    opened: list[Gateway] = []
    try:
        async with open_gateway(config, ssl_context, session_store=hooks.session_store) as gateway:
            opened.append(gateway)
            with one_error_as_itself():  # Ctrl-C or a consumer's error, alone
                async with trio.open_nursery() as nursery:

                    async def consume() -> None:
                        try:
                            async for event in gateway:
                                hooks.on_event(event)
                        except GatewayFatalError as exc:
                            failure.append(exc)
                        nursery.cancel_scope.cancel()

                    nursery.start_soon(consume)
                    while not hooks.until():
                        await trio.sleep(TICK)
                        hooks.on_tick(gateway.health())
                    nursery.cancel_scope.cancel()
    finally:
        if opened:
            hooks.on_end(opened[0].health())
    if failure:
        raise failure[0]
