"""One asyncio socket of a driver: an ``asyncio.Protocol`` that feeds arriving bytes straight to the core."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ._common import Driver, describe

__all__ = ["Stream"]


class Stream(asyncio.Protocol):
    """One socket: bytes that arrive go straight to the core, with no reader task in between.

    Reading pauses while the event queue is full.  What happens before the core has heard that
    the socket opened waits for it, in order; nothing reaches the core once it closed the socket.
    """

    def __init__(self, gateway: Driver, sock_id: int, loop: asyncio.AbstractEventLoop) -> None:
        self._gateway = gateway
        self._sock_id = sock_id
        self._early: list[tuple[Callable[..., None], tuple[Any, ...]]] | None = []
        self._ended = False
        self._paused = False
        self.transport: asyncio.Transport
        self.closed = False  # by the core
        self.lost: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def opened(self) -> None:
        """The core knows the socket is open, and the gateway lists it: hand the core what came early."""
        early, self._early = self._early, None
        for method, args in early or ():
            self._feed(method, *args)
        self._pause_if_full()

    def resume(self) -> None:
        """Read again after a pause for a full queue."""
        if self._paused:
            self._paused = False
            try:
                self.transport.resume_reading()
            except Exception:
                pass  # the connection is already gone (Python 3.10 raises); connection_lost tells the core

    def data_received(self, data: bytes) -> None:
        self._feed(self._gateway.conn.receive_data, data)
        if self._early is None:  # before that, the gateway does not list it, so nothing would resume it
            self._pause_if_full()

    def _pause_if_full(self) -> None:
        if self._gateway.paused and not self.closed and not self._paused:
            self._paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self._end(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        self._end(exc)

    def _end(self, exc: Exception | None) -> None:
        if not self._ended:
            self._ended = True
            if exc is None:
                self._feed(self._gateway.conn.receive_data, b"")
            else:
                self._feed(self._gateway.conn.socket_failed, describe(exc))

    def _feed(self, method: Callable[..., None], *args: Any) -> None:
        if self.closed:
            return
        if self._early is not None:
            self._early.append((method, args))
            return
        try:
            self._gateway.feed(method, self._sock_id, *args)
        except Exception as exc:
            self._gateway.fail(exc)
