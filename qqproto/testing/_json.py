"""The platform's JSON encoding: compact, UTF-8, non-ASCII kept as is."""

from __future__ import annotations

import json

__all__ = ["dumps", "loads"]


def dumps(obj: object) -> str:
    """Encode ``obj`` the way the platform puts it on the wire."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def loads(data: str | bytes) -> object:
    """Decode client JSON; raises ``ValueError`` on anything that is not valid JSON."""
    try:
        return json.loads(data)
    except (UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(str(exc)) from exc
