"""Keeping a session store up to date from any runtime: a worker thread, the latest state wins."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from qqproto import Action, GatewayConfig, SessionProgress, SessionState, SessionStore, session_key

from ._common import describe

__all__ = ["SessionKeeper", "keeper_for"]

log = logging.getLogger("qqproto.transports")

#: Seconds between attempts while the store fails: doubling from the first to the last.
RETRY_FIRST, RETRY_MAX = 0.5, 30.0
#: At most one write starts per this many seconds, so saving costs the event loop almost nothing;
#: a crash can cost at most this much progress, which the platform then replays.
WRITE_EVERY = 0.01


class SessionKeeper:
    """Saves what the application has finished with, on a thread of its own.

    The event loop only notes progress; one worker writes the newest state, so a slow store
    never slows the stream, and a failing one is retried until it comes back.
    """

    def __init__(
        self,
        store: SessionStore,
        app_id: str,
        shard: tuple[int, int],
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.key = session_key(app_id, shard)
        self.progress = SessionProgress(shard)
        self.restored: SessionState | None = None
        self.error: str | None = None
        self.saves = 0
        self._wall_clock = wall_clock
        self._pending = False  # progress changed since the worker last looked
        self._busy = False
        self._closing = False
        self._stopped = False
        self._wake = threading.Condition()
        self._worker: threading.Thread | None = None

    def restore(self) -> SessionState | None:
        """Load the saved session (blocking); a store that fails is logged and read as nothing saved."""
        try:
            restored = self.store.load(self.key)
        except Exception as exc:  # a store may fail in any way; the bot identifies instead
            self._failed("load", exc)
            return None
        if restored is not None and restored.shard != self.progress.shard:
            log.warning("ignoring the session under %r: it belongs to shard %s", self.key, restored.shard)
            restored = None
        self.restored = restored
        self.progress = SessionProgress(self.progress.shard, self.restored)
        return self.restored

    def finished(self, event: Action) -> None:
        """The application is done with ``event``: the worker saves the progress in the background."""
        if self.progress.finished(event):
            self._offer()

    def close(self, timeout: float) -> bool:
        """Write what is pending and stop the worker (blocking, at most ``timeout`` s); True if all was saved."""
        with self._wake:
            self._closing = True
            self._wake.notify()
            worker = self._worker
        if worker is not None:
            worker.join(timeout)  # a failing store is retried until then
        with self._wake:
            self._stopped = True
            self._wake.notify()
            return not self._pending and not self._busy and self.error is None

    def _offer(self) -> None:
        if self._pending:
            return  # a write is due already; the worker reads the progress only after clearing this flag
        with self._wake:
            self._pending = True
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name=f"qqproto-session-{self.key}", daemon=True)
                self._worker.start()
            elif not self._busy:
                self._wake.notify()

    def _run(self) -> None:
        delay = RETRY_FIRST
        while True:
            with self._wake:
                while not self._pending and not self._closing:
                    self._wake.wait()
                if not self._closing:
                    self._busy = True  # new progress need not wake it while it paces itself
                    self._wake.wait(WRITE_EVERY)
                if not self._pending:
                    return
                self._pending = False
                self._busy = True
            try:
                state = self.progress.state(self._wall_clock())
                refused = False
                if state is not None:
                    refused = not self.store.save(self.key, state)
                elif self.progress.forgotten:
                    self.store.clear(self.key)
                self.saves += 1
                if refused:
                    # Only a record of another session saved later (by the wall clock) wins over ours.
                    self.error = "save refused: the store holds a later record of another session"
                    log.warning("session store %r: %s", self.store, self.error)
                else:
                    if self.error is not None:
                        log.warning("session store %r works again", self.store)
                    self.error = None
                delay = RETRY_FIRST
            except Exception as exc:  # a store may fail in any way; keep the newest state and retry
                self._failed("save", exc)
                with self._wake:
                    self._pending = True
                    # Still busy while backing off, so new progress does not wake it: only close() does.
                    if not self._stopped:
                        self._wake.wait(delay)
                    self._busy = False
                    if self._stopped:
                        return
                delay = min(delay * 2, RETRY_MAX)
                continue
            with self._wake:
                self._busy = False

    def _failed(self, what: str, exc: BaseException) -> None:
        self.error = f"{what} failed: {describe(exc)}"
        log.warning("session store %r: %s", self.store, self.error)


def keeper_for(store: SessionStore | None, config: GatewayConfig) -> SessionKeeper | None:
    """A keeper of ``config``'s shard in ``store``, or None without a store."""
    return None if store is None else SessionKeeper(store, config.app_id, config.shard)
