"""What a plan's faults do to the fake platform, and when they strike: shared by the simulation and a live server."""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable

from ._plans import Fault, Plan
from ._platform import FakeQQPlatform

__all__ = ["PLATFORM_FAULTS", "FaultSchedule", "strike"]

#: ``(platform, value, now, rng)``: one fault applied to the platform at ``now``.
Strike = Callable[[FakeQQPlatform, float, float, random.Random], None]


def _fail_upgrades(platform: FakeQQPlatform, value: float, now: float, rng: random.Random) -> None:
    platform.drop_connections(now)
    platform.fail_upgrades(int(value))


#: The faults that are the platform's doing alone; the others (an outage of the network, a
#: stalled client host, a burst of events, ACKs that stop for a while) need the caller's clock.
PLATFORM_FAULTS: dict[Fault, Strike] = {
    Fault.RECONNECT: lambda platform, value, now, rng: platform.send_reconnect(now),
    Fault.INVALIDATE: lambda platform, value, now, rng: platform.invalidate_session(now, resumable=False),
    Fault.INVALIDATE_RESUMABLE: lambda platform, value, now, rng: platform.invalidate_session(now, resumable=True),
    Fault.FAIL_RESUMES: lambda platform, value, now, rng: platform.fail_next_resumes(
        int(value), resumable=rng.random() < 0.5
    ),
    Fault.DROP: lambda platform, value, now, rng: platform.drop_connections(now),
    Fault.SILENCE: lambda platform, value, now, rng: platform.go_silent(now),
    Fault.TOKEN_5XX: lambda platform, value, now, rng: platform.fail_token_endpoint(int(value), 503),
    Fault.EXPIRE_TOKENS: lambda platform, value, now, rng: platform.expire_tokens(now),
    Fault.CLOSE: lambda platform, value, now, rng: platform.close_gateway(int(value), now),
    Fault.SEND_RATE_LIMIT: lambda platform, value, now, rng: platform.messages.fail_next(int(value), 22009),
    Fault.FAIL_UPGRADES: _fail_upgrades,
}


def strike(platform: FakeQQPlatform, fault: Fault, value: float, now: float, rng: random.Random) -> None:
    """Apply one of :data:`PLATFORM_FAULTS`; ``ValueError`` for a fault that needs more than the platform."""
    action = PLATFORM_FAULTS.get(fault)
    if action is None:
        raise ValueError(f"{fault.name} is not a fault of the platform alone")
    action(platform, value, now, rng)


class FaultSchedule:
    """A plan's faults in time order from ``start``: timed ones at their time, random ones as Poisson processes.

    ``speed`` plays the plan faster: 60 strikes an hour's faults in a minute.
    """

    def __init__(self, plan: Plan, rng: random.Random, *, start: float = 0.0, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, not {speed!r}")
        self._rng = rng
        self._speed = speed
        self._queue: list[tuple[float, int, Fault, float, float | None]] = []
        for order, timed in enumerate(plan.timed):
            self._queue.append((start + timed.at / speed, order, timed.fault, timed.value, None))
        heapq.heapify(self._queue)
        self._order = len(plan.timed)
        for rf in plan.random:
            self._push(start, rf.fault, rf.value, rf.mean_interval)

    def next_due(self) -> float | None:
        """When the next fault strikes; None when the plan has no more."""
        return self._queue[0][0] if self._queue else None

    def pop(self) -> tuple[float, Fault, float]:
        """The next fault as ``(at, fault, value)``; a random one is scheduled again."""
        at, _, fault, value, mean_interval = heapq.heappop(self._queue)
        if mean_interval is not None:
            self._push(at, fault, value, mean_interval)
        return at, fault, value

    def _push(self, after: float, fault: Fault, value: float, mean_interval: float) -> None:
        self._order += 1
        at = after + self._rng.expovariate(1.0 / mean_interval) / self._speed
        heapq.heappush(self._queue, (at, self._order, fault, value, mean_interval))
