"""The embedded session store: one SQLite file, safe to share between processes."""

from __future__ import annotations

import os
import sqlite3
import threading

from qqproto import SessionState

from ._records import decode_record

__all__ = ["SQLiteSessionStore"]

_SCHEMA = "CREATE TABLE IF NOT EXISTS qqproto_sessions (key TEXT PRIMARY KEY, record TEXT NOT NULL)"


class SQLiteSessionStore:
    """Sessions in a SQLite file, in WAL mode, for any number of processes on one machine.

    A save reads and writes in one ``BEGIN IMMEDIATE`` transaction, so a newer seq written by
    another process is never overwritten by an older one; a busy file is waited for up to
    ``busy_timeout`` seconds before the call raises ``sqlite3.OperationalError``.
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 5.0) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
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
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT record FROM qqproto_sessions WHERE key = ?", (key,)).fetchone()
                if not state.supersedes(decode_record(key, row[0] if row else None)):
                    self._db.execute("ROLLBACK")
                    return False
                self._db.execute(
                    "INSERT INTO qqproto_sessions (key, record) VALUES (?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET record = excluded.record",
                    (key, state.to_json()),
                )
                self._db.execute("COMMIT")
                return True
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def clear(self, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM qqproto_sessions WHERE key = ?", (key,))

    def close(self) -> None:
        """Close the file; the store is unusable afterwards."""
        with self._lock:
            self._db.close()
