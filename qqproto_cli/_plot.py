"""The timeline of a simulated run as a picture: the client's state over time, reconnects marked by cause."""

from __future__ import annotations

from qqproto.testing import Report

LEVELS = {
    "connected": 4,
    "resuming": 3,
    "identifying": 3,
    "connecting": 2,
    "locating": 2,
    "authenticating": 2,
    "waiting": 1,
    "idle": 0,
    "closing": 0,
    "closed": 0,
    "fatal": 0,
}


def plot_timeline(report: Report, path: str) -> None:
    """Write a PNG of the run's timeline to ``path``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("qqproto simulate --plot needs matplotlib: pip install 'qqproto[plot]'") from None

    day = 86400.0
    changes = [entry for entry in report.timeline if entry.cause is None]
    xs = [entry.at / day for entry in changes] + [report.days]
    ys = [LEVELS.get(entry.state, 0) for entry in changes]
    ys.append(ys[-1] if ys else 0)
    figure, (states, causes) = plt.subplots(
        2, 1, figsize=(12, 6), sharex=True, gridspec_kw={"height_ratios": [2, 1]}
    )
    states.step(xs, ys, where="post", linewidth=0.8)
    states.set_yticks([1, 2, 3, 4], ["waiting", "connecting", "identify or resume", "connected"])
    states.set_title(
        f"{report.plan} plan, seed {report.seed}: uptime {report.uptime_ratio:.4%}, "
        f"lost {report.events_lost}, duplicated {report.events_duplicated}"
    )
    reconnects = [entry for entry in report.timeline if entry.cause is not None]
    names = sorted({entry.cause or "" for entry in reconnects})
    for row, name in enumerate(names):
        times = [entry.at / day for entry in reconnects if entry.cause == name]
        causes.scatter(times, [row] * len(times), s=8, label=f"{name} ({len(times)})")
    causes.set_yticks(range(len(names)), names, fontsize=7)
    causes.set_xlabel("day")
    causes.set_title("reconnects by cause", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
