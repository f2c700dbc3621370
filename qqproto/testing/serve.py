"""Serve a :class:`FakeQQPlatform` on loopback TCP with TLS, for transport tests and demos.

One background thread runs a selector over non-blocking sockets, feeds the platform bytes
and ``time.monotonic()``, and fires its timers.  The certificate comes from a throwaway
``trustme`` CA; :meth:`LoopbackPlatform.client_ssl_context` trusts it.  After the platform's
Close frame the server waits for the client's (two seconds at most) before TLS close_notify and
FIN, so a client such as aiohttp reads the platform's close code rather than 1006.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import os
import queue
import random
import selectors
import socket
import ssl
import struct
import tempfile
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import trustme

from ._actions import ServerSend
from ._config import PlatformConfig
from ._counters import PlatformCounters
from ._platform import FakeQQPlatform
from ._ws_server import holds_close_frame

if TYPE_CHECKING:
    from .serve_push import WebhookPushClient

__all__ = ["LoopbackPlatform"]

T = TypeVar("T")

HOST = "127.0.0.1"
READ_SIZE = 65536
#: How long a socket the platform closed may keep sending before it is closed regardless.
LINGER = 2.0
#: How long the client of a closed WebSocket has to answer our Close frame before TCP closes anyway.
CLOSE_ANSWER_DEADLINE = 2.0

_Call = tuple[Callable[[FakeQQPlatform, float], Any], concurrent.futures.Future[Any]]


class _Peer:
    """One accepted client socket and what is still to be written to it."""

    def __init__(self, conn_id: int, sock: ssl.SSLSocket) -> None:
        self.conn_id = conn_id
        self.sock = sock
        self.handshaking = True
        self.eof = False
        self.closing = False
        self.linger_until: float | None = None
        self.close_answer_due = False
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.events = 0


class LoopbackPlatform:
    """A fake platform listening on ``127.0.0.1`` with TLS; use as a context manager."""

    def __init__(
        self, platform: FakeQQPlatform | None = None, *, config: PlatformConfig | None = None, seed: int = 0
    ) -> None:
        if platform is not None and config is not None:
            raise ValueError("pass a platform or a config, not both")
        self.platform = platform if platform is not None else FakeQQPlatform(config, rng=random.Random(seed))
        self.host = HOST
        self.port = 0
        self.ca_pem_path = ""
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._stopping = False
        self._accepting_calls = False
        self._lock = threading.Lock()
        self._calls: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        self._peers: dict[int, _Peer] = {}
        self._ids = itertools.count(1)
        self._push_client: WebhookPushClient | None = None

    # -- public -------------------------------------------------------------------------

    @property
    def api_base(self) -> str:
        """Base URL of the OpenAPI endpoints (``/gateway``, ``/gateway/bot``)."""
        return f"https://{self.host}:{self.port}"

    @property
    def token_url(self) -> str:
        """URL of the token endpoint."""
        return f"{self.api_base}/app/getAppAccessToken"

    @property
    def gateway_url(self) -> str:
        """URL of the WebSocket gateway."""
        return f"wss://{self.host}:{self.port}/websocket"

    @property
    def counters(self) -> PlatformCounters:
        """A snapshot of the platform's counters, taken on the server thread while it runs."""
        if self._thread is not None and self._thread.is_alive():
            return self.call(lambda platform, now: platform.counters.copy())
        return self.platform.counters.copy()

    def client_ssl_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts this server's CA."""
        return ssl.create_default_context(cafile=self.ca_pem_path)

    def call(self, fn: Callable[[FakeQQPlatform, float], T]) -> T:
        """Run ``fn(platform, now)`` on the server thread and return its result."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._lock:
            if not self._accepting_calls:
                raise RuntimeError("the loopback platform is not running")
            self._calls.put((fn, future))
        self._wake()
        result = future.result()
        if self._push_client is not None:
            self._push_client.wake()
        return result

    def push_to(self, url: str, ssl_context: ssl.SSLContext | None = None, **options: Any) -> WebhookPushClient:
        """From now on push events to the webhook at ``url`` (validated first) instead of the gateway.

        ``options`` tune the retries (``retry_base``, ``retry_cap``, ``max_attempts``); the
        returned client reports what was pushed (``counters()``).
        """
        from ._push import WebhookPusher
        from .serve_push import WebhookPushClient

        if self._push_client is not None:
            raise RuntimeError("the loopback platform already pushes to a webhook")
        rng = random.Random(self.platform.config.app_id)
        pusher = WebhookPusher(self.platform.config.client_secret, rng, **options)
        self.call(lambda platform, now: setattr(platform, "webhook", pusher))
        self._push_client = WebhookPushClient(self, url, ssl_context)
        self._push_client.start()
        return self._push_client

    def start(self) -> None:
        """Create the certificate, listen, and start the server thread."""
        if self._thread is not None:
            raise RuntimeError("the loopback platform was already started")
        ca = trustme.CA()
        self._server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(HOST, "localhost").configure_cert(self._server_context)
        fd, self.ca_pem_path = tempfile.mkstemp(prefix="qqproto-ca-", suffix=".pem")
        os.close(fd)
        ca.cert_pem.write_to_path(self.ca_pem_path)
        self._listener = socket.create_server((HOST, 0))
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self.platform.gateway_url = self.gateway_url
        self._waker, self._wakee = socket.socketpair()
        self._waker.setblocking(False)
        self._wakee.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, self._accept)
        self._selector.register(self._wakee, selectors.EVENT_READ, self._run_calls)
        self._accepting_calls = True
        self._thread = threading.Thread(target=self._run, name="qqproto-loopback-platform", daemon=False)
        self._thread.start()

    def stop(self) -> None:
        """Close every socket, join the thread and remove the CA file."""
        if self._thread is None or self._stopping:
            return
        if self._push_client is not None:
            self._push_client.stop()
        self._stopping = True
        self._wake()
        self._thread.join()
        self._waker.close()
        os.unlink(self.ca_pem_path)
        if self._error is not None:
            raise RuntimeError("the loopback platform failed") from self._error

    def __enter__(self) -> LoopbackPlatform:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- server thread ------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stopping:
                for key, mask in self._selector.select(self._timeout()):
                    key.data(mask)
                self._fire_timers()
        except BaseException as exc:
            self._error = exc
        finally:
            self._shut_down()

    def _timeout(self) -> float | None:
        deadlines = [peer.linger_until for peer in self._peers.values() if peer.linger_until is not None]
        timer = self.platform.next_timer()
        if timer is not None:
            deadlines.append(timer)
        return max(0.0, min(deadlines) - time.monotonic()) if deadlines else None

    def _fire_timers(self) -> None:
        now = time.monotonic()
        timer = self.platform.next_timer()
        if timer is not None and timer <= now:
            self.platform.handle_timer(now)
            self._apply_actions()
        for peer in list(self._peers.values()):
            if peer.linger_until is not None and peer.linger_until <= now:
                self._forget(peer)

    def _wake(self) -> None:
        try:
            self._waker.send(b"\0")
        except OSError:
            pass

    def _run_calls(self, mask: int) -> None:
        try:
            while self._wakee.recv(READ_SIZE):
                pass
        except BlockingIOError:
            pass
        while not self._calls.empty():
            fn, future = self._calls.get_nowait()
            try:
                future.set_result(fn(self.platform, time.monotonic()))
            except Exception as exc:
                future.set_exception(exc)
            self._apply_actions()

    def _accept(self, mask: int) -> None:
        while True:
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return
            conn_id = next(self._ids)
            if not self.platform.connection_made(conn_id, time.monotonic()):
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                raw.close()
                continue
            try:
                raw.setblocking(False)
                # Small answers (Hello, ACKs) go out at once instead of waiting on Nagle's algorithm.
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock = self._server_context.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
            except OSError:
                raw.close()
                self.platform.connection_lost(conn_id, time.monotonic())
                continue
            peer = _Peer(conn_id, sock)
            self._peers[conn_id] = peer
            self._handshake(peer)

    def _on_peer(self, peer: _Peer, mask: int) -> None:
        if peer.handshaking:
            self._handshake(peer)
        elif peer.close_answer_due:
            self._await_close_answer(peer)
        elif peer.linger_until is not None:
            self._linger(peer)
        else:
            if mask & selectors.EVENT_READ:
                self._read(peer)
            if mask & selectors.EVENT_WRITE and peer.conn_id in self._peers:
                self._flush(peer)

    def _handshake(self, peer: _Peer) -> None:
        try:
            peer.sock.do_handshake()
        except ssl.SSLWantReadError:
            self._watch(peer, selectors.EVENT_READ)
            return
        except ssl.SSLWantWriteError:
            self._watch(peer, selectors.EVENT_WRITE)
            return
        except OSError:
            self._lost(peer)
            return
        peer.handshaking = False
        self._read(peer)

    def _read(self, peer: _Peer) -> None:
        while self._peers.get(peer.conn_id) is peer and not peer.eof and not peer.closing:
            try:
                data = peer.sock.recv(READ_SIZE)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                break
            except OSError:
                self._lost(peer)
                return
            peer.eof = not data
            self.platform.receive_data(peer.conn_id, data, time.monotonic())
            self._apply_actions()
        if self._peers.get(peer.conn_id) is peer and not peer.closing:
            self._watch(peer)

    def _apply_actions(self) -> None:
        # Everything for a peer is queued before its socket is written: a burst of sends is one flush, not one each.
        touched: dict[int, _Peer] = {}
        for action in self.platform.next_actions():
            peer = self._peers.get(action.conn_id)
            if peer is None:
                continue
            if isinstance(action, ServerSend):
                peer.outbuf += action.data
            else:
                peer.closing = True
                peer.close_answer_due = action.answer_due
            touched[peer.conn_id] = peer
        for peer in touched.values():
            if self._peers.get(peer.conn_id) is peer:
                self._flush(peer)

    def _flush(self, peer: _Peer) -> None:
        if peer.handshaking and peer.closing:
            self._forget(peer)
            return
        while peer.outbuf:
            try:
                sent = peer.sock.send(peer.outbuf[:READ_SIZE])
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                break
            except OSError:
                self._lost(peer)
                return
            del peer.outbuf[:sent]
        if peer.closing and not peer.outbuf and peer.close_answer_due:
            peer.linger_until = time.monotonic() + CLOSE_ANSWER_DEADLINE
            self._watch(peer, selectors.EVENT_READ)
            self._await_close_answer(peer)
        elif peer.closing and not peer.outbuf:
            self._start_linger(peer)
        else:
            self._watch(peer)

    def _await_close_answer(self, peer: _Peer) -> None:
        """Read until the client's Close frame (or EOF) arrives, then close TCP; past the deadline, timers drop it."""
        try:
            while data := peer.sock.recv(READ_SIZE):
                peer.inbuf += data
                if holds_close_frame(peer.inbuf):
                    break
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return
        except OSError:
            self._forget(peer)
            return
        peer.close_answer_due = False
        self._start_linger(peer)

    def _start_linger(self, peer: _Peer) -> None:
        """Send close_notify and FIN, then read until the client closes too (or ``LINGER``)."""
        try:
            peer.sock.unwrap()
        except OSError:
            pass
        try:
            peer.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._forget(peer)
            return
        peer.linger_until = time.monotonic() + LINGER
        self._watch(peer, selectors.EVENT_READ)
        self._linger(peer)

    def _linger(self, peer: _Peer) -> None:
        try:
            while peer.sock.recv(READ_SIZE):
                pass
        except BlockingIOError:
            return
        except OSError:
            pass
        self._forget(peer)

    def _lost(self, peer: _Peer) -> None:
        self._forget(peer)
        self.platform.connection_lost(peer.conn_id, time.monotonic())
        self._apply_actions()

    def _watch(self, peer: _Peer, events: int | None = None) -> None:
        if events is None:
            reading = not peer.eof and not peer.closing
            events = (selectors.EVENT_READ if reading else 0) | (selectors.EVENT_WRITE if peer.outbuf else 0)
        if events == peer.events:
            return
        if peer.events == 0:
            self._selector.register(peer.sock, events, lambda mask: self._on_peer(peer, mask))
        elif events == 0:
            self._selector.unregister(peer.sock)
        else:
            self._selector.modify(peer.sock, events, lambda mask: self._on_peer(peer, mask))
        peer.events = events

    def _forget(self, peer: _Peer) -> None:
        if self._peers.pop(peer.conn_id, None) is None:
            return
        if peer.events:
            self._selector.unregister(peer.sock)
        peer.sock.close()

    def _shut_down(self) -> None:
        with self._lock:
            self._accepting_calls = False
        while not self._calls.empty():
            _, future = self._calls.get_nowait()
            future.set_exception(RuntimeError("the loopback platform stopped"))
        for peer in list(self._peers.values()):
            self._forget(peer)
        self._selector.close()
        self._listener.close()
        self._wakee.close()
