"""The embedded session store: one SQLite file, safe to share between processes."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from qqproto import SessionState

from ._fencing import FencedOut, check_token
from ._records import decode_record

__all__ = ["SQLiteSessionStore"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS qqproto_sessions (key TEXT PRIMARY KEY, record TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS qqproto_fences (key TEXT PRIMARY KEY, fence INTEGER NOT NULL)",
)


class SQLiteSessionStore:
    """Sessions in a SQLite file, in WAL mode, for any number of processes on one machine.

    A save reads and writes in one ``BEGIN IMMEDIATE`` transaction, so a newer seq written by
    another process is never overwritten by an older one, and a fenced write checks the key's
    fence in that same transaction; a busy file is waited for up to
    ``busy_timeout`` seconds before the call raises ``sqlite3.OperationalError``.
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 5.0) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            for statement in _SCHEMA:
                self._db.execute(statement)
        except sqlite3.Error:
            self._db.close()
            raise

    def __repr__(self) -> str:
        return f"SQLiteSessionStore({self.path!r})"

    def load(self, key: str) -> SessionState | None:
        with self._lock:
            row = self._db.execute("SELECT record FROM qqproto_sessions WHERE key = ?", (key,)).fetchone()
        return decode_record(key, row[0] if row else None)

    def save(self, key: str, state: SessionState) -> bool:
        with self._immediate():
            return self._save(key, state)

    def clear(self, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM qqproto_sessions WHERE key = ?", (key,))

    def raise_fence(self, key: str, token: int) -> None:
        """Make the key's fence ``max(fence, token)``: older tokens are refused from now on."""
        check_token(token)
        with self._lock:
            self._db.execute(
                "INSERT INTO qqproto_fences (key, fence) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET fence = max(fence, excluded.fence)",
                (key, token),
            )

    def save_fenced(self, key: str, state: SessionState, token: int) -> bool:
        """As :meth:`save`, unless ``token`` is older than the key's fence: then raise FencedOut."""
        check_token(token)
        with self._immediate():
            self._check_fence(key, token)
            return self._save(key, state)

    def clear_fenced(self, key: str, token: int) -> None:
        """As :meth:`clear`, unless ``token`` is older than the key's fence: then raise FencedOut."""
        check_token(token)
        with self._immediate():
            self._check_fence(key, token)
            self._db.execute("DELETE FROM qqproto_sessions WHERE key = ?", (key,))

    def close(self) -> None:
        """Close the file; the store is unusable afterwards."""
        with self._lock:
            self._db.close()

    # -- inside (called within one BEGIN IMMEDIATE transaction) -------------------------

    @contextmanager
    def _immediate(self) -> Iterator[None]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def _save(self, key: str, state: SessionState) -> bool:
        row = self._db.execute("SELECT record FROM qqproto_sessions WHERE key = ?", (key,)).fetchone()
        if not state.supersedes(decode_record(key, row[0] if row else None)):
            return False
        self._db.execute(
            "INSERT INTO qqproto_sessions (key, record) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET record = excluded.record",
            (key, state.to_json()),
        )
        return True

    def _check_fence(self, key: str, token: int) -> None:
        row = self._db.execute("SELECT fence FROM qqproto_fences WHERE key = ?", (key,)).fetchone()
        if row is not None and token < row[0]:
            raise FencedOut(key, token, row[0])
