"""The identify gate of a fleet member, on any loop: each turn must also win its bucket's slot in the coordinator."""

from __future__ import annotations

import abc
import functools
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

from qqproto import Action, IdentifyDone
from qqproto_shards import IdentifySlots, IdentifyTurn

from ._gate_runner import GateRunner

__all__ = ["Cancellable", "SharedGate"]

log = logging.getLogger("qqproto.transports")

T = TypeVar("T")

#: How long a granted turn may be held until its Identify is done with: longer than the connect, Hello
#: and READY timeouts together (40 s by default). A crashed holder's turn frees after it.
TURN_HOLD = 60.0
#: Seconds between asks while the coordinator cannot be reached.
UNREACHABLE_RETRY = 1.0


class Cancellable(Protocol):
    """A task, as far as the gate stops one: asyncio's Task, trio's CancelScope."""

    def cancel(self) -> object: ...


class _Answer:
    """The coordinator's answer to one ask, and whether its asker still waits for it (the two races, locked)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._turn: IdentifyTurn | None = None
        self._abandoned = False

    def deliver(self, turn: IdentifyTurn) -> bool:
        """From the asking thread: False when the asker has gone, and the turn is nobody's."""
        with self._lock:
            self._turn = turn
            return not self._abandoned

    def abandon(self) -> IdentifyTurn | None:
        """From the asker, cancelled: the turn delivered already, now nobody's (None: the thread will see)."""
        with self._lock:
            self._abandoned = True
            return self._turn


class SharedGate(GateRunner):
    """The in-process gate, whose every turn must also win its bucket's slot in the coordinator.

    The local ration keeps this process's shards in line and within the window; the coordinator
    (one slot per bucket per window, a shared daily counter) keeps all processes within the ration.
    Subclasses say how their runtime starts a task, blocks off its loop, sleeps and drains.
    """

    def __init__(self, slots: IdentifySlots, **runner: Any) -> None:
        super().__init__(**runner)
        self._slots = slots
        #: The ask under way for each shard: the permit it serves (one shard's gateway) and its task.
        self._asking: dict[int, tuple[Callable[[], None], Cancellable]] = {}
        self._holding: dict[int, int] = {}  # shard -> the bucket whose slot it holds
        #: Why the last ask failed (the coordinator unreachable), or None.
        self.coordinator_error: str | None = None

    def pump(self) -> float | None:
        now = self.now()
        for shard_id in self.ration.grants(now):
            permit = self._permits.get(shard_id)
            if permit is not None and shard_id not in self._asking:
                self._asking[shard_id] = (permit, self._spawn(functools.partial(self._win_slot, shard_id, permit)))
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
        asking = self._asking.pop(shard_id, None)
        if asking is not None:  # its ask ends; a gateway attached later for the shard asks for itself
            asking[1].cancel()
        super().detach(shard_id)

    def close(self) -> None:
        for _, task in self._asking.values():
            task.cancel()
        super().close()

    @abc.abstractmethod
    async def drain(self) -> None:
        """After :meth:`close`: wait for the asks still being answered, then for the re-arms and hand-backs."""

    @abc.abstractmethod
    def _spawn(self, task: Callable[[], Coroutine[Any, Any, None]]) -> Cancellable:
        """Run ``task()`` on the loop, beside the shards, until done or cancelled by its handle."""

    @abc.abstractmethod
    async def _off_loop(self, call: Callable[[], T]) -> T:
        """``call()`` on a worker thread (the coordinator blocks); it runs to its end even if the wait is cancelled."""

    @abc.abstractmethod
    async def _sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on the loop."""

    def _used(self, shard_id: int) -> None:
        """The turn ``shard_id`` was permitted is over: its bucket's slot frees one window from now."""
        bucket = self._holding.pop(shard_id, None)
        if bucket is not None:
            self._call(self._slots.identify_done, bucket, self._holder(shard_id), self.ration.window)

    def _holder(self, shard_id: int) -> str:
        return f"{self._slots.member_id}:{shard_id}"

    def _call(self, method: Callable[..., object], *args: object) -> None:
        async def call() -> None:
            try:
                await self._off_loop(functools.partial(method, *args))
            except Exception as exc:  # the slot expires on its own
                log.warning("identify gate: %s failed: %s", getattr(method, "__name__", method), exc)

        self._spawn(call)

    async def _win_slot(self, shard_id: int, permit: Callable[[], None]) -> None:
        """Ask the coordinator for the bucket's slot until granted, then ``permit`` the shard's gateway to identify."""
        try:
            while self._permits.get(shard_id) is permit:
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
                    await self._sleep(UNREACHABLE_RETRY)
                    continue
                self.coordinator_error = None
                if turn.granted:
                    if self._permits.get(shard_id) is not permit:  # it stopped while asking
                        self._call(self._slots.give_back, bucket, self._holder(shard_id))
                    else:
                        self._holding[shard_id] = bucket
                        permit()
                    return
                # Held for a connect still under way, the slot's expiry is only a bound: its
                # holder re-arms it to one window once done, so look again after at most a window.
                await self._sleep(max(min(turn.retry_after, self.ration.window), 0.01))
        finally:
            if self._asking.get(shard_id, (None,))[0] is permit:
                del self._asking[shard_id]

    async def _ask(self, ask: Callable[[], IdentifyTurn], bucket: int, shard_id: int) -> IdentifyTurn:
        """One ask; cancelled while the coordinator answers, a turn it grants anyway is given back."""
        answer = _Answer()
        holder = self._holder(shard_id)

        def asking() -> IdentifyTurn:
            turn = ask()
            if not answer.deliver(turn) and turn.granted:
                self._slots.give_back(bucket, holder)
            return turn

        try:
            return await self._off_loop(asking)
        except BaseException:  # cancelled (or unreachable, and then no turn was delivered)
            turn = answer.abandon()
            if turn is not None and turn.granted:
                self._call(self._slots.give_back, bucket, holder)
            raise
