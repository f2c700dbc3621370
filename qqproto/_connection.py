"""``QQGatewayConnection``: the whole client lifecycle as a state machine fed with bytes and time."""

from __future__ import annotations

import enum
import math
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

from ._backoff import Backoff, jittered_delay
from ._close_codes import CloseAction, rule_for_close
from ._config import GatewayConfig
from ._errors import LocalProtocolError
from ._events import (
    Action,
    CloseSocket,
    new_dispatch,
    Fatal,
    HeartbeatAcked,
    HeartbeatSent,
    MessageFailed,
    MessageSent,
    OpenSocket,
    Ready,
    ReconnectScheduled,
    Resumed,
    SendData,
    SendRetryScheduled,
    TimerLate,
)
from ._gateway_url import (
    GatewayLocated,
    GatewayRateLimited,
    GatewayTokenRejected,
    GatewayUnavailable,
    GatewayUrlCache,
)
from ._health import Health
from ._heartbeat import Beat, Heartbeat
from ._http import Endpoint, HttpExchange, HttpFailure, HttpResponse
from ._sending import SendDone, SendFailed, SendAsActive, OutgoingMessage, SendRefreshToken, SendRetry, SendPolicy
from ._payloads import BadPayload, NotUtf8, Opcode, Payload, heartbeat, identify, parse_payload, resume
from ._state import TRANSITIONS, State
from ._token import CredentialsRejected, TokenCache, TokenIssued, TokenUnavailable
from ._websocket import WebSocketClient, WsClosed, WsFailed

__all__ = ["QQGatewayConnection"]

# Close code the client sends when it drops a socket to reconnect: not 1000, so the session survives.
RECONNECT_CLOSE_CODE = 3000
NORMAL_CLOSE_CODE = 1000
# How many 4004 closes or token rejections in a row, each with a fresh token, before giving up.
TOKEN_REJECTION_LIMIT = 2


class _Kind(enum.Enum):
    TOKEN = "token request"
    GATEWAY_URL = "/gateway/bot request"
    WEBSOCKET = "gateway WebSocket"
    SEND = "message send"


class _Timer(str, enum.Enum):
    """The core's own timers; str-valued so that dict lookups hash in C."""

    HEARTBEAT = "heartbeat"
    RECONNECT = "reconnect"
    TOKEN_REFRESH = "token refresh"

    __hash__ = str.__hash__


@dataclass
class _Socket:
    """One socket the core asked for, and what it is waiting for."""

    sock_id: int
    kind: _Kind
    endpoint: Endpoint
    http: Optional[HttpExchange] = None
    ws: Optional[WebSocketClient] = None
    opened_at: Optional[float] = None
    deadline: Optional[float] = None
    deadline_reason: str = ""
    deadline_extended: bool = False
    send_id: Optional[int] = None


@dataclass
class _Send:
    """A message on its way out: waiting for a token, for its retry time, or for an answer."""

    send_id: int
    message: OutgoingMessage
    due: Optional[float] = None
    waiting_for_token: bool = False


@dataclass(frozen=True)
class _Disconnect:
    """Why a gateway socket ended and how to come back."""

    cause: str
    reason: str
    resume: bool
    immediate: bool = False
    floor: float = 0.0


class QQGatewayConnection:
    """Keeps one QQ bot gateway session alive; every input carries ``now``, every output is an action.

    Feed it with :meth:`start`, :meth:`socket_opened`, :meth:`socket_failed`, :meth:`receive_data`,
    :meth:`handle_timer` and :meth:`close`; after each, carry out :meth:`next_actions` and arm a timer
    for :meth:`next_timer`.
    """

    def __init__(self, config: GatewayConfig, rng: Optional[random.Random] = None) -> None:
        if not isinstance(config, GatewayConfig):
            raise LocalProtocolError(
                f"QQGatewayConnection needs a GatewayConfig, not {type(config).__name__}: "
                "pass GatewayConfig(app_id=..., client_secret=...)"
            )
        self._config = config
        self._rng = rng if rng is not None else random.Random()
        self._state = State.IDLE
        self._now = -math.inf
        self._actions: list[Action] = []
        self._sockets: dict[int, _Socket] = {}
        self._last_sock_id = 0
        self._timers: dict[_Timer, float] = {}
        self._token = TokenCache(config)
        self._gateway = GatewayUrlCache(config)
        self._backoff = Backoff(config, self._rng)
        self._token_sock: Optional[int] = None
        self._gateway_sock: Optional[int] = None
        self._ws_sock: Optional[int] = None
        self._heartbeat: Optional[Heartbeat] = None
        self._session_id: Optional[str] = None
        self._last_seq: Optional[int] = None
        self._connected_since: Optional[float] = None
        self._resume_failures = 0
        self._token_rejections = 0
        self._reconnects_by_cause: Counter[str] = Counter()
        self._last_disconnect_reason: Optional[str] = None
        self._dispatches_delivered = 0
        self._timer_late_count = 0
        self._fatal: Optional[Fatal] = None
        self._sends: dict[int, _Send] = {}
        self._last_send_id = 0
        self._token_retries = 0
        self._policy = SendPolicy(
            self._rng,
            allow_active=config.allow_active_messages,
            window_margin=config.reply_window_margin,
            backoff_base=config.backoff_base,
            backoff_cap=config.backoff_cap,
            give_up_after=config.send_give_up_after,
        )

    def __repr__(self) -> str:
        return f"<QQGatewayConnection app_id={self._config.app_id!r} state={self._state.value}>"

    # ------------------------------------------------------------------ public inputs

    def start(self, now: float) -> None:
        """Begin connecting; nothing happens before this."""
        self._tick(now, "start")
        if self._state is not State.IDLE:
            raise LocalProtocolError(
                f"start() was already called (state is {self._state.value}); "
                "to start over, create a new QQGatewayConnection"
            )
        self._advance()

    def socket_opened(self, sock_id: int, now: float) -> None:
        """The socket asked for by ``OpenSocket(sock_id)`` is connected (TCP, and TLS if asked)."""
        self._tick(now, "socket_opened")
        self._overdue_first(now)
        sock = self._socket(sock_id, "socket_opened")
        if sock is None:
            return
        if sock.opened_at is not None:
            raise LocalProtocolError(
                f"socket_opened({sock_id}) was called twice; report each OpenSocket once, "
                "with socket_opened or socket_failed"
            )
        sock.opened_at = now
        if sock.http is not None:
            self._send(sock, sock.http.request_bytes())
            self._set_deadline(sock, self._config.http_timeout, f"no answer to the {sock.kind.value}")
        elif sock.ws is not None:
            self._send(sock, sock.ws.handshake_bytes())
            self._set_deadline(sock, self._config.hello_timeout, "no Hello from the gateway")

    def socket_failed(self, sock_id: int, reason: str, now: float) -> None:
        """The socket could not be opened, or broke; ``reason`` is a description for people."""
        self._tick(now, "socket_failed")
        self._overdue_first(now)
        sock = self._socket(sock_id, "socket_failed")
        if sock is None:
            return
        stage = "connecting to" if sock.opened_at is None else "on"
        self._socket_ended(sock, f"{stage} {sock.endpoint.host}:{sock.endpoint.port} failed: {reason}")

    def receive_data(self, sock_id: int, data: bytes, now: float) -> None:
        """Bytes read from a socket; ``b""`` means the peer closed it."""
        self._tick(now, "receive_data")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise LocalProtocolError(
                f"receive_data() takes bytes, not {type(data).__name__}: pass the bytes read from the socket"
            )
        self._overdue_first(now)
        sock = self._socket(sock_id, "receive_data")
        if sock is None:
            return
        if sock.opened_at is None:
            raise LocalProtocolError(
                f"receive_data({sock_id}) came before socket_opened({sock_id}); "
                f"call socket_opened({sock_id}, now) once the socket is connected"
            )
        if type(data) is not bytes:
            data = bytes(data)
        if sock.http is not None:
            result = sock.http.receive_data(data)
            if result is not None:
                self._http_finished(sock, result)
        elif sock.ws is not None:
            self._ws_receive(sock, sock.ws, data)

    def handle_timer(self, now: float) -> None:
        """Do what is due; call it once ``now >= next_timer()``. An early call does nothing."""
        self._tick(now, "handle_timer")
        due = self.next_timer()
        if due is None or now < due:
            return
        late = now - due > self._config.late_timer_threshold
        if late:
            self._timer_late_count += 1
            self._emit(TimerLate(now - due))
        while True:
            nearest = self._nearest_due(now)
            if nearest is None:
                break
            self._fire(nearest, late)

    def send_message(self, message: OutgoingMessage, now: float) -> int:
        """Send a message through the platform's HTTP API; returns the ``send_id`` of its outcome.

        The outcome comes later as ``MessageSent`` or ``MessageFailed``; retries, token refreshes
        and the switch from an expiring reply to an active message happen on the way.
        """
        self._tick(now, "send_message")
        if not isinstance(message, OutgoingMessage):
            raise LocalProtocolError(f"send_message() takes an OutgoingMessage, not {type(message).__name__}")
        if self._state in (State.CLOSING, State.CLOSED, State.FATAL):
            raise LocalProtocolError(f"send_message() after the connection stopped (state is {self._state.value})")
        self._overdue_first(now)
        self._last_send_id += 1
        send = self._sends[self._last_send_id] = _Send(self._last_send_id, message)
        self._attempt_send(send)
        return send.send_id

    def _overdue_first(self, now: float) -> None:
        """A timer that fell due before this input was seen goes first, as it would have on time.

        An input that arrives after a due time means the host loop was blocked; whatever
        order the transport wakes up in, the late timer is noticed and reported first.
        """
        due = self.next_timer()
        if due is not None and now >= due:
            self.handle_timer(now)

    def close(self, now: float) -> None:
        """Shut down gracefully: close the gateway with 1000 and stop reconnecting."""
        self._tick(now, "close", started=False)
        if self._state in (State.CLOSED, State.FATAL, State.CLOSING):
            return
        self._timers.clear()
        self._fail_sends("close() was called")
        for sock in list(self._sockets.values()):
            if sock.kind is not _Kind.WEBSOCKET:
                self._close_socket(sock)
        ws = self._current_ws()
        if ws is not None and ws.ws is not None and ws.ws.is_open:
            self._send(ws, ws.ws.close(NORMAL_CLOSE_CODE, "client closing"))
            self._heartbeat = None
            self._set_state(State.CLOSING)
            self._set_deadline(ws, self._config.close_timeout, "the gateway did not answer the close")
            return
        if ws is not None:
            self._close_socket(ws)
        self._set_state(State.CLOSED)

    # ------------------------------------------------------------------ public outputs

    def next_actions(self) -> list[Action]:
        """Everything the connection wants done since the last call, in order."""
        actions, self._actions = self._actions, []
        return actions

    def next_timer(self) -> Optional[float]:
        """When :meth:`handle_timer` is next due, or None when nothing is waiting on time."""
        due = min(self._timers.values()) if self._timers else None
        for sock in self._sockets.values():
            if sock.deadline is not None and (due is None or sock.deadline < due):
                due = sock.deadline
        for send in self._sends.values():
            if send.due is not None and (due is None or send.due < due):
                due = send.due
        return due

    def health(self, now: float) -> Health:
        """A snapshot for watchdogs."""
        hb = self._heartbeat
        retry_at = self._timers.get(_Timer.RECONNECT)
        return Health(
            state=self._state.value,
            connected=self._state is State.CONNECTED,
            session_id=self._session_id,
            last_seq=self._last_seq,
            shard=self._config.shard,
            connected_for=None if self._connected_since is None else now - self._connected_since,
            heartbeat_interval=hb.interval if hb else None,
            heartbeat_latency=hb.latency if hb else None,
            last_heartbeat_ack_age=None if hb is None or hb.last_ack_at is None else now - hb.last_ack_at,
            reconnect_attempts=self._backoff.attempts,
            next_retry_in=None if retry_at is None else max(0.0, retry_at - now),
            last_disconnect_reason=self._last_disconnect_reason,
            reconnects_by_cause=dict(self._reconnects_by_cause),
            dispatches_delivered=self._dispatches_delivered,
            timer_late_count=self._timer_late_count,
            gateway_url_cached=self._gateway.endpoint is not None,
            token_expires_in=self._token.expires_at - now if self._token.usable(now) else None,
            fatal_reason=self._fatal.reason if self._fatal else None,
            fatal_close_code=self._fatal.close_code if self._fatal else None,
        )

    # ------------------------------------------------------------------ read-only views

    @property
    def state(self) -> State:
        """Where the connection is in its life."""
        return self._state

    @property
    def session_id(self) -> Optional[str]:
        """The held session, if any."""
        return self._session_id

    @property
    def last_seq(self) -> Optional[int]:
        """The sequence number of the last dispatch received in the held session."""
        return self._last_seq

    @property
    def token_fetches(self) -> int:
        """How many times the token endpoint was asked."""
        return self._token.fetches

    @property
    def access_token(self) -> Optional[str]:
        """The access token this connection holds, unexpired at the last input; for the bot's other HTTP calls."""
        return self._token.authorization if self._token.usable(self._now) else None

    @property
    def gateway_url_fetches(self) -> int:
        """How many times ``/gateway/bot`` was asked."""
        return self._gateway.fetches

    @property
    def gateway_cache_invalidations(self) -> int:
        """How many times the cached gateway URL was given up as stale."""
        return self._gateway.invalidations

    # ------------------------------------------------------------------ input checking

    def _tick(self, now: float, method: str, *, started: bool = True) -> None:
        if type(now) is not float and (isinstance(now, bool) or not isinstance(now, (int, float))) or now != now:
            raise LocalProtocolError(
                f"{method}() needs now as a number of seconds, got {now!r}: pass a reading of the "
                "same monotonic clock as every other input"
            )
        if started and self._state is State.IDLE and method != "start":
            raise LocalProtocolError(f"{method}() was called before start(); call start(now) first")
        # A clock that steps back is taken as standing still.
        self._now = max(self._now, float(now))

    def _socket(self, sock_id: int, method: str) -> Optional[_Socket]:
        sock = self._sockets.get(sock_id)
        if sock is not None:
            return sock
        if isinstance(sock_id, int) and 0 < sock_id <= self._last_sock_id:
            return None  # closed by the core already: late input for it is dropped
        raise LocalProtocolError(
            f"{method}({sock_id!r}): the connection never asked to open socket {sock_id!r}; "
            "pass the sock_id of an OpenSocket action"
        )

    # ------------------------------------------------------------------ plumbing

    def _emit(self, action: Action) -> None:
        self._actions.append(action)

    def _set_state(self, state: State) -> None:
        if state is not self._state and state not in TRANSITIONS[self._state]:
            raise RuntimeError(f"internal error: no transition from {self._state.value} to {state.value}")
        self._state = state
        if state in (State.CLOSING, State.CLOSED, State.FATAL):
            self._connected_since = None

    def _open(self, kind: _Kind, endpoint: Endpoint, **protocol: Any) -> _Socket:
        self._last_sock_id += 1
        sock = _Socket(self._last_sock_id, kind, endpoint, **protocol)
        self._sockets[sock.sock_id] = sock
        self._emit(
            OpenSocket(sock.sock_id, endpoint.host, endpoint.port, endpoint.tls, endpoint.host if endpoint.tls else None)
        )
        self._set_deadline(sock, self._config.connect_timeout, f"connecting for the {kind.value} timed out")
        return sock

    def _send(self, sock: _Socket, data: bytes) -> None:
        if data:
            self._emit(SendData(sock.sock_id, data))

    def _close_socket(self, sock: _Socket) -> None:
        if self._sockets.pop(sock.sock_id, None) is None:
            return
        self._emit(CloseSocket(sock.sock_id))
        if sock.sock_id == self._token_sock:
            self._token_sock = None
        elif sock.sock_id == self._gateway_sock:
            self._gateway_sock = None
        elif sock.sock_id == self._ws_sock:
            self._ws_sock = None
            self._heartbeat = None
            self._timers.pop(_Timer.HEARTBEAT, None)

    def _set_deadline(self, sock: _Socket, seconds: float, reason: str) -> None:
        sock.deadline = self._now + seconds
        sock.deadline_reason = f"{reason} (after {seconds:g}s)"
        sock.deadline_extended = False

    def _current_ws(self) -> Optional[_Socket]:
        return None if self._ws_sock is None else self._sockets.get(self._ws_sock)

    # ------------------------------------------------------------------ timers

    def _nearest_due(self, now: float) -> Union[_Timer, _Socket, _Send, None]:
        best: Union[_Timer, _Socket, _Send, None] = None
        best_at = now
        for timer, at in self._timers.items():
            if at <= best_at:
                best, best_at = timer, at
        for sock in self._sockets.values():
            if sock.deadline is not None and sock.deadline <= best_at:
                best, best_at = sock, sock.deadline
        for send in self._sends.values():
            if send.due is not None and send.due <= best_at:
                best, best_at = send, send.due
        return best

    def _fire(self, due: Union[_Timer, _Socket, _Send], late: bool) -> None:
        if isinstance(due, _Send):
            due.due = None
            self._attempt_send(due)
            return
        if isinstance(due, _Socket):
            if late and not due.deadline_extended:
                # The host was blocked: what we waited for may be sitting unread in the socket.
                due.deadline = self._now + self._config.late_timer_threshold
                due.deadline_extended = True
                return
            due.deadline = None
            self._deadline_passed(due)
            return
        del self._timers[due]
        if due is _Timer.HEARTBEAT:
            self._heartbeat_due(late)
        elif due is _Timer.RECONNECT:
            self._advance()
        elif due is _Timer.TOKEN_REFRESH:
            if self._token_sock is None:
                self._fetch_token()

    def _deadline_passed(self, sock: _Socket) -> None:
        if self._state is State.CLOSING:
            self._close_socket(sock)
            self._set_state(State.CLOSED)
            return
        self._socket_ended(sock, sock.deadline_reason, cause="timeout")

    # ------------------------------------------------------------------ the way to a session

    def _advance(self) -> None:
        """Take the next step toward a session: token, gateway URL, then the WebSocket."""
        now = self._now
        if not self._token.usable(now):
            if self._token_sock is None:
                self._fetch_token()
            self._set_state(State.AUTHENTICATING)
            return
        if self._gateway.needs_fetch:
            self._set_state(State.LOCATING)
            sock = self._open(_Kind.GATEWAY_URL, self._gateway.api_endpoint.join("/gateway/bot"))
            sock.http = self._gateway.request(self._token.authorization)
            self._gateway_sock = sock.sock_id
            return
        if self._session_id is None:
            wait = self._gateway.identify_delay(now)
            if wait > 0:
                self._wait(wait, "session_limit", f"session start limit: next identify allowed in {wait:.1f}s")
                return
        endpoint = self._gateway.endpoint
        assert endpoint is not None
        self._set_state(State.CONNECTING)
        sock = self._open(_Kind.WEBSOCKET, endpoint)
        sock.ws = WebSocketClient(
            endpoint,
            max_message_size=self._config.max_message_size,
            max_handshake_size=self._config.max_http_header_size,
            rng=self._rng,
        )
        self._ws_sock = sock.sock_id

    def _fetch_token(self) -> None:
        sock = self._open(_Kind.TOKEN, self._token.endpoint)
        sock.http = self._token.request()
        self._token_sock = sock.sock_id

    def _http_finished(self, sock: _Socket, result: Union[HttpResponse, HttpFailure]) -> None:
        self._close_socket(sock)
        if sock.kind is _Kind.SEND:
            self._send_answered(sock, result)
        elif isinstance(result, HttpFailure):
            self._http_failed(sock, result.reason, None)
        elif sock.kind is _Kind.TOKEN:
            self._token_answered(result)
        else:
            self._gateway_answered(result)

    def _http_failed(self, sock: _Socket, reason: str, cause: Optional[str]) -> None:
        if sock.kind is _Kind.SEND:
            self._send_answered(sock, HttpFailure(reason))
        elif sock.kind is _Kind.TOKEN:
            self._token_unavailable(f"token request failed: {reason}", cause or "token")
        else:
            self._gateway_unavailable(f"/gateway/bot request failed: {reason}", cause or "gateway_url")

    def _token_answered(self, response: HttpResponse) -> None:
        result = self._token.accept(response, self._now)
        if isinstance(result, TokenIssued):
            self._token_retries = 0
            self._timers[_Timer.TOKEN_REFRESH] = self._token.refresh_at
            for send in [send for send in self._sends.values() if send.waiting_for_token]:
                send.waiting_for_token = False
                self._attempt_send(send)
            if self._state is State.AUTHENTICATING:
                self._advance()
        elif isinstance(result, CredentialsRejected):
            self._fail(result.reason, None)
        elif isinstance(result, TokenUnavailable):
            self._token_unavailable(result.reason, "token")

    def _token_unavailable(self, reason: str, cause: str) -> None:
        if self._state is State.AUTHENTICATING:
            self._reconnect_later(_Disconnect(cause, reason, resume=self._session_id is not None))
            return
        # A background refresh failed: try again while the held token lasts, or while messages
        # wait for one; otherwise the next connection attempt fetches a token anyway.
        remaining = self._token.expires_at - self._now
        if any(send.waiting_for_token for send in self._sends.values()):
            self._token_retries += 1
            config = self._config
            delay = jittered_delay(config.backoff_base, config.backoff_cap, self._token_retries, self._rng)
            self._timers[_Timer.TOKEN_REFRESH] = self._now + delay
        elif remaining > self._config.backoff_base:
            retry = min(self._config.backoff_cap, max(self._config.backoff_base, remaining / 2))
            self._timers[_Timer.TOKEN_REFRESH] = self._now + retry

    def _gateway_answered(self, response: HttpResponse) -> None:
        result = self._gateway.accept(response, self._now)
        if isinstance(result, GatewayLocated):
            self._advance()
        elif isinstance(result, GatewayRateLimited):
            self._gateway_unavailable(result.reason, "rate_limited", cooldown=True)
        elif isinstance(result, GatewayTokenRejected):
            self._token_rejected(result.reason, None)
        elif isinstance(result, GatewayUnavailable):
            self._gateway_unavailable(result.reason, "gateway_url")

    def _gateway_unavailable(self, reason: str, cause: str, *, cooldown: bool = False) -> None:
        # With a cached URL still in hand, keep using it rather than waiting on /gateway/bot.
        usable_cached = self._gateway.fetch_failed()
        floor = 0.0 if usable_cached or not cooldown else self._config.cooldown
        self._reconnect_later(_Disconnect(cause, reason, resume=self._session_id is not None, floor=floor))

    def _token_rejected(self, reason: str, close_code: Optional[int]) -> bool:
        """The platform refused the token: fetch a new one, or give up if a fresh one was refused too."""
        self._token_rejections += 1
        self._token.invalidate()
        if self._token_rejections >= TOKEN_REJECTION_LIMIT:
            self._fail(
                f"{reason}, again with a freshly issued token: check that app_id and client_secret belong "
                "to the same bot, and that api_base matches where the bot is published (sandbox or production)",
                close_code,
            )
            return False
        if close_code is None:
            self._advance()
        return True

    # ------------------------------------------------------------------ the gateway socket

    def _ws_receive(self, sock: _Socket, ws: WebSocketClient, data: bytes) -> None:
        events, reply = ws.receive(data)
        self._send(sock, reply)
        sockets, sock_id = self._sockets, sock.sock_id
        for event in events:
            if sockets.get(sock_id) is not sock:
                return  # an earlier message ended this socket
            if type(event) is bytes or type(event) is str:
                # One gateway message; this is the receive path's inner loop, so it is spelled out here.
                try:
                    payload = parse_payload(event)
                    if payload.op == _DISPATCH:
                        self._on_dispatch(sock, payload)  # delivered while a close completes too
                    elif self._state is not State.CLOSING:
                        handler = _OPCODE_HANDLERS.get(payload.op)
                        if handler is None:
                            raise BadPayload(f"gateway sent unknown opcode {payload.op}")
                        handler(self, sock, payload)
                except BadPayload as exc:
                    if self._state is not State.CLOSING:
                        self._drop_ws(sock, 1007, _Disconnect("bad_input", str(exc), resume=True))
                    elif isinstance(exc, NotUtf8):
                        self._socket_ended(sock, str(exc), cause="bad_input")  # as wsproto ends a broken socket
            elif isinstance(event, WsClosed):
                self._ws_closed(sock, event.code, event.reason)
            elif isinstance(event, WsFailed):
                self._socket_ended(sock, event.reason, cause="bad_input")

    def _on_heartbeat_ack(self, sock: _Socket, payload: Payload) -> None:
        if self._heartbeat is not None:
            latency = self._heartbeat.ack(self._now)
            if latency is not None:
                self._emit(HeartbeatAcked(latency))

    def _on_heartbeat_request(self, sock: _Socket, payload: Payload) -> None:
        self._beat(sock)

    def _on_reconnect(self, sock: _Socket, payload: Payload) -> None:
        self._drop_ws(
            sock,
            RECONNECT_CLOSE_CODE,
            _Disconnect("reconnect_request", "the gateway asked for a reconnect (op 7)", True, immediate=True),
        )

    def _on_invalid_session(self, sock: _Socket, payload: Payload) -> None:
        resumable = payload.d is True
        low, high = self._config.invalid_session_delay
        self._drop_ws(
            sock,
            RECONNECT_CLOSE_CODE,
            _Disconnect(
                "invalid_session",
                f"the gateway invalidated the session (op 9, resumable={str(resumable).lower()})",
                resume=resumable,
                floor=self._rng.uniform(low, high),
            ),
        )

    def _on_hello(self, sock: _Socket, payload: Payload) -> None:
        if self._state is not State.CONNECTING:
            return
        d = payload.d
        interval_ms = d.get("heartbeat_interval") if isinstance(d, dict) else None
        if isinstance(interval_ms, bool) or not isinstance(interval_ms, (int, float)) or not interval_ms > 0:
            raise BadPayload("Hello has no positive heartbeat_interval")
        interval = min(interval_ms, 86_400_000) / 1000.0 * self._config.heartbeat_ratio
        self._gateway.connect_succeeded()
        self._heartbeat = Heartbeat(interval, self._now)
        self._timers[_Timer.HEARTBEAT] = self._heartbeat.due_at
        token = self._token.authorization
        if self._session_id is not None:
            self._set_state(State.RESUMING)
            self._send(sock, self._ws_text(sock, resume(token, self._session_id, self._last_seq)))
            self._set_deadline(sock, self._config.ready_timeout, "no RESUMED from the gateway")
        else:
            self._set_state(State.IDENTIFYING)
            self._last_seq = None
            self._gateway.identified(self._now)
            self._send(sock, self._ws_text(sock, identify(token, self._config.intents, self._config.shard)))
            self._set_deadline(sock, self._config.ready_timeout, "no READY from the gateway")

    def _on_dispatch(self, sock: _Socket, payload: Payload) -> None:
        _, d, s, t, event_id = payload
        if s is None or t is None:
            raise BadPayload("dispatch without an integer 's' and a string 't'")
        if t == "READY":
            self._on_ready(sock, payload)
            return
        if t == "RESUMED":
            if self._state is State.RESUMING and self._session_id is not None:
                self._advance_seq(s)
                self._session_started(sock)
                self._emit(Resumed(self._session_id))
            return
        last_seq = self._last_seq
        if last_seq is not None and s <= last_seq:
            return  # replayed: the application has it already
        self._last_seq = s
        self._dispatches_delivered += 1
        self._actions.append(new_dispatch(t, d, s, event_id))

    def _on_ready(self, sock: _Socket, payload: Payload) -> None:
        d = payload.d
        session_id = d.get("session_id") if isinstance(d, dict) else None
        if not isinstance(session_id, str) or not session_id or not session_id.isprintable():
            raise BadPayload("READY without a usable session_id (it is sent back in Resume)")
        if self._state is not State.IDENTIFYING:
            return
        assert isinstance(d, dict)
        user = d.get("user")
        self._session_id = session_id
        self._last_seq = payload.s
        self._session_started(sock)
        self._emit(Ready(session_id, user if isinstance(user, dict) else {}, self._ready_shard(d.get("shard"))))

    def _ready_shard(self, shard: Any) -> tuple[int, int]:
        if (
            isinstance(shard, list)
            and len(shard) == 2
            and all(type(n) is int for n in shard)
            and 0 <= shard[0] < shard[1]
        ):
            return (shard[0], shard[1])
        return self._config.shard  # READY's example shows [0, 0]: keep our own count

    def _advance_seq(self, seq: int) -> None:
        if self._last_seq is None or seq > self._last_seq:
            self._last_seq = seq

    def _session_started(self, sock: _Socket) -> None:
        sock.deadline = None
        self._set_state(State.CONNECTED)
        self._connected_since = self._now
        self._resume_failures = 0
        self._token_rejections = 0

    def _ws_text(self, sock: _Socket, text: str) -> bytes:
        assert sock.ws is not None
        return sock.ws.send_text(text)

    def _heartbeat_due(self, late: bool) -> None:
        sock = self._current_ws()
        hb = self._heartbeat
        if sock is None or hb is None:
            return
        if hb.due(self._now, late=late) is Beat.ZOMBIE:
            self._drop_ws(
                sock,
                RECONNECT_CLOSE_CODE,
                _Disconnect(
                    "zombie",
                    f"zombie connection: the last heartbeat got no ACK within {hb.interval:.1f}s",
                    resume=True,
                    immediate=True,
                ),
            )
            return
        self._beat(sock)

    def _beat(self, sock: _Socket) -> None:
        hb = self._heartbeat
        if hb is None or sock.ws is None or not sock.ws.is_open:
            return
        self._send(sock, sock.ws.send_text(heartbeat(self._last_seq)))
        hb.sent(self._now)
        self._timers[_Timer.HEARTBEAT] = hb.due_at
        self._emit(HeartbeatSent(self._last_seq))

    # ------------------------------------------------------------------ sending messages

    def _attempt_send(self, send: _Send) -> None:
        if not self._token.usable(self._now):
            send.waiting_for_token = True
            if self._token_sock is None:
                self._fetch_token()
            return
        attempt = self._policy.attempt(send.message, self._now)
        if isinstance(attempt, SendFailed):
            self._send_failed(send, attempt)
            return
        endpoint = self._gateway.api_endpoint.join(attempt.path)
        sock = self._open(_Kind.SEND, endpoint)
        sock.send_id = send.send_id
        sock.http = HttpExchange(
            "POST",
            endpoint,
            [
                ("User-Agent", self._config.user_agent),
                ("Content-Type", "application/json"),
                ("Authorization", f"QQBot {self._token.authorization}"),
                ("X-Union-Appid", self._config.app_id),
            ],
            attempt.body,
            max_header_size=self._config.max_http_header_size,
            max_body_size=self._config.max_http_body_size,
        )

    def _send_answered(self, sock: _Socket, result: Union[HttpResponse, HttpFailure]) -> None:
        send = self._sends.get(sock.send_id) if sock.send_id is not None else None
        if send is None:
            return
        if isinstance(result, HttpFailure):
            decision = self._policy.decide(send.message, None, {}, b"", self._now)
        else:
            decision = self._policy.decide(send.message, result.status, dict(result.headers), result.body, self._now)
        if isinstance(decision, SendDone):
            del self._sends[send.send_id]
            self._emit(MessageSent(send.send_id, decision.message_id, decision.duplicate))
        elif isinstance(decision, SendRetry):
            send.due = self._now + decision.delay
            self._emit(SendRetryScheduled(send.send_id, decision.delay, decision.reason))
        elif isinstance(decision, SendRefreshToken):
            self._token.invalidate()
            self._attempt_send(send)
        elif isinstance(decision, SendAsActive):
            self._attempt_send(send)
        else:
            self._send_failed(send, decision)

    def _send_failed(self, send: _Send, failure: SendFailed) -> None:
        self._sends.pop(send.send_id, None)
        self._emit(MessageFailed(send.send_id, failure.reason, failure.code, failure.trace_id))

    # ------------------------------------------------------------------ losing a socket

    def _ws_closed(self, sock: _Socket, code: Optional[int], reason: str) -> None:
        if self._state is State.CLOSING:
            self._close_socket(sock)
            self._set_state(State.CLOSED)
            return
        rule = rule_for_close(code)
        detail = f"the gateway closed the connection with {code}" if code is not None else "the connection dropped"
        if reason:
            detail += f" ({reason[:200]})"
        detail += f": {rule.meaning}"
        cause = f"close_{code}" if code is not None else "connection_lost"
        action = rule.action
        if action is CloseAction.FATAL:
            self._close_socket(sock)
            self._fail(f"{detail} (close code {code})", code)
        elif action is CloseAction.REFRESH_TOKEN:
            self._close_socket(sock)
            if self._token_rejected(detail, code):
                self._after_ws(sock, _Disconnect(cause, detail, resume=True))
        else:
            self._close_socket(sock)
            self._after_ws(
                sock,
                _Disconnect(
                    cause,
                    detail,
                    resume=action is not CloseAction.IDENTIFY,
                    immediate=action is CloseAction.RESUME,
                    floor=self._config.cooldown if action is CloseAction.RESUME_AFTER_COOLDOWN else 0.0,
                ),
            )

    def _socket_ended(self, sock: _Socket, reason: str, cause: Optional[str] = None) -> None:
        """A socket failed, timed out or broke the protocol."""
        if sock.kind is not _Kind.WEBSOCKET:
            self._close_socket(sock)
            self._http_failed(sock, reason, cause)
            return
        if self._state is State.CLOSING:
            self._close_socket(sock)
            self._set_state(State.CLOSED)
            return
        if self._state is State.CONNECTING:
            cause = "connect_failed"
        cause = cause or "connection_lost"
        self._drop_ws(
            sock, RECONNECT_CLOSE_CODE, _Disconnect(cause, reason, resume=True, immediate=cause == "connection_lost")
        )

    def _drop_ws(self, sock: _Socket, code: int, why: _Disconnect) -> None:
        if sock.ws is not None and sock.ws.is_open:
            self._send(sock, sock.ws.close(code, why.cause))
        self._close_socket(sock)
        self._after_ws(sock, why)

    def _after_ws(self, sock: _Socket, why: _Disconnect) -> None:
        now = self._now
        reached_hello = self._state is not State.CONNECTING
        if not reached_hello:
            # The cached URL did not get as far as Hello.
            self._gateway.connect_failed()
        if self._connected_since is not None and now - self._connected_since >= self._config.healthy_after:
            self._backoff.reset()
        # Only a session the platform let in and then dropped counts as a quick disconnect;
        # failed connects have the backoff of their own.
        self._backoff.connection_ended(now - sock.opened_at if reached_hello and sock.opened_at is not None else None)
        was_resuming = self._state is State.RESUMING
        self._connected_since = None
        resume = why.resume
        if was_resuming and why.cause not in ("reconnect_request",):
            self._resume_failures += 1
            if self._resume_failures >= self._config.resume_failure_limit:
                resume = False
        if not resume:
            self._forget_session()
        self._reconnect_later(why)

    def _forget_session(self) -> None:
        self._session_id = None
        self._last_seq = None
        self._resume_failures = 0

    def _reconnect_later(self, why: _Disconnect) -> None:
        self._reconnects_by_cause[why.cause] += 1
        self._last_disconnect_reason = why.reason
        delay = self._backoff.next_delay(immediate=why.immediate, floor=why.floor)
        if self._backoff.exhausted:
            limit = self._config.max_reconnect_attempts
            self._fail(
                f"gave up after {limit} reconnect attempts (max_reconnect_attempts={limit}): fix the last "
                f"failure, or raise max_reconnect_attempts (None never gives up); last failure: {why.reason}",
                None,
            )
            return
        self._wait(delay, why.cause, why.reason)

    def _wait(self, delay: float, cause: str, reason: str) -> None:
        self._set_state(State.WAITING)
        self._emit(ReconnectScheduled(delay, self._session_id is not None, reason, cause))
        if delay > 0:
            self._timers[_Timer.RECONNECT] = self._now + delay
        else:
            self._advance()

    def _fail_sends(self, reason: str) -> None:
        for send in list(self._sends.values()):
            self._send_failed(send, SendFailed(f"the connection stopped before the message was sent: {reason}", None, None))

    def _fail(self, reason: str, close_code: Optional[int]) -> None:
        self._fail_sends(reason)
        for sock in list(self._sockets.values()):
            if sock.ws is not None and sock.ws.is_open:
                self._send(sock, sock.ws.close(NORMAL_CLOSE_CODE, "giving up"))
            self._close_socket(sock)
        self._timers.clear()
        self._heartbeat = None
        self._connected_since = None
        self._fatal = Fatal(reason, close_code)
        self._set_state(State.FATAL)
        self._emit(self._fatal)


# Compared with every message's opcode: a plain int, quicker to reach than the enum member.
_DISPATCH = int(Opcode.DISPATCH)
# What each opcode the gateway sends but Dispatch is answered with (reference §3).
_OPCODE_HANDLERS: dict[int, Callable[[QQGatewayConnection, _Socket, Payload], None]] = {
    Opcode.HEARTBEAT_ACK: QQGatewayConnection._on_heartbeat_ack,
    Opcode.HELLO: QQGatewayConnection._on_hello,
    Opcode.HEARTBEAT: QQGatewayConnection._on_heartbeat_request,
    Opcode.RECONNECT: QQGatewayConnection._on_reconnect,
    Opcode.INVALID_SESSION: QQGatewayConnection._on_invalid_session,
}
