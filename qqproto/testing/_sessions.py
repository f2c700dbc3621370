"""A gateway session: its id, shard, and the log of dispatches a Resume can replay."""

from __future__ import annotations

from collections import deque
from itertools import islice

__all__ = ["Session"]


class Session:
    """One session created by Identify; READY takes seq 1, each logged dispatch the next."""

    def __init__(self, session_id: str, shard: tuple[int, int], log_limit: int) -> None:
        self.session_id = session_id
        self.shard = shard
        self.last_seq = 1
        self.sent_seq = 1
        self.seen_seq = 0
        self.conn_id: int | None = None
        self.detached_at: float | None = None
        self._log: deque[tuple[int, str, str]] = deque()
        self._log_limit = log_limit
        self._forgotten_seq = 0
        self._forgotten_unseen: deque[tuple[int, str]] = deque()

    def log(self, seq: int, event_id: str, text: str) -> None:
        """Record the encoded dispatch ``seq`` (``last_seq + 1``), forgetting the oldest past the limit."""
        self._log.append((seq, event_id, text))
        self.last_seq = seq
        if len(self._log) > self._log_limit:
            old_seq, old_id, _ = self._log.popleft()
            self._forgotten_seq = old_seq
            if old_seq > self.seen_seq:
                self._forgotten_unseen.append((old_seq, old_id))

    def after(self, seq: int) -> list[tuple[int, str]] | None:
        """Every logged dispatch with s > ``seq``, or None if some were already forgotten."""
        if seq < self._forgotten_seq:
            return None
        first = self._log[0][0] if self._log else self.last_seq + 1
        return [(s, text) for s, _, text in islice(self._log, max(0, seq + 1 - first), None)]

    def saw(self, seq: int) -> None:
        """The client proved (by heartbeat or resume) that it received up to ``seq``."""
        self.seen_seq = max(self.seen_seq, min(seq, self.last_seq))
        while self._forgotten_unseen and self._forgotten_unseen[0][0] <= self.seen_seq:
            self._forgotten_unseen.popleft()

    def unseen_event_ids(self) -> list[str]:
        """Ids of the dispatches the client never proved it received."""
        forgotten = [event_id for _, event_id in self._forgotten_unseen]
        return forgotten + [event_id for s, event_id, _ in self._log if s > self.seen_seq]
