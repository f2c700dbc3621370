"""What botpy's parsers take: the gateway frame ``{op, s, t, id, d}`` of each event qqproto hands over."""

from __future__ import annotations

from typing import Any

from qqproto import Dispatch, Ready, Resumed

__all__ = ["botpy_frame"]

DISPATCH_OP = 0


def botpy_frame(event: Dispatch | Ready | Resumed) -> tuple[str, dict[str, Any]]:
    """The parser key (event type in lower case) and the frame botpy built from the same message."""
    if isinstance(event, Ready):
        ready = {"version": 1, "session_id": event.session_id, "user": event.user, "shard": list(event.shard)}
        return "ready", _frame("READY", ready, None, None)
    if isinstance(event, Resumed):
        return "resumed", _frame("RESUMED", "", None, None)
    return event.event_type.lower(), _frame(event.event_type, event.data, event.seq, event.event_id)


def _frame(event_type: str, data: Any, seq: int | None, event_id: str | None) -> dict[str, Any]:
    frame: dict[str, Any] = {"op": DISPATCH_OP, "s": seq, "t": event_type, "d": data}
    if event_id is not None:
        frame["id"] = event_id
    return frame
