"""A fleet member's shards on any loop: started as leases are won, stopped as they are lost or handed on."""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from typing import Generic, TypeVar

from qqproto import OpenSocket, SessionStore, session_key
from qqproto_shards import FleetCoordinator, FleetMember
from qqproto_stores import FencedSessionStore

from ._common import Driver
from ._fleet_parts import FencedStoreView
from ._shard_set import ShardClaimed, ShardReleased, ShardSet

__all__ = ["HOLD_POLL", "FleetParts", "FleetShards"]

#: Seconds between looks at a held socket whose shard awaits its lease's renewal.
HOLD_POLL = 0.05

G = TypeVar("G", bound=Driver)


@dataclasses.dataclass(frozen=True)
class FleetParts(Generic[G]):
    """What a fleet member's shards are made with, and whom they tell."""

    coordinator: FleetCoordinator
    shard_count: int
    lease_ttl: float
    store: FencedSessionStore
    app_id: str
    shard_set: ShardSet
    #: The running shards, by id: kept here as leases come and go.
    gateways: dict[int, G]
    make_gateway: Callable[[int, SessionStore | None], G]
    #: Wakes the reader of the shards' stream.
    wake: Callable[[], object]
    #: Takes a stopped shard out of the identify gate.
    detach: Callable[[int], None]


class FleetShards(abc.ABC, Generic[G]):
    """Turns a :class:`FleetMember`'s news (claimed, lost, shed) into shards started and stopped.

    The news comes from the member's thread; subclasses carry it onto their loop, and there start,
    abandon and close the shards' gateways.
    """

    def __init__(self, parts: FleetParts[G]) -> None:
        self._store = parts.store
        self._app_id = parts.app_id
        self._count = parts.shard_count
        self._set = parts.shard_set
        self._gateways = parts.gateways
        self._make = parts.make_gateway
        self._wake = parts.wake
        self._detach = parts.detach
        #: The lease token each running shard was started under.
        self._tokens: dict[int, int] = {}
        self._closing = False
        self.member = FleetMember(
            parts.coordinator,
            parts.shard_count,
            on_claimed=self._threadsafe(self._claimed),
            on_lost=self._threadsafe(self._lost),
            on_shed=self._threadsafe(self._shed),
            prepare=self._raise_fence,
            lease_ttl=parts.lease_ttl,
        )

    @abc.abstractmethod
    def _threadsafe(self, method: Callable[..., None]) -> Callable[..., None]:
        """``method``, callable from any thread, run soon on the loop."""

    @abc.abstractmethod
    def _start(self, shard_id: int, gateway: G) -> None:
        """Start a claimed shard's gateway (its session is read from the store off the loop)."""

    @abc.abstractmethod
    def _abandon(self, shard_id: int, gateway: G) -> None:
        """Stop a shard's gateway at once, starting or not, without a word to the platform."""

    @abc.abstractmethod
    def _hand_on(self, shard_id: int, gateway: G, token: int) -> None:
        """Close a shard's gateway keeping its session, then call :meth:`_handed_on`."""

    @abc.abstractmethod
    def _look_again(self, settled: Callable[[], bool]) -> None:
        """Call ``settled`` every :data:`HOLD_POLL` seconds until it returns True."""

    def _raise_fence(self, shard_id: int, token: int) -> None:
        """Before a shard starts: its store refuses the former owner's writes from now on (blocking)."""
        self._store.raise_fence(session_key(self._app_id, (shard_id, self._count)), token)

    def _claimed(self, shard_id: int, token: int) -> None:
        if self._closing:
            return  # released by stop() with the rest
        if shard_id in self._gateways:
            if self._tokens.get(shard_id) == token:
                return
            self._drop(shard_id, "claimed again under a newer lease")  # the old one may not write any more
        fenced_out = self._threadsafe(lambda: self._lost(shard_id, "fenced out by a newer owner", token))
        gateway = self._make(shard_id, FencedStoreView(self._store, token, fenced_out))
        gateway.hold_open = lambda action: self._hold(shard_id, gateway, action)
        self._gateways[shard_id] = gateway
        self._tokens[shard_id] = token
        self._set.notice(shard_id, ShardClaimed(token))
        self._start(shard_id, gateway)
        self._wake()

    def _lost(self, shard_id: int, reason: str, token: int | None = None) -> None:
        if token is not None and self._tokens.get(shard_id) != token:
            return  # news of an older lease of the shard
        self._drop(shard_id, f"lease lost: {reason}")
        self._wake()

    def _drop(self, shard_id: int, reason: str) -> None:
        """Stop a shard at once: unread, ungated, its sockets aborted; its lease is no longer ours."""
        gateway = self._gateways.pop(shard_id, None)
        token = self._tokens.pop(shard_id, None)
        if gateway is None or token is None:
            return
        self._set.leave(shard_id)
        self._detach(shard_id)
        self._set.notice(shard_id, ShardReleased(reason))
        self._abandon(shard_id, gateway)
        self.member.shard_stopped(shard_id, token)

    def _shed(self, shard_id: int, token: int) -> None:
        gateway = self._gateways.get(shard_id)
        if gateway is None or self._tokens.get(shard_id) != token:
            self.member.shard_stopped(shard_id, token)
            return
        self._set.hand_back(shard_id, lambda driver: self._hand_on(shard_id, gateway, token))
        self._wake()

    def _handed_on(self, shard_id: int, gateway: G, token: int) -> None:
        """A shard handed to another member has closed: its lease is released next."""
        if self._gateways.get(shard_id) is gateway:
            del self._gateways[shard_id]
            self._tokens.pop(shard_id, None)
            self._set.notice(shard_id, ShardReleased("handed to another process"))
            self._wake()
        self.member.shard_stopped(shard_id, token)

    def _hold(self, shard_id: int, gateway: G, action: OpenSocket) -> bool:
        """Keep a socket from opening while the shard's lease is unconfirmed (after a long pause, say)."""
        if self.member.may_serve(shard_id):
            return False

        def settled() -> bool:
            if self._gateways.get(shard_id) is not gateway or gateway.stopped:
                return True  # lost meanwhile: it never opens
            if self.member.may_serve(shard_id):
                gateway.open_socket(action)
                return True
            return False

        self._look_again(settled)
        return True
