"""Reading stored records back, the same way for every store."""

from __future__ import annotations

import logging

from qqproto import SessionState

__all__ = ["decode_record", "log"]

log = logging.getLogger("qqproto.stores")


def decode_record(key: str, raw: str | bytes | None) -> SessionState | None:
    """The state in ``raw``; a corrupt or foreign record is logged and read as nothing saved."""
    if raw is None:
        return None
    try:
        return SessionState.from_json(raw)
    except ValueError as exc:
        log.warning("ignoring the session record under %r: %s", key, exc)
        return None
