"""What every transport shares: the error, the bounded event queue, and the action loop."""

from __future__ import annotations

import abc
import contextlib
import ssl
from collections import deque
from typing import Any, Callable, ContextManager, Optional, Protocol

from qqproto import (
    Action,
    CloseSocket,
    Dispatch,
    Fatal,
    GatewayConfig,
    Health,
    HeartbeatAcked,
    HeartbeatSent,
    MessageFailed,
    MessageSent,
    OpenSocket,
    OutgoingMessage,
    Ready,
    ReconnectScheduled,
    Resumed,
    SendData,
    SendRetryScheduled,
    TimerLate,
)
from qqproto._state import FINAL_STATES, State

__all__ = [
    "APPLICATION_EVENTS",
    "DEFAULT_MAX_PENDING_EVENTS",
    "READ_SIZE",
    "SESSION_EVENTS",
    "Connection",
    "Driver",
    "EventQueue",
    "GatewayFatalError",
    "default_ssl_context",
    "describe",
]

#: How many application events may wait for the consumer before reading stops.
DEFAULT_MAX_PENDING_EVENTS = 10_000
#: How many bytes to read from a socket at a time.
READ_SIZE = 65536

#: Events that are never dropped: the session, its dispatches, and the outcome of each send.
SESSION_EVENTS = (Ready, Resumed, Dispatch, MessageSent, MessageFailed)
#: Everything a transport hands to the application; the notices among them may be dropped.
APPLICATION_EVENTS = (
    *SESSION_EVENTS,
    HeartbeatSent,
    HeartbeatAcked,
    ReconnectScheduled,
    TimerLate,
    SendRetryScheduled,
)
#: Everything that goes to the event queue: the application's events, and Fatal, which ends it.
_QUEUED = frozenset((*APPLICATION_EVENTS, Fatal))
_KEPT = frozenset(SESSION_EVENTS)


class GatewayFatalError(Exception):
    """The core emitted ``Fatal``: the connection has stopped for good."""

    def __init__(self, reason: str, close_code: Optional[int]) -> None:
        super().__init__(reason if close_code is None else f"{reason} [close code {close_code}]")
        self.reason = reason
        self.close_code = close_code


def default_ssl_context() -> ssl.SSLContext:
    """A verifying client context with the system's trust store."""
    return ssl.create_default_context()


def describe(exc: BaseException) -> str:
    """One line for ``socket_failed``: the error and what caused it (TLS errors hide behind wrappers)."""
    parts = []
    cause: Optional[BaseException] = exc
    while cause is not None:
        text = str(cause)
        parts.append(f"{type(cause).__name__}: {text}" if text else type(cause).__name__)
        cause = cause.__cause__
    return ", caused by ".join(parts)


class EventQueue:
    """Application events on their way to the consumer, bounded at ``limit``.

    When it is full, notices are dropped; Ready, Resumed and Dispatch are always kept, and the
    driver stops reading until the consumer catches up: taking the event that leaves room calls
    ``on_room``.  It ends after a close or an error.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("max_pending_events must be at least 1")
        self._items: deque[Action] = deque()
        self._limit = limit
        self._finished = False
        self._error: Optional[BaseException] = None
        self.dropped_notices = 0
        self.on_room: Optional[Callable[[], None]] = None

    def __len__(self) -> int:
        """How many events are waiting."""
        return len(self._items)

    @property
    def full(self) -> bool:
        """True once ``limit`` events are waiting."""
        return len(self._items) >= self._limit

    @property
    def done(self) -> bool:
        """True once it has ended and everything in it was taken."""
        return self._finished and not self._items

    def put(self, action: Action) -> None:
        """Queue an application event; ``Fatal`` ends the queue with a :class:`GatewayFatalError`."""
        self.put_all([action])

    def put_all(self, actions: list[Action]) -> None:
        """:meth:`put` each of ``actions``, in order."""
        items = self._items
        for action in actions:
            if self._finished:
                return
            if type(action) in _KEPT:
                items.append(action)
            elif isinstance(action, Fatal):
                self.finish(GatewayFatalError(action.reason, action.close_code))
            elif len(items) < self._limit:
                items.append(action)
            else:
                self.dropped_notices += 1

    def finish(self, error: Optional[BaseException] = None) -> None:
        """End the queue; once drained, :meth:`get` raises ``error`` if one is given."""
        if not self._finished:
            self._finished = True
            self._error = error

    def get(self) -> Optional[Action]:
        """The next event, or None if none is waiting; raises the ending error once drained."""
        items = self._items
        if items:
            if len(items) == self._limit and self.on_room is not None:
                self.on_room()  # taking this one leaves room; first, so that an error here loses nothing
            return items.popleft()
        if self._error is not None:
            raise self._error
        return None


class Connection(Protocol):
    """The inputs and outputs a driver uses: QQGatewayConnection and QQApiConnection both have them."""

    @property
    def state(self) -> State: ...

    def start(self, now: float) -> None: ...

    def socket_opened(self, sock_id: int, now: float) -> None: ...

    def socket_failed(self, sock_id: int, reason: str, now: float) -> None: ...

    def receive_data(self, sock_id: int, data: bytes, now: float) -> None: ...

    def handle_timer(self, now: float) -> None: ...

    def close(self, now: float) -> None: ...

    def send_message(self, message: OutgoingMessage, now: float) -> int: ...

    def next_actions(self) -> list[Action]: ...

    def next_timer(self) -> Optional[float]: ...

    def health(self, now: float) -> Health: ...


class Driver(abc.ABC):
    """The loop every transport runs: feed the core one input, carry out its actions in order, re-arm the timer.

    Subclasses supply the runtime: the clock, sockets, the timer and wake-ups.
    """

    def __init__(
        self,
        conn: Connection,
        config: GatewayConfig,
        ssl_context: Optional[ssl.SSLContext],
        events: EventQueue,
        lock: Optional[ContextManager[Any]] = None,
    ) -> None:
        self.conn = conn
        self.events = events
        self.ssl_context = ssl_context if ssl_context is not None else default_ssl_context()
        self.close_timeout = config.close_timeout
        self.closing = False
        self.stopped = False
        self._lock = lock if lock is not None else contextlib.nullcontext()
        events.on_room = self.resume_reading  # readers pause only while the queue is full

    def feed(self, method: Callable[..., None], *args: Any) -> None:
        """Give the core one input, ``method(*args, now)``, and carry out what it asks."""
        with self._lock:
            now = self.now()
            method(*args, now)
            actions = self.conn.next_actions()
            due = self.conn.next_timer()
            self.stopped = self.conn.state in FINAL_STATES
        queued: list[Action] = []
        for action in actions:
            if type(action) in _QUEUED:
                queued.append(action)
            elif isinstance(action, SendData):
                self.send(action.sock_id, action.data)
            elif isinstance(action, OpenSocket):
                self.open_socket(action)
            elif isinstance(action, CloseSocket):
                self.close_socket(action.sock_id)
            else:
                raise TypeError(f"no transport rule for {action!r}")
        if queued:
            self.events.put_all(queued)
        if self.stopped:
            self.events.finish()
        if queued or self.stopped:
            self.wake_consumer()
        self.set_timer(due)

    def send_message(self, message: OutgoingMessage) -> int:
        """Hand a message to the core; its outcome arrives among the events as MessageSent or MessageFailed."""
        send_ids: list[int] = []
        self.feed(lambda msg, now: send_ids.append(self.conn.send_message(msg, now)), message)
        return send_ids[0]

    def begin_close(self) -> None:
        """Ask the core to close gracefully; from now on reading never waits for the consumer."""
        if not self.closing:
            self.closing = True
            self.feed(self.conn.close)
            self.resume_reading()

    def fail(self, error: BaseException) -> None:
        """End the consumer's iteration with an error the driver itself ran into."""
        self.events.finish(error)
        self.wake_consumer()

    @property
    def paused(self) -> bool:
        """True while sockets must not be read: the consumer is behind (TCP backpressure)."""
        return self.events.full and not self.closing

    def take_event(self) -> Optional[Action]:
        """The consumer's next event, or None to wait; StopAsyncIteration after a close."""
        event = self.events.get()
        if event is None and self.events.done:
            raise StopAsyncIteration
        return event

    def health(self) -> Health:
        """The core's health snapshot at the runtime's clock."""
        with self._lock:
            return self.conn.health(self.now())

    @abc.abstractmethod
    def now(self) -> float:
        """The runtime's monotonic clock."""

    @abc.abstractmethod
    def open_socket(self, action: OpenSocket) -> None:
        """Start opening a socket; report with ``socket_opened`` or ``socket_failed``."""

    @abc.abstractmethod
    def send(self, sock_id: int, data: bytes) -> None:
        """Write bytes to an open socket, in order."""

    @abc.abstractmethod
    def close_socket(self, sock_id: int) -> None:
        """Flush what was written, then close the socket and stop reading it."""

    @abc.abstractmethod
    def set_timer(self, due: Optional[float]) -> None:
        """Arrange one call of ``handle_timer`` at ``due`` (None: no timer)."""

    @abc.abstractmethod
    def wake_consumer(self) -> None:
        """Events arrived, or the queue ended."""

    @abc.abstractmethod
    def resume_reading(self) -> None:
        """The queue has room again: paused readers may go on."""
