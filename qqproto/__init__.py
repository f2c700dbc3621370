"""qqproto: a sans-IO client for the QQ official bot gateway."""

from ._api_connection import QQApiConnection
from ._config import PRODUCTION_API_BASE, SANDBOX_API_BASE, TOKEN_URL, GatewayConfig, Intents
from ._connection import QQGatewayConnection
from ._errors import LocalProtocolError
from ._events import (
    Action,
    CloseSocket,
    Dispatch,
    Fatal,
    HeartbeatAcked,
    HeartbeatSent,
    MessageFailed,
    MessageSent,
    OpenSocket,
    Ready,
    ReconnectScheduled,
    Resumed,
    SendData,
    SendRetryScheduled,
    SessionForgotten,
    TimerLate,
)
from ._health import Health
from ._identify_gate import IdentifyDone, IdentifyPermissionNeeded
from ._sending import (
    SCENES,
    OutgoingMessage,
    Scene,
    SceneRules,
    SendAsActive,
    SendAttempt,
    SendDecision,
    SendDone,
    SendFailed,
    SendPolicy,
    SendRefreshToken,
    SendRetry,
)
from ._session import SessionStartLimit
from ._session_state import SessionProgress, SessionState, SessionStore, session_key
from ._state import State

__all__ = [
    "PRODUCTION_API_BASE",
    "SANDBOX_API_BASE",
    "SCENES",
    "TOKEN_URL",
    "Action",
    "CloseSocket",
    "Dispatch",
    "Fatal",
    "GatewayConfig",
    "Health",
    "HeartbeatAcked",
    "HeartbeatSent",
    "IdentifyDone",
    "IdentifyPermissionNeeded",
    "Intents",
    "LocalProtocolError",
    "MessageFailed",
    "MessageSent",
    "OpenSocket",
    "OutgoingMessage",
    "QQApiConnection",
    "QQGatewayConnection",
    "Ready",
    "ReconnectScheduled",
    "Resumed",
    "Scene",
    "SceneRules",
    "SendAsActive",
    "SendAttempt",
    "SendData",
    "SendDecision",
    "SendDone",
    "SendFailed",
    "SendPolicy",
    "SendRefreshToken",
    "SendRetry",
    "SendRetryScheduled",
    "SessionForgotten",
    "SessionProgress",
    "SessionStartLimit",
    "SessionState",
    "SessionStore",
    "State",
    "TimerLate",
    "session_key",
]
