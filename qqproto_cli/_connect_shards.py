"""``qqproto connect --shards``: many shards in one process, or one worker of a fleet with ``--coordinator``."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from qqproto import GatewayConfig, SessionStore

if TYPE_CHECKING:
    from transports import asyncio_shards, trio_shards
    from transports._shard_set import ShardEvent

    Shards = asyncio_shards.Shards | trio_shards.Shards

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
    group = parser.add_argument_group("shards: many gateway sessions of one bot (asyncio or trio)")
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
    coordinator = None
    if args.coordinator:
        from qqproto_shards._redis import RedisCoordinator

        try:
            coordinator = RedisCoordinator(args.coordinator, config.app_id)
        except ValueError as exc:  # not a Redis URL
            raise SystemExit(f"qqproto connect: --coordinator {args.coordinator}: {exc}") from None
    options: dict[str, Any] = {
        "shards": "auto" if args.shards == "auto" else range(args.shards),
        "ssl_context": ssl_context,
        "session_store": store,
        "coordinator": coordinator,
        "lease_ttl": args.lease_ttl,
        "identify_window": args.identify_window,
    }
    try:
        if args.transport == "trio":
            import trio

            trio.run(_serve_trio, config, options, print_line, write_health, until)
        else:
            asyncio.run(_serve_asyncio(config, options, print_line, write_health, until))
    finally:
        if coordinator is not None:
            coordinator.close()


async def _serve_asyncio(
    config: GatewayConfig,
    options: dict[str, Any],
    print_line: Callable[[dict[str, Any]], None],
    write_health: Callable[[dict[str, Any]], None],
    until: Callable[[], bool],
) -> None:
    from transports.asyncio_shards import open_shards

    running = open_shards(config, **options)
    state = "fatal"
    try:
        async with running:
            await _consume(running, print_line, write_health, until)
            state = "closed"
    finally:
        write_health(_health(running, state))


async def _serve_trio(
    config: GatewayConfig,
    options: dict[str, Any],
    print_line: Callable[[dict[str, Any]], None],
    write_health: Callable[[dict[str, Any]], None],
    until: Callable[[], bool],
) -> None:
    import trio

    from transports.trio import one_error_as_itself
    from transports.trio_shards import open_shards

    opened: list[trio_shards.Shards] = []
    state = "fatal"
    try:
        async with open_shards(config, **options) as running:
            opened.append(running)
            with one_error_as_itself():
                async with trio.open_nursery() as nursery:

                    async def consume() -> None:
                        async for shard_event in running:
                            print_line(_line(shard_event))
                        nursery.cancel_scope.cancel()

                    nursery.start_soon(consume)
                    while not until():
                        await trio.sleep(TICK)
                        write_health(_health(running, "running"))
                    nursery.cancel_scope.cancel()
            state = "closed"
    finally:
        write_health(_health(opened[0] if opened else None, state))


async def _consume(
    running: Shards,
    print_line: Callable[[dict[str, Any]], None],
    write_health: Callable[[dict[str, Any]], None],
    until: Callable[[], bool],
) -> None:
    """Print each event as a line and keep the health file fresh, until ``until()`` holds or the stream ends."""

    async def consume() -> None:
        async for shard_event in running:
            print_line(_line(shard_event))

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


def _line(shard_event: ShardEvent) -> dict[str, Any]:
    """An event as a printed line: its shard, its kind, its fields."""
    event = shard_event.event
    fields = dataclasses.asdict(event) if dataclasses.is_dataclass(event) else {}
    return {"shard": shard_event.shard, "event": type(event).__name__, **fields}


def _health(running: Shards | None, state: str) -> dict[str, Any]:
    """The health file of a shard set (None: it never started): each shard's health, and the fleet's view."""
    fleet = None if running is None else running.fleet_health()
    shards = {} if running is None else running.health()
    return {
        "state": state,
        "alive": state == "running",
        "shards": {str(shard): health.to_dict() for shard, health in sorted(shards.items())},
        "fleet": None if fleet is None else fleet.to_dict(),
    }


def dumps(line: dict[str, Any]) -> str:
    """One JSON line."""
    return json.dumps(line, ensure_ascii=False, default=str)
