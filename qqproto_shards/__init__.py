"""Many shards of one bot: the identify gate they share."""

from ._gate import IDENTIFY_WINDOW, GateHealth, IdentifyRation

__all__ = ["IDENTIFY_WINDOW", "GateHealth", "IdentifyRation"]
