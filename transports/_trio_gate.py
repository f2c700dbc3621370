"""The identify gate under trio: a task in the shards' nursery, alone or sharing its turns through a fleet's coordinator."""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import trio

from qqproto_shards import IDENTIFY_WINDOW, IdentifySlots

from ._gate_runner import GateRunner
from ._shared_gate import Cancellable, SharedGate

__all__ = ["TrioGateRunner", "TrioSharedGateRunner"]

T = TypeVar("T")


class TrioGateRunner(GateRunner):
    """The gate as a task in the shards' nursery; ``now`` is ``trio.current_time()``."""

    def __init__(self, nursery: trio.Nursery, *, window: float = IDENTIFY_WINDOW) -> None:
        super().__init__(window=window)
        self._nursery = nursery
        self._asked = trio.Event()
        self._scope = trio.CancelScope()
        nursery.start_soon(self._run)

    def now(self) -> float:
        return trio.current_time()

    def pump_soon(self) -> None:
        self._asked.set()

    def close(self) -> None:
        super().close()
        self._scope.cancel()

    async def _run(self) -> None:
        with self._scope:
            due: float | None = None
            while True:
                with trio.move_on_at(math.inf if due is None else due):
                    await self._asked.wait()
                self._asked = trio.Event()
                due = self.pump()


class TrioSharedGateRunner(SharedGate, TrioGateRunner):
    """The gate of a fleet member under trio: each turn also wins its bucket's slot in the coordinator."""

    def __init__(self, slots: IdentifySlots, nursery: trio.Nursery, *, window: float = IDENTIFY_WINDOW) -> None:
        super().__init__(slots, nursery=nursery, window=window)
        self._busy = 0
        self._idle = trio.Event()

    async def drain(self) -> None:
        while self._busy:
            await self._idle.wait()

    def _spawn(self, task: Callable[[], Coroutine[Any, Any, None]]) -> Cancellable:
        scope = trio.CancelScope(shield=True)  # ended by close() alone: a hand-back outlives a cancelled nursery

        async def run() -> None:
            try:
                with scope:
                    await task()
            finally:
                self._busy -= 1
                if not self._busy:
                    self._idle.set()
                    self._idle = trio.Event()

        self._nursery.start_soon(run)
        self._busy += 1
        return scope

    async def _off_loop(self, call: Callable[[], T]) -> T:
        return await trio.to_thread.run_sync(call)

    async def _sleep(self, seconds: float) -> None:
        await trio.sleep(seconds)
