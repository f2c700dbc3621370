"""Many shards of one bot under trio: one event stream, a health entry per shard, one identify gate.

The same shape as :mod:`transports.asyncio_shards`; every shard is a
:class:`~transports.trio.Gateway` in one nursery, and so is the gate's timer task.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import ssl
from collections.abc import AsyncIterator, Iterable
from typing import Literal

import trio

from qqproto import GatewayConfig, Health, LocalProtocolError, QQGatewayConnection, SessionStore
from qqproto_shards import IDENTIFY_WINDOW, FleetCoordinator, FleetHealth, GateHealth
from qqproto_stores import FencedSessionStore

from ._common import DEFAULT_MAX_PENDING_EVENTS, EventQueue
from ._fleet_shards import FleetParts
from ._session_keeper import keeper_for
from ._shard_set import (
    DEFAULT_LEASE_TTL,
    ShardClaimed,
    ShardEvent,
    ShardFatalError,
    ShardReleased,
    ShardSet,
    check_fleet,
    check_shards,
    shard_config,
)
from ._trio_fleet import TrioFleet
from ._trio_gate import TrioGateRunner, TrioSharedGateRunner
from .trio import Gateway, one_error_as_itself

__all__ = ["ShardClaimed", "ShardEvent", "ShardFatalError", "ShardReleased", "Shards", "open_shards"]


def open_shards(
    config: GatewayConfig,
    shards: Iterable[int] | Literal["auto"] = "auto",
    *,
    shard_count: int | None = None,
    ssl_context: ssl.SSLContext | None = None,
    session_store: SessionStore | None = None,
    rng: random.Random | None = None,
    max_pending_events: int = DEFAULT_MAX_PENDING_EVENTS,
    identify_window: float = IDENTIFY_WINDOW,
    coordinator: FleetCoordinator | None = None,
    lease_ttl: float = DEFAULT_LEASE_TTL,
) -> contextlib.AbstractAsyncContextManager[Shards]:
    """Run ``shards`` as :func:`transports.asyncio_shards.open_shards` does, in a nursery of their own.

    With a ``coordinator`` this process is one member of a fleet, as there: it serves the shards
    whose leases it holds, each announced by :class:`ShardClaimed` and ended by :class:`ShardReleased`.
    """
    wanted = check_shards(shards, shard_count)
    fleet = None if coordinator is None else (coordinator, check_fleet(wanted, session_store, lease_ttl), lease_ttl)
    made = _Maker(config, ssl_context, session_store, rng or random.Random(), max_pending_events)
    return _run(made, wanted, identify_window, fleet)


@contextlib.asynccontextmanager
async def _run(
    made: _Maker,
    wanted: tuple[list[int], int] | Literal["auto"],
    window: float,
    fleet: tuple[FleetCoordinator, FencedSessionStore, float] | None,
) -> AsyncIterator[Shards]:
    with one_error_as_itself():
        async with trio.open_nursery() as nursery:
            if wanted == "auto":
                count = await _suggested_count(made.config, made.ssl_context, made.rng)
                ids = list(range(count))
            else:
                ids, count = wanted
            if fleet is None:
                running = Shards(TrioGateRunner(nursery, window=window))
                for shard_id in ids:
                    running.join(shard_id, made.shard(nursery, shard_id, count, made.store))
            else:
                coordinator, store, lease_ttl = fleet
                running = Shards(TrioSharedGateRunner(coordinator, nursery, window=window), fleet=True)

                def make(shard_id: int, fenced: SessionStore | None) -> Gateway:
                    return running.join(shard_id, made.shard(nursery, shard_id, count, fenced))

                shard_set, app_id = running.shard_set, made.config.app_id
                parts = FleetParts(
                    coordinator, count, lease_ttl, store, app_id, shard_set, {}, make, running.wake, running.gate.detach
                )
                running.fleet = TrioFleet(parts, nursery)
            finished = False
            try:
                if running.fleet is not None:
                    await running.fleet.start()
                for gateway in running.gateways:
                    await gateway.start()
                yield running
                finished = True
            finally:
                with trio.CancelScope(shield=True):
                    await running.aclose(last_event_finished=finished)


@dataclasses.dataclass
class _Maker:
    """What every shard's gateway is made with."""

    config: GatewayConfig
    ssl_context: ssl.SSLContext | None
    store: SessionStore | None
    rng: random.Random
    max_pending_events: int

    def shard(self, nursery: trio.Nursery, shard_id: int, count: int, store: SessionStore | None) -> Gateway:
        """Shard ``shard_id`` of ``count``, saving its session to ``store``."""
        config = shard_config(self.config, shard_id, count)
        conn = QQGatewayConnection(config, random.Random(self.rng.getrandbits(64)), ask_before_identify=True)
        keeper = keeper_for(store, config)
        return Gateway(conn, config, self.ssl_context, EventQueue(self.max_pending_events), nursery, keeper)


class Shards:
    """The running shards: ``async for`` their :class:`ShardEvent` stream, ask ``health()`` any time."""

    def __init__(self, gate: TrioGateRunner, *, fleet: bool = False) -> None:
        self.gate = gate
        #: The shards of a process that runs its own; a fleet member's come and go in :attr:`fleet`.
        self.gateways: list[Gateway] = []
        self.fleet: TrioFleet | None = None
        may_serve = (
            (lambda shard_id: self.fleet is not None and self.fleet.member.may_serve(shard_id)) if fleet else None
        )
        self.shard_set = ShardSet(may_serve=may_serve)
        self._arrived = trio.lowlevel.ParkingLot()

    def join(self, shard_id: int, gateway: Gateway) -> Gateway:
        """Run ``gateway`` as shard ``shard_id``."""
        if self.fleet is None:
            self.gateways.append(gateway)
        self.shard_set.join(shard_id, gateway, self.gate, self.wake)
        return gateway

    def wake(self) -> None:
        """Events or news arrived: the reader looks again."""
        self._arrived.unpark_all()

    async def aclose(self, *, last_event_finished: bool) -> None:
        """Close every shard gracefully, at once; each waits at most its ``close_timeout``."""
        if last_event_finished:
            self.shard_set.last_finished()
        self.gate.close()
        if self.fleet is not None:
            await self.fleet.stop()  # the gate's last calls end with the nursery
            return
        async with trio.open_nursery() as nursery:
            for gateway in self.gateways:
                nursery.start_soon(gateway.aclose)

    def __aiter__(self) -> Shards:
        return self

    async def __anext__(self) -> ShardEvent:
        await trio.lowlevel.checkpoint()
        while (event := self.shard_set.take()) is None:
            if self.shard_set.done:
                raise StopAsyncIteration
            await self._arrived.park()
        return event

    def health(self) -> dict[int, Health]:
        """Each shard's health snapshot, by shard id."""
        return self.shard_set.health()

    def fleet_health(self) -> FleetHealth | None:
        """This member's leases and its view of the fleet (None without a coordinator)."""
        if self.fleet is None:
            return None
        health = self.fleet.member.health()
        gate_error = self.gate.coordinator_error if isinstance(self.gate, TrioSharedGateRunner) else None
        return (
            health
            if health.coordinator_error or not gate_error
            else dataclasses.replace(health, coordinator_error=gate_error)
        )

    def gate_health(self) -> GateHealth:
        """The identify gate's snapshot: shards waiting, and whether the daily budget is spent."""
        return self.gate.health()

    @property
    def shard_ids(self) -> list[int]:
        """The shards this process runs."""
        return list(self.shard_set.drivers)


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
