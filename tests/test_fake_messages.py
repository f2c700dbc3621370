"""The fake platform's message endpoints refuse what the platform refuses (docs/protocol.md §11)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from qqproto.testing import PlatformCounters
from qqproto.testing._http_server import HTTPRequest
from qqproto.testing._messages import MessageDesk

NOW = 100.0


def post(path: str, body: dict[str, Any]) -> HTTPRequest:
    return HTTPRequest("POST", path, {}, json.dumps(body).encode(), False)


def code_of(answer: tuple[int, object]) -> Any:
    status, body = answer
    return body["code"] if status != 200 and isinstance(body, dict) else status


@pytest.fixture
def desk() -> MessageDesk:
    desk = MessageDesk(PlatformCounters(), rate_limit=(3, 60.0), allow_active=True)
    desk.pushed("g-msg", "group", NOW)
    desk.pushed("c-msg", "c2c", NOW)
    return desk


GROUP = "/v2/groups/g1/messages"
C2C = "/v2/users/u1/messages"


def test_a_reply_inside_its_window_is_accepted(desk: MessageDesk) -> None:
    assert code_of(desk.answer(post(GROUP, {"content": "x", "msg_id": "g-msg", "msg_seq": 1}), True, NOW + 299)) == 200
    assert desk.received[0].scene == "group" and desk.received[0].target == "g1"


def test_an_accepted_send_answers_an_rfc3339_timestamp(desk: MessageDesk) -> None:
    status, body = desk.answer(post(GROUP, {"content": "x", "msg_id": "g-msg"}), True, 90.0)
    assert status == 200 and isinstance(body, dict)
    assert body["timestamp"] == "2025-01-01T00:01:30+08:00"


def test_without_a_valid_token_the_answer_is_11244(desk: MessageDesk) -> None:
    assert code_of(desk.answer(post(GROUP, {"content": "x"}), False, NOW)) == 11244


@pytest.mark.parametrize("path, msg_id, after, code", [(GROUP, "g-msg", 301, 40034005), (C2C, "c-msg", 3601, 40034005)])
def test_a_reply_after_its_window_is_40034005(
    desk: MessageDesk, path: str, msg_id: str, after: float, code: int
) -> None:
    assert code_of(desk.answer(post(path, {"content": "x", "msg_id": msg_id}), True, NOW + after)) == code


def test_an_unknown_msg_id_is_40034024(desk: MessageDesk) -> None:
    assert code_of(desk.answer(post(GROUP, {"content": "x", "msg_id": "nope"}), True, NOW)) == 40034024


def test_a_repeated_msg_seq_is_40054005(desk: MessageDesk) -> None:
    body = {"content": "x", "msg_id": "g-msg", "msg_seq": 2}
    assert code_of(desk.answer(post(GROUP, body), True, NOW)) == 200
    assert code_of(desk.answer(post(GROUP, body), True, NOW)) == 40054005


def test_a_sixth_reply_is_refused(desk: MessageDesk) -> None:
    desk = MessageDesk(PlatformCounters(), rate_limit=None, allow_active=True)
    desk.pushed("c-msg", "c2c", NOW)
    codes = [code_of(desk.answer(post(C2C, {"msg_id": "c-msg", "msg_seq": n}), True, NOW)) for n in range(1, 7)]
    assert codes == [200] * 5 + [40034128]


def test_too_many_messages_are_22009(desk: MessageDesk) -> None:
    codes = [code_of(desk.answer(post(C2C, {"content": str(n)}), True, NOW)) for n in range(4)]
    assert codes == [200, 200, 200, 22009]


def test_active_messages_can_be_switched_off() -> None:
    desk = MessageDesk(PlatformCounters(), rate_limit=None, allow_active=False)
    assert code_of(desk.answer(post(C2C, {"content": "x"}), True, NOW)) == 40034102


def test_scheduled_failures_come_first(desk: MessageDesk) -> None:
    desk.fail_next(2, 22009)
    codes = [code_of(desk.answer(post(C2C, {"content": "x"}), True, NOW)) for _ in range(3)]
    assert codes == [22009, 22009, 200]
