"""One qqproto connection per shard, on the application's loop (asyncio) or on a thread of its own."""

from __future__ import annotations

import abc
import asyncio
import ssl
import time
from collections.abc import AsyncIterator

from qqproto import Action, GatewayConfig, Health, OutgoingMessage
from transports.asyncio import Gateway, open_gateway
from transports.threaded import GatewayThread

__all__ = ["TRANSPORTS", "Shard"]


class Shard(abc.ABC):
    """A running gateway connection for one shard, as the bridge uses it."""

    def __init__(self, config: GatewayConfig, ssl_context: ssl.SSLContext | None) -> None:
        self.config = config

    @abc.abstractmethod
    async def start(self) -> None:
        """Begin connecting."""

    @abc.abstractmethod
    def events(self) -> AsyncIterator[Action]:
        """Its events on the application's loop; raises ``GatewayFatalError`` on Fatal."""

    @abc.abstractmethod
    def send_message(self, message: OutgoingMessage) -> int:
        """Hand a message to the connection; its outcome comes among the events."""

    @abc.abstractmethod
    def health(self) -> Health:
        """The connection's health now."""

    @property
    @abc.abstractmethod
    def access_token(self) -> str | None:
        """The token the connection holds."""

    @abc.abstractmethod
    def now(self) -> float:
        """The connection's clock, for ``OutgoingMessage.received_at``."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Close gracefully and release the connection."""


class AsyncioShard(Shard):
    """The connection on the application's own loop: :func:`transports.asyncio.open_gateway`."""

    def __init__(self, config: GatewayConfig, ssl_context: ssl.SSLContext | None) -> None:
        super().__init__(config, ssl_context)
        self._gateway: Gateway = open_gateway(config, ssl_context)

    async def start(self) -> None:
        await self._gateway.__aenter__()

    def events(self) -> AsyncIterator[Action]:
        return self._gateway

    def send_message(self, message: OutgoingMessage) -> int:
        return self._gateway.send_message(message)

    def health(self) -> Health:
        return self._gateway.health()

    @property
    def access_token(self) -> str | None:
        return self._gateway.conn.access_token

    def now(self) -> float:
        return self._gateway.now()

    async def stop(self) -> None:
        await self._gateway.__aexit__(None, None, None)


class ThreadShard(Shard):
    """The connection on a :class:`transports.threaded.GatewayThread`: heartbeats go on while the loop blocks."""

    def __init__(self, config: GatewayConfig, ssl_context: ssl.SSLContext | None) -> None:
        super().__init__(config, ssl_context)
        self._thread = GatewayThread(config, ssl_context)

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._thread.start)

    def events(self) -> AsyncIterator[Action]:
        return self._thread.aiter_events()

    def send_message(self, message: OutgoingMessage) -> int:
        return self._thread.send_message(message)

    def health(self) -> Health:
        return self._thread.health()

    @property
    def access_token(self) -> str | None:
        return self._thread.access_token

    def now(self) -> float:
        return time.monotonic()  # the thread transport's clock

    async def stop(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._thread.stop)


#: The ``transport=`` choices.
TRANSPORTS: dict[str, type[Shard]] = {"asyncio": AsyncioShard, "thread": ThreadShard}
