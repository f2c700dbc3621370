"""The shards of one fleet member on asyncio: started as leases are won, stopped as they are lost or handed on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from ._fleet_shards import HOLD_POLL, FleetParts, FleetShards
from .asyncio import Gateway

__all__ = ["AsyncioFleet"]


class AsyncioFleet(FleetShards[Gateway]):
    """A fleet member's shards as tasks on the running loop."""

    def __init__(self, parts: FleetParts[Gateway]) -> None:
        super().__init__(parts)
        self._loop = asyncio.get_running_loop()
        self._entering: dict[int, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Join the fleet: raises if the coordinator cannot be reached; claimed shards start soon after."""
        await self._loop.run_in_executor(None, self.member.start)

    async def stop(self, exc_info: tuple[Any, Any, Any] = (None, None, None)) -> None:
        """Close every shard keeping its session, then release the leases and leave the fleet.

        ``exc_info`` is how the application left: after an error, the event in hand is not finished.
        """
        self._closing = self._set.closed = True
        self._wake()
        try:
            await asyncio.gather(
                *(gw.__aexit__(*exc_info) for gw in self._gateways.values()), *self._tasks, return_exceptions=True
            )
        finally:
            await asyncio.shield(self._loop.run_in_executor(None, self.member.stop))

    def _threadsafe(self, method: Callable[..., None]) -> Callable[..., None]:
        def call(*args: Any) -> None:
            self._loop.call_soon_threadsafe(method, *args)

        return call

    def _start(self, shard_id: int, gateway: Gateway) -> None:
        self._entering[shard_id] = self._spawn(self._enter(shard_id, gateway))

    def _abandon(self, shard_id: int, gateway: Gateway) -> None:
        entering = self._entering.pop(shard_id, None)
        if entering is not None:
            entering.cancel()
        self._spawn(gateway.abandon())

    def _hand_on(self, shard_id: int, gateway: Gateway, token: int) -> None:
        async def hand_on() -> None:
            await gateway.__aexit__(None, None, None)
            self._handed_on(shard_id, gateway, token)

        self._spawn(hand_on())

    def _look_again(self, settled: Callable[[], bool]) -> None:
        def look() -> None:
            if not settled():
                self._look_again(settled)

        self._loop.call_later(HOLD_POLL, look)

    async def _enter(self, shard_id: int, gateway: Gateway) -> None:
        try:
            await gateway.__aenter__()
        except Exception as exc:
            gateway.fail(exc)
        finally:
            if self._entering.get(shard_id) is asyncio.current_task():
                del self._entering[shard_id]

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
