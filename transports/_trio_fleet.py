"""The shards of one fleet member under trio: started as leases are won, stopped as they are lost or handed on."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import trio

from qqproto import OpenSocket, SessionStore, session_key
from qqproto_shards import FleetCoordinator, FleetMember
from qqproto_stores import FencedSessionStore

from ._fleet_parts import FencedStoreView
from ._shard_set import ShardClaimed, ShardReleased, ShardSet
from .trio import Gateway

__all__ = ["TrioFleet"]

log = logging.getLogger("qqproto.transports")

#: Seconds between looks at a held socket whose shard awaits its lease's renewal.
HOLD_POLL = 0.05

MakeGateway = Callable[[int, SessionStore | None], Gateway]


class TrioFleet:
    """Turns a :class:`FleetMember`'s news (claimed, lost, shed) into shards started and stopped in a nursery."""

    def __init__(
        self,
        coordinator: FleetCoordinator,
        store: FencedSessionStore,
        lease_ttl: float,
        shard_count: int,
        app_id: str,
        shard_set: ShardSet,
        make_gateway: MakeGateway,
        wake: Callable[[], object],
        detach: Callable[[int], None],
        nursery: trio.Nursery,
    ) -> None:
        self._trio = trio.lowlevel.current_trio_token()
        self._store = store
        self._app_id = app_id
        self._count = shard_count
        self._set = shard_set
        self._make = make_gateway
        self._wake = wake
        self._detach = detach
        self._nursery = nursery
        self.gateways: dict[int, Gateway] = {}
        #: The lease token each running shard was started under.
        self._tokens: dict[int, int] = {}
        self._entering: dict[int, trio.CancelScope] = {}
        self._closing = False
        self.member = FleetMember(
            coordinator,
            shard_count,
            on_claimed=self._threadsafe(self._claimed),
            on_lost=self._threadsafe(self._lost),
            on_shed=self._threadsafe(self._shed),
            prepare=self._raise_fence,
            lease_ttl=lease_ttl,
        )

    async def start(self) -> None:
        """Join the fleet: raises if the coordinator cannot be reached; claimed shards start soon after."""
        await trio.to_thread.run_sync(self.member.start)

    async def stop(self) -> None:
        """Close every shard keeping its session, then release the leases and leave the fleet, even when cancelled."""
        self._closing = self._set.closed = True
        self._wake()
        try:
            for scope in self._entering.values():
                scope.cancel()
            async with trio.open_nursery() as nursery:
                for gateway in self.gateways.values():
                    nursery.start_soon(gateway.aclose)
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self.member.stop)

    # -- news from the member's thread ---------------------------------------------------

    def _threadsafe(self, method: Callable[..., None]) -> Callable[..., None]:
        def on_trio(*args: Any) -> None:
            try:
                method(*args)
            except Exception:  # an error here would end the whole trio run
                log.exception("fleet: handling %s%r failed", method.__name__, args)

        def call(*args: Any) -> None:
            try:
                self._trio.run_sync_soon(on_trio, *args)
            except trio.RunFinishedError:
                pass  # the shards are gone, and the member is being stopped

        return call

    def _raise_fence(self, shard_id: int, token: int) -> None:
        """Before a shard starts: its store refuses the former owner's writes from now on (blocking)."""
        self._store.raise_fence(session_key(self._app_id, (shard_id, self._count)), token)

    def _claimed(self, shard_id: int, token: int) -> None:
        if self._closing:
            return  # released by stop() with the rest
        if shard_id in self.gateways:
            if self._tokens.get(shard_id) == token:
                return
            self._drop(shard_id, "claimed again under a newer lease")  # the old one may not write any more
        fenced_out = self._threadsafe(lambda: self._lost(shard_id, "fenced out by a newer owner", token))
        gateway = self._make(shard_id, FencedStoreView(self._store, token, fenced_out))
        gateway.hold_open = lambda action: self._hold(shard_id, gateway, action)
        self.gateways[shard_id] = gateway
        self._tokens[shard_id] = token
        self._set.notice(shard_id, ShardClaimed(token))
        self._entering[shard_id] = scope = trio.CancelScope()
        self._nursery.start_soon(self._enter, shard_id, gateway, scope)
        self._wake()

    def _lost(self, shard_id: int, reason: str, token: int | None = None) -> None:
        if token is not None and self._tokens.get(shard_id) != token:
            return  # news of an older lease of the shard
        self._drop(shard_id, f"lease lost: {reason}")
        self._wake()

    def _drop(self, shard_id: int, reason: str) -> None:
        """Stop a shard at once: unread, ungated, its sockets aborted; its lease is no longer ours."""
        gateway = self.gateways.pop(shard_id, None)
        token = self._tokens.pop(shard_id, None)
        if gateway is None or token is None:
            return
        entering = self._entering.pop(shard_id, None)
        if entering is not None:
            entering.cancel()
        self._set.leave(shard_id)
        self._detach(shard_id)
        self._set.notice(shard_id, ShardReleased(reason))
        self._nursery.start_soon(gateway.abandon)
        self.member.shard_stopped(shard_id, token)

    def _shed(self, shard_id: int, token: int) -> None:
        gateway = self.gateways.get(shard_id)
        if gateway is None or self._tokens.get(shard_id) != token:
            self.member.shard_stopped(shard_id, token)
            return
        self._set.hand_back(shard_id, lambda driver: self._nursery.start_soon(self._hand_on, shard_id, gateway, token))
        self._wake()

    # -- tasks in the nursery ------------------------------------------------------------

    async def _enter(self, shard_id: int, gateway: Gateway, scope: trio.CancelScope) -> None:
        with scope:
            try:
                await gateway.start()
            except Exception as exc:
                gateway.fail(exc)
        if self._entering.get(shard_id) is scope:
            del self._entering[shard_id]

    async def _hand_on(self, shard_id: int, gateway: Gateway, token: int) -> None:
        """Close a shard handed to another member, keeping its session for it; then its lease is released."""
        await gateway.aclose()
        if self.gateways.get(shard_id) is gateway:
            del self.gateways[shard_id]
            self._tokens.pop(shard_id, None)
            self._set.notice(shard_id, ShardReleased("handed to another process"))
            self._wake()
        self.member.shard_stopped(shard_id, token)

    def _hold(self, shard_id: int, gateway: Gateway, action: OpenSocket) -> bool:
        """Keep a socket from opening while the shard's lease is unconfirmed (after a long pause, say)."""
        if self.member.may_serve(shard_id):
            return False
        self._nursery.start_soon(self._open_once_served, shard_id, gateway, action)
        return True

    async def _open_once_served(self, shard_id: int, gateway: Gateway, action: OpenSocket) -> None:
        while True:
            await trio.sleep(HOLD_POLL)
            if self.gateways.get(shard_id) is not gateway or gateway.stopped:
                return  # lost meanwhile: it never opens
            if self.member.may_serve(shard_id):
                gateway.open_socket(action)
                return
