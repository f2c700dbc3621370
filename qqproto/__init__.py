"""qqproto: a sans-IO client for the QQ official bot gateway."""

from ._config import PRODUCTION_API_BASE, SANDBOX_API_BASE, TOKEN_URL, GatewayConfig, Intents
from ._connection import QQGatewayConnection
from ._errors import LocalProtocolError
from ._health import Health
from ._state import State
from ._events import (
    Action,
    CloseSocket,
    Dispatch,
    Fatal,
    HeartbeatAcked,
    HeartbeatSent,
    OpenSocket,
    Ready,
    ReconnectScheduled,
    Resumed,
    SendData,
    TimerLate,
)

__all__ = [
    "QQGatewayConnection",
    "Health",
    "State",
    "PRODUCTION_API_BASE",
    "SANDBOX_API_BASE",
    "TOKEN_URL",
    "GatewayConfig",
    "Intents",
    "LocalProtocolError",
    "Action",
    "CloseSocket",
    "Dispatch",
    "Fatal",
    "HeartbeatAcked",
    "HeartbeatSent",
    "OpenSocket",
    "Ready",
    "ReconnectScheduled",
    "Resumed",
    "SendData",
    "TimerLate",
]
