"""The way to a gateway session and back: the one place where the parts' answers become actions.

Token, ``/gateway/bot``, the gateway socket, and after a loss the wait and the next attempt;
``close`` and giving up. Its parts answer with values (:class:`~._link.Link` endings, token
news, :class:`~._recovery.Recovery` delays) and it carries them out.
"""

from __future__ import annotations

import random

from ._api_client import ApiClient
from ._close_codes import CloseAction
from ._config import GatewayConfig
from ._errors import LocalProtocolError
from ._events import Fatal, ReconnectScheduled, SessionForgotten
from ._gateway_url import GatewayLocated, GatewayRateLimited, GatewayTokenRejected, GatewayUnavailable, GatewayUrlCache
from ._http import HttpFailure
from ._identify_gate import IdentifyGate
from ._link import RECONNECT_CLOSE_CODE, Broken, Drop, Ending, Link, PeerClosed
from ._recovery import Disconnect, GiveUp, Recovery, disconnect_for_close
from ._session import Session
from ._sockets import Kind, Socket, Sockets
from ._state import STOPPED_STATES, Machine, State
from ._token import CredentialsRejected, TokenIssued, TokenResult

__all__ = ["Lifecycle"]

NORMAL_CLOSE_CODE = 1000
# How many 4004 closes or token rejections in a row, each with a fresh token, before giving up.
TOKEN_REJECTION_LIMIT = 2


class Lifecycle:
    """Drives the state machine from IDLE to CONNECTED and back, through WAITING, to CLOSED or FATAL."""

    __slots__ = (
        "_config",
        "_rng",
        "_sockets",
        "api",
        "fatal",
        "gateway",
        "identify_gate",
        "link",
        "machine",
        "reconnect_at",
        "recovery",
        "session",
    )

    def __init__(
        self, config: GatewayConfig, rng: random.Random, sockets: Sockets, api: ApiClient, *, ask_before_identify: bool
    ) -> None:
        self._config = config
        self._rng = rng
        self._sockets = sockets
        self.api = api
        self.machine = Machine()
        self.identify_gate = IdentifyGate(config.shard, sockets, external=ask_before_identify)
        self.session = Session(config.shard, self.identify_gate.identified, self.identify_gate.settled)
        self.gateway = GatewayUrlCache(config, api.api_endpoint)
        self.recovery = Recovery(config, rng)
        self.link: Link | None = None
        self.reconnect_at: float | None = None
        self.fatal: Fatal | None = None

    @property
    def state(self) -> State:
        """The connection's state."""
        return self.machine.state

    def _move(self, state: State) -> None:
        self.machine.move(state)
        if state in STOPPED_STATES:
            self.session.connected_since = None

    # ------------------------------------------------------------------ toward a session

    def advance(self, now: float) -> None:
        """Take the next step toward a session: token, gateway URL, then the WebSocket."""
        api, gateway = self.api, self.gateway
        if not api.token.usable(now):
            api.fetch_token(now)
            self._move(State.AUTHENTICATING)
            return
        if gateway.needs_fetch:
            self._move(State.LOCATING)
            request = gateway.request(api.token.authorization)
            self._sockets.open(Kind.GATEWAY_URL, gateway.request_endpoint, now, http=request)
            return
        if not self.session.resumable and not self._may_identify(now):
            return
        assert gateway.endpoint is not None
        self._move(State.CONNECTING)
        sock = self._sockets.open(Kind.WEBSOCKET, gateway.endpoint, now)
        self.link = Link(sock, self._config, self._rng, self._sockets, self.machine, self.session, api.token, gateway)

    def _may_identify(self, now: float) -> bool:
        """True if a new session may be started now; else wait for the pacing or the gate outside."""
        gate = self.identify_gate
        if gate.external:
            if gate.take_permission():
                return True
            self._move(State.WAITING)
            return False
        wait = gate.delay(now)
        if wait > 0:
            self._wait(wait, "session_limit", f"session start limit: next identify allowed in {wait:.1f}s", now)
            return False
        return True

    def identify_permitted(self, now: float) -> None:
        """The gate outside permitted the Identify asked for; a stopped connection ignores it."""
        gate = self.identify_gate
        if not gate.external:
            raise LocalProtocolError(
                "identify_permitted() needs a connection made with ask_before_identify=True; "
                "without it the connection paces its own identifies"
            )
        if self.machine.state in STOPPED_STATES:
            return
        if not gate.asking:
            raise LocalProtocolError(
                "identify_permitted() was called, but no IdentifyPermissionNeeded is waiting for it"
            )
        gate.permit()
        self.advance(now)

    def token_news(self, news: TokenResult, now: float) -> None:
        """What became of a token request."""
        if isinstance(news, TokenIssued):
            if self.machine.state is State.AUTHENTICATING:
                self.advance(now)
        elif isinstance(news, CredentialsRejected):
            self.fail(news.reason, None, now)
        elif self.machine.state is State.AUTHENTICATING:
            self._reconnect_later(Disconnect(news.cause, news.reason, resume=self.session.resumable), now)
        else:
            # A background refresh failed; the next connection attempt would fetch a token anyway.
            self.api.retry_token_later(now)

    def _gateway_answered(self, sock: Socket, data: bytes, now: float) -> None:
        assert sock.http is not None
        response = sock.http.receive_data(data)
        if response is None:
            return
        self._sockets.close(sock)
        if isinstance(response, HttpFailure):
            self._gateway_unavailable(f"/gateway/bot request failed: {response.reason}", "gateway_url", now)
            return
        result = self.gateway.accept(response, now)
        if isinstance(result, GatewayLocated):
            if result.limit is not None:
                self.identify_gate.limit = result.limit
            self.advance(now)
        elif isinstance(result, GatewayRateLimited):
            self._gateway_unavailable(result.reason, "rate_limited", now, cooldown=True)
        elif isinstance(result, GatewayTokenRejected):
            self._token_rejected(result.reason, None, now)
        elif isinstance(result, GatewayUnavailable):
            self._gateway_unavailable(result.reason, "gateway_url", now)

    def _gateway_unavailable(self, reason: str, cause: str, now: float, *, cooldown: bool = False) -> None:
        # With a cached URL still in hand, keep using it rather than waiting on /gateway/bot.
        usable_cached = self.gateway.fetch_failed()
        floor = 0.0 if usable_cached or not cooldown else self._config.cooldown
        self._reconnect_later(Disconnect(cause, reason, resume=self.session.resumable, floor=floor), now)

    def _token_rejected(self, reason: str, close_code: int | None, now: float) -> bool:
        """The platform refused the token: fetch a new one, or give up if a fresh one was refused too."""
        self.session.token_rejections += 1
        self.api.token.invalidate()
        if self.session.token_rejections >= TOKEN_REJECTION_LIMIT:
            self.fail(
                f"{reason}, again with a freshly issued token: check that app_id and client_secret belong "
                "to the same bot, and that api_base matches where the bot is published (sandbox or production)",
                close_code,
                now,
            )
            return False
        if close_code is None:
            self.advance(now)
        return True

    # ------------------------------------------------------------------ its sockets

    def receive(self, sock: Socket, data: bytes, now: float) -> None:
        """Bytes for the ``/gateway/bot`` socket or the gateway WebSocket."""
        link = self.link
        if link is not None and sock is link.sock:
            ending = link.receive(data, now)
            if ending is not None:
                self._link_ended(link, ending, now)
        else:
            self._gateway_answered(sock, data, now)

    def socket_opened(self, sock: Socket, now: float) -> None:
        """One of its sockets is connected."""
        if self.link is not None and sock is self.link.sock:
            self.link.opened(now)
        else:
            self._sockets.send_request(sock, now)

    def socket_ended(self, sock: Socket, reason: str, cause: str | None, now: float) -> None:
        """One of its sockets failed, timed out or broke the protocol."""
        link = self.link
        if link is None or sock is not link.sock:
            self._sockets.close(sock)
            self._gateway_unavailable(f"/gateway/bot request failed: {reason}", cause or "gateway_url", now)
        elif self.machine.state is State.CLOSING:
            self._close_link(link)
            self._move(State.CLOSED)
        else:
            cause = "connect_failed" if self.machine.state is State.CONNECTING else cause or "connection_lost"
            why = Disconnect(cause, reason, resume=True, immediate=cause == "connection_lost")
            self._drop(link, RECONNECT_CLOSE_CODE, why, now)

    # ------------------------------------------------------------------ losing the gateway socket

    def _link_ended(self, link: Link, ending: Ending, now: float) -> None:
        if isinstance(ending, Drop):
            self._drop(link, ending.code, ending.why, now)
        elif isinstance(ending, PeerClosed):
            self._peer_closed(link, ending, now)
        elif isinstance(ending, Broken):
            self.socket_ended(link.sock, ending.reason, ending.cause, now)

    def _peer_closed(self, link: Link, closed: PeerClosed, now: float) -> None:
        self._close_link(link)
        if self.machine.state is State.CLOSING:
            self._move(State.CLOSED)
            return
        action, why = disconnect_for_close(closed.code, closed.reason, self._config)
        if action is CloseAction.FATAL:
            self.fail(f"{why.reason} (close code {closed.code})", closed.code, now)
        elif action is not CloseAction.REFRESH_TOKEN or self._token_rejected(why.reason, closed.code, now):
            self._after_link(link, why, now)

    def _drop(self, link: Link, code: int, why: Disconnect, now: float) -> None:
        if link.ws.is_open:
            self._sockets.send(link.sock, link.ws.close(code, why.cause))
        self._close_link(link)
        self._after_link(link, why, now)

    def _close_link(self, link: Link) -> None:
        self._sockets.close(link.sock)
        if self.link is link:
            self.link = None
            self.identify_gate.settled()

    def _after_link(self, link: Link, why: Disconnect, now: float) -> None:
        state = self.machine.state
        reached_hello = state is not State.CONNECTING
        if not reached_hello:
            self.gateway.connect_failed()  # the cached URL did not get as far as Hello
        opened_at = link.sock.opened_at
        lived = now - opened_at if reached_hello and opened_at is not None else None
        if self.recovery.link_lost(why, self.session, now, lived=lived, resuming=state is State.RESUMING):
            self._sockets.actions.append(SessionForgotten(why.reason))
        self._reconnect_later(why, now)

    def _reconnect_later(self, why: Disconnect, now: float) -> None:
        delay = self.recovery.next_attempt(why)
        if isinstance(delay, GiveUp):
            self.fail(delay.reason, None, now)
        else:
            self._wait(delay, why.cause, why.reason, now)

    def _wait(self, delay: float, cause: str, reason: str, now: float) -> None:
        self._move(State.WAITING)
        self._sockets.actions.append(ReconnectScheduled(delay, self.session.resumable, reason, cause))
        if delay > 0:
            self.reconnect_at = now + delay
        else:
            self.advance(now)

    # ------------------------------------------------------------------ timers

    def next_due(self) -> float | None:
        """When the next heartbeat or reconnect is due."""
        beat_at = self.link.beat_at if self.link is not None else None
        if beat_at is None or (self.reconnect_at is not None and self.reconnect_at < beat_at):
            return self.reconnect_at
        return beat_at

    def fire(self, now: float, late: bool) -> None:
        """Do the earliest of what :meth:`next_due` promised."""
        link = self.link
        beat_at = link.beat_at if link is not None else None
        if link is not None and beat_at is not None and (self.reconnect_at is None or beat_at <= self.reconnect_at):
            ending = link.beat_due(now, late)
            if ending is not None:
                self._link_ended(link, ending, now)
        elif self.reconnect_at is not None:
            self.reconnect_at = None
            self.advance(now)

    # ------------------------------------------------------------------ stopping

    def close(self, now: float, *, keep_session: bool = False) -> None:
        """Close the gateway and stop reconnecting; a closed or stopping connection stays as it is.

        The close code is 1000, or, with ``keep_session``, one that leaves the session resumable.
        """
        if self.machine.state in STOPPED_STATES:
            return
        self.reconnect_at = None
        self.api.stop("close() was called")
        self._sockets.close_all(frozenset({Kind.TOKEN, Kind.SEND, Kind.GATEWAY_URL}))
        link = self.link
        if link is not None and link.ws.is_open:
            code = RECONNECT_CLOSE_CODE if keep_session else NORMAL_CLOSE_CODE
            self._sockets.send(link.sock, link.ws.close(code, "client closing"))
            link.stop_beating()
            self._move(State.CLOSING)
            self._sockets.set_deadline(
                link.sock, now, self._config.close_timeout, "the gateway did not answer the close"
            )
            return
        if link is not None:
            self._close_link(link)
        self._move(State.CLOSED)

    def fail(self, reason: str, close_code: int | None, now: float) -> None:
        """Stop for good with ``Fatal``: sends fail, sockets close, no timer stays armed."""
        self.api.stop(reason)
        link = self.link
        if link is not None and self._sockets.is_open(link.sock) and link.ws.is_open:
            self._sockets.send(link.sock, link.ws.close(NORMAL_CLOSE_CODE, "giving up"))
        self._sockets.close_all(frozenset(Kind))
        self.link = None
        self.identify_gate.settled()
        self.reconnect_at = None
        self.fatal = Fatal(reason, close_code)
        self._move(State.FATAL)
        self._sockets.actions.append(self.fatal)
