"""The gateway session: what is held to resume it, READY's checks, and when a new one may be started."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from ._payloads import BadPayload

__all__ = ["Session", "SessionStartLimit", "SESSION_START_WINDOW"]

# max_concurrency counts session starts per this many seconds (reference §8.1).
SESSION_START_WINDOW = 5.0
# How long a refilled session start budget lasts when the platform gave no reset time.
BUDGET_PERIOD = 86400.0


@dataclass
class SessionStartLimit:
    """How many sessions may still be started, and how fast (``session_start_limit``)."""

    total: int
    remaining: int
    reset_at: float
    max_concurrency: int


class Session:
    """The held session (id and last seq), the counters a new session clears, and the session start budget."""

    __slots__ = (
        "_shard", "session_id", "last_seq", "connected_since", "resume_failures", "token_rejections",
        "dispatches_delivered", "limit", "_last_identify_at",
    )

    def __init__(self, shard: tuple[int, int]) -> None:
        self._shard = shard
        self.session_id: Optional[str] = None
        self.last_seq: Optional[int] = None
        self.connected_since: Optional[float] = None
        self.resume_failures = 0
        self.token_rejections = 0
        self.dispatches_delivered = 0
        self.limit: Optional[SessionStartLimit] = None
        self._last_identify_at: Optional[float] = None

    @property
    def resumable(self) -> bool:
        """True while a session is held: the next connection resumes it."""
        return self.session_id is not None

    def started(self, now: float) -> None:
        """READY or RESUMED arrived: the session is live, and failures since the last one are forgiven."""
        self.connected_since = now
        self.resume_failures = 0
        self.token_rejections = 0

    def forget(self) -> None:
        """Drop the session: the next connection identifies."""
        self.session_id = None
        self.last_seq = None
        self.resume_failures = 0

    def read_ready(self, d: Any) -> tuple[str, dict[str, Any], tuple[int, int]]:
        """READY's session id, user and shard; a READY without a usable session id is bad input."""
        session_id = d.get("session_id") if isinstance(d, dict) else None
        if not isinstance(session_id, str) or not session_id or not session_id.isprintable():
            raise BadPayload("READY without a usable session_id (it is sent back in Resume)")
        assert isinstance(d, dict)
        user = d.get("user")
        return session_id, user if isinstance(user, dict) else {}, self._ready_shard(d.get("shard"))

    def hold(self, session_id: str, seq: Optional[int]) -> None:
        """Keep the session READY created, to resume it later."""
        self.session_id = session_id
        self.last_seq = seq

    def _ready_shard(self, shard: Any) -> tuple[int, int]:
        if (
            isinstance(shard, list)
            and len(shard) == 2
            and all(type(n) is int for n in shard)
            and 0 <= shard[0] < shard[1]
        ):
            return (shard[0], shard[1])
        return self._shard  # READY's example shows [0, 0]: keep our own count

    def advance_seq(self, seq: int) -> None:
        """A seq seen outside the dispatch path (RESUMED) moves the held one forward only."""
        if self.last_seq is None or seq > self.last_seq:
            self.last_seq = seq

    # ------------------------------------------------------------------ the session start budget

    def identify_delay(self, now: float) -> float:
        """How long to wait before a new session may be started (0 when it may start now)."""
        limit = self.limit
        if limit is None:
            return 0.0
        if now < limit.reset_at and limit.remaining <= 0:
            return limit.reset_at - now
        if self._last_identify_at is not None:
            spacing = SESSION_START_WINDOW / limit.max_concurrency
            return max(0.0, self._last_identify_at + spacing - now)
        return 0.0

    def identified(self, now: float) -> None:
        """A new session was asked for: spend one start from the budget, refilled once its period is over."""
        self._last_identify_at = now
        limit = self.limit
        if limit is not None:
            if now >= limit.reset_at:
                limit.remaining = limit.total
                limit.reset_at = now + BUDGET_PERIOD
            limit.remaining = max(0, limit.remaining - 1)
