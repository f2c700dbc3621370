"""What a shard of a fleet needs beyond a lone shard: an identify gate shared through the coordinator, a fenced store."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from qqproto import SessionState
from qqproto_shards import IDENTIFY_WINDOW, IdentifySlots
from qqproto_stores import FencedOut, FencedSessionStore

from ._gate_runner import AsyncioGateRunner
from ._shared_gate import Cancellable, SharedGate

__all__ = ["FencedStoreView", "SharedGateRunner"]

T = TypeVar("T")


class SharedGateRunner(SharedGate, AsyncioGateRunner):
    """The shared gate on the running asyncio loop."""

    def __init__(self, slots: IdentifySlots, *, window: float = IDENTIFY_WINDOW) -> None:
        super().__init__(slots, window=window)
        self.calls: set[asyncio.Future[Any]] = set()  # tasks and thread calls under way

    async def drain(self) -> None:
        while self.calls:
            await asyncio.wait(set(self.calls))  # unlike gather, a cancelled wait leaves the calls running

    def _spawn(self, task: Callable[[], Coroutine[Any, Any, None]]) -> Cancellable:
        return self._track(self._loop.create_task(task()))

    async def _off_loop(self, call: Callable[[], T]) -> T:
        return await asyncio.shield(self._track(self._loop.run_in_executor(None, call)))

    async def _sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def _track(self, future: asyncio.Future[T]) -> asyncio.Future[T]:
        self.calls.add(future)
        future.add_done_callback(self.calls.discard)
        return future


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
