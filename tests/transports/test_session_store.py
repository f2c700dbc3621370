"""A restart with a session store resumes where the application stopped, on every transport."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from harness import client_config, push, run, wait_until

from qqproto import Ready, Resumed, SessionForgotten, SessionState, session_key
from qqproto.testing.serve import LoopbackPlatform
from qqproto_stores import RedisSessionStore, SQLiteSessionStore

pytestmark = pytest.mark.anyio


async def test_a_restart_resumes_where_the_application_stopped(
    transport: str, lp: LoopbackPlatform, tmp_path: Path
) -> None:
    store = SQLiteSessionStore(tmp_path / "sessions.db")
    config = client_config(lp)
    pushed = []
    async with run(transport, config, lp.client_ssl_context(), session_store=store) as client:
        ready = await client.next(Ready)
        pushed += push(lp, 15)
        first = await client.dispatches(10)  # five more arrive, but the application never takes them
    saved = store.load(session_key(config.app_id, config.shard))
    assert saved is not None and (saved.session_id, saved.seq) == (ready.session_id, first[-1].seq)
    assert 1000 not in lp.counters.close_codes_received, "a graceful close with a store keeps the session"

    pushed += push(lp, 5, start=15)  # while no process runs
    async with run(transport, config, lp.client_ssl_context(), session_store=store) as client:
        resumed = await client.next(Resumed)
        second = await client.dispatches(10)
    assert resumed.session_id == ready.session_id and client.of(Ready) == []
    delivered = [d.event_id for d in first + second]
    assert delivered == pushed, "every event exactly once, in order, across the restart"
    assert lp.counters.identifies == 1
    final = store.load(session_key(config.app_id, config.shard))
    assert final is not None and final.seq == second[-1].seq


async def test_a_stored_session_the_platform_forgot_is_replaced(
    transport: str, lp: LoopbackPlatform, tmp_path: Path
) -> None:
    store = SQLiteSessionStore(tmp_path / "sessions.db")
    config = client_config(lp)
    key = session_key(config.app_id, config.shard)
    store.save(key, SessionState("a-session-long-gone", 99, config.shard, 1.0))
    async with run(transport, config, lp.client_ssl_context(), session_store=store) as client:
        forgotten = await client.next(SessionForgotten)
        ready = await client.next(Ready)
        assert client.health().session_restore == "refused"
        push(lp, 3)
        await client.dispatches(3)
    assert "op 9" in forgotten.reason
    saved = store.load(key)
    assert saved is not None and saved.session_id == ready.session_id and saved.seq == 4


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_store_that_is_down_leaves_the_bot_running_and_health_says_so(
    transport: str, lp: LoopbackPlatform
) -> None:
    store = RedisSessionStore(f"redis://127.0.0.1:{unused_port()}/0", timeout=0.2)  # nothing listens there
    async with run(transport, client_config(lp), lp.client_ssl_context(), session_store=store) as client:
        await client.next(Ready)
        pushed = push(lp, 5)
        dispatches = await client.dispatches(5)
        await wait_until(lambda: client.health().session_store_error is not None)
        error = client.health().session_store_error
    assert [d.event_id for d in dispatches] == pushed
    assert error is not None and "ConnectionError" in error
