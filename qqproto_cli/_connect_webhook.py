"""``qqproto connect --webhook``: serve the platform's callbacks on hypercorn, each event one JSON line."""

from __future__ import annotations

import argparse
import json
import ssl
import sys
from collections.abc import Callable

from qqproto import Action, GatewayConfig, Health

TICK = 0.25


def listen_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8443`` for IPv6) to its parts."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"--listen wants HOST:PORT, not {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def run_webhook(
    args: argparse.Namespace,
    config: GatewayConfig,
    on_event: Callable[[Action], None],
    on_tick: Callable[[Health], None],
) -> int:
    """Serve until interrupted; exit 1 with the reason when the server cannot run."""
    import anyio

    from transports._common import GatewayFatalError

    if bool(args.certfile) != bool(args.keyfile):
        print("qqproto connect: --certfile and --keyfile go together", file=sys.stderr)
        return 2
    context: ssl.SSLContext | None = None
    if args.certfile:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.certfile, args.keyfile)
    host, port = args.listen
    backend = "trio" if args.transport == "trio" else "asyncio"
    try:
        api_context = ssl.create_default_context(cafile=args.ca_file) if args.ca_file else None
        anyio.run(
            _serve, backend, config, host, port, context, api_context, args.ack, on_event, on_tick, backend=backend
        )
    except GatewayFatalError as exc:
        print(json.dumps({"event": "Fatal", "reason": exc.reason, "close_code": exc.close_code}), flush=True)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


async def _serve(
    backend: str,
    config: GatewayConfig,
    host: str,
    port: int,
    context: ssl.SSLContext | None,
    api_context: ssl.SSLContext | None,
    ack: str,
    on_event: Callable[[Action], None],
    on_tick: Callable[[Health], None],
) -> None:
    import anyio

    from transports._webhook_gateway import open_webhook_on

    async with open_webhook_on(backend, config, host, port, context, ack=ack, api_ssl_context=api_context) as gateway:
        print(json.dumps({"event": "Listening", "url": gateway.url}), flush=True)
        async with anyio.create_task_group() as tasks:

            async def tick() -> None:
                while True:
                    on_tick(gateway.health())
                    await anyio.sleep(TICK)

            tasks.start_soon(tick)
            async for event in gateway:
                on_event(event)
            tasks.cancel_scope.cancel()
