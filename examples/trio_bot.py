"""The same bot on trio; a second task prints the connection's health every few seconds.

qqproto serve-fake --heartbeat-ms 5000 --events-per-second 2 --run python examples/trio_bot.py
"""

from __future__ import annotations

import sys

import trio
from settings import gateway_config, ssl_context

from qqproto import Dispatch
from transports.trio import Gateway, GatewayFatalError, open_gateway


async def report_health(gateway: Gateway) -> None:
    """health() is a cheap snapshot: state, heartbeat latency, reconnects by cause, and more."""
    while True:
        await trio.sleep(5)
        health = gateway.health()
        print(f"health: {health.state}, {health.dispatches_delivered} events, reconnects {health.reconnects_by_cause}")


async def main() -> int:
    try:
        async with open_gateway(gateway_config(), ssl_context()) as gateway, trio.open_nursery() as nursery:
            nursery.start_soon(report_health, gateway)
            async for event in gateway:
                if isinstance(event, Dispatch):
                    print(f"event {event.event_type} seq={event.seq}", flush=True)
            nursery.cancel_scope.cancel()  # the gateway closed: stop reporting
    except GatewayFatalError as exc:
        print(f"stopped for good: {exc.reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(trio.run(main))
