"""``QQGatewayConnection``: the whole client lifecycle as a state machine fed with bytes and time.

The facade: :class:`~._host.SocketHost` checks each input and routes it to the part it is
for; :mod:`._lifecycle` carries out what the parts answer.
"""

from __future__ import annotations

import random

from ._config import GatewayConfig
from ._errors import LocalProtocolError
from ._health import Health
from ._host import SocketHost
from ._lifecycle import Lifecycle
from ._session_state import SessionState
from ._sockets import Socket
from ._state import State
from ._token import TokenResult

__all__ = ["QQGatewayConnection"]


class QQGatewayConnection(SocketHost):
    """Keeps one QQ bot gateway session alive; every input carries ``now``, every output is an action.

    Feed it with :meth:`start`, :meth:`socket_opened`, :meth:`socket_failed`, :meth:`receive_data`,
    :meth:`handle_timer` and :meth:`close`; after each, carry out :meth:`next_actions` and arm a timer
    for :meth:`next_timer`. With ``ask_before_identify``, every new session waits for a gate outside:
    answer ``IdentifyPermissionNeeded`` with :meth:`identify_permitted`.
    """

    def __init__(
        self, config: GatewayConfig, rng: random.Random | None = None, *, ask_before_identify: bool = False
    ) -> None:
        super().__init__(config, rng)
        self._life = Lifecycle(config, self._rng, self._sockets, self._api, ask_before_identify=ask_before_identify)
        self._timed = (
            (self._life.next_due, self._life.fire),
            (self._sockets.next_due, self._deadline_passed),
            (self._api.next_due, self._api.fire),
        )

    def __repr__(self) -> str:
        return f"<QQGatewayConnection app_id={self._config.app_id!r} state={self.state.value}>"

    # ------------------------------------------------------------------ public inputs

    def start(self, now: float) -> None:
        """Begin connecting; nothing happens before this."""
        now = self._clock.tick(now, "start")
        if self.state is not State.IDLE:
            raise LocalProtocolError(
                f"start() was already called (state is {self.state.value}); "
                "to start over, create a new QQGatewayConnection"
            )
        self._life.advance(now)

    def restore_session(self, state: SessionState, now: float) -> None:
        """Resume ``state`` (saved by an earlier process) on the first connection instead of identifying.

        Call it before :meth:`start`. If the platform refuses the session (op 9 false), the
        connection identifies afresh, emits ``SessionForgotten``, and health says ``refused``.
        """
        self._clock.tick(now, "restore_session")
        if self.state is not State.IDLE:
            raise LocalProtocolError(
                f"restore_session() must come before start() (state is {self.state.value}); "
                "create the connection, restore, then start"
            )
        if not isinstance(state, SessionState):
            raise LocalProtocolError(f"restore_session() needs a SessionState, not {type(state).__name__}")
        if state.shard != self._config.shard:
            raise LocalProtocolError(
                f"the saved session belongs to shard {state.shard}, but this connection is shard "
                f"{self._config.shard}: load the session saved under this shard's key"
            )
        self._life.session.restore(state.session_id, state.seq)

    def identify_permitted(self, now: float) -> None:
        """The identify gate answered ``IdentifyPermissionNeeded``: open the gateway socket and identify.

        Only for a connection made with ``ask_before_identify=True``; after ``close`` it is ignored.
        """
        now = self._clock.tick(now, "identify_permitted")
        self._life.identify_permitted(now)

    def close(self, now: float, *, keep_session: bool = False) -> None:
        """Shut down gracefully: close the gateway and stop reconnecting.

        The close code is 1000, which ends the session; with ``keep_session`` it is one that keeps
        it resumable, for a process that saved its session and will be back.
        """
        now = self._clock.tick(now, "close")
        self._life.close(now, keep_session=keep_session)

    # ------------------------------------------------------------------ public outputs

    def health(self, now: float) -> Health:
        """A snapshot for watchdogs."""
        life, session, recovery = self._life, self._life.session, self._life.recovery
        hb = life.link.heartbeat if life.link is not None else None
        fatal, retry_at = life.fatal, life.reconnect_at
        return Health(
            state=self.state.value,
            connected=self.state is State.CONNECTED,
            session_id=session.session_id,
            last_seq=session.last_seq,
            shard=self._config.shard,
            connected_for=None if session.connected_since is None else now - session.connected_since,
            heartbeat_interval=hb.interval if hb else None,
            heartbeat_latency=hb.latency if hb else None,
            last_heartbeat_ack_age=None if hb is None or hb.last_ack_at is None else now - hb.last_ack_at,
            reconnect_attempts=recovery.backoff.attempts,
            next_retry_in=None if retry_at is None else max(0.0, retry_at - now),
            last_disconnect_reason=recovery.last_disconnect_reason,
            reconnects_by_cause=dict(recovery.reconnects_by_cause),
            dispatches_delivered=session.dispatches_delivered,
            timer_late_count=self._timer_late_count,
            gateway_url_cached=life.gateway.endpoint is not None,
            token_expires_in=self._api.token_expires_in(now),
            fatal_reason=fatal.reason if fatal else None,
            fatal_close_code=fatal.close_code if fatal else None,
            session_restore=session.restore_outcome,
            identify_permission="waiting" if life.identify_gate.asking and self.state is State.WAITING else None,
        )

    # ------------------------------------------------------------------ read-only views

    @property
    def state(self) -> State:
        """Where the connection is in its life."""
        return self._life.machine.state

    @property
    def session_id(self) -> str | None:
        """The held session, if any."""
        return self._life.session.session_id

    @property
    def last_seq(self) -> int | None:
        """The sequence number of the last dispatch received in the held session."""
        return self._life.session.last_seq

    @property
    def gateway_url_fetches(self) -> int:
        """How many times ``/gateway/bot`` was asked."""
        return self._life.gateway.fetches

    @property
    def suggested_shards(self) -> int | None:
        """The shard count ``/gateway/bot`` suggested, once it was asked (None before, or if it gave none)."""
        return self._life.gateway.suggested_shards

    @property
    def gateway_cache_invalidations(self) -> int:
        """How many times the cached gateway URL was given up as stale."""
        return self._life.gateway.invalidations

    # ------------------------------------------------------------------ its own sockets

    def _own_socket_opened(self, sock: Socket, now: float) -> None:
        self._life.socket_opened(sock, now)

    def _own_receive(self, sock: Socket, data: bytes, now: float) -> None:
        self._life.receive(sock, data, now)

    def _own_socket_ended(self, sock: Socket, reason: str, cause: str | None, now: float) -> None:
        self._life.socket_ended(sock, reason, cause, now)

    def _token_news(self, news: TokenResult, now: float) -> None:
        self._life.token_news(news, now)
