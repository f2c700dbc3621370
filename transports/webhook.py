"""An ASGI 3 application that serves QQ webhook callbacks and hands their events to the bot.

It only moves bytes: :class:`~qqproto.webhook.WebhookReceiver` decides every answer.  It runs
under any ASGI server on asyncio or trio (through anyio) and mounts into FastAPI, Starlette or
Quart.  Events come out of ``async for event in app``, each verified dispatch once.

Acknowledgement (``ack``):

- ``"received"`` (default): op 12 as soon as the event is queued.  Fast; an event still queued
  when the process dies is lost.
- ``"handled"``: op 12 once the application has taken the *next* event (or left the loop
  cleanly), within ``ack_timeout``; otherwise op 12 with ``d`` = 1, so the platform retries.  An
  event not yet taken by then is withdrawn and handed out again on its redelivery: at-least-once
  across crashes, and a redelivery of an event being handled waits for its outcome.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import anyio

from qqproto import Action, Dispatch, Health
from qqproto.webhook import Outcome, WebhookAnswer, WebhookReceiver, ack_body

from ._asgi import Receive, Scope, Send, discard, lifespan, respond

__all__ = ["ACK_MODES", "WebhookApp"]


ACK_MODES = ("received", "handled")
#: The platform waits about 3 s for an answer (docs/protocol.md §13.4); answer a little before that.
DEFAULT_ACK_TIMEOUT = 2.5
CLOSED_BODY = b'{"message": "the receiver is shutting down"}'
#: Before a 413, up to this many times ``max_body`` more is read and dropped; past that the connection just closes.
DRAIN_LIMIT_FACTOR = 8


class _Delivery:
    """One event on its way to the application, and the request waiting for its outcome."""

    __slots__ = ("event", "event_id", "handled", "settled", "taken")

    def __init__(self, event: Action, event_id: str | None, settled: anyio.Event | None = None) -> None:
        self.event = event
        self.event_id = event_id
        self.taken = False
        self.handled = False
        self.settled = settled  # only with ack="handled": a request waits on it


class WebhookApp:
    """Answers callbacks as an ASGI app; ``async for event in app`` yields their dispatches."""

    def __init__(
        self,
        receiver: WebhookReceiver,
        *,
        ack: str = "received",
        ack_timeout: float = DEFAULT_ACK_TIMEOUT,
        max_pending_events: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if ack not in ACK_MODES:
            raise ValueError(f"ack must be one of {', '.join(map(repr, ACK_MODES))}, not {ack!r}")
        if ack_timeout <= 0 or max_pending_events < 1:
            raise ValueError("ack_timeout and max_pending_events must be positive")
        self.receiver = receiver
        self.ack = ack
        self.ack_timeout = ack_timeout
        self.max_pending_events = max_pending_events
        self.clock = clock
        self._queue: deque[_Delivery] = deque()
        self._pending: dict[str, _Delivery] = {}
        self._current: _Delivery | None = None
        self._arrived: anyio.Event | None = None
        self._closed = False
        self._error: BaseException | None = None

    def __repr__(self) -> str:
        return f"<WebhookApp ack={self.ack!r} queued={len(self._queue)} receiver={self.receiver!r}>"

    # -- the application's side -------------------------------------------------------------

    def __aiter__(self) -> WebhookApp:
        return self

    async def __anext__(self) -> Action:
        """The next event; taking it means the previous one was handled."""
        self._finish_current(handled=True)
        while not self._queue:
            if self._closed:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            self._arrived = anyio.Event()
            await self._arrived.wait()
        delivery = self._queue.popleft()
        if delivery.settled is not None:  # a dispatch someone waits on: handled once the next is taken
            delivery.taken = True
            self._current = delivery
        return delivery.event

    def notify(self, event: Action) -> None:
        """Queue an event that needs no acknowledgement (a send's outcome) for the application."""
        if not self._closed:
            self._queue.append(_Delivery(event, None))
            self._wake()

    def close(self, error: BaseException | None = None, *, handled: bool = True) -> None:
        """Stop: the iteration ends (raising ``error`` if given); every waiting callback is answered d=1.

        ``handled`` says whether the event the application holds was finished with.
        """
        if self._closed:
            return
        self._finish_current(handled=handled)
        self._closed = True
        self._error = error
        while self._queue:
            self._withdraw(self._queue.popleft())
        self._wake()

    def health(self) -> Health:
        """The webhook's health: serving until closed; counts of accepted, duplicate and rejected requests."""
        state = "serving" if not self._closed else ("fatal" if self._error is not None else "closed")
        return self.receiver.health(self.clock(), state)

    # -- the ASGI side ----------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise ValueError(f"the webhook app serves HTTP only, not {scope['type']!r}")
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        path = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
        refusal = self.receiver.check_head(scope["method"], path, headers)
        body = await self._read_body(receive) if refusal is None or refusal.outcome is not Outcome.TOO_LARGE else None
        if refusal is None and body is None:
            refusal = self.receiver.too_large()
        if refusal is not None:
            if body is None:  # read what is still coming and drop it, so that the answer can be heard
                await discard(receive, DRAIN_LIMIT_FACTOR * self.receiver.max_body)
            await respond(send, refusal.status, refusal.body)
            return
        assert body is not None
        if self._closed:
            await respond(send, 503, CLOSED_BODY)
            return
        answer = self.receiver.handle(headers, body, self.clock())
        first = self._pending.get(answer.event_id or "") if answer.outcome is Outcome.DUPLICATE else None
        if answer.event is not None:
            await respond(send, 200, await self._deliver(answer.event))
        elif first is not None:
            await respond(send, 200, await self._outcome(first))
        else:
            await respond(send, *_answer(answer))

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or None once it grows past the receiver's limit."""
        chunks = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return bytes(chunks)
            chunks += message.get("body", b"")
            if len(chunks) > self.receiver.max_body:
                return None
            if not message.get("more_body", False):
                return bytes(chunks)

    async def _deliver(self, event: Dispatch) -> bytes:
        """Queue the event and say what to answer: at once, or once it is handled (or too late)."""
        delivery = _Delivery(event, event.event_id, anyio.Event() if self.ack == "handled" else None)
        if len(self._queue) >= self.max_pending_events:
            self._withdraw(delivery)
            return ack_body(failed=True)
        self._queue.append(delivery)
        self._wake()
        if self.ack == "received":
            return ack_body()
        if event.event_id is not None:
            self._pending[event.event_id] = delivery
        return await self._outcome(delivery)

    async def _outcome(self, delivery: _Delivery) -> bytes:
        """Wait for the application to finish with the event, at most ``ack_timeout``; a redelivery waits too."""
        assert delivery.settled is not None
        with anyio.move_on_after(self.ack_timeout):
            await delivery.settled.wait()
        if delivery.handled:
            return ack_body()
        if not delivery.taken and not delivery.settled.is_set():
            self._queue.remove(delivery)
            self._withdraw(delivery)
        return ack_body(failed=True)

    # -- bookkeeping ------------------------------------------------------------------------

    def _finish_current(self, handled: bool) -> None:
        current, self._current = self._current, None
        if current is None:
            return
        if handled:
            current.handled = True
            self._settle(current)
        else:
            self._withdraw(current)

    def _withdraw(self, delivery: _Delivery) -> None:
        """The event was not handled: answer d=1 and hand it out again when it comes back."""
        if delivery.event_id is not None:
            self.receiver.forget(delivery.event_id, withdrawn=not delivery.taken)
        self._settle(delivery)

    def _settle(self, delivery: _Delivery) -> None:
        if delivery.event_id is not None:
            self._pending.pop(delivery.event_id, None)
        if delivery.settled is not None:
            delivery.settled.set()

    def _wake(self) -> None:
        if self._arrived is not None:
            self._arrived.set()
            self._arrived = None


def _answer(answer: WebhookAnswer) -> tuple[int, bytes]:
    return answer.status, answer.body
