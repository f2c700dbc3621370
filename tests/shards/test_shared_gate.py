"""The identify gate a fleet member shares through Redis: a bucket's slot frees one window after its turn is used."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

from qqproto import Action, IdentifyDone, IdentifyPermissionNeeded, SessionStartLimit
from qqproto_shards import IdentifyTurn, RedisCoordinator
from transports._fleet_parts import SharedGateRunner

WINDOW = 0.5
LIMIT = SessionStartLimit(total=1000, remaining=1000, reset_at=86400.0, max_concurrency=1)


@pytest.fixture(autouse=True)
def empty_redis(redis_client: Any) -> None:
    """Every test starts from an empty database."""


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


class Refusals:
    """The real coordinator, counting the turns it refused."""

    def __init__(self, coordinator: RedisCoordinator) -> None:
        self._coordinator = coordinator
        self.member_id = coordinator.member_id
        self.refused = threading.Semaphore(0)

    def try_identify(self, *args: Any, **kwargs: Any) -> IdentifyTurn:
        turn = self._coordinator.try_identify(*args, **kwargs)
        if not turn.granted:
            self.refused.release()
        return turn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._coordinator, name)


def test_a_shard_waiting_on_a_held_slot_gets_it_soon_after_the_holder_is_done(redis_url: str) -> None:
    mine = Refusals(RedisCoordinator(redis_url, "app", member_id="a"))
    other = RedisCoordinator(redis_url, "app", member_id="b")
    assert other.try_identify(0, "other:0", hold=30, remaining=None, reset_after=None).granted

    async def run() -> None:
        runner = SharedGateRunner(mine, window=WINDOW)  # type: ignore[arg-type]
        permitted = asyncio.Event()
        runner.attach(0, permitted.set)(IdentifyPermissionNeeded((0, 1), LIMIT))
        loop = asyncio.get_running_loop()
        # It asks, and hears the slot is held for up to 30 s; then the holder is done with it.
        assert await loop.run_in_executor(None, mine.refused.acquire, True, 10)
        await loop.run_in_executor(None, other.identify_done, 0, "other:0", WINDOW)
        try:
            await asyncio.wait_for(permitted.wait(), 5 * WINDOW)  # not the 30 s the hold could have lasted
        finally:
            runner.close()

    asyncio.run(run())


class Slow:
    """The real coordinator, whose identify turns are decided only once the test lets them through."""

    def __init__(self, coordinator: RedisCoordinator) -> None:
        self._coordinator = coordinator
        self.member_id = coordinator.member_id
        self.asked = threading.Event()
        self.go_on = threading.Event()

    def try_identify(self, *args: Any, **kwargs: Any) -> IdentifyTurn:
        self.asked.set()
        assert self.go_on.wait(10)
        return self._coordinator.try_identify(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._coordinator, name)


def test_a_turn_granted_while_the_gate_closes_is_given_back(redis_url: str) -> None:
    mine = Slow(RedisCoordinator(redis_url, "app", member_id="a"))
    other = RedisCoordinator(redis_url, "app", member_id="b")

    async def run() -> None:
        runner = SharedGateRunner(mine, window=WINDOW)  # type: ignore[arg-type]
        runner.attach(0, lambda: None)(IdentifyPermissionNeeded((0, 1), LIMIT))
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(None, mine.asked.wait, 10)
        runner.close()  # the process stops while the coordinator is still answering
        mine.go_on.set()
        await runner.drain()

    asyncio.run(run())
    assert slot_wait(other) is None, "the slot stayed held for a shard that was gone"
