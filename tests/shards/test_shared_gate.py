"""The identify gate a fleet member shares through Redis: a bucket's slot frees one window after its turn is used."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from qqproto import Action, IdentifyDone, IdentifyPermissionNeeded, SessionStartLimit
from qqproto_shards import RedisCoordinator
from transports._fleet_parts import SharedGateRunner

WINDOW = 0.5
LIMIT = SessionStartLimit(total=1000, remaining=1000, reset_at=86400.0, max_concurrency=1)


def slot_wait(other: RedisCoordinator) -> float | None:
    """How long ``other`` is told to wait for bucket 0 (None: it got the slot)."""
    turn = other.try_identify(0, "other:0", hold=30, remaining=None, reset_after=None)
    return None if turn.granted else turn.retry_after


async def permitted_turn(runner: SharedGateRunner) -> Callable[[Action], None]:
    permitted = asyncio.Event()
    on_action = runner.attach(0, permitted.set)
    on_action(IdentifyPermissionNeeded((0, 1), LIMIT))
    await asyncio.wait_for(permitted.wait(), 10)
    return on_action


def test_the_slot_frees_one_window_after_the_identify_is_done(redis_url: str) -> None:
    mine, other = RedisCoordinator(redis_url, "app", member_id="a"), RedisCoordinator(redis_url, "app", member_id="b")

    async def run() -> float | None:
        runner = SharedGateRunner(mine, window=WINDOW)
        on_action = await permitted_turn(runner)
        assert (slot_wait(other) or 0) > WINDOW, "a permitted turn is held until its Identify is done with"
        on_action(IdentifyDone((0, 1)))
        await asyncio.gather(*runner.calls)
        runner.close()
        return slot_wait(other)

    wait = asyncio.run(run())
    assert wait is not None and 0 < wait <= WINDOW


def test_a_shard_that_stops_holding_its_turn_keeps_the_slot_one_window(redis_url: str) -> None:
    mine, other = RedisCoordinator(redis_url, "app", member_id="a"), RedisCoordinator(redis_url, "app", member_id="b")

    async def run() -> float | None:
        runner = SharedGateRunner(mine, window=WINDOW)
        await permitted_turn(runner)
        runner.detach(0)  # stopped after its permit: its Identify may be out
        await asyncio.gather(*runner.calls)
        runner.close()
        return slot_wait(other)

    wait = asyncio.run(run())
    assert wait is not None and 0 < wait <= WINDOW, "the slot was given back as if no Identify could be out"
