"""The platform's message endpoints: reply windows and counts, ``msg_seq`` de-duplication, rate limits.

| Behaviour | Reference |
| --- | --- |
| ``POST /v2/users/{openid}/messages``, ``/v2/groups/{id}/messages``, ``/channels/{id}/messages``, ``/dms/{guild}/messages`` | §1 |
| ``Authorization: QQBot <valid token>``, else 401 with code 11244 | §7.3, §9.4 |
| a ``msg_id`` the platform never pushed → 400, code 40034024 | §11.3 |
| a reply after its window (C2C 60 min, others 5 min) → 400, code 40034005 | §11.2, §11.3 |
| more than 5 replies to one C2C or group message → 400, code 40034128 | §11.2, §11.3 |
| the same ``msg_id`` + ``msg_seq`` twice → 400, code 40054005 | §11.1, §11.3 |
| too many messages in the rate window → 400, code 22009 (HTTP status UNCONFIRMED) | §11.3 |
| no ``msg_id``/``event_id`` when active messages are off → 400, code 40034102 | §11.2 |
| success → 200 ``{"id", "timestamp"}``, ``timestamp`` in RFC 3339; every answer carries ``X-Tps-Trace-Id`` | §9.3, §11.1 |
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ._counters import PlatformCounters
from ._http_server import HTTPRequest
from ._json import loads
from ._limits import RateLimit
from ._time import platform_time

__all__ = ["SCENE_OF_EVENT", "MessageDesk", "ReceivedMessage"]

SEND_PATH = re.compile(r"^/(v2/users|v2/groups|channels|dms)/([^/]+)/messages$")
SCENE_OF_PATH = {"v2/users": "c2c", "v2/groups": "group", "channels": "channel", "dms": "dm"}
SCENE_OF_EVENT = {
    "C2C_MESSAGE_CREATE": "c2c",
    "GROUP_AT_MESSAGE_CREATE": "group",
    "AT_MESSAGE_CREATE": "channel",
    "MESSAGE_CREATE": "channel",
    "DIRECT_MESSAGE_CREATE": "dm",
}
REPLY_WINDOW = {"c2c": 3600.0, "group": 300.0, "channel": 300.0, "dm": 300.0}
MAX_REPLIES = {"c2c": 5, "group": 5}

Answer = tuple[int, object]


def _refusal(code: int, message: str) -> Answer:
    return 400, {"code": code, "err_code": code, "message": message}


@dataclass(frozen=True)
class ReceivedMessage:
    """A message the platform accepted."""

    scene: str
    target: str
    body: dict[str, Any]
    at: float


class MessageDesk:
    """Accepts or refuses sends the way the platform does, and keeps what it accepted."""

    def __init__(self, counters: PlatformCounters, rate_limit: tuple[int, float] | None, allow_active: bool) -> None:
        self._counters = counters
        self._rate = RateLimit(rate_limit)
        self.allow_active = allow_active
        self.received: list[ReceivedMessage] = []
        self._pushed: dict[str, tuple[str, float]] = {}
        self._seqs: dict[str, set[int]] = {}
        self._failing: tuple[int, int] = (0, 22009)
        self._next_id = 0

    def pushed(self, msg_id: str, scene: str, now: float) -> None:
        """A user message went out with this id: replies to it are passive."""
        self._pushed[msg_id] = (scene, now)

    def fail_next(self, count: int, code: int = 22009) -> None:
        """Refuse the next ``count`` sends with ``code``."""
        self._failing = (count, code)

    @staticmethod
    def handles(path: str) -> bool:
        """True for a send endpoint."""
        return SEND_PATH.match(path) is not None

    def answer(self, request: HTTPRequest, authorised: bool, now: float) -> Answer:
        """Accept or refuse one send."""
        match = SEND_PATH.match(request.path)
        assert match is not None
        scene, target = SCENE_OF_PATH[match.group(1)], match.group(2)
        refusal = self._refuse(request, authorised, scene, now)
        if refusal is not None:
            _, body = refusal
            if isinstance(body, dict) and isinstance(body.get("code"), int):
                refusals = self._counters.message_refusals
                refusals[body["code"]] = refusals.get(body["code"], 0) + 1
            return refusal
        body = loads(request.body)
        assert isinstance(body, dict)
        self.received.append(ReceivedMessage(scene, target, body, now))
        self._counters.messages_received += 1
        self._next_id += 1
        return 200, {"id": f"msg-{self._next_id}", "timestamp": platform_time(now)}

    def _refuse(self, request: HTTPRequest, authorised: bool, scene: str, now: float) -> Answer | None:
        if not authorised:
            return 401, {"code": 11244, "message": "token not exist or expire"}
        failing, code = self._failing
        if failing > 0:
            self._failing = (failing - 1, code)
            return _refusal(code, "msg limit exceed" if code == 22009 else "send error")
        try:
            body = loads(request.body)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _refusal(40034001, "invalid body")
        if not self._rate.allow(now):
            return _refusal(22009, "msg limit exceed")
        msg_id = body.get("msg_id")
        if msg_id is not None:
            return self._check_reply(str(msg_id), body.get("msg_seq", 1), scene, now)
        if body.get("event_id") is None and not self.allow_active:
            return _refusal(40034102, "主动消息失败, 无权限")
        return None

    def _check_reply(self, msg_id: str, msg_seq: object, scene: str, now: float) -> Answer | None:
        pushed = self._pushed.get(msg_id)
        if pushed is None or pushed[0] != scene:
            return _refusal(40034024, "请求参数msg_id无效或越权")
        if now - pushed[1] > REPLY_WINDOW[scene]:
            return _refusal(40034005, "回复消息msg_id已过期")
        seqs = self._seqs.setdefault(msg_id, set())
        if msg_seq in seqs:
            return _refusal(40054005, "消息被去重，请检查请求msgseq")
        limit = MAX_REPLIES.get(scene)
        if limit is not None and len(seqs) >= limit:
            return _refusal(40034128, "被动回复次数超限")
        if isinstance(msg_seq, int):
            seqs.add(msg_seq)
        return None
