"""The same botpy bot on plain botpy 1.2.1 and on qqproto_botpy, through the same faults on the fake platform.

``python -m bench --only botpy`` prints a Markdown table (about seven minutes).  Each side gets a
fresh loopback platform with the Hello interval of production (41.25 s) and the same plan:
messages arrive every 0.25 s and the bot answers each one twice (an acknowledgement, then
the answer); the platform closes the session with 4009, sends op 7 followed by 4009, and
finally turns the socket into a silent, half-open one.  Plain botpy reaches the platform
through :func:`bench.botpy_net.botpy_on_loopback`; the bridged bot through its
``api_base``/``token_url``/``ssl_context`` arguments.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import botpy
from botpy.message import C2CMessage, GroupMessage

import qqproto_botpy
from qqproto.testing import PlatformConfig
from qqproto.testing.serve import LoopbackPlatform

from .botpy_net import botpy_on_loopback

__all__ = ["FULL_PLAN", "SMOKE_PLAN", "Plan", "Result", "markdown", "run"]

INTENTS = botpy.Intents(public_messages=True)


@dataclass(frozen=True)
class Plan:
    """When each fault comes, in seconds after the bot is ready, and how long the run lasts."""

    heartbeat_interval_ms: int
    close_4009: float
    reconnect_op7: float
    half_open: float
    end: float
    message_every: float = 0.25


FULL_PLAN = Plan(heartbeat_interval_ms=41250, close_4009=75.0, reconnect_op7=100.0, half_open=120.0, end=200.0)
SMOKE_PLAN = Plan(heartbeat_interval_ms=41250, close_4009=1.0, reconnect_op7=2.0, half_open=3.0, end=4.0)


@dataclass
class Result:
    """What one side of the comparison saw."""

    delivered: int
    lost: int
    duplicated: int
    after_4009: float | None
    half_open_noticed: float | None
    heartbeats: int
    heartbeats_asked: float
    replies_rejected: int


class _Handlers:
    """The bot's handlers, written as botpy's examples write them, plus a record of each arrival."""

    arrivals: dict[str, float]
    counts: Counter[str]
    errors: int = 0

    def _record(self, msg_id: str) -> None:
        self.arrivals.setdefault(msg_id, time.monotonic())
        self.counts[msg_id] += 1

    async def on_group_at_message_create(self, message: GroupMessage) -> None:
        self._record(message.id)
        await message.reply(content="working on it")
        await message.reply(content=f"done: {message.content}")

    async def on_c2c_message_create(self, message: C2CMessage) -> None:
        self._record(message.id)
        await message.reply(content="working on it")
        await message.reply(content=f"done: {message.content}")

    async def on_error(self, event_method: str, *args: Any, **kwargs: Any) -> None:
        """A handler raised (a rejected reply): count it instead of printing its traceback."""
        self.errors += 1


class PlainBot(_Handlers, botpy.Client):  # type: ignore[misc]
    """The bot on botpy's own gateway."""


class BridgedBot(_Handlers, qqproto_botpy.Client):
    """The same bot on qqproto's gateway: only the base class differs."""


def run(plan: Plan = FULL_PLAN) -> dict[str, Result]:
    """Both sides, one after the other."""
    return {"botpy 1.2.1": _side(plan, bridged=False), "qqproto_botpy": _side(plan, bridged=True)}


def _side(plan: Plan, bridged: bool) -> Result:
    config = PlatformConfig(heartbeat_interval_ms=plan.heartbeat_interval_ms)
    with LoopbackPlatform(config=config) as lp:
        if bridged:
            return asyncio.run(_play(lp, plan, bridged))
        with botpy_on_loopback(lp):
            return asyncio.run(_play(lp, plan, bridged))


async def _play(lp: LoopbackPlatform, plan: Plan, bridged: bool) -> Result:
    pc = lp.platform.config
    if bridged:
        context = lp.client_ssl_context()
        bot: Any = BridgedBot(
            intents=INTENTS, bot_log=False, ssl_context=context, api_base=lp.api_base, token_url=lp.token_url
        )
    else:
        bot = PlainBot(intents=INTENTS, bot_log=False)
    bot.arrivals, bot.counts = {}, Counter()
    running = asyncio.ensure_future(bot.start(appid=pc.app_id, secret=pc.client_secret))
    while not lp.counters.ready_sent:
        await asyncio.sleep(0.05)
    started = time.monotonic()
    faults: list[tuple[float, Callable[[Any, float], None]]] = [
        (plan.close_4009, lambda p, now: p.close_gateway(4009, now)),
        (plan.reconnect_op7, lambda p, now: p.send_reconnect(now)),
        (plan.reconnect_op7 + 1.0, lambda p, now: p.close_gateway(4009, now)),  # the platform's close after op 7
        (plan.half_open, lambda p, now: p.go_silent(now)),
    ]
    pushed: dict[str, float] = {}
    calm_heartbeats = 0  # heartbeats before the first fault
    silence: tuple[float, int] | None = None  # when, and how many connections there had been
    noticed: float | None = None
    while (elapsed := time.monotonic() - started) < plan.end:
        while faults and faults[0][0] <= elapsed:
            at, fault = faults.pop(0)
            if at == plan.close_4009:
                calm_heartbeats = lp.counters.heartbeats
            if at == plan.half_open:
                silence = (time.monotonic(), lp.counters.ws_connections)
            lp.call(fault)
        if silence is not None and noticed is None and lp.counters.ws_connections > silence[1]:
            noticed = time.monotonic() - silence[0]
        msg_id = f"m{len(pushed)}"
        event_type = "GROUP_AT_MESSAGE_CREATE" if len(pushed) % 2 else "C2C_MESSAGE_CREATE"
        pushed[msg_id] = time.monotonic()
        lp.call(lambda p, now: p.push_event(event_type, _message(msg_id), now))
        await asyncio.sleep(plan.message_every)
    await asyncio.sleep(2.0)  # replies in flight land
    refusals = lp.counters.message_refusals
    await bot.close()
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    assert silence is not None
    return Result(
        delivered=len(bot.counts),
        lost=len(pushed) - len(bot.counts),
        duplicated=sum(count - 1 for count in bot.counts.values()),
        after_4009=_first_after(bot.arrivals, pushed, started + plan.close_4009),
        half_open_noticed=noticed,
        heartbeats=calm_heartbeats,
        heartbeats_asked=plan.close_4009 / (plan.heartbeat_interval_ms / 1000),
        replies_rejected=sum(refusals.values()),
    )


def _first_after(arrivals: dict[str, float], pushed: dict[str, float], fault_at: float) -> float | None:
    """Seconds from the fault to the first handler call for a message pushed after it."""
    after = [arrivals[m] for m, at in pushed.items() if at > fault_at and m in arrivals]
    return min(after) - fault_at if after else None


def _message(msg_id: str) -> dict[str, Any]:
    author = {"member_openid": "MEMBER1", "user_openid": "USER1"}
    stamp = "2025-01-01T08:00:00+08:00"
    return {"id": msg_id, "content": "ping", "group_openid": "GROUP1", "author": author, "timestamp": stamp}


def markdown(results: dict[str, Result], plan: Plan) -> str:
    """The comparison as a Markdown table, one column per side."""
    rows: list[tuple[str, Callable[[Result], str]]] = [
        ("events delivered", lambda r: str(r.delivered)),
        ("events lost", lambda r: str(r.lost)),
        ("events duplicated", lambda r: str(r.duplicated)),
        ("4009 → events flowing again", lambda r: _seconds(r.after_4009)),
        ("half-open socket noticed after", lambda r: _seconds(r.half_open_noticed, plan.end - plan.half_open)),
        (f"heartbeats in the calm first {plan.close_4009:g} s / what Hello asked for", _heartbeats),
        ("replies rejected", lambda r: str(r.replies_rejected)),
    ]
    sides = list(results)
    lines = ["| | " + " | ".join(sides) + " |", "| --- |" + " --- |" * len(sides)]
    for label, cell in rows:
        lines.append(f"| {label} | " + " | ".join(cell(results[side]) for side in sides) + " |")
    return "\n".join(lines)


def _heartbeats(result: Result) -> str:
    return f"{result.heartbeats} / {result.heartbeats_asked:.1f}"


def _seconds(value: float | None, waited: float | None = None) -> str:
    if value is None:
        return f"not within {waited:g} s" if waited is not None else "never"
    return f"{value:.2f} s"
