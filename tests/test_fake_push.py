"""The fake platform's push side, sans-IO: validation first, signatures a receiver accepts, retries, faults."""

from __future__ import annotations

import json
import random

from qqproto.testing._push import WebhookPusher
from qqproto.webhook import WebhookReceiver

SECRET = "fake-secret-0123456789"
WALL = 1_800_000_000.0


def answer_all(pusher: WebhookPusher, receiver: WebhookReceiver, now: float, status: int | None = None) -> list[int]:
    """Send what is due to ``receiver`` (or fail it with ``status``); the statuses seen."""
    seen = []
    for push in pusher.due(now, WALL + now):
        answer = receiver.handle(push.headers, push.body, WALL + now)
        code = answer.status if status is None else status
        pusher.answered(push.push_id, None if code == 0 else code, answer.body, now)
        seen.append(code)
    return seen


def test_events_wait_for_validation_and_then_arrive_signed() -> None:
    pusher, receiver = WebhookPusher(SECRET, random.Random(0)), WebhookReceiver(SECRET)
    pusher.push("C2C_MESSAGE_CREATE", {"id": "m1"}, "ev-1", 0.0)
    first = pusher.due(0.0, WALL)
    assert [json.loads(p.body)["op"] for p in first] == [13]
    assert pusher.due(0.0, WALL) == []  # nothing else while validation is under way
    answer = receiver.handle(first[0].headers, first[0].body, WALL)
    pusher.answered(first[0].push_id, answer.status, answer.body, 0.0)
    assert pusher.validated
    assert answer_all(pusher, receiver, 0.0) == [200]
    assert pusher.delivered_ids == ["ev-1"] and pusher.outstanding == 0


def test_a_wrong_validation_answer_is_retried() -> None:
    pusher = WebhookPusher(SECRET, random.Random(0), retry_base=1.0)
    wrong = WebhookReceiver("another-secret-entirely", verify_validation=False)  # answers, with the wrong key
    assert answer_all(pusher, wrong, 0.0) == [200]
    assert not pusher.validated and pusher.next_timer() is not None and pusher.next_timer() > 0.0  # type: ignore[operator]


def test_failures_are_retried_with_growing_delays_until_given_up() -> None:
    pusher, receiver = (
        WebhookPusher(SECRET, random.Random(0), retry_base=1.0, retry_cap=4.0, max_attempts=4),
        WebhookReceiver(SECRET),
    )
    answer_all(pusher, receiver, 0.0)
    pusher.push("X", {}, "ev-1", 0.0)
    now, delays = 0.0, []
    for status in (503, 0, 503, 503):
        assert answer_all(pusher, receiver, now, status) == [status]
        due = pusher.next_timer()
        if due is None:
            break
        delays.append(due - now)
        now = due
    assert len(delays) == 3 and delays[0] < delays[2] <= 4.0
    assert pusher.counters.given_up == 1 and pusher.counters.failures == {"HTTP 503": 3, "no answer": 1}


def test_op_12_d_1_is_a_failure() -> None:
    pusher = WebhookPusher(SECRET, random.Random(0))
    pusher.validated = True
    pusher.push("X", {}, "ev-1", 0.0)
    [push] = pusher.due(0.0, WALL)
    pusher.answered(push.push_id, 200, b'{"op": 12, "d": 1}', 0.0)
    assert pusher.counters.retries == 1 and pusher.counters.delivered == 0


def test_scheduled_faults() -> None:
    pusher, receiver = WebhookPusher(SECRET, random.Random(0), retry_base=0.01), WebhookReceiver(SECRET)
    answer_all(pusher, receiver, 0.0)
    pusher.duplicate_next(1)
    pusher.sign_badly_next(1)
    pusher.push("X", {}, "ev-1", 0.0)
    assert sorted(answer_all(pusher, receiver, 0.0)) == [200, 401]
    assert answer_all(pusher, receiver, 1.0) == [200]  # the badly signed copy, retried properly
    assert pusher.counters.bad_signatures_refused == 1 and receiver.health(WALL, "serving").duplicate_requests == 1
    pusher.delay_next(1, 5.0)
    pusher.push("X", {}, "late", 1.0)
    pusher.push("X", {}, "on-time", 1.0)
    assert answer_all(pusher, receiver, 1.0) == [200] and pusher.delivered_ids[-1] == "on-time"
    pusher.hold(10.0)
    pusher.push("X", {}, "held", 2.0)
    assert pusher.due(6.0, WALL) == [] and pusher.next_timer() == 10.0
    assert answer_all(pusher, receiver, 10.0) == [200, 200]  # the delayed one and the held one, as a burst
