"""Fenced writes: once a shard's fence rises, its former owner's writes are refused by both stores."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qqproto import SessionState, session_key
from qqproto_stores import FencedOut, FencedSessionStore, open_session_store

KEY = session_key("102000000", (0, 1))


@pytest.fixture(params=["sqlite", "redis"])
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store as the command line spells it."""
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'sessions.db'}"
    request.getfixturevalue("redis_client")
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture
def store(spec: str) -> Iterator[FencedSessionStore]:
    opened = open_session_store(spec)
    assert isinstance(opened, FencedSessionStore)
    yield opened
    opened.close()  # type: ignore[attr-defined]


def state(seq: int, session_id: str = "s1") -> SessionState:
    return SessionState(session_id, seq, (0, 1), 1000.0)


def test_an_older_token_is_fenced_out_and_leaves_the_record(store: FencedSessionStore) -> None:
    assert store.save_fenced(KEY, state(5), 1) is True, "no fence yet: any token writes"
    store.raise_fence(KEY, 2)
    with pytest.raises(FencedOut) as caught:
        store.save_fenced(KEY, state(9), 1)
    assert (caught.value.key, caught.value.token, caught.value.current) == (KEY, 1, 2)
    assert "token 1 is older than the current 2" in str(caught.value)
    assert store.load(KEY) == state(5)


def test_equal_and_newer_tokens_write_as_save_does(store: FencedSessionStore) -> None:
    store.raise_fence(KEY, 2)
    assert store.save_fenced(KEY, state(5), 2) is True
    assert store.save_fenced(KEY, state(7), 3) is True
    assert store.save_fenced(KEY, state(6), 3) is False, "the fence adds to the seq rule, it does not replace it"
    assert store.load(KEY) == state(7)


def test_a_fence_never_goes_down(store: FencedSessionStore) -> None:
    store.raise_fence(KEY, 5)
    store.raise_fence(KEY, 3)
    with pytest.raises(FencedOut) as caught:
        store.save_fenced(KEY, state(1), 4)
    assert caught.value.current == 5


def test_a_fence_belongs_to_its_key(store: FencedSessionStore) -> None:
    store.raise_fence(session_key("102000000", (1, 2)), 9)
    assert store.save_fenced(KEY, state(1), 1) is True


def test_clear_fenced_is_fenced_the_same_way(store: FencedSessionStore) -> None:
    store.save(KEY, state(5))
    store.raise_fence(KEY, 2)
    with pytest.raises(FencedOut):
        store.clear_fenced(KEY, 1)
    assert store.load(KEY) == state(5)
    store.clear_fenced(KEY, 2)
    assert store.load(KEY) is None
    with pytest.raises(FencedOut):
        store.save_fenced(KEY, state(6), 1)  # clearing the record keeps its fence


def test_plain_save_and_clear_ignore_the_fence(store: FencedSessionStore) -> None:
    store.raise_fence(KEY, 2)
    assert store.save(KEY, state(5)) is True
    store.clear(KEY)
    assert store.load(KEY) is None


@pytest.mark.parametrize("token", [-1, True, 1.0, "2"])
def test_a_token_that_is_not_a_count_is_named(store: FencedSessionStore, token: object) -> None:
    for call in (
        lambda: store.raise_fence(KEY, token),  # type: ignore[arg-type]
        lambda: store.save_fenced(KEY, state(1), token),  # type: ignore[arg-type]
        lambda: store.clear_fenced(KEY, token),  # type: ignore[arg-type]
    ):
        with pytest.raises(ValueError, match="a fencing token must be an int >= 0"):
            call()


STALE_WRITER = """
import json, sys, time
from qqproto import SessionState
from qqproto_stores import FencedOut, open_session_store
store = open_session_store(sys.argv[1])
rounds, pace = int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + 60
last_landed = []
for round in range(rounds):
    landed, refused, seq = None, 0, 1_000_000
    while refused < 20:  # keeps writing after it was fenced out
        assert time.monotonic() < deadline, "never fenced out"
        seq += 1000  # far ahead of the new owner, so that only the fence can stop it
        try:
            if store.save_fenced(f"race:{round}", SessionState("s", seq, (0, 1), 1000.0), 1):
                landed = seq
        except FencedOut:
            refused += 1
        time.sleep(pace)
    last_landed.append(landed)
print(json.dumps(last_landed))
"""
ROUNDS = 20


def test_a_stale_writer_racing_the_new_owner_never_lands_a_record_after_the_fence_rose(
    spec: str, store: FencedSessionStore
) -> None:
    """Round after round, the former owner writes as the new owner raises the fence and takes over."""
    # SQLite's busy handler is not fair: a writer with no gap at all would starve the new owner.
    pace = "0.0005" if spec.startswith("sqlite:") else "0"
    stale = subprocess.Popen(
        [sys.executable, "-c", STALE_WRITER, spec, str(ROUNDS), pace],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    taken_over: list[int] = []
    try:
        for round in range(ROUNDS):
            key = f"race:{round}"
            deadline = time.monotonic() + 30
            while (store.load(key) or state(0)).seq < 1_003_000:  # the stale writer is in full flow
                assert time.monotonic() < deadline and stale.poll() is None, "the stale writer stopped writing"
                time.sleep(0.001)
            store.raise_fence(key, 2)
            found = store.load(key)
            assert found is not None
            taken_over.append(found.seq)
            for seq in range(found.seq + 1, found.seq + 4):  # the new owner resumes from the store
                assert store.save_fenced(key, state(seq, "s"), 2) is True, "a stale record got in after the fence rose"
            assert store.load(key) == state(found.seq + 3, "s")
        out, err = stale.communicate(timeout=60)
    finally:
        stale.kill()
    assert stale.returncode == 0, err
    assert json.loads(out) == taken_over, "each round, the stale writer's last landed write is the one the fence found"
