"""Many shards in one asyncio process against the loopback platform over real TLS."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import harness
import pytest
from harness import client_config, push_to_shards, wait_until

from qqproto import Dispatch, GatewayConfig, LocalProtocolError, Ready, Resumed, session_key
from qqproto.testing.serve import LoopbackPlatform
from qqproto_stores import SQLiteSessionStore
from transports.asyncio_shards import ShardEvent, ShardFatalError
from transports.threaded_shards import ShardsThread

pytestmark = pytest.mark.anyio
#: Each test runs on asyncio and on trio, with that runtime's ``open_shards``.
anyio_backend, open_shards = harness.shards_backend, harness.shards_opener
WINDOW = 0.3
FLEET = {"shards_suggested": 6, "max_concurrency": 2, "identify_window": WINDOW}


class Reader:
    """Reads a merged stream, keeping everything it saw."""

    def __init__(self, shards: Any) -> None:
        self.shards = shards
        self.seen: list[ShardEvent] = []

    def of(self, kind: type) -> list[ShardEvent]:
        return [item for item in self.seen if isinstance(item.event, kind)]

    async def until(self, kind: type, count: int) -> list[ShardEvent]:
        """Read until ``count`` events of ``kind`` were seen in all; return them."""
        with anyio.fail_after(10):
            while len(self.of(kind)) < count:
                self.seen.append(await self.shards.__anext__())
        return self.of(kind)


def identify_spacing_ok(lp: LoopbackPlatform, max_concurrency: int) -> list[tuple[int, float]]:
    """Every pair of identifies in one bucket closer than the window (none expected)."""
    times: dict[int, list[float]] = lp.call(lambda platform, now: dict(platform.shards.identify_times))
    by_bucket: dict[int, list[float]] = {}
    for shard, stamps in times.items():
        by_bucket.setdefault(shard % max_concurrency, []).extend(stamps)
    too_close = []
    for bucket, stamps in by_bucket.items():
        stamps.sort()
        too_close += [(bucket, b - a) for a, b in zip(stamps, stamps[1:]) if b - a < WINDOW]
    return too_close


@pytest.mark.platform(**FLEET)
async def test_every_shard_identifies_within_the_ration_and_events_arrive_tagged_once(
    open_shards: Callable[..., Any], lp: LoopbackPlatform
) -> None:
    config = client_config(lp)
    async with open_shards(config, range(6), ssl_context=lp.client_ssl_context(), identify_window=WINDOW) as shards:
        reader = Reader(shards)
        ready = await reader.until(Ready, 6)
        assert sorted(r.shard for r in ready) == list(range(6))
        assert all(r.event.shard == (r.shard, 6) for r in ready)
        sent = push_to_shards(lp, list(range(6)), 20, "a")
        got = await reader.until(Dispatch, len(sent))
        health = shards.health()
    delivered = Counter(item.event.event_id for item in got)
    assert set(delivered) == set(sent) and set(delivered.values()) == {1}, "every event exactly once"
    assert all(sent[item.event.event_id] == item.shard for item in got), "tagged with the shard it came on"
    assert sorted(health) == list(range(6)) and all(h.connected for h in health.values())
    counters = lp.counters
    assert counters.identifies == 6 and counters.identifies_throttled == 0
    assert identify_spacing_ok(lp, 2) == []
    peak = lp.call(lambda platform, now: dict(platform.shards.peak_live))
    assert peak == dict.fromkeys(range(6), 1)


@pytest.mark.platform(**FLEET)
async def test_auto_takes_the_shard_count_from_gateway_bot(
    open_shards: Callable[..., Any], lp: LoopbackPlatform
) -> None:
    async with open_shards(
        client_config(lp), "auto", ssl_context=lp.client_ssl_context(), identify_window=WINDOW
    ) as shards:
        ready = await Reader(shards).until(Ready, 6)
        assert shards.shard_ids == list(range(6))
    assert sorted(r.event.shard for r in ready) == [(n, 6) for n in range(6)]
    assert lp.counters.identifies_throttled == 0


@pytest.mark.platform(**FLEET)
async def test_part_of_a_fleet_runs_with_the_fleet_s_count(
    open_shards: Callable[..., Any], lp: LoopbackPlatform
) -> None:
    async with open_shards(
        client_config(lp), [1, 4], shard_count=6, ssl_context=lp.client_ssl_context(), identify_window=WINDOW
    ) as shards:
        ready = await Reader(shards).until(Ready, 2)
    assert sorted(r.event.shard for r in ready) == [(1, 6), (4, 6)]


@pytest.mark.platform(**FLEET)
async def test_a_session_store_resumes_every_shard(
    open_shards: Callable[..., Any], lp: LoopbackPlatform, tmp_path: Path
) -> None:
    store = SQLiteSessionStore(tmp_path / "sessions.db")
    config = client_config(lp)
    options: dict[str, Any] = {
        "ssl_context": lp.client_ssl_context(),
        "session_store": store,
        "identify_window": WINDOW,
    }
    async with open_shards(config, range(4), **options) as shards:
        reader = Reader(shards)
        await reader.until(Ready, 4)
        first_sent = push_to_shards(lp, list(range(4)), 5, "before")
        first = await reader.until(Dispatch, len(first_sent))
    later_sent = push_to_shards(lp, list(range(4)), 5, "between")  # while no process runs
    async with open_shards(config, range(4), **options) as shards:
        reader = Reader(shards)
        resumed = await reader.until(Resumed, 4)
        second = await reader.until(Dispatch, len(later_sent))
    assert sorted(r.shard for r in resumed) == list(range(4))
    assert lp.counters.identifies == 4, "the second process resumed every shard"
    ids = [item.event.event_id for item in first + second]
    assert sorted(ids) == sorted([*first_sent, *later_sent]) and len(set(ids)) == len(ids)


@pytest.mark.platform(shards_suggested=4, max_concurrency=4, identify_window=WINDOW, session_start_total=2)
async def test_a_spent_budget_waits_for_the_reset_and_health_says_so(
    open_shards: Callable[..., Any], lp: LoopbackPlatform
) -> None:
    async with open_shards(
        client_config(lp), range(4), ssl_context=lp.client_ssl_context(), identify_window=WINDOW
    ) as shards:
        await Reader(shards).until(Ready, 2)
        await wait_until(lambda: shards.gate_health().waiting == 2)
        gate = shards.gate_health()
        assert gate.exhausted and gate.remaining == 0 and gate.exhausted_until is not None
        waiting = [h for h in shards.health().values() if h.identify_permission == "waiting"]
        assert len(waiting) == 2
        await anyio.sleep(5 * WINDOW)  # time for a hammering client to have tried again
    assert lp.counters.identifies == 2, "no identify was tried while the budget was spent"


@pytest.mark.platform(shards_suggested=2, max_concurrency=2, identify_window=WINDOW)
async def test_a_shard_count_the_platform_refuses_ends_the_stream_naming_the_shard(
    open_shards: Callable[..., Any], lp: LoopbackPlatform
) -> None:
    with pytest.raises(ShardFatalError) as raised:
        async with open_shards(
            client_config(lp), [0, 2], ssl_context=lp.client_ssl_context(), identify_window=WINDOW
        ) as shards:
            await Reader(shards).until(Ready, 2)
    assert raised.value.close_code == 4010 and raised.value.shard in (0, 2)
    assert f"shard {raised.value.shard}" in str(raised.value)


@pytest.mark.parametrize(
    ("shards", "count", "message"),
    [
        ([], None, "distinct shard ids"),
        ([1, 1], None, "distinct shard ids"),
        ([-1], None, "distinct"),
        ([3], 2, "below"),
    ],
)
async def test_bad_shard_ids_are_named(
    open_shards: Callable[..., Any], shards: list[int], count: Any, message: str
) -> None:
    config = GatewayConfig("1", "secret")
    with pytest.raises(LocalProtocolError, match=message):
        async with open_shards(config, shards, shard_count=count):
            pass


@pytest.mark.platform(**FLEET)
def test_shards_on_a_thread_deliver_every_event_once_tagged(lp: LoopbackPlatform, tmp_path: Path) -> None:
    store = SQLiteSessionStore(tmp_path / "sessions.db")
    options: dict[str, Any] = {
        "ssl_context": lp.client_ssl_context(),
        "session_store": store,
        "identify_window": WINDOW,
    }
    running = ShardsThread(client_config(lp), range(4), **options)
    running.start()
    try:
        events = running.events()
        ready = list(itertools.islice((i for i in events if isinstance(i.event, Ready)), 4))
        sent = push_to_shards(lp, list(range(4)), 10, "thread")
        got = list(itertools.islice((i for i in events if isinstance(i.event, Dispatch)), len(sent)))
        health = running.health()
        assert running.gate_health().waiting == 0
    finally:
        running.stop()
    assert sorted(r.shard for r in ready) == list(range(4))
    assert sorted(item.event.event_id for item in got) == sorted(sent)
    assert all(sent[item.event.event_id] == item.shard for item in got)
    assert all(h.connected for h in health.values())
    assert list(running.events()) == [], "the stream ends once stopped"
    assert lp.counters.identifies_throttled == 0
    saved = store.load(session_key(lp.platform.config.app_id, (3, 4)))
    assert saved is not None and saved.seq == 1 + 10, "the last event taken counts as finished on stop"
