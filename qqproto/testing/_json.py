"""The platform's JSON encoding: compact, UTF-8, non-ASCII kept as is."""

from __future__ import annotations

import json
from typing import TypeGuard

__all__ = ["dumps", "is_int", "loads"]


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dumps(obj: object) -> str:
    """Encode ``obj`` the way the platform puts it on the wire."""
    return _ENCODER.encode(obj)


def loads(data: str | bytes) -> object:
    """Decode client JSON; raises ``ValueError`` on anything that is not valid JSON."""
    try:
        return json.loads(data)
    except (UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(str(exc)) from exc


def is_int(value: object) -> TypeGuard[int]:
    """True for a JSON integer (``true`` and ``false`` are not)."""
    return isinstance(value, int) and not isinstance(value, bool)
