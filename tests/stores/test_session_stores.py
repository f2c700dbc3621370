"""Both session stores keep the newest state per key, and never let an older write win."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qqproto import SessionState, session_key
from qqproto_stores import RedisSessionStore, SessionStore, SQLiteSessionStore, open_session_store

KEY = session_key("102000000", (0, 1))


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A store spelled as the command line spells it, and the raw handle to tamper with it."""
    if request.param == "sqlite":
        yield "sqlite", f"sqlite:{tmp_path / 'sessions.db'}"
    else:
        request.getfixturevalue("redis_client")
        yield "redis", request.getfixturevalue("redis_url")


@pytest.fixture
def store(backend: tuple[str, str]) -> Iterator[SessionStore]:
    opened = open_session_store(backend[1])
    yield opened
    opened.close()  # type: ignore[attr-defined]


def put_raw(backend: tuple[str, str], key: str, raw: bytes) -> None:
    """Write a record behind the store's back, as a foreign program or a torn write would."""
    kind, spec = backend
    if kind == "sqlite":
        import sqlite3

        with sqlite3.connect(spec[len("sqlite:") :]) as db:
            db.execute("INSERT OR REPLACE INTO qqproto_sessions (key, record) VALUES (?, ?)", (key, raw))
    else:
        import redis

        redis.Redis.from_url(spec).set("qqproto:session:" + key, raw)


def state(session_id: str = "s1", seq: int = 5, saved_at: float = 1000.0) -> SessionState:
    return SessionState(session_id, seq, (0, 1), saved_at)


def test_open_session_store_picks_the_backend(backend: tuple[str, str], store: SessionStore) -> None:
    expected = SQLiteSessionStore if backend[0] == "sqlite" else RedisSessionStore
    assert isinstance(store, expected)


def test_nothing_saved_loads_as_none(store: SessionStore) -> None:
    assert store.load(KEY) is None


def test_saved_state_loads_back_equal(store: SessionStore) -> None:
    assert store.save(KEY, state(seq=7)) is True
    assert store.load(KEY) == state(seq=7)


def test_a_higher_seq_of_the_same_session_replaces_a_lower_one(store: SessionStore) -> None:
    store.save(KEY, state(seq=7))
    assert store.save(KEY, state(seq=9, saved_at=999.0)) is True
    assert store.load(KEY) == state(seq=9, saved_at=999.0)


def test_a_lower_seq_of_the_same_session_never_overwrites_a_higher_one(store: SessionStore) -> None:
    store.save(KEY, state(seq=9))
    assert store.save(KEY, state(seq=7, saved_at=2000.0)) is False
    assert store.load(KEY) == state(seq=9)


def test_a_newer_session_replaces_an_older_one_whatever_its_seq(store: SessionStore) -> None:
    store.save(KEY, state("old", seq=900, saved_at=1000.0))
    assert store.save(KEY, state("new", seq=1, saved_at=1001.0)) is True
    assert store.load(KEY) == state("new", seq=1, saved_at=1001.0)


def test_an_older_session_does_not_replace_a_newer_one(store: SessionStore) -> None:
    store.save(KEY, state("new", seq=1, saved_at=1001.0))
    assert store.save(KEY, state("old", seq=900, saved_at=1000.0)) is False
    assert store.load(KEY) == state("new", seq=1, saved_at=1001.0)


def test_clear_forgets_only_its_key(store: SessionStore) -> None:
    other = session_key("102000000", (1, 2))
    store.save(KEY, state())
    store.save(other, SessionState("s2", 3, (1, 2), 1000.0))
    store.clear(KEY)
    assert store.load(KEY) is None
    assert store.load(other) == SessionState("s2", 3, (1, 2), 1000.0)
    store.clear(KEY)  # clearing what is not there is not an error


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfe not utf-8",
        b"{not json",
        b"[1, 2]",
        b'{"v": 99, "session_id": "s", "seq": 1, "shard": [0, 1], "saved_at": 1}',
        b'{"v": 1, "session_id": "s", "seq": -1, "shard": [0, 1], "saved_at": 1}',
        b'{"v": 1, "session_id": "s", "seq": 1, "shard": [3, 1], "saved_at": 1}',
        b'{"v": 1, "seq": 1, "shard": [0, 1], "saved_at": 1}',
        b'{"v": 1, "session_id": "s", "seq": 1, "shard": 7, "saved_at": 1}',
    ],
    ids=["not-utf8", "not-json", "not-object", "other-version", "negative-seq", "bad-shard", "no-id", "shard-int"],
)
def test_a_corrupt_or_foreign_record_is_logged_and_ignored(
    backend: tuple[str, str], store: SessionStore, raw: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    put_raw(backend, KEY, raw)
    with caplog.at_level(logging.WARNING, logger="qqproto.stores"):
        assert store.load(KEY) is None
    assert any(KEY in record.getMessage() for record in caplog.records)
    assert store.save(KEY, state()) is True, "a corrupt record must not block saving a good one"
    assert store.load(KEY) == state()


def test_open_session_store_refuses_what_it_cannot_read() -> None:
    with pytest.raises(ValueError, match="sqlite:PATH or redis://"):
        open_session_store("postgres://x")
    with pytest.raises(ValueError, match="file path"):
        open_session_store("sqlite:")


RACER = """
import sys
from qqproto import SessionState
from qqproto_stores import open_session_store
store = open_session_store(sys.argv[1])
start, step, count = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
refused = 0
for seq in range(start, start + step * count, step):
    if not store.save("race", SessionState("s", seq, (0, 1), 1000.0)):
        refused += 1
    # each writer reads its own write, or a newer one, back at once
    assert store.load("race").seq >= seq
print(refused)
"""


def test_two_processes_racing_for_one_key_lose_no_update(backend: tuple[str, str], store: SessionStore) -> None:
    """Odd and even seqs from two processes: the highest one wins, and nothing raises 'locked'."""
    count = 300
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, backend[1], str(first), "2", str(count)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for first in (1, 2)
    ]
    outputs = [racer.communicate(timeout=120) for racer in racers]
    for racer, (_, err) in zip(racers, outputs):
        assert racer.returncode == 0, err
    loaded = store.load("race")
    assert loaded is not None and loaded.seq == 2 * count
    refused: list[Any] = [int(out) for out, _ in outputs]
    assert sum(refused) < 2 * count  # both wrote; some of each were rightly refused as older
