"""Session stores: end-to-end throughput with a store against without, and how fast a restart resumes."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

import transports.asyncio
from qqproto import Dispatch, Ready, Resumed, SessionStore
from qqproto.testing import PlatformConfig
from qqproto_stores import RedisSessionStore, SQLiteSessionStore

from ._server import Server
from ._settings import Settings
from ._stats import Figures, median
from .e2e import Clock

__all__ = ["run"]


async def _stream(server: Server, count: int, store: SessionStore | None) -> float:
    """Dispatches per second through the asyncio transport, saving progress to ``store`` if given."""
    clock = Clock(count)
    config = server.client_config()
    async with transports.asyncio.open_gateway(config, server.ssl_context(), session_store=store) as gateway:
        async for event in gateway:
            if isinstance(event, (Ready, Resumed)):
                server.stream(count)
            elif type(event) is Dispatch and clock.tick():
                break
    server.wait()
    return clock.rate


async def _first_event(server: Server, store: SessionStore | None) -> float:
    """Seconds from entering ``open_gateway`` to the first dispatch, pushed while no process ran."""
    started = time.perf_counter()
    streamed = False
    async with transports.asyncio.open_gateway(server.client_config(), server.ssl_context(), session_store=store) as gw:
        async for event in gw:
            if isinstance(event, Ready):  # a fresh session: its first event comes after READY
                server.stream(1)
                streamed = True
            elif type(event) is Dispatch:
                elapsed = time.perf_counter() - started
                break
    if streamed:
        server.wait()
    return elapsed


def _restart_vs_identify(server: Server, store: SessionStore) -> float:
    """A graceful restart's time to its first event (resume and replay) over a fresh identify's."""
    fresh = asyncio.run(_first_event(server, None))
    asyncio.run(_stream(server, 2, store))  # leaves a saved session behind, as a deploy does
    server.stream(1)
    server.wait()
    restarted = asyncio.run(_first_event(server, store))
    return restarted / fresh


@contextmanager
def _redis_server() -> Iterator[str]:
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("bench: the Redis figures need redis-server (Debian/Ubuntu: apt-get install redis-server)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    workdir = tempfile.mkdtemp(prefix="qqproto-bench-redis-")
    command = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit("bench: redis-server did not start") from None
                time.sleep(0.05)  # polling a starting child process
        yield url
    finally:
        client.close()
        process.terminate()
        process.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def run(settings: Settings) -> Figures:
    """Throughput ratios with each store over none, interleaved; and restart-to-first-event over identify."""
    count = settings.e2e_messages
    ratios: dict[str, list[float]] = {"sqlite": [], "redis": []}
    restart: list[float] = []
    workdir = tempfile.mkdtemp(prefix="qqproto-bench-store-")
    try:
        with Server(PlatformConfig(identify_window=0.0)) as server, _redis_server() as url:  # identifies back to back
            for rep in range(settings.reps):
                stores: dict[str, SessionStore] = {
                    "sqlite": SQLiteSessionStore(os.path.join(workdir, f"sessions-{rep}.db")),
                    "redis": RedisSessionStore(url, prefix=f"bench{rep}:"),
                }
                bare = asyncio.run(_stream(server, count, None))
                for name, store in stores.items():
                    ratios[name].append(asyncio.run(_stream(server, count, store)) / bare)
                restart.append(_restart_vs_identify(server, SQLiteSessionStore(os.path.join(workdir, f"r-{rep}.db"))))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "store_sqlite_vs_none": median(ratios["sqlite"]),
        "store_redis_vs_none": median(ratios["redis"]),
        "restart_first_event_vs_identify": median(restart),
    }
