"""Life on a served fake platform: a steady stream of events and a fault plan, played on the wall clock."""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
from collections.abc import Callable

from qqproto.testing import FakeQQPlatform, Fault, Plan
from qqproto.testing._control import Control
from qqproto.testing._faults import PLATFORM_FAULTS, FaultSchedule
from qqproto.testing.serve import LoopbackPlatform

Later = Callable[[FakeQQPlatform, float], None]


class LiveFeed:
    """Pushes ``events_per_second`` events, into each shard in turn, and strikes ``plan``'s faults (``speed`` times
    as often) until stopped.

    Everything happens on the server's thread through ``loopback.call``, so the platform sees one
    caller at a time.  A stalled client host is the client's fault, not the platform's: such
    faults are counted as skipped.
    """

    def __init__(
        self,
        loopback: LoopbackPlatform,
        control: Control,
        *,
        events_per_second: float = 0.0,
        plan: Plan | None = None,
        speed: float = 1.0,
        seed: int = 0,
    ) -> None:
        if events_per_second < 0:
            raise ValueError(f"events_per_second cannot be negative, not {events_per_second!r}")
        self._loopback = loopback
        self._control = control
        self._event_every = 1.0 / events_per_second if events_per_second > 0 else None
        self._shards = itertools.cycle(range(max(1, loopback.platform.config.shards_suggested)))
        self._schedule = (
            FaultSchedule(plan, random.Random(seed), start=time.monotonic(), speed=speed) if plan is not None else None
        )
        self._speed = speed
        self._later: list[tuple[float, int, Later]] = []
        self._order = itertools.count()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="qqproto-live-fake", daemon=True)

    def start(self) -> None:
        """Start feeding."""
        self._thread.start()

    def stop(self) -> None:
        """Stop feeding and wait for the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        next_event = time.monotonic()
        while True:
            due = [when for when in (self._next_fault(), self._next_later()) if when is not None]
            if self._event_every is not None:
                due.append(next_event)
            if self._stop.wait(max(0.0, min(due) - time.monotonic()) if due else None):
                return
            now = time.monotonic()
            if self._event_every is not None and next_event <= now:
                # Catch up after a slow moment, but never by more than a second's worth at once.
                count = min(int((now - next_event) / self._event_every) + 1, int(1 / self._event_every) + 1)
                self._loopback.call(lambda platform, at: self._push(at, count))
                next_event = max(next_event + count * self._event_every, now - 1.0)
            while (fault_due := self._next_fault()) is not None and fault_due <= now and not self._stop.is_set():
                assert self._schedule is not None
                _, fault, value = self._schedule.pop()
                self._loopback.call(lambda platform, at: self._strike(platform, fault, value, at))
            while self._later and self._later[0][0] <= now:
                _, _, action = heapq.heappop(self._later)
                self._loopback.call(action)

    def _next_fault(self) -> float | None:
        return self._schedule.next_due() if self._schedule is not None else None

    def _next_later(self) -> float | None:
        return self._later[0][0] if self._later else None

    def _strike(self, platform: FakeQQPlatform, fault: Fault, value: float, now: float) -> None:
        """One fault of the plan, on the server's thread."""
        if fault in PLATFORM_FAULTS:
            self._control.strike(fault, value, now)
            return
        if fault is Fault.STOP_ACKS:
            platform.stop_acks(now)
            self._after(now + value / self._speed, lambda p, at: p.resume_acks(at))
        elif fault is Fault.OUTAGE:
            platform.drop_connections(now)
            platform.refuse_connections(now + value / self._speed)
        elif fault is Fault.BURST:
            self._push(now, int(value))
        else:
            self._control.faults_struck[f"{fault.value} (skipped: not the platform's doing)"] += 1
            return
        self._control.faults_struck[fault.value] += 1

    def _push(self, now: float, count: int) -> None:
        for _ in range(count):
            self._control.push_event(now, shard=next(self._shards))

    def _after(self, when: float, action: Later) -> None:
        heapq.heappush(self._later, (when, next(self._order), action))
