"""Sends in webhook mode: a :class:`~qqproto.QQApiConnection` on the runtime's own driver, no gateway.

Each runtime's driver (``transports.asyncio.Gateway``, ``transports.trio.Gateway``) runs the API
connection as it runs the gateway connection: the same sockets, timer, send policy and events.
"""

from __future__ import annotations

import contextlib
import random
import ssl
from collections.abc import AsyncIterator

from qqproto import GatewayConfig, QQApiConnection

from ._common import Driver, EventQueue

__all__ = ["open_sender"]


@contextlib.asynccontextmanager
async def open_sender(
    runtime: str, config: GatewayConfig, ssl_context: ssl.SSLContext | None, max_pending_events: int
) -> AsyncIterator[Driver]:
    """An API connection running on ``runtime`` (asyncio or trio) while inside ``async with``."""
    conn = QQApiConnection(config, random.Random(), mode="webhook")
    events = EventQueue(max_pending_events)
    if runtime == "trio":
        import trio

        from .trio import Gateway as TrioDriver

        async with trio.open_nursery() as nursery:
            driver = TrioDriver(conn, config, ssl_context, events, nursery)
            await driver.start()
            try:
                yield driver
            finally:
                with trio.CancelScope(shield=True):
                    await driver.aclose()
    else:
        from .asyncio import Gateway as AsyncioDriver

        async with AsyncioDriver(conn, config, ssl_context, events) as asyncio_driver:
            yield asyncio_driver
