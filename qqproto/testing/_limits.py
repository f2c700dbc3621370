"""The platform's call limits: a sliding-window rate limit and the daily session-start budget."""

from __future__ import annotations

from collections import deque

__all__ = ["RateLimit", "SessionStartLimit"]


class RateLimit:
    """At most ``calls`` accepted calls in any ``window`` seconds; None means unlimited."""

    def __init__(self, limit: tuple[int, float] | None) -> None:
        self._limit = limit
        self._times: deque[float] = deque()

    def allow(self, now: float) -> bool:
        """Count a call at ``now`` and say whether it is within the limit."""
        if self._limit is None:
            return True
        calls, window = self._limit
        while self._times and self._times[0] <= now - window:
            self._times.popleft()
        if len(self._times) >= calls:
            return False
        self._times.append(now)
        return True


class SessionStartLimit:
    """``total`` Identifies per ``window`` seconds, the window opening at the first one (docs/protocol.md §8.1)."""

    def __init__(self, total: int, window: float) -> None:
        self.total = total
        self._window = window
        self._used = 0
        self._reset_at: float | None = None

    def remaining(self, now: float) -> int:
        """Session starts left in the current window."""
        self._roll(now)
        return self.total - self._used

    def reset_after_ms(self, now: float) -> int:
        """Milliseconds until the budget is full again."""
        self._roll(now)
        left = self._window if self._reset_at is None else self._reset_at - now
        return int(left * 1000)

    def take(self, now: float) -> bool:
        """Use one session start; False when none is left."""
        if self.remaining(now) <= 0:
            return False
        if self._reset_at is None:
            self._reset_at = now + self._window
        self._used += 1
        return True

    def _roll(self, now: float) -> None:
        if self._reset_at is not None and now >= self._reset_at:
            self._used = 0
            self._reset_at = None
