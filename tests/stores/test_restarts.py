"""A real bot process (``qqproto connect``) killed or stopped mid-stream and started again, with a store.

The platform is the loopback server ``qqproto serve-fake`` runs, here in the test's process so
the test can push events and read its counters; the bot is a separate process, stopped with
SIGKILL (a crash) or SIGTERM (a deploy).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qqproto import session_key
from qqproto.testing import PlatformConfig
from qqproto.testing.serve import LoopbackPlatform
from qqproto_stores import open_session_store

WAIT = 30.0
EVENTS = 240


class Bot:
    """One ``qqproto connect`` process and the JSON lines it printed, read on a thread."""

    def __init__(self, lp: LoopbackPlatform, store: str, transport: str) -> None:
        pc = lp.platform.config
        command = [
            sys.executable, "-m", "qqproto_cli", "connect",
            "--app-id", pc.app_id, "--transport", transport,
            "--api-base", lp.api_base, "--token-url", lp.token_url,
            "--ca-file", lp.ca_pem_path, "--session-store", store,
        ]  # fmt: skip
        env = {**os.environ, "QQBOT_SECRET": pc.client_secret}
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(json.loads(line))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def dispatches(self) -> list[dict[str, Any]]:
        with self._changed:
            return [line for line in self.lines if line["event"] == "Dispatch"]

    def wait_for(self, count: int, kind: str = "Dispatch") -> None:
        """Block until ``count`` lines of ``kind`` were printed; fail with the bot's stderr if it ends first."""
        with self._changed:
            ok = self._changed.wait_for(
                lambda: sum(line["event"] == kind for line in self.lines) >= count or self.proc.poll() is not None,
                timeout=WAIT,
            )
            seen = sum(line["event"] == kind for line in self.lines)
        assert ok and seen >= count, f"saw {seen} {kind} lines of {count}; stderr: {self.stderr()}"

    def stop(self, signum: int) -> int:
        self.proc.send_signal(signum)
        code = self.proc.wait(timeout=WAIT)
        self._reader.join(WAIT)
        return code

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        assert self.proc.stderr is not None
        return self.proc.stderr.read()[-3000:]


@pytest.fixture
def lp() -> Iterator[LoopbackPlatform]:
    with LoopbackPlatform(config=PlatformConfig(heartbeat_interval_ms=2000), seed=3) as server:
        yield server


@pytest.fixture(params=["sqlite", "redis"])
def store_spec(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'sessions.db'}"
    request.getfixturevalue("redis_client")  # an empty database on a real redis-server
    return str(request.getfixturevalue("redis_url"))


def pusher(lp: LoopbackPlatform) -> tuple[threading.Thread, list[str]]:
    """Push EVENTS messages, a few at a time, while the test restarts the bot; the ids in order."""
    ids: list[str] = []
    pace = threading.Event()  # never set: its timed wait spaces the pushes, and the test never waits on it

    def push() -> None:
        for n in range(EVENTS):
            event_id = f"C2C_MESSAGE_CREATE:restart-{n}"
            lp.call(
                lambda p, now: p.push_event("C2C_MESSAGE_CREATE", {"id": f"m{n}", "content": str(n)}, now, event_id)
            )
            ids.append(event_id)
            pace.wait(0.004)

    return threading.Thread(target=push, daemon=True), ids


def first_run(lp: LoopbackPlatform, store_spec: str, transport: str) -> tuple[threading.Thread, list[str], Bot]:
    """A bot that identified, with events flowing, and 60 of them printed."""
    thread, pushed = pusher(lp)
    first = Bot(lp, store_spec, transport)
    first.wait_for(1, "Ready")
    thread.start()
    first.wait_for(60)
    return thread, pushed, first


def ids_of(lines: list[dict[str, Any]]) -> list[str]:
    return [line["event_id"] for line in lines]


def saved_seq(spec: str, lp: LoopbackPlatform) -> int | None:
    store = open_session_store(spec)
    try:
        state = store.load(session_key(lp.platform.config.app_id, (0, 1)))
    finally:
        store.close()  # type: ignore[attr-defined]
    return None if state is None else state.seq


@pytest.mark.parametrize("transport", ["asyncio", "thread"])
def test_a_killed_bot_restarted_with_a_store_resumes_and_misses_nothing(
    lp: LoopbackPlatform, store_spec: str, transport: str
) -> None:
    thread, pushed, first = first_run(lp, store_spec, transport)
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    before = first.dispatches()
    saved = saved_seq(store_spec, lp)
    assert saved is not None, "the crashed process had saved its progress"

    second = Bot(lp, store_spec, transport)
    thread.join(WAIT)
    second.wait_for(1, "Resumed")
    second.wait_for(len(pushed) - sum(line["seq"] <= saved for line in before))
    assert second.stop(signal.SIGTERM) == 0, second.stderr()
    after = second.dispatches()

    assert [line["event"] for line in second.lines].count("Ready") == 0, "the restart resumed; it did not identify"
    assert lp.counters.identifies == 1
    assert set(ids_of(before)) | set(ids_of(after)) == set(pushed), "nothing was lost"
    again = set(ids_of(before)) & set(ids_of(after))
    unfinished = {line["event_id"] for line in before if line["seq"] > saved}
    assert again <= unfinished, "only events the crashed process had not finished came again"
    assert len(ids_of(after)) == len(set(ids_of(after)))


@pytest.mark.parametrize("transport", ["asyncio", "trio", "thread"])
def test_a_bot_stopped_with_sigterm_restarts_with_every_event_exactly_once(
    lp: LoopbackPlatform, store_spec: str, transport: str
) -> None:
    thread, pushed, first = first_run(lp, store_spec, transport)
    assert first.stop(signal.SIGTERM) == 0, first.stderr()
    before = first.dispatches()
    assert saved_seq(store_spec, lp) == before[-1]["seq"], "the final save is the last event printed"
    assert 1000 not in lp.counters.close_codes_received

    second = Bot(lp, store_spec, transport)
    thread.join(WAIT)
    second.wait_for(1, "Resumed")
    second.wait_for(len(pushed) - len(before))
    assert second.stop(signal.SIGTERM) == 0, second.stderr()
    after = second.dispatches()

    assert lp.counters.identifies == 1
    assert ids_of(before) + ids_of(after) == pushed, "every event exactly once, in order"
