"""The in-process identify gate run on an event loop: turns from one ration go to each shard's connection."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable

from qqproto import Action, IdentifyDone, IdentifyPermissionNeeded
from qqproto_shards import IDENTIFY_WINDOW, GateHealth, IdentifyRation

__all__ = ["AsyncioGateRunner", "GateRunner"]


class GateRunner(abc.ABC):
    """Shares one :class:`IdentifyRation` among the shards of this process; subclasses supply the clock and timer."""

    def __init__(self, *, window: float = IDENTIFY_WINDOW) -> None:
        self.ration = IdentifyRation(window=window)
        self._permits: dict[int, Callable[[], None]] = {}

    def attach(self, shard_id: int, permit: Callable[[], None]) -> Callable[[Action], None]:
        """Serve ``shard_id``: ``permit()`` lets it identify. Returns the hook for its driver's gate actions."""
        self._permits[shard_id] = permit

        def on_action(action: Action) -> None:
            now = self.now()
            if isinstance(action, IdentifyPermissionNeeded):
                self.ration.learn(action.session_start_limit, now)
                self.ration.request(shard_id, now)
            elif isinstance(action, IdentifyDone):
                self.ration.done(shard_id, now)
            self.pump_soon()

        return on_action

    def detach(self, shard_id: int) -> None:
        """``shard_id`` stopped: its place in line goes to the others, and any turn it held, one window on."""
        if self._permits.pop(shard_id, None) is not None:
            self.ration.withdraw(shard_id, self.now())
            self.pump_soon()

    def health(self) -> GateHealth:
        """The gate's snapshot: shards waiting, and whether the daily budget is spent."""
        return self.ration.health(self.now())

    def pump(self) -> float | None:
        """Hand out every turn due now; returns when to pump again (None: when a shard next asks)."""
        now = self.now()
        for shard_id in self.ration.grants(now):
            permit = self._permits.get(shard_id)
            if permit is not None:
                permit()
        return self.ration.next_due(now)

    @abc.abstractmethod
    def now(self) -> float:
        """The loop's clock, the one the shards' connections are fed with."""

    @abc.abstractmethod
    def pump_soon(self) -> None:
        """Arrange a :meth:`pump` soon, never from inside a driver's feed (its actions stay in order)."""

    def close(self) -> None:
        """Stop granting."""
        self._permits.clear()


class AsyncioGateRunner(GateRunner):
    """The gate on the running asyncio loop; ``now`` is ``loop.time()``."""

    def __init__(self, *, window: float = IDENTIFY_WINDOW) -> None:
        super().__init__(window=window)
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._soon: asyncio.Handle | None = None

    def now(self) -> float:
        return self._loop.time()

    def pump_soon(self) -> None:
        if self._soon is None:
            self._soon = self._loop.call_soon(self._run)

    def close(self) -> None:
        super().close()
        for handle in (self._timer, self._soon):
            if handle is not None:
                handle.cancel()
        self._timer = self._soon = None

    def _run(self) -> None:
        self._soon = None
        due = self.pump()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if due is not None:
            self._timer = self._loop.call_at(due, self._run)
