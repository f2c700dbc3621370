"""Many shards of one bot: the identify gate they share, and a fleet's leases in a coordinator."""

from ._fleet import Coordinator, FleetHealth, FleetMember, IdentifySlots, IdentifyTurn, shard_targets
from ._gate import IDENTIFY_WINDOW, GateHealth, IdentifyRation

__all__ = [
    "IDENTIFY_WINDOW",
    "Coordinator",
    "FleetHealth",
    "FleetMember",
    "GateHealth",
    "IdentifyRation",
    "IdentifySlots",
    "IdentifyTurn",
    "shard_targets",
]
