"""The identify gate a fleet member shares through Redis: a bucket's slot frees one window after its turn is used.

Each test runs the gate on asyncio and on trio.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest
import sniffio
import trio

from qqproto import Action, IdentifyDone, IdentifyPermissionNeeded, SessionStartLimit
from qqproto_shards import IdentifyTurn, RedisCoordinator
from transports._fleet_parts import SharedGateRunner
from transports._shared_gate import SharedGate
from transports._trio_gate import TrioSharedGateRunner

pytestmark = pytest.mark.anyio
WINDOW = 0.5
LIMIT = SessionStartLimit(total=1000, remaining=1000, reset_at=86400.0, max_concurrency=1)


@pytest.fixture(autouse=True)
def empty_redis(redis_client: Any) -> None:
    """Every test starts from an empty database."""


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Each test runs on asyncio and on trio."""
    return str(request.param)


@contextlib.asynccontextmanager
async def shared_gate(slots: Any) -> AsyncIterator[SharedGate]:
    """The running loop's shared gate over ``slots``; closed, then drained, on leaving."""
    async with contextlib.AsyncExitStack() as stack:
        runner: SharedGate
        if sniffio.current_async_library() == "trio":
            nursery = await stack.enter_async_context(trio.open_nursery())
            runner = TrioSharedGateRunner(slots, nursery, window=WINDOW)
        else:
            runner = SharedGateRunner(slots, window=WINDOW)
        try:
            yield runner
        finally:
            runner.close()
            await runner.drain()


def slot_wait(other: RedisCoordinator) -> float | None:
    """How long ``other`` is told to wait for bucket 0 (None: it got the slot)."""
    turn = other.try_identify(0, "other:0", hold=30, remaining=None, reset_after=None)
    return None if turn.granted else turn.retry_after


async def permitted_turn(runner: SharedGate) -> Callable[[Action], None]:
    permitted = anyio.Event()
    on_action = runner.attach(0, permitted.set)
    on_action(IdentifyPermissionNeeded((0, 1), LIMIT))
    with anyio.fail_after(10):
        await permitted.wait()
    return on_action


async def test_the_slot_frees_one_window_after_the_identify_is_done(redis_url: str) -> None:
    mine, other = RedisCoordinator(redis_url, "app", member_id="a"), RedisCoordinator(redis_url, "app", member_id="b")
    async with shared_gate(mine) as runner:
        on_action = await permitted_turn(runner)
        assert (slot_wait(other) or 0) > WINDOW, "a permitted turn is held until its Identify is done with"
        on_action(IdentifyDone((0, 1)))
        await runner.drain()
        wait = slot_wait(other)
    assert wait is not None and 0 < wait <= WINDOW


async def test_a_shard_that_stops_holding_its_turn_keeps_the_slot_one_window(redis_url: str) -> None:
    mine, other = RedisCoordinator(redis_url, "app", member_id="a"), RedisCoordinator(redis_url, "app", member_id="b")
    async with shared_gate(mine) as runner:
        await permitted_turn(runner)
        runner.detach(0)  # stopped after its permit: its Identify may be out
        await runner.drain()
        wait = slot_wait(other)
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


async def test_a_shard_waiting_on_a_held_slot_gets_it_soon_after_the_holder_is_done(redis_url: str) -> None:
    mine = Refusals(RedisCoordinator(redis_url, "app", member_id="a"))
    other = RedisCoordinator(redis_url, "app", member_id="b")
    assert other.try_identify(0, "other:0", hold=30, remaining=None, reset_after=None).granted
    async with shared_gate(mine) as runner:
        permitted = anyio.Event()
        runner.attach(0, permitted.set)(IdentifyPermissionNeeded((0, 1), LIMIT))
        # It asks, and hears the slot is held for up to 30 s; then the holder is done with it.
        assert await anyio.to_thread.run_sync(mine.refused.acquire, True, 10)
        await anyio.to_thread.run_sync(other.identify_done, 0, "other:0", WINDOW)
        with anyio.fail_after(5 * WINDOW):  # not the 30 s the hold could have lasted
            await permitted.wait()


async def test_a_shard_claimed_again_is_permitted_once_and_only_after_it_asked(redis_url: str) -> None:
    mine = Refusals(RedisCoordinator(redis_url, "app", member_id="a"))
    other = RedisCoordinator(redis_url, "app", member_id="b")
    assert other.try_identify(0, "other:0", hold=30, remaining=None, reset_after=None).granted
    permits: list[str] = []
    async with shared_gate(mine) as runner:
        runner.attach(0, lambda: permits.append("old"))(IdentifyPermissionNeeded((0, 1), LIMIT))
        assert await anyio.to_thread.run_sync(mine.refused.acquire, True, 10)
        runner.detach(0)  # its lease was lost while it waited for the slot...
        asked = anyio.Event()
        on_action = runner.attach(0, lambda: permits.append("new" if asked.is_set() else "new, unasked"))
        await anyio.to_thread.run_sync(other.identify_done, 0, "other:0", WINDOW)
        await anyio.sleep(3 * WINDOW)  # ...and the shard, claimed again, has not asked yet (the slot is free by now)
        asked.set()
        on_action(IdentifyPermissionNeeded((0, 1), LIMIT))
        with anyio.fail_after(10):
            while not permits:
                await anyio.sleep(0.01)
        on_action(IdentifyDone((0, 1)))
        await anyio.sleep(3 * WINDOW)  # long enough for a second turn, were one queued
    assert permits == ["new"]


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


async def test_a_turn_granted_while_the_gate_closes_is_given_back(redis_url: str) -> None:
    mine = Slow(RedisCoordinator(redis_url, "app", member_id="a"))
    other = RedisCoordinator(redis_url, "app", member_id="b")
    async with shared_gate(mine) as runner:
        runner.attach(0, lambda: None)(IdentifyPermissionNeeded((0, 1), LIMIT))
        assert await anyio.to_thread.run_sync(mine.asked.wait, 10)
        runner.close()  # the process stops while the coordinator is still answering
        mine.go_on.set()
        await runner.drain()
    assert slot_wait(other) is None, "the slot stayed held for a shard that was gone"


async def test_a_turn_ended_as_the_member_is_cancelled_still_frees_the_slot_one_window_on(redis_url: str) -> None:
    mine, other = RedisCoordinator(redis_url, "app", member_id="a"), RedisCoordinator(redis_url, "app", member_id="b")
    with anyio.CancelScope() as outer:
        async with shared_gate(mine) as runner:
            await permitted_turn(runner)
            outer.cancel()  # the application leaves by cancellation...
            runner.detach(0)  # ...and the shard stops after its permit
            await anyio.sleep_forever()
    await runner.drain()
    wait = slot_wait(other)
    assert wait is not None and 0 < wait <= WINDOW, "the slot stayed held for the turn's whole hold"
