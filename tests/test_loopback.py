"""The fake platform served on loopback TLS, reached with a real TLS client."""

from __future__ import annotations

import json
import os
import random
import socket
import ssl
import struct
import threading
from typing import Any

import h11
import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

from qqproto.testing import FakeQQPlatform, PlatformConfig
from qqproto.testing.serve import LoopbackPlatform

TIMEOUT = 5.0


def connect(server: LoopbackPlatform, context: ssl.SSLContext) -> ssl.SSLSocket:
    raw = socket.create_connection((server.host, server.port), timeout=TIMEOUT)
    return context.wrap_socket(raw, server_hostname=server.host)


def http_json(
    server: LoopbackPlatform, method: str, target: str, body: object = None, token: str = ""
) -> tuple[int, Any]:
    payload = b"" if body is None else json.dumps(body).encode()
    headers = [("host", f"{server.host}:{server.port}"), ("content-length", str(len(payload)))]
    if token:
        headers.append(("authorization", f"QQBot {token}"))
    client = h11.Connection(h11.CLIENT)
    with connect(server, server.client_ssl_context()) as sock:
        sock.sendall(client.send(h11.Request(method=method, target=target, headers=headers)) or b"")
        sock.sendall((client.send(h11.Data(data=payload)) or b"") + (client.send(h11.EndOfMessage()) or b""))
        status, data = 0, bytearray()
        while True:
            event = client.next_event()
            if event is h11.NEED_DATA:
                client.receive_data(sock.recv(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                data += event.data
            elif isinstance(event, h11.EndOfMessage):
                return status, json.loads(data)


def closed_by_peer(sock: socket.socket) -> bool:
    """True if the peer closed ``sock`` (FIN or RST) before sending anything."""
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


class WebSocketClient:
    """A blocking wsproto client over one TLS socket."""

    def __init__(self, server: LoopbackPlatform) -> None:
        self.sock = connect(server, server.client_ssl_context())
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.sock.sendall(self.ws.send(Request(host=f"{server.host}:{server.port}", target="/websocket")))
        self.accepted = False

    def send(self, payload: object) -> None:
        self.sock.sendall(self.ws.send(TextMessage(data=json.dumps(payload))))

    def next_event(self) -> object:
        while True:
            for event in self.ws.events():
                if isinstance(event, AcceptConnection):
                    self.accepted = True
                    continue
                return event
            data = self.sock.recv(65536)
            self.ws.receive_data(data or None)

    def next_payload(self) -> Any:
        event = self.next_event()
        assert isinstance(event, TextMessage), event
        return json.loads(event.data)


def test_token_websocket_and_hello_over_tls() -> None:
    before = threading.active_count()
    with LoopbackPlatform(config=PlatformConfig(heartbeat_interval_ms=30000)) as server:
        assert server.platform.gateway_url == server.gateway_url == f"wss://127.0.0.1:{server.port}/websocket"
        assert server.token_url == f"https://127.0.0.1:{server.port}/app/getAppAccessToken"
        config = server.platform.config
        status, body = http_json(
            server, "POST", "/app/getAppAccessToken", {"appId": config.app_id, "clientSecret": config.client_secret}
        )
        assert status == 200 and body["expires_in"] == "7200"
        token = body["access_token"]
        assert http_json(server, "GET", "/gateway", token=token) == (200, {"url": server.gateway_url})

        client = WebSocketClient(server)
        assert client.next_payload() == {"op": 10, "d": {"heartbeat_interval": 30000}}
        assert client.accepted
        client.send({"op": 2, "d": {"token": f"QQBot {token}", "intents": 1 << 25, "shard": [0, 1]}})
        assert client.next_payload()["t"] == "READY"
        assert server.call(lambda platform, now: platform.has_live_gateway(now))

        seq = server.call(lambda platform, now: platform.push_event("C2C_MESSAGE_CREATE", {"content": "hi"}, now))
        assert client.next_payload()["s"] == seq == 2
        client.send({"op": 1, "d": 2})
        assert client.next_payload() == {"op": 11}

        server.call(lambda platform, now: platform.close_gateway(4009, now))
        closing = client.next_event()
        assert isinstance(closing, CloseConnection) and closing.code == 4009
        assert client.sock.recv(65536) == b""
        client.sock.close()

        counters = server.counters
        assert (counters.ws_connections, counters.heartbeats, counters.close_codes_sent) == (1, 1, {4009: 1})
    assert threading.active_count() == before
    assert not os.path.exists(server.ca_pem_path)
    assert server.counters.ws_connections == 1


def test_default_context_rejects_the_test_ca() -> None:
    with LoopbackPlatform() as server:
        with pytest.raises(ssl.SSLCertVerificationError):
            connect(server, ssl.create_default_context())
        assert http_json(server, "GET", "/nowhere")[0] == 404


def test_refused_connections_are_closed_at_once() -> None:
    with LoopbackPlatform() as server:
        server.call(lambda platform, now: platform.refuse_connections(now + 60))
        with pytest.raises(OSError):
            connect(server, server.client_ssl_context())
        assert server.counters.refused_connections == 1


def test_call_runs_on_the_server_thread_and_raises_what_fn_raises() -> None:
    platform = FakeQQPlatform(PlatformConfig(), rng=random.Random(1))
    server = LoopbackPlatform(platform)
    server.start()
    try:
        assert server.call(lambda p, now: (p is platform, threading.current_thread().name)) == (
            True,
            "qqproto-loopback-platform",
        )
        with pytest.raises(ZeroDivisionError):
            server.call(lambda p, now: 1 / 0)
    finally:
        server.stop()
    with pytest.raises(RuntimeError):
        server.call(lambda p, now: None)


def test_stalled_reset_and_plaintext_clients_do_not_disturb_others() -> None:
    with LoopbackPlatform() as server:
        stalled = socket.create_connection((server.host, server.port), timeout=TIMEOUT)
        plaintext = socket.create_connection((server.host, server.port), timeout=TIMEOUT)
        plaintext.sendall(b"GET /gateway HTTP/1.1\r\nhost: x\r\n\r\n")
        reset = socket.create_connection((server.host, server.port), timeout=TIMEOUT)
        reset.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        reset.close()
        try:
            assert http_json(server, "GET", "/gateway")[0] == 401
            assert closed_by_peer(plaintext)
        finally:
            stalled.close()
            plaintext.close()
