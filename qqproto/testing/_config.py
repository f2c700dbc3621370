"""How the fake platform behaves: credentials, timings, limits and which faults it shows."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ALL_INTENTS", "PlatformConfig"]

#: Every intent bit in docs/protocol.md §6's table.
ALL_INTENTS = (
    (1 << 0)
    | (1 << 1)
    | (1 << 9)
    | (1 << 10)
    | (1 << 12)
    | (1 << 18)
    | (1 << 19)
    | (1 << 23)
    | (1 << 25)
    | (1 << 26)
    | (1 << 27)
    | (1 << 28)
    | (1 << 29)
    | (1 << 30)
)


@dataclass(frozen=True)
class PlatformConfig:
    """Settings of one :class:`FakeQQPlatform`; times are in seconds unless the name says ms."""

    app_id: str = "102000000"
    client_secret: str = "fake-secret-0123456789"
    heartbeat_interval_ms: int = 41250
    #: Silence after Hello or the last op 1 that ends a socket with 4009; None: 1.5 x the interval.
    heartbeat_timeout: float | None = None
    #: Idle-session timeout: a socket older than this is closed with 4009 (production: ~1800 s).
    session_lifetime: float | None = None
    resume_window: float = 300.0
    token_ttl: int = 7200
    token_overlap: float = 60.0
    #: (calls, window seconds) shared by /gateway and /gateway/bot; None: unlimited.
    gateway_rate_limit: tuple[int, float] | None = None
    allowed_intents: int = ALL_INTENTS
    #: Shard counts above this are refused with 4010; None: the ``shards`` /gateway/bot reports.
    max_shards: int | None = None
    session_start_total: int = 1000
    session_start_window: float = 86400.0
    #: Identifies per ``identify_window`` per bucket (``shard_id % max_concurrency``).
    max_concurrency: int = 1
    identify_window: float = 5.0
    shards_suggested: int = 1
    event_log_limit: int = 10000
    #: False: refuse unauthorised intents with close 4014 (DOC); True: op 9 then 4903 (field).
    intents_field_behaviour: bool = False
    #: (messages, window seconds) the send endpoints accept before answering 22009; None: unlimited.
    send_rate_limit: tuple[int, float] | None = None
    #: False: messages without msg_id/event_id are refused (40034102), as active push was withdrawn.
    allow_active_messages: bool = True

    @property
    def shard_limit(self) -> int:
        """The largest shard count an Identify may give."""
        return self.shards_suggested if self.max_shards is None else self.max_shards

    @property
    def effective_heartbeat_timeout(self) -> float:
        """The heartbeat timeout in seconds, defaulted from the Hello interval."""
        if self.heartbeat_timeout is not None:
            return self.heartbeat_timeout
        return self.heartbeat_interval_ms / 1000 * 1.5
