"""One way to run any of the three transports against the loopback platform, as the tests see it."""

from __future__ import annotations

import asyncio
import random
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio
import pytest
import sniffio
import trio

import transports.asyncio
import transports.trio
from qqproto import Action, Dispatch, GatewayConfig, Health, OutgoingMessage
from qqproto.testing import FakeQQPlatform
from qqproto.testing.serve import LoopbackPlatform
from transports import asyncio_shards, trio_shards
from transports.threaded import GatewayThread

TIMEOUT = 10.0
#: The platform's Hello interval; the client beats every 0.4 s (x 0.8).
HEARTBEAT_INTERVAL_MS = 500
TRANSPORTS = ("asyncio", "trio", "thread")

A = TypeVar("A", bound=Action)


def client_config(lp: LoopbackPlatform, **overrides: Any) -> GatewayConfig:
    """A client of ``lp`` with short timeouts, so every recovery takes well under a second."""
    pc = lp.platform.config
    settings: dict[str, Any] = {
        "app_id": pc.app_id,
        "client_secret": pc.client_secret,
        "api_base": lp.api_base,
        "token_url": lp.token_url,
        "connect_timeout": 3.0,
        "http_timeout": 3.0,
        "hello_timeout": 3.0,
        "ready_timeout": 3.0,
        "close_timeout": 1.0,
        "backoff_base": 0.05,
        "backoff_cap": 0.5,
        "cooldown": 1.0,
        "quick_disconnect_limit": 100,
        "invalid_session_delay": (0.05, 0.2),
        "late_timer_threshold": 0.2,
        "healthy_after": 0.5,
        "heartbeat_interval_bounds": (0.05, 600.0),
    }
    settings.update(overrides)
    return GatewayConfig(**settings)


class Client:
    """A running transport: its event stream, its health, and everything it delivered so far."""

    def __init__(
        self,
        events: AsyncIterator[Action],
        health: Callable[[], Health],
        send_message: Callable[[OutgoingMessage], int],
    ) -> None:
        self._events = events
        self.health = health
        self.send_message = send_message
        self.seen: list[Action] = []

    async def next(self, kind: type[A], timeout: float = TIMEOUT) -> A:
        """Read events until one of ``kind`` arrives."""
        with anyio.fail_after(timeout):
            while True:
                event = await self._events.__anext__()
                self.seen.append(event)
                if isinstance(event, kind):
                    return event

    async def dispatches(self, count: int, timeout: float = TIMEOUT) -> list[Dispatch]:
        """Read until ``count`` dispatches were delivered in all; return them all."""
        with anyio.fail_after(timeout):
            while len(self.of(Dispatch)) < count:
                await self.next(Dispatch)
        return self.of(Dispatch)

    async def rest(self) -> list[Action]:
        """Everything left once the transport was closed; the iteration must end normally."""
        with anyio.fail_after(TIMEOUT):
            rest = [event async for event in self._events]
        self.seen.extend(rest)
        return rest

    def of(self, kind: type[A]) -> list[A]:
        """The events of ``kind`` seen so far."""
        return [event for event in self.seen if isinstance(event, kind)]


@asynccontextmanager
async def run(
    transport: str, config: GatewayConfig, ssl_context: ssl.SSLContext | None, **options: Any
) -> AsyncIterator[Client]:
    """Run ``transport`` for the duration of the block; the thread transport is read with ``aiter_events``."""
    rng = random.Random(0)
    if transport == "asyncio":
        async with transports.asyncio.open_gateway(config, ssl_context, rng=rng, **options) as gateway:
            yield Client(gateway, gateway.health, gateway.send_message)
    elif transport == "trio":
        async with transports.trio.open_gateway(config, ssl_context, rng=rng, **options) as trio_gateway:
            yield Client(trio_gateway, trio_gateway.health, trio_gateway.send_message)
    else:
        thread = GatewayThread(config, ssl_context, rng=rng, **options)
        thread.start()
        events = thread.aiter_events()
        try:
            yield Client(events, thread.health, thread.send_message)
        finally:
            thread.stop()


async def wait_until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Poll ``condition`` (typically on the platform's counters) until it holds."""
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.01)


def push_messages(platform: FakeQQPlatform, now: float, count: int, start: int = 0) -> list[str]:
    """Push messages ``start`` .. ``start + count - 1``; return their event ids in order."""
    ids = []
    for n in range(start, start + count):
        event_id = f"C2C_MESSAGE_CREATE:msg-{n}"
        platform.push_event("C2C_MESSAGE_CREATE", {"id": f"m{n}", "content": f"message {n}"}, now, event_id)
        ids.append(event_id)
    return ids


def push(lp: LoopbackPlatform, count: int, start: int = 0) -> list[str]:
    """Push messages in one burst on the server thread; return their event ids in order."""
    return lp.call(lambda platform, now: push_messages(platform, now, count, start))


def push_during(lp: LoopbackPlatform, count: int, seconds: float) -> tuple[threading.Thread, list[str]]:
    """A thread that pushes ``count`` messages spread over ``seconds``, and the ids it pushed."""
    ids: list[str] = []

    def pushing() -> None:
        for n in range(count):
            ids.extend(push(lp, 1, start=n))
            time.sleep(seconds / count)

    return threading.Thread(target=pushing, name="pusher"), ids


def push_to_shards(lp: LoopbackPlatform, shard_ids: list[int], per_shard: int, tag: str) -> dict[str, int]:
    """Push ``per_shard`` events to each shard; return each event id with the shard it was sent on."""

    def push(platform: FakeQQPlatform, now: float) -> dict[str, int]:
        sent = {}
        for n in range(per_shard):
            for shard in shard_ids:
                event_id = f"C2C_MESSAGE_CREATE:{tag}-{shard}-{n}"
                platform.push_event("C2C_MESSAGE_CREATE", {"id": event_id}, now, event_id, shard=shard)
                sent[event_id] = shard
        return sent

    return lp.call(push)


def live_tasks() -> int:
    """Tasks alive in the running asyncio loop or trio run."""
    if sniffio.current_async_library() == "trio":
        root = trio.lowlevel.current_root_task()
        assert root is not None
        return _tree_size(root)
    return len(asyncio.all_tasks())


def _tree_size(task: trio.lowlevel.Task) -> int:
    return 1 + sum(_tree_size(child) for nursery in task.child_nurseries for child in nursery.child_tasks)


def live_threads() -> list[str]:
    """Names of the threads alive now, but trio's idle worker cache (anyio runs trio as a guest on one)."""
    return sorted(thread.name for thread in threading.enumerate() if not thread.name.startswith("Trio thread"))


# -- many shards, on either runtime ---------------------------------------------------------
OPENERS = {"asyncio": asyncio_shards.open_shards, "trio": trio_shards.open_shards}


@pytest.fixture(params=sorted(OPENERS), name="anyio_backend")
def shards_backend(request: pytest.FixtureRequest) -> str:
    """Each test runs on asyncio and on trio."""
    return str(request.param)


@pytest.fixture(name="open_shards")
def shards_opener(anyio_backend: str) -> Callable[..., Any]:
    """That runtime's ``open_shards``."""
    return OPENERS[anyio_backend]
