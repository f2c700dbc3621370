"""Session stores: where a gateway session outlives its process, so a restart resumes it."""

from __future__ import annotations

from qqproto import SessionState, SessionStore, session_key

from ._fencing import FencedOut, FencedSessionStore
from ._sqlite import SQLiteSessionStore

__all__ = [
    "FencedOut",
    "FencedSessionStore",
    "RedisSessionStore",
    "SQLiteSessionStore",
    "SessionState",
    "SessionStore",
    "open_session_store",
    "session_key",
]


def __getattr__(name: str) -> object:
    # redis-py is an extra: importing it only when asked keeps SQLite usable without it.
    if name == "RedisSessionStore":
        from ._redis import RedisSessionStore

        return RedisSessionStore
    raise AttributeError(name)


def open_session_store(spec: str) -> SessionStore:
    """A store from a command-line spelling: ``sqlite:PATH`` or ``redis://HOST:PORT/DB``."""
    if spec.startswith("sqlite:"):
        path = spec[len("sqlite:") :]
        if not path:
            raise ValueError("sqlite: needs a file path, as in sqlite:/var/lib/bot/sessions.db")
        return SQLiteSessionStore(path)
    if spec.startswith(("redis://", "rediss://", "unix://")):
        from ._redis import RedisSessionStore

        return RedisSessionStore(spec)
    raise ValueError(f"unknown session store {spec!r}: use sqlite:PATH or redis://HOST:PORT/DB")
