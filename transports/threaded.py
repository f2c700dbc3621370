"""Keep the connection on its own thread, so an application that blocks its loop cannot starve heartbeats.

The thread runs a private asyncio loop with the :mod:`transports.asyncio` driver; events cross
to the application through one locked queue.  ``events()`` blocks on a condition variable;
``aiter_events()`` never blocks the caller's loop: the gateway thread wakes it with
``loop.call_soon_threadsafe``, which costs no thread of the caller's and lets a cancelled
consumer simply stop waiting.  ``now`` is ``time.monotonic()`` (the private loop's clock).

Buffering: at most ``max_pending_events`` events wait for the application.  While the queue
is full the gateway socket is not read (TCP backpressure); heartbeats still go out on time.
If the stall outlasts a heartbeat interval the core misses an ACK and resumes, and the platform
replays what was not read, so nothing is lost.  Notices (HeartbeatSent/Acked, TimerLate,
ReconnectScheduled) are dropped while the queue is full; Ready, Resumed and Dispatch never are.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator

from qqproto import Action, GatewayConfig, Health, OutgoingMessage, QQGatewayConnection, SessionStore

from ._common import DEFAULT_MAX_PENDING_EVENTS, EventQueue, GatewayFatalError, with_store
from ._session_keeper import keeper_for
from .asyncio import Gateway

__all__ = ["GatewayFatalError", "GatewayThread"]


class _SharedQueue(EventQueue):
    """An :class:`EventQueue` filled on the gateway thread and drained from any other thread or loop."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self._cond = threading.Condition()  # reentrant: put_all may finish the queue
        self._wakers: list[Callable[[], None]] = []

    @property
    def full(self) -> bool:
        with self._cond:
            return super().full

    def put_all(self, actions: list[Action]) -> None:
        with self._cond:
            super().put_all(actions)
            self._wake()

    def finish(self, error: BaseException | None = None) -> None:
        with self._cond:
            super().finish(error)
            self._wake()

    def attach(self, on_room: Callable[[], None] | None) -> None:
        """Call ``on_room`` (on a consumer's thread) when the queue stops being full; None: no one to tell."""
        with self._cond:
            self.on_room = on_room

    def last_finished(self) -> None:
        with self._cond:
            super().last_finished()

    def poll(self, waker: Callable[[], None]) -> Action | None:
        """The next event; or None, having arranged one call of ``waker`` when there is news."""
        with self._cond:
            event = self.get()
            if event is None and not self.done:
                self._wakers.append(waker)
            return event

    def forget(self, waker: Callable[[], None]) -> None:
        """Drop a waker whose consumer stopped waiting."""
        with self._cond:
            if waker in self._wakers:
                self._wakers.remove(waker)

    def wait_get(self) -> Action | None:
        """Block until the next event; None once the queue has ended and is drained."""
        with self._cond:
            while (event := self.get()) is None and not self.done:
                self._cond.wait()
            return event

    def _wake(self) -> None:
        self._cond.notify_all()
        wakers, self._wakers = self._wakers, []
        for waker in wakers:
            waker()


class GatewayThread:
    """A gateway connection on a thread of its own: ``start()``, consume its events, ``stop()``."""

    def __init__(
        self,
        config: GatewayConfig,
        ssl_context: ssl.SSLContext | None = None,
        *,
        rng: random.Random | None = None,
        max_pending_events: int = DEFAULT_MAX_PENDING_EVENTS,
        session_store: SessionStore | None = None,
    ) -> None:
        self._config = config
        self._keeper = keeper_for(session_store, config)  # loads and saves on the gateway thread's pool
        self._ssl_context = ssl_context
        self._conn = QQGatewayConnection(config, rng)
        self._lock = threading.Lock()  # guards the core, and the loop handles below
        self._events = _SharedQueue(max_pending_events)
        self._thread = threading.Thread(target=self._run, name=f"qqproto-gateway-{config.app_id}", daemon=True)
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._gateway: Gateway | None = None

    def start(self) -> None:
        """Start the thread and begin connecting."""
        self._thread.start()
        self._ready.wait()

    def stop(self, *, last_event_finished: bool = True) -> None:
        """Close gracefully, then end the thread; blocks until it has (about ``2 x close_timeout`` at most).

        With a session store, the last event taken counts as finished unless ``last_event_finished``
        is False (the application failed on it). The final save is made, and the session kept,
        before it returns.
        """
        with self._lock:
            if self._keeper is not None and last_event_finished:
                self._events.last_finished()
            if self._loop is not None and self._stop is not None:
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread.is_alive():
            self._thread.join()
        self._events.finish()

    def send_message(self, message: OutgoingMessage) -> int:
        """Hand a message to the connection's thread; its outcome arrives as MessageSent or MessageFailed."""
        done: concurrent.futures.Future[int] = concurrent.futures.Future()

        def hand_over() -> None:
            try:
                assert self._gateway is not None
                done.set_result(self._gateway.send_message(message))
            except BaseException as exc:
                done.set_exception(exc)

        with self._lock:
            if self._loop is None:
                raise RuntimeError("send_message() needs a started, running GatewayThread")
            self._loop.call_soon_threadsafe(hand_over)
        return done.result()

    def health(self) -> Health:
        """The core's health snapshot now; safe from any thread."""
        with self._lock:
            return with_store(self._conn.health(time.monotonic()), self._keeper)

    @property
    def access_token(self) -> str | None:
        """The access token the connection holds, for the bot's other HTTP calls; safe from any thread."""
        with self._lock:
            return self._conn.access_token

    def events(self) -> Iterator[Action]:
        """Events as they come, blocking; ends after ``stop()``, raises :class:`GatewayFatalError` on Fatal."""
        while (event := self._events.wait_get()) is not None:
            yield event

    async def aiter_events(self) -> AsyncIterator[Action]:
        """Events delivered to the running asyncio loop without ever blocking it."""
        loop = asyncio.get_running_loop()
        arrived = asyncio.Event()

        def waker() -> None:
            loop.call_soon_threadsafe(arrived.set)

        try:
            while True:
                event = self._events.poll(waker)
                if event is not None:
                    yield event
                elif self._events.done:
                    return
                else:
                    await arrived.wait()
                    arrived.clear()
        finally:
            self._events.forget(waker)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            self._events.finish(exc)
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        gateway = Gateway(self._conn, self._config, self._ssl_context, self._events, self._lock, self._keeper)
        gateway.finish_last_on_exit = False  # the application runs elsewhere: only stop() may say it is done

        def on_room() -> None:
            loop.call_soon_threadsafe(gateway.resume_reading)

        self._events.attach(on_room)
        try:
            async with gateway:
                with self._lock:
                    self._loop, self._stop, self._gateway = loop, stop, gateway
                self._ready.set()
                await stop.wait()
        finally:
            with self._lock:
                self._loop = self._stop = self._gateway = None
            self._events.attach(None)
