"""Many idle shards in one asyncio process: memory per shard, loop wake-ups against heartbeats, bring-up time."""

from __future__ import annotations

import asyncio
import gc
import math
import resource
import selectors
import sys
import time
import tracemalloc
from typing import Any

from qqproto import Ready
from qqproto.testing import PlatformConfig
from transports.asyncio_shards import open_shards

from ._server import Server
from ._settings import Settings
from ._stats import Figures

__all__ = ["run"]

#: The share of Hello's interval after which the core sends each heartbeat.
HEARTBEAT_RATIO = 0.8


class CountingSelector(selectors.DefaultSelector):
    """The loop's selector, counting each return from ``select``: one loop wake-up."""

    wakeups = 0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready: list[tuple[selectors.SelectorKey, int]] = super().select(timeout)
        self.wakeups += 1
        return ready


def raise_open_file_limit(needed: int) -> None:
    """Lift the soft RLIMIT_NOFILE towards the hard limit; say so on stderr when it stays below ``needed``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        print(f"shards: open-file limit {target} is below the {needed} sockets needed", file=sys.stderr)


def rss_bytes() -> int:
    """This process's resident set size now."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


async def measure(server: Server, settings: Settings, *, trace: bool) -> dict[str, Any]:
    """Open the shards, wait for every READY, idle a few heartbeats; the raw counts.

    With ``trace`` only memory counts: tracing every allocation slows the bring-up, which is
    therefore timed, with the idle span, in a pass of its own without it.
    """
    count, window = settings.shards, settings.shards_identify_window
    config = server.client_config()
    selector = asyncio.get_running_loop()._selector  # type: ignore[attr-defined]
    gc.collect()
    if trace:
        tracemalloc.start()
    traced_before, rss_before = tracemalloc.get_traced_memory()[0], rss_bytes()
    shards = open_shards(
        config, range(count), shard_count=count, ssl_context=server.ssl_context(), identify_window=window
    )
    entered = time.perf_counter()
    async with shards:
        ready: set[int] = set()
        async for item in shards:
            if isinstance(item.event, Ready):
                ready.add(item.shard)
                if len(ready) == count:
                    break
        bringup = time.perf_counter() - entered
        gc.collect()
        traced, rss = tracemalloc.get_traced_memory()[0] - traced_before, rss_bytes() - rss_before
        tracemalloc.stop()
        if trace:
            return {"traced": traced, "rss": rss}
        wakeups, cpu, started = selector.wakeups, time.process_time(), time.perf_counter()
        await asyncio.sleep(settings.shards_idle_seconds)
        idle = (time.perf_counter() - started, selector.wakeups - wakeups, time.process_time() - cpu)
        states = {h.state for h in shards.health().values()}
    return {"bringup": bringup, "idle": idle, "states": states}


def run(settings: Settings) -> Figures:
    """Bytes per shard, wake-ups per shard per minute over heartbeats, and bring-up over the platform floor."""
    count, concurrency, window = settings.shards, settings.shards_max_concurrency, settings.shards_identify_window
    raise_open_file_limit(2 * count + 64)
    platform = PlatformConfig(
        heartbeat_interval_ms=settings.shards_heartbeat_ms,
        shards_suggested=count,
        max_concurrency=concurrency,
        identify_window=window,
        session_start_total=2 * count,
    )
    raw: dict[str, Any] = {}
    for trace in (False, True):
        with Server(platform) as server:
            loop = asyncio.SelectorEventLoop(CountingSelector())
            try:
                raw.update(loop.run_until_complete(measure(server, settings, trace=trace)))
            finally:
                loop.close()
    seconds, wakeups, cpu = raw["idle"]
    minutes = seconds / 60
    heartbeats_per_minute = 60.0 / (settings.shards_heartbeat_ms / 1000 * HEARTBEAT_RATIO)
    floor = math.ceil(count / concurrency) * window
    print(
        f"shards: {count} READY in {raw['bringup']:.2f} s (floor {floor:.2f} s); "
        f"tracemalloc {raw['traced'] / count:.0f} B/shard, RSS {raw['rss'] / count:.0f} B/shard; "
        f"idle {seconds:.1f} s: {wakeups} loop wake-ups, {cpu:.2f} CPU s "
        f"({cpu / count / minutes:.4f} CPU s per shard per minute); states {sorted(raw['states'])}",
        file=sys.stderr,
    )
    return {
        "shards_memory_per_shard_bytes": raw["traced"] / count,
        "shards_idle_wakeups_vs_heartbeats": wakeups / count / minutes / heartbeats_per_minute,
        "shards_idle_cpu_seconds_per_shard_minute": cpu / count / minutes,
        "shards_bringup_vs_floor": raw["bringup"] / floor,
    }
