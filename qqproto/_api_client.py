"""The open API as a bot uses it: the access token kept fresh, and messages sent with their retries.

It needs no gateway: the gateway connection and the API-only connection each hold one. It
opens its own HTTP sockets through the shared :class:`Sockets`, emits the outcome of each send,
and answers what happened to the token as a value for its owner to act on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ._api import api_request
from ._backoff import jittered_delay
from ._config import GatewayConfig
from ._events import MessageFailed, MessageSent, SendRetryScheduled
from ._http import Endpoint, HttpFailure, HttpResponse
from ._sending import OutgoingMessage, SendAsActive, SendDone, SendFailed, SendPolicy, SendRefreshToken, SendRetry
from ._sockets import Kind, Socket, Sockets
from ._token import TokenCache, TokenIssued, TokenResult, TokenUnavailable

__all__ = ["ApiClient"]


@dataclass(slots=True)
class _Send:
    """A message on its way out: waiting for a token, for its retry time, or for an answer."""

    send_id: int
    message: OutgoingMessage
    due: float | None = None
    waiting_for_token: bool = False


class ApiClient:
    """Token and sends over HTTP; ``receive``/``socket_ended`` return token news, the rest is actions."""

    __slots__ = (
        "_config",
        "_last_send_id",
        "_policy",
        "_refresh_at",
        "_rng",
        "_sends",
        "_sockets",
        "_token_retries",
        "_token_sock",
        "api_endpoint",
        "token",
    )

    def __init__(self, config: GatewayConfig, rng: random.Random, sockets: Sockets) -> None:
        self._config = config
        self._rng = rng
        self._sockets = sockets
        self.token = TokenCache(config)
        self.api_endpoint = Endpoint.from_url(config.api_base)
        self._token_sock: Socket | None = None
        self._token_retries = 0
        self._refresh_at: float | None = None
        self._sends: dict[int, _Send] = {}
        self._last_send_id = 0
        self._policy = SendPolicy(
            rng,
            allow_active=config.allow_active_messages,
            window_margin=config.reply_window_margin,
            backoff_base=config.backoff_base,
            backoff_cap=config.backoff_cap,
            give_up_after=config.send_give_up_after,
        )

    # ------------------------------------------------------------------ the token

    def fetch_token(self, now: float) -> None:
        """Ask for a token, unless a request is already on its way."""
        if not self._sockets.is_open(self._token_sock):
            self._token_sock = self._sockets.open(Kind.TOKEN, self.token.endpoint, now, http=self.token.request())

    def retry_token_later(self, now: float, *, until_issued: bool = False) -> None:
        """A token request failed and nothing else will ask again: try while the token lasts or sends wait.

        ``until_issued`` keeps asking, with backoff, until a token comes.
        """
        config = self._config
        if until_issued or any(send.waiting_for_token for send in self._sends.values()):
            self._token_retries += 1
            self._refresh_at = now + jittered_delay(
                config.backoff_base, config.backoff_cap, self._token_retries, self._rng
            )
            return
        remaining = self.token.expires_at - now
        if remaining > config.backoff_base:
            self._refresh_at = now + min(config.backoff_cap, max(config.backoff_base, remaining / 2))

    def _token_answered(self, response: HttpResponse, now: float) -> TokenResult:
        result = self.token.accept(response, now)
        if isinstance(result, TokenIssued):
            self._token_retries = 0
            self._refresh_at = self.token.refresh_at
            for send in [send for send in self._sends.values() if send.waiting_for_token]:
                send.waiting_for_token = False
                self._attempt(send, now)
        return result

    # ------------------------------------------------------------------ sends

    def send_message(self, message: OutgoingMessage, now: float) -> int:
        """Start sending ``message``; its outcome comes later as MessageSent or MessageFailed."""
        self._last_send_id += 1
        send = self._sends[self._last_send_id] = _Send(self._last_send_id, message)
        self._attempt(send, now)
        return send.send_id

    def fail_sends(self, reason: str) -> None:
        """Every message still on its way fails with ``reason``."""
        for send in list(self._sends.values()):
            self._send_failed(
                send, SendFailed(f"the connection stopped before the message was sent: {reason}", None, None)
            )

    def stop(self, reason: str) -> None:
        """Stop for good: pending sends fail and no timer stays armed (the owner closes the sockets)."""
        self.fail_sends(reason)
        self._refresh_at = None
        self._token_sock = None

    def _attempt(self, send: _Send, now: float) -> None:
        if not self.token.usable(now):
            send.waiting_for_token = True
            self.fetch_token(now)
            return
        attempt = self._policy.attempt(send.message, now)
        if isinstance(attempt, SendFailed):
            self._send_failed(send, attempt)
            return
        endpoint = self.api_endpoint.join(attempt.path)
        exchange = api_request(self._config, "POST", endpoint, token=self.token.authorization, body=attempt.body)
        sock = self._sockets.open(Kind.SEND, endpoint, now, http=exchange)
        sock.send_id = send.send_id

    def _send_answered(self, sock: Socket, result: HttpResponse | HttpFailure, now: float) -> None:
        send = self._sends.get(sock.send_id) if sock.send_id is not None else None
        if send is None:
            return
        if isinstance(result, HttpFailure):
            decision = self._policy.decide(send.message, None, {}, b"", now)
        else:
            decision = self._policy.decide(send.message, result.status, dict(result.headers), result.body, now)
        if isinstance(decision, SendDone):
            del self._sends[send.send_id]
            self._sockets.actions.append(MessageSent(send.send_id, decision.message_id, decision.duplicate))
        elif isinstance(decision, SendRetry):
            send.due = now + decision.delay
            self._sockets.actions.append(SendRetryScheduled(send.send_id, decision.delay, decision.reason))
        elif isinstance(decision, SendRefreshToken):
            self.token.invalidate()
            self._attempt(send, now)
        elif isinstance(decision, SendAsActive):
            self._attempt(send, now)
        else:
            self._send_failed(send, decision)

    def _send_failed(self, send: _Send, failure: SendFailed) -> None:
        self._sends.pop(send.send_id, None)
        self._sockets.actions.append(MessageFailed(send.send_id, failure.reason, failure.code, failure.trace_id))

    # ------------------------------------------------------------------ its sockets and timers

    def receive(self, sock: Socket, data: bytes, now: float) -> TokenResult | None:
        """Bytes for one of its sockets; what became of the token, if this was the token's answer."""
        assert sock.http is not None
        result = sock.http.receive_data(data)
        if result is None:
            return None
        self._sockets.close(sock)
        if sock.kind is Kind.SEND:
            self._send_answered(sock, result, now)
            return None
        self._token_sock = None
        if isinstance(result, HttpFailure):
            return TokenUnavailable(f"token request failed: {result.reason}")
        return self._token_answered(result, now)

    def socket_ended(self, sock: Socket, reason: str, cause: str | None, now: float) -> TokenResult | None:
        """One of its sockets failed or timed out."""
        self._sockets.close(sock)
        if sock.kind is Kind.SEND:
            self._send_answered(sock, HttpFailure(reason), now)
            return None
        self._token_sock = None
        return TokenUnavailable(f"token request failed: {reason}", cause or "token")

    def next_due(self) -> float | None:
        """When the token refresh or a send retry is next due."""
        due = self._refresh_at
        for send in self._sends.values():
            if send.due is not None and (due is None or send.due < due):
                due = send.due
        return due

    def fire(self, now: float, late: bool = False) -> None:
        """Do the earliest of what :meth:`next_due` promised."""
        send = min((s for s in self._sends.values() if s.due is not None), key=_due, default=None)
        if send is not None and _due(send) <= now and (self._refresh_at is None or _due(send) <= self._refresh_at):
            send.due = None
            self._attempt(send, now)
            return
        if self._refresh_at is not None and self._refresh_at <= now:
            self._refresh_at = None
            self.fetch_token(now)

    # ------------------------------------------------------------------ for health

    def token_expires_in(self, now: float) -> float | None:
        """Seconds the held token has left, or None without one."""
        return self.token.expires_at - now if self.token.usable(now) else None


def _due(send: _Send) -> float:
    assert send.due is not None
    return send.due
