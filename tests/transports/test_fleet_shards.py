"""Fleet members in one process, on asyncio and on trio: leases in a real redis-server, the loopback platform over TLS.

Each member has a coordinator of its own (its own member id), as separate processes would; they
share the Redis, the SQLite session file and the platform.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import harness
import pytest
import redis
from harness import client_config, push_to_shards, wait_until

from qqproto import Dispatch, GatewayConfig, LocalProtocolError, Ready, Resumed
from qqproto.testing.serve import LoopbackPlatform
from qqproto_shards._redis import RedisCoordinator
from qqproto_stores import SQLiteSessionStore
from transports._shard_set import ShardClaimed, ShardEvent, ShardReleased

pytestmark = pytest.mark.anyio
#: Each test runs on asyncio and on trio, with that runtime's ``open_shards``.
anyio_backend, open_shards = harness.shards_backend, harness.shards_opener
WINDOW = 0.3
LEASE_TTL = 1.5


class Member:
    """One fleet member: its coordinator, its running shards, and every event it handed out."""

    def __init__(self, redis_url: str, app_id: str, name: str) -> None:
        self.coordinator = RedisCoordinator(redis_url, app_id, member_id=name)
        self.seen: list[ShardEvent] = []
        self.shards: Any = None

    def owned(self) -> set[int]:
        """The shards it serves now, by the ShardClaimed and ShardReleased it handed out."""
        mine: set[int] = set()
        for item in self.seen:
            if isinstance(item.event, ShardClaimed):
                mine.add(item.shard)
            elif isinstance(item.event, ShardReleased):
                mine.discard(item.shard)
        return mine

    def of(self, kind: type, shard: int | None = None) -> list[ShardEvent]:
        return [i for i in self.seen if isinstance(i.event, kind) and shard in (None, i.shard)]

    async def read(self) -> None:
        async for item in self.shards:
            self.seen.append(item)


@asynccontextmanager
async def members(
    open_shards: Callable[..., Any], lp: LoopbackPlatform, redis_url: str, tmp_path: Path, names: list[str]
) -> AsyncIterator[list[Member]]:
    """Fleet members named ``names``, each reading its stream until the block ends; then each leaves cleanly."""
    made = [Member(redis_url, lp.platform.config.app_id, name) for name in names]
    options: dict[str, Any] = {
        "ssl_context": lp.client_ssl_context(),
        "identify_window": WINDOW,
        "lease_ttl": LEASE_TTL,
    }
    done = anyio.Event()

    async def run(member: Member, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        store = SQLiteSessionStore(tmp_path / "sessions.db")
        try:
            async with open_shards(
                client_config(lp), "auto", coordinator=member.coordinator, session_store=store, **options
            ) as member.shards:
                async with anyio.create_task_group() as reading:
                    reading.start_soon(member.read)
                    task_status.started()
                    await done.wait()
                    reading.cancel_scope.cancel()
        finally:
            store.close()
            member.coordinator.close()

    async with anyio.create_task_group() as group:
        try:
            for member in made:
                await group.start(run, member)
            yield made
        finally:
            done.set()


def a_session_on(lp: LoopbackPlatform, shards: range) -> bool:
    """Each of ``shards`` is served by exactly one socket."""
    return all(lp.call(lambda p, now: p.shards.live(s)) == 1 for s in shards)


@pytest.mark.platform(shards_suggested=12, max_concurrency=4, identify_window=WINDOW)
async def test_two_members_share_twelve_shards_evenly_and_hand_out_every_event_once(
    open_shards: Callable[..., Any], lp: LoopbackPlatform, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    async with members(open_shards, lp, redis_url, tmp_path, ["a", "b"]) as (a, b):
        await wait_until(lambda: len(a.owned()) == len(b.owned()) == 6 and a.owned() | b.owned() == set(range(12)))
        await wait_until(lambda: a_session_on(lp, range(12)))
        sent = push_to_shards(lp, list(range(12)), 5, "fleet")
        await wait_until(lambda: len(a.of(Dispatch)) + len(b.of(Dispatch)) >= len(sent))
        healths = [a.shards.fleet_health(), b.shards.fleet_health()]
        mine = {member: member.owned() for member in (a, b)}
    got = Counter(item.event.event_id for member in (a, b) for item in member.of(Dispatch))
    assert set(got) == set(sent) and set(got.values()) == {1}, "every event exactly once"
    assert all(sent[i.event.event_id] in mine[member] for member in (a, b) for i in member.of(Dispatch))
    assert [(h.members, len(h.leases), h.coordinator_error) for h in healths] == [(2, 6, None)] * 2
    assert lp.counters.identifies_throttled == 0
    peak = lp.call(lambda p, now: dict(p.shards.peak_live))
    assert all(peak[s] == 1 for s in range(12)), f"a shard was served twice at once: {peak}"
    assert redis_client.keys("qqproto:*:lease:*") == [], "leaving released every lease"


@pytest.mark.platform(shards_suggested=4, max_concurrency=2, identify_window=WINDOW)
async def test_a_shard_handed_to_a_newcomer_resumes_there_without_identifying(
    open_shards: Callable[..., Any], lp: LoopbackPlatform, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    async with members(open_shards, lp, redis_url, tmp_path, ["a"]) as (a,):
        await wait_until(lambda: len(a.of(Ready)) == 4)
        before = push_to_shards(lp, list(range(4)), 3, "before")
        await wait_until(lambda: len(a.of(Dispatch)) == len(before))
        async with members(open_shards, lp, redis_url, tmp_path, ["b"]) as (b,):
            await wait_until(lambda: len(b.of(Resumed)) == 2 and len(a.owned()) == 2)
            after = push_to_shards(lp, list(range(4)), 3, "after")
            await wait_until(lambda: len(a.of(Dispatch)) + len(b.of(Dispatch)) >= len(before) + len(after))
    handed = {item.shard for item in a.of(ShardReleased)}
    assert len(handed) == 2 and handed == b.owned() and handed == {item.shard for item in b.of(Resumed)}
    assert {item.event.reason for item in a.of(ShardReleased)} == {"handed to another process"}
    assert lp.counters.identifies == 4, "a handed-on shard identified instead of resuming"
    got = Counter(item.event.event_id for member in (a, b) for item in member.of(Dispatch))
    assert set(got) == set(before) | set(after) and set(got.values()) == {1}, "every event exactly once"


@pytest.mark.platform(shards_suggested=2, max_concurrency=2, identify_window=WINDOW)
async def test_a_shard_whose_lease_is_lost_stops_at_once_without_a_close_frame(
    open_shards: Callable[..., Any], lp: LoopbackPlatform, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    thief = RedisCoordinator(redis_url, lp.platform.config.app_id, member_id="thief")
    try:
        async with members(open_shards, lp, redis_url, tmp_path, ["a"]) as (a,):
            await wait_until(lambda: len(a.of(Ready)) == 2 and a_session_on(lp, range(2)))
            closes = dict(lp.counters.close_codes_received)
            redis_client.delete(*redis_client.keys("qqproto:*:lease:0"))  # it expired while nobody looked...
            assert thief.claim(0, 60.0) is not None  # ...and another process took it
            await wait_until(lambda: a.of(ShardReleased, 0) != [])
            assert a.of(ShardReleased, 0)[0].event.reason.startswith("lease lost")
            await wait_until(lambda: lp.call(lambda p, now: p.shards.live(0)) == 0, timeout=2.0)
            orphaned = push_to_shards(lp, [0], 3, "orphaned")
            later = push_to_shards(lp, [1], 3, "later")
            await wait_until(lambda: set(later) <= {i.event.event_id for i in a.of(Dispatch)})
            assert not set(orphaned) & {i.event.event_id for i in a.of(Dispatch)}, "a lost shard handed out events"
            assert lp.counters.close_codes_received == closes, "the lost shard's socket said goodbye"
            assert a.owned() == {1} and a.shards.health().keys() == {1}
    finally:
        thief.close()


@pytest.mark.platform(shards_suggested=2, max_concurrency=2, identify_window=WINDOW)
async def test_a_cancelled_member_still_releases_its_leases(
    open_shards: Callable[..., Any], lp: LoopbackPlatform, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    coordinator = RedisCoordinator(redis_url, lp.platform.config.app_id, member_id="a")
    store = SQLiteSessionStore(tmp_path / "sessions.db")
    options: dict[str, Any] = {"ssl_context": lp.client_ssl_context(), "identify_window": WINDOW}
    try:
        with anyio.CancelScope() as scope:
            async with open_shards(
                client_config(lp), "auto", coordinator=coordinator, session_store=store, **options
            ) as shards:
                await wait_until(lambda: len(coordinator.owners(2)) == 2 and None not in coordinator.owners(2).values())
                assert sorted(shards.fleet_health().leases) == [0, 1]
                scope.cancel()
                await anyio.sleep_forever()
        await wait_until(lambda: redis_client.keys("qqproto:*:lease:*") == [])
    finally:
        store.close()
        coordinator.close()


@pytest.mark.parametrize(
    ("shards", "options", "message"),
    [
        (range(4), {}, "give a session store"),
        ([1, 2], {"shard_count": 4, "session_store": "store"}, "whole fleet's"),
        (range(4), {"session_store": object()}, "must be fenced"),
        (range(4), {"session_store": "store", "lease_ttl": 0}, "lease_ttl must be a number of seconds > 0"),
    ],
)
async def test_fleet_misuse_is_named(
    open_shards: Callable[..., Any], tmp_path: Path, shards: Any, options: dict[str, Any], message: str
) -> None:
    if options.get("session_store") == "store":
        options["session_store"] = SQLiteSessionStore(tmp_path / "sessions.db")
    with pytest.raises(LocalProtocolError, match=message):
        open_shards(GatewayConfig("1", "secret"), shards, coordinator=object(), **options)
