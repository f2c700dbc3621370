"""Drive a :class:`~qqproto.QQGatewayConnection` under trio.

Each socket is a task in the gateway's nursery: ``trio.open_tcp_stream`` (plus ``trio.SSLStream``,
verified by default), a reader, and a writer fed through an unbounded memory channel so that
bytes go out in order.  One timer task sleeps in a cancel scope whose deadline is the core's
``next_timer()``; ``now`` is ``trio.current_time()``.

Iterating the gateway is a cancellation point on every event and a scheduling point at least
every millisecond (:data:`SCHEDULE_EVERY`), and whenever it has to wait: a scheduler round trip
per event would cost more than decoding the event.

Buffering: application events wait in a queue of at most ``max_pending_events``.  While it is
full no socket is read, so the platform meets TCP backpressure; heartbeats still go out from
the timer.  A stall longer than a heartbeat interval costs the socket (no ACK is read), and the
core resumes: the platform replays what was not read, so nothing is lost.  Notices
(HeartbeatSent/Acked, TimerLate, ReconnectScheduled) are dropped while the queue is full;
Ready, Resumed and Dispatch never are.
"""

from __future__ import annotations

import contextlib
import math
import random
import ssl
import sys
from collections.abc import AsyncIterator, Iterator

import trio

from qqproto import Action, GatewayConfig, OpenSocket, QQGatewayConnection, SessionStore

from ._common import DEFAULT_MAX_PENDING_EVENTS, READ_SIZE, Connection, Driver, EventQueue, GatewayFatalError, describe
from ._session_keeper import SessionKeeper, keeper_for
from ._trio_stream import Socket, connect
from ._webhook_gateway import WebhookGateway  # needs the webhook extra
from ._webhook_gateway import open_trio_webhook as open_webhook

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

__all__ = ["Gateway", "GatewayFatalError", "WebhookGateway", "one_error_as_itself", "open_gateway", "open_webhook"]

#: Seconds an ``async for`` over queued events may run before it lets other tasks (the timer among them) in.
SCHEDULE_EVERY = 0.001


@contextlib.asynccontextmanager
async def open_gateway(
    config: GatewayConfig,
    ssl_context: ssl.SSLContext | None = None,
    *,
    rng: random.Random | None = None,
    max_pending_events: int = DEFAULT_MAX_PENDING_EVENTS,
    session_store: SessionStore | None = None,
) -> AsyncIterator[Gateway]:
    """Connect on entering ``async with``; close gracefully and release every socket on leaving.

    ``session_store`` works as in :func:`transports.asyncio.open_gateway`.
    """
    with one_error_as_itself():
        async with trio.open_nursery() as nursery:
            conn = QQGatewayConnection(config, rng)
            keeper = keeper_for(session_store, config)
            gateway = Gateway(conn, config, ssl_context, EventQueue(max_pending_events), nursery, keeper)
            await gateway.start()
            finished = False
            try:
                yield gateway
                finished = True
            finally:
                with trio.CancelScope(shield=True):
                    await gateway.aclose(last_event_finished=finished)


@contextlib.contextmanager
def one_error_as_itself() -> Iterator[None]:
    """Let a nursery's lone error out as itself (Ctrl-C, GatewayFatalError), not wrapped in a group."""
    try:
        yield
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


class Gateway(Driver):
    """A connection running in a nursery: ``async for`` its events, ask ``health()`` any time."""

    def __init__(
        self,
        conn: Connection,
        config: GatewayConfig,
        ssl_context: ssl.SSLContext | None,
        events: EventQueue,
        nursery: trio.Nursery,
        keeper: SessionKeeper | None = None,
    ) -> None:
        super().__init__(conn, config, ssl_context, events, keeper=keeper)
        self._nursery = nursery
        self._sockets: dict[int, Socket] = {}
        self._due = math.inf
        self._sleep: trio.CancelScope | None = None
        self._timer_scope = trio.CancelScope()
        self._arrived = trio.lowlevel.ParkingLot()
        self._room = trio.lowlevel.ParkingLot()
        self._next_schedule = -math.inf

    async def start(self) -> None:
        """Start the timer and the core, resuming the stored session if there is one."""
        self._nursery.start_soon(self._run_timer)
        keeper = self.keeper
        restored = await trio.to_thread.run_sync(keeper.restore) if keeper else None
        if not self.stopped:  # abandon() may have come while the store was read
            self.begin(restored)

    async def aclose(self, *, last_event_finished: bool = False) -> None:
        """Close gracefully, waiting at most ``close_timeout``; socket tasks end within the same bound."""
        if last_event_finished:
            self.events.last_finished()
        self.begin_close()
        with trio.move_on_after(self.close_timeout):
            while not self.stopped:
                await self._arrived.park()
        self._timer_scope.cancel()
        self.events.finish()
        self.wake_consumer()
        for sock_id in list(self._sockets):
            self.close_socket(sock_id)
        if self.keeper is not None:
            await trio.to_thread.run_sync(self.keeper.close, self.close_timeout)

    async def abandon(self) -> None:
        """Stop at once without a word to the platform: another process serves this session now."""
        self.closing = self.stopped = True
        self._timer_scope.cancel()
        for sock in self._sockets.values():
            sock.abort()
        self._sockets.clear()
        self.events.finish()
        self.wake_consumer()
        if self.keeper is not None:
            await trio.to_thread.run_sync(self.keeper.close, 0.0)

    def __aiter__(self) -> Gateway:
        return self

    async def __anext__(self) -> Action:
        # Always a cancellation point; a scheduling point too once SCHEDULE_EVERY has passed
        # since the last, rather than one scheduler round trip per queued event.
        if trio.current_time() >= self._next_schedule:
            await trio.lowlevel.checkpoint()
            self._next_schedule = trio.current_time() + SCHEDULE_EVERY
        else:
            await trio.lowlevel.checkpoint_if_cancelled()
        while (event := self.take_event()) is None:
            await self._arrived.park()
            self._next_schedule = trio.current_time() + SCHEDULE_EVERY
        return event

    # -- Driver -------------------------------------------------------------------------

    def now(self) -> float:
        return trio.current_time()

    def open_socket(self, action: OpenSocket) -> None:
        sock = self._sockets[action.sock_id] = Socket()
        self._nursery.start_soon(self._serve, action, sock)

    def send(self, sock_id: int, data: bytes) -> None:
        self._sockets[sock_id].outgoing.send_nowait(data)

    def close_socket(self, sock_id: int) -> None:
        sock = self._sockets.pop(sock_id)
        sock.outgoing.close()
        if sock.connected:
            sock.scope.deadline = min(sock.scope.deadline, self.now() + self.close_timeout)
        else:
            sock.scope.cancel()

    def set_timer(self, due: float | None) -> None:
        self._due = math.inf if due is None else due
        if self._sleep is not None:
            self._sleep.deadline = self._due

    def wake_consumer(self) -> None:
        self._arrived.unpark_all()

    def resume_reading(self) -> None:
        self._room.unpark_all()

    # -- tasks ----------------------------------------------------------------------------

    async def _run_timer(self) -> None:
        with self._timer_scope:
            while True:
                with trio.CancelScope(deadline=self._due) as self._sleep:
                    await trio.sleep_forever()
                self._sleep = None
                self.feed(self.conn.handle_timer)

    async def _serve(self, action: OpenSocket, sock: Socket) -> None:
        """Connect, then write and read until the core closes the socket; the stream is closed however this ends."""
        with sock.scope:
            try:
                stream = await connect(action, self.ssl_context)
            except Exception as exc:
                self.feed(self.conn.socket_failed, action.sock_id, describe(exc))
                return
            sock.connected = True
            try:
                self.feed(self.conn.socket_opened, action.sock_id)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._read, action.sock_id, stream, sock)
                    await self._write(action.sock_id, stream, sock.incoming)
                    nursery.cancel_scope.cancel()
            finally:
                if sock.aborted:
                    await trio.aclose_forcefully(stream)
                with trio.move_on_after(self.close_timeout) as cleanup, contextlib.suppress(Exception):
                    cleanup.shield = True
                    await stream.aclose()

    async def _read(self, sock_id: int, stream: trio.abc.Stream, sock: Socket) -> None:
        while True:
            while self.paused:
                await self._room.park()
            try:
                data = await stream.receive_some(READ_SIZE)
            except Exception as exc:
                self.feed(self.conn.socket_failed, sock_id, describe(exc))
                return
            if sock.aborted:
                return  # read before the abort, for a session served elsewhere now
            self.feed(self.conn.receive_data, sock_id, data)
            if not data:
                return

    async def _write(self, sock_id: int, stream: trio.abc.Stream, incoming: trio.MemoryReceiveChannel[bytes]) -> None:
        """Send everything written to the socket, in order, until the core closes it."""
        async for data in incoming:
            try:
                await stream.send_all(data)
            except Exception as exc:
                self.feed(self.conn.socket_failed, sock_id, describe(exc))
                return
