"""``QQApiConnection``: message sends with no gateway, for webhook mode or any process that only sends."""

from __future__ import annotations

import random

from ._config import GatewayConfig
from ._errors import LocalProtocolError
from ._events import Fatal
from ._health import Health
from ._host import SocketHost
from ._sockets import Kind, Socket
from ._state import API_TRANSITIONS, STOPPED_STATES, Machine, State
from ._token import CredentialsRejected, TokenIssued, TokenResult

__all__ = ["API_MODES", "QQApiConnection"]

#: What an API-only connection may call its mode in :class:`Health`.
API_MODES = frozenset({"api", "webhook"})


class QQApiConnection(SocketHost):
    """Sends messages through the platform's HTTP API with no gateway; the same inputs and actions as the gateway's.

    It opens its own HTTP sockets (``OpenSocket``/``SendData``/``CloseSocket``), keeps the
    access token fresh, and reports each send as ``MessageSent`` or ``MessageFailed`` by the
    same rules as :class:`QQGatewayConnection`. Bad credentials are ``Fatal``. ``mode`` is what
    :meth:`health` reports (``"api"``, or ``"webhook"`` when events arrive by callback).
    """

    def __init__(self, config: GatewayConfig, rng: random.Random | None = None, *, mode: str = "api") -> None:
        super().__init__(config, rng)
        if mode not in API_MODES:
            raise LocalProtocolError(f"QQApiConnection mode must be one of {sorted(API_MODES)}, not {mode!r}")
        self._mode = mode
        self._machine = Machine(API_TRANSITIONS)
        self._connected_since: float | None = None
        self._fatal: Fatal | None = None
        self._last_token_failure: str | None = None
        self._timed = ((self._sockets.next_due, self._deadline_passed), (self._api.next_due, self._api.fire))

    def __repr__(self) -> str:
        return f"<QQApiConnection app_id={self._config.app_id!r} mode={self._mode} state={self.state.value}>"

    @property
    def state(self) -> State:
        """IDLE, AUTHENTICATING until the first token, CONNECTED once messages can go, then CLOSED or FATAL."""
        return self._machine.state

    def start(self, now: float) -> None:
        """Fetch the first token, so that bad credentials show at once; nothing happens before this."""
        now = self._clock.tick(now, "start")
        if self.state is not State.IDLE:
            raise LocalProtocolError(
                f"start() was already called (state is {self.state.value}); to start over, create a new QQApiConnection"
            )
        self._machine.move(State.AUTHENTICATING)
        self._api.fetch_token(now)

    def close(self, now: float) -> None:
        """Stop: messages still on their way fail, sockets close, no timer stays armed."""
        self._clock.tick(now, "close")
        if self.state in STOPPED_STATES:
            return
        self._stop("close() was called")
        self._machine.move(State.CLOSED)

    def health(self, now: float) -> Health:
        """A snapshot for watchdogs, in the gateway's shape; the gateway's own fields are empty."""
        since, fatal = self._connected_since, self._fatal
        return Health(
            state=self.state.value,
            connected=self.state is State.CONNECTED,
            session_id=None,
            last_seq=None,
            shard=self._config.shard,
            connected_for=None if since is None else now - since,
            heartbeat_interval=None,
            heartbeat_latency=None,
            last_heartbeat_ack_age=None,
            reconnect_attempts=0,
            next_retry_in=None,
            last_disconnect_reason=self._last_token_failure,
            timer_late_count=self._timer_late_count,
            token_expires_in=self._api.token_expires_in(now),
            fatal_reason=fatal.reason if fatal else None,
            fatal_close_code=None,
            mode=self._mode,
        )

    # ------------------------------------------------------------------ the API client's news

    def _token_news(self, news: TokenResult, now: float) -> None:
        if isinstance(news, TokenIssued):
            if self.state is State.AUTHENTICATING:
                self._machine.move(State.CONNECTED)
                self._connected_since = now
        elif isinstance(news, CredentialsRejected):
            self._stop(news.reason)
            self._fatal = Fatal(news.reason, None)
            self._machine.move(State.FATAL)
            self._sockets.actions.append(self._fatal)
        else:
            # Until the first token, keep asking; after it, as the gateway does in the background.
            self._last_token_failure = news.reason
            self._api.retry_token_later(now, until_issued=self.state is State.AUTHENTICATING)

    def _stop(self, reason: str) -> None:
        self._api.stop(reason)
        self._sockets.close_all(frozenset(Kind))
        self._connected_since = None

    # ------------------------------------------------------------------ it has no sockets of its own

    def _own_socket_opened(self, sock: Socket, now: float) -> None:
        raise AssertionError(f"QQApiConnection has no {sock.kind.value} sockets")

    def _own_receive(self, sock: Socket, data: bytes, now: float) -> None:
        raise AssertionError(f"QQApiConnection has no {sock.kind.value} sockets")

    def _own_socket_ended(self, sock: Socket, reason: str, cause: str | None, now: float) -> None:
        raise AssertionError(f"QQApiConnection has no {sock.kind.value} sockets")
