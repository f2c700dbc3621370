"""The actions a :class:`QQGatewayConnection` asks its transport to carry out or pass on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "Action",
    "CloseSocket",
    "Dispatch",
    "Fatal",
    "HeartbeatAcked",
    "HeartbeatSent",
    "MessageFailed",
    "MessageSent",
    "OpenSocket",
    "Ready",
    "ReconnectScheduled",
    "Resumed",
    "SendData",
    "SendRetryScheduled",
    "SessionForgotten",
    "TimerLate",
]


class Action:
    """Base class of everything :meth:`QQGatewayConnection.next_actions` returns."""

    __slots__ = ()


@dataclass(frozen=True)
class OpenSocket(Action):
    """Open TCP (and TLS when ``tls``) to ``host:port``; report back with ``socket_opened`` or ``socket_failed``."""

    sock_id: int
    host: str
    port: int
    tls: bool
    server_hostname: str | None


@dataclass(frozen=True)
class SendData(Action):
    """Write ``data`` to the socket ``sock_id``."""

    sock_id: int
    data: bytes

    def __repr__(self) -> str:
        # Request bytes can carry credentials; show only their size.
        return f"SendData(sock_id={self.sock_id}, data=<{len(self.data)} bytes>)"


@dataclass(frozen=True)
class CloseSocket(Action):
    """Close the socket ``sock_id``; the core makes no further use of it."""

    sock_id: int


@dataclass(frozen=True)
class Ready(Action):
    """A new session was created (op 0 READY)."""

    session_id: str
    user: dict[str, Any]
    shard: tuple[int, int]
    #: The seq READY carried: where the application's progress in this session starts.
    seq: int | None = None


@dataclass(frozen=True)
class Resumed(Action):
    """The held session was resumed; any events it missed were delivered before this."""

    session_id: str


@dataclass(frozen=True)
class Dispatch(Action):
    """An event for the application, delivered once and in ``seq`` order."""

    event_type: str
    data: Any
    seq: int
    event_id: str | None


def new_dispatch(event_type: str, data: Any, seq: int, event_id: str | None) -> Dispatch:
    """``Dispatch(...)`` without the frozen dataclass's four ``object.__setattr__`` calls: one is made per event."""
    event = object.__new__(Dispatch)
    event.__dict__.update(event_type=event_type, data=data, seq=seq, event_id=event_id)
    return event


@dataclass(frozen=True)
class HeartbeatSent(Action):
    """Notice: a heartbeat carrying ``seq`` went out."""

    seq: int | None


@dataclass(frozen=True)
class HeartbeatAcked(Action):
    """Notice: the platform acknowledged a heartbeat after ``latency`` seconds."""

    latency: float


@dataclass(frozen=True)
class ReconnectScheduled(Action):
    """Notice: the core will reconnect after ``delay`` seconds, resuming the session if ``resume``.

    ``cause`` is a short stable key for counting (``close_4009``, ``zombie``, ``reconnect_request``, ...).
    """

    delay: float
    resume: bool
    reason: str
    cause: str = ""


@dataclass(frozen=True)
class TimerLate(Action):
    """Notice: ``handle_timer`` came ``lag`` seconds after it was due; the host loop was blocked."""

    lag: float


@dataclass(frozen=True)
class Fatal(Action):
    """The connection has stopped for good; ``reason`` says why and what to do."""

    reason: str
    close_code: int | None


@dataclass(frozen=True)
class SessionForgotten(Action):
    """The platform no longer knows the session (op 9 false, 4006, 4007, 49xx, ...); the next one is new.

    Events sent while the bot was away from the old session may be missed. A saved session is
    cleared once the application has passed this point in the stream.
    """

    reason: str


@dataclass(frozen=True)
class MessageSent(Action):
    """The message ``send_id`` reached the platform (``duplicate``: an earlier attempt had already)."""

    send_id: int
    message_id: str | None
    duplicate: bool = False


@dataclass(frozen=True)
class MessageFailed(Action):
    """The message ``send_id`` was not sent; the platform's ``code`` and ``trace_id`` say why, when it gave them."""

    send_id: int
    reason: str
    code: int | None = None
    trace_id: str | None = None


@dataclass(frozen=True)
class SendRetryScheduled(Action):
    """Notice: the message ``send_id`` will be tried again after ``delay`` seconds."""

    send_id: int
    delay: float
    reason: str
