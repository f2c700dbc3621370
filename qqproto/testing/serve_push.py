"""POST a fake platform's webhook pushes to a callback URL over HTTP(S), from threads of its own.

The platform's :class:`~qqproto.testing._push.WebhookPusher` decides what to push and when, on
the loopback server's thread; this client asks it for what is due, makes the requests over
keep-alive connections (several at once, as the platform does), and reports each answer back.
Start it with :meth:`LoopbackPlatform.push_to <qqproto.testing.serve.LoopbackPlatform.push_to>`.
"""

from __future__ import annotations

import concurrent.futures
import copy
import http.client
import ssl
import threading
import time
from typing import TYPE_CHECKING, Union
from urllib.parse import urlsplit

from ._platform import FakeQQPlatform
from ._push import Push, PushCounters, WebhookPusher

if TYPE_CHECKING:
    from .serve import LoopbackPlatform

__all__ = ["WebhookPushClient"]

Connection = Union[http.client.HTTPConnection, http.client.HTTPSConnection]


class WebhookPushClient:
    """Pushes to ``url`` until stopped; ``timeout`` bounds each request, as the platform's deadline does."""

    def __init__(
        self,
        loopback: LoopbackPlatform,
        url: str,
        ssl_context: ssl.SSLContext | None = None,
        *,
        concurrency: int = 8,
        timeout: float = 3.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the webhook URL must be http(s)://host[:port]/path, not {url!r}")
        self.url = url
        self._loopback = loopback
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._path = parts.path or "/"
        self._ssl_context = ssl_context if ssl_context is not None else ssl.create_default_context()
        self._timeout = timeout
        self._local = threading.local()
        self._wakeup = threading.Event()
        self._lock = threading.Lock()
        self._queued = 0
        self._busy = 0
        self._connections: list[Connection] = []
        self._stopping = False
        self._workers = concurrent.futures.ThreadPoolExecutor(concurrency, thread_name_prefix="qqproto-push")
        self._thread = threading.Thread(target=self._run, name="qqproto-push-scheduler")

    def start(self) -> None:
        """Start pushing (the op 13 validation goes first)."""
        self._thread.start()

    def stop(self) -> None:
        """Stop pushing; requests under way end within ``timeout``."""
        self._stopping = True
        self._wakeup.set()
        if self._thread.is_alive():
            self._thread.join()
        self._workers.shutdown(wait=True)

    def wake(self) -> None:
        """Something new may be due: look again."""
        self._wakeup.set()

    def counters(self) -> PushCounters:
        """A snapshot of what the pusher did."""
        return self._loopback.call(lambda platform, now: copy.deepcopy(_pusher(platform).counters))

    def _run(self) -> None:
        while not self._stopping:
            self._wakeup.clear()
            try:
                pushes, due = self._loopback.call(_take_due)
            except RuntimeError:
                return  # the platform stopped
            with self._lock:
                self._queued += len(pushes)
            for push in pushes:
                self._workers.submit(self._post, push)
            self._wakeup.wait(None if due is None else max(0.0, due - time.monotonic()))

    def _post(self, push: Push) -> None:
        status: int | None = None
        body = b""
        with self._lock:
            self._queued -= 1
            self._busy += 1
            connection = self._connection()
        try:
            connection.request("POST", self._path, push.body, push.headers)
            response = connection.getresponse()
            status, body = response.status, response.read()
        except (OSError, http.client.HTTPException):
            connection.close()
        with self._lock:
            self._busy -= 1
            if self._queued == 0 and self._busy == 0:
                # Like the platform's client, leave no idle connection the receiver would wait on when it stops.
                for idle in self._connections:
                    idle.close()
        try:
            self._loopback.call(lambda platform, now: _pusher(platform).answered(push.push_id, status, body, now))
        except RuntimeError:
            return
        self.wake()

    def _connection(self) -> Connection:
        """This thread's keep-alive connection (called with the lock held)."""
        connection: Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            if self._scheme == "https":
                connection = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self._timeout, context=self._ssl_context
                )
            else:
                connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
            self._local.connection = connection
            self._connections.append(connection)
        return connection


def _pusher(platform: FakeQQPlatform) -> WebhookPusher:
    if platform.webhook is None:
        raise RuntimeError("the platform is not in webhook mode")
    return platform.webhook


def _take_due(platform: FakeQQPlatform, now: float) -> tuple[list[Push], float | None]:
    pusher = _pusher(platform)
    return pusher.due(now, time.time()), pusher.next_timer()
