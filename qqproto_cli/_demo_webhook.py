"""``qqproto demo --webhook``: the fake platform pushes to a local hypercorn over TLS, through scheduled faults."""

from __future__ import annotations

import argparse
import ssl
import sys
import threading
from collections.abc import Callable
from typing import Any

import anyio
import trustme

from qqproto import GatewayConfig, Health
from qqproto.testing import FakeQQPlatform, PlatformConfig
from qqproto.testing.serve import LoopbackPlatform
from qqproto.testing.serve_push import WebhookPushClient

from ._table import render
from .demo import _Demo

#: How long the receiver stays down when that fault strikes.
DOWN_FOR = 2.0


def _faults(down: threading.Event) -> tuple[tuple[float, str, Callable[[FakeQQPlatform, float], None]], ...]:
    def pusher(platform: FakeQQPlatform) -> Any:
        assert platform.webhook is not None
        return platform.webhook

    return (
        (0.10, "every push of the next 3 events sent twice", lambda p, now: pusher(p).duplicate_next(3)),
        (0.25, "the next 3 events delayed by 1 s", lambda p, now: pusher(p).delay_next(3, 1.0)),
        (0.40, "the next 3 pushes badly signed", lambda p, now: pusher(p).sign_badly_next(3)),
        (0.55, "pushes held for 1 s, then sent as one burst", lambda p, now: pusher(p).hold(now + 1.0)),
        (0.70, f"the receiver down for {DOWN_FOR:g} s", lambda p, now: down.set()),
    )


def run_webhook(args: argparse.Namespace) -> int:
    """Run the demo in webhook mode; exit 0 when every event arrived once and the receiver is serving."""
    backend = "trio" if args.transport == "trio" else "asyncio"
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    platform_config = PlatformConfig()
    down = threading.Event()
    with LoopbackPlatform(config=platform_config, seed=args.seed) as loopback:
        config = GatewayConfig(
            app_id=platform_config.app_id,
            client_secret=platform_config.client_secret,
            api_base=loopback.api_base,
            token_url=loopback.token_url,
            close_timeout=1.0,
        )
        demo = _WebhookDemo(args.seconds, loopback, _faults(down))
        print(f"qqproto demo: webhook mode on {backend}, fake platform pushing over HTTPS, {args.seconds:g}s")
        pusher = threading.Thread(target=demo.push_and_strike, name="qqproto-demo-faults")
        try:
            anyio.run(demo.serve, backend, config, server_context, client_context, down, pusher, backend=backend)
        finally:
            demo.stop.set()
            if pusher.is_alive():
                pusher.join()
        assert demo.client is not None
        counters = demo.client.counters()
    return demo.webhook_summary(counters.__dict__)


class _WebhookDemo(_Demo):
    """The WebSocket demo's bookkeeping, with a receiver that can be taken down and brought back."""

    client: WebhookPushClient | None = None
    #: Requests accepted and rejected by receivers that have since stopped.
    earlier: tuple[int, int] = (0, 0)

    async def serve(
        self,
        backend: str,
        config: GatewayConfig,
        server_context: ssl.SSLContext,
        client_context: ssl.SSLContext,
        down: threading.Event,
        pusher: threading.Thread,
    ) -> None:
        from transports._webhook_gateway import open_webhook_on

        port = 0
        while not self.finished():
            async with open_webhook_on(
                backend,
                config,
                "127.0.0.1",
                port,
                server_context,
                ack="handled",
                api_ssl_context=self.loopback.client_ssl_context(),
            ) as gateway:
                port = gateway.port
                if self.client is None:
                    self.client = self.loopback.push_to(gateway.url, client_context, retry_base=0.2, retry_cap=1.0)
                    pusher.start()
                with anyio.CancelScope() as scope:

                    async def watch() -> None:
                        while not (self.finished() or down.is_set()):
                            await anyio.sleep(0.25)
                            self.on_tick(gateway.health())
                        scope.cancel()

                    async with anyio.create_task_group() as tasks:
                        tasks.start_soon(watch)
                        async for event in gateway:
                            self.on_event(event)
                self.on_tick(gateway.health())
            if not self.finished():
                final = gateway.health()
                accepted, rejected = self.earlier
                self.earlier = (accepted + final.accepted_requests, rejected + final.rejected_requests)
            if down.is_set():
                self.say(f"receiver down for {DOWN_FOR:g}s")
                self.state = "down"
                await anyio.sleep(DOWN_FOR)
                down.clear()
                self.say("receiver back")

    def on_tick(self, health: Health) -> None:
        self.health = health
        self.state = health.state
        if self.terminal:
            line = (
                f"[{self.elapsed():5.1f}s] {health.state} | webhook | seq {health.last_seq} | "
                f"accepted {health.accepted_requests}, duplicate {health.duplicate_requests}, "
                f"rejected {health.rejected_requests}"
            )
            print("\r\033[K" + line[:160], end="", file=sys.stderr, flush=True)

    def webhook_summary(self, counters: dict[str, Any]) -> int:
        clean, rows = self.delivery_rows(set())
        survived = self.state == "serving" and clean
        health = self.health
        accepted, rejected = self.earlier
        if health is not None:
            accepted, rejected = accepted + health.accepted_requests, rejected + health.rejected_requests
        rows += [
            ("callback validations", counters["validations"]),
            ("push requests", counters["requests"]),
            ("pushes retried", counters["retries"]),
            ("failed pushes by cause", dict(sorted(counters["failures"].items()))),
            ("duplicate pushes", counters["duplicates_sent"]),
            ("bad signatures refused", counters["bad_signatures_refused"]),
            ("requests accepted", accepted),
            ("requests rejected", rejected),
            ("final state", self.state),
            ("verdict", "survived" if survived else "FAILED"),
        ]
        print(render(rows, "qqproto demo summary (webhook)"))
        return 0 if survived else 1
