"""The in-process identify gate on the running asyncio loop: turns from one ration go to each shard's connection."""

from __future__ import annotations

import asyncio
from typing import Callable, Optional

from qqproto import Action, IdentifyPermissionNeeded, IdentifySent
from qqproto_shards import IDENTIFY_WINDOW, GateHealth, IdentifyRation

__all__ = ["AsyncioIdentifyGate"]


class AsyncioIdentifyGate:
    """Shares one :class:`IdentifyRation` among the shards of this process; ``now`` is ``loop.time()``."""

    def __init__(self, *, window: float = IDENTIFY_WINDOW) -> None:
        self.ration = IdentifyRation(window=window)
        self._permits: dict[int, Callable[[], None]] = {}
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._timer: Optional[asyncio.TimerHandle] = None
        self._soon: Optional[asyncio.Handle] = None

    def attach(self, shard_id: int, permit: Callable[[], None]) -> Callable[[Action], None]:
        """Serve ``shard_id``: ``permit()`` lets it identify. Returns the hook for its driver's gate actions."""
        self._loop = asyncio.get_running_loop()
        self._permits[shard_id] = permit

        def on_action(action: Action) -> None:
            now = self._now()
            if isinstance(action, IdentifyPermissionNeeded):
                self.ration.learn(action.session_start_limit, now)
                self.ration.request(shard_id, now)
            elif isinstance(action, IdentifySent):
                self.ration.sent(shard_id, now)
            self._pump_soon()

        return on_action

    def detach(self, shard_id: int) -> None:
        """``shard_id`` stopped: its place in line and any turn it holds go to the others."""
        if self._permits.pop(shard_id, None) is not None:
            self.ration.withdraw(shard_id)
            self._pump_soon()

    def health(self) -> GateHealth:
        """The gate's snapshot: shards waiting, and whether the daily budget is spent."""
        return self.ration.health(self._now())

    def close(self) -> None:
        """Stop granting."""
        self._permits.clear()
        for handle in (self._timer, self._soon):
            if handle is not None:
                handle.cancel()
        self._timer = self._soon = None

    def _now(self) -> float:
        return self._loop.time() if self._loop is not None else asyncio.get_running_loop().time()

    def _pump_soon(self) -> None:
        # Grants feed other connections: never from inside a driver's feed, so its actions stay in order.
        if self._soon is None and self._loop is not None:
            self._soon = self._loop.call_soon(self._pump)

    def _pump(self) -> None:
        self._soon = None
        now = self._now()
        for shard_id in self.ration.grants(now):
            permit = self._permits.get(shard_id)
            if permit is not None:
                permit()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        due = self.ration.next_due(now)
        if due is not None and self._loop is not None:
            self._timer = self._loop.call_at(due, self._pump)
