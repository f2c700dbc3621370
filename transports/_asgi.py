"""The few ASGI 3 moves the webhook app makes: answering, dropping a body, agreeing to lifespan events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["Message", "Receive", "Scope", "Send", "discard", "lifespan", "respond"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def discard(receive: Receive, limit: int) -> None:
    """Read the rest of a refused body without keeping it, at most ``limit`` bytes."""
    while limit > 0:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
        limit -= len(message.get("body", b""))


async def respond(send: Send, status: int, body: bytes) -> None:
    """Answer with a JSON body."""
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    try:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    except OSError:
        pass  # the connection broke while closing (say, a body still arriving after a 413): nothing left to tell


async def lifespan(receive: Receive, send: Send) -> None:
    """Nothing to start or stop: agree to both."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
