"""What every transport shares: the action loop, TLS defaults, and (re-exported) the event queue and its error."""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ContextManager, Protocol

from qqproto import (
    Action,
    CloseSocket,
    Fatal,
    GatewayConfig,
    Health,
    IdentifyDone,
    IdentifyPermissionNeeded,
    OpenSocket,
    OutgoingMessage,
    QQGatewayConnection,
    SendData,
    SessionState,
)
from qqproto._state import FINAL_STATES, State

from ._event_queue import APPLICATION_EVENTS, SESSION_EVENTS, EventQueue, GatewayFatalError

if TYPE_CHECKING:
    from ._session_keeper import SessionKeeper

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
    "with_store",
]

#: How many application events may wait for the consumer before reading stops.
DEFAULT_MAX_PENDING_EVENTS = 10_000
#: How many bytes to read from a socket at a time.
READ_SIZE = 65536

#: Everything that goes to the event queue: the application's events, and Fatal, which ends it.
_QUEUED = frozenset((*APPLICATION_EVENTS, Fatal))
#: What goes to the identify gate of a connection made with ``ask_before_identify``.
_GATE_ACTIONS = frozenset((IdentifyPermissionNeeded, IdentifyDone))


def with_store(health: Health, keeper: SessionKeeper | None) -> Health:
    """The core's health, with the session store's error when saving fails."""
    if keeper is None or keeper.error is None:
        return health
    return dataclasses.replace(health, session_store_error=keeper.error)


def default_ssl_context() -> ssl.SSLContext:
    """A verifying client context with the system's trust store."""
    return ssl.create_default_context()


def describe(exc: BaseException) -> str:
    """One line for ``socket_failed``: the error and what caused it (TLS errors hide behind wrappers)."""
    parts = []
    cause: BaseException | None = exc
    while cause is not None:
        text = str(cause)
        parts.append(f"{type(cause).__name__}: {text}" if text else type(cause).__name__)
        cause = cause.__cause__
    return ", caused by ".join(parts)


class Connection(Protocol):
    """The inputs and outputs a driver uses: QQGatewayConnection and QQApiConnection both have them."""

    @property
    def state(self) -> State: ...

    @property
    def access_token(self) -> str | None: ...

    def start(self, now: float) -> None: ...

    def socket_opened(self, sock_id: int, now: float) -> None: ...

    def socket_failed(self, sock_id: int, reason: str, now: float) -> None: ...

    def receive_data(self, sock_id: int, data: bytes, now: float) -> None: ...

    def handle_timer(self, now: float) -> None: ...

    def close(self, now: float) -> None: ...

    def send_message(self, message: OutgoingMessage, now: float) -> int: ...

    def next_actions(self) -> list[Action]: ...

    def next_timer(self) -> float | None: ...

    def health(self, now: float) -> Health: ...


class Driver(abc.ABC):
    """The loop every transport runs: feed the core one input, carry out its actions in order, re-arm the timer.

    Subclasses supply the runtime: the clock, sockets, the timer and wake-ups.
    """

    def __init__(
        self,
        conn: Connection,
        config: GatewayConfig,
        ssl_context: ssl.SSLContext | None,
        events: EventQueue,
        lock: ContextManager[Any] | None = None,
        keeper: SessionKeeper | None = None,
    ) -> None:
        self.conn = conn
        self.events = events
        self.keeper = events.keeper = keeper
        self.ssl_context = ssl_context if ssl_context is not None else default_ssl_context()
        self.close_timeout = config.close_timeout
        self.closing = False
        self.stopped = False
        self._lock = lock if lock is not None else contextlib.nullcontext()
        #: Told of IdentifyPermissionNeeded and IdentifyDone, for a connection that asks a gate.
        self.on_gate_action: Callable[[Action], None] | None = None
        #: Told when events arrive or the connection stops, for a consumer that reads many drivers.
        self.on_wake: Callable[[Driver], None] | None = None
        #: Asked before each socket opens; True keeps it for later (a shard whose lease awaits renewal).
        self.hold_open: Callable[[OpenSocket], bool] | None = None
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
                if self.hold_open is None or not self.hold_open(action):
                    self.open_socket(action)
            elif isinstance(action, CloseSocket):
                self.close_socket(action.sock_id)
            elif type(action) in _GATE_ACTIONS and self.on_gate_action is not None:
                self.on_gate_action(action)
            else:
                raise TypeError(f"no transport rule for {action!r}")
        if queued:
            self.events.put_all(queued)
        if self.stopped:
            self.events.finish()
        if queued or self.stopped:
            self.wake_consumer()
            if self.on_wake is not None:
                self.on_wake(self)
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
            conn = self.conn
            if self.keeper is not None and isinstance(conn, QQGatewayConnection):
                self.feed(lambda now: conn.close(now, keep_session=True))  # the next process resumes it
            else:
                self.feed(conn.close)
            self.resume_reading()

    def fail(self, error: BaseException) -> None:
        """End the consumer's iteration with an error the driver itself ran into."""
        self.events.finish(error)
        self.wake_consumer()
        if self.on_wake is not None:
            self.on_wake(self)

    @property
    def paused(self) -> bool:
        """True while sockets must not be read: the consumer is behind (TCP backpressure)."""
        return self.events.full and not self.closing

    def take_event(self) -> Action | None:
        """The consumer's next event, or None to wait; StopAsyncIteration after a close."""
        event = self.events.get()
        if event is None and self.events.done:
            raise StopAsyncIteration
        return event

    def health(self) -> Health:
        """The core's health snapshot at the runtime's clock."""
        with self._lock:
            return with_store(self.conn.health(self.now()), self.keeper)

    def begin(self, restored: SessionState | None) -> None:
        """Start the core, resuming ``restored`` (loaded from the store off the loop) if there is one."""
        if restored is not None:
            conn = self.conn
            assert isinstance(conn, QQGatewayConnection), "only a gateway connection has a session to restore"
            self.feed(conn.restore_session, restored)
        self.feed(self.conn.start)

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
    def set_timer(self, due: float | None) -> None:
        """Arrange one call of ``handle_timer`` at ``due`` (None: no timer)."""

    @abc.abstractmethod
    def wake_consumer(self) -> None:
        """Events arrived, or the queue ended."""

    @abc.abstractmethod
    def resume_reading(self) -> None:
        """The queue has room again: paused readers may go on."""
