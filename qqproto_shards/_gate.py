"""The in-process identify gate: one ration of new sessions shared by every shard of a process.

Pure logic: every call takes ``now``. It grants at most one Identify per ``max_concurrency``
bucket (``shard_id % max_concurrency``) per window, counted from the moment the Identify was
done with (answered, or its socket ended: the platform has counted it by then), and none while
the daily ``remaining`` is spent, until ``reset_at``. A resume never passes through it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from qqproto import SessionStartLimit

__all__ = ["IDENTIFY_WINDOW", "GateHealth", "IdentifyRation"]

#: max_concurrency counts identifies per this many seconds (docs/protocol.md §8.1).
IDENTIFY_WINDOW = 5.0
#: How long a refilled daily budget lasts when nothing newer was reported.
BUDGET_PERIOD = 86400.0


@dataclass(frozen=True)
class GateHealth:
    """What the gate is doing: shards waiting, and whether the daily budget is spent."""

    waiting: int
    max_concurrency: int
    remaining: int | None
    #: Set while ``remaining`` is spent: new sessions wait until then (the caller's clock).
    exhausted_until: float | None

    @property
    def exhausted(self) -> bool:
        """True while no new session may start before the daily reset."""
        return self.exhausted_until is not None


class _Bucket:
    """One ``max_concurrency`` bucket: who waits, who holds the turn, and when the next turn is free."""

    __slots__ = ("free_at", "holder", "queue")

    def __init__(self) -> None:
        self.queue: deque[int] = deque()
        self.holder: int | None = None
        self.free_at = float("-inf")


class IdentifyRation:
    """Grants identifies to shards in turn, within the platform's ration (pure; times passed in)."""

    def __init__(self, *, window: float = IDENTIFY_WINDOW) -> None:
        if not window >= 0:
            raise ValueError(f"window must be a number of seconds >= 0, got {window!r}")
        self._window = window
        self._max_concurrency = 1
        self._total: int | None = None
        self._remaining: int | None = None
        self._reset_at = float("inf")
        self._buckets: dict[int, _Bucket] = {}
        #: Where a bucket made after a change of max_concurrency starts: the old buckets' last turn.
        self._floor = float("-inf")

    @property
    def window(self) -> float:
        """Seconds between two identifies of one bucket."""
        return self._window

    def reset_in(self, now: float) -> float | None:
        """Seconds until the daily budget refills, as last reported (None: never reported)."""
        return None if self._reset_at == float("inf") else max(0.0, self._reset_at - now)

    # -- what the platform said --------------------------------------------------------

    def learn(self, limit: SessionStartLimit | None, now: float) -> None:
        """Take in a ``session_start_limit`` a shard's ``/gateway/bot`` reported."""
        if limit is None:
            return
        self._roll(now)
        if limit.max_concurrency != self._max_concurrency:
            self._rebucket(max(1, limit.max_concurrency))
        self._total = limit.total
        if self._remaining is None or limit.reset_at > self._reset_at + self._window:
            self._remaining, self._reset_at = limit.remaining, limit.reset_at  # first news, or a new day
        else:
            self._remaining = min(self._remaining, limit.remaining)  # an older report may not know our grants

    # -- shards ------------------------------------------------------------------------

    def request(self, shard_id: int, now: float) -> None:
        """Shard ``shard_id`` wants a new session; a turn it held without identifying is given back."""
        bucket = self._bucket(shard_id)
        if bucket.holder == shard_id:
            bucket.holder = None
        if shard_id not in bucket.queue:
            bucket.queue.append(shard_id)

    def done(self, shard_id: int, now: float) -> None:
        """Shard ``shard_id``'s Identify is over (answered, or its socket ended): its bucket's next turn is one window on."""
        bucket = self._bucket(shard_id)
        if bucket.holder == shard_id:
            bucket.holder = None
        bucket.free_at = max(bucket.free_at, now + self._window)

    def withdraw(self, shard_id: int, now: float) -> None:
        """Shard ``shard_id`` stopped: it no longer waits, and a turn it held counts as used now (its Identify may be out)."""
        bucket = self._bucket(shard_id)
        if bucket.holder == shard_id:
            self.done(shard_id, now)
        if shard_id in bucket.queue:
            bucket.queue.remove(shard_id)

    def grants(self, now: float) -> list[int]:
        """The shards that may identify now, each spending one start; call again at :meth:`next_due`."""
        self._roll(now)
        granted = []
        for bucket in self._buckets.values():
            if not bucket.queue or bucket.holder is not None or now < bucket.free_at:
                continue
            if self._remaining is not None and self._remaining <= 0:
                break
            shard_id = bucket.queue.popleft()
            bucket.holder = shard_id
            granted.append(shard_id)
            if self._remaining is not None:
                self._remaining -= 1
        return granted

    def next_due(self, now: float) -> float | None:
        """When :meth:`grants` may have more to give (None: not before a shard asks or reports)."""
        waiting = [b for b in self._buckets.values() if b.queue and b.holder is None]
        if not waiting:
            return None
        if self._remaining is not None and self._remaining <= 0:
            return self._reset_at if self._reset_at != float("inf") else None
        return max(now, min(b.free_at for b in waiting))

    def health(self, now: float) -> GateHealth:
        """A snapshot for watchdogs."""
        self._roll(now)
        spent = self._remaining is not None and self._remaining <= 0
        return GateHealth(
            waiting=sum(len(b.queue) for b in self._buckets.values()),
            max_concurrency=self._max_concurrency,
            remaining=self._remaining,
            exhausted_until=self._reset_at if spent and self._reset_at != float("inf") else None,
        )

    # -- inside --------------------------------------------------------------------------

    def _bucket(self, shard_id: int) -> _Bucket:
        if not isinstance(shard_id, int) or shard_id < 0:
            raise ValueError(f"shard_id must be an int >= 0, got {shard_id!r}")
        key = shard_id % self._max_concurrency
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket()
            bucket.free_at = self._floor
        return bucket

    def _rebucket(self, max_concurrency: int) -> None:
        """Spread waiting shards over the new buckets; every new bucket waits out the busiest old one."""
        old = list(self._buckets.values())
        self._max_concurrency = max_concurrency
        self._buckets = {}
        self._floor = max((b.free_at for b in old), default=self._floor)
        for bucket in old:
            for shard_id in [*([bucket.holder] if bucket.holder is not None else []), *bucket.queue]:
                new = self._bucket(shard_id)
                if shard_id == bucket.holder:
                    new.holder = shard_id
                else:
                    new.queue.append(shard_id)

    def _roll(self, now: float) -> None:
        if self._remaining is not None and now >= self._reset_at:
            self._remaining = self._total
            self._reset_at = now + BUDGET_PERIOD
