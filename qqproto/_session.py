"""The gateway session: what is held to resume it, READY's checks, and the session start budget's numbers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._payloads import BadPayload

__all__ = ["Session", "SessionStartLimit"]


@dataclass
class SessionStartLimit:
    """How many sessions may still be started, and how fast (``session_start_limit``); ``reset_at`` is on the caller's clock."""

    total: int
    remaining: int
    reset_at: float
    max_concurrency: int


class Session:
    """The held session (id and last seq) and the counters a new session clears."""

    __slots__ = (
        "_on_identify",
        "_on_started",
        "_shard",
        "connected_since",
        "dispatches_delivered",
        "last_seq",
        "restore_outcome",
        "resume_failures",
        "session_id",
        "token_rejections",
    )

    def __init__(
        self, shard: tuple[int, int], on_identify: Callable[[float], None], on_started: Callable[[], None]
    ) -> None:
        self._shard = shard
        self._on_identify = on_identify
        self._on_started = on_started
        self.session_id: str | None = None
        self.last_seq: int | None = None
        self.connected_since: float | None = None
        self.resume_failures = 0
        self.token_rejections = 0
        self.dispatches_delivered = 0
        #: For a session restored from a store: "resuming", then "resumed" or "refused".
        self.restore_outcome: str | None = None

    @property
    def resumable(self) -> bool:
        """True while a session is held: the next connection resumes it."""
        return self.session_id is not None

    def started(self, now: float) -> None:
        """READY or RESUMED arrived: the session is live, and failures since the last one are forgiven."""
        self.connected_since = now
        self.resume_failures = 0
        self.token_rejections = 0
        self._on_started()

    def restore(self, session_id: str, seq: int) -> None:
        """Hold a session saved by an earlier process, so the first connection resumes it."""
        self.session_id, self.last_seq = session_id, seq
        self.restore_outcome = "resuming"

    def resumed(self) -> None:
        """RESUMED arrived for the held session."""
        if self.restore_outcome == "resuming":
            self.restore_outcome = "resumed"

    def forget(self) -> bool:
        """Drop the session: the next connection identifies. True if one was held."""
        held = self.session_id is not None
        if held and self.restore_outcome == "resuming":
            self.restore_outcome = "refused"
        self.session_id = None
        self.last_seq = None
        self.resume_failures = 0
        return held

    def read_ready(self, d: Any) -> tuple[str, dict[str, Any], tuple[int, int]]:
        """READY's session id, user and shard; a READY without a usable session id is bad input."""
        session_id = d.get("session_id") if isinstance(d, dict) else None
        if not isinstance(session_id, str) or not session_id or not session_id.isprintable():
            raise BadPayload("READY without a usable session_id (it is sent back in Resume)")
        assert isinstance(d, dict)
        user = d.get("user")
        return session_id, user if isinstance(user, dict) else {}, self._ready_shard(d.get("shard"))

    def hold(self, session_id: str, seq: int | None) -> None:
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

    def identified(self, now: float) -> None:
        """An Identify went out: the identify gate counts it."""
        self._on_identify(now)

    def advance_seq(self, seq: int) -> None:
        """A seq seen outside the dispatch path (RESUMED) moves the held one forward only."""
        if self.last_seq is None or seq > self.last_seq:
            self.last_seq = seq
