"""``qqproto connect``: a bot on the real platform, each event one JSON line, health kept in a file."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import ssl
import sys
import tempfile
import threading
import time
from types import FrameType
from typing import Any

from qqproto import SANDBOX_API_BASE, Action, GatewayConfig, Health, Intents, LocalProtocolError, SessionStore
from qqproto_shards import CoordinatorUnavailable, FleetMismatch

from . import _connect_shards, _drive
from ._connect_webhook import listen_address, run_webhook

SECRET_VARIABLE = "QQBOT_SECRET"
DEFAULT_INTENTS = "GROUP_AND_C2C_EVENT,PUBLIC_GUILD_MESSAGES"
HEALTH_EVERY = 1.0


def add_parser(commands: Any) -> None:
    """Register the subcommand."""
    parser = commands.add_parser(
        "connect", help=f"connect to the QQ platform (the client secret is read from ${SECRET_VARIABLE})"
    )
    parser.add_argument("--app-id", required=True, help="the bot's AppID")
    parser.add_argument(
        "--intents",
        default=DEFAULT_INTENTS,
        help=f"comma-separated Intents names, or a number (default {DEFAULT_INTENTS})",
    )
    parser.add_argument("--sandbox", action="store_true", help="use the sandbox OpenAPI host")
    parser.add_argument("--transport", choices=_drive.TRANSPORTS, default="thread", help="default: thread")
    parser.add_argument("--health-file", metavar="PATH", help="keep the current health in PATH as JSON")
    parser.add_argument("--api-base", help="another OpenAPI base, e.g. from qqproto serve-fake")
    parser.add_argument("--token-url", help="another token endpoint, e.g. from qqproto serve-fake")
    parser.add_argument("--ca-file", metavar="PEM", help="trust this CA too (serve-fake prints its path)")
    parser.add_argument(
        "--session-store",
        metavar="STORE",
        help="resume across restarts: sqlite:PATH, or redis://HOST:PORT/DB for many machines",
    )
    _connect_shards.add_arguments(parser)
    webhook = parser.add_argument_group("webhook mode: serve the platform's HTTPS callbacks instead of the gateway")
    webhook.add_argument("--webhook", action="store_true", help="receive events as callbacks (asyncio or trio)")
    webhook.add_argument("--listen", metavar="HOST:PORT", type=listen_address, default=("0.0.0.0", 8443))
    webhook.add_argument("--certfile", metavar="PEM", help="the server certificate chain")
    webhook.add_argument("--keyfile", metavar="PEM", help="its private key (without both: plain HTTP, behind a proxy)")
    webhook.add_argument("--ack", choices=("received", "handled"), default="received", help="when to acknowledge")
    parser.set_defaults(run=run)


def parse_intents(text: str) -> int:
    """``GUILDS,PUBLIC_GUILD_MESSAGES`` or ``1073741825`` to the intents bit mask."""
    if text.strip().isdigit():
        return int(text)
    value = 0
    for name in filter(None, (part.strip().upper() for part in text.split(","))):
        try:
            value |= Intents[name]
        except KeyError:
            known = ", ".join(member.name or "" for member in Intents)
            raise SystemExit(f"qqproto connect: unknown intent {name!r}; known: {known}") from None
    return value


def run(args: argparse.Namespace) -> int:
    """Connect and print events until interrupted; exit 1 with the reason when the core gives up."""
    secret = os.environ.get(SECRET_VARIABLE, "")
    if not secret:
        print(f"qqproto connect: set {SECRET_VARIABLE} to the bot's client secret", file=sys.stderr)
        return 2
    try:
        config = GatewayConfig(app_id=args.app_id, client_secret=secret, intents=parse_intents(args.intents))
        if args.sandbox:
            config = dataclasses.replace(config, api_base=SANDBOX_API_BASE)
        if args.api_base:
            config = dataclasses.replace(config, api_base=args.api_base)
        if args.token_url:
            config = dataclasses.replace(config, token_url=args.token_url)
    except LocalProtocolError as exc:
        print(f"qqproto connect: {exc}", file=sys.stderr)
        return 2
    writer = _HealthFile(args.health_file)
    if args.webhook:
        return run_webhook(args, config, print_event, writer.update)
    from transports._common import GatewayFatalError

    try:
        store = _open_store(args.session_store)
    except Exception as exc:  # a bad spelling, a file it cannot open, a missing redis extra
        print(f"qqproto connect: --session-store {args.session_store}: {exc}", file=sys.stderr)
        return 2
    # SIGTERM (systemd, Kubernetes) and Ctrl-C close gracefully: the last event printed is saved
    # as finished, the session is kept, the health file's last word is "closed", and the exit is 0.
    if args.coordinator and args.shards is None:
        print("qqproto connect: --coordinator needs --shards (auto, or the fleet's shard count)", file=sys.stderr)
        return 2
    if args.coordinator and store is None:
        print(
            "qqproto connect: --coordinator needs --session-store: a taken-over shard resumes from it", file=sys.stderr
        )
        return 2
    stop = _StopOnSignal()
    try:
        ssl_context = ssl.create_default_context(cafile=args.ca_file) if args.ca_file else None
        if args.shards is not None:
            _connect_shards.run_shards(
                args,
                config,
                ssl_context,
                store,
                print_line=lambda line: print(_connect_shards.dumps(line), flush=True),
                write_health=writer.write_json,
                until=stop,
            )
            return 0
        _drive.run(
            args.transport,
            config,
            ssl_context,
            on_event=print_event,
            on_tick=writer.update,
            until=stop,
            on_end=writer.write,
            session_store=store,
        )
    except GatewayFatalError as exc:
        shard = {"shard": exc.shard} if hasattr(exc, "shard") else {}
        try:
            print(
                json.dumps({**shard, "event": "Fatal", "reason": exc.reason, "close_code": exc.close_code}), flush=True
            )
        except BrokenPipeError:
            return _stdout_closed()
        return 1
    except BrokenPipeError:
        return _stdout_closed()
    except (CoordinatorUnavailable, FleetMismatch) as exc:
        print(f"qqproto connect: --coordinator: {exc}", file=sys.stderr)
        return 1
    finally:
        stop.restore()
    return 0


def _open_store(spec: str | None) -> SessionStore | None:
    if spec is None:
        return None
    from qqproto_stores import open_session_store

    return open_session_store(spec)


class _StopOnSignal:
    """SIGTERM and SIGINT ask for a graceful stop, seen by the driver at its next tick."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.requested = threading.Event()
        self._previous = {signum: signal.signal(signum, self._handle) for signum in self.SIGNALS}

    def __call__(self) -> bool:
        return self.requested.is_set()

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested.set()


def _stdout_closed() -> int:
    """Whoever read standard output has gone (``qqproto connect | head``): end quietly, as ``yes | head`` does."""
    # Python would flush stdout again at exit and complain; point it at /dev/null instead.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + signal.SIGPIPE


def print_event(event: Action) -> None:
    """One event as one JSON line on standard output."""
    fields: dict[str, Any] = dataclasses.asdict(event) if dataclasses.is_dataclass(event) else {}
    print(json.dumps({"event": type(event).__name__, **fields}, ensure_ascii=False, default=str), flush=True)


class _HealthFile:
    """Rewrites a file with the latest health, atomically, so a watchdog never reads half a snapshot."""

    def __init__(self, path: str | None) -> None:
        self._path = path
        self._written = 0.0
        self._state: str | None = None

    def update(self, health: Health) -> None:
        """Write ``health`` if the state changed or ``HEALTH_EVERY`` seconds have passed since the last write."""
        if health.state == self._state and time.monotonic() - self._written < HEALTH_EVERY:
            return
        self.write(health)

    def write(self, health: Health) -> None:
        """Write ``health`` now: the final state is written this way, whatever the throttle says."""
        self._state = health.state
        self.write_json(health.to_dict())

    def write_json(self, fields: dict[str, Any]) -> None:
        """Write a snapshot (a shard set's, say) now."""
        if self._path is None:
            return
        self._written = time.monotonic()
        directory = os.path.dirname(os.path.abspath(self._path))
        with tempfile.NamedTemporaryFile("w", dir=directory, delete=False, suffix=".tmp") as handle:
            json.dump({**fields, "written_at": time.time()}, handle)
        os.replace(handle.name, self._path)
