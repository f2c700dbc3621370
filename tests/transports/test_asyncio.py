"""What only the asyncio transport has to get right: bytes that arrive with the TLS handshake."""

from __future__ import annotations

import asyncio
import json
import ssl

import trustme

from qqproto import GatewayConfig
from transports.asyncio import open_gateway

TOKEN = json.dumps({"access_token": "early-token", "expires_in": "7200"}).encode()
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(TOKEN), TOKEN)


class _SpeaksFirst(asyncio.Protocol):
    """Answers the instant TLS is up, before the request has come, so the answer rides on the handshake."""

    def __init__(self, connections: list[bytes]) -> None:
        self._connections = connections

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._connections.append(b"")
        transport.write(ANSWER)

    def data_received(self, data: bytes) -> None:
        self._connections[-1] += data


def test_bytes_that_come_with_the_handshake_reach_the_core_after_it_heard_the_socket_opened() -> None:
    connections = asyncio.run(_serve_one_bot())
    assert connections[0].startswith(b"POST /app/getAppAccessToken")
    assert connections[1].startswith(b"GET /gateway/bot") and b"QQBot early-token" in connections[1]


async def _serve_one_bot() -> list[bytes]:
    """What a server that speaks first received from one bot: one request per connection."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    # With TLS 1.2 the server's last handshake flight and its first bytes can arrive together.
    server_context.maximum_version = ssl.TLSVersion.TLSv1_2
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    connections: list[bytes] = []
    server = await asyncio.get_running_loop().create_server(
        lambda: _SpeaksFirst(connections), "127.0.0.1", 0, ssl=server_context
    )
    port = server.sockets[0].getsockname()[1]
    config = GatewayConfig(
        app_id="1",
        client_secret="s",
        api_base=f"https://127.0.0.1:{port}",
        token_url=f"https://127.0.0.1:{port}/app/getAppAccessToken",
    )

    async def second_request() -> None:
        # A second connection is the /gateway/bot call, made only with the token from the first answer.
        while len(connections) < 2 or b"\r\n\r\n" not in connections[1]:
            await asyncio.sleep(0.01)

    async with server, open_gateway(config, client_context) as gateway:
        await asyncio.wait_for(second_request(), 10)
        assert gateway.health().state != "fatal"
    return connections
