"""A bot that answers each message, through the library's send policy.

    qqproto serve-fake --heartbeat-ms 5000 --events-per-second 2 --run python examples/reply_bot.py

A reply names the message it answers (``msg_id``) and when it arrived on the transport's clock.
The policy numbers the replies to one message (``msg_seq``), retries rate limits and 5xx
with the same number (so a retry is never delivered twice), refreshes an expired token once,
and sends an answer as an active message once the reply window is about to close.  The
outcome comes back among the events.
"""

from __future__ import annotations

import asyncio
import sys

from settings import gateway_config, ssl_context

from qqproto import Dispatch, MessageFailed, MessageSent, OutgoingMessage, Scene, SendRetryScheduled
from transports.asyncio import GatewayFatalError, open_gateway


def reply_to(event: Dispatch, received_at: float) -> OutgoingMessage | None:
    """An answer to a group @-message or a private message; None for other events."""
    text = {"content": f"got it: {event.data.get('content', '')[:20]}", "msg_type": 0}
    if event.event_type == "GROUP_AT_MESSAGE_CREATE":
        scene, target = Scene.GROUP, event.data["group_openid"]
    elif event.event_type == "C2C_MESSAGE_CREATE":
        scene, target = Scene.C2C, event.data["author"]["user_openid"]
    else:
        return None
    return OutgoingMessage(scene, target, text, msg_id=event.data["id"], received_at=received_at)


async def main() -> int:
    loop = asyncio.get_running_loop()
    async with open_gateway(gateway_config(), ssl_context()) as gateway:
        try:
            async for event in gateway:
                if isinstance(event, Dispatch):
                    reply = reply_to(event, loop.time())
                    if reply is not None:
                        send_id = gateway.send_message(reply)  # returns at once; the outcome follows
                        print(f"event {event.event_type} seq={event.seq}: reply {send_id} queued", flush=True)
                elif isinstance(event, MessageSent):
                    print(f"reply {event.send_id} sent as {event.message_id}", flush=True)
                elif isinstance(event, SendRetryScheduled):
                    print(f"reply {event.send_id} retried in {event.delay:.1f}s: {event.reason}", flush=True)
                elif isinstance(event, MessageFailed):
                    # The platform's code and trace id are what its support asks for.
                    print(f"reply {event.send_id} failed: {event.reason} (trace {event.trace_id})", flush=True)
        except GatewayFatalError as exc:
            print(f"stopped for good: {exc.reason}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
