"""Many shards of one bot: the identify gate they share, and a fleet's leases in a coordinator."""

from ._coordination import CoordinatorUnavailable, FleetMismatch, IdentifyTurn
from ._fleet import Coordinator, FleetCoordinator, FleetHealth, FleetMember, IdentifySlots, shard_targets
from ._gate import IDENTIFY_WINDOW, GateHealth, IdentifyRation

__all__ = [
    "IDENTIFY_WINDOW",
    "Coordinator",
    "CoordinatorUnavailable",
    "FleetCoordinator",
    "FleetHealth",
    "FleetMember",
    "FleetMismatch",
    "GateHealth",
    "IdentifyRation",
    "IdentifySlots",
    "IdentifyTurn",
    "RedisCoordinator",
    "shard_targets",
]


def __getattr__(name: str) -> object:
    # redis-py is an extra: importing it only when asked keeps the in-process gate usable without it.
    if name == "RedisCoordinator":
        from ._redis import RedisCoordinator

        return RedisCoordinator
    raise AttributeError(name)
