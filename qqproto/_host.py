"""What both public connections share: checked inputs, one clock, the sockets, the API client, one timer.

:class:`SocketHost` turns each public input into a call on the part that owns the socket; a
subclass says which parts keep time and what its own sockets do. The API client's sockets
(token and sends) are handled here, so both connections send messages the same way.
"""

from __future__ import annotations

import abc
import random
from collections.abc import Callable, Sequence

from ._api_client import ApiClient
from ._config import GatewayConfig
from ._errors import LocalProtocolError
from ._events import Action, TimerLate
from ._inputs import Clock, check_data, check_message
from ._sending import OutgoingMessage
from ._sockets import Kind, Socket, Sockets
from ._state import STOPPED_STATES, State
from ._token import TokenResult

__all__ = ["SocketHost", "TimedPart"]

# Sockets the API client owns.
API_KINDS = frozenset({Kind.TOKEN, Kind.SEND})

#: A part that keeps time: when it is next due, and how to fire it (``now``, ``late``).
TimedPart = tuple[Callable[[], float | None], Callable[[float, bool], None]]


class SocketHost(abc.ABC):
    """The public inputs and outputs of a connection; subclasses route their own sockets and timers."""

    def __init__(self, config: GatewayConfig, rng: random.Random | None) -> None:
        if not isinstance(config, GatewayConfig):
            name = type(self).__name__
            raise LocalProtocolError(
                f"{name} needs a GatewayConfig, not {type(config).__name__}: "
                "pass GatewayConfig(app_id=..., client_secret=...)"
            )
        self._config = config
        self._rng = rng if rng is not None else random.Random()
        self._clock = Clock()
        self._sockets = Sockets(config)
        self._api = ApiClient(config, self._rng, self._sockets)
        self._timer_late_count = 0
        self._timed: Sequence[TimedPart] = ()

    @property
    @abc.abstractmethod
    def state(self) -> State:
        """Where the connection is in its life."""

    # ------------------------------------------------------------------ public inputs

    def socket_opened(self, sock_id: int, now: float) -> None:
        """The socket asked for by ``OpenSocket(sock_id)`` is connected (TCP, and TLS if asked)."""
        now = self._tick(now, "socket_opened")
        sock = self._sockets.lookup(sock_id, "socket_opened")
        if sock is None:
            return
        if sock.opened_at is not None:
            raise LocalProtocolError(
                f"socket_opened({sock_id}) was called twice; report each OpenSocket once, "
                "with socket_opened or socket_failed"
            )
        sock.opened_at = now
        if sock.kind in API_KINDS:
            self._sockets.send_request(sock, now)
        else:
            self._own_socket_opened(sock, now)

    def socket_failed(self, sock_id: int, reason: str, now: float) -> None:
        """The socket could not be opened, or broke; ``reason`` is a description for people."""
        now = self._tick(now, "socket_failed")
        sock = self._sockets.lookup(sock_id, "socket_failed")
        if sock is None:
            return
        stage = "connecting to" if sock.opened_at is None else "on"
        self._socket_ended(sock, f"{stage} {sock.endpoint.host}:{sock.endpoint.port} failed: {reason}", None, now)

    def receive_data(self, sock_id: int, data: bytes, now: float) -> None:
        """Bytes read from a socket; ``b""`` means the peer closed it."""
        now = self._clock.tick(now, "receive_data")
        self._require_started("receive_data")
        data = check_data(data)
        self._overdue_first(now)
        sock = self._sockets.lookup(sock_id, "receive_data")
        if sock is None:
            return
        if sock.opened_at is None:
            raise LocalProtocolError(
                f"receive_data({sock_id}) came before socket_opened({sock_id}); "
                f"call socket_opened({sock_id}, now) once the socket is connected"
            )
        if sock.kind in API_KINDS:
            news = self._api.receive(sock, data, now)
            if news is not None:
                self._token_news(news, now)
        else:
            self._own_receive(sock, data, now)

    def handle_timer(self, now: float) -> None:
        """Do what is due; call it once ``now >= next_timer()``. An early call does nothing."""
        now = self._clock.tick(now, "handle_timer")
        self._require_started("handle_timer")
        due = self.next_timer()
        if due is None or now < due:
            return
        late = now - due > self._config.late_timer_threshold
        if late:
            self._timer_late_count += 1
            self._sockets.actions.append(TimerLate(now - due))
        while True:
            due, fire = self._earliest()
            if due is None or fire is None or due > now:
                return
            fire(now, late)

    def send_message(self, message: OutgoingMessage, now: float) -> int:
        """Send a message through the platform's HTTP API; returns the ``send_id`` of its outcome.

        The outcome comes later as ``MessageSent`` or ``MessageFailed``; retries, token refreshes
        and the switch from an expiring reply to an active message happen on the way.
        """
        now = self._tick(now, "send_message")
        message = check_message(message)
        if self.state in STOPPED_STATES:
            raise LocalProtocolError(f"send_message() after the connection stopped (state is {self.state.value})")
        return self._api.send_message(message, now)

    # ------------------------------------------------------------------ public outputs

    def next_actions(self) -> list[Action]:
        """Everything the connection wants done since the last call, in order."""
        sockets = self._sockets
        actions, sockets.actions = sockets.actions, []
        return actions

    def next_timer(self) -> float | None:
        """When :meth:`handle_timer` is next due, or None when nothing is waiting on time."""
        return self._earliest()[0]

    @property
    def token_fetches(self) -> int:
        """How many times the token endpoint was asked."""
        return self._api.token.fetches

    @property
    def access_token(self) -> str | None:
        """The access token this connection holds, unexpired at the last input; for the bot's other HTTP calls."""
        token = self._api.token
        return token.authorization if token.usable(self._clock.now) else None

    # ------------------------------------------------------------------ for subclasses

    @abc.abstractmethod
    def _own_socket_opened(self, sock: Socket, now: float) -> None:
        """One of the subclass's sockets is connected."""

    @abc.abstractmethod
    def _own_receive(self, sock: Socket, data: bytes, now: float) -> None:
        """Bytes for one of the subclass's sockets."""

    @abc.abstractmethod
    def _own_socket_ended(self, sock: Socket, reason: str, cause: str | None, now: float) -> None:
        """One of the subclass's sockets failed or broke."""

    @abc.abstractmethod
    def _token_news(self, news: TokenResult, now: float) -> None:
        """What became of a token request."""

    # ------------------------------------------------------------------ routing

    def _tick(self, now: float, method: str) -> float:
        now = self._clock.tick(now, method)
        self._require_started(method)
        self._overdue_first(now)
        return now

    def _require_started(self, method: str) -> None:
        if self.state is State.IDLE:
            raise LocalProtocolError(f"{method}() was called before start(); call start(now) first")

    def _overdue_first(self, now: float) -> None:
        """A timer that fell due before this input was seen goes first, as it would have on time.

        An input that arrives after a due time means the host loop was blocked; whatever
        order the transport wakes up in, the late timer is noticed and reported first.
        """
        due = self.next_timer()
        if due is not None and now >= due:
            self.handle_timer(now)

    def _earliest(self) -> tuple[float | None, Callable[[float, bool], None] | None]:
        """The nearest due time over every part that keeps time, and how to fire it (ties go to the later part)."""
        best: float | None = None
        fire: Callable[[float, bool], None] | None = None
        for next_due, part_fire in self._timed:
            at = next_due()
            if at is not None and (best is None or at <= best):
                best, fire = at, part_fire
        return best, fire

    def _socket_ended(self, sock: Socket, reason: str, cause: str | None, now: float) -> None:
        if sock.kind in API_KINDS:
            news = self._api.socket_ended(sock, reason, cause, now)
            if news is not None:
                self._token_news(news, now)
        else:
            self._own_socket_ended(sock, reason, cause, now)

    def _deadline_passed(self, now: float, late: bool) -> None:
        """Fire the sockets' deadlines: the earliest one that passed gives its socket up."""
        sock = self._sockets.expired(now, late)
        if sock is not None:
            self._socket_ended(sock, sock.deadline_reason, "timeout", now)
