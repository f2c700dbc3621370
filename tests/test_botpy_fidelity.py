"""Unmodified botpy 1.2.1 runs against the fake platform: the guard on the fake's fidelity."""

from __future__ import annotations

import asyncio
from typing import Any

import botpy
import pytest
from botpy.gateway import BotWebSocket
from botpy.message import GroupMessage
from botpy_bots import INTENTS, PLATFORM, group_message, until

from bench.botpy_net import botpy_on_loopback
from qqproto.testing.serve import LoopbackPlatform

# botpy builds its TLS contexts with ssl.SSLContext(), which Python now warns about.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:botpy")


class PlainBot(botpy.Client):
    """botpy's own Client, as its examples write it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.contents: list[str] = []

    async def on_group_at_message_create(self, message: GroupMessage) -> None:
        self.contents.append(message.content)


def test_unmodified_botpy_connects_identifies_receives_and_reads_4009(monkeypatch: pytest.MonkeyPatch) -> None:
    close_codes: list[int] = []
    on_closed = BotWebSocket.on_closed

    async def observed(self: BotWebSocket, code: int, message: str) -> None:  # records, then botpy's own
        close_codes.append(int(code))
        await on_closed(self, code, message)

    monkeypatch.setattr(BotWebSocket, "on_closed", observed)

    async def scenario(lp: LoopbackPlatform) -> None:
        bot = PlainBot(intents=INTENTS, bot_log=False)
        running = asyncio.ensure_future(bot.start(appid=PLATFORM.app_id, secret=PLATFORM.client_secret))
        try:
            await until(lambda: lp.call(lambda p, now: p.has_live_gateway(now)))
            lp.call(lambda p, now: p.push_event("GROUP_AT_MESSAGE_CREATE", group_message("m1", "first"), now))
            await until(lambda: bot.contents == ["first"])
            lp.call(lambda p, now: p.close_gateway(4009, now))
            lp.call(lambda p, now: p.push_event("GROUP_AT_MESSAGE_CREATE", group_message("m2", "missed"), now))
            await until(lambda: bot.contents == ["first", "missed"])
        finally:
            await bot.close()
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)

    with LoopbackPlatform(config=PLATFORM) as lp, botpy_on_loopback(lp):
        asyncio.run(scenario(lp))
        counters = lp.counters
    assert close_codes[0] == 4009
    assert counters.identifies == 1 and counters.resumes_ok == 1
    assert counters.tokens_issued >= 1
