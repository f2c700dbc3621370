"""A gateway session as a store keeps it, so that a restarted process resumes instead of identifying."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol, cast

from ._events import Action, Dispatch, Ready, SessionForgotten

__all__ = ["SessionProgress", "SessionState", "SessionStore", "session_key"]

#: Bumped when the stored record changes shape; a record of another version is ignored.
RECORD_VERSION = 1


@dataclass(frozen=True)
class SessionState:
    """A session to resume: its id, the last seq the application finished with, and its shard.

    ``saved_at`` is wall-clock seconds (Unix time of whoever saved it), so that records
    from different processes compare; the core passes it through and never reads a clock.
    """

    session_id: str
    seq: int
    shard: tuple[int, int]
    saved_at: float

    def __post_init__(self) -> None:
        if not isinstance(self.session_id, str) or not self.session_id or not self.session_id.isprintable():
            raise ValueError("session_id must be a non-empty printable string")
        if isinstance(self.seq, bool) or not isinstance(self.seq, int) or self.seq < 0:
            raise ValueError(f"seq must be an int >= 0, not {self.seq!r}")
        shard_id, shard_count = _shard(self.shard)
        object.__setattr__(self, "shard", (shard_id, shard_count))
        if (
            isinstance(self.saved_at, bool)
            or not isinstance(self.saved_at, (int, float))
            or self.saved_at != self.saved_at
        ):
            raise ValueError(f"saved_at must be a number of seconds, not {self.saved_at!r}")

    def supersedes(self, stored: SessionState | None) -> bool:
        """Whether writing this over ``stored`` loses nothing newer.

        Within one session the seq never goes back; a different session replaces an older record.
        """
        if stored is None:
            return True
        if stored.session_id == self.session_id:
            return self.seq >= stored.seq
        return self.saved_at >= stored.saved_at

    def to_json(self) -> str:
        """The record as stores keep it."""
        return json.dumps(
            {
                "v": RECORD_VERSION,
                "session_id": self.session_id,
                "seq": self.seq,
                "shard": list(self.shard),
                "saved_at": self.saved_at,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> SessionState:
        """Read a record back; a corrupt or foreign one raises ValueError that says what is wrong."""
        try:
            data: Any = json.loads(text)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise ValueError(f"not a session record: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError("not a session record: not a JSON object")
        if data.get("v") != RECORD_VERSION:
            raise ValueError(f"session record of version {data.get('v')!r}, expected {RECORD_VERSION}")
        try:
            shard = cast("tuple[int, int]", tuple(data["shard"]))
            return cls(data["session_id"], data["seq"], shard, data["saved_at"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"session record is missing or mistypes a field: {exc}") from None


def _shard(shard: Any) -> tuple[int, int]:
    if not isinstance(shard, tuple) or len(shard) != 2:
        raise ValueError(f"shard must be (shard_id, shard_count), not {shard!r}")
    shard_id, shard_count = shard
    for value in shard:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"shard must be two ints, not {shard!r}")
    if not 0 <= shard_id < shard_count:
        raise ValueError(f"shard id {shard_id} is outside 0..{shard_count - 1}")
    return shard_id, shard_count


def session_key(app_id: str, shard: tuple[int, int]) -> str:
    """The key of one bot's shard, so that many bots and shards share one store."""
    shard_id, shard_count = _shard(shard)
    return f"{app_id}:{shard_id}/{shard_count}"


class SessionStore(Protocol):
    """Where sessions outlive the process: SQLite on one machine, Redis for a fleet.

    Calls are synchronous and may block; transports make them off their event loop.
    """

    def load(self, key: str) -> SessionState | None:
        """The session saved under ``key``, or None (nothing saved, or a record that is unusable)."""

    def save(self, key: str, state: SessionState) -> bool:
        """Keep ``state`` unless the stored one is newer (see ``SessionState.supersedes``); True if written."""

    def clear(self, key: str) -> None:
        """Forget the session under ``key``: the platform no longer knows it."""


class SessionProgress:
    """The session as far as the application has finished with it: what a store should hold.

    Fed each event once the application is done with it, in the order they were handed out,
    so events still queued, or of a session the platform forgot, never count as handled.
    ``position`` changes as one value, so another thread may read it at any time.
    """

    def __init__(self, shard: tuple[int, int], restored: SessionState | None = None) -> None:
        self.shard = _shard(shard)
        #: (session id, last finished seq), or None while no session is held.
        self.position: tuple[str, int | None] | None = (
            (restored.session_id, restored.seq) if restored is not None else None
        )
        self.forgotten = False

    def finished(self, event: Action) -> bool:
        """Note that the application is done with ``event``; True if the state to save changed."""
        if isinstance(event, Dispatch):
            position = self.position
            if position is None or (position[1] is not None and event.seq <= position[1]):
                return False
            self.position = (position[0], event.seq)
            return True
        if isinstance(event, Ready):
            self.position = (event.session_id, event.seq)
            self.forgotten = False
            return True
        if isinstance(event, SessionForgotten):
            changed = self.position is not None
            self.position = None
            self.forgotten = True
            return changed
        return False

    def state(self, saved_at: float) -> SessionState | None:
        """What to save now (None: nothing to resume; clear the store if ``forgotten``)."""
        position = self.position
        if position is None or position[1] is None:
            return None
        return SessionState(position[0], position[1], self.shard, saved_at)
