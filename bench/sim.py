"""Simulation speed: simulated seconds per wall second under the production fault plan."""

from __future__ import annotations

from qqproto.testing import PLANS, Simulation

from ._settings import Settings
from ._stats import Figures, median, timed

__all__ = ["run"]


def run(settings: Settings) -> Figures:
    """Median over seeds of simulated over wall seconds (an absolute rate, not a ratio)."""
    days = settings.sim_days
    rates = []
    for seed in range(1, settings.reps + 1):
        simulation = Simulation(PLANS["production"], seed=seed, days=days)
        rates.append(days * 86400 / timed(simulation.run))
    return {"sim_speed": median(rates)}
