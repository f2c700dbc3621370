"""Many shards of one bot under trio: one event stream, a health entry per shard, one identify gate.

The same shape as :mod:`transports.asyncio_shards`; every shard is a
:class:`~transports.trio.Gateway` in one nursery, and so is the gate's timer task.
"""

from __future__ import annotations

import contextlib
import math
import random
import ssl
from collections.abc import AsyncIterator, Iterable
from typing import Literal

import trio

from qqproto import GatewayConfig, Health, LocalProtocolError, QQGatewayConnection, SessionStore
from qqproto_shards import IDENTIFY_WINDOW, GateHealth

from ._common import DEFAULT_MAX_PENDING_EVENTS, EventQueue
from ._gate_runner import GateRunner
from ._session_keeper import keeper_for
from ._shard_set import ShardEvent, ShardFatalError, ShardSet, check_shards, shard_config
from .trio import Gateway, one_error_as_itself

__all__ = ["ShardEvent", "ShardFatalError", "Shards", "open_shards"]


@contextlib.asynccontextmanager
async def open_shards(
    config: GatewayConfig,
    shards: Iterable[int] | Literal["auto"] = "auto",
    *,
    shard_count: int | None = None,
    ssl_context: ssl.SSLContext | None = None,
    session_store: SessionStore | None = None,
    rng: random.Random | None = None,
    max_pending_events: int = DEFAULT_MAX_PENDING_EVENTS,
    identify_window: float = IDENTIFY_WINDOW,
) -> AsyncIterator[Shards]:
    """Run ``shards`` as :func:`transports.asyncio_shards.open_shards` does, in a nursery of their own."""
    wanted = check_shards(shards, shard_count)
    rng = rng or random.Random()
    with one_error_as_itself():
        async with trio.open_nursery() as nursery:
            gate = TrioGateRunner(nursery, window=identify_window)
            if wanted == "auto":
                count = await _suggested_count(config, ssl_context, rng)
                ids = list(range(count))
            else:
                ids, count = wanted
            running = Shards(gate)
            for shard_id in ids:
                shard = shard_config(config, shard_id, count)
                conn = QQGatewayConnection(shard, random.Random(rng.getrandbits(64)), ask_before_identify=True)
                queue = EventQueue(max_pending_events)
                gateway = Gateway(conn, shard, ssl_context, queue, nursery, keeper_for(session_store, shard))
                running.join(shard_id, gateway)
            finished = False
            try:
                for gateway in running.gateways:
                    await gateway.start()
                yield running
                finished = True
            finally:
                with trio.CancelScope(shield=True):
                    await running.aclose(last_event_finished=finished)


class TrioGateRunner(GateRunner):
    """The gate as a task in the shards' nursery; ``now`` is ``trio.current_time()``."""

    def __init__(self, nursery: trio.Nursery, *, window: float = IDENTIFY_WINDOW) -> None:
        super().__init__(window=window)
        self._asked = trio.Event()
        self._scope = trio.CancelScope()
        nursery.start_soon(self._run)

    def now(self) -> float:
        return trio.current_time()

    def pump_soon(self) -> None:
        self._asked.set()

    def close(self) -> None:
        """Stop granting."""
        self._permits.clear()
        self._scope.cancel()

    async def _run(self) -> None:
        with self._scope:
            due: float | None = None
            while True:
                with trio.move_on_at(math.inf if due is None else due):
                    await self._asked.wait()
                self._asked = trio.Event()
                due = self.pump()


class Shards:
    """The running shards: ``async for`` their :class:`ShardEvent` stream, ask ``health()`` any time."""

    def __init__(self, gate: TrioGateRunner) -> None:
        self.gate = gate
        self.gateways: list[Gateway] = []
        self._set = ShardSet()
        self._arrived = trio.lowlevel.ParkingLot()

    def join(self, shard_id: int, gateway: Gateway) -> None:
        """Run ``gateway`` as shard ``shard_id``."""
        self.gateways.append(gateway)
        self._set.join(shard_id, gateway, self.gate, self._arrived.unpark_all)

    async def aclose(self, *, last_event_finished: bool) -> None:
        """Close every shard gracefully, at once; each waits at most its ``close_timeout``."""
        if last_event_finished:
            self._set.last_finished()
        self.gate.close()
        async with trio.open_nursery() as nursery:
            for gateway in self.gateways:
                nursery.start_soon(gateway.aclose)

    def __aiter__(self) -> Shards:
        return self

    async def __anext__(self) -> ShardEvent:
        await trio.lowlevel.checkpoint()
        while (event := self._set.take()) is None:
            if self._set.done:
                raise StopAsyncIteration
            await self._arrived.park()
        return event

    def health(self) -> dict[int, Health]:
        """Each shard's health snapshot, by shard id."""
        return self._set.health()

    def gate_health(self) -> GateHealth:
        """The identify gate's snapshot: shards waiting, and whether the daily budget is spent."""
        return self.gate.health()

    @property
    def shard_ids(self) -> list[int]:
        """The shards this process runs."""
        return list(self._set.drivers)


async def _suggested_count(config: GatewayConfig, ssl_context: ssl.SSLContext | None, rng: random.Random) -> int:
    """Ask ``/gateway/bot`` (through a connection that stops before it would identify) for the shard count."""
    async with trio.open_nursery() as nursery:
        conn = QQGatewayConnection(config, random.Random(rng.getrandbits(64)), ask_before_identify=True)
        probe = Gateway(conn, config, ssl_context, EventQueue(16), nursery)
        located = trio.Event()
        probe.on_gate_action = lambda action: located.set()

        probe.on_wake = lambda driver: located.set() if driver.stopped else None
        await probe.start()
        try:
            await located.wait()
            if probe.stopped:
                async for _ in probe:  # raises the probe's Fatal
                    pass
        finally:
            with trio.CancelScope(shield=True):
                await probe.aclose()
    count = conn.suggested_shards
    if count is None:
        raise LocalProtocolError("/gateway/bot suggested no shard count: pass open_shards(shards=range(n))")
    return count
