"""The bounded queue of events between a transport and its application, and the error that ends it."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from qqproto import (
    Action,
    Dispatch,
    Fatal,
    HeartbeatAcked,
    HeartbeatSent,
    MessageFailed,
    MessageSent,
    Ready,
    ReconnectScheduled,
    Resumed,
    SendRetryScheduled,
    SessionForgotten,
    TimerLate,
)

if TYPE_CHECKING:
    from ._session_keeper import SessionKeeper

__all__ = ["APPLICATION_EVENTS", "SESSION_EVENTS", "EventQueue", "GatewayFatalError"]

#: Events that are never dropped: the session, its dispatches, and the outcome of each send.
SESSION_EVENTS = (Ready, Resumed, Dispatch, SessionForgotten, MessageSent, MessageFailed)
#: Everything a transport hands to the application; the notices among them may be dropped.
APPLICATION_EVENTS = (
    *SESSION_EVENTS,
    HeartbeatSent,
    HeartbeatAcked,
    ReconnectScheduled,
    TimerLate,
    SendRetryScheduled,
)
_KEPT = frozenset(SESSION_EVENTS)


class GatewayFatalError(Exception):
    """The core emitted ``Fatal``: the connection has stopped for good."""

    def __init__(self, reason: str, close_code: int | None) -> None:
        super().__init__(reason if close_code is None else f"{reason} [close code {close_code}]")
        self.reason = reason
        self.close_code = close_code


class EventQueue:
    """Application events on their way to the consumer, bounded at ``limit``.

    When it is full, notices are dropped; Ready, Resumed and Dispatch are always kept, and the
    driver stops reading until the consumer catches up: taking the event that leaves room calls
    ``on_room``.  It ends after a close or an error.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("max_pending_events must be at least 1")
        self._items: deque[Action] = deque()
        self._limit = limit
        self._finished = False
        self._error: BaseException | None = None
        self.dropped_notices = 0
        self.on_room: Callable[[], None] | None = None
        #: Told of each event once the consumer is done with it: when it takes the next one.
        self.keeper: SessionKeeper | None = None
        self._handed: Action | None = None

    def __len__(self) -> int:
        """How many events are waiting."""
        return len(self._items)

    @property
    def full(self) -> bool:
        """True once ``limit`` events are waiting."""
        return len(self._items) >= self._limit

    @property
    def done(self) -> bool:
        """True once it has ended and everything in it was taken."""
        return self._finished and not self._items

    def put(self, action: Action) -> None:
        """Queue an application event; ``Fatal`` ends the queue with a :class:`GatewayFatalError`."""
        self.put_all([action])

    def put_all(self, actions: list[Action]) -> None:
        """:meth:`put` each of ``actions``, in order."""
        items = self._items
        for action in actions:
            if self._finished:
                return
            if type(action) in _KEPT:
                items.append(action)
            elif isinstance(action, Fatal):
                self.finish(GatewayFatalError(action.reason, action.close_code))
            elif len(items) < self._limit:
                items.append(action)
            else:
                self.dropped_notices += 1

    def finish(self, error: BaseException | None = None) -> None:
        """End the queue; once drained, :meth:`get` raises ``error`` if one is given."""
        if not self._finished:
            self._finished = True
            self._error = error

    def last_finished(self) -> None:
        """The consumer is done with the last event it took (it asked for the next, or left cleanly)."""
        handed, self._handed = self._handed, None
        if handed is not None and self.keeper is not None:
            self.keeper.finished(handed)

    def get(self) -> Action | None:
        """The next event, or None if none is waiting; raises the ending error once drained.

        Asking is what says the consumer is done with the event it took before, whether or not
        another is waiting: a bot idle after its last event has that event saved as finished.
        """
        keeper = self.keeper
        if keeper is not None and self._handed is not None:
            self.last_finished()
        items = self._items
        if items:
            if len(items) == self._limit and self.on_room is not None:
                self.on_room()  # taking this one leaves room; first, so that an error here loses nothing
            event = items.popleft()
            if keeper is not None:
                self._handed = event
            return event
        if self._error is not None:
            raise self._error
        return None
