"""A bot whose handler blocks (a slow API call, CPU work): the connection lives on its own thread.

    qqproto serve-fake --heartbeat-ms 2000 --events-per-second 2 --run python examples/thread_bot.py

Each event takes the handler longer than a heartbeat interval, yet heartbeats go out on time
from the gateway's thread: the printed latency stays small and the session is never lost.
"""

from __future__ import annotations

import sys
import time

from settings import gateway_config, ssl_context

from qqproto import Dispatch
from transports.threaded import GatewayFatalError, GatewayThread

HANDLER_SECONDS = 2.5  # longer than the fake's 2 s heartbeat interval above


def handle(event: Dispatch) -> None:
    """Stands for real work that blocks: a synchronous HTTP client, a model call, a database."""
    time.sleep(HANDLER_SECONDS)


def main() -> int:
    gateway = GatewayThread(gateway_config(), ssl_context())
    gateway.start()
    try:
        for event in gateway.events():  # blocks this thread only
            if isinstance(event, Dispatch):
                handle(event)
                health = gateway.health()  # safe from any thread
                latency = "-" if health.heartbeat_latency is None else f"{health.heartbeat_latency * 1000:.0f} ms"
                print(f"event {event.event_type} seq={event.seq} handled; heartbeat latency {latency}", flush=True)
    except GatewayFatalError as exc:
        print(f"stopped for good: {exc.reason}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        gateway.stop()  # closes gracefully and ends the thread
    return 0


if __name__ == "__main__":
    sys.exit(main())
