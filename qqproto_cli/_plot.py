"""A simulated run as one picture on a shared time axis: outages, uptime per day, reconnects, throughput, faults."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from qqproto.testing import Report

DAY = 86400.0
HOUR = 3600.0
#: The fault that takes the network away: shaded across every panel, so what follows it lines up.
OUTAGE_FAULT = "network outage"
#: The narrowest a drawn outage gets, as a share of the run: a 5 s drop in 30 days is still seen.
MIN_BAR_SHARE = 0.0015


def plot_timeline(report: Report, path: str) -> None:
    """Write a PNG of the run to ``path``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("qqproto simulate --plot needs matplotlib: pip install 'qqproto[plot]'") from None

    faults = sorted({name for _, name, _ in report.fault_log})
    figure, axes = plt.subplots(
        5,
        1,
        figsize=(14, 11),
        sharex=True,
        gridspec_kw={"height_ratios": [2.2, 1.4, 2.0, 1.6, 0.35 * max(len(faults), 2) + 0.4]},
    )
    outages, uptime, reconnects, throughput, struck = axes
    figure.suptitle(
        f"{report.plan} plan, {report.days:g} days, seed {report.seed}: uptime {report.uptime_ratio:.3%}, "
        f"longest outage {report.longest_outage_s:.3g} s, events lost {report.events_lost}, "
        f"duplicated {report.events_duplicated}",
        fontsize=12,
    )
    _outages(outages, report)
    _uptime_per_day(uptime, report)
    _reconnects(reconnects, report)
    _throughput(throughput, report)
    _faults(struck, report, faults)
    for ax in axes:
        for at, name, value in report.fault_log:
            if name == OUTAGE_FAULT:
                end = max(at + value, at + report.days * DAY * MIN_BAR_SHARE)
                ax.axvspan(at / DAY, end / DAY, color="tab:red", alpha=0.12, linewidth=0)
        ax.grid(axis="x", alpha=0.3)
        ax.margins(x=0)
    struck.set_xlim(0, report.days)
    _time_ticks(struck, report.days)
    figure.align_ylabels(axes)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _outages(ax: Any, report: Report) -> None:
    """Each stretch of a second or more without a live session: a bar where it began, as tall as it lasted."""
    min_width = report.days * MIN_BAR_SHARE
    lengths = [end - start for start, end in report.outages]
    for (start, _), seconds in zip(report.outages, lengths):
        if seconds >= 1:
            ax.bar(start / DAY, seconds, width=max(seconds / DAY, min_width), align="edge", color="tab:red")
    ax.set_yscale("log")
    ax.set_ylim(0.7, max(lengths + [60.0]) * 3)
    ax.set_ylabel("down for (s)")
    brief = sum(1 for seconds in lengths if seconds < 1)
    ax.set_title(
        f"outages of a second or more, as tall as they lasted: {len(lengths) - brief} "
        f"({sum(1 for s in lengths if s >= 60)} of a minute or more); "
        f"{brief} shorter ones (a prompt resume) not drawn",
        fontsize=9,
        loc="left",
    )


def _uptime_per_day(ax: Any, report: Report) -> None:
    """The share of each day spent with a live session."""
    days = max(1, math.ceil(report.days))
    down = [0.0] * days
    for start, end in report.outages:
        while start < end:
            day = min(int(start // DAY), days - 1)
            cut = min(end, (day + 1) * DAY)
            down[day] += cut - start
            start = cut
    lengths = [min(DAY, report.days * DAY - day * DAY) for day in range(days)]
    shares = [100.0 * (1 - d / length) if length > 0 else 100.0 for d, length in zip(down, lengths)]
    widths = [length / DAY for length in lengths]
    xs = [day + width / 2 for day, width in enumerate(widths)]
    bars = ax.bar(xs, shares, width=[0.8 * width for width in widths], color="tab:green")
    if days <= 31:
        ax.bar_label(bars, labels=[f"{share:.2f}" for share in shares], fontsize=7, padding=1)
    floor = min(shares)
    ax.set_ylim(max(0.0, floor - (100.0 - floor) * 0.6 - 0.05), 100.0 + (100.0 - floor) * 0.35 + 0.02)
    ax.set_ylabel("uptime (%)")
    ax.set_title("uptime per day", fontsize=9, loc="left")


def _reconnects(ax: Any, report: Report) -> None:
    """Reconnects per bin, stacked by the reason the client gave."""
    width = _bin_width(report.days)
    bins = math.ceil(report.days * DAY / width)
    counts: dict[str, list[int]] = {}
    for entry in report.timeline:
        if entry.cause is not None:
            row = counts.setdefault(entry.cause, [0] * bins)
            row[min(int(entry.at // width), bins - 1)] += 1
    xs = [(b + 0.5) * width / DAY for b in range(bins)]
    bottom = [0] * bins
    for cause in sorted(counts, key=lambda c: -sum(counts[c])):
        row = counts[cause]
        ax.bar(xs, row, width=0.85 * width / DAY, bottom=bottom, label=f"{cause} ({sum(row)})")
        bottom = [b + r for b, r in zip(bottom, row)]
    ax.set_ylabel(f"reconnects / {_bin_name(width)}")
    ax.set_title("reconnects by reason", fontsize=9, loc="left")
    if counts:
        ax.legend(fontsize=7, ncol=min(4, len(counts)), loc="upper left", framealpha=0.85)
        ax.set_ylim(0, max(bottom) * 1.45 + 1)


def _throughput(ax: Any, report: Report) -> None:
    """Dispatches delivered to the application per hour; on long runs the mean over each 6 hours."""
    hours = math.ceil(report.days * 24)
    step = 1 if report.days <= 10 else 6
    per_hour: Counter[int] = report.delivered_per_hour
    starts = range(0, hours, step)
    ys = [sum(per_hour.get(h, 0) for h in range(start, min(start + step, hours))) / step for start in starts]
    xs = [start * HOUR / DAY for start in starts] + [hours * HOUR / DAY]
    ax.stairs(ys, xs, fill=True, color="tab:blue", alpha=0.7)
    ax.set_ylabel("events / hour")
    mean = "" if step == 1 else f", the hourly mean over each {step} h"
    ax.set_title(f"event throughput: {report.events_delivered} delivered{mean}", fontsize=9, loc="left")


def _faults(ax: Any, report: Report, faults: list[str]) -> None:
    """One row per kind of fault, a tick where each struck."""
    rows = [[at / DAY for at, name, _ in report.fault_log if name == fault] for fault in faults]
    if rows:
        ax.eventplot(rows, lineoffsets=range(len(rows)), linelengths=0.7, linewidths=1.0, colors="tab:purple")
    ax.yaxis.tick_right()  # the names are long: on the right they leave the other panels their width
    ax.set_yticks(range(len(faults)), [f"{fault} ({len(row)})" for fault, row in zip(faults, rows)], fontsize=7)
    ax.set_ylim(-0.6, max(len(faults), 1) - 0.4)
    title = "faults struck (network outages shaded on every panel)" if faults else "faults struck: none"
    ax.set_title(title, fontsize=9, loc="left")


def _bin_width(days: float) -> float:
    """Hours for runs of up to 3 days, quarter days up to 10, whole days beyond."""
    if days <= 3:
        return HOUR
    return DAY / 4 if days <= 10 else DAY


def _bin_name(width: float) -> str:
    return {HOUR: "hour", DAY / 4: "6 h", DAY: "day"}[width]


def _time_ticks(ax: Any, days: float) -> None:
    """Days on the axis, a tick each day or each few; runs of up to 2 days are labelled in hours."""
    if days <= 2:
        hours = range(0, math.floor(days * 24) + 1, 2 if days <= 1 else 4)
        ax.set_xticks([h / 24 for h in hours], [str(h) for h in hours])
        ax.set_xlabel("hour of the run")
        return
    step = 1 if days <= 10 else 2 if days <= 31 else math.ceil(days / 15)
    ax.set_xticks([float(day) for day in range(0, math.floor(days) + 1, step)])
    ax.set_xlabel("day of the run")
