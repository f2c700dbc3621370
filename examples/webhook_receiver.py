"""A minimal QQ bot webhook receiver: serves the callbacks on hypercorn and prints each event once (it sends nothing).

    QQBOT_SECRET=... python examples/webhook_receiver.py --port 8443 --certfile cert.pem --keyfile key.pem

The platform calls HTTPS URLs on port 80, 443, 8080 or 8443 only; without --certfile/--keyfile
it serves plain HTTP, for a TLS-terminating proxy in front.  Set the URL as the callback
address in the QQ bot console.  Needs the ``webhook`` extra.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl

from qqproto import Dispatch, GatewayConfig
from transports.asyncio import open_webhook


async def serve(port: int, secret: str, context: ssl.SSLContext | None) -> None:
    config = GatewayConfig(app_id=os.environ.get("QQBOT_APP_ID", "0"), client_secret=secret)
    async with open_webhook(config, "127.0.0.1", port, context, sends=False) as gateway:
        print(f"listening on {gateway.url}", flush=True)
        async for event in gateway:
            if not isinstance(event, Dispatch):
                continue
            print(
                json.dumps({"t": event.event_type, "id": event.event_id, "d": event.data}, ensure_ascii=False),
                flush=True,
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--certfile")
    parser.add_argument("--keyfile")
    args = parser.parse_args()
    context = None
    if args.certfile:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.certfile, args.keyfile)
    asyncio.run(serve(args.port, os.environ["QQBOT_SECRET"], context))
