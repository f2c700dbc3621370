"""When a new session may start: paced by the connection itself, or granted by a gate outside it.

A resume never asks. Without a gate outside, the connection paces its own Identifies from
``/gateway/bot``'s ``session_start_limit`` (one per ``5 s / max_concurrency``, none once
``remaining`` is spent until the reset). With one, it emits :class:`IdentifyPermissionNeeded`
before opening the gateway socket, waits for ``identify_permitted``, and emits :class:`IdentifyDone`
once the platform has answered the Identify (READY) or its socket has ended.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ._events import Action
from ._session import SessionStartLimit
from ._sockets import Sockets

__all__ = ["SESSION_START_WINDOW", "IdentifyDone", "IdentifyGate", "IdentifyPermissionNeeded"]

# max_concurrency counts session starts per this many seconds (docs/protocol.md §8.1).
SESSION_START_WINDOW = 5.0
# How long a refilled session start budget lasts when the platform gave no reset time.
BUDGET_PERIOD = 86400.0


@dataclass(frozen=True)
class IdentifyPermissionNeeded(Action):
    """Ask the identify gate for a new session of ``shard``; answer with ``identify_permitted(now)``.

    ``session_start_limit`` is what this connection's ``/gateway/bot`` call reported (None if it
    reported none); ``reset_at`` is on the caller's clock.
    """

    shard: tuple[int, int]
    session_start_limit: SessionStartLimit | None


@dataclass(frozen=True)
class IdentifyDone(Action):
    """Notice for the identify gate: the permitted Identify of ``shard`` is over (READY came, or its socket ended).

    The platform has counted the Identify by now if it ever will, so the bucket's window is timed
    from here: timed from the send, a slower path to the platform could bring two within a window.
    """

    shard: tuple[int, int]


class IdentifyGate:
    """One connection's side of the gate: its own pacing, or the question it put to the gate outside."""

    def __init__(self, shard: tuple[int, int], sockets: Sockets, *, external: bool) -> None:
        self.external = external
        self.limit: SessionStartLimit | None = None
        #: True from asking the gate outside until it permits.
        self.asking = False
        self._shard = shard
        self._sockets = sockets
        self._permitted = False
        self._unanswered = False
        self._last_identify_at: float | None = None

    def delay(self, now: float) -> float:
        """Self-paced: how long to wait before a new session may be started (0 when it may start now)."""
        limit = self.limit
        if limit is None:
            return 0.0
        if now < limit.reset_at and limit.remaining <= 0:
            return limit.reset_at - now
        if self._last_identify_at is not None:
            spacing = SESSION_START_WINDOW / limit.max_concurrency
            return max(0.0, self._last_identify_at + spacing - now)
        return 0.0

    def take_permission(self) -> bool:
        """Gated: True (once) if the gate outside permitted the next Identify; else ask it, once."""
        if self._permitted:
            self._permitted = False
            return True
        if not self.asking:
            self.asking = True
            limit = None if self.limit is None else dataclasses.replace(self.limit)
            self._sockets.actions.append(IdentifyPermissionNeeded(self._shard, limit))
        return False

    def permit(self) -> None:
        """The gate outside answered the question."""
        self.asking = False
        self._permitted = True

    def identified(self, now: float) -> None:
        """An Identify went out: await its answer for the gate outside, or spend one start from our own budget."""
        self._last_identify_at = now
        if self.external:
            self._unanswered = True
            return
        limit = self.limit
        if limit is not None:
            if now >= limit.reset_at:
                limit.remaining = limit.total
                limit.reset_at = now + BUDGET_PERIOD
            limit.remaining = max(0, limit.remaining - 1)

    def settled(self) -> None:
        """READY came, or the socket that carried the Identify ended: tell the gate outside, once."""
        if self._unanswered:
            self._unanswered = False
            self._sockets.actions.append(IdentifyDone(self._shard))
