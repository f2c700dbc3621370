"""Fuzzing finds nothing: a short run of ``bench.fuzz``, and each input it ever crashed on, kept as a test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import CONFIG, GATEWAY_URL, Harness

from bench.fuzz import case_input, record_transcripts, run_case, run_range
from qqproto import Fatal, ReconnectScheduled, State

ROOT = Path(__file__).resolve().parents[1]

GATEWAY_BOT = {"url": GATEWAY_URL, "shards": 1}


def limit(**fields: int) -> dict[str, Any]:
    """A /gateway/bot answer whose session_start_limit has ``fields`` changed."""
    usual = {"total": 5, "remaining": 5, "reset_after": 1000, "max_concurrency": 1}
    return {**GATEWAY_BOT, "session_start_limit": {**usual, **fields}}


TOKEN_ANSWERS: dict[str, tuple[int, Any]] = {
    "non-ASCII token": (200, {"access_token": "tok-测试", "expires_in": "7200"}),
    "token with CRLF": (200, {"access_token": "tok\r\nX-Injected: 1", "expires_in": "7200"}),
    "code is an object": (500, {"code": {"nested": 1}, "message": "x"}),
    "code is a list": (500, {"code": [100016]}),
    "expires_in too large for a float": (200, {"access_token": "tok", "expires_in": 10**400}),
    "expires_in digits too large for a float": (200, {"access_token": "tok", "expires_in": "1" + "0" * 400}),
}

GATEWAY_ANSWERS: dict[str, tuple[int, Any]] = {
    "code is an object": (500, {"code": {"nested": 1}}),
    "err_code is a list": (400, {"err_code": [40023001]}),
    "reset_after too large for a float": (200, limit(reset_after=10**400)),
    "host that is not IDNA": (200, {"url": "wss://" + "a" * 70 + ".example/websocket"}),
    "non-ASCII path": (200, {"url": "wss://gw.example.test/网关"}),
    "space in the path": (200, {"url": "wss://gw.example.test/a b"}),
}


@pytest.mark.parametrize("name", sorted(TOKEN_ANSWERS))
def test_a_token_answer_the_fuzzer_crashed_on_is_retried(name: str) -> None:
    h = Harness()
    h.token_answers = [TOKEN_ANSWERS[name]]
    h.start()
    (scheduled,) = h.of_type(ReconnectScheduled)
    assert scheduled.cause == "token"
    h.advance_until(lambda: h.conn.state is State.CONNECTED)


@pytest.mark.parametrize("name", sorted(GATEWAY_ANSWERS))
def test_a_gateway_answer_the_fuzzer_crashed_on_does_no_harm(name: str) -> None:
    h = Harness()
    h.gateway_answers = [GATEWAY_ANSWERS[name]]
    h.start()
    h.advance_until(lambda: h.conn.state is State.CONNECTED)
    assert h.of_type(Fatal) == []


def test_a_huge_max_concurrency_does_not_break_the_next_identify() -> None:
    h = Harness()
    h.gateway_default = (200, limit(max_concurrency=10**400))
    h.connect()
    h.send(h.ws_id(), {"op": 9, "d": False})
    h.advance_until(lambda: len(h.sent_ops(2)) == 2 and h.conn.state is State.CONNECTED)


def test_a_heartbeat_interval_too_large_for_a_float_is_capped() -> None:
    h = Harness()
    h.send_hello = False
    h.start()
    h.send(h.ws_id(), {"op": 10, "d": {"heartbeat_interval": 10**400}})
    assert h.conn.state is State.CONNECTED
    assert h.conn.health(h.now).heartbeat_interval == CONFIG.heartbeat_interval_bounds[1] * CONFIG.heartbeat_ratio


def test_a_ready_whose_session_id_cannot_be_sent_back_is_bad_input() -> None:
    h = Harness()
    h.auto_ready = False
    h.start()
    ready = {"op": 0, "s": 1, "t": "READY", "d": {"session_id": "\ud800-lone-surrogate", "user": {}}}
    h.send_text(h.ws_id(), json.dumps(ready))  # ASCII JSON: the surrogate arrives as an escape, as the fuzzer sent it
    (scheduled,) = h.of_type(ReconnectScheduled)
    assert scheduled.cause == "bad_input"
    assert h.conn.session_id is None


def test_recorded_transcripts_replay_exactly() -> None:
    """Unmutated, each transcript makes a fresh client act as the recorded one did, so mutations land where meant."""
    for transcript in record_transcripts():
        replayed = run_case(transcript.seed, transcript.steps)
        assert [repr(a) for a in replayed[: len(transcript.actions)]] == [repr(a) for a in transcript.actions]


def test_cases_are_the_same_on_every_run() -> None:
    transcripts = record_transcripts()
    assert case_input(1234, 0, transcripts) == case_input(1234, 0, transcripts)


def test_a_short_fuzz_run_finds_nothing() -> None:
    cases, findings = run_range((0, 2000, 7))
    assert cases == 2000
    assert findings == [], findings[0][1]


def test_the_command_reports_cases_rate_and_findings() -> None:
    command = [sys.executable, "-m", "bench.fuzz", "--cases", "200", "--jobs", "1", "--seed", "3"]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "200 cases in" in run.stdout and "cases/s, 0 findings" in run.stdout
