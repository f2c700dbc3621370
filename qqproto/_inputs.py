"""The checks every public input of a connection shares: its ``now``, its bytes, its message."""

from __future__ import annotations

import math

from ._errors import LocalProtocolError
from ._sending import OutgoingMessage

__all__ = ["Clock", "check_data", "check_message"]


class Clock:
    """The caller's ``now``, checked on every input; a clock that steps back is taken as standing still."""

    __slots__ = ("now",)

    def __init__(self) -> None:
        self.now = -math.inf

    def tick(self, now: float, method: str) -> float:
        """Check ``now`` as ``method``'s argument and return the connection's time."""
        if (type(now) is not float and (isinstance(now, bool) or not isinstance(now, (int, float)))) or now != now:
            raise LocalProtocolError(
                f"{method}() needs now as a number of seconds, got {now!r}: pass a reading of the "
                "same monotonic clock as every other input"
            )
        if now > self.now:
            self.now = float(now)
        return self.now


def check_data(data: object) -> bytes:
    """The bytes given to ``receive_data``, as ``bytes``."""
    if type(data) is bytes:
        return data
    if not isinstance(data, (bytearray, memoryview)):
        raise LocalProtocolError(
            f"receive_data() takes bytes, not {type(data).__name__}: pass the bytes read from the socket"
        )
    return bytes(data)


def check_message(message: object) -> OutgoingMessage:
    """The message given to ``send_message``."""
    if not isinstance(message, OutgoingMessage):
        raise LocalProtocolError(f"send_message() takes an OutgoingMessage, not {type(message).__name__}")
    return message
