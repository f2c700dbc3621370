"""Sending messages so that replies arrive: the request for each attempt, and what to do with each answer.

The platform's rules (docs/protocol.md §9, §11): a reply's ``msg_id`` is valid for a window (C2C 60
minutes, group 5 minutes) and at most 5 replies; the same ``msg_id`` + ``msg_seq`` is refused as a
duplicate; 22009 means too fast; 11244 means the token expired. A retry reuses its ``msg_seq``, so
a send that did arrive but whose answer was lost comes back as "de-duplicated" and counts as sent.
"""

from __future__ import annotations

import enum
import json
import random
from dataclasses import dataclass, field
from typing import Any, Union

from ._api import ApiAnswer
from ._backoff import jittered_delay

__all__ = [
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
]


class Scene(enum.Enum):
    """Where a message goes."""

    C2C = "c2c"
    GROUP = "group"
    CHANNEL = "channel"
    DM = "dm"


@dataclass(frozen=True)
class SceneRules:
    """The send endpoint of a scene and its passive-reply limits (docs/protocol.md §1, §11.2)."""

    path: str
    reply_window: float
    max_replies: int | None


SCENES: dict[Scene, SceneRules] = {
    Scene.C2C: SceneRules("/v2/users/{target}/messages", 60 * 60.0, 5),
    Scene.GROUP: SceneRules("/v2/groups/{target}/messages", 5 * 60.0, 5),
    Scene.CHANNEL: SceneRules("/channels/{target}/messages", 5 * 60.0, None),
    Scene.DM: SceneRules("/dms/{target}/messages", 5 * 60.0, None),
}

# Platform codes and what they mean for a send (docs/protocol.md §9.4, §11.3).
RATE_LIMITED = frozenset({22009, 20028, 620006})
TOKEN_EXPIRED = frozenset({11244})
REPLY_EXPIRED = frozenset({40034005, 304027, 304103, 40034026, 40034128})
DEDUPLICATED = frozenset({40054005})
RETRYABLE = frozenset({50055001, 50055002, 50055006, 306003, 306005, 306006, 304082, 304083, 11242, 11252, 11263})


@dataclass
class OutgoingMessage:
    """One message to send, and what it answers.

    ``body`` holds the message fields (``content``, ``msg_type``, ``markdown``, ``media``, ...).
    ``msg_id`` or ``event_id`` make it a passive reply to what arrived at ``received_at`` (the
    caller's clock); without them it is an active message.
    """

    scene: Scene
    target: str
    body: dict[str, Any]
    msg_id: str | None = None
    event_id: str | None = None
    received_at: float | None = None
    msg_seq: int | None = None
    attempts: int = 0
    refreshed_token: bool = False
    first_tried_at: float | None = None
    history: list[str] = field(default_factory=list)

    @property
    def passive(self) -> bool:
        """True while it is sent as a reply (with ``msg_id`` or ``event_id``)."""
        return self.msg_id is not None or self.event_id is not None

    def go_active(self) -> None:
        """Drop what made it a reply; it goes out as an active message."""
        self.msg_id = self.event_id = None
        self.msg_seq = None


@dataclass(frozen=True)
class SendAttempt:
    """The HTTP request of one attempt: method, path, JSON body."""

    path: str
    body: bytes


@dataclass(frozen=True)
class SendDone:
    """The platform has the message (``duplicate``: it had it already)."""

    message_id: str | None
    duplicate: bool = False


@dataclass(frozen=True)
class SendRetry:
    """Try again after ``delay`` seconds, with the same ``msg_seq``."""

    delay: float
    reason: str


@dataclass(frozen=True)
class SendRefreshToken:
    """Fetch a new access token, then try again at once."""

    reason: str


@dataclass(frozen=True)
class SendAsActive:
    """The reply window has closed: send again at once without ``msg_id``/``msg_seq``."""

    reason: str


@dataclass(frozen=True)
class SendFailed:
    """The platform refused the message for good; its code, message and trace id say why."""

    reason: str
    code: int | None
    trace_id: str | None


SendDecision = Union[SendDone, SendRetry, SendRefreshToken, SendAsActive, SendFailed]


class SendPolicy:
    """Decides how each message goes out and what each answer means; keeps ``msg_seq`` per ``msg_id``."""

    def __init__(
        self,
        rng: random.Random,
        *,
        allow_active: bool = True,
        window_margin: float = 30.0,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        give_up_after: float = 3600.0,
    ) -> None:
        self._rng = rng
        self.allow_active = allow_active
        self.window_margin = window_margin
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.give_up_after = give_up_after
        self._replies: dict[str, tuple[float, int]] = {}

    def attempt(self, message: OutgoingMessage, now: float) -> SendAttempt | SendFailed:
        """The request for the next attempt; a passive reply turns active first if its window is closing."""
        if message.first_tried_at is None:
            message.first_tried_at = now
        message.attempts += 1
        if message.passive and not self._reply_allowed(message, now):
            if not self.allow_active:
                return SendFailed("the reply window has closed or its replies are used up", None, None)
            message.history.append("reply window closing: sent as an active message")
            message.go_active()
        if message.msg_id is not None and message.msg_seq is None:
            message.msg_seq = self._next_seq(message.msg_id, message.received_at, now)
        fields = dict(message.body)
        if message.msg_id is not None:
            fields["msg_id"] = message.msg_id
        if message.event_id is not None:
            fields["event_id"] = message.event_id
        if message.msg_seq is not None:
            fields["msg_seq"] = message.msg_seq
        path = SCENES[message.scene].path.format(target=message.target)
        return SendAttempt(path, json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode())

    def decide(
        self,
        message: OutgoingMessage,
        status: int | None,
        headers: dict[str, str],
        body: bytes,
        now: float,
    ) -> SendDecision:
        """What an answer means; ``status`` None stands for a transport failure (no answer at all)."""
        if status is None:
            return self._retry(message, now, "no answer (transport failure)", None, headers.get("x-tps-trace-id"))
        answer = ApiAnswer.read(status, body, headers)
        code, detail, trace_id = answer.code, answer.detail, answer.trace_id
        if answer.ok:
            message_id = answer.fields.get("id")
            return SendDone(message_id if isinstance(message_id, str) else None)
        if answer.has(DEDUPLICATED):
            return SendDone(None, duplicate=True)
        if answer.has(TOKEN_EXPIRED) or status == 401:
            if message.refreshed_token:
                return SendFailed(f"the platform refused a fresh token ({detail})", code, trace_id)
            message.refreshed_token = True
            return SendRefreshToken(detail)
        if answer.has(REPLY_EXPIRED) and message.passive:
            if not self.allow_active:
                return SendFailed(f"the reply window has closed ({detail})", code, trace_id)
            message.history.append(f"reply expired ({detail}): sent as an active message")
            message.go_active()
            return SendAsActive(detail)
        if answer.has(RATE_LIMITED | RETRYABLE) or status == 429 or status >= 500:
            return self._retry(message, now, detail, code, trace_id)
        return SendFailed(f"the platform refused the message ({detail})", code, trace_id)

    def _retry(
        self, message: OutgoingMessage, now: float, detail: str, code: int | None, trace_id: str | None
    ) -> SendDecision:
        started = message.first_tried_at if message.first_tried_at is not None else now
        if now - started >= self.give_up_after:
            return SendFailed(f"still failing after {self.give_up_after:g}s ({detail})", code, trace_id)
        return SendRetry(jittered_delay(self.backoff_base, self.backoff_cap, message.attempts - 1, self._rng), detail)

    def _reply_allowed(self, message: OutgoingMessage, now: float) -> bool:
        rules = SCENES[message.scene]
        if message.received_at is not None and now + self.window_margin >= message.received_at + rules.reply_window:
            return False
        if message.msg_id is not None and message.msg_seq is None and rules.max_replies is not None:
            _, used = self._replies.get(message.msg_id, (0.0, 0))
            return used < rules.max_replies
        return True

    def _next_seq(self, msg_id: str, received_at: float | None, now: float) -> int:
        self._forget_old(now)
        since, used = self._replies.get(msg_id, (received_at if received_at is not None else now, 0))
        self._replies[msg_id] = (since, used + 1)
        return used + 1

    def _forget_old(self, now: float) -> None:
        """Counters for replies whose longest window has passed are no longer needed."""
        longest = max(rules.reply_window for rules in SCENES.values())
        for msg_id in [m for m, (since, _) in self._replies.items() if now - since > longest]:
            del self._replies[msg_id]
