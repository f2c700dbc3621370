"""A fake QQ bot platform for tests: sans-IO, real HTTP and WebSocket bytes, scheduled faults.

The loopback TLS server lives in :mod:`qqproto.testing.serve` (it needs ``trustme``).
"""

from ._actions import ServerAction, ServerClose, ServerSend
from ._config import ALL_INTENTS, PlatformConfig
from ._counters import PlatformCounters
from ._dispatches import DispatchGenerator
from ._plans import PLANS, Fault, Plan, RandomFault, TimedFault
from ._platform import CLOSE_REASONS, FakeQQPlatform
from ._simulation import Report, Simulation, TimelineEntry

__all__ = [
    "ALL_INTENTS",
    "CLOSE_REASONS",
    "PLANS",
    "DispatchGenerator",
    "FakeQQPlatform",
    "Fault",
    "Plan",
    "PlatformConfig",
    "PlatformCounters",
    "RandomFault",
    "Report",
    "ServerAction",
    "ServerClose",
    "ServerSend",
    "Simulation",
    "TimedFault",
    "TimelineEntry",
]
