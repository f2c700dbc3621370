"""A bot on asyncio: print every message event, and stop with the reason if the platform says no for good.

qqproto serve-fake --heartbeat-ms 5000 --events-per-second 2 --run python examples/asyncio_bot.py
"""

from __future__ import annotations

import asyncio
import sys

from settings import gateway_config, ssl_context

from qqproto import Dispatch, Ready, ReconnectScheduled, Resumed
from transports.asyncio import GatewayFatalError, open_gateway


async def main() -> int:
    # Entering the block connects (token, /gateway/bot, Identify); leaving it closes gracefully.
    async with open_gateway(gateway_config(), ssl_context()) as gateway:
        try:
            async for event in gateway:
                if isinstance(event, Dispatch):
                    # Each event comes once, in seq order, including those replayed after a resume.
                    text = event.data.get("content", "")[:40]
                    print(f"event {event.event_type} seq={event.seq}: {text!r}", flush=True)
                elif isinstance(event, (Ready, Resumed)):
                    print(f"{type(event).__name__}: session {event.session_id}", flush=True)
                elif isinstance(event, ReconnectScheduled):
                    # Reconnects are the library's business; this is only for the log.
                    print(f"reconnecting in {event.delay:.1f}s ({event.cause})", flush=True)
        except GatewayFatalError as exc:
            # The one way the loop ends badly: the reason says what to fix (a wrong secret, a banned bot, ...).
            print(f"stopped for good: {exc.reason}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
