"""A snapshot of a connection's health, for watchdogs and status pages."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ._state import FINAL_STATES

__all__ = ["Health"]

_FINAL_STATE_NAMES = frozenset(state.value for state in FINAL_STATES)


@dataclass(frozen=True)
class Health:
    """What a watchdog needs to tell a live bot from a deaf one; ``to_dict`` is JSON-ready."""

    state: str
    connected: bool
    session_id: str | None
    last_seq: int | None
    shard: tuple[int, int]
    connected_for: float | None
    heartbeat_interval: float | None
    heartbeat_latency: float | None
    last_heartbeat_ack_age: float | None
    reconnect_attempts: int
    next_retry_in: float | None
    last_disconnect_reason: str | None
    reconnects_by_cause: dict[str, int] = field(default_factory=dict)
    dispatches_delivered: int = 0
    timer_late_count: int = 0
    gateway_url_cached: bool = False
    token_expires_in: float | None = None
    fatal_reason: str | None = None
    fatal_close_code: int | None = None
    #: A session restored from a store: "resuming", then "resumed" or "refused" (it identified instead).
    session_restore: str | None = None
    #: "waiting" while a new session waits for the identify gate's permission.
    identify_permission: str | None = None
    #: The session store's last error, while saving fails; None when it works (or there is none).
    session_store_error: str | None = None
    #: "gateway" for QQGatewayConnection; "api" or "webhook" for QQApiConnection and webhook servers.
    mode: str = "gateway"
    #: Webhook mode: the ``now`` (Unix time) of the last event handed out, and its age.
    last_event_at: float | None = None
    last_event_age: float | None = None
    #: Webhook mode: callbacks whose event was handed out, redeliveries dropped, and refusals by reason.
    accepted_requests: int = 0
    duplicate_requests: int = 0
    rejected_requests: int = 0
    rejections_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def alive(self) -> bool:
        """False once the connection has stopped for good."""
        return self.fatal_reason is None and self.state not in _FINAL_STATE_NAMES

    def to_dict(self) -> dict[str, Any]:
        """The snapshot as plain JSON types."""
        data = asdict(self)
        data["shard"] = list(self.shard)
        data["alive"] = self.alive
        return data
