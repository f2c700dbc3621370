"""``qqproto simulate``: days of a bot's life under a fault plan, in virtual time."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from qqproto.testing import PLANS, Report, Simulation

from ._table import render


def add_parser(commands: Any) -> None:
    """Register the subcommand."""
    parser = commands.add_parser("simulate", help="simulate days of gateway life against the fake platform")
    parser.add_argument("--days", type=float, default=30.0, help="simulated days (default 30)")
    parser.add_argument("--seed", type=int, default=1, help="random seed; the same seed gives the same report")
    parser.add_argument("--plan", choices=sorted(PLANS), default="production", help="fault plan (default production)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--plot", metavar="FILE.png", help="draw the timeline (needs the 'plot' extra)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the simulation and print its report; exit 1 when the client lost, repeated or missed anything."""
    if args.days <= 0:
        print("qqproto simulate: --days must be positive", file=sys.stderr)
        return 2
    show_progress = sys.stderr.isatty() and not args.json

    def progress(fraction: float) -> None:
        if show_progress:
            print(
                f"\rsimulating: day {fraction * args.days:6.1f} of {args.days:g} ({fraction:4.0%})",
                end="",
                file=sys.stderr,
            )

    started = time.perf_counter()
    report = Simulation(PLANS[args.plan], seed=args.seed, days=args.days, progress=progress).run()
    wall = time.perf_counter() - started
    if show_progress:
        print("\r" + " " * 60 + "\r", end="", file=sys.stderr)
    figures = report.to_dict()
    figures["sim_seconds_per_wall_second"] = round(args.days * 86400.0 / wall) if wall > 0 else None
    if args.json:
        print(json.dumps(figures, ensure_ascii=False))
    else:
        print(render([(key.replace("_", " "), value) for key, value in figures.items()], f"simulation: {args.plan}"))
    if args.plot:
        from ._plot import plot_timeline

        plot_timeline(report, args.plot)
    return 0 if healthy(report) else 1


def healthy(report: Report) -> bool:
    """True when the client kept every promise: nothing lost or repeated, never deaf, never fatal."""
    return (
        report.events_lost == 0 and report.events_duplicated == 0 and report.silent_dead_s == 0 and report.fatal is None
    )
