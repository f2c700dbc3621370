"""How long each benchmark runs: the full run, the quick check, and the smoke test's tiny run."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FULL", "QUICK", "SMOKE", "Settings"]


@dataclass(frozen=True)
class Settings:
    """Sizes and repetition counts for one run of every benchmark."""

    reps: int
    decode_messages: int
    e2e_messages: int
    heartbeat_interval_ms: int
    recovery_closes: int
    idle_connections: int
    idle_hours: float
    sim_days: float
    shards: int
    shards_max_concurrency: int
    shards_identify_window: float
    shards_heartbeat_ms: int
    shards_idle_seconds: float


FULL = Settings(
    reps=7,
    decode_messages=20000,
    e2e_messages=20000,
    heartbeat_interval_ms=500,
    recovery_closes=21,
    idle_connections=1000,
    idle_hours=24.0,
    sim_days=30.0,
    shards=1000,
    shards_max_concurrency=64,
    shards_identify_window=1.0,
    shards_heartbeat_ms=5000,
    shards_idle_seconds=20.0,
)
QUICK = Settings(
    reps=5,
    decode_messages=4000,
    e2e_messages=5000,
    heartbeat_interval_ms=250,
    recovery_closes=9,
    idle_connections=1000,
    idle_hours=3.0,
    sim_days=5.0,
    shards=1000,
    shards_max_concurrency=64,
    shards_identify_window=1.0,
    shards_heartbeat_ms=5000,
    shards_idle_seconds=10.0,
)
SMOKE = Settings(
    reps=1,
    decode_messages=100,
    e2e_messages=50,
    heartbeat_interval_ms=100,
    recovery_closes=1,
    idle_connections=5,
    idle_hours=0.5,
    sim_days=0.01,
    shards=5,
    shards_max_concurrency=5,
    shards_identify_window=0.2,
    shards_heartbeat_ms=500,
    shards_idle_seconds=1.0,
)
