"""Webhook mode end to end: real hypercorn on loopback with trustme TLS, on asyncio and trio, fed by the fake's pushes."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import http.client
import json
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import trustme
from harness import push, wait_until

import transports.asyncio
import transports.trio
from qqproto import Dispatch, GatewayConfig, LocalProtocolError, MessageSent, OutgoingMessage, Scene
from qqproto.testing import PlatformConfig
from qqproto.testing.serve import LoopbackPlatform
from qqproto.webhook import Outcome, WebhookReceiver
from transports._common import GatewayFatalError
from transports._webhook_gateway import WebhookGateway

pytestmark = pytest.mark.anyio

DOC_SECRET = "DG5g3B4j9X2KOErG"
DOC_VALIDATION = {"d": {"plain_token": "Arq0D5A61EgUu4OxUvOp", "event_ts": "1725442341"}, "op": 13}
DOC_SIGNATURE = (
    "87befc99c42c651b3aac0278e71ada338433ae26fcb24307bdc5ad38c1adc2d0"
    "1bcfcadc0842edac85e85205028a1132afe09280305f13aa6909ffc2d652c706"
)
RETRIES = {"retry_base": 0.05, "retry_cap": 0.3}


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server_ctx(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def client_ctx(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
def lp() -> Iterator[LoopbackPlatform]:
    with LoopbackPlatform(config=PlatformConfig(), seed=0) as server:
        yield server


def open_webhook(anyio_backend: str) -> Callable[..., WebhookGateway]:
    module = transports.trio if anyio_backend == "trio" else transports.asyncio
    return module.open_webhook  # type: ignore[no-any-return]


def config_of(lp: LoopbackPlatform) -> GatewayConfig:
    pc = lp.platform.config
    return GatewayConfig(
        app_id=pc.app_id,
        client_secret=pc.client_secret,
        api_base=lp.api_base,
        token_url=lp.token_url,
        close_timeout=1.0,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Poster:
    """Signed (or deliberately unsigned) requests from a plain HTTPS client, as the platform sends them."""

    def __init__(self, secret: str, port: int, context: ssl.SSLContext) -> None:
        self.signer = WebhookReceiver(secret)
        self.port = port
        self.context = context

    def request(
        self,
        body: bytes,
        *,
        method: str = "POST",
        path: str = "/",
        headers: dict[str, str] | None = None,
        sign: bool = True,
    ) -> tuple[int, Any]:
        connection = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=10)
        try:
            sent = dict(headers or {})
            if sign:
                timestamp = str(int(time.time()))
                sent.update(
                    {"X-Signature-Ed25519": self.signer.sign(timestamp, body), "X-Signature-Timestamp": timestamp}
                )
            connection.request(method, path, body, sent)
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        finally:
            connection.close()

    async def post(self, body: bytes, **options: Any) -> tuple[int, Any]:
        return await anyio.to_thread.run_sync(lambda: self.request(body, **options))


def event_body(event_id: str, seq: int = 1) -> bytes:
    return json.dumps(
        {"op": 0, "s": seq, "t": "C2C_MESSAGE_CREATE", "id": event_id, "d": {"id": f"m-{event_id}"}}
    ).encode()


def signed_request(body: bytes, *headers: str) -> bytes:
    """A raw HTTP/1.1 POST signed with the documented secret, with any extra header lines."""
    stamp = str(int(time.time()))
    signature = WebhookReceiver(DOC_SECRET).sign(stamp, body)
    lines = ["POST / HTTP/1.1", "Host: x", f"Content-Length: {len(body)}", *headers]
    lines += [f"X-Signature-Ed25519: {signature}", f"X-Signature-Timestamp: {stamp}"]
    return "\r\n".join([*lines, "", ""]).encode() + body


def tls_connect(port: int, context: ssl.SSLContext) -> ssl.SSLSocket:
    return context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname="127.0.0.1")


def write_after_close_notify(peer: ssl.SSLSocket, request: bytes) -> bytes:
    """Read up to the server's TLS close_notify, write ``request`` anyway (as a pushing platform may), and
    wait for the server to drop the connection; return what was read."""
    read = bytearray()
    while chunk := peer.recv(4096):
        read += chunk
    with contextlib.suppress(ConnectionError, ssl.SSLError):  # the trio server closes TCP with its close_notify
        peer.sendall(request)
    with contextlib.suppress(ConnectionError):
        socket.socket.recv(peer, 1)  # below TLS: returns once the server has closed the socket
    return bytes(read)


@contextlib.contextmanager
def loop_reports(anyio_backend: str) -> Iterator[list[dict[str, Any]]]:
    """What reaches the asyncio loop's exception handler meanwhile (unhandled errors of tasks and callbacks)."""
    reports: list[dict[str, Any]] = []
    if anyio_backend != "asyncio":
        yield reports
        return
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: reports.append(context))
    try:
        yield reports
    finally:
        loop.set_exception_handler(previous)


async def next_dispatch(events: Any) -> Dispatch:
    """The next event, which must be a dispatch."""
    event = await events.__anext__()
    assert isinstance(event, Dispatch)
    return event


async def collect(gateway: WebhookGateway, ids: list[str], received: list[str]) -> None:
    """Take events until every one of ``ids`` has arrived."""
    with anyio.fail_after(15):
        async for event in gateway:
            assert isinstance(event, Dispatch)
            received.append(event.event_id or "")
            if set(ids) <= set(received):
                return


async def test_the_documented_validation_vector_over_https(
    anyio_backend: str, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    config = GatewayConfig(app_id="11111111", client_secret=DOC_SECRET, close_timeout=1.0)
    async with open_webhook(anyio_backend)(config, "127.0.0.1", 0, server_ctx, sends=False) as gateway:
        poster = Poster(DOC_SECRET, gateway.port, client_ctx)
        status, answer = await poster.post(json.dumps(DOC_VALIDATION).encode())
    assert (status, answer) == (200, {"plain_token": "Arq0D5A61EgUu4OxUvOp", "signature": DOC_SIGNATURE})


async def test_signed_pushes_arrive_once_through_duplicates_delays_and_bad_signatures(
    anyio_backend: str, lp: LoopbackPlatform, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    received: list[str] = []
    async with open_webhook(anyio_backend)(
        config_of(lp), "127.0.0.1", 0, server_ctx, api_ssl_context=lp.client_ssl_context()
    ) as gateway:
        client = lp.push_to(gateway.url, client_ctx, **RETRIES)
        lp.call(lambda platform, now: (platform.webhook.duplicate_next(5), platform.webhook.sign_badly_next(3)))  # type: ignore[union-attr]
        ids = push(lp, 10)
        lp.call(lambda platform, now: platform.webhook.delay_next(3, 0.3))  # type: ignore[union-attr]
        ids += push(lp, 10, start=10)
        await collect(gateway, ids, received)
        await wait_until(lambda: lp.call(lambda platform, now: platform.webhook.outstanding) == 0)  # type: ignore[union-attr]
        health = gateway.health()
    counters = client.counters()
    assert sorted(received) == sorted(ids)
    assert counters.validations == 1 and counters.delivered == 25 and counters.given_up == 0
    assert counters.bad_signatures_refused == 3
    assert (health.mode, health.accepted_requests, health.duplicate_requests) == ("webhook", 20, 5)
    assert health.rejections_by_reason == {"bad_signature": 3}
    assert health.last_seq == 20 and health.last_event_at is not None


async def test_a_receiver_down_for_a_while_gets_every_event_once_it_is_back(
    anyio_backend: str, lp: LoopbackPlatform, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    port = free_port()
    client = lp.push_to(f"https://127.0.0.1:{port}/", client_ctx, **RETRIES)
    ids = push(lp, 5)
    await wait_until(lambda: client.counters().failures.get("no answer", 0) >= 2)
    received: list[str] = []
    async with open_webhook(anyio_backend)(
        config_of(lp), "127.0.0.1", port, server_ctx, api_ssl_context=lp.client_ssl_context()
    ) as gateway:
        await collect(gateway, ids, received)
    assert sorted(received) == sorted(ids)


async def test_with_ack_handled_an_event_the_app_died_on_comes_again(
    anyio_backend: str, lp: LoopbackPlatform, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    port = free_port()
    opener = open_webhook(anyio_backend)
    died_on: list[str] = []
    with pytest.raises(RuntimeError, match="the application died"):
        async with opener(config_of(lp), "127.0.0.1", port, server_ctx, ack="handled", sends=False) as gateway:
            lp.push_to(gateway.url, client_ctx, **RETRIES)
            ids = push(lp, 3)
            async for event in gateway:
                assert isinstance(event, Dispatch)
                died_on.append(event.event_id or "")
                raise RuntimeError("the application died")
    received: list[str] = []
    async with opener(config_of(lp), "127.0.0.1", port, server_ctx, ack="handled", sends=False) as gateway:
        await collect(gateway, ids, received)
    assert died_on[0] in received
    assert sorted(received) == sorted(ids)


async def test_ack_received_answers_before_the_app_looks(
    anyio_backend: str, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    config = GatewayConfig(app_id="1", client_secret=DOC_SECRET, close_timeout=1.0)
    async with open_webhook(anyio_backend)(config, "127.0.0.1", 0, server_ctx, sends=False) as gateway:
        poster = Poster(DOC_SECRET, gateway.port, client_ctx)
        assert await poster.post(event_body("e1")) == (200, {"op": 12, "d": 0})
        event = await next_dispatch(gateway)
    assert event.event_id == "e1"


async def test_ack_handled_fails_an_untaken_event_then_answers_once_the_next_is_taken(
    anyio_backend: str, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    config = GatewayConfig(app_id="1", client_secret=DOC_SECRET, close_timeout=1.0)
    opener = open_webhook(anyio_backend)
    answers: list[tuple[int, Any]] = []
    async with anyio.create_task_group() as tasks:
        async with opener(config, "127.0.0.1", 0, server_ctx, ack="handled", ack_timeout=0.3, sends=False) as gateway:
            poster = Poster(DOC_SECRET, gateway.port, client_ctx)
            assert await poster.post(event_body("e1")) == (200, {"op": 12, "d": 1})
            assert gateway.health().accepted_requests == 0  # withdrawn: its redelivery is new

            async def deliver(event_id: str) -> None:
                answers.append(await poster.post(event_body(event_id)))

            gateway.app.ack_timeout = 10.0
            tasks.start_soon(deliver, "e1")
            first = await next_dispatch(gateway)
            tasks.start_soon(deliver, "e2")
            second = await next_dispatch(gateway)  # taking e2 means e1 was handled
            await wait_until(lambda: bool(answers))
            assert answers == [(200, {"op": 12, "d": 0})]
        # Leaving cleanly means e2 was handled too.
    assert (first.event_id, second.event_id) == ("e1", "e2")
    assert answers == [(200, {"op": 12, "d": 0})] * 2


@pytest.mark.parametrize(
    ("request_options", "status", "reason"),
    [
        ({"sign": False}, 401, "unsigned"),
        (
            {"headers": {"X-Signature-Ed25519": "00" * 64, "X-Signature-Timestamp": "1"}, "sign": False},
            401,
            "bad_signature",
        ),
        ({"body": b"not json"}, 400, "malformed"),
        ({"body": b'{"op": 0, "d": {}}'}, 400, "malformed"),
        ({"body": b"x" * 2000}, 413, "too_large"),
        ({"method": "GET", "body": b""}, 405, "wrong_method"),
        ({"path": "/elsewhere"}, 404, "not_found"),
    ],
)
async def test_bad_requests_get_their_status_and_reach_nothing(
    anyio_backend: str,
    server_ctx: ssl.SSLContext,
    client_ctx: ssl.SSLContext,
    request_options: dict[str, Any],
    status: int,
    reason: str,
) -> None:
    config = GatewayConfig(app_id="1", client_secret=DOC_SECRET, close_timeout=1.0)
    async with open_webhook(anyio_backend)(config, "127.0.0.1", 0, server_ctx, max_body=1000, sends=False) as gateway:
        poster = Poster(DOC_SECRET, gateway.port, client_ctx)
        options = dict(request_options)
        body = options.pop("body", event_body("bad"))
        assert (await poster.post(body, **options))[0] == status
        assert await poster.post(event_body("good")) == (200, {"op": 12, "d": 0})
        event = await next_dispatch(gateway)
        health = gateway.health()
    assert event.event_id == "good"
    assert (health.accepted_requests, health.rejected_requests, health.rejections_by_reason) == (1, 1, {reason: 1})


async def test_a_stale_timestamp_is_401(
    anyio_backend: str, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    config = GatewayConfig(app_id="1", client_secret=DOC_SECRET, close_timeout=1.0)
    async with open_webhook(anyio_backend)(config, "127.0.0.1", 0, server_ctx, max_age=60, sends=False) as gateway:
        poster = Poster(DOC_SECRET, gateway.port, client_ctx)
        body = event_body("old")
        stamp = str(int(time.time()) - 120)
        headers = {"X-Signature-Ed25519": poster.signer.sign(stamp, body), "X-Signature-Timestamp": stamp}
        assert (await poster.post(body, headers=headers, sign=False))[0] == 401
        assert gateway.health().rejections_by_reason == {"stale": 1}


async def test_a_port_that_cannot_be_bound_is_fatal(anyio_backend: str, server_ctx: ssl.SSLContext) -> None:
    config = GatewayConfig(app_id="1", client_secret=DOC_SECRET)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(GatewayFatalError, match="cannot listen"):
            async with open_webhook(anyio_backend)(config, "127.0.0.1", port, server_ctx, sends=False):
                pass


async def test_the_app_mounts_inside_starlette(
    anyio_backend: str, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    from transports._webhook_gateway import _hypercorn_config
    from transports.webhook import WebhookApp

    hooks = WebhookApp(WebhookReceiver(DOC_SECRET, path="/"))
    site = Starlette(routes=[Route("/", lambda request: PlainTextResponse("home")), Mount("/qq", app=hooks)])
    if anyio_backend == "trio":
        from hypercorn.trio import serve as hypercorn_serve
    else:
        from hypercorn.asyncio import serve as hypercorn_serve  # type: ignore[assignment]
    sock = socket.create_server(("127.0.0.1", 0))
    sock.setblocking(False)
    stop = anyio.Event()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(
            lambda: hypercorn_serve(site, _hypercorn_config(sock, server_ctx, 1.0), shutdown_trigger=stop.wait)
        )  # type: ignore[arg-type]
        poster = Poster(DOC_SECRET, sock.getsockname()[1], client_ctx)
        assert await poster.post(event_body("mounted"), path="/qq/") == (200, {"op": 12, "d": 0})
        assert (await poster.post(event_body("x"), path="/qq/", sign=False))[0] == 401
        event = await next_dispatch(hooks)
        stop.set()
    sock.close()
    assert event.event_id == "mounted"


async def test_the_defaults_are_those_of_the_receiver_and_the_app(anyio_backend: str) -> None:
    import qqproto.webhook
    import transports._webhook_gateway as gateway_module
    import transports.webhook

    assert gateway_module.DEFAULT_MAX_BODY == qqproto.webhook.DEFAULT_MAX_BODY
    assert gateway_module.DEFAULT_ACK_TIMEOUT == transports.webhook.DEFAULT_ACK_TIMEOUT


async def test_serve_fake_validates_a_webhook_url(
    anyio_backend: str, tmp_path: Path, ca: trustme.CA, server_ctx: ssl.SSLContext
) -> None:
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    config = GatewayConfig(app_id="102000000", client_secret=PlatformConfig().client_secret, close_timeout=1.0)
    async with open_webhook(anyio_backend)(config, "127.0.0.1", 0, server_ctx, sends=False) as gateway:
        command = [sys.executable, "-m", "qqproto_cli", "serve-fake", "--webhook-url", gateway.url]
        child = subprocess.Popen([*command, "--webhook-ca", str(tmp_path / "ca.pem")], stdout=subprocess.DEVNULL)
        try:
            await wait_until(lambda: gateway.app.receiver.counts[Outcome.VALIDATION] == 1, timeout=30)
        finally:
            child.terminate()
            await anyio.to_thread.run_sync(child.wait)


async def test_a_reply_goes_out_through_the_fakes_message_endpoint_without_a_gateway(
    anyio_backend: str, lp: LoopbackPlatform, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    opener = open_webhook(anyio_backend)
    async with opener(config_of(lp), "127.0.0.1", 0, server_ctx, api_ssl_context=lp.client_ssl_context()) as gateway:
        lp.push_to(gateway.url, client_ctx, **RETRIES)
        push(lp, 1)
        with anyio.fail_after(15):
            event = await next_dispatch(gateway)
            assert isinstance(event, Dispatch)
            reply = OutgoingMessage(Scene.C2C, "user-1", {"content": "pong", "msg_type": 0}, msg_id=event.data["id"])
            send_id = gateway.send_message(reply)
            outcome = await gateway.__anext__()
        health = gateway.health()
    assert isinstance(outcome, MessageSent) and outcome.send_id == send_id
    (received,) = lp.call(lambda platform, now: list(platform.messages.received))
    assert (received.scene, received.target, received.body["content"], received.body["msg_id"]) == (
        "c2c",
        "user-1",
        "pong",
        "m0",
    )
    counters = lp.counters
    assert (counters.gateway_calls, counters.ws_connections, counters.token_fetches) == (0, 0, 1)
    assert health.mode == "webhook" and health.token_expires_in is not None


async def test_bad_credentials_end_the_iteration_with_gateway_fatal_error(
    anyio_backend: str, lp: LoopbackPlatform, server_ctx: ssl.SSLContext
) -> None:
    config = dataclasses.replace(config_of(lp), client_secret="not-the-secret")
    opener = open_webhook(anyio_backend)
    with pytest.raises(GatewayFatalError):
        async with opener(config, "127.0.0.1", 0, server_ctx, api_ssl_context=lp.client_ssl_context()) as gateway:
            with anyio.fail_after(15):
                async for _ in gateway:
                    pass
    assert gateway.health().state == "fatal"


async def test_without_sends_send_message_says_so(anyio_backend: str, server_ctx: ssl.SSLContext) -> None:
    config = GatewayConfig(app_id="1", client_secret=DOC_SECRET, close_timeout=1.0)
    async with open_webhook(anyio_backend)(config, "127.0.0.1", 0, server_ctx, sends=False) as gateway:
        with pytest.raises(LocalProtocolError, match="sends=True"):
            gateway.send_message(OutgoingMessage(Scene.C2C, "u", {"content": "x"}))


async def test_leaving_does_not_wait_on_an_idle_peer_that_never_closes(
    anyio_backend: str, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    config = GatewayConfig(app_id="1", client_secret=DOC_SECRET, close_timeout=0.5)
    with anyio.fail_after(20):  # the TLS shutdown timeout alone would be 30 s
        async with open_webhook(anyio_backend)(config, "127.0.0.1", 0, server_ctx, sends=False) as gateway:
            idle = await anyio.to_thread.run_sync(tls_connect, gateway.port, client_ctx)
            await anyio.to_thread.run_sync(idle.sendall, signed_request(event_body("kept-alive")))
            assert b" 200 " in await anyio.to_thread.run_sync(idle.recv, 4096)
            await next_dispatch(gateway)
        # The peer keeps its connection and never reads again, so never answers the server's close.
    idle.close()


async def test_a_peer_writing_after_the_servers_tls_close_disturbs_nothing_while_serving(
    anyio_backend: str, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    config = GatewayConfig(app_id="1", client_secret=DOC_SECRET, close_timeout=1.0)
    with loop_reports(anyio_backend) as reports:
        async with open_webhook(anyio_backend)(config, "127.0.0.1", 0, server_ctx, sends=False) as gateway:
            peer = await anyio.to_thread.run_sync(tls_connect, gateway.port, client_ctx)
            with peer:
                await anyio.to_thread.run_sync(peer.sendall, signed_request(event_body("e1"), "Connection: close"))
                late = signed_request(event_body("late"))
                assert b" 200 " in await anyio.to_thread.run_sync(write_after_close_notify, peer, late)
            poster = Poster(DOC_SECRET, gateway.port, client_ctx)
            assert await poster.post(event_body("e2")) == (200, {"op": 12, "d": 0})
            assert [(await next_dispatch(gateway)).event_id for _ in range(2)] == ["e1", "e2"]
            assert gateway.health().state == "serving"
    assert not reports, reports


async def test_leaving_while_a_peer_writes_after_the_servers_tls_close_ends_cleanly(
    anyio_backend: str, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    config = GatewayConfig(app_id="1", client_secret=DOC_SECRET, close_timeout=5.0)
    with loop_reports(anyio_backend) as reports, anyio.fail_after(15):
        async with anyio.create_task_group() as tasks:
            async with open_webhook(anyio_backend)(config, "127.0.0.1", 0, server_ctx, sends=False) as gateway:
                peer = await anyio.to_thread.run_sync(tls_connect, gateway.port, client_ctx)
                await anyio.to_thread.run_sync(peer.sendall, signed_request(event_body("e1")))
                assert b" 200 " in await anyio.to_thread.run_sync(peer.recv, 4096)
                await next_dispatch(gateway)
                late = signed_request(event_body("late"))
                tasks.start_soon(anyio.to_thread.run_sync, write_after_close_notify, peer, late)
    peer.close()
    assert gateway.health().state == "closed"
    assert not reports, reports
