"""Drive a :class:`~qqproto.QQGatewayConnection` on the running asyncio loop.

One task per socket connects (TLS verified by default) and reads; writes go straight to the
stream; one ``loop.call_at`` timer keeps the core's ``next_timer()``; ``now`` is ``loop.time()``.

Buffering: application events wait in a queue of at most ``max_pending_events``.  While it is
full no socket is read, so the platform meets TCP backpressure; heartbeats still go out from
the timer.  A stall longer than a heartbeat interval costs the socket (no ACK is read), and the
core resumes: the platform replays what was not read, so nothing is lost.  Notices
(HeartbeatSent/Acked, TimerLate, ReconnectScheduled) are dropped while the queue is full;
Ready, Resumed and Dispatch never are.
"""

from __future__ import annotations

import asyncio
import random
import ssl
from types import TracebackType
from typing import Any, ContextManager, Optional

from qqproto import Action, GatewayConfig, OpenSocket, QQGatewayConnection

from ._common import DEFAULT_MAX_PENDING_EVENTS, READ_SIZE, Driver, EventQueue, GatewayFatalError, describe

__all__ = ["Gateway", "GatewayFatalError", "open_gateway"]


def open_gateway(
    config: GatewayConfig,
    ssl_context: Optional[ssl.SSLContext] = None,
    *,
    rng: Optional[random.Random] = None,
    max_pending_events: int = DEFAULT_MAX_PENDING_EVENTS,
) -> Gateway:
    """Connect on entering ``async with``; close gracefully and release every socket on leaving."""
    return Gateway(QQGatewayConnection(config, rng), config, ssl_context, EventQueue(max_pending_events))


class Gateway(Driver):
    """A connection running on the current loop: ``async for`` its events, ask ``health()`` any time."""

    def __init__(
        self,
        conn: QQGatewayConnection,
        config: GatewayConfig,
        ssl_context: Optional[ssl.SSLContext],
        events: EventQueue,
        lock: Optional[ContextManager[Any]] = None,
    ) -> None:
        super().__init__(conn, config, ssl_context, events, lock)
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._sockets: dict[int, asyncio.Task[None]] = {}
        self._writers: dict[int, asyncio.StreamWriter] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: Optional[asyncio.TimerHandle] = None
        self._arrived = asyncio.Event()
        self._room = asyncio.Event()

    async def __aenter__(self) -> Gateway:
        self._loop = asyncio.get_running_loop()
        self.feed(self.conn.start)
        return self

    async def __aexit__(
        self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        self.begin_close()
        try:
            await asyncio.wait_for(self._stopped(), self.close_timeout)
        except asyncio.TimeoutError:
            pass
        for sock_id in list(self._sockets):
            self.close_socket(sock_id)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.set_timer(None)
        self.events.finish()
        self.wake_consumer()

    def __aiter__(self) -> Gateway:
        return self

    async def __anext__(self) -> Action:
        while (event := self.take_event()) is None:
            self._arrived.clear()
            await self._arrived.wait()
        return event

    async def _stopped(self) -> None:
        while not self.stopped:
            self._arrived.clear()
            await self._arrived.wait()

    # -- Driver -------------------------------------------------------------------------

    def now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def open_socket(self, action: OpenSocket) -> None:
        assert self._loop is not None
        task = self._sockets[action.sock_id] = self._loop.create_task(self._serve(action))
        self._tasks.add(task)
        task.add_done_callback(self._served)

    def send(self, sock_id: int, data: bytes) -> None:
        writer = self._writers.get(sock_id)
        if writer is not None:  # None once the peer closed it: asyncio drops such writes too
            writer.write(data)

    def close_socket(self, sock_id: int) -> None:
        self._sockets.pop(sock_id).cancel()

    def set_timer(self, due: Optional[float]) -> None:
        if self._timer is not None:
            if self._timer.when() == due:
                return
            self._timer.cancel()
            self._timer = None
        if due is not None:
            assert self._loop is not None
            self._timer = self._loop.call_at(due, self._on_timer)

    def wake_consumer(self) -> None:
        self._arrived.set()

    def resume_reading(self) -> None:
        self._room.set()

    # -- tasks and callbacks --------------------------------------------------------------

    async def _serve(self, action: OpenSocket) -> None:
        """Connect, then read until EOF or an error; the stream is closed however this ends."""
        try:
            try:
                reader, self._writers[action.sock_id] = await asyncio.open_connection(
                    action.host,
                    action.port,
                    ssl=self.ssl_context if action.tls else None,
                    server_hostname=action.server_hostname if action.tls else None,
                )
            except Exception as exc:
                self.feed(self.conn.socket_failed, action.sock_id, describe(exc))
                return
            self.feed(self.conn.socket_opened, action.sock_id)
            while True:
                while self.paused:
                    self._room.clear()
                    await self._room.wait()
                try:
                    data = await reader.read(READ_SIZE)
                except Exception as exc:
                    self.feed(self.conn.socket_failed, action.sock_id, describe(exc))
                    return
                self.feed(self.conn.receive_data, action.sock_id, data)
                if not data:
                    return
        finally:
            writer = self._writers.pop(action.sock_id, None)
            if writer is not None:
                await self._close_stream(writer)

    async def _close_stream(self, writer: asyncio.StreamWriter) -> None:
        """Flush and close, TLS close_notify included; abort if that takes longer than ``close_timeout``."""
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), self.close_timeout)
        except Exception:
            writer.transport.abort()

    def _served(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        error = None if task.cancelled() else task.exception()
        if error is not None:
            self.fail(error)

    def _on_timer(self) -> None:
        self._timer = None
        try:
            self.feed(self.conn.handle_timer)
        except Exception as exc:
            self.fail(exc)
