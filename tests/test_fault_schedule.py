"""A plan's faults in time order for the live server: timed ones on time, random ones recurring, faster on request."""

from __future__ import annotations

import random

import pytest

from qqproto.testing import FakeQQPlatform, Fault, Plan, RandomFault, TimedFault
from qqproto.testing._faults import PLATFORM_FAULTS, FaultSchedule, strike

PLAN = Plan(
    name="test",
    description="two timed faults and one random",
    timed=(TimedFault(100.0, Fault.CLOSE, 4009), TimedFault(50.0, Fault.DROP)),
    random=(RandomFault(Fault.RECONNECT, 10.0),),
)


def drain(schedule: FaultSchedule, until: float) -> list[tuple[float, Fault, float]]:
    struck = []
    while (due := schedule.next_due()) is not None and due <= until:
        struck.append(schedule.pop())
    return struck


def test_faults_come_in_time_order_and_random_ones_recur() -> None:
    struck = drain(FaultSchedule(PLAN, random.Random(1), start=1000.0), 1200.0)
    times = [at for at, _, _ in struck]
    assert times == sorted(times) and times[0] >= 1000.0
    assert (1050.0, Fault.DROP, 0.0) in struck and (1100.0, Fault.CLOSE, 4009) in struck
    reconnects = [at for at, fault, _ in struck if fault is Fault.RECONNECT]
    assert 5 <= len(reconnects) <= 40  # about one every 10 s over 200 s


def test_speed_plays_the_same_faults_sooner() -> None:
    slow = drain(FaultSchedule(PLAN, random.Random(1)), 200.0)
    fast = drain(FaultSchedule(PLAN, random.Random(1), speed=10.0), 20.0)
    assert [(round(at / 10, 9), fault, value) for at, fault, value in slow] == [
        (round(at, 9), fault, value) for at, fault, value in fast
    ]
    with pytest.raises(ValueError, match="speed"):
        FaultSchedule(PLAN, random.Random(1), speed=0)


def test_only_the_platforms_own_faults_strike_without_a_clock() -> None:
    platform = FakeQQPlatform(rng=random.Random(0))
    assert Fault.OUTAGE not in PLATFORM_FAULTS and Fault.HOST_STALL not in PLATFORM_FAULTS
    with pytest.raises(ValueError, match="HOST_STALL"):
        strike(platform, Fault.HOST_STALL, 10.0, 0.0, random.Random(0))
