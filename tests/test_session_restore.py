"""A session saved by an earlier process: restored before start, resumed, or refused and replaced."""

from __future__ import annotations

import dataclasses

import pytest
from helpers import CONFIG, Harness

from qqproto import (
    Dispatch,
    LocalProtocolError,
    Ready,
    Resumed,
    SessionForgotten,
    SessionProgress,
    SessionState,
    State,
)

SAVED = SessionState("session-saved", 40, (0, 1), 1_700_000_000.0)


def restored(state: SessionState = SAVED) -> Harness:
    h = Harness()
    h.conn.restore_session(state, h.now)
    h.server_seq = state.seq + 3  # the platform moved on while the process was away
    return h


def test_a_restored_session_resumes_from_its_seq_instead_of_identifying() -> None:
    h = restored().start()
    assert h.sent_ops(2) == []
    (resume,) = h.sent_ops(6)
    assert resume["d"]["session_id"] == "session-saved"
    assert resume["d"]["seq"] == 40
    assert h.of_type(Resumed) == [Resumed("session-saved")]
    assert h.conn.health(h.now).session_restore == "resumed"


def test_a_restored_session_the_platform_refuses_falls_back_to_identify_and_health_says_so() -> None:
    h = restored()
    h.auto_ready = False
    h.start()
    assert len(h.sent_ops(6)) == 1
    h.send(h.ws_id(), {"op": 9, "d": False})
    h.pump()
    assert h.conn.health(h.now).session_restore == "refused"
    (forgotten,) = h.of_type(SessionForgotten)
    assert "op 9" in forgotten.reason
    h.auto_ready = True
    h.advance_until(lambda: h.conn.state is State.IDENTIFYING or h.conn.state is State.CONNECTED, limit=30)
    h.advance_until(lambda: h.conn.state is State.CONNECTED, limit=30)
    assert len(h.sent_ops(2)) == 1
    (ready,) = h.of_type(Ready)
    assert ready.session_id != "session-saved"
    assert h.conn.health(h.now).session_restore == "refused"


def test_ready_carries_its_seq_so_progress_starts_there() -> None:
    h = Harness().connect()
    (ready,) = h.of_type(Ready)
    assert ready.seq == 1


def test_every_forgotten_session_is_announced_once() -> None:
    h = Harness().connect()
    h.server_close(4006, "invalid session id")
    h.pump()
    (forgotten,) = h.of_type(SessionForgotten)
    assert "4006" in forgotten.reason
    h.advance_until(lambda: h.conn.state is State.CONNECTED, limit=60)
    h.server_close(4009, "session timed out")  # resumable: nothing is forgotten
    h.pump()
    h.advance_until(lambda: h.conn.state is State.CONNECTED, limit=60)
    assert len(h.of_type(SessionForgotten)) == 1


def test_close_keeping_the_session_does_not_use_1000() -> None:
    h = Harness().connect()
    h.conn.close(h.now, keep_session=True)
    h.pump()
    (peer,) = h.ws_peers()
    assert peer.close_code is not None and peer.close_code != 1000
    plain = Harness().connect()
    plain.conn.close(plain.now)
    plain.pump()
    assert plain.ws_peers()[0].close_code == 1000


@pytest.mark.parametrize(
    "mistake, message",
    [
        ("after-start", "before start"),
        ("other-shard", "shard"),
        ("not-a-state", "SessionState"),
    ],
)
def test_restoring_wrongly_names_the_mistake(mistake: str, message: str) -> None:
    h = Harness()
    state: object = SAVED
    if mistake == "after-start":
        h.start()
    elif mistake == "other-shard":
        state = dataclasses.replace(SAVED, shard=(1, 2))
    else:
        state = {"session_id": "s", "seq": 1}
    with pytest.raises(LocalProtocolError, match=message):
        h.conn.restore_session(state, h.now)  # type: ignore[arg-type]


def test_progress_follows_only_what_the_application_finished() -> None:
    progress = SessionProgress(CONFIG.shard)
    assert progress.state(5.0) is None
    assert progress.finished(Ready("s1", {}, (0, 1), 1))
    assert progress.state(5.0) == SessionState("s1", 1, (0, 1), 5.0)
    assert progress.finished(Dispatch("T", {}, 2, "e2"))
    assert not progress.finished(Dispatch("T", {}, 2, "e2"))  # a replay moves nothing
    assert progress.finished(SessionForgotten("op 9"))
    assert progress.forgotten and progress.state(6.0) is None
    assert not progress.finished(Dispatch("T", {}, 3, "e3"))  # late events of the forgotten session
    assert progress.finished(Ready("s2", {}, (0, 1), 1))
    assert progress.state(7.0) == SessionState("s2", 1, (0, 1), 7.0)


@pytest.mark.parametrize(
    "fields",
    [
        {"session_id": ""},
        {"seq": -1},
        {"seq": True},
        {"shard": (2, 2)},
        {"shard": (0,)},
        {"saved_at": float("nan")},
    ],
)
def test_a_session_state_refuses_nonsense(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        dataclasses.replace(SAVED, **fields)  # type: ignore[arg-type]


def test_a_record_nested_past_the_parser_s_depth_is_refused_not_raised() -> None:
    with pytest.raises(ValueError, match="not a session record"):
        SessionState.from_json("[" * 100_000 + "]" * 100_000)
