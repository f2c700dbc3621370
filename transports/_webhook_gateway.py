"""``open_webhook``: the webhook app served on hypercorn, with the shape of ``open_gateway``.

Importing this module needs no extra (``transports.asyncio`` and ``transports.trio`` re-export it);
opening a webhook needs the ``webhook`` extra.  The listening socket is bound before hypercorn starts, so a port that cannot be bound is a
``GatewayFatalError`` on entering ``async with``, and ``port=0`` picks a free port
(:attr:`WebhookGateway.port`).  ``ssl_context`` is the server's TLS context; None serves plain
HTTP, for a TLS-terminating proxy in front.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, AsyncContextManager

from qqproto import Action, GatewayConfig, Health, LocalProtocolError, OutgoingMessage

from ._common import DEFAULT_MAX_PENDING_EVENTS, Driver, GatewayFatalError, describe

if TYPE_CHECKING:
    import anyio
    import anyio.abc
    from hypercorn.config import Config

    from .webhook import WebhookApp

__all__ = ["WebhookGateway", "open_asyncio_webhook", "open_trio_webhook", "open_webhook_on"]

Serve = Callable[..., Awaitable[Any]]
LOGGER = logging.getLogger("qqproto.webhook")


#: The largest callback body accepted (``qqproto.webhook.DEFAULT_MAX_BODY``).
DEFAULT_MAX_BODY = 1 << 20
#: How long ``ack="handled"`` waits for the application (``transports.webhook.DEFAULT_ACK_TIMEOUT``).
DEFAULT_ACK_TIMEOUT = 2.5


def _hypercorn_config(sock: socket.socket, ssl_context: ssl.SSLContext | None, graceful_timeout: float) -> Config:
    """Hypercorn's settings, serving one socket bound beforehand with the caller's TLS context."""
    from hypercorn.config import Config, Sockets

    class BoundConfig(Config):
        quiet_failed_tls_close = True  # our connections only: see _quiet_failed_tls_close

        @property
        def ssl_enabled(self) -> bool:
            return ssl_context is not None

        def create_ssl_context(self) -> ssl.SSLContext | None:
            return ssl_context

        def create_sockets(self) -> Sockets:
            return Sockets([sock], [], []) if ssl_context is not None else Sockets([], [sock], [])

    config = BoundConfig()
    config.graceful_timeout = graceful_timeout
    config.errorlog = LOGGER
    config.accesslog = None
    return config


def _quiet_failed_tls_close() -> None:
    """End a connection of our server quietly when its TLS close fails (the peer wrote after our close_notify).

    hypercorn's asyncio ``TCPServer._close`` lets that ``ssl.SSLError`` out of ``wait_closed()``
    (pgjones/hypercorn#261, still in 0.18): the connection's task fails, asyncio logs it as unhandled,
    and at shutdown it ends the graceful wait for the other connections.  No per-server hook exists,
    so a subclass replaces hypercorn's class once; for other servers it does exactly what hypercorn does.
    """
    from hypercorn.asyncio import run, tcp_server

    if run.TCPServer.__module__ == __name__:  # type: ignore[attr-defined]
        return

    class TCPServer(tcp_server.TCPServer):
        async def _close(self) -> None:
            try:
                await super()._close()
            except ssl.SSLError:  # the transport is closed already: nothing is left to finish
                if not getattr(self.config, "quiet_failed_tls_close", False):
                    raise

    run.TCPServer = TCPServer  # type: ignore[attr-defined]


class WebhookGateway:
    """A callback server: ``async for`` its dispatches and send outcomes, ``send_message``, ``health()``.

    ``sender`` opens the API connection that sends (None: this gateway only receives).
    """

    def __init__(
        self,
        app: WebhookApp,
        serve: Serve,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        close_timeout: float,
        sender: Callable[[], AsyncContextManager[Driver]] | None = None,
    ) -> None:
        self.app = app
        self._sender = sender
        self._driver: Driver | None = None
        self.host = host
        self.port = port
        self._serve = serve
        self._ssl_context = ssl_context
        self._close_timeout = close_timeout
        self._stack = contextlib.AsyncExitStack()
        self._shutdown: anyio.Event | None = None
        self._stopped: anyio.Event | None = None
        self._tasks: anyio.abc.TaskGroup | None = None

    @property
    def url(self) -> str:
        """Where the callbacks go, as the server sees it."""
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self.port}{self.app.receiver.path or '/'}"

    async def __aenter__(self) -> WebhookGateway:
        try:
            sock = socket.create_server((self.host, self.port))
        except OSError as exc:
            raise GatewayFatalError(f"cannot listen for callbacks on {self.host}:{self.port}: {exc}", None) from None
        import anyio

        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # an answer is one small write: send it now
        self.port = sock.getsockname()[1]
        config = _hypercorn_config(sock, self._ssl_context, self._close_timeout)
        self._shutdown, self._stopped = anyio.Event(), anyio.Event()
        tasks = self._tasks = await self._stack.enter_async_context(anyio.create_task_group())
        tasks.start_soon(self._run, config, sock)
        if self._sender is not None:
            self._driver = await self._stack.enter_async_context(self._sender())
            tasks.start_soon(self._forward, self._driver)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.app.close(handled=exc is None)
        assert self._shutdown is not None and self._stopped is not None
        self._shutdown.set()
        import anyio

        with anyio.move_on_after(self._close_timeout * 2):
            await self._stopped.wait()
        if (
            not self._stopped.is_set() and self._tasks is not None
        ):  # connections that will not close (say, a TLS peer that never answers)
            self._tasks.cancel_scope.cancel()
        await self._stack.aclose()

    def __aiter__(self) -> WebhookGateway:
        return self

    async def __anext__(self) -> Action:
        return await self.app.__anext__()

    def send_message(self, message: OutgoingMessage) -> int:
        """Send through the platform's API by the send policy; MessageSent or MessageFailed comes among the events."""
        if self._driver is None:
            raise LocalProtocolError("send_message() needs a webhook opened with sends=True, inside 'async with'")
        return self._driver.send_message(message)

    def health(self) -> Health:
        """The webhook's health snapshot, with the access token's remaining life when it sends."""
        health = self.app.health()
        if self._driver is not None:
            health = dataclasses.replace(health, token_expires_in=self._driver.health().token_expires_in)
        return health

    async def _forward(self, driver: Driver) -> None:
        """Pass the API connection's events (send outcomes, Fatal) on to the application."""
        try:
            async for event in driver:  # type: ignore[attr-defined]
                self.app.notify(event)
        except GatewayFatalError as exc:
            self.app.close(exc)

    async def _run(self, config: Config, sock: socket.socket) -> None:
        assert self._shutdown is not None and self._stopped is not None
        try:
            await self._serve(self.app, config, shutdown_trigger=self._shutdown.wait)
        except Exception as exc:
            self.app.close(GatewayFatalError(f"the callback server stopped: {describe(exc)}", None))
        finally:
            sock.close()
            self._stopped.set()


def open_webhook_on(
    runtime: str,
    config: GatewayConfig,
    host: str = "0.0.0.0",
    port: int = 8443,
    ssl_context: ssl.SSLContext | None = None,
    *,
    path: str | None = "/",
    ack: str = "received",
    ack_timeout: float = DEFAULT_ACK_TIMEOUT,
    max_age: float = 300.0,
    max_body: int = DEFAULT_MAX_BODY,
    max_pending_events: int = DEFAULT_MAX_PENDING_EVENTS,
    sends: bool = True,
    api_ssl_context: ssl.SSLContext | None = None,
) -> WebhookGateway:
    """Serve callbacks on hypercorn under ``runtime`` (asyncio or trio) while inside ``async with``.

    With ``sends`` (default) an API connection starts too, so that ``send_message`` works; it
    fetches a token at once, and bad credentials end the iteration with ``GatewayFatalError``.
    ``api_ssl_context`` replaces the verifying client context it uses.
    """
    from qqproto.webhook import WebhookReceiver

    from .webhook import WebhookApp

    if runtime == "trio":
        from hypercorn.trio import serve
    else:
        from hypercorn.asyncio import serve  # type: ignore[assignment]

        _quiet_failed_tls_close()
    receiver = WebhookReceiver(config.client_secret, max_age=max_age, max_body=max_body, path=path)
    app = WebhookApp(receiver, ack=ack, ack_timeout=ack_timeout, max_pending_events=max_pending_events)
    sender = None
    if sends:
        from ._webhook_sends import open_sender

        sender = functools.partial(open_sender, runtime, config, api_ssl_context, max_pending_events)
    return WebhookGateway(app, serve, host, port, ssl_context, config.close_timeout, sender)


#: ``open_webhook`` of ``transports.asyncio`` and of ``transports.trio``.
open_asyncio_webhook = functools.partial(open_webhook_on, "asyncio")
open_trio_webhook = functools.partial(open_webhook_on, "trio")
