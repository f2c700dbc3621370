"""Drive a :class:`~qqproto.QQGatewayConnection` on the running asyncio loop.

Each socket is an ``asyncio.Protocol`` (TLS verified by default, over memory BIOs so that an idle
socket holds no read buffer): bytes that arrive are fed to the core from ``data_received``, writes
go straight to the transport; one ``loop.call_at`` timer keeps the core's ``next_timer()``;
``now`` is ``loop.time()``.

Buffering: application events wait in a queue of at most ``max_pending_events``.  While it is
full, each socket stops being read as soon as it delivers bytes (``pause_reading``), so the
platform meets TCP backpressure; all resume once there is room.  Heartbeats still go out from
the timer.  A stall longer than a heartbeat interval costs the socket (no ACK is read), and the
core resumes: the platform replays what was not read, so nothing is lost.  Notices
(HeartbeatSent/Acked, TimerLate, ReconnectScheduled) are dropped while the queue is full;
Ready, Resumed and Dispatch never are.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, ContextManager

from qqproto import Action, GatewayConfig, OpenSocket, QQGatewayConnection, SessionStore

from ._asyncio_stream import Stream
from ._asyncio_tls import open_tls
from ._common import DEFAULT_MAX_PENDING_EVENTS, Connection, Driver, EventQueue, GatewayFatalError, describe
from ._session_keeper import SessionKeeper, keeper_for
from ._webhook_gateway import WebhookGateway  # needs the webhook extra
from ._webhook_gateway import open_asyncio_webhook as open_webhook

__all__ = ["Gateway", "GatewayFatalError", "WebhookGateway", "open_gateway", "open_webhook"]


def open_gateway(
    config: GatewayConfig,
    ssl_context: ssl.SSLContext | None = None,
    *,
    rng: random.Random | None = None,
    max_pending_events: int = DEFAULT_MAX_PENDING_EVENTS,
    session_store: SessionStore | None = None,
) -> Gateway:
    """Connect on entering ``async with``; close gracefully and release every socket on leaving.

    With a ``session_store``, the session saved there is resumed, progress is saved as the
    application finishes each event, and leaving ``async with`` without an exception counts the
    last event as finished, saves, and closes keeping the session for the next process.
    """
    conn = QQGatewayConnection(config, rng)
    keeper = keeper_for(session_store, config)
    return Gateway(conn, config, ssl_context, EventQueue(max_pending_events), keeper=keeper)


class Gateway(Driver):
    """A connection running on the current loop: ``async for`` its events, ask ``health()`` any time."""

    def __init__(
        self,
        conn: Connection,
        config: GatewayConfig,
        ssl_context: ssl.SSLContext | None,
        events: EventQueue,
        lock: ContextManager[Any] | None = None,
        keeper: SessionKeeper | None = None,
    ) -> None:
        super().__init__(conn, config, ssl_context, events, lock, keeper)
        self._loop: asyncio.AbstractEventLoop | None = None
        with contextlib.suppress(RuntimeError):  # made on the loop (a fleet's shard): health works before start
            self._loop = asyncio.get_running_loop()
        self._connecting: dict[int, asyncio.Task[None]] = {}
        self._streams: dict[int, Stream] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._arrived = asyncio.Event()
        #: Leaving ``async with`` cleanly means the application is done with the last event.
        self.finish_last_on_exit = True

    async def __aenter__(self) -> Gateway:
        self._loop = asyncio.get_running_loop()
        keeper = self.keeper
        restored = await self._loop.run_in_executor(None, keeper.restore) if keeper else None
        if not self.stopped:  # abandon() may have come while the store was read
            self.begin(restored)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None and self.finish_last_on_exit:
            self.events.last_finished()
        self.begin_close()
        try:
            await asyncio.wait_for(self._stopped(), self.close_timeout)
        except asyncio.TimeoutError:
            pass
        for sock_id in [*self._connecting, *self._streams]:
            self.close_socket(sock_id)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.set_timer(None)
        self.events.finish()
        self.wake_consumer()
        if self.keeper is not None:
            assert self._loop is not None
            await self._loop.run_in_executor(None, self.keeper.close, self.close_timeout)

    async def abandon(self) -> None:
        """Stop at once without a word to the platform: another process serves this session now."""
        self.closing = self.stopped = True
        self.set_timer(None)
        for task in self._connecting.values():
            task.cancel()
        for stream in self._streams.values():
            stream.closed = True
            stream.transport.abort()
        self._connecting.clear()
        self._streams.clear()
        self.events.finish()
        self.wake_consumer()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.keeper is not None:
            assert self._loop is not None
            await self._loop.run_in_executor(None, self.keeper.close, 0.0)

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
        self._connecting[action.sock_id] = self._spawn(self._connect(action))

    def send(self, sock_id: int, data: bytes) -> None:
        stream = self._streams.get(sock_id)
        if stream is not None:  # None once the socket ended: asyncio drops such writes too
            stream.transport.write(data)

    def close_socket(self, sock_id: int) -> None:
        connecting = self._connecting.pop(sock_id, None)
        if connecting is not None:
            connecting.cancel()
            return
        stream = self._streams.pop(sock_id, None)
        if stream is not None:  # None: it failed to open
            stream.closed = True
            self._spawn(self._close_stream(stream))

    def set_timer(self, due: float | None) -> None:
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
        for stream in self._streams.values():
            stream.resume()

    # -- tasks and callbacks --------------------------------------------------------------

    async def _connect(self, action: OpenSocket) -> None:
        """Open TCP (and TLS); from then on the socket's protocol feeds the core as bytes arrive."""
        assert self._loop is not None
        stream = Stream(self, action.sock_id, self._loop)
        try:
            if action.tls:
                await open_tls(self._loop, stream, action.host, action.port, self.ssl_context, action.server_hostname)
            else:
                await self._loop.create_connection(lambda: stream, action.host, action.port)
        except Exception as exc:
            del self._connecting[action.sock_id]
            self.feed(self.conn.socket_failed, action.sock_id, describe(exc))
            return
        del self._connecting[action.sock_id]
        self._streams[action.sock_id] = stream
        self.feed(self.conn.socket_opened, action.sock_id)
        stream.opened()

    async def _close_stream(self, stream: Stream) -> None:
        """Flush and close, TLS close_notify included; abort if that takes longer than ``close_timeout``."""
        stream.transport.close()
        try:
            await asyncio.wait_for(asyncio.shield(stream.lost), self.close_timeout)
        except Exception:
            stream.transport.abort()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[None]) -> None:
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
