"""How long to wait before reconnecting: capped exponential backoff with jitter and cooldowns."""

from __future__ import annotations

import random

from ._config import GatewayConfig

__all__ = ["Backoff", "jittered_delay"]


def jittered_delay(base: float, cap: float, doublings: int, rng: random.Random) -> float:
    """``base`` doubled ``doublings`` times, capped at ``cap``, then drawn from its upper half."""
    ceiling = min(cap, base * 2.0 ** min(max(doublings, 0), 32))
    return ceiling * (0.5 + 0.5 * rng.random())


class Backoff:
    """Counts failed reconnects since the last healthy session and turns the count into a delay."""

    def __init__(self, config: GatewayConfig, rng: random.Random) -> None:
        self._config = config
        self._rng = rng
        self.attempts = 0
        self.quick_disconnects = 0

    def reset(self) -> None:
        """A session stayed healthy: the next failure starts the schedule from the beginning."""
        self.attempts = 0
        self.quick_disconnects = 0

    def connection_ended(self, lived: float | None) -> None:
        """Record how long a gateway socket stayed open (``None``: it never opened)."""
        if lived is None:
            return
        if lived < self._config.quick_disconnect_window:
            self.quick_disconnects += 1
        else:
            self.quick_disconnects = 0

    @property
    def exhausted(self) -> bool:
        """True once more reconnects were needed than ``max_reconnect_attempts`` allows."""
        limit = self._config.max_reconnect_attempts
        return limit is not None and self.attempts > limit

    @property
    def cooling_down(self) -> bool:
        """True while repeated quick disconnects call for the long cooldown."""
        return self.quick_disconnects >= self._config.quick_disconnect_limit

    def next_delay(self, *, immediate: bool, floor: float = 0.0) -> float:
        """Count one more attempt and return its delay, never below ``floor``.

        ``immediate`` rules (4009, op 7) reconnect at once the first time; later attempts back off.
        """
        config = self._config
        self.attempts += 1
        if immediate and self.attempts == 1:
            delay = 0.0
        else:
            delay = jittered_delay(config.backoff_base, config.backoff_cap, self.attempts - 2, self._rng)
        if self.cooling_down:
            # Each further quick disconnect doubles the cooldown, so a loop the platform keeps
            # closing (unauthorised intents show as op 9 then 4903) cannot burn the day's session starts.
            excess = min(self.quick_disconnects - config.quick_disconnect_limit, 32)
            floor = max(floor, min(config.cooldown_cap, config.cooldown * 2.0**excess))
        return max(delay, floor)
