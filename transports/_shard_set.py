"""What every runtime's ``open_shards`` shares: the shard ids, the tagged events, and one stream over many queues."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Literal

from qqproto import Action, GatewayConfig, Health, LocalProtocolError, QQGatewayConnection
from qqproto_stores import FencedSessionStore

from ._common import Driver, EventQueue, GatewayFatalError
from ._gate_runner import GateRunner

__all__ = ["ShardClaimed", "ShardEvent", "ShardFatalError", "ShardReleased", "ShardSet", "check_shards"]


@dataclasses.dataclass(frozen=True)
class ShardClaimed:
    """This process serves the shard from now on, under a lease with fencing token ``token``."""

    token: int


@dataclasses.dataclass(frozen=True)
class ShardReleased:
    """This process no longer serves the shard: ``reason`` says why (handed to another process, lease lost)."""

    reason: str


@dataclasses.dataclass(frozen=True)
class ShardEvent:
    """An application event (``Ready``, ``Dispatch``, a notice, ...) of shard ``shard``, or a fleet notice."""

    shard: int
    event: Action | ShardClaimed | ShardReleased


class ShardFatalError(GatewayFatalError):
    """Shard ``shard`` stopped for good (the core emitted ``Fatal``)."""

    def __init__(self, shard: int, reason: str, close_code: int | None) -> None:
        super().__init__(f"shard {shard}: {reason}", close_code)
        self.shard = shard


def check_shards(
    shards: Iterable[int] | Literal["auto"], shard_count: int | None
) -> tuple[list[int], int] | Literal["auto"]:
    """The shard ids and count ``open_shards`` was asked for; misuse raises an error that names it."""
    if shards == "auto":
        return "auto"
    ids = list(shards)
    if not ids or len(set(ids)) != len(ids) or not all(type(s) is int and s >= 0 for s in ids):
        raise LocalProtocolError(f"open_shards() needs distinct shard ids >= 0, got {ids!r}")
    count = shard_count if shard_count is not None else max(ids) + 1
    if max(ids) >= count:
        raise LocalProtocolError(f"shard ids must be below shard_count={count}, got {max(ids)}")
    return ids, count


#: Seconds a shard's lease lasts unless renewed; renewed every third of it.
DEFAULT_LEASE_TTL = 10.0


def check_fleet(wanted: tuple[list[int], int] | Literal["auto"], store: object, lease_ttl: float) -> FencedSessionStore:
    """A fleet member runs the fleet's every shard by lease, over a fenced store (returned); misuse raises an error that names it."""
    if wanted != "auto" and wanted[0] != list(range(wanted[1])):
        raise LocalProtocolError(
            f"with a coordinator, shards are the whole fleet's: 'auto' or range(shard_count), got {wanted[0]!r}"
        )
    if store is None:
        raise LocalProtocolError("with a coordinator, give a session store: a taken-over shard resumes from it")
    if not isinstance(store, FencedSessionStore):
        raise LocalProtocolError(
            f"with a coordinator, the session store must be fenced (qqproto_stores has two): {store!r}"
        )
    if not (isinstance(lease_ttl, (int, float)) and lease_ttl > 0):
        raise LocalProtocolError(f"lease_ttl must be a number of seconds > 0, got {lease_ttl!r}")
    return store


def shard_config(config: GatewayConfig, shard_id: int, count: int) -> GatewayConfig:
    """``config`` for one shard of ``count``."""
    return dataclasses.replace(config, shard=(shard_id, count))


class ShardSet:
    """The shards' drivers, read as one stream: their queues in turn, so a busy shard cannot starve the others.

    A shard's event counts as finished when the application asks for the next event, whichever
    shard that comes from, so each shard's session store saves exactly what was done.
    """

    def __init__(self, may_serve: Callable[[int], bool] | None = None) -> None:
        self.drivers: dict[int, Driver] = {}
        self._turn = 0
        self._handed_from: EventQueue | None = None
        #: Whether a shard's lease is known to be held; a shard that may not serve hands out nothing.
        self._may_serve = may_serve
        self._notices: list[ShardEvent] = []
        self._leaving: dict[int, Callable[[Driver], object]] = {}
        #: A fleet's set goes on while it has no shard at all: it ends only once this is set.
        self.closed = may_serve is None

    def join(self, shard_id: int, driver: Driver, gate: GateRunner, wake: Callable[[], object]) -> None:
        """Read ``driver`` as shard ``shard_id``: it asks ``gate`` before identifying, and ``wake`` wakes the reader."""

        conn = driver.conn
        assert isinstance(conn, QQGatewayConnection), "only a gateway connection identifies"

        def permit() -> None:
            try:
                driver.feed(conn.identify_permitted)
            except Exception as exc:
                driver.fail(exc)

        def woke(driver: Driver) -> None:
            wake()
            if driver.stopped or driver.events.done:
                gate.detach(shard_id)  # it will not identify again: its turn goes to the others

        driver.on_gate_action = gate.attach(shard_id, permit)
        driver.on_wake = woke
        self.drivers[shard_id] = driver

    def leave(self, shard_id: int) -> Driver | None:
        """Stop reading shard ``shard_id`` at once: what it still queues goes unread (its next owner gets it replayed)."""
        driver = self.drivers.pop(shard_id, None)
        self._leaving.pop(shard_id, None)
        if driver is not None and self._handed_from is driver.events:
            self._handed_from = None  # its owner is another process now: nothing more is saved from here
        return driver

    def hand_back(self, shard_id: int, then: Callable[[Driver], object]) -> None:
        """Stop reading shard ``shard_id`` once the application is done with the event in hand, then call ``then``."""
        if shard_id in self.drivers:
            self._leaving[shard_id] = then

    def notice(self, shard_id: int, event: ShardClaimed | ShardReleased) -> None:
        """Hand ``event`` out before any other event."""
        self._notices.append(ShardEvent(shard_id, event))

    def last_finished(self) -> None:
        """The application is done with the event it took last."""
        handed, self._handed_from = self._handed_from, None
        if handed is not None:
            handed.last_finished()

    @property
    def done(self) -> bool:
        """True once every shard's queue has ended and was drained (a fleet's set is never done while it runs)."""
        return self.closed and not self._notices and all(driver.events.done for driver in self.drivers.values())

    def take(self) -> ShardEvent | None:
        """The next event of the shards in turn, or None; a shard that ended with ``Fatal`` raises :class:`ShardFatalError`."""
        self.last_finished()
        for shard_id, then in list(self._leaving.items()):
            driver = self.leave(shard_id)
            if driver is not None:
                then(driver)
        if self._notices:
            return self._notices.pop(0)
        ids = list(self.drivers)
        for offset in range(len(ids)):
            shard_id = ids[(self._turn + offset) % len(ids)]
            if self._may_serve is not None and not self._may_serve(shard_id):
                continue
            queue = self.drivers[shard_id].events
            try:
                event = queue.get()
            except GatewayFatalError as exc:
                raise ShardFatalError(shard_id, exc.reason, exc.close_code) from exc
            if event is not None:
                self._turn = (self._turn + offset + 1) % len(ids)
                self._handed_from = queue
                return ShardEvent(shard_id, event)
        return None

    def health(self) -> dict[int, Health]:
        """Each shard's health snapshot, by shard id."""
        return {shard_id: driver.health() for shard_id, driver in self.drivers.items()}
