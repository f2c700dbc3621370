"""What a fleet coordinator answers, kept apart from redis-py so callers import it without Redis."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CoordinatorUnavailable", "FleetMismatch", "IdentifyTurn"]


@dataclass(frozen=True)
class IdentifyTurn:
    """The answer to asking for an Identify turn from the ration every process shares."""

    granted: bool
    #: Seconds until asking again makes sense (0 when granted).
    retry_after: float
    #: True when refused because the daily budget is spent (``retry_after`` is then the time to its reset).
    exhausted: bool


class CoordinatorUnavailable(Exception):
    """The coordinator's Redis could not be reached, or refused (a read-only replica, an ACL, out of memory).

    The message names its address and what was being done.
    """


class FleetMismatch(Exception):
    """This process runs another shard count than the fleet it would join; the message names both."""
