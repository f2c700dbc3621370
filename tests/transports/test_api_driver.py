"""A ``QQApiConnection`` needs no gateway: the asyncio driver runs it against the loopback platform over TLS."""

from __future__ import annotations

import asyncio
import random

from harness import TIMEOUT, client_config

import transports.asyncio
from qqproto import MessageSent, OutgoingMessage, QQApiConnection, Scene
from qqproto.testing.serve import LoopbackPlatform
from transports._common import EventQueue


def test_an_api_connection_sends_a_message_through_the_asyncio_driver(lp: LoopbackPlatform) -> None:
    config = client_config(lp)
    message = OutgoingMessage(Scene.GROUP, "group-7", {"content": "hello", "msg_type": 0})

    async def send() -> tuple[MessageSent, str]:
        conn = QQApiConnection(config, random.Random(0), mode="webhook")
        driver = transports.asyncio.Gateway(conn, config, lp.client_ssl_context(), EventQueue(100))
        async with driver:
            send_id = driver.send_message(message)
            event = await asyncio.wait_for(driver.__anext__(), TIMEOUT)
            state = driver.health().state
        assert isinstance(event, MessageSent) and event.send_id == send_id
        return event, state

    sent, state = asyncio.run(send())
    assert state == "connected"
    (received,) = lp.call(lambda platform, now: list(platform.messages.received))
    assert (received.scene, received.target, received.body) == ("group", "group-7", message.body)
    assert sent.message_id is not None and sent.message_id.startswith("msg-")
    counters = lp.counters
    assert (counters.token_fetches, counters.gateway_calls, counters.ws_connections) == (1, 0, 0)
