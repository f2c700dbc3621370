"""qqproto_botpy: real botpy bots on qqproto's gateway, against the loopback platform over TLS."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from botpy.connection import ConnectionState
from botpy.errors import ServerError
from botpy.message import GroupMessage
from botpy_bots import PLATFORM, EchoBot, bridged, group_message, push, until

from qqproto.testing import PlatformConfig
from qqproto.testing.serve import LoopbackPlatform
from qqproto_botpy import Client, GatewayFatalError

TRANSPORTS = ("asyncio", "thread")
Scenario = Callable[[LoopbackPlatform, Client], Awaitable[None]]


def run_bot(lp: LoopbackPlatform, make: Callable[[], Client], scenario: Scenario) -> Client:
    """Make a bot on the test's loop, start it, play ``scenario``, close it; its start() must end cleanly."""

    async def main() -> Client:
        bot = make()
        running = asyncio.ensure_future(bot.start(appid=PLATFORM.app_id, secret=PLATFORM.client_secret))
        try:
            await until(lambda: running.done() or (bool(bot.gateway_health()) and lp.counters.ready_sent > 0))
            await scenario(lp, bot)
        finally:
            await bot.close()
            await asyncio.wait_for(running, 10)
        return bot

    return asyncio.run(main())


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_every_event_reaches_its_handler_once_through_every_fault(transport: str) -> None:
    events = ["GROUP_AT_MESSAGE_CREATE", "C2C_MESSAGE_CREATE", "AT_MESSAGE_CREATE"]
    pushed: list[str] = []

    def push_each(tag: str) -> None:
        for event_type in events:
            pushed.append(f"{tag}-{event_type}")
            push(lp, event_type, pushed[-1])

    faults: list[tuple[str, Callable[[Any, float], None]]] = [
        ("4009", lambda p, now: p.close_gateway(4009, now)),
        ("op7", lambda p, now: p.send_reconnect(now)),
        ("op9", lambda p, now: p.invalidate_session(now, resumable=True)),
        ("silent", lambda p, now: p.go_silent(now)),
    ]

    async def scenario(lp: LoopbackPlatform, bot: Client) -> None:
        assert isinstance(bot, EchoBot)
        push_each("calm")
        for tag, fault in faults:
            lp.call(fault)
            push_each(tag)  # sent while the bot is away: replayed when it resumes
            await until(lambda: set(bot.counts.seen) == set(pushed))
        await until(lambda: lp.counters.messages_received == len(pushed))
        lp.call(lambda p, now: p.push_event("SOME_FUTURE_EVENT", {"x": 1}, now))  # botpy has no parser for it
        push_each("after")
        await until(lambda: lp.counters.messages_received == len(pushed))

    # /gateway/bot answers twice (the core's and botpy's login); more calls would be refused.
    config = PlatformConfig(heartbeat_interval_ms=500, max_concurrency=5, gateway_rate_limit=(2, 3600.0))
    with LoopbackPlatform(config=config) as lp:
        bot = run_bot(lp, lambda: bridged(lp, EchoBot, transport=transport), scenario)
        counters = lp.counters
    assert isinstance(bot, EchoBot)
    assert bot.counts.seen == dict.fromkeys(pushed, 1)
    assert bot.counts.readies == 1
    assert counters.messages_received == len(pushed) and not counters.message_refusals
    assert counters.gateway_calls == 2 and counters.gateway_rate_limited == 0
    assert counters.token_fetches == 1
    assert counters.resumes_ok >= len(faults) and counters.identifies == 1


class TwiceBot(Client):
    """Replies twice to each group message, as a bot that acknowledges, then answers."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.answers: list[Any] = []

    async def on_group_at_message_create(self, message: GroupMessage) -> None:
        self.answers.append(await message.reply(content="working on it"))
        self.answers.append(await message.reply(content="done"))


def test_two_replies_to_one_message_both_succeed() -> None:
    async def scenario(lp: LoopbackPlatform, bot: Client) -> None:
        assert isinstance(bot, TwiceBot)
        push(lp, "GROUP_AT_MESSAGE_CREATE", "m1")
        await until(lambda: len(bot.answers) == 2)

    with LoopbackPlatform(config=PLATFORM) as lp:
        bot = run_bot(lp, lambda: bridged(lp, TwiceBot), scenario)
        received = lp.call(lambda p, now: list(p.messages.received))
    assert isinstance(bot, TwiceBot)
    assert all(isinstance(answer["id"], str) for answer in bot.answers)
    assert [(m.body["msg_id"], m.body["msg_seq"], m.body["content"]) for m in received] == [
        ("m1", 1, "working on it"),
        ("m1", 2, "done"),
    ]


class BlockingBot(EchoBot):
    """Blocks the loop in its handler for three heartbeat intervals, as a synchronous call would."""

    async def on_group_at_message_create(self, message: GroupMessage) -> None:
        if message.content == "block":
            time.sleep(3 * PLATFORM.heartbeat_interval_ms / 1000)
        await super().on_group_at_message_create(message)


def test_in_thread_mode_a_blocked_loop_keeps_the_session() -> None:
    async def scenario(lp: LoopbackPlatform, bot: Client) -> None:
        assert isinstance(bot, BlockingBot)
        lp.call(lambda p, now: p.push_event("GROUP_AT_MESSAGE_CREATE", group_message("slow", "block"), now))
        push(lp, "C2C_MESSAGE_CREATE", "during")  # arrives while the loop is blocked
        await until(lambda: lp.counters.messages_received == 2)

    with LoopbackPlatform(config=PLATFORM) as lp:
        bot = run_bot(lp, lambda: bridged(lp, BlockingBot, transport="thread"), scenario)
        counters = lp.counters
    assert isinstance(bot, BlockingBot)
    assert bot.counts.seen == {"slow": 1, "during": 1}
    assert counters.heartbeat_timeouts == 0 and counters.ws_connections == 1
    assert counters.messages_received == 2


def test_a_bad_secret_raises_gateway_fatal_error_out_of_run() -> None:
    with LoopbackPlatform(config=PLATFORM) as lp:
        bot = bridged(lp, EchoBot)
        with pytest.raises(GatewayFatalError, match="app_id and client_secret"):
            bot.run(appid=PLATFORM.app_id, secret="not-the-secret")
        assert lp.counters.ws_connections == 0


def test_a_parser_patched_at_class_level_before_construction_is_the_one_that_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frames: list[dict[str, Any]] = []
    original = ConnectionState.parse_group_at_message_create

    def patched(self: ConnectionState, payload: dict[str, Any]) -> None:
        frames.append(payload)
        original(self, payload)

    monkeypatch.setattr(ConnectionState, "parse_group_at_message_create", patched)

    async def scenario(lp: LoopbackPlatform, bot: Client) -> None:
        assert isinstance(bot, EchoBot)
        push(lp, "GROUP_AT_MESSAGE_CREATE", "m1")
        await until(lambda: bool(bot.counts.seen))

    with LoopbackPlatform(config=PLATFORM) as lp:
        run_bot(lp, lambda: bridged(lp, EchoBot), scenario)
    (frame,) = frames
    assert frame["op"] == 0 and frame["t"] == "GROUP_AT_MESSAGE_CREATE" and frame["d"]["id"] == "m1"
    assert isinstance(frame["s"], int) and frame["id"].startswith("GROUP_AT_MESSAGE_CREATE:")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_two_shards_run_two_connections(transport: str) -> None:
    async def scenario(lp: LoopbackPlatform, bot: Client) -> None:
        assert isinstance(bot, EchoBot)
        await until(lambda: bot.counts.readies == 2)
        push(lp, "GROUP_AT_MESSAGE_CREATE", "on-0", shard=0)
        push(lp, "C2C_MESSAGE_CREATE", "on-1", shard=1)
        await until(lambda: lp.counters.messages_received == 2)
        assert sorted(health.shard for health in bot.gateway_health()) == [(0, 2), (1, 2)]
        assert all(health.connected for health in bot.gateway_health())

    config = PlatformConfig(heartbeat_interval_ms=500, max_concurrency=5, shards_suggested=2, max_shards=2)
    with LoopbackPlatform(config=config) as lp:
        bot = run_bot(lp, lambda: bridged(lp, EchoBot, transport=transport), scenario)
    assert isinstance(bot, EchoBot)
    assert bot.counts.seen == {"on-0": 1, "on-1": 1}


class ReplyOutcomes(Client):
    """Replies to each group message and keeps what the reply returned or raised."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outcomes: dict[str, Any] = {}

    async def on_group_at_message_create(self, message: GroupMessage) -> None:
        try:
            self.outcomes[message.id] = await message.reply(content="pong")
        except Exception as exc:
            self.outcomes[message.id] = exc


def test_sends_retry_refresh_the_token_and_fail_with_botpys_error() -> None:
    async def scenario(lp: LoopbackPlatform, bot: Client) -> None:
        assert isinstance(bot, ReplyOutcomes)
        lp.call(lambda p, now: p.messages.fail_next(2, 22009))  # too fast, twice: retried with backoff
        push(lp, "GROUP_AT_MESSAGE_CREATE", "transient")
        await until(lambda: "transient" in bot.outcomes)
        lp.call(lambda p, now: p.expire_tokens(now))  # 11244: one fresh token, then sent
        push(lp, "GROUP_AT_MESSAGE_CREATE", "expired-token")
        await until(lambda: "expired-token" in bot.outcomes)
        lp.call(lambda p, now: p.messages.fail_next(1, 304028))  # refused for good
        push(lp, "GROUP_AT_MESSAGE_CREATE", "refused")
        await until(lambda: "refused" in bot.outcomes)

    with LoopbackPlatform(config=PLATFORM) as lp:
        bot = run_bot(lp, lambda: bridged(lp, ReplyOutcomes), scenario)
        counters = lp.counters
    assert isinstance(bot, ReplyOutcomes)
    assert isinstance(bot.outcomes["transient"]["id"], str)
    assert isinstance(bot.outcomes["expired-token"]["id"], str)
    refused = bot.outcomes["refused"]
    assert isinstance(refused, ServerError) and refused.code == 304028 and "304028" in str(refused)
    assert counters.messages_received == 2 and counters.token_fetches == 2


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_banned_bot_gets_gateway_fatal_error_out_of_start(transport: str) -> None:
    async def main(lp: LoopbackPlatform) -> None:
        bot = bridged(lp, EchoBot, transport=transport)
        running = asyncio.ensure_future(bot.start(appid=PLATFORM.app_id, secret=PLATFORM.client_secret))
        await until(lambda: lp.counters.ready_sent == 1)
        lp.call(lambda p, now: p.close_gateway(4915, now))
        with pytest.raises(GatewayFatalError) as raised:
            await asyncio.wait_for(running, 10)
        assert raised.value.close_code == 4915
        assert bot.is_closed()

    with LoopbackPlatform(config=PLATFORM) as lp:
        asyncio.run(main(lp))
