"""Realistic group and C2C message events (docs/protocol.md §10), drawn from one injected rng."""

from __future__ import annotations

import random

from ._json import dumps
from ._time import EPOCH, platform_time

__all__ = ["DispatchGenerator"]

_WORDS = (
    "你好",
    "机器人",
    "今天",
    "天气",
    "怎么样",
    "帮我",
    "查一下",
    "明天",
    "的",
    "会议",
    "安排",
    "谢谢",
    "收到",
    "好的",
    "图片",
    "文件",
    "翻译",
    "总结",
    "一下",
    "这段",
    "内容",
    "为什么",
    "hello",
    "bot",
    "please",
    "summarize",
    "this",
    "thread",
    "and",
    "reply",
    "ok",
    "test",
    "deploy",
    "status",
    "/help",
    "/weather",
    "😀",
    "👍",
    "12:30",
    "2025",
    "?",
    "!",
)
# Encoded size of a body's fields other than its content, near enough for sizing the content.
_BASE_SIZE = 200
_ATTACHMENT_SIZE = 380
_IMAGE_SIZES = ((1080, 1920), (1920, 1080), (720, 1280), (512, 512), (640, 480))


class DispatchGenerator:
    """Makes GROUP_AT_MESSAGE_CREATE and C2C_MESSAGE_CREATE events of realistic shape and size.

    Most ``d`` bodies encode to 0.5–2 KB of JSON, about 3 % to 10 KB or more; some carry an
    image attachment.  Timestamps are ``epoch + now`` in RFC 3339 (Beijing time).
    """

    def __init__(self, rng: random.Random, *, users: int = 64, groups: int = 8, epoch: float = EPOCH) -> None:
        self._rng = rng
        self._epoch = epoch
        self._users = [self._hex(32) for _ in range(users)]
        self._groups = [self._hex(32) for _ in range(groups)]
        # Message text is cut from one long run of words, so a large body costs no more than a small one.
        self._text = " ".join(rng.choices(_WORDS, k=12000))
        self._bytes_per_char = len(dumps(self._text).encode()) / len(self._text)

    def next(self, now: float) -> tuple[str, dict[str, object], str]:
        """One event as ``(event_type, d, event_id)``."""
        rng = self._rng
        user = rng.choice(self._users)
        data: dict[str, object] = {"id": "ROBOT1.0_" + self._token(22)}
        if rng.random() < 0.6:
            event_type = "GROUP_AT_MESSAGE_CREATE"
            group = rng.choice(self._groups)
            data["author"] = {"id": user, "member_openid": user}
            data["content"] = " "
            data["group_id"] = group
            data["group_openid"] = group
        else:
            event_type = "C2C_MESSAGE_CREATE"
            data["author"] = {"id": user, "user_openid": user}
            data["content"] = ""
        data["timestamp"] = platform_time(now, self._epoch)
        if rng.random() < 0.15:
            data["attachments"] = [self._image()]
        self._fill(data)
        return event_type, data, f"{event_type}:{self._token(40).lower()}"

    def _fill(self, data: dict[str, object]) -> None:
        large = self._rng.random() < 0.03
        target = self._rng.randint(10240, 20480) if large else self._rng.randint(512, 2048)
        missing = max(0, target - _BASE_SIZE - (_ATTACHMENT_SIZE if "attachments" in data else 0))
        chars = min(len(self._text) - 1, int(missing / self._bytes_per_char))
        start = self._rng.randrange(len(self._text) - chars)
        data["content"] = str(data["content"]) + self._text[start : start + chars]

    def _image(self) -> dict[str, object]:
        width, height = self._rng.choice(_IMAGE_SIZES)
        name = self._hex(32)
        url = "https://multimedia.nt.qq.com.cn/download?appid=1407"
        return {
            "content_type": "image/jpeg",
            "filename": f"{name}.jpg",
            "height": height,
            "width": width,
            "size": self._rng.randint(20_000, 900_000),
            "url": f"{url}&fileid={self._token(60)}&rkey={self._token(80)}",
        }

    def _hex(self, length: int) -> str:
        return f"{self._rng.getrandbits(4 * length):0{length}X}"

    def _token(self, length: int) -> str:
        return f"{self._rng.getrandbits(4 * length):0{length}x}"
