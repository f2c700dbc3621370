"""``qqproto serve-fake``: the fake platform on loopback with TLS, for an adapter's own integration tests."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import random
import secrets
import signal
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

from qqproto.testing import PLANS, PlatformConfig
from qqproto.testing._control import CONTROL_PREFIX, Control
from qqproto.testing.serve import LoopbackPlatform

from ._live_fake import LiveFeed


def add_parser(commands: Any) -> None:
    """Register the subcommand."""
    parser = commands.add_parser("serve-fake", help="serve the fake QQ platform on 127.0.0.1 with TLS")
    parser.add_argument("--heartbeat-ms", type=int, default=41250, help="Hello's heartbeat_interval (default 41250)")
    parser.add_argument("--session-lifetime", type=float, default=None, help="close each socket with 4009 after N s")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the platform")
    parser.add_argument("--events-per-second", type=float, default=0.0, metavar="N", help="push N events a second")
    parser.add_argument("--plan", choices=sorted(PLANS), help="strike this fault plan's faults on the wall clock")
    parser.add_argument(
        "--plan-speed", type=float, default=1.0, metavar="X", help="play the plan X times as fast (default 1)"
    )
    parser.add_argument("--control-token", help="the control endpoint's bearer token (default: a random one)")
    shards = parser.add_argument_group("shards and session starts (what /gateway/bot reports, and enforced)")
    for flag, field, convert, metavar, what in SHARD_FLAGS:
        shards.add_argument(flag, dest=field, type=convert, metavar=metavar, help=what)
    parser.add_argument(
        "--run",
        dest="command_to_run",
        nargs=argparse.REMAINDER,
        metavar="COMMAND",
        help="run COMMAND with the QQBOT_* variables set to reach the fake, and stop when it ends",
    )
    parser.add_argument(
        "--webhook-url", metavar="URL", help="push events to this callback URL (op 13 validation first)"
    )
    parser.add_argument("--webhook-ca", metavar="PEM", help="trust this CA for the callback URL's certificate")
    parser.set_defaults(run=run)


def _whole_number(least: int, most: int = 10**9) -> Callable[[str], int]:
    """An argparse type: a whole number from ``least`` to ``most``."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = least - 1
        if not least <= value <= most:
            raise argparse.ArgumentTypeError(f"wants a whole number from {least} to {most}, not {text!r}")
        return value

    return convert


def _seconds(text: str) -> float:
    """An argparse type: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"wants a positive number of seconds, not {text!r}")
    return value


#: The most shards the fake serves: the counters list every shard, so the count stays within reason.
MAX_SHARDS = 10_000

#: Flags that set the platform's shard and session-start limits: flag, PlatformConfig field, type, metavar, help.
SHARD_FLAGS: tuple[tuple[str, str, Callable[[str], Any], str, str], ...] = (
    (
        "--shards",
        "shards_suggested",
        _whole_number(1, MAX_SHARDS),
        "N",
        "the shard count /gateway/bot suggests and the most an Identify may give (default 1)",
    ),
    (
        "--max-concurrency",
        "max_concurrency",
        _whole_number(1),
        "M",
        "Identifies per window, one per bucket shard_id %% M (default 1)",
    ),
    ("--identify-window", "identify_window", _seconds, "S", "seconds of one max_concurrency window (default 5)"),
    (
        "--session-starts",
        "session_start_total",
        _whole_number(0),
        "T",
        "session_start_limit's total: session starts per reset period (default 1000)",
    ),
    (
        "--starts-reset-after",
        "session_start_window",
        _seconds,
        "S",
        "seconds from the first session start until all are back (default 86400)",
    ),
)


def platform_config(args: argparse.Namespace) -> PlatformConfig:
    """The platform's settings from the command line: a plan's, if one is named, then the flags."""
    config = PlatformConfig(heartbeat_interval_ms=args.heartbeat_ms, session_lifetime=args.session_lifetime)
    if args.plan:
        platform = PLANS[args.plan].platform
        lifetime = platform.session_lifetime
        config = dataclasses.replace(
            platform,
            heartbeat_interval_ms=args.heartbeat_ms,
            session_lifetime=args.session_lifetime or (lifetime / args.plan_speed if lifetime else None),
        )
    given = {field: getattr(args, field) for _, field, _, _, _ in SHARD_FLAGS if getattr(args, field) is not None}
    return dataclasses.replace(config, **given)


def environment(loopback: LoopbackPlatform, config: PlatformConfig, token: str) -> dict[str, str]:
    """What a bot needs to reach the fake, as the variables the examples read."""
    return {
        "QQBOT_APP_ID": config.app_id,
        "QQBOT_SECRET": config.client_secret,
        "QQBOT_API_BASE": loopback.api_base,
        "QQBOT_TOKEN_URL": loopback.token_url,
        "QQBOT_CA_FILE": loopback.ca_pem_path,
        "QQBOT_CONTROL_URL": f"{loopback.api_base}{CONTROL_PREFIX}",
        "QQBOT_CONTROL_TOKEN": token,
    }


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted, after printing what a client needs to reach the fake."""
    if args.plan_speed <= 0 or args.events_per_second < 0:
        print("qqproto serve-fake: --plan-speed must be positive and --events-per-second not negative", file=sys.stderr)
        return 2
    config = platform_config(args)
    plan = PLANS[args.plan] if args.plan else None
    token = args.control_token or secrets.token_urlsafe(18)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopped.set())  # stop cleanly, removing the CA file
    with LoopbackPlatform(config=config, seed=args.seed) as loopback:
        control = Control(loopback.platform, token, random.Random(args.seed))
        loopback.call(lambda platform, now: setattr(platform, "control", control))
        feed = LiveFeed(
            loopback,
            control,
            events_per_second=args.events_per_second,
            plan=plan,
            speed=args.plan_speed,
            seed=args.seed,
        )
        print(f"api_base       {loopback.api_base}")
        print(f"token_url      {loopback.token_url}")
        print(f"gateway_url    {loopback.gateway_url}")
        print(f"ca_pem_path    {loopback.ca_pem_path}")
        print(f"app_id         {config.app_id}")
        print(f"client_secret  {config.client_secret}")
        print(f"control_url    {loopback.api_base}{CONTROL_PREFIX}")
        print(f"control_token  {token}")
        if args.webhook_url:
            context = ssl.create_default_context(cafile=args.webhook_ca)
            loopback.push_to(args.webhook_url, context)
            print(f"webhook_url    {args.webhook_url} (events are pushed there, not to the gateway)")
        print("Trust ca_pem_path in your client's SSL context. Ctrl-C or SIGTERM stops the server.", flush=True)
        feed.start()
        try:
            if args.command_to_run:
                return _run_command(args.command_to_run, environment(loopback, config, token), stopped)
            stopped.wait()
        except KeyboardInterrupt:
            pass
        finally:
            feed.stop()
    return 0


def _run_command(command: list[str], variables: dict[str, str], stopped: threading.Event) -> int:
    """Run ``command`` against the fake until it ends (its exit status) or the server is told to stop (0)."""
    child = subprocess.Popen(command, env={**os.environ, **variables})

    def watch() -> None:
        child.wait()
        stopped.set()

    threading.Thread(target=watch, daemon=True).start()
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    if child.poll() is not None:
        return child.returncode
    child.terminate()  # the server was told to stop: the command ends with it
    try:
        child.wait(timeout=5)
    except subprocess.TimeoutExpired:
        child.kill()
    return 0
