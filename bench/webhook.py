"""Webhook mode: the ASGI app's own cost per callback against a plain aiohttp.web handler, and end to end.

- ``webhook_app_vs_aiohttp``: an aiohttp.web handler that reads the body, verifies its signature,
  parses it and answers op 12, called directly, over the ASGI app called directly and then
  handing the event out; both verify the same pre-signed callbacks, each timed beside the other.
- ``webhook_verify_floor_vs_app``: ed25519 verification alone over the app's cost: the share of
  it no implementation can avoid.
- ``webhook_e2e_events_per_second``: signed POSTs over loopback TLS keep-alive (8 at a time,
  aiohttp client in another thread) into ``open_webhook`` on each runtime.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any
from unittest import mock

import aiohttp
import anyio
import trustme
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from cryptography.exceptions import InvalidSignature

from qqproto import GatewayConfig
from qqproto.webhook import WebhookReceiver
from transports._webhook_gateway import open_webhook_on
from transports.webhook import WebhookApp

from ._settings import Settings
from ._stats import Figures, median, rate

__all__ = ["run"]

SECRET = "bench-secret-0123456789"
CONCURRENCY = 8


def _callbacks(count: int, start: int = 0) -> list[tuple[dict[str, str], bytes]]:
    signer = WebhookReceiver(SECRET)
    stamp = str(int(time.time()))
    out = []
    for n in range(start, start + count):
        d = {
            "id": f"m{n}",
            "content": f"message {n}",
            "author": {"user_openid": "u1"},
            "timestamp": "2024-01-01T00:00:00+08:00",
        }
        body = json.dumps({"op": 0, "s": n + 1, "t": "C2C_MESSAGE_CREATE", "id": f"ev-{n}", "d": d}).encode()
        out.append(({"x-signature-ed25519": signer.sign(stamp, body), "x-signature-timestamp": stamp}, body))
    return out


Handle = Callable[[int], Awaitable[None]]


def _app_handler(callbacks: list[tuple[dict[str, str], bytes]]) -> Handle:
    """Callback ``n`` through the ASGI app called directly, and its event taken."""
    app = WebhookApp(WebhookReceiver(SECRET))
    statuses: list[int] = []

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    calls = []
    for headers, body in callbacks:
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/",
            "headers": [(k.encode(), v.encode()) for k, v in headers.items()]
            + [(b"content-length", str(len(body)).encode())],
        }
        message = {"type": "http.request", "body": body, "more_body": False}

        async def receive(message: Any = message) -> Any:
            return message

        calls.append((scope, receive))

    async def handle(n: int) -> None:
        scope, receive = calls[n]
        await app(scope, receive, send)
        await app.__anext__()
        assert statuses[-1] == 200

    return handle


def _aiohttp_handler(callbacks: list[tuple[dict[str, str], bytes]]) -> Handle:
    """Callback ``n`` through a plain aiohttp.web handler that verifies it, called directly."""
    public = WebhookReceiver(SECRET)._public

    async def handler(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            signature = bytes.fromhex(request.headers["X-Signature-Ed25519"])
            public.verify(signature, request.headers["X-Signature-Timestamp"].encode() + body)
        except (InvalidSignature, KeyError, ValueError):
            return web.json_response({"message": "bad signature"}, status=401)
        json.loads(body)
        return web.json_response({"op": 12, "d": 0})

    requests = []
    for headers, body in callbacks:
        payload = aiohttp.StreamReader(mock.Mock(_reading_paused=False), 2**16, loop=asyncio.get_running_loop())
        payload.feed_data(body)
        payload.feed_eof()
        requests.append(
            make_mocked_request("POST", "/", headers={**headers, "Content-Length": str(len(body))}, payload=payload)
        )

    async def handle(n: int) -> None:
        response = await handler(requests[n])
        assert response.status == 200

    return handle


async def _interleaved(callbacks: list[tuple[dict[str, str], bytes]]) -> tuple[float, float]:
    """Seconds per callback for the app and for aiohttp, each timed right beside the other (the machine's load cancels)."""
    app, plain = _app_handler(callbacks), _aiohttp_handler(callbacks)
    app_times, plain_times = [], []
    for n in range(len(callbacks)):
        started = time.perf_counter()
        await app(n)
        middle = time.perf_counter()
        await plain(n)
        app_times.append(middle - started)
        plain_times.append(time.perf_counter() - middle)
    return median(app_times), median(plain_times)


def _verify_seconds(callbacks: list[tuple[dict[str, str], bytes]]) -> float:
    """Seconds per callback for ed25519 verification alone."""
    public = WebhookReceiver(SECRET)._public
    times = []
    for headers, body in callbacks:
        started = time.perf_counter()
        public.verify(bytes.fromhex(headers["x-signature-ed25519"]), headers["x-signature-timestamp"].encode() + body)
        times.append(time.perf_counter() - started)
    return median(times)


def _e2e_rate(runtime: str, count: int) -> float:
    """Events per second from the first POST to the last event taken, with the server on ``runtime``."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    config = GatewayConfig(app_id="1", client_secret=SECRET, close_timeout=1.0)
    ready, all_taken, client_gone = threading.Event(), threading.Event(), threading.Event()
    port: list[int] = []

    async def serve() -> None:
        async with open_webhook_on(runtime, config, "127.0.0.1", 0, server_context, sends=False) as gateway:
            port.append(gateway.port)
            ready.set()
            taken = 0
            async for _ in gateway:
                taken += 1
                if taken == count:
                    break
            all_taken.set()
            await anyio.to_thread.run_sync(client_gone.wait, 30.0)  # leave no idle connection to wait on

    def server() -> None:
        if runtime == "trio":
            import trio

            trio.run(serve)
        else:
            asyncio.run(serve())

    thread = threading.Thread(target=server)
    thread.start()
    ready.wait(30)
    callbacks = _callbacks(count)

    async def post_all() -> float:
        connector = aiohttp.TCPConnector(ssl=client_context, limit=CONCURRENCY)
        async with aiohttp.ClientSession(connector=connector) as session:
            url = f"https://127.0.0.1:{port[0]}/"
            queue = list(reversed(callbacks))

            async def worker() -> None:
                while queue:
                    headers, body = queue.pop()
                    async with session.post(url, data=body, headers=headers) as response:
                        assert response.status == 200, response.status
                        await response.read()

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
            await asyncio.to_thread(all_taken.wait, 30.0)
            return time.perf_counter() - started

    seconds = asyncio.run(post_all())
    client_gone.set()
    thread.join(30)
    return rate(count, seconds)


def run(settings: Settings) -> Figures:
    """The webhook figures."""
    count = max(50, settings.decode_messages // 8)
    app_times, aiohttp_times, verify_times = [], [], []
    for rep in range(settings.reps):
        callbacks = _callbacks(count, rep * count)
        app_seconds, aiohttp_seconds = asyncio.run(_interleaved(callbacks))
        app_times.append(app_seconds)
        aiohttp_times.append(aiohttp_seconds)
        verify_times.append(_verify_seconds(callbacks))
    e2e_count = max(50, settings.e2e_messages // 25)
    runtimes: dict[str, Callable[[], float]] = {r: (lambda r=r: _e2e_rate(r, e2e_count)) for r in ("asyncio", "trio")}  # type: ignore[misc]
    return {
        "webhook_app_vs_aiohttp": median(aiohttp_times) / median(app_times),
        "webhook_verify_floor_vs_app": median(verify_times) / median(app_times),
        "webhook_e2e_events_per_second": {
            name: median([fn() for _ in range(max(1, settings.reps // 2))]) for name, fn in runtimes.items()
        },
    }
