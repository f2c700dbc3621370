"""The shards of one fleet member under trio: started as leases are won, stopped as they are lost or handed on."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import trio

from ._fleet_shards import HOLD_POLL, FleetParts, FleetShards
from .trio import Gateway

__all__ = ["TrioFleet"]

log = logging.getLogger("qqproto.transports")


class TrioFleet(FleetShards[Gateway]):
    """A fleet member's shards as tasks in the shards' nursery."""

    def __init__(self, parts: FleetParts[Gateway], nursery: trio.Nursery) -> None:
        super().__init__(parts)
        self._trio = trio.lowlevel.current_trio_token()
        self._nursery = nursery
        self._entering: dict[int, trio.CancelScope] = {}

    async def start(self) -> None:
        """Join the fleet: raises if the coordinator cannot be reached; claimed shards start soon after."""
        await trio.to_thread.run_sync(self.member.start)

    async def stop(self) -> None:
        """Close every shard keeping its session, then release the leases and leave the fleet (call it shielded)."""
        self._closing = self._set.closed = True
        self._wake()
        try:
            for scope in self._entering.values():
                scope.cancel()
            async with trio.open_nursery() as nursery:
                for gateway in self._gateways.values():
                    nursery.start_soon(gateway.aclose)
        finally:
            await trio.to_thread.run_sync(self.member.stop)

    def _threadsafe(self, method: Callable[..., None]) -> Callable[..., None]:
        def on_trio(*args: Any) -> None:
            try:
                method(*args)
            except Exception:  # raised here, it would end the whole trio run
                log.exception("fleet: handling %s%r failed", method.__name__, args)

        def call(*args: Any) -> None:
            try:
                self._trio.run_sync_soon(on_trio, *args)
            except trio.RunFinishedError:
                pass  # the shards are gone, and the member is being stopped

        return call

    def _start(self, shard_id: int, gateway: Gateway) -> None:
        self._entering[shard_id] = scope = trio.CancelScope()
        self._nursery.start_soon(self._enter, shard_id, gateway, scope)

    def _abandon(self, shard_id: int, gateway: Gateway) -> None:
        entering = self._entering.pop(shard_id, None)
        if entering is not None:
            entering.cancel()
        self._nursery.start_soon(gateway.abandon)

    def _hand_on(self, shard_id: int, gateway: Gateway, token: int) -> None:
        async def hand_on() -> None:
            await gateway.aclose()
            self._handed_on(shard_id, gateway, token)

        self._nursery.start_soon(hand_on)

    def _look_again(self, settled: Callable[[], bool]) -> None:
        async def poll() -> None:
            while True:
                await trio.sleep(HOLD_POLL)
                if settled():
                    return

        self._nursery.start_soon(poll)

    async def _enter(self, shard_id: int, gateway: Gateway, scope: trio.CancelScope) -> None:
        with scope:
            try:
                await gateway.start()
            except Exception as exc:
                gateway.fail(exc)
        if self._entering.get(shard_id) is scope:
            del self._entering[shard_id]
