"""The keeper saves what the application finished with: newest state wins, one write at a time, failures retried."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from qqproto import Dispatch, Ready, SessionForgotten, SessionState, session_key
from qqproto_stores import SQLiteSessionStore
from transports._session_keeper import SessionKeeper

SHARD = (0, 1)
KEY = session_key("app", SHARD)
WAIT = 10.0


class GatedStore:
    """A real SQLite store whose writes wait at a gate, fail on demand, and are counted."""

    def __init__(self, path: Path) -> None:
        self.inner = SQLiteSessionStore(path)
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.failures_left = 0
        self.writes: list[int | None] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    def load(self, key: str) -> SessionState | None:
        if self.failures_left:
            raise OSError("disk unavailable")
        return self.inner.load(key)

    def save(self, key: str, state: SessionState) -> bool:
        return bool(self._write(lambda: self.inner.save(key, state), state.seq))

    def clear(self, key: str) -> None:
        self._write(lambda: self.inner.clear(key), None)

    def _write(self, do: Callable[[], object], seq: int | None) -> object:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            self.entered.set()
            assert self.gate.wait(WAIT), "the test never opened the gate"
            if self.failures_left:
                self.failures_left -= 1
                raise OSError("disk full")
            self.writes.append(seq)
            return do()
        finally:
            with self._lock:
                self.in_flight -= 1


def events(first: int, last: int) -> list[Dispatch]:
    return [Dispatch("GROUP_AT_MESSAGE_CREATE", {}, seq, f"e{seq}") for seq in range(first, last + 1)]


def test_the_last_finished_seq_is_saved_by_close(tmp_path: Path) -> None:
    store = SQLiteSessionStore(tmp_path / "s.db")
    keeper = SessionKeeper(store, "app", SHARD, wall_clock=lambda: 1000.0)
    for event in [Ready("s1", {}, SHARD, seq=1), *events(2, 50)]:
        keeper.finished(event)
    assert keeper.close(WAIT)
    assert store.load(KEY) == SessionState("s1", 50, SHARD, 1000.0)


def test_writes_are_coalesced_one_at_a_time_and_the_newest_wins(tmp_path: Path) -> None:
    store = GatedStore(tmp_path / "s.db")
    keeper = SessionKeeper(store, "app", SHARD)
    store.gate.clear()
    keeper.finished(Ready("s1", {}, SHARD, seq=1))
    assert store.entered.wait(WAIT)  # the first write is in flight and held at the gate
    for event in events(2, 500):
        keeper.finished(event)
    store.gate.set()
    assert keeper.close(WAIT)
    assert store.max_in_flight == 1
    assert store.writes[0] == 1 and store.writes[-1] == 500
    assert len(store.writes) == 2, f"499 events finished during one slow write make one more write, not {store.writes}"
    assert store.inner.load(KEY) is not None and store.inner.load(KEY).seq == 500  # type: ignore[union-attr]


def test_a_failing_store_is_retried_until_it_works(tmp_path: Path) -> None:
    store = GatedStore(tmp_path / "s.db")
    keeper = SessionKeeper(store, "app", SHARD)
    store.failures_left = 2
    store.gate.clear()
    keeper.finished(Ready("s1", {}, SHARD, seq=1))
    assert store.entered.wait(WAIT)
    store.gate.set()
    assert wait_for(lambda: keeper.error is not None)
    for event in events(2, 9):
        keeper.finished(event)
    assert keeper.close(WAIT), keeper.error
    assert keeper.error is None
    loaded = store.inner.load(KEY)
    assert loaded is not None and loaded.seq == 9


def test_a_store_that_stays_down_reports_its_error_and_close_says_nothing_was_saved(tmp_path: Path) -> None:
    store = GatedStore(tmp_path / "s.db")
    keeper = SessionKeeper(store, "app", SHARD)
    store.failures_left = 10**6
    keeper.finished(Ready("s1", {}, SHARD, seq=1))
    assert store.entered.wait(WAIT)
    assert keeper.close(1.0) is False
    assert keeper.error is not None and "disk full" in keeper.error
    assert store.inner.load(KEY) is None


def test_a_forgotten_session_is_cleared_and_its_late_events_are_not_saved(tmp_path: Path) -> None:
    store = SQLiteSessionStore(tmp_path / "s.db")
    store.save(KEY, SessionState("old", 40, SHARD, 1.0))
    keeper = SessionKeeper(store, "app", SHARD)
    assert keeper.restore() == SessionState("old", 40, SHARD, 1.0)
    keeper.finished(SessionForgotten("op 9: the platform refused the session"))
    keeper.finished(events(41, 41)[0])  # still queued from the old session when it was forgotten
    assert keeper.close(WAIT)
    assert store.load(KEY) is None


def test_restore_from_a_failing_store_identifies_and_reports(tmp_path: Path) -> None:
    store = GatedStore(tmp_path / "s.db")
    store.failures_left = 1
    keeper = SessionKeeper(store, "app", SHARD)
    assert keeper.restore() is None
    assert keeper.error is not None and "load failed" in keeper.error and "disk unavailable" in keeper.error


def test_progress_resumes_from_the_restored_seq(tmp_path: Path) -> None:
    store = SQLiteSessionStore(tmp_path / "s.db")
    store.save(KEY, SessionState("s1", 40, SHARD, 1.0))
    keeper = SessionKeeper(store, "app", SHARD, wall_clock=lambda: 2.0)
    keeper.restore()
    for event in events(35, 45):  # a replay from before the saved seq changes nothing
        keeper.finished(event)
    assert keeper.close(WAIT)
    assert store.load(KEY) == SessionState("s1", 45, SHARD, 2.0)


@pytest.mark.usefixtures("redis_client")
def test_redis_going_away_and_coming_back_loses_no_progress(tmp_path: Path) -> None:
    """A real redis-server of its own is stopped mid-stream and started again on the same port."""
    from redis_server import restartable_redis

    from qqproto_stores import RedisSessionStore

    with restartable_redis(tmp_path) as server:
        store = RedisSessionStore(server.url, timeout=0.5)
        keeper = SessionKeeper(store, "app", SHARD)
        keeper.finished(Ready("s1", {}, SHARD, seq=1))
        server.stop()
        for event in events(2, 30):
            keeper.finished(event)
        assert wait_for(lambda: keeper.error is not None), "a down store must show in the keeper's error"
        server.start()
        assert wait_for(lambda: keeper.error is None, timeout=40.0), keeper.error
        assert keeper.close(WAIT)
        loaded = store.load(KEY)
        assert loaded is not None and loaded.seq == 30


def wait_for(condition: Callable[[], bool], timeout: float = WAIT) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes (the keeper's thread changes it)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        threading.Event().wait(0.02)
    return True


def test_asking_for_the_next_event_finishes_the_last_one_even_when_none_is_waiting(tmp_path: Path) -> None:
    """A bot idle after its last event has that event saved: a crash then repeats nothing."""
    from transports._event_queue import EventQueue

    store = SQLiteSessionStore(tmp_path / "s.db")
    keeper = SessionKeeper(store, "app", SHARD, wall_clock=lambda: 5.0)
    queue = EventQueue(100)
    queue.keeper = keeper
    queue.put_all([Ready("s1", {}, SHARD, seq=1), *events(2, 3)])
    taken = [queue.get() for _ in range(3)]
    assert [type(event).__name__ for event in taken] == ["Ready", "Dispatch", "Dispatch"]
    assert queue.get() is None  # the application asks again: nothing is waiting
    assert keeper.close(WAIT)
    assert store.load(KEY) == SessionState("s1", 3, SHARD, 5.0)


def test_a_stored_session_of_another_shard_is_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = SQLiteSessionStore(tmp_path / "s.db")
    store.save(KEY, SessionState("s1", 9, (1, 2), 1.0))  # under shard 0's key, a record of shard 1
    keeper = SessionKeeper(store, "app", SHARD)
    assert keeper.restore() is None
    assert "shard" in caplog.text


def test_a_save_the_store_refuses_shows_as_an_error(tmp_path: Path) -> None:
    store = SQLiteSessionStore(tmp_path / "s.db")
    store.save(KEY, SessionState("other", 9, SHARD, 10_000.0))  # saved later, by a clock ahead of ours
    keeper = SessionKeeper(store, "app", SHARD, wall_clock=lambda: 5.0)
    keeper.finished(Ready("s1", {}, SHARD, seq=1))
    assert not keeper.close(WAIT)
    assert keeper.error is not None and "refused" in keeper.error
