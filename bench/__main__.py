"""``python -m bench``: run every benchmark and print each figure against its goal."""

from __future__ import annotations

import argparse
import json
import operator
import sys
import time
from collections.abc import Callable

from qqproto._payloads import JSON_PARSER

from . import decode, e2e, heartbeat, memory, recovery, shards, sim, store, wakeups, webhook
from ._settings import FULL, QUICK, Settings
from ._stats import Figures

#: Each key with its goal: (comparison, bound), or None where the figure is only reported.
GOALS: dict[str, tuple[str, float] | None] = {
    "decode_vs_aiohttp": (">=", 1.0),
    "decode_json_vs_aiohttp": None,
    "decode_vs_wsproto_floor": None,
    "decode_vs_json_limit": None,
    "e2e_best_vs_aiohttp": (">=", 1.0),
    "e2e_vs_aiohttp": (">=", 0.5),
    "heartbeat_p99_lateness_ms_thread": ("<=", 50.0),
    "heartbeat_p99_lateness_ms": None,
    "recovery_vs_floor": ("<=", 1.5),
    "memory_per_connection_bytes": ("<=", 32768.0),
    "idle_wakeups_per_minute": ("<=", 1.05),
    "sim_speed": (">=", 500000.0),
    "store_sqlite_vs_none": (">=", 0.9),
    "store_redis_vs_none": (">=", 0.8),
    "restart_first_event_vs_identify": None,
    "webhook_app_vs_aiohttp": (">=", 1.0),
    "webhook_verify_floor_vs_app": None,
    "webhook_e2e_events_per_second": None,
    "shards_memory_per_shard_bytes": ("<=", 32768.0),
    "shards_idle_wakeups_vs_heartbeats": ("<=", 1.05),
    "shards_idle_cpu_seconds_per_shard_minute": None,
    "shards_bringup_vs_floor": ("<=", 1.05),
}
BENCHMARKS: dict[str, Callable[[Settings], Figures]] = {
    "decode": decode.run,
    "e2e": e2e.run,
    "heartbeat": heartbeat.run,
    "recovery": recovery.run,
    "memory": memory.run,
    "wakeups": wakeups.run,
    "sim": sim.run,
    "store": store.run,
    "webhook": webhook.run,
    "shards": shards.run,
}
_COMPARE = {">=": operator.ge, "<=": operator.le}


def run_all(settings: Settings, progress: Callable[[str], None] = lambda line: None) -> Figures:
    """Every figure, keyed as in :data:`GOALS`."""
    figures: Figures = {}
    for name, benchmark in BENCHMARKS.items():
        started = time.perf_counter()
        figures.update(benchmark(settings))
        progress(f"{name}: {time.perf_counter() - started:.1f} s")
    return {key: figures[key] for key in GOALS}


def met(key: str, value: float | dict[str, float]) -> bool | None:
    """Whether ``value`` meets the key's goal (every transport's, for a per-transport figure); None: no goal."""
    goal = GOALS[key]
    if goal is None:
        return None
    compare, bound = _COMPARE[goal[0]], goal[1]
    values = value.values() if isinstance(value, dict) else [value]
    return all(compare(v, bound) for v in values)


def rounded(figures: Figures) -> Figures:
    """Figures to three decimals, per-transport ones included."""
    return {
        key: {k: round(v, 3) for k, v in value.items()} if isinstance(value, dict) else round(value, 3)
        for key, value in figures.items()
    }


def table(figures: Figures) -> str:
    """The figures as a plain-text table with their goals."""
    rows = [("key", "value", "goal", "met")]
    for key, shown in rounded(figures).items():
        goal = GOALS[key]
        text = ", ".join(f"{k} {v:g}" for k, v in shown.items()) if isinstance(shown, dict) else f"{shown:g}"
        verdict = {None: "", True: "yes", False: "NO"}[met(key, figures[key])]
        rows.append((key, text, "report" if goal is None else f"{goal[0]} {goal[1]:g}", verdict))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--quick", action="store_true", help="shorter runs: a check in under two minutes")
    parser.add_argument(
        "--only",
        choices=["botpy", *BENCHMARKS],
        help="one benchmark; botpy: plain botpy against qqproto_botpy (~7 min, not in the full run)",
    )
    args = parser.parse_args(argv)
    progress = lambda line: print(line, file=sys.stderr, flush=True)
    if args.only == "botpy":
        from . import botpy_side  # needs the botpy extra

        print(botpy_side.markdown(botpy_side.run(), botpy_side.FULL_PLAN))
        return 0
    progress(f"the core parses gateway messages with {JSON_PARSER}")
    settings = QUICK if args.quick else FULL
    if args.only is not None:
        figures = {key: value for key, value in BENCHMARKS[args.only](settings).items() if key in GOALS}
    else:
        figures = run_all(settings, progress)
    print(json.dumps(rounded(figures)) if args.json else table(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
