"""A fleet: three real ``qqproto connect --shards auto --coordinator`` processes over 12 shards.

Each test runs with asyncio workers, and with trio workers beside an asyncio one (the first, the
one killed or paused, on trio): the runtimes share leases, sessions and the identify ration.

The platform is the loopback server ``qqproto serve-fake`` runs, here in the test's process so
the test can push events into each shard and read who serves it; leases and sessions live in a
real redis-server. Workers are killed with SIGKILL, and paused with SIGSTOP past their leases.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from qqproto import session_key
from qqproto.testing import PlatformConfig
from qqproto.testing.serve import LoopbackPlatform
from qqproto_stores import open_session_store

SHARDS = 12
LEASE_TTL = 2.0
WINDOW = 0.5
MAX_CONCURRENCY = 4
WAIT = 40.0
#: A takeover may take the TTL, one renewal round, a connect and a resume: this is the margin over the TTL.
TAKEOVER_MARGIN = 3.0


class Worker:
    """One fleet worker process and the JSON lines it printed, read on a thread."""

    def __init__(
        self,
        lp: LoopbackPlatform,
        redis_url: str,
        health_file: str,
        store: str | None = None,
        transport: str = "asyncio",
    ) -> None:
        pc = lp.platform.config
        command = [
            sys.executable, "-m", "qqproto_cli", "connect",
            "--app-id", pc.app_id, "--transport", transport,
            "--api-base", lp.api_base, "--token-url", lp.token_url, "--ca-file", lp.ca_pem_path,
            "--session-store", store or redis_url, "--shards", "auto", "--coordinator", redis_url,
            "--lease-ttl", str(LEASE_TTL), "--identify-window", str(WINDOW), "--health-file", health_file,
        ]  # fmt: skip
        env = {**os.environ, "QQBOT_SECRET": pc.client_secret}
        self.health_file = health_file
        self.store = store or redis_url
        self.stderr_file = health_file + ".stderr"  # a file, not a pipe: a worker that logs much never blocks on it
        with open(self.stderr_file, "w") as stderr:
            self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
        self.lines: list[dict[str, Any]] = []
        self.changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.changed:
                self.lines.append({**json.loads(line), "at": time.monotonic()})
                self.changed.notify_all()

    def owned(self) -> set[int]:
        """The shards this worker serves now, by its ShardClaimed and ShardReleased lines."""
        mine: set[int] = set()
        with self.changed:
            for line in self.lines:
                if line["event"] == "ShardClaimed":
                    mine.add(line["shard"])
                elif line["event"] == "ShardReleased":
                    mine.discard(line["shard"])
        return mine

    def seen(self, kind: str) -> list[dict[str, Any]]:
        with self.changed:
            return [line for line in self.lines if line["event"] == kind]

    def stderr(self) -> str:
        with open(self.stderr_file) as handle:
            return handle.read()[-3000:]

    def story(self) -> str:
        """What happened to its shards, apart from events: claims, releases, sessions started and forgotten."""
        with self.changed:
            lines = [
                line for line in self.lines if line["event"] not in ("Dispatch", "HeartbeatSent", "HeartbeatAcked")
            ]
        return " ".join(f"{line['event']}:{line.get('shard')}@{line['at'] % 1000:.2f}" for line in lines[-40:])

    def shard_states(self) -> str:
        """Each shard's state and why, from the health file: what a failure message needs."""
        try:
            with open(self.health_file) as handle:
                shards = json.load(handle).get("shards", {})
        except (OSError, ValueError):
            return "(no health file)"
        return ", ".join(
            f"{k}:{h.get('state')}/{h.get('identify_permission')}/{h.get('last_disconnect_reason')}"
            for k, h in shards.items()
        )

    def end(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_until(condition: Callable[[], bool], what: str, workers: list[Worker], timeout: float = WAIT) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` and the workers' state if it never does."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            state = [(w.proc.pid, sorted(w.owned()), w.shard_states(), w.story(), w.stderr()) for w in workers]
            pytest.fail(f"timed out waiting for {what}; workers: {state}")
        time.sleep(0.05)


@pytest.fixture
def lp() -> Iterator[LoopbackPlatform]:
    config = PlatformConfig(
        heartbeat_interval_ms=1000,
        shards_suggested=SHARDS,
        max_concurrency=MAX_CONCURRENCY,
        identify_window=WINDOW,
    )
    with LoopbackPlatform(config=config, seed=5) as server:
        yield server


#: The workers' transports, by fleet: the first worker is the one a test kills or pauses.
FLEETS = {"asyncio": ("asyncio", "asyncio", "asyncio"), "trio": ("trio", "asyncio", "trio")}


@pytest.fixture(params=sorted(FLEETS))
def transports(request: pytest.FixtureRequest) -> tuple[str, ...]:
    """The runtimes of a fleet's three workers."""
    return FLEETS[request.param]


@pytest.fixture
def fleet(
    lp: LoopbackPlatform, redis_url: str, redis_client: Any, tmp_path: Any, transports: tuple[str, ...]
) -> Iterator[list[Worker]]:
    workers = [
        Worker(lp, redis_url, str(tmp_path / f"health-{n}.json"), transport=transport)
        for n, transport in enumerate(transports)
    ]
    try:
        yield workers
    finally:
        for worker in workers:
            worker.end()


def spread_evenly(workers: list[Worker]) -> bool:
    owned = [w.owned() for w in workers if w.proc.poll() is None]
    together = set().union(*owned)
    return (
        together == set(range(SHARDS))
        and sum(map(len, owned)) == SHARDS
        and max(map(len, owned)) - min(map(len, owned)) <= 1
    )


def push(lp: LoopbackPlatform, tag: str, per_shard: int) -> list[str]:
    """Push ``per_shard`` events into every shard's session; their ids."""
    ids = []
    for shard in range(SHARDS):
        for n in range(per_shard):
            event_id = f"C2C_MESSAGE_CREATE:{tag}-{shard}-{n}"
            lp.call(lambda p, now: p.push_event("C2C_MESSAGE_CREATE", {"id": event_id}, now, event_id, shard=shard))
            ids.append(event_id)
    return ids


def delivered(workers: list[Worker]) -> list[str]:
    return [line["event_id"] for w in workers for line in w.seen("Dispatch")]


def identifies_per_bucket_window(lp: LoopbackPlatform) -> int:
    """The most Identifies the fake admitted in one bucket within one window, across every process."""
    times: dict[int, list[float]] = lp.call(lambda p, now: {k: list(v) for k, v in p.shards.identify_times.items()})
    most = 0
    for bucket in range(MAX_CONCURRENCY):
        stamps = sorted(t for shard, ts in times.items() if shard % MAX_CONCURRENCY == bucket for t in ts)
        for i, start in enumerate(stamps):
            most = max(most, sum(1 for t in stamps[i:] if t - start < WINDOW))
    return most


def steady(lp: LoopbackPlatform, workers: list[Worker]) -> None:
    """Every shard served, and its session saved: a takeover from here resumes every shard."""
    wait_until(lambda: spread_evenly(workers), "12 shards spread evenly over 3 workers", workers)
    store = open_session_store(workers[0].store)
    app_id = lp.platform.config.app_id

    def every_session_saved() -> bool:
        current = lp.call(lambda p, now: {s: p._current.get(s) for s in range(SHARDS)})
        saved = {s: store.load(session_key(app_id, (s, SHARDS))) for s in range(SHARDS)}
        return all(
            current[s] is not None and saved[s] is not None and saved[s].session_id == current[s].session_id
            for s in range(SHARDS)
        )

    wait_until(every_session_saved, "a session on every shard, saved in the store", workers)


def test_steady_state_every_shard_one_owner_every_event_once(lp: LoopbackPlatform, fleet: list[Worker]) -> None:
    steady(lp, fleet)
    ids = push(lp, "steady", 10)
    wait_until(lambda: set(ids) <= set(delivered(fleet)), "every event delivered", fleet)
    got = delivered(fleet)
    assert sorted(got) == sorted(ids), "an event was delivered twice, or one nobody pushed"
    peak = lp.call(lambda p, now: dict(p.shards.peak_live))
    assert all(peak[s] == 1 for s in range(SHARDS)), peak
    assert identifies_per_bucket_window(lp) <= 1
    assert lp.platform.counters.close_codes_sent.get(4008, 0) == 0, "an Identify was over the ration"
    with open(fleet[0].health_file) as handle:
        health = json.load(handle)
    assert health["alive"] and health["fleet"]["members"] == 3, health
    assert health["fleet"]["members"] == 3 and health["fleet"]["coordinator_error"] is None


def test_a_killed_worker_is_taken_over_and_resumed_within_the_ttl(lp: LoopbackPlatform, fleet: list[Worker]) -> None:
    steady(lp, fleet)
    before = push(lp, "before", 5)
    wait_until(lambda: set(before) <= set(delivered(fleet)), "the first events", fleet)
    victim, others = fleet[0], fleet[1:]
    orphans = victim.owned()
    identifies = lp.platform.counters.identifies
    victim.proc.kill()
    killed_at = time.monotonic()
    during = push(lp, "during", 5)  # queued in sessions nobody serves until the takeover

    def resumed_elsewhere() -> bool:
        return all(
            any(line["shard"] == s and line["at"] > killed_at for w in others for line in w.seen("Resumed"))
            for s in orphans
        )

    wait_until(resumed_elsewhere, "the dead worker's shards resumed elsewhere", fleet, LEASE_TTL + TAKEOVER_MARGIN + 5)
    took = max(line["at"] for w in others for line in w.seen("Resumed") if line["shard"] in orphans) - killed_at
    assert took <= LEASE_TTL + TAKEOVER_MARGIN, f"takeover took {took:.2f} s"
    assert lp.platform.counters.identifies == identifies, "a taken-over shard identified instead of resuming"
    after = push(lp, "after", 5)
    wanted = set(before) | set(during) | set(after)
    wait_until(lambda: wanted <= set(delivered(fleet)), "every event, none lost", fleet)
    wait_until(lambda: spread_evenly(others), "the 12 shards spread over the 2 live workers", fleet)


def stale_handouts(worker: Worker, stale: set[int], since: float) -> list[dict[str, Any]]:
    """Events ``worker`` printed after ``since`` for a shard of ``stale`` it had not claimed again first."""
    reclaimed: set[int] = set()
    handed: list[dict[str, Any]] = []
    with worker.changed:
        for line in worker.lines:
            if line["at"] <= since or line["shard"] not in stale:
                continue
            if line["event"] == "ShardClaimed":
                reclaimed.add(line["shard"])
            elif line["event"] == "Dispatch" and line["shard"] not in reclaimed:
                handed.append(line)
    return handed


def test_a_paused_worker_stops_its_stale_shards(lp: LoopbackPlatform, fleet: list[Worker], redis_client: Any) -> None:
    steady(lp, fleet)
    paused, others = fleet[0], fleet[1:]
    stale = paused.owned()
    paused.proc.send_signal(signal.SIGSTOP)
    stopped_at = time.monotonic()
    during = push(lp, "paused", 3)

    def taken_over() -> bool:
        return stale <= set().union(*(w.owned() for w in others)) and all(
            any(line["shard"] == s and line["at"] > stopped_at for w in others for line in w.seen("Resumed"))
            for s in stale
        )

    wait_until(taken_over, "the paused worker's shards taken over", fleet)
    lp.call(lambda p, now: p.shards.reset_peaks())  # from the sockets serving now: a stale one still counts
    continued_at = time.monotonic()
    paused.proc.send_signal(signal.SIGCONT)

    def dropped_all() -> bool:  # it may win some of them back later, as a member again
        return stale <= {line["shard"] for line in paused.seen("ShardReleased") if line["at"] > continued_at}

    wait_until(dropped_all, "the paused worker to stop its stale shards", fleet)
    after = push(lp, "continued", 3)
    wanted = set(during) | set(after)
    # Back in the fleet, the paused worker may win a share again: those events reach it anew.
    wait_until(lambda: wanted <= set(delivered(fleet)), "every event, to whoever owns its shard", fleet)
    assert stale_handouts(paused, stale, continued_at) == [], "it handed out events of shards it no longer owned"
    peak = lp.call(lambda p, now: dict(p.shards.peak_live))
    assert all(peak[s] == 1 for s in stale), f"a shard was served twice after the takeover: {peak}"
    # The store holds the last event its owners finished, never a stale write of the paused worker's.
    for shard in stale:
        owner_seqs = [line["seq"] for w in fleet for line in w.seen("Dispatch") if line["shard"] == shard]
        key = "qqproto:session:" + session_key(lp.platform.config.app_id, (shard, SHARDS))
        top = max(owner_seqs)
        wait_until(
            lambda key=key, top=top: json.loads(redis_client.get(key))["seq"] == top,
            f"shard {shard}'s stored seq to be its new owner's",
            fleet,
            5.0,
        )


def test_redis_unavailable_at_start_is_a_clear_error(
    lp: LoopbackPlatform, tmp_path: Any, transports: tuple[str, ...]
) -> None:
    worker = Worker(lp, "redis://127.0.0.1:9/0", str(tmp_path / "health.json"), transport=transports[0])
    assert worker.proc.wait(timeout=WAIT) == 1
    assert "127.0.0.1:9" in worker.stderr()


def read_health(worker: Worker) -> dict[str, Any]:
    try:
        with open(worker.health_file) as handle:
            return dict(json.load(handle))
    except (FileNotFoundError, ValueError):
        return {}


def test_redis_lost_mid_run_running_shards_keep_running(
    lp: LoopbackPlatform, tmp_path: Any, transports: tuple[str, ...]
) -> None:
    from stores.redis_server import restartable_redis

    with restartable_redis(tmp_path) as server:
        store = f"sqlite:{tmp_path / 'sessions.db'}"
        worker = Worker(lp, server.url, str(tmp_path / "health.json"), store=store, transport=transports[0])
        try:
            wait_until(lambda: worker.owned() == set(range(SHARDS)), "one worker serving all 12 shards", [worker])
            wait_until(lambda: len(worker.seen("Ready")) == SHARDS, "12 sessions", [worker])
            identifies = lp.platform.counters.identifies
            server.stop()
            during = push(lp, "outage", 3)
            wait_until(lambda: set(during) <= set(delivered([worker])), "events during the outage", [worker])

            def says_unreachable() -> bool:
                fleet = read_health(worker).get("fleet") or {}
                return "127.0.0.1" in (fleet.get("coordinator_error") or "")

            wait_until(says_unreachable, "the health file to say the coordinator is unreachable", [worker])
            assert read_health(worker)["alive"] and worker.owned() == set(range(SHARDS))
            assert worker.seen("ShardReleased") == [], "a shard was stopped while Redis was away"
            server.start()  # empty: every lease is gone, and is claimed again
            wait_until(
                lambda: (read_health(worker).get("fleet") or {}).get("coordinator_error", "x") is None,
                "the health file to say the coordinator is back",
                [worker],
            )
            wait_until(lambda: len(worker.seen("ShardClaimed")) == 2 * SHARDS, "every shard claimed again", [worker])
            after = push(lp, "back", 3)
            wait_until(lambda: set(after) <= set(delivered([worker])), "events after the outage", [worker])
            assert lp.platform.counters.identifies == identifies, "a re-claimed shard identified instead of resuming"
        finally:
            worker.end()


def test_a_fleet_worker_without_a_session_store_is_refused(redis_url: str) -> None:
    command = [sys.executable, "-m", "qqproto_cli", "connect", "--app-id", "1", "--shards", "auto"]
    done = subprocess.run(
        [*command, "--coordinator", redis_url],
        capture_output=True,
        text=True,
        env={**os.environ, "QQBOT_SECRET": "s"},
        timeout=WAIT,
    )
    assert done.returncode == 2 and "--session-store" in done.stderr, done.stderr
