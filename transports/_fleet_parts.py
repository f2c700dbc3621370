"""What a shard of a fleet needs beyond a lone shard: an identify gate shared through the coordinator, a fenced store."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable

from qqproto import Action, IdentifyDone, SessionState
from qqproto_shards import IDENTIFY_WINDOW, IdentifySlots, IdentifyTurn
from qqproto_stores import FencedOut, FencedSessionStore

from ._gate_runner import AsyncioGateRunner

__all__ = ["FencedStoreView", "SharedGateRunner"]

log = logging.getLogger("qqproto.transports")

#: How long a granted turn may be held until its Identify is done with: longer than the connect, Hello
#: and READY timeouts together (40 s by default). A crashed holder's turn frees after it.
TURN_HOLD = 60.0
#: Seconds between asks while the coordinator cannot be reached.
UNREACHABLE_RETRY = 1.0


class SharedGateRunner(AsyncioGateRunner):
    """The in-process gate, whose every turn must also win its bucket's slot in the coordinator.

    The local ration keeps this process's shards in line and within the window; the coordinator
    (one slot per bucket per window, a shared daily counter) keeps all processes within the ration.
    """

    def __init__(self, slots: IdentifySlots, *, window: float = IDENTIFY_WINDOW) -> None:
        super().__init__(window=window)
        self._slots = slots
        self._asking: dict[int, asyncio.Task[None]] = {}
        self._holding: dict[int, int] = {}  # shard -> the bucket whose slot it holds
        self.calls: set[asyncio.Task[None]] = set()  # re-arms and hand-backs under way
        self._in_flight: set[asyncio.Future[IdentifyTurn]] = set()  # asks the coordinator is answering
        #: Why the last ask failed (the coordinator unreachable), or None.
        self.coordinator_error: str | None = None

    def pump(self) -> float | None:
        now = self.now()
        for shard_id in self.ration.grants(now):
            if shard_id in self._permits and shard_id not in self._asking:
                self._asking[shard_id] = self._loop.create_task(self._win_slot(shard_id))
        return self.ration.next_due(now)

    def attach(self, shard_id: int, permit: Callable[[], None]) -> Callable[[Action], None]:
        on_action = super().attach(shard_id, permit)

        def on_gate_action(action: Action) -> None:
            on_action(action)
            if isinstance(action, IdentifyDone):
                self._used(shard_id)

        return on_gate_action

    def detach(self, shard_id: int) -> None:
        self._used(shard_id)  # permitted, it may have identified: the slot frees one window on, as after one
        super().detach(shard_id)

    def _used(self, shard_id: int) -> None:
        """The turn ``shard_id`` was permitted is over: its bucket's slot frees one window from now."""
        bucket = self._holding.pop(shard_id, None)
        if bucket is not None:
            self._call(self._slots.identify_done, bucket, self._holder(shard_id), self.ration.window)

    def close(self) -> None:
        for task in self._asking.values():
            task.cancel()
        super().close()

    def _holder(self, shard_id: int) -> str:
        return f"{self._slots.member_id}:{shard_id}"

    def _call(self, method: Callable[..., object], *args: object) -> None:
        async def call() -> None:
            try:
                await self._loop.run_in_executor(None, method, *args)
            except Exception as exc:  # the slot expires on its own
                log.warning("identify gate: %s failed: %s", getattr(method, "__name__", method), exc)

        task = self._loop.create_task(call())
        self.calls.add(task)
        task.add_done_callback(self.calls.discard)

    async def _win_slot(self, shard_id: int) -> None:
        """Ask the coordinator for the bucket's slot until granted, then let the shard identify."""
        try:
            while shard_id in self._permits:
                now = self.now()
                health = self.ration.health(now)
                bucket = shard_id % health.max_concurrency
                ask = functools.partial(
                    self._slots.try_identify,
                    bucket,
                    self._holder(shard_id),
                    hold=TURN_HOLD,
                    remaining=health.remaining,
                    reset_after=self.ration.reset_in(now),
                )
                try:
                    turn = await self._ask(ask, bucket, shard_id)
                except Exception as exc:  # unreachable: nothing new starts until it is back
                    self.coordinator_error = f"{type(exc).__name__}: {exc}"
                    await asyncio.sleep(UNREACHABLE_RETRY)
                    continue
                self.coordinator_error = None
                if turn.granted:
                    permit = self._permits.get(shard_id)
                    if permit is None:  # it stopped while asking
                        self._call(self._slots.give_back, bucket, self._holder(shard_id))
                    else:
                        self._holding[shard_id] = bucket
                        permit()
                    return
                # Held for a connect still under way, the slot's expiry is only a bound: its
                # holder re-arms it to one window once done, so look again after at most a window.
                await asyncio.sleep(max(min(turn.retry_after, self.ration.window), 0.01))
        finally:
            self._asking.pop(shard_id, None)

    async def _ask(self, ask: Callable[[], IdentifyTurn], bucket: int, shard_id: int) -> IdentifyTurn:
        """One ask; cancelled while the coordinator answers, a turn it grants anyway is given back."""
        call = self._loop.run_in_executor(None, ask)
        self._in_flight.add(call)
        call.add_done_callback(self._in_flight.discard)
        try:
            return await asyncio.shield(call)
        except asyncio.CancelledError:
            call.add_done_callback(lambda call: self._give_back_if_granted(call, bucket, shard_id))
            raise

    def _give_back_if_granted(self, call: asyncio.Future[IdentifyTurn], bucket: int, shard_id: int) -> None:
        if not call.cancelled() and call.exception() is None and call.result().granted:
            self._call(self._slots.give_back, bucket, self._holder(shard_id))

    async def drain(self) -> None:
        """After :meth:`close`: wait for the asks still being answered, then for the re-arms and hand-backs."""
        while self._in_flight or self.calls:
            await asyncio.gather(*self._in_flight, *self.calls, return_exceptions=True)


class FencedStoreView:
    """A session store as one lease holder sees it: every write carries its fencing token.

    A write refused for an older token means another process owns the shard now: ``on_fenced_out``
    hears of it, and the write reports itself refused, as any refused save does.
    """

    def __init__(self, store: FencedSessionStore, token: int, on_fenced_out: Callable[[], None]) -> None:
        self._store = store
        self._token = token
        self._on_fenced_out = on_fenced_out

    def __repr__(self) -> str:
        return f"{self._store!r} (fencing token {self._token})"

    def load(self, key: str) -> SessionState | None:
        return self._store.load(key)

    def save(self, key: str, state: SessionState) -> bool:
        try:
            return self._store.save_fenced(key, state, self._token)
        except FencedOut:
            self._on_fenced_out()
            return False

    def clear(self, key: str) -> None:
        try:
            self._store.clear_fenced(key, self._token)
        except FencedOut:
            self._on_fenced_out()
