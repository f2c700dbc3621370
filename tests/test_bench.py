"""The benchmarks run and report every figure; a tiny configuration, and no timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("aiohttp", reason="the benchmarks' peers come with the bench extra")

ROOT = Path(__file__).resolve().parent.parent
SCALAR_KEYS = {
    "decode_vs_aiohttp",
    "decode_json_vs_aiohttp",
    "decode_vs_wsproto_floor",
    "decode_vs_json_limit",
    "e2e_best_vs_aiohttp",
    "heartbeat_p99_lateness_ms_thread",
    "recovery_vs_floor",
    "memory_per_connection_bytes",
    "idle_wakeups_per_minute",
    "sim_speed",
    "store_sqlite_vs_none",
    "store_redis_vs_none",
    "restart_first_event_vs_identify",
    "webhook_app_vs_aiohttp",
    "webhook_verify_floor_vs_app",
    "shards_memory_per_shard_bytes",
    "shards_idle_wakeups_vs_heartbeats",
    "shards_idle_cpu_seconds_per_shard_minute",
    "shards_bringup_vs_floor",
}
PER_TRANSPORT_KEYS = {"e2e_vs_aiohttp", "heartbeat_p99_lateness_ms"}
PER_RUNTIME_KEYS = {"webhook_e2e_events_per_second"}
RUN_TINY = "import json; from bench.__main__ import run_all; from bench._settings import SMOKE; print(json.dumps(run_all(SMOKE)))"


def test_every_benchmark_runs_and_reports_its_figures() -> None:
    done = subprocess.run(
        [sys.executable, "-c", RUN_TINY], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    figures = json.loads(done.stdout)
    assert set(figures) == SCALAR_KEYS | PER_TRANSPORT_KEYS | PER_RUNTIME_KEYS
    for key in PER_RUNTIME_KEYS:
        assert set(figures[key]) == {"asyncio", "trio"} and all(v > 0 for v in figures[key].values()), key
    for key in SCALAR_KEYS:
        assert isinstance(figures[key], float) and figures[key] >= 0, key
    for key in PER_TRANSPORT_KEYS:
        assert set(figures[key]) == {"asyncio", "trio", "thread"}, key
        assert all(isinstance(value, float) for value in figures[key].values()), key


def test_many_shards_reports_memory_wakeups_and_bringup_of_every_shard() -> None:
    run_shards = (
        "import json; from bench import shards; from bench._settings import SMOKE; print(json.dumps(shards.run(SMOKE)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", run_shards], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    figures = json.loads(done.stdout)
    assert set(figures) == {key for key in SCALAR_KEYS if key.startswith("shards_")}
    assert all(isinstance(value, float) and 0 < value < float("inf") for value in figures.values()), figures
    assert "5 READY" in done.stderr, done.stderr
