"""The sockets the core asked for, by id, with their deadlines, and the actions waiting for the transport."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ._config import GatewayConfig
from ._errors import LocalProtocolError
from ._events import Action, CloseSocket, OpenSocket, SendData
from ._http import Endpoint, HttpExchange
from ._websocket import WebSocketClient

__all__ = ["Kind", "Socket", "Sockets"]


class Kind(enum.Enum):
    """What a socket is for; the value names it in reasons."""

    TOKEN = "token request"
    GATEWAY_URL = "/gateway/bot request"
    WEBSOCKET = "gateway WebSocket"
    SEND = "message send"


@dataclass(slots=True)
class Socket:
    """One socket the core asked for, and what it is waiting for."""

    sock_id: int
    kind: Kind
    endpoint: Endpoint
    http: HttpExchange | None = None
    ws: WebSocketClient | None = None
    opened_at: float | None = None
    deadline: float | None = None
    deadline_reason: str = ""
    deadline_extended: bool = False
    send_id: int | None = None


class Sockets:
    """Hands out socket ids, keeps the open ones, and collects every action in order in ``actions``."""

    __slots__ = ("_config", "_last_id", "_open", "actions")

    def __init__(self, config: GatewayConfig) -> None:
        self._config = config
        self.actions: list[Action] = []
        self._open: dict[int, Socket] = {}
        self._last_id = 0

    def open(self, kind: Kind, endpoint: Endpoint, now: float, http: HttpExchange | None = None) -> Socket:
        """Ask the transport for a socket; it must connect within ``connect_timeout``."""
        self._last_id += 1
        sock = Socket(self._last_id, kind, endpoint, http=http)
        self._open[sock.sock_id] = sock
        server_hostname = endpoint.host if endpoint.tls else None
        self.actions.append(OpenSocket(sock.sock_id, endpoint.host, endpoint.port, endpoint.tls, server_hostname))
        self.set_deadline(sock, now, self._config.connect_timeout, f"connecting for the {kind.value} timed out")
        return sock

    def send(self, sock: Socket, data: bytes) -> None:
        """Write ``data`` (nothing when empty)."""
        if data:
            self.actions.append(SendData(sock.sock_id, data))

    def send_request(self, sock: Socket, now: float) -> None:
        """The socket of an HTTP exchange is up: write the request and wait ``http_timeout`` for the answer."""
        assert sock.http is not None
        self.send(sock, sock.http.request_bytes())
        self.set_deadline(sock, now, self._config.http_timeout, f"no answer to the {sock.kind.value}")

    def close(self, sock: Socket) -> None:
        """Close a socket the core is done with; closing it again does nothing."""
        if self._open.pop(sock.sock_id, None) is not None:
            self.actions.append(CloseSocket(sock.sock_id))

    def close_all(self, kinds: frozenset[Kind]) -> None:
        """Close every open socket of these kinds."""
        for sock in [sock for sock in self._open.values() if sock.kind in kinds]:
            self.close(sock)

    def is_open(self, sock: Socket | None) -> bool:
        """True while ``sock`` is open."""
        return sock is not None and self._open.get(sock.sock_id) is sock

    def lookup(self, sock_id: int, method: str) -> Socket | None:
        """The open socket ``sock_id``; None for one already closed; an id never handed out is misuse."""
        sock = self._open.get(sock_id)
        if sock is not None:
            return sock
        if isinstance(sock_id, int) and 0 < sock_id <= self._last_id:
            return None  # closed by the core already: late input for it is dropped
        raise LocalProtocolError(
            f"{method}({sock_id!r}): the connection never asked to open socket {sock_id!r}; "
            "pass the sock_id of an OpenSocket action"
        )

    def set_deadline(self, sock: Socket, now: float, seconds: float, reason: str) -> None:
        """Give up on ``sock`` unless what it waits for comes within ``seconds``."""
        sock.deadline = now + seconds
        sock.deadline_reason = f"{reason} (after {seconds:g}s)"
        sock.deadline_extended = False

    def next_due(self) -> float | None:
        """The nearest deadline."""
        due: float | None = None
        for sock in self._open.values():
            if sock.deadline is not None and (due is None or sock.deadline < due):
                due = sock.deadline
        return due

    def expired(self, now: float, late: bool) -> Socket | None:
        """The socket whose deadline has passed, if any, its deadline cleared.

        After a blocked host loop (``late``), the awaited bytes may be sitting unread: each
        deadline gets one short extension first.
        """
        sock = min(
            (s for s in self._open.values() if s.deadline is not None and s.deadline <= now),
            key=lambda s: s.deadline or 0.0,
            default=None,
        )
        if sock is None:
            return None
        if late and not sock.deadline_extended:
            sock.deadline = now + self._config.late_timer_threshold
            sock.deadline_extended = True
            return None
        sock.deadline = None
        return sock
