"""``qqproto demo``: a bot on a transport against the fake platform on loopback, through scheduled faults."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from qqproto import Action, Dispatch, GatewayConfig, Health, Ready, ReconnectScheduled, Resumed, TimerLate
from qqproto.testing import DispatchGenerator, FakeQQPlatform, PlatformConfig
from qqproto.testing.serve import LoopbackPlatform

from . import _drive
from ._table import render

Fault = Callable[[FakeQQPlatform, float], None]


def _gateway_node_down(platform: FakeQQPlatform, now: float) -> None:
    platform.drop_connections(now)
    platform.fail_upgrades(3)


# When (as a share of the run) each fault strikes, and what it is.
FAULTS: tuple[tuple[float, str, Fault], ...] = (
    (0.10, "idle session closed with 4009", lambda p, now: p.close_gateway(4009, now, "Session timed out")),
    (0.22, "op 7: the platform asks for a reconnect", lambda p, now: p.send_reconnect(now)),
    (0.34, "op 9 (resumable)", lambda p, now: p.invalidate_session(now, resumable=True)),
    (0.46, "half-open silence: the socket stays open, nothing answers", lambda p, now: p.go_silent(now)),
    (0.64, "gateway node down, and /gateway rate limited", _gateway_node_down),
)
EVENTS_UNTIL = 0.85
EVENT_EVERY = 0.1
SETTLE = 10.0


def add_parser(commands: Any) -> None:
    """Register the subcommand."""
    parser = commands.add_parser("demo", help="run a bot against the bundled fake platform through faults")
    parser.add_argument("--transport", choices=_drive.TRANSPORTS, default="thread", help="default: thread")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the faults go on (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the fake platform")
    parser.add_argument("--webhook", action="store_true", help="webhook mode: the fake pushes to a local HTTPS server")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo; exit 0 when the session survived every fault and no event was lost or repeated."""
    if args.seconds < 10:
        print("qqproto demo: --seconds must be at least 10", file=sys.stderr)
        return 2
    if args.webhook:
        from ._demo_webhook import run_webhook

        return run_webhook(args)
    platform_config = PlatformConfig(heartbeat_interval_ms=1000, heartbeat_timeout=3.0, gateway_rate_limit=(1, 3600.0))
    with LoopbackPlatform(config=platform_config, seed=args.seed) as loopback:
        demo = _Demo(args.seconds, loopback)
        config = GatewayConfig(
            app_id=platform_config.app_id,
            client_secret=platform_config.client_secret,
            api_base=loopback.api_base,
            token_url=loopback.token_url,
            backoff_base=0.1,
            backoff_cap=2.0,
            cooldown=2.0,
            cooldown_cap=10.0,
            healthy_after=2.0,
            quick_disconnect_window=0.5,
            invalid_session_delay=(0.1, 0.3),
            late_timer_threshold=0.5,
        )
        print(f"qqproto demo: {args.transport} transport, fake platform at {loopback.api_base}, {args.seconds:g}s")
        pusher = threading.Thread(target=demo.push_and_strike, name="qqproto-demo-faults")
        pusher.start()
        try:
            _drive.run(
                args.transport,
                config,
                loopback.client_ssl_context(),
                on_event=demo.on_event,
                on_tick=demo.on_tick,
                until=demo.finished,
            )
        finally:
            demo.stop.set()
            pusher.join()
        counters = loopback.counters
        abandoned = loopback.call(lambda platform, now: set(platform.abandoned_event_ids))
    return demo.summary(counters.to_dict(), abandoned)


class _Demo:
    """Pushes events and strikes faults from one side, and watches what the bot receives on the other."""

    def __init__(
        self, seconds: float, loopback: LoopbackPlatform, faults: tuple[tuple[float, str, Fault], ...] = FAULTS
    ) -> None:
        self.seconds = seconds
        self.loopback = loopback
        self.faults = faults
        self.stop = threading.Event()
        self.started = time.monotonic()
        self.pushed: set[str] = set()
        self.received: Counter[str] = Counter()
        self.causes: Counter[str] = Counter()
        self.faults_struck: list[str] = []
        self.state = "starting"
        self.health: Health | None = None
        self.lock = threading.Lock()
        self.terminal = sys.stderr.isatty()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def push_and_strike(self) -> None:
        """The platform's side: a steady stream of events, and the faults on their schedule."""
        generator = DispatchGenerator(__import__("random").Random(1))
        faults = list(self.faults)
        count = 0
        while not self.stop.wait(EVENT_EVERY):
            share = self.elapsed() / self.seconds
            while faults and share >= faults[0][0]:
                _, name, fault = faults.pop(0)
                self.loopback.call(fault)
                self.faults_struck.append(name)
                self.say(f"fault: {name}")
            if share < EVENTS_UNTIL:
                count += 1
                event_type, data, _ = generator.next(self.elapsed())
                event_id = f"{event_type}:demo-{count}"
                if self.loopback.call(lambda p, now: p.push_event(event_type, data, now, event_id)) is not None:
                    with self.lock:
                        self.pushed.add(event_id)
            elif share >= 1.0:
                return

    def on_event(self, event: Action) -> None:
        """The bot's side: every event the transport hands out."""
        if isinstance(event, Dispatch):
            with self.lock:
                if event.event_id is not None:
                    self.received[event.event_id] += 1
            self.say(f"dispatch seq={event.seq} {event.event_type}")
        elif isinstance(event, ReconnectScheduled):
            self.causes[event.cause] += 1
            plan = "resume" if event.resume else "identify"
            self.say(f"reconnect in {event.delay:.2f}s to {plan}: {event.reason}")
        elif isinstance(event, (Ready, Resumed)):
            self.say(f"{type(event).__name__.lower()}: session {event.session_id}")
        elif isinstance(event, TimerLate):
            self.say(f"timer late by {event.lag:.2f}s")

    def on_tick(self, health: Health) -> None:
        self.health = health
        self.state = health.state
        if self.terminal:
            latency = "-" if health.heartbeat_latency is None else f"{health.heartbeat_latency * 1000:.1f} ms"
            causes = ", ".join(f"{k} {v}" for k, v in sorted(self.causes.items())) or "none"
            line = (
                f"[{self.elapsed():5.1f}s] {health.state} | hb {latency} | seq {health.last_seq} | reconnects: {causes}"
            )
            print("\r\033[K" + line[:160], end="", file=sys.stderr, flush=True)

    def say(self, text: str) -> None:
        prefix = "\r\033[K" if self.terminal else ""
        print(f"{prefix}{self.elapsed():6.2f}s  {text}", flush=True)

    def finished(self) -> bool:
        """Done once the faults are over and every event has arrived, or when time is up."""
        elapsed = self.elapsed()
        if elapsed < self.seconds:
            return False
        with self.lock:
            caught_up = self.pushed <= set(self.received)
        return (caught_up and self.state in ("connected", "serving")) or elapsed > self.seconds + SETTLE

    def delivery_rows(self, abandoned: set[str]) -> tuple[bool, list[tuple[str, object]]]:
        """Whether every fault struck and every event arrived once (bar ``abandoned``), and the summary's first rows."""
        with self.lock:
            delivered = set(self.received) & self.pushed
            lost = self.pushed - delivered - abandoned
            duplicated = sum(n - 1 for n in self.received.values() if n > 1)
        if self.terminal:
            print("\r\033[K", end="", file=sys.stderr)
        rows: list[tuple[str, object]] = [
            ("faults struck", len(self.faults_struck)),
            ("events pushed", len(self.pushed)),
            ("events delivered", len(delivered)),
            ("events lost", len(lost)),
            ("events duplicated", duplicated),
        ]
        return not lost and not duplicated and len(self.faults_struck) == len(self.faults), rows

    def summary(self, counters: dict[str, Any], abandoned: set[str]) -> int:
        clean, rows = self.delivery_rows(abandoned)
        survived = self.state == "connected" and clean
        rows += [
            ("events dropped by the platform", len(abandoned & self.pushed)),
            ("reconnects by cause", dict(sorted(self.causes.items()))),
            ("identifies", counters["identifies"]),
            ("resumes", counters["resumes"]),
            ("/gateway calls", counters["gateway_calls"]),
            ("/gateway rate limited", counters["gateway_rate_limited"]),
            ("token fetches", counters["token_fetches"]),
            ("heartbeats", counters["heartbeats"]),
            ("final state", self.state),
            ("verdict", "survived" if survived else "FAILED"),
        ]
        print(render(rows, "qqproto demo summary"))
        return 0 if survived else 1
