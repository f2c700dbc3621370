"""What the client does after the gateway closes its socket: every code of docs/protocol.md §5 as data.

A rule marked ``instruction`` is the platform telling a live session to reconnect (4009, and
op 7 as :data:`RECONNECT_REQUEST`): after READY or RESUMED it is no storm, so it never counts
as a quick disconnect toward the long cooldown. Everything else that ends a socket quickly
does: a connection refused or dropped before its session exists, or one that dies without a word.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["CLOSE_RULES", "RECONNECT_REQUEST", "CloseAction", "CloseRule", "rule_for_close"]


class CloseAction(enum.Enum):
    """The response to a close: which reconnect, or none at all."""

    RESUME = "resume at once"
    RESUME_AFTER_COOLDOWN = "resume after a cooldown"
    IDENTIFY = "forget the session and identify"
    REFRESH_TOKEN = "refresh the access token, then reconnect"
    FATAL = "stop for good"


@dataclass(frozen=True)
class CloseRule:
    """How to answer one close code, what it means in words a user can act on, and whether it is an instruction."""

    action: CloseAction
    meaning: str
    instruction: bool = False


_R = CloseAction.RESUME
_C = CloseAction.RESUME_AFTER_COOLDOWN
_I = CloseAction.IDENTIFY
_T = CloseAction.REFRESH_TOKEN
_F = CloseAction.FATAL

CLOSE_RULES: dict[int, CloseRule] = {
    4000: CloseRule(_R, "unknown error on the platform's side"),
    4001: CloseRule(_F, "the platform rejected an opcode this client sent; this is a qqproto bug, please report it"),
    4002: CloseRule(_F, "the platform rejected a payload this client sent; this is a qqproto bug, please report it"),
    4003: CloseRule(_I, "a message was sent before the session was authenticated"),
    4004: CloseRule(_T, "the access token was rejected (bad or expired)"),
    4005: CloseRule(_I, "the session was already authenticated"),
    4006: CloseRule(_I, "the session id is no longer valid"),
    4007: CloseRule(_I, "the resume sequence number was invalid"),
    4008: CloseRule(_C, "payloads were sent too fast"),
    4009: CloseRule(_R, "the connection expired (session timed out)", instruction=True),
    4010: CloseRule(
        _F,
        "the shard is invalid: check GatewayConfig.shard against the 'shards' that /gateway/bot suggests",
    ),
    4011: CloseRule(
        _F,
        "too many guilds on this connection: run more shards (raise the shard count in GatewayConfig.shard)",
    ),
    4012: CloseRule(_F, "the gateway version is invalid; this is a qqproto bug, please report it"),
    4013: CloseRule(_F, "the intents are invalid: check GatewayConfig.intents against the Intents flags"),
    4014: CloseRule(
        _F,
        "the bot is not authorised for some of its intents: remove them from GatewayConfig.intents "
        "or apply for them in the QQ bot console",
    ),
    **{code: CloseRule(_I, "internal error on the platform's side") for code in range(4900, 4914)},
    4914: CloseRule(
        _F,
        "the bot is offline (taken down, or only sandbox connections are allowed): use the sandbox "
        "api_base or check the bot's status in the QQ bot console",
    ),
    4915: CloseRule(_F, "the bot is banned: apply for an unban in the QQ bot console before reconnecting"),
}

#: Op 7: the platform asks for a reconnect; handled like a close, by the same rule.
RECONNECT_REQUEST = CloseRule(_R, "the gateway asked for a reconnect (op 7)", instruction=True)
_DROPPED = CloseRule(_R, "the connection dropped without a gateway close code")
_UNKNOWN = CloseRule(_I, "unknown close code")


def rule_for_close(code: int | None) -> CloseRule:
    """The rule for a close code; ``None`` or a WebSocket-level code (below 4000) is a plain drop."""
    if code is None or code < 4000:
        return _DROPPED
    return CLOSE_RULES.get(code, _UNKNOWN)
