"""``qqproto connect --shards``: many shards in one process, or one worker of a fleet with ``--coordinator``."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from qqproto import GatewayConfig, SessionStore

if TYPE_CHECKING:
    from transports.asyncio_shards import Shards

__all__ = ["add_arguments", "run_shards", "shards_spec"]

TICK = 0.25


def shards_spec(text: str) -> str | int:
    """``auto`` or a shard count N (the shards 0..N-1)."""
    if text == "auto":
        return "auto"
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise argparse.ArgumentTypeError(f"--shards takes 'auto' or a shard count > 0, not {text!r}")


def seconds(text: str) -> float:
    """A number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"wants a number of seconds > 0, not {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of shard mode."""
    group = parser.add_argument_group("shards: many gateway sessions of one bot (asyncio)")
    group.add_argument("--shards", type=shards_spec, metavar="auto|N", help="run N shards, or as many as suggested")
    group.add_argument(
        "--coordinator",
        metavar="redis://HOST:PORT/DB",
        help="be one worker of a fleet: take shard leases here (start the same command N times)",
    )
    group.add_argument("--lease-ttl", type=seconds, default=10.0, metavar="S", help="shard lease lifetime (default 10)")
    group.add_argument(
        "--identify-window", type=seconds, default=5.0, metavar="S", help=argparse.SUPPRESS
    )  # the platform's 5 s; shorter only against a fake configured the same way


def run_shards(
    args: argparse.Namespace,
    config: GatewayConfig,
    ssl_context: ssl.SSLContext | None,
    store: SessionStore | None,
    *,
    print_line: Callable[[dict[str, Any]], None],
    write_health: Callable[[dict[str, Any]], None],
    until: Callable[[], bool],
) -> None:
    """Run the shards until ``until()`` holds; ``ShardFatalError`` comes out when a shard gives up."""
    if args.transport == "trio":
        raise SystemExit("qqproto connect: --shards runs on asyncio (or thread); not on trio yet")
    from transports.asyncio_shards import open_shards

    coordinator = None
    if args.coordinator:
        from qqproto_shards._redis import RedisCoordinator

        try:
            coordinator = RedisCoordinator(args.coordinator, config.app_id)
        except ValueError as exc:  # not a Redis URL
            raise SystemExit(f"qqproto connect: --coordinator {args.coordinator}: {exc}") from None
    shards: range | Literal["auto"] = "auto" if args.shards == "auto" else range(args.shards)

    async def serve() -> None:
        running = open_shards(
            config,
            shards,
            ssl_context=ssl_context,
            session_store=store,
            coordinator=coordinator,
            lease_ttl=args.lease_ttl,
            identify_window=args.identify_window,
        )
        state = "fatal"
        try:
            async with running:
                await _consume(running, print_line, write_health, until)
                state = "closed"
        finally:
            write_health(_health(running, state))

    try:
        asyncio.run(serve())
    finally:
        if coordinator is not None:
            coordinator.close()


async def _consume(
    running: Shards,
    print_line: Callable[[dict[str, Any]], None],
    write_health: Callable[[dict[str, Any]], None],
    until: Callable[[], bool],
) -> None:
    """Print each event as a line and keep the health file fresh, until ``until()`` holds or the stream ends."""

    async def consume() -> None:
        async for shard_event in running:
            event = shard_event.event
            fields = dataclasses.asdict(event) if dataclasses.is_dataclass(event) else {}
            print_line({"shard": shard_event.shard, "event": type(event).__name__, **fields})

    task = asyncio.ensure_future(consume())
    try:
        while not task.done() and not until():
            await asyncio.wait({task}, timeout=TICK)
            write_health(_health(running, "running"))
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    if not task.cancelled():
        task.result()


def _health(running: Shards, state: str) -> dict[str, Any]:
    """The health file of a shard set: each shard's health, and the fleet's view."""
    fleet = running.fleet_health()
    return {
        "state": state,
        "alive": state == "running",
        "shards": {str(shard): health.to_dict() for shard, health in sorted(running.health().items())},
        "fleet": None if fleet is None else fleet.to_dict(),
    }


def dumps(line: dict[str, Any]) -> str:
    """One JSON line."""
    return json.dumps(line, ensure_ascii=False, default=str)
