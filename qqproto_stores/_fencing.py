"""Fencing: a shard's store refuses writes from an owner whose lease has since passed to another."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from qqproto import SessionState, SessionStore

__all__ = ["FencedOut", "FencedSessionStore", "check_token"]


class FencedOut(Exception):
    """A write by a former owner of a shard: its fencing token is older than the shard's current one."""

    def __init__(self, key: str, token: int, current: int) -> None:
        super().__init__(f"the write to {key!r} is fenced out: token {token} is older than the current {current}")
        self.key = key
        self.token = token
        self.current = current


@runtime_checkable
class FencedSessionStore(SessionStore, Protocol):
    """A session store that also keeps a fence per key: the newest fencing token it has seen raised."""

    def raise_fence(self, key: str, token: int) -> None:
        """Make the key's fence ``max(fence, token)``: older tokens are refused from now on."""

    def save_fenced(self, key: str, state: SessionState, token: int) -> bool:
        """As ``save``, unless ``token`` is older than the key's fence: then raise FencedOut."""

    def clear_fenced(self, key: str, token: int) -> None:
        """As ``clear``, unless ``token`` is older than the key's fence: then raise FencedOut."""


def check_token(token: int) -> int:
    """``token`` if it is a fencing token (an int >= 0), else a ValueError saying so."""
    if isinstance(token, bool) or not isinstance(token, int) or token < 0:
        raise ValueError(f"a fencing token must be an int >= 0, got {token!r}")
    return token
