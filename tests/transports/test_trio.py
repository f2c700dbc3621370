"""What only the trio transport promises: iterating is a cancellation point on every event, and lets other tasks in."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import trio
from harness import client_config, push, wait_until

from qqproto import Dispatch, Ready
from qqproto.testing.serve import LoopbackPlatform
from transports.trio import SCHEDULE_EVERY, Gateway, open_gateway

QUEUED = 300


async def _queue_up(gateway: Gateway, lp: LoopbackPlatform) -> None:
    """Reach READY, then have ``QUEUED`` dispatches waiting in the gateway's queue."""
    async for event in gateway:
        if isinstance(event, Ready):
            break
    push(lp, QUEUED)
    await wait_until(lambda: len(gateway.events) >= QUEUED)


def test_draining_queued_events_lets_other_tasks_run(lp: LoopbackPlatform) -> None:
    busy_per_event = SCHEDULE_EVERY / 10
    turns = 0

    async def other_task() -> None:
        nonlocal turns
        while True:
            await trio.lowlevel.checkpoint()
            turns += 1

    async def main() -> None:
        async with open_gateway(client_config(lp), lp.client_ssl_context()) as gateway:
            await _queue_up(gateway, lp)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(other_task)
                await trio.lowlevel.checkpoint()
                turns_before, taken = turns, 0
                async for event in gateway:
                    until = time.perf_counter() + busy_per_event  # a handler that computes, never awaits
                    while time.perf_counter() < until:
                        pass
                    taken += isinstance(event, Dispatch)
                    if taken == QUEUED:
                        break
                # QUEUED events at a tenth of SCHEDULE_EVERY each: the other task had ~QUEUED / 10 turns.
                assert turns - turns_before >= QUEUED // 40
                nursery.cancel_scope.cancel()

    trio.run(main)


def test_cancelling_the_consumer_loses_no_queued_event(lp: LoopbackPlatform) -> None:
    async def main() -> None:
        async with open_gateway(client_config(lp), lp.client_ssl_context()) as gateway:
            await _queue_up(gateway, lp)
            taken: list[Dispatch] = []
            with trio.CancelScope() as scope:
                async for event in gateway:
                    assert isinstance(event, Dispatch)
                    taken.append(event)
                    scope.cancel()
            assert scope.cancelled_caught and len(taken) == 1
            waiting = len(gateway.events)
            assert waiting == QUEUED - 1
            rest = [event async for event in _take(gateway, waiting)]
            assert [d.seq for d in taken + rest] == list(range(taken[0].seq, taken[0].seq + QUEUED))

    trio.run(main)


async def _take(gateway: Gateway, count: int) -> AsyncIterator[Dispatch]:
    async for event in gateway:
        if isinstance(event, Dispatch):
            yield event
            count -= 1
            if not count:
                return
