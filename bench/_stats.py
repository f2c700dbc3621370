"""Repetitions, medians and rates: every figure is a median over repetitions taken in the same run."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

__all__ = ["Figures", "median", "percentile", "rate", "timed"]

#: What a benchmark reports: each key's figure, a number or one number per transport.
Figures = dict[str, float | dict[str, float]]


def median(values: Sequence[float]) -> float:
    """The median; the figure every ratio reports."""
    return float(statistics.median(values))


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile by nearest rank (0.99 for p99)."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def timed(fn: Callable[[], object]) -> float:
    """Wall seconds one call of ``fn`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def rate(count: int, seconds: float) -> float:
    """Items per second."""
    return count / seconds
