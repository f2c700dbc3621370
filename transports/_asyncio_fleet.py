"""The shards of one fleet member on asyncio: started as leases are won, stopped as they are lost or handed on."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from qqproto import OpenSocket, SessionStore, session_key
from qqproto_shards import FleetCoordinator, FleetMember
from qqproto_stores import FencedSessionStore

from ._fleet_parts import FencedStoreView
from ._shard_set import ShardClaimed, ShardReleased, ShardSet
from .asyncio import Gateway

__all__ = ["AsyncioFleet"]

log = logging.getLogger("qqproto.transports")

#: Seconds between looks at a held socket whose shard awaits its lease's renewal.
HOLD_POLL = 0.05

MakeGateway = Callable[[int, SessionStore | None], Gateway]


class AsyncioFleet:
    """Turns a :class:`FleetMember`'s news (claimed, lost, shed) into shards started and stopped on this loop."""

    def __init__(
        self,
        coordinator: FleetCoordinator,
        shard_count: int,
        lease_ttl: float,
        store: FencedSessionStore,
        app_id: str,
        shard_set: ShardSet,
        gateways: dict[int, Gateway],
        make_gateway: MakeGateway,
        wake: Callable[[], object],
        detach: Callable[[int], None],
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._store = store
        self._app_id = app_id
        self._count = shard_count
        self._set = shard_set
        self._gateways = gateways
        self._make = make_gateway
        self._wake = wake
        self._detach = detach
        #: The lease token each running shard was started under.
        self._tokens: dict[int, int] = {}
        self._entering: dict[int, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
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

    # -- news from the member's thread ---------------------------------------------------

    def _threadsafe(self, method: Callable[..., None]) -> Callable[..., None]:
        def call(*args: Any) -> None:
            self._loop.call_soon_threadsafe(method, *args)

        return call

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
        self._entering[shard_id] = self._spawn(self._enter(shard_id, gateway))
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
        entering = self._entering.pop(shard_id, None)
        if entering is not None:
            entering.cancel()
        self._set.leave(shard_id)
        self._detach(shard_id)
        self._set.notice(shard_id, ShardReleased(reason))
        self._spawn(gateway.abandon())
        self.member.shard_stopped(shard_id, token)

    def _shed(self, shard_id: int, token: int) -> None:
        gateway = self._gateways.get(shard_id)
        if gateway is None or self._tokens.get(shard_id) != token:
            self.member.shard_stopped(shard_id, token)
            return
        self._set.hand_back(shard_id, lambda driver: self._spawn(self._hand_on(shard_id, gateway, token)))
        self._wake()

    # -- on the loop ---------------------------------------------------------------------

    async def _enter(self, shard_id: int, gateway: Gateway) -> None:
        try:
            await gateway.__aenter__()
        except Exception as exc:
            gateway.fail(exc)
        finally:
            if self._entering.get(shard_id) is asyncio.current_task():
                del self._entering[shard_id]

    async def _hand_on(self, shard_id: int, gateway: Gateway, token: int) -> None:
        """Close a shard handed to another member, keeping its session for it; then its lease is released."""
        await gateway.__aexit__(None, None, None)
        if self._gateways.get(shard_id) is gateway:
            del self._gateways[shard_id]
            self._tokens.pop(shard_id, None)
            self._set.notice(shard_id, ShardReleased("handed to another process"))
            self._wake()
        self.member.shard_stopped(shard_id, token)

    def _hold(self, shard_id: int, gateway: Gateway, action: OpenSocket) -> bool:
        """Keep a socket from opening while the shard's lease is unconfirmed (after a long pause, say)."""
        if self.member.may_serve(shard_id):
            return False

        def look_again() -> None:
            if self._gateways.get(shard_id) is not gateway or gateway.stopped:
                return  # lost meanwhile: it never opens
            if self.member.may_serve(shard_id):
                gateway.open_socket(action)
            else:
                self._loop.call_later(HOLD_POLL, look_again)

        self._loop.call_later(HOLD_POLL, look_again)
        return True

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
