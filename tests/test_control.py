"""The fake platform's control endpoint, sans-IO: who may use it, and what it does with bad requests."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from qqproto.testing import FakeQQPlatform
from qqproto.testing._control import Control
from qqproto.testing._http_server import HTTPRequest

TOKEN = "t0ken"
NOW = 100.0


def ask(
    control: Control, method: str, route: str, body: Any = None, token: str = TOKEN, raw: bytes | None = None
) -> tuple[int, Any]:
    """One control request as the server would parse it; the status and the decoded answer."""
    data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    request = HTTPRequest(method, f"/_qqproto/{route}", {"authorization": f"Bearer {token}"}, data, False)
    answer = control(request, NOW)
    assert answer is not None
    return answer


@pytest.fixture
def control() -> Control:
    return Control(FakeQQPlatform(rng=random.Random(0)), TOKEN, random.Random(1))


def test_other_paths_are_left_to_the_platform(control: Control) -> None:
    assert control(HTTPRequest("GET", "/gateway", {}, b"", False), NOW) is None


@pytest.mark.parametrize("token", ["", "wrong", TOKEN + "x"])
def test_a_wrong_token_is_refused(control: Control, token: str) -> None:
    assert ask(control, "GET", "counters", token=token)[0] == 401
    assert control.faults_struck == {}


@pytest.mark.parametrize(
    "body, status, words",
    [
        ({"fault": "earthquake"}, 400, "unknown fault"),
        ({"fault": "close", "value": 1000}, 400, "4000 to 4999"),
        ({"fault": "close", "value": 4009.5}, 400, "4000 to 4999"),
        ({"fault": "rate_limit", "value": -1}, 400, "from 0"),
        ({"fault": "rate_limit", "value": True}, 400, "number"),
        ({"fault": "rate_limit", "value": "5"}, 400, "number"),
        ([1, 2], 400, "JSON object"),
    ],
)
def test_bad_fault_requests_say_what_is_wrong_and_strike_nothing(
    control: Control, body: Any, status: int, words: str
) -> None:
    answer_status, answer = ask(control, "POST", "faults", body)
    assert answer_status == status and words in answer["message"]
    assert control.faults_struck == {}


BROKEN = [b"{", b'{"fault": "rate_limit", "value": NaN}', b'{"fault": "close", "value": Infinity}']


@pytest.mark.parametrize("raw", BROKEN)
def test_json_that_is_broken_or_not_finite_is_refused(control: Control, raw: bytes) -> None:
    assert ask(control, "POST", "faults", raw=raw)[0] == 400
    assert control.faults_struck == {}


def test_a_fault_is_struck_and_counted(control: Control) -> None:
    assert ask(control, "POST", "faults", {"fault": "rate_limit", "value": 2}) == (
        200,
        {"fault": "rate_limit", "struck": "sends answered 22009", "value": 2},
    )
    assert ask(control, "GET", "counters")[1]["faults_struck"] == {"sends answered 22009": 1}


def test_an_event_without_a_session_is_answered_409_and_counted_as_undeliverable(control: Control) -> None:
    status, body = ask(control, "POST", "events", {"event_type": "C2C_MESSAGE_CREATE"})
    assert status == 409 and body["event_id"].startswith("C2C_MESSAGE_CREATE:")
    counters = ask(control, "GET", "counters")[1]
    assert counters["events_undeliverable"] == 1 and counters["events_pushed"] == 1


@pytest.mark.parametrize("shard", [-1, "1", 1.5, True, None, [0]])
def test_an_event_for_a_shard_that_is_not_a_whole_number_from_0_is_refused(control: Control, shard: Any) -> None:
    status, body = ask(control, "POST", "events", {"event_type": "C2C_MESSAGE_CREATE", "shard": shard})
    assert status == 400 and "shard must be a whole number from 0" in body["message"]
    counters = ask(control, "GET", "counters")[1]
    assert counters["events_pushed"] == 0 and counters["events_undeliverable"] == 0


def test_an_unknown_route_lists_the_known_ones(control: Control) -> None:
    status, body = ask(control, "DELETE", "counters")
    assert status == 404 and "GET /_qqproto/counters" in body["message"]
    assert "POST /_qqproto/shards/reset_peaks" in body["message"]
