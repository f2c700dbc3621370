"""The platform's rules for sessions by shard: the shard count, ``max_concurrency`` buckets, and who serves each shard."""

from __future__ import annotations

from collections.abc import Mapping

from ._json import is_int
from ._sessions import Session

__all__ = ["TOO_MANY_IDENTIFIES", "ShardRules"]

#: Close for an Identify over its bucket's ration: code 4008 is the platform's "too fast" close
#: (docs/protocol.md §5.1); that it is used for this is UNCONFIRMED.
TOO_MANY_IDENTIFIES = (4008, "identify rate limit: one per max_concurrency bucket per window")


class ShardRules:
    """Checks each Identify's shard and its bucket's ration, and records which sockets serve each shard."""

    def __init__(self, shard_limit: int, max_concurrency: int, window: float) -> None:
        self._shard_limit = shard_limit
        self._max_concurrency = max(1, max_concurrency)
        self._window = window
        self._last_in_bucket: dict[int, float] = {}
        self._serving: dict[int, set[int]] = {}
        #: ``now`` of every admitted Identify, by shard id.
        self.identify_times: dict[int, list[float]] = {}
        #: The most sockets that served each shard at once (a takeover counts before the old one is closed).
        self.peak_live: dict[int, int] = {}

    def shard(self, value: object) -> tuple[int, int] | None:
        """``[id, count]`` as a tuple if ``0 <= id < count <= shard limit``, else None."""
        if not isinstance(value, list) or len(value) != 2 or not all(is_int(v) for v in value):
            return None
        shard_id, count = value
        return (shard_id, count) if 0 <= shard_id < count <= self._shard_limit else None

    def bucket(self, shard_id: int) -> int:
        """The ``max_concurrency`` bucket of a shard: ``shard_id % max_concurrency``."""
        return shard_id % self._max_concurrency

    def admit(self, shard_id: int, now: float) -> bool:
        """Count an Identify of ``shard_id`` if its bucket had none within the window; False refuses it."""
        bucket = self.bucket(shard_id)
        last = self._last_in_bucket.get(bucket)
        if last is not None and now - last < self._window:
            return False
        self._last_in_bucket[bucket] = now
        self.identify_times.setdefault(shard_id, []).append(now)
        return True

    def serving(self, shard_id: int, conn_id: int) -> None:
        """Socket ``conn_id`` now serves ``shard_id``, alongside any it has not yet replaced."""
        live = self._serving.setdefault(shard_id, set())
        live.add(conn_id)
        self.peak_live[shard_id] = max(self.peak_live.get(shard_id, 0), len(live))

    def released(self, shard_id: int, conn_id: int) -> None:
        """Socket ``conn_id`` no longer serves ``shard_id``."""
        self._serving.get(shard_id, set()).discard(conn_id)

    def live(self, shard_id: int) -> int:
        """How many sockets serve ``shard_id`` now."""
        return len(self._serving.get(shard_id, ()))

    def reset_peaks(self) -> None:
        """Let ``peak_live`` start again from the sockets serving each shard now."""
        self.peak_live = {shard_id: len(live) for shard_id, live in self._serving.items()}

    def max_identifies_per_window(self) -> int:
        """The most Identifies admitted, all buckets together, within any window-long span ``[t, t + window)``."""
        times = sorted(t for shard_times in self.identify_times.values() for t in shard_times)
        most = first = 0
        for last, t in enumerate(times):
            while times[first] <= t - self._window:
                first += 1
            most = max(most, last - first + 1)
        return most

    def report(self, sessions: Mapping[int, Session]) -> dict[str, object]:
        """Per-shard figures as JSON-ready data: one entry for every shard below the shard limit.

        JSON object keys are strings, so shard ids are keys like ``"0"``; times are the ``now`` the
        platform was given (the server's monotonic seconds); ``sessions`` and ``last_seq`` are those of
        each shard's current session, None where it has none.
        """
        ids = range(self._shard_limit)
        current = {shard_id: sessions.get(shard_id) for shard_id in ids}
        return {
            "live": {str(k): self.live(k) for k in ids},
            "peak_live": {str(k): self.peak_live.get(k, 0) for k in ids},
            "identifies": {str(k): len(self.identify_times.get(k, ())) for k in ids},
            "identify_times": {str(k): list(self.identify_times.get(k, ())) for k in ids},
            "max_identifies_per_window": self.max_identifies_per_window(),
            "sessions": {str(k): None if s is None else s.session_id for k, s in current.items()},
            "last_seq": {str(k): None if s is None else s.last_seq for k, s in current.items()},
        }
