"""The platform's wall clock: ``now`` (monotonic seconds) read as an RFC 3339 time in Beijing time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

__all__ = ["EPOCH", "platform_time"]

#: The wall-clock time that ``now == 0`` stands for (2025-01-01 00:00 Beijing time).
EPOCH = 1735660800.0
_BEIJING = timezone(timedelta(hours=8))


def platform_time(now: float, epoch: float = EPOCH) -> str:
    """``epoch + now`` as the platform writes timestamps, e.g. ``2025-01-01T00:00:00+08:00``."""
    return datetime.fromtimestamp(epoch + now, _BEIJING).isoformat(timespec="seconds")
