"""What every runtime's ``open_shards`` shares: the shard ids, the tagged events, and one stream over many queues."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Literal

from qqproto import Action, GatewayConfig, Health, LocalProtocolError, QQGatewayConnection

from ._common import Driver, EventQueue, GatewayFatalError
from ._gate_runner import GateRunner

__all__ = ["ShardEvent", "ShardFatalError", "ShardSet", "check_shards"]


@dataclasses.dataclass(frozen=True)
class ShardEvent:
    """An application event (``Ready``, ``Dispatch``, a notice, ...) of shard ``shard``."""

    shard: int
    event: Action


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


def shard_config(config: GatewayConfig, shard_id: int, count: int) -> GatewayConfig:
    """``config`` for one shard of ``count``."""
    return dataclasses.replace(config, shard=(shard_id, count))


class ShardSet:
    """The shards' drivers, read as one stream: their queues in turn, so a busy shard cannot starve the others.

    A shard's event counts as finished when the application asks for the next event, whichever
    shard that comes from, so each shard's session store saves exactly what was done.
    """

    def __init__(self) -> None:
        self.drivers: dict[int, Driver] = {}
        self._turn = 0
        self._handed_from: EventQueue | None = None

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

    def last_finished(self) -> None:
        """The application is done with the event it took last."""
        handed, self._handed_from = self._handed_from, None
        if handed is not None:
            handed.last_finished()

    @property
    def done(self) -> bool:
        """True once every shard's queue has ended and was drained."""
        return all(driver.events.done for driver in self.drivers.values())

    def take(self) -> ShardEvent | None:
        """The next event of the shards in turn, or None; a shard that ended with ``Fatal`` raises :class:`ShardFatalError`."""
        self.last_finished()
        ids = list(self.drivers)
        for offset in range(len(ids)):
            shard_id = ids[(self._turn + offset) % len(ids)]
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
