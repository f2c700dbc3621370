"""qqproto: a sans-IO client for the QQ official bot gateway."""

from ._config import PRODUCTION_API_BASE, SANDBOX_API_BASE, TOKEN_URL, GatewayConfig, Intents
from ._api_connection import QQApiConnection
from ._connection import QQGatewayConnection
from ._errors import LocalProtocolError
from ._health import Health
from ._identify_gate import IdentifyPermissionNeeded, IdentifySent
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

__all__ = [
    "QQGatewayConnection",
    "QQApiConnection",
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
    "MessageSent",
    "MessageFailed",
    "SendRetryScheduled",
    "SCENES",
    "OutgoingMessage",
    "Scene",
    "SceneRules",
    "SendAsActive",
    "SendAttempt",
    "SendDecision",
    "SendDone",
    "SendFailed",
    "SendPolicy",
    "SendRefreshToken",
    "SendRetry",
    "SessionForgotten",
    "IdentifyPermissionNeeded",
    "IdentifySent",
    "SessionStartLimit",
    "SessionProgress",
    "SessionState",
    "SessionStore",
    "session_key",
]
