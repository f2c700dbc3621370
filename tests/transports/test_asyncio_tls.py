"""The asyncio driver's own TLS layer against a real TLS peer on loopback: verification, endings, errors."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import threading
from collections.abc import Callable

import pytest
import trustme

from qqproto import GatewayConfig, ReconnectScheduled
from transports.asyncio import Gateway, open_gateway

TOKEN = json.dumps({"access_token": "tls-token", "expires_in": "7200"}).encode()
#: A token answer whose body ends only where the connection ends.
UNTIL_CLOSE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" + TOKEN
DEADLINE = 10.0

Handler = Callable[[socket.socket], None]


class Peer:
    """A TLS server on loopback, one connection at a time on a thread; each connection goes to the next handler."""

    def __init__(self, handlers: list[Handler]) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(DEADLINE)
        self.port = self._listener.getsockname()[1]
        self._handlers = handlers
        self.errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            for handler in self._handlers:
                conn, _ = self._listener.accept()
                conn.settimeout(DEADLINE)
                with conn:
                    handler(conn)
        except BaseException as exc:
            self.errors.append(exc)

    def join(self) -> None:
        self._thread.join(DEADLINE)
        self._listener.close()
        assert not self._thread.is_alive() and not self.errors, self.errors


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(ca: trustme.CA, name: str = "127.0.0.1") -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(context)
    return context


def client_context(ca: trustme.CA | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca is not None:
        ca.configure_trust(context)
    return context


def read_request(tls: ssl.SSLSocket) -> bytes:
    request = b""
    while b"\r\n\r\n" not in request:
        chunk = tls.recv(65536)
        assert chunk, f"the connection ended inside the request {request!r}"
        request += chunk
    return request


def config(port: int, **overrides: float) -> GatewayConfig:
    base = f"https://127.0.0.1:{port}"
    return GatewayConfig(
        app_id="1", client_secret="s", api_base=base, token_url=f"{base}/app/getAppAccessToken", **overrides
    )


async def first_reconnect(cfg: GatewayConfig, context: ssl.SSLContext) -> ReconnectScheduled:
    """Run a gateway until the core gives up on a socket and schedules another try."""
    async with open_gateway(cfg, context) as gateway:
        return await asyncio.wait_for(_next_reconnect(gateway), DEADLINE)


async def _next_reconnect(gateway: Gateway) -> ReconnectScheduled:
    async for event in gateway:
        if isinstance(event, ReconnectScheduled):
            return event
    raise AssertionError("the gateway stopped without scheduling a reconnect")


@pytest.mark.parametrize(
    ("name", "trusted", "why"),
    [
        ("other.example", True, "IP address mismatch"),
        ("127.0.0.1", False, "unable to get local issuer certificate"),
    ],
    ids=["wrong-hostname", "untrusted-ca"],
)
def test_a_certificate_that_fails_verification_fails_the_connect_before_a_byte_is_sent(
    ca: trustme.CA, name: str, trusted: bool, why: str
) -> None:
    context = server_context(ca, name)
    alerts: list[str] = []

    def refuse(conn: socket.socket) -> None:
        with pytest.raises(ssl.SSLError) as refused:
            context.wrap_socket(conn, server_side=True).recv(1)
        alerts.append(str(refused.value))

    peer = Peer([refuse])
    event = asyncio.run(first_reconnect(config(peer.port), client_context(ca if trusted else None)))
    peer.join()
    assert "SSLCertVerificationError" in event.reason and why in event.reason, event.reason
    assert "alert" in alerts[0], alerts  # the client told the peer why it hung up


@pytest.mark.parametrize("ending", ["close_notify", "tcp_eof"])
def test_a_body_that_ends_with_the_connection_reaches_the_core_whether_tls_or_tcp_ends_it(
    ca: trustme.CA, ending: str
) -> None:
    context = server_context(ca)
    requests: list[bytes] = []
    after_end: list[bytes] = []

    def answer_until_close(conn: socket.socket) -> None:
        tls = context.wrap_socket(conn, server_side=True)
        requests.append(read_request(tls))
        tls.sendall(UNTIL_CLOSE)
        if ending == "close_notify":
            raw = tls.unwrap()  # returns once the client answered with its own close_notify
        else:
            tls.shutdown(socket.SHUT_WR)  # FIN with no close_notify before it
            raw = tls
        after_end.append(socket.socket.recv(raw, 100))

    def record(conn: socket.socket) -> None:
        requests.append(read_request(context.wrap_socket(conn, server_side=True)))

    async def run() -> None:
        async with open_gateway(config(peer.port), client_context(ca)):
            await asyncio.get_running_loop().run_in_executor(None, peer.join)

    peer = Peer([answer_until_close, record])
    asyncio.run(run())
    assert requests[1].startswith(b"GET /gateway/bot") and b"QQBot tls-token" in requests[1], requests
    assert after_end == [b""]  # the client then closed TCP, and sent nothing more


def test_a_bad_record_mid_stream_fails_the_socket_with_the_tls_error(ca: trustme.CA) -> None:
    context = server_context(ca)

    def corrupt(conn: socket.socket) -> None:
        raw = conn.dup()
        tls = context.wrap_socket(conn, server_side=True)
        read_request(tls)
        raw.sendall(bytes([23, 3, 3, 0, 32]) + b"\xaa" * 32)  # application data that no key decrypts
        assert raw.recv(100) == b""
        raw.close()

    peer = Peer([corrupt])
    event = asyncio.run(first_reconnect(config(peer.port), client_context(ca)))
    peer.join()
    assert "failed: SSLError: [SSL: DECRYPTION_FAILED_OR_BAD_RECORD_MAC]" in event.reason, event.reason


def test_a_peer_that_hangs_up_during_the_handshake_fails_the_connect(ca: trustme.CA) -> None:
    def hang_up(conn: socket.socket) -> None:
        assert conn.recv(65536)  # the ClientHello

    peer = Peer([hang_up])
    event = asyncio.run(first_reconnect(config(peer.port), client_context(ca)))
    peer.join()
    assert "ConnectionResetError: the connection ended during the TLS handshake" in event.reason, event.reason


def test_a_handshake_that_never_finishes_is_aborted_when_the_core_stops_waiting(ca: trustme.CA) -> None:
    ended = threading.Event()

    def stall(conn: socket.socket) -> None:
        assert conn.recv(65536)  # the ClientHello, never answered
        while conn.recv(65536):
            pass
        ended.set()

    async def run() -> ReconnectScheduled:
        async with open_gateway(config(peer.port, connect_timeout=0.3), client_context(ca)) as gateway:
            event = await asyncio.wait_for(_next_reconnect(gateway), DEADLINE)
            # Still inside ``async with``: the connect timed out, and that alone closed the socket.
            assert await asyncio.get_running_loop().run_in_executor(None, ended.wait, DEADLINE)
            return event

    peer = Peer([stall])
    event = asyncio.run(run())
    peer.join()
    assert "timed out" in event.reason, event.reason
