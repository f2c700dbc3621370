"""Errors raised to the caller of the core."""

from __future__ import annotations

__all__ = ["LocalProtocolError"]


class LocalProtocolError(Exception):
    """The caller used the connection wrongly; the message names the mistake."""
