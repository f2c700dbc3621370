"""Many shards of one bot in one asyncio process: one event stream, a health entry per shard, one identify gate.

Each shard is a :class:`~transports.asyncio.Gateway` whose connection asks the shared
in-process gate before every new session; resumes never wait. Events come out as
:class:`ShardEvent`, the shards' queues read in turn.
"""

from __future__ import annotations

import asyncio
import random
import ssl
from collections.abc import Iterable
from dataclasses import replace
from types import TracebackType
from typing import Literal

from qqproto import GatewayConfig, Health, LocalProtocolError, QQGatewayConnection, SessionStore
from qqproto_shards import IDENTIFY_WINDOW, FleetCoordinator, FleetHealth, GateHealth
from qqproto_stores import FencedSessionStore

from ._asyncio_fleet import AsyncioFleet
from ._common import DEFAULT_MAX_PENDING_EVENTS, EventQueue
from ._fleet_parts import SharedGateRunner
from ._fleet_shards import FleetParts
from ._gate_runner import AsyncioGateRunner
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
from .asyncio import Gateway

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
) -> Shards:
    """Run ``shards`` (ids) of a bot sharded ``shard_count`` ways, on entering ``async with``.

    ``"auto"`` runs every shard of the count ``/gateway/bot`` suggests; with ids, the count
    defaults to the highest id + 1 (give it when this process runs only part of a fleet).
    ``config.shard`` is ignored. ``identify_window`` is the platform's 5 s, shorter only in tests.

    With a ``coordinator`` (a :class:`qqproto_shards.RedisCoordinator`) this process is one
    member of a fleet: ``shards`` is the whole fleet's ("auto" or ``range(n)``), and the process
    serves the shards whose leases it holds, each announced by :class:`ShardClaimed` and ended by
    :class:`ShardReleased`. The store must then be fenced (both of ``qqproto_stores`` are).
    """
    wanted = check_shards(shards, shard_count)
    fleet = None if coordinator is None else (coordinator, check_fleet(wanted, session_store, lease_ttl), lease_ttl)
    return Shards(config, wanted, ssl_context, session_store, rng, max_pending_events, identify_window, fleet)


class Shards:
    """The running shards: ``async for`` their :class:`ShardEvent` stream, ask ``health()`` any time."""

    def __init__(
        self,
        config: GatewayConfig,
        wanted: tuple[list[int], int] | Literal["auto"],
        ssl_context: ssl.SSLContext | None,
        session_store: SessionStore | None,
        rng: random.Random | None,
        max_pending_events: int,
        identify_window: float,
        fleet: tuple[FleetCoordinator, FencedSessionStore, float] | None = None,
    ) -> None:
        self._config = config
        self._wanted = wanted
        self._ssl_context = ssl_context
        self._store = session_store
        self._rng = rng or random.Random()
        self._max_pending = max_pending_events
        self._window = identify_window
        self._fleet_options = fleet
        self._set = ShardSet()
        self._gateways: dict[int, Gateway] = {}
        self._arrival = asyncio.Event()
        self.gate: AsyncioGateRunner | None = None
        self.fleet: AsyncioFleet | None = None

    async def __aenter__(self) -> Shards:
        if self._wanted == "auto":
            count = await self._suggested_count()
            ids = list(range(count))
        else:
            ids, count = self._wanted
        if self._fleet_options is not None:
            await self._join_fleet(count, *self._fleet_options)
            return self
        self.gate = gate = AsyncioGateRunner(window=self._window)
        for shard_id in ids:
            self._gateways[shard_id] = self._shard(gate, shard_id, count, self._store)
        try:
            await asyncio.gather(*(gw.__aenter__() for gw in self._gateways.values()))
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self._set.last_finished()
        if self.gate is not None:
            self.gate.close()
        if self.fleet is not None:
            await self.fleet.stop((exc_type, exc, tb))
            if isinstance(self.gate, SharedGateRunner):
                await self.gate.drain()  # no bucket's slot stays held for a shard that is gone
            return
        await asyncio.gather(
            *(gw.__aexit__(exc_type, exc, tb) for gw in self._gateways.values()), return_exceptions=True
        )

    def __aiter__(self) -> Shards:
        return self

    async def __anext__(self) -> ShardEvent:
        while (event := self._set.take()) is None:
            if self._set.done:
                raise StopAsyncIteration
            self._arrival.clear()
            await self._arrival.wait()
        return event

    def health(self) -> dict[int, Health]:
        """Each shard's health snapshot, by shard id."""
        return self._set.health()

    def fleet_health(self) -> FleetHealth | None:
        """This member's leases and its view of the fleet (None without a coordinator)."""
        if self.fleet is None:
            return None
        health = self.fleet.member.health()
        gate_error = self.gate.coordinator_error if isinstance(self.gate, SharedGateRunner) else None
        return health if health.coordinator_error or not gate_error else replace(health, coordinator_error=gate_error)

    def gate_health(self) -> GateHealth:
        """The identify gate's snapshot: shards waiting, and whether the daily budget is spent."""
        assert self.gate is not None, "the shards are not running"
        return self.gate.health()

    @property
    def shard_ids(self) -> list[int]:
        """The shards this process runs."""
        return list(self._gateways)

    async def _join_fleet(
        self, count: int, coordinator: FleetCoordinator, store: FencedSessionStore, lease_ttl: float
    ) -> None:
        self.gate = gate = SharedGateRunner(coordinator, window=self._window)
        self._set = ShardSet(
            may_serve=lambda shard_id: self.fleet is not None and self.fleet.member.may_serve(shard_id)
        )
        parts = FleetParts(
            coordinator,
            count,
            lease_ttl,
            store,
            self._config.app_id,
            self._set,
            self._gateways,
            lambda shard_id, store: self._shard(gate, shard_id, count, store),
            self._arrival.set,
            gate.detach,
        )
        self.fleet = AsyncioFleet(parts)
        try:
            await self.fleet.start()
        except BaseException:
            gate.close()
            raise

    def _shard(self, gate: AsyncioGateRunner, shard_id: int, count: int, store: SessionStore | None) -> Gateway:
        config = shard_config(self._config, shard_id, count)
        conn = QQGatewayConnection(config, random.Random(self._rng.getrandbits(64)), ask_before_identify=True)
        keeper = keeper_for(store, config)
        gateway = Gateway(conn, config, self._ssl_context, EventQueue(self._max_pending), keeper=keeper)
        self._set.join(shard_id, gateway, gate, self._arrival.set)
        return gateway

    async def _suggested_count(self) -> int:
        """Ask ``/gateway/bot`` (through a connection that stops before it would identify) for the shard count."""
        conn = QQGatewayConnection(self._config, random.Random(self._rng.getrandbits(64)), ask_before_identify=True)
        probe = Gateway(conn, self._config, self._ssl_context, EventQueue(16))
        located = asyncio.Event()
        probe.on_gate_action = lambda action: located.set()
        probe.on_wake = lambda driver: located.set() if driver.stopped else None
        async with probe:
            await located.wait()
            if probe.stopped:
                async for _ in probe:  # raises the probe's Fatal
                    pass
        count = conn.suggested_shards
        if count is None:
            raise LocalProtocolError("/gateway/bot suggested no shard count: pass open_shards(shards=range(n))")
        return count
