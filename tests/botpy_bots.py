"""botpy bots written the way botpy's examples are, and what the botpy tests share."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import botpy
from botpy.message import C2CMessage, GroupMessage, Message

from qqproto.testing import PlatformConfig
from qqproto.testing.serve import LoopbackPlatform
from qqproto_botpy import Client

TIMEOUT = 15.0
#: The fake's Hello interval: qqproto beats every 0.4 s; 5 session starts per 5 s keep botpy's own stagger at 1 s.
PLATFORM = PlatformConfig(heartbeat_interval_ms=500, max_concurrency=5)
#: qqproto settings that make every recovery take well under a second.
FAST = {
    "connect_timeout": 3.0,
    "http_timeout": 3.0,
    "hello_timeout": 3.0,
    "ready_timeout": 3.0,
    "close_timeout": 1.0,
    "backoff_base": 0.05,
    "backoff_cap": 0.5,
    "cooldown": 1.0,
    "invalid_session_delay": (0.05, 0.2),
    "healthy_after": 0.5,
    "quick_disconnect_limit": 100,
    "heartbeat_interval_bounds": (0.05, 600.0),  # obey the fake's 500 ms Hello rather than clamp it to 1 s
}
INTENTS = botpy.Intents(public_messages=True, public_guild_messages=True)


async def until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Wait, without blocking the loop, until ``condition()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.01)


def bridged(lp: LoopbackPlatform, bot: type[Client], **kwargs: Any) -> Client:
    """A bot on qqproto_botpy, pointed at ``lp``."""
    return bot(
        intents=INTENTS,
        bot_log=False,
        ssl_context=lp.client_ssl_context(),
        api_base=lp.api_base,
        token_url=lp.token_url,
        gateway_settings=FAST,
        **kwargs,
    )


class Counting:
    """Counts each message by id, as it reaches its handler."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self.readies = 0


class EchoBot(Client):
    """Answers every group, C2C and guild message once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.counts = Counting()

    async def on_ready(self) -> None:
        self.counts.readies += 1

    async def on_group_at_message_create(self, message: GroupMessage) -> None:
        self.counts.seen[message.id] += 1
        await message.reply(content=f"pong {message.content}")

    async def on_c2c_message_create(self, message: C2CMessage) -> None:
        self.counts.seen[message.id] += 1
        await message.reply(content=f"pong {message.content}")

    async def on_at_message_create(self, message: Message) -> None:
        self.counts.seen[message.id] += 1
        await message.reply(content=f"pong {message.content}")


def group_message(msg_id: str, content: str = "ping") -> dict[str, Any]:
    return {
        "id": msg_id,
        "content": content,
        "group_openid": "GROUP1",
        "author": {"member_openid": "MEMBER1"},
        "timestamp": "2025-01-01T00:00:00+08:00",
    }


def c2c_message(msg_id: str, content: str = "ping") -> dict[str, Any]:
    return {
        "id": msg_id,
        "content": content,
        "author": {"user_openid": "USER1"},
        "timestamp": "2025-01-01T00:00:00+08:00",
    }


def guild_message(msg_id: str, content: str = "ping") -> dict[str, Any]:
    return {
        "id": msg_id,
        "content": content,
        "channel_id": "CHANNEL1",
        "guild_id": "GUILD1",
        "author": {"id": "AUTHOR1", "username": "someone", "bot": False},
        "member": {"nick": "someone"},
        "timestamp": "2025-01-01T00:00:00+08:00",
        "seq": 1,
    }


#: Event type → how its ``d`` is made.
MESSAGES: dict[str, Callable[[str], dict[str, Any]]] = {
    "GROUP_AT_MESSAGE_CREATE": group_message,
    "C2C_MESSAGE_CREATE": c2c_message,
    "AT_MESSAGE_CREATE": guild_message,
}


def push(lp: LoopbackPlatform, event_type: str, msg_id: str, shard: int = 0) -> None:
    """Let the platform send (or, with no socket, log) one message event."""
    data = MESSAGES[event_type](msg_id)
    lp.call(lambda platform, now: platform.push_event(event_type, data, now, shard=shard))
