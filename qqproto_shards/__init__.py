"""Many shards of one bot: the identify gate they share, and the Redis coordinator of a fleet."""

from ._coordination import CoordinatorUnavailable, IdentifyTurn
from ._gate import IDENTIFY_WINDOW, GateHealth, IdentifyRation

__all__ = [
    "IDENTIFY_WINDOW",
    "CoordinatorUnavailable",
    "GateHealth",
    "IdentifyRation",
    "IdentifyTurn",
    "RedisCoordinator",
]


def __getattr__(name: str) -> object:
    # redis-py is an extra: importing it only when asked keeps the in-process gate usable without it.
    if name == "RedisCoordinator":
        from ._redis import RedisCoordinator

        return RedisCoordinator
    raise AttributeError(name)
