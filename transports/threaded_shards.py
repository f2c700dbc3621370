"""Many shards on a thread of their own, so an application that blocks its loop cannot starve their heartbeats.

The thread runs :func:`transports.asyncio_shards.open_shards` on a private asyncio loop. Each
event is fetched from that loop when the application asks for it, so a shard's event counts as
finished exactly when the application asks for the next one, as on the other runtimes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator
from typing import Any, Literal, TypeVar

from qqproto import GatewayConfig, Health
from qqproto_shards import GateHealth

from . import asyncio_shards
from ._shard_set import ShardEvent, ShardFatalError, check_shards

__all__ = ["ShardEvent", "ShardFatalError", "ShardsThread"]

T = TypeVar("T")


class ShardsThread:
    """Shards on a thread: ``start()``, consume ``events()`` (or ``aiter_events()``), ``stop()``.

    Takes the arguments of :func:`transports.asyncio_shards.open_shards`.
    """

    def __init__(self, config: GatewayConfig, shards: Iterable[int] | Literal["auto"] = "auto", **options: Any) -> None:
        if shards != "auto":
            shards = list(shards)
        check_shards(shards, options.get("shard_count"))
        self._config = config
        self._shards = shards
        self._options = options
        self._thread = threading.Thread(target=self._run, name=f"qqproto-shards-{config.app_id}", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._running: asyncio_shards.Shards | None = None

    def start(self) -> None:
        """Start the thread and the shards; raises what stopped them from starting (e.g. ``"auto"`` failing)."""
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        """Close every shard gracefully, then end the thread; the last event taken counts as finished."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            loop.call_soon_threadsafe(stop.set)
        if self._thread.is_alive():
            self._thread.join()

    def events(self) -> Iterator[ShardEvent]:
        """Events as they come, blocking; ends after ``stop()``, raises :class:`ShardFatalError` on a Fatal."""
        while (asked := self._call(self._next)) is not None:
            try:
                item = asked.result()
            except concurrent.futures.CancelledError:  # the thread stopped while the question was on its way
                return
            if item is None:
                return
            yield item

    async def aiter_events(self) -> AsyncIterator[ShardEvent]:
        """Events delivered to the running asyncio loop without ever blocking it."""
        while (asked := self._call(self._next)) is not None:
            try:
                item = await asyncio.wrap_future(asked)
            except asyncio.CancelledError:
                if self._loop is None:
                    return  # the thread stopped while the question was on its way
                raise  # the consumer itself was cancelled
            if item is None:
                return
            yield item

    def health(self) -> dict[int, Health]:
        """Each shard's health snapshot, by shard id; safe from any thread."""
        return self._ask(lambda shards: shards.health())

    def gate_health(self) -> GateHealth:
        """The identify gate's snapshot; safe from any thread."""
        return self._ask(lambda shards: shards.gate_health())

    def _call(self, coro: Callable[[], Coroutine[Any, Any, T]]) -> concurrent.futures.Future[T] | None:
        """Run ``coro()`` on the shards' loop; None when it is not running (not started, or stopped)."""
        loop = self._loop
        if loop is None:
            return None
        call = coro()
        try:
            return asyncio.run_coroutine_threadsafe(call, loop)
        except RuntimeError:  # the loop closed just now
            call.close()
            return None

    def _ask(self, read: Callable[[asyncio_shards.Shards], T]) -> T:
        asked = self._call(self._on_loop(read))
        if asked is None:
            raise RuntimeError("the ShardsThread is not running")
        return asked.result()

    async def _next(self) -> ShardEvent | None:
        if self._running is None:
            return None
        try:
            return await self._running.__anext__()
        except StopAsyncIteration:
            return None

    def _on_loop(self, read: Callable[[asyncio_shards.Shards], T]) -> Callable[[], Coroutine[Any, Any, T]]:
        async def run() -> T:
            if self._running is None:
                raise RuntimeError("the ShardsThread has stopped")
            return read(self._running)

        return run

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        try:
            async with asyncio_shards.open_shards(self._config, self._shards, **self._options) as running:
                self._running = running
                self._stop = asyncio.Event()
                self._loop = asyncio.get_running_loop()
                self._ready.set()
                await self._stop.wait()
        finally:
            self._running = None
            self._loop = None
