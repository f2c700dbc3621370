"""The asyncio driver's own TLS layer against a real TLS peer on loopback: verification, endings, errors."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import random
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest
import trustme

from qqproto import GatewayConfig, ReconnectScheduled
from transports._asyncio_tls import READ_SIZE, open_tls
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
        """Wait for every handler to finish; fail with what went wrong on the server's side."""
        self._thread.join(DEADLINE)
        self._listener.close()
        assert not self._thread.is_alive() and not self.errors, self.errors


@pytest.fixture
def ca() -> trustme.CA:
    """A throwaway CA the client trusts."""
    return trustme.CA()


def server_context(ca: trustme.CA, name: str = "127.0.0.1") -> ssl.SSLContext:
    """A server context with a certificate from ``ca`` for ``name``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(context)
    return context


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def read_request(tls: ssl.SSLSocket) -> bytes:
    """An HTTP request's head, as far as the blank line."""
    request = b""
    while b"\r\n\r\n" not in request:
        chunk = tls.recv(65536)
        assert chunk, f"the connection ended inside the request {request!r}"
        request += chunk
    return request


def config(port: int, **overrides: float) -> GatewayConfig:
    """A bot whose token and gateway requests go to the peer on ``port``."""
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


def test_a_certificate_for_another_name_fails_the_connect_and_the_peer_hears_why(ca: trustme.CA) -> None:
    context = server_context(ca, "other.example")
    alerts: list[str] = []

    def refuse(conn: socket.socket) -> None:
        with pytest.raises(ssl.SSLError) as refused:
            context.wrap_socket(conn, server_side=True).recv(1)
        alerts.append(str(refused.value))

    peer = Peer([refuse])
    event = asyncio.run(first_reconnect(config(peer.port), client_context(ca)))
    peer.join()
    assert "SSLCertVerificationError" in event.reason and "IP address mismatch" in event.reason, event.reason
    assert "ALERT_BAD_CERTIFICATE" in alerts[0], alerts


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
        after_end.append(raw.recv(100))

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


class Collector(asyncio.Protocol):
    """An application that keeps what arrives and notes the end."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.arrived = asyncio.Event()
        self.lost: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.arrived.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set_result(exc)


def test_a_burst_many_times_the_read_buffer_reaches_the_application_whole_and_in_order(ca: trustme.CA) -> None:
    payload = random.Random(0).randbytes(16 * READ_SIZE)
    context = server_context(ca)

    def burst(conn: socket.socket) -> None:
        tls = context.wrap_socket(conn, server_side=True)
        tls.sendall(payload)
        tls.unwrap()

    async def run() -> Collector:
        app = Collector()
        await open_tls(asyncio.get_running_loop(), app, "127.0.0.1", peer.port, client_context(ca), None)
        assert await asyncio.wait_for(app.lost, DEADLINE) is None
        return app

    peer = Peer([burst])
    app = asyncio.run(run())
    peer.join()
    assert b"".join(app.chunks) == payload


def test_closing_while_reading_is_paused_still_ends_at_the_peers_answer(ca: trustme.CA) -> None:
    context = server_context(ca)

    def answers_close(conn: socket.socket) -> None:
        tls = context.wrap_socket(conn, server_side=True)
        tls.sendall(b"hello")
        assert tls.recv(100) == b""  # our close_notify
        tls.unwrap()  # answered with the peer's own

    async def run() -> Exception | None:
        app = Collector()
        await open_tls(asyncio.get_running_loop(), app, "127.0.0.1", peer.port, client_context(ca), None)
        await asyncio.wait_for(app.arrived.wait(), DEADLINE)
        app.transport.pause_reading()  # the application is behind
        app.transport.close()
        return await asyncio.wait_for(app.lost, 2.0)  # not an abort after the close timeout

    peer = Peer([answers_close])
    assert asyncio.run(run()) is None
    peer.join()


class ClosesOnFirstData(Collector):
    """An application that closes the connection as soon as anything arrives."""

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self.transport.close()


def test_nothing_reaches_an_application_after_it_closed(ca: trustme.CA) -> None:
    payload = bytes(3 * READ_SIZE)
    context = server_context(ca)

    def burst(conn: socket.socket) -> None:
        tls = context.wrap_socket(conn, server_side=True)
        with contextlib.suppress(OSError):
            tls.sendall(payload)
            tls.unwrap()

    async def run() -> ClosesOnFirstData:
        app = ClosesOnFirstData()
        await open_tls(asyncio.get_running_loop(), app, "127.0.0.1", peer.port, client_context(ca), None)
        await asyncio.wait_for(app.lost, DEADLINE)
        return app

    peer = Peer([burst])
    app = asyncio.run(run())
    peer.join()
    assert len(app.chunks) == 1, [len(chunk) for chunk in app.chunks]


class Lines:
    """The lines a child process prints, read on a thread; wait for one that contains some text."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[bytes]) -> None:
        for line in stream:
            with self._changed:
                self.lines.append(line.decode(errors="replace").strip())
                self._changed.notify_all()

    def wait_for(self, *texts: str, after: int = 0) -> int:
        """The index of the first line after ``after`` that contains every one of ``texts``."""

        def found() -> int | None:
            return next((i for i in range(after, len(self.lines)) if all(t in self.lines[i] for t in texts)), None)

        with self._changed:
            assert self._changed.wait_for(lambda: found() is not None, DEADLINE), (texts, self.lines[after:])
            index = found()
        assert index is not None
        return index + 1


@pytest.mark.skipif(
    shutil.which("openssl") is None and not os.environ.get("CI"),
    reason="needs the openssl command as a renegotiating peer (CI installs it, and fails without it)",
)
def test_a_renegotiation_the_peer_begins_completes_while_reading_and_the_connection_goes_on(
    ca: trustme.CA, tmp_path: Path
) -> None:
    pem = tmp_path / "server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(pem))
    command = ["openssl", "s_server", "-accept", "127.0.0.1:0", "-cert", str(pem), "-tls1_2", "-msg"]
    server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert server.stdin is not None and server.stdout is not None
    lines = Lines(server.stdout)

    def type_in(text: str) -> None:
        assert server.stdin is not None
        server.stdin.write(text.encode())
        server.stdin.flush()

    async def until(*texts: str, after: int = 0) -> int:
        return await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(lines.wait_for, *texts, after=after)
        )

    async def run() -> None:
        port = int(lines.lines[await until("ACCEPT") - 1].rsplit(":", 1)[1])
        app = Collector()
        await open_tls(asyncio.get_running_loop(), app, "127.0.0.1", port, client_context(ca), None)
        seen = await until("CIPHER is")
        type_in("r\n")  # s_server sends HelloRequest; the client, only reading, must answer
        seen = await until("<<<", "ClientHello", after=seen)
        await until("<<<", "Finished", after=seen)
        type_in("after\n")
        await asyncio.wait_for(app.arrived.wait(), DEADLINE)
        app.transport.write(b"ping\n")
        await until("ping")
        app.transport.close()
        assert await asyncio.wait_for(app.lost, DEADLINE) is None
        assert app.chunks == [b"after\n"]

    try:
        asyncio.run(run())
    finally:
        server.kill()
        server.wait()
