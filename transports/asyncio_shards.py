"""Many shards of one bot in one asyncio process: one event stream, a health entry per shard, one identify gate.

Each shard is a :class:`~transports.asyncio.Gateway` whose connection asks the shared
in-process gate before every new session; resumes never wait. Events come out as
:class:`ShardEvent`, taken from the shards' queues in turn, so a busy shard cannot starve the
others, and with a session store each shard saves what the application finished.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import ssl
from types import TracebackType
from typing import Iterable, Literal, Optional, Union

from qqproto import Action, GatewayConfig, Health, LocalProtocolError, QQGatewayConnection, SessionStore
from qqproto_shards import IDENTIFY_WINDOW, GateHealth

from ._asyncio_gate import AsyncioIdentifyGate
from ._common import DEFAULT_MAX_PENDING_EVENTS, EventQueue, GatewayFatalError
from ._session_keeper import keeper_for
from .asyncio import Gateway

__all__ = ["ShardEvent", "ShardFatalError", "Shards", "open_shards"]


@dataclasses.dataclass(frozen=True)
class ShardEvent:
    """An application event (``Ready``, ``Dispatch``, a notice, ...) of shard ``shard``."""

    shard: int
    event: Action


class ShardFatalError(GatewayFatalError):
    """Shard ``shard`` stopped for good (the core emitted ``Fatal``)."""

    def __init__(self, shard: int, reason: str, close_code: Optional[int]) -> None:
        super().__init__(f"shard {shard}: {reason}", close_code)
        self.shard = shard


def open_shards(
    config: GatewayConfig,
    shards: Union[Iterable[int], Literal["auto"]] = "auto",
    *,
    shard_count: Optional[int] = None,
    ssl_context: Optional[ssl.SSLContext] = None,
    session_store: Optional[SessionStore] = None,
    rng: Optional[random.Random] = None,
    max_pending_events: int = DEFAULT_MAX_PENDING_EVENTS,
    identify_window: float = IDENTIFY_WINDOW,
) -> Shards:
    """Run ``shards`` (ids) of a bot sharded ``shard_count`` ways, on entering ``async with``.

    ``"auto"`` runs every shard of the count ``/gateway/bot`` suggests; with ids, the count
    defaults to the highest id + 1 (give it when this process runs only part of a fleet).
    ``config.shard`` is ignored. ``identify_window`` is the platform's 5 s, shorter only in tests.
    """
    if shards != "auto":
        shards = list(shards)
        if not shards or len(set(shards)) != len(shards) or not all(isinstance(s, int) and s >= 0 for s in shards):
            raise LocalProtocolError(f"open_shards() needs distinct shard ids >= 0, got {shards!r}")
        count = shard_count if shard_count is not None else max(shards) + 1
        if max(shards) >= count:
            raise LocalProtocolError(f"shard ids must be below shard_count={count}, got {max(shards)}")
    return Shards(config, shards, shard_count, ssl_context, session_store, rng, max_pending_events, identify_window)


class _ShardGateway(Gateway):
    """A shard's gateway that also wakes the merged stream."""

    shared_arrival: asyncio.Event

    def wake_consumer(self) -> None:
        super().wake_consumer()
        self.shared_arrival.set()


class Shards:
    """The running shards: ``async for`` their :class:`ShardEvent` stream, ask ``health()`` any time."""

    def __init__(
        self,
        config: GatewayConfig,
        shards: Union[list[int], Literal["auto"]],
        shard_count: Optional[int],
        ssl_context: Optional[ssl.SSLContext],
        session_store: Optional[SessionStore],
        rng: Optional[random.Random],
        max_pending_events: int,
        identify_window: float,
    ) -> None:
        self._config = config
        self._wanted = shards
        self._count = shard_count
        self._ssl_context = ssl_context
        self._store = session_store
        self._rng = rng or random.Random()
        self._max_pending = max_pending_events
        self.gate = AsyncioIdentifyGate(window=identify_window)
        self._gateways: dict[int, _ShardGateway] = {}
        self._arrival = asyncio.Event()
        self._turn = 0
        self._handed_from: Optional[EventQueue] = None

    async def __aenter__(self) -> Shards:
        if self._wanted == "auto":
            ids = list(range(await self._suggested_count()))
            count = len(ids)
        else:
            ids = self._wanted
            count = self._count if self._count is not None else max(ids) + 1
        for shard_id in ids:
            self._gateways[shard_id] = self._shard(shard_id, count)
        try:
            await asyncio.gather(*(gw.__aenter__() for gw in self._gateways.values()))
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        if exc_type is None and self._handed_from is not None:
            self._handed_from.last_finished()
        self.gate.close()
        await asyncio.gather(
            *(gw.__aexit__(exc_type, exc, tb) for gw in self._gateways.values()), return_exceptions=True
        )

    def __aiter__(self) -> Shards:
        return self

    async def __anext__(self) -> ShardEvent:
        if self._handed_from is not None:
            self._handed_from.last_finished()  # the application asks for the next: it is done with the last
            self._handed_from = None
        while True:
            event = self._take()
            if event is not None:
                return event
            if all(gw.events.done for gw in self._gateways.values()):
                raise StopAsyncIteration
            self._arrival.clear()
            await self._arrival.wait()

    def health(self) -> dict[int, Health]:
        """Each shard's health snapshot, by shard id."""
        return {shard_id: gw.health() for shard_id, gw in self._gateways.items()}

    def gate_health(self) -> GateHealth:
        """The identify gate's snapshot: shards waiting, and whether the daily budget is spent."""
        return self.gate.health()

    @property
    def shard_ids(self) -> list[int]:
        """The shards this process runs."""
        return list(self._gateways)

    def _take(self) -> Optional[ShardEvent]:
        """The next event of the shards in turn, starting after the one served last."""
        ids = list(self._gateways)
        for offset in range(len(ids)):
            shard_id = ids[(self._turn + offset) % len(ids)]
            gateway = self._gateways[shard_id]
            if gateway.events.done and not len(gateway.events):
                try:
                    gateway.events.get()
                except GatewayFatalError as exc:
                    self.gate.detach(shard_id)
                    raise ShardFatalError(shard_id, exc.reason, exc.close_code) from exc
                continue
            event = gateway.events.get()
            if event is not None:
                self._turn = (self._turn + offset + 1) % len(ids)
                self._handed_from = gateway.events
                return ShardEvent(shard_id, event)
        return None

    def _shard(self, shard_id: int, count: int) -> _ShardGateway:
        config = dataclasses.replace(self._config, shard=(shard_id, count))
        conn = QQGatewayConnection(config, random.Random(self._rng.getrandbits(64)), ask_before_identify=True)
        keeper = keeper_for(self._store, config)
        gateway = _ShardGateway(conn, config, self._ssl_context, EventQueue(self._max_pending), keeper=keeper)
        gateway.shared_arrival = self._arrival

        def permit() -> None:
            try:
                gateway.feed(conn.identify_permitted)
            except Exception as exc:
                gateway.fail(exc)

        gateway.on_gate_action = self.gate.attach(shard_id, permit)
        return gateway

    async def _suggested_count(self) -> int:
        """Ask ``/gateway/bot`` (through a connection that stops before it would identify) for the shard count."""
        conn = QQGatewayConnection(self._config, random.Random(self._rng.getrandbits(64)), ask_before_identify=True)
        probe = Gateway(conn, self._config, self._ssl_context, EventQueue(self._max_pending))
        located = asyncio.Event()
        probe.on_gate_action = lambda action: located.set()
        async with probe:
            waiting = asyncio.ensure_future(located.wait())
            draining = asyncio.ensure_future(_drain(probe))
            await asyncio.wait({waiting, draining}, return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
            draining.cancel()
            error = draining.exception() if draining.done() and not draining.cancelled() else None
            if error is not None:
                raise error
        count = conn.suggested_shards
        if count is None:
            raise LocalProtocolError("/gateway/bot suggested no shard count: pass open_shards(shards=range(n))")
        return count


async def _drain(gateway: Gateway) -> None:
    """Read a gateway's events until it ends (raising its Fatal)."""
    async for _ in gateway:
        pass
