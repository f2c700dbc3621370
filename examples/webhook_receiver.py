"""A minimal QQ bot webhook receiver: verifies each callback, answers it, prints each event once.

    QQBOT_SECRET=... python examples/webhook_receiver.py --port 8080

Put it behind an HTTPS proxy on port 80, 443, 8080 or 8443 (the platform requires HTTPS) and set
its URL as the callback address in the QQ bot console.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from qqproto.webhook import WebhookReceiver


def serve(port: int, secret: str) -> None:
    receiver = WebhookReceiver(secret)

    class Callback(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            answer = receiver.handle(dict(self.headers.items()), body, time.time())
            if answer.event is not None:
                event = answer.event
                print(json.dumps({"t": event.event_type, "id": event.event_id, "d": event.data}, ensure_ascii=False), flush=True)
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Callback)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    serve(args.port, os.environ["QQBOT_SECRET"])
