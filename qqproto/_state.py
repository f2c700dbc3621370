"""The connection's states and the transitions allowed between them, as one table."""

from __future__ import annotations

import enum

__all__ = ["API_TRANSITIONS", "FINAL_STATES", "STOPPED_STATES", "TRANSITIONS", "Machine", "State"]


class State(enum.Enum):
    """Where a connection is in its life."""

    IDLE = "idle"
    AUTHENTICATING = "authenticating"
    LOCATING = "locating"
    CONNECTING = "connecting"
    IDENTIFYING = "identifying"
    RESUMING = "resuming"
    CONNECTED = "connected"
    WAITING = "waiting"
    CLOSING = "closing"
    CLOSED = "closed"
    FATAL = "fatal"


_S = State
# Every way toward a session can fail into WAITING (reconnect later), FATAL, or CLOSED (close()).
_ANY_FAILURE = {_S.WAITING, _S.FATAL, _S.CLOSED}

TRANSITIONS: dict[State, frozenset[State]] = {
    _S.IDLE: frozenset({_S.AUTHENTICATING, _S.CLOSED}),
    _S.AUTHENTICATING: frozenset({_S.LOCATING, _S.CONNECTING, *_ANY_FAILURE}),
    _S.LOCATING: frozenset({_S.AUTHENTICATING, _S.CONNECTING, *_ANY_FAILURE}),
    _S.CONNECTING: frozenset({_S.IDENTIFYING, _S.RESUMING, _S.CLOSING, *_ANY_FAILURE}),
    _S.IDENTIFYING: frozenset({_S.CONNECTED, _S.CLOSING, *_ANY_FAILURE}),
    _S.RESUMING: frozenset({_S.CONNECTED, _S.CLOSING, *_ANY_FAILURE}),
    _S.CONNECTED: frozenset({_S.CLOSING, *_ANY_FAILURE}),
    _S.WAITING: frozenset({_S.AUTHENTICATING, _S.LOCATING, _S.CONNECTING, _S.FATAL, _S.CLOSED}),
    _S.CLOSING: frozenset({_S.CLOSED}),
    _S.CLOSED: frozenset(),
    _S.FATAL: frozenset(),
}

#: The API-only connection has no gateway: from its first token straight to CONNECTED.
API_TRANSITIONS: dict[State, frozenset[State]] = {
    _S.IDLE: frozenset({_S.AUTHENTICATING, _S.CLOSED}),
    _S.AUTHENTICATING: frozenset({_S.CONNECTED, _S.FATAL, _S.CLOSED}),
    _S.CONNECTED: frozenset({_S.FATAL, _S.CLOSED}),
    _S.CLOSED: frozenset(),
    _S.FATAL: frozenset(),
}

#: States with no way out: the connection has ended (closed or fatal).
FINAL_STATES = frozenset(state for state, ways_out in TRANSITIONS.items() if not ways_out)
#: States after which nothing new starts: ended, or closing.
STOPPED_STATES = FINAL_STATES | {_S.CLOSING}


class Machine:
    """Holds the current state and moves it only along its table (:data:`TRANSITIONS` by default)."""

    __slots__ = ("_table", "state")

    def __init__(self, table: dict[State, frozenset[State]] = TRANSITIONS) -> None:
        self.state = State.IDLE
        self._table = table

    def move(self, new: State) -> None:
        """Go to ``new``; a step the table forbids is a bug in the core."""
        if new is not self.state and new not in self._table[self.state]:
            raise RuntimeError(f"internal error: no transition from {self.state.value} to {new.value}")
        self.state = new
