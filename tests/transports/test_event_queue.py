"""The bounded event queue every transport shares: what it keeps, what it drops, and when it says there is room."""

from __future__ import annotations

import pytest

from qqproto import Dispatch, HeartbeatSent
from transports._common import EventQueue


def dispatch(seq: int) -> Dispatch:
    return Dispatch("C2C_MESSAGE_CREATE", {}, seq, f"e{seq}")


def test_dispatches_are_kept_past_the_limit_and_notices_are_dropped() -> None:
    queue = EventQueue(2)
    queue.put_all([dispatch(1), HeartbeatSent(1), dispatch(2), HeartbeatSent(2), dispatch(3)])
    assert [queue.get() for _ in range(4)] == [dispatch(1), HeartbeatSent(1), dispatch(2), dispatch(3)]
    assert queue.dropped_notices == 1


def test_room_is_announced_once_when_the_queue_stops_being_full() -> None:
    queue = EventQueue(2)
    rooms: list[int] = []
    queue.on_room = lambda: rooms.append(len(queue))
    queue.put_all([dispatch(1), dispatch(2), dispatch(3)])
    queue.get()
    assert rooms == []  # still full
    queue.get()
    queue.get()
    assert rooms == [2]


def test_an_error_while_announcing_room_loses_no_event() -> None:
    queue = EventQueue(1)

    def broken() -> None:
        raise RuntimeError("the transport is gone")

    queue.on_room = broken
    queue.put(dispatch(1))
    with pytest.raises(RuntimeError):
        queue.get()
    queue.on_room = None
    assert queue.get() == dispatch(1)
