"""Timer wake-ups of an idle connection, against the heartbeats it must send."""

from __future__ import annotations

from qqproto.testing import PlatformConfig

from ._pair import Pair
from ._settings import Settings
from ._stats import Figures, median

__all__ = ["run"]

HEARTBEAT_RATIO = 0.8


def run(settings: Settings) -> Figures:
    """Wake-ups per idle connection per minute over expected heartbeats per minute, median over connections."""
    hours = settings.idle_hours
    config = PlatformConfig()
    per_minute = 60.0 / (config.heartbeat_interval_ms / 1000 * HEARTBEAT_RATIO)
    ratios = []
    for seed in range(settings.reps):
        pair = Pair(seed, config).connect()
        start, wakeups = pair.now, pair.wakeups
        pair.run_until(start + hours * 3600)
        minutes = (pair.now - start) / 60
        ratios.append((pair.wakeups - wakeups) / minutes / per_minute)
    return {"idle_wakeups_per_minute": median(ratios)}
