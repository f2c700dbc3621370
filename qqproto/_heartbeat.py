"""Heartbeat timing and ACK tracking, with zombie detection."""

from __future__ import annotations

import enum

__all__ = ["Beat", "Heartbeat"]


class Beat(enum.Enum):
    """What to do when a heartbeat falls due."""

    SEND = "send"
    ZOMBIE = "zombie"


class Heartbeat:
    """Keeps one socket's heartbeat schedule from Hello's interval and the ACKs that come back."""

    def __init__(self, interval: float, now: float) -> None:
        self.interval = interval
        self.due_at = now + interval
        self.sent_at: float | None = None
        self.acked = True
        self.last_ack_at: float | None = None
        self.latency: float | None = None

    def due(self, now: float, *, late: bool) -> Beat:
        """Decide at a due time: beat, or give the socket up as a zombie.

        A beat still unacknowledged means the socket is dead, unless the host loop was blocked
        (``late``): then the ACK may be waiting unread, so the socket gets another interval.
        """
        if not self.acked and not late:
            return Beat.ZOMBIE
        return Beat.SEND

    def sent(self, now: float) -> None:
        """A heartbeat went out now; the next is due one interval later."""
        self.sent_at = now
        self.acked = False
        self.due_at = now + self.interval

    def ack(self, now: float) -> float | None:
        """An op 11 arrived; return the latency of the beat it answers, or None if none was waiting."""
        self.last_ack_at = now
        if self.acked or self.sent_at is None:
            return None
        self.acked = True
        self.latency = now - self.sent_at
        return self.latency
