"""Webhook mode: the reference vectors, signature checks, validation, acknowledgement and de-duplication."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from qqproto import Dispatch
from qqproto.webhook import Outcome, WebhookReceiver, signing_seed

# docs/protocol.md §13.2: the documented op 13 example and its signature.
DOC_SECRET = "DG5g3B4j9X2KOErG"
DOC_VALIDATION = {"d": {"plain_token": "Arq0D5A61EgUu4OxUvOp", "event_ts": "1725442341"}, "op": 13}
DOC_SIGNATURE = (
    "87befc99c42c651b3aac0278e71ada338433ae26fcb24307bdc5ad38c1adc2d0"
    "1bcfcadc0842edac85e85205028a1132afe09280305f13aa6909ffc2d652c706"
)
NOW = 1725442341.0
BODY = json.dumps(
    {"op": 0, "s": 3, "t": "C2C_MESSAGE_CREATE", "id": "ev-1", "d": {"id": "m1", "content": "hi"}}
).encode()


def signed(receiver: WebhookReceiver, body: bytes, timestamp: str = "1725442341") -> dict[str, str]:
    return {"X-Signature-Ed25519": receiver.sign(timestamp, body), "X-Signature-Timestamp": timestamp}


def test_seed_repeats_the_secret_to_32_bytes() -> None:
    assert signing_seed("naOC0ocQE3shWLAfffVLB1rhYPG7") == b"naOC0ocQE3shWLAfffVLB1rhYPG7naOC"


def test_validation_answer_matches_the_reference_vector() -> None:
    receiver = WebhookReceiver(DOC_SECRET, verify_validation=False)
    answer = receiver.handle({}, json.dumps(DOC_VALIDATION).encode(), NOW)
    assert answer.status == 200
    assert json.loads(answer.body) == {"plain_token": "Arq0D5A61EgUu4OxUvOp", "signature": DOC_SIGNATURE}


def test_signed_validation_is_answered_and_unsigned_refused_by_default() -> None:
    receiver = WebhookReceiver(DOC_SECRET)
    body = json.dumps(DOC_VALIDATION).encode()
    assert receiver.handle({}, body, NOW).status == 401
    assert json.loads(receiver.handle(signed(receiver, body), body, NOW).body)["signature"] == DOC_SIGNATURE


def test_a_signed_dispatch_is_acknowledged_with_op_12_and_handed_out() -> None:
    receiver = WebhookReceiver(DOC_SECRET)
    answer = receiver.handle(signed(receiver, BODY), BODY, NOW)
    assert (answer.status, json.loads(answer.body)) == (200, {"op": 12, "d": 0})
    assert answer.event == Dispatch("C2C_MESSAGE_CREATE", {"id": "m1", "content": "hi"}, 3, "ev-1")


def test_a_flipped_byte_is_refused() -> None:
    receiver = WebhookReceiver(DOC_SECRET)
    headers = signed(receiver, BODY)
    tampered = BODY.replace(b'"hi"', b'"hI"')
    answer = receiver.handle(headers, tampered, NOW)
    assert answer.status == 401 and answer.event is None
    assert "does not match" in answer.reason


def test_a_signature_from_another_key_is_refused() -> None:
    receiver = WebhookReceiver(DOC_SECRET)
    other = Ed25519PrivateKey.from_private_bytes(signing_seed("another-bot-secret"))
    headers = {"X-Signature-Ed25519": other.sign(b"1725442341" + BODY).hex(), "X-Signature-Timestamp": "1725442341"}
    assert receiver.handle(headers, BODY, NOW).status == 401


@pytest.mark.parametrize("skew", [301.0, -301.0])
def test_a_stale_timestamp_is_refused(skew: float) -> None:
    receiver = WebhookReceiver(DOC_SECRET, max_age=300.0)
    answer = receiver.handle(signed(receiver, BODY), BODY, NOW + skew)
    assert answer.status == 401 and "timestamp" in answer.reason
    assert receiver.handle(signed(receiver, BODY), BODY, NOW + 299).status == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Signature-Ed25519": "zz", "X-Signature-Timestamp": "1725442341"},
        {"X-Signature-Ed25519": "00" * 63, "X-Signature-Timestamp": "1725442341"},
        {"X-Signature-Ed25519": "00" * 63 + "ff", "X-Signature-Timestamp": "1725442341"},
        {"X-Signature-Ed25519": "00" * 64, "X-Signature-Timestamp": "soon"},
    ],
)
def test_missing_or_malformed_signatures_are_refused(headers: dict[str, str]) -> None:
    assert WebhookReceiver(DOC_SECRET).handle(headers, BODY, NOW).status == 401


def test_a_redelivered_event_is_acknowledged_but_handed_out_once() -> None:
    receiver = WebhookReceiver(DOC_SECRET)
    first = receiver.handle(signed(receiver, BODY), BODY, NOW)
    again = receiver.handle(signed(receiver, BODY), BODY, NOW + 5)
    assert first.event is not None and again.event is None
    assert again.status == 200 and json.loads(again.body) == {"op": 12, "d": 0}


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'{"op": "0"}', b'{"op": 0, "d": {}}', b'{"op": 13, "d": {"plain_token": 5}}'],
)
def test_a_signed_body_that_is_not_a_payload_is_400(body: bytes) -> None:
    receiver = WebhookReceiver(DOC_SECRET)
    answer = receiver.handle(signed(receiver, body), body, NOW)
    assert (answer.status, answer.outcome, answer.event) == (400, Outcome.MALFORMED, None)


def test_an_unsigned_body_is_refused_before_it_is_read() -> None:
    receiver = WebhookReceiver(DOC_SECRET)
    answer = receiver.handle({}, b"not json", NOW)
    assert (answer.status, answer.outcome) == (401, Outcome.UNSIGNED)


@pytest.mark.parametrize(
    ("method", "path", "headers", "outcome"),
    [
        ("POST", "/", {"Content-Length": "10"}, None),
        ("GET", "/", {}, Outcome.WRONG_METHOD),
        ("POST", "/elsewhere", {}, Outcome.NOT_FOUND),
        ("POST", "/", {"Content-Length": "1025"}, Outcome.TOO_LARGE),
        ("POST", "/", {"Content-Length": "ten"}, Outcome.MALFORMED),
    ],
)
def test_the_request_line_and_length_are_checked_first(
    method: str, path: str, headers: dict[str, str], outcome: Outcome | None
) -> None:
    receiver = WebhookReceiver(DOC_SECRET, max_body=1024)
    refusal = receiver.check_head(method, path, headers)
    assert (refusal and refusal.outcome) == outcome
    if refusal is not None:
        assert refusal.status == outcome.status and receiver.health(NOW, "serving").rejected_requests == 1


def test_a_body_past_the_limit_is_413_even_without_a_length() -> None:
    receiver = WebhookReceiver(DOC_SECRET, max_body=len(BODY) - 1)
    assert receiver.handle(signed(receiver, BODY), BODY, NOW).status == 413


def test_health_counts_each_outcome() -> None:
    receiver = WebhookReceiver(DOC_SECRET)
    receiver.handle(signed(receiver, BODY), BODY, NOW)
    receiver.handle(signed(receiver, BODY), BODY, NOW + 1)
    receiver.handle({}, BODY, NOW + 2)
    receiver.handle(signed(receiver, BODY), BODY, NOW + 1000)
    health = receiver.health(NOW + 10, "serving")
    assert (health.mode, health.accepted_requests, health.duplicate_requests, health.rejected_requests) == (
        "webhook",
        1,
        1,
        2,
    )
    assert health.rejections_by_reason == {"unsigned": 1, "stale": 1}
    assert (health.last_event_at, health.last_event_age, health.last_seq) == (NOW, 10.0, 3)
    assert health.to_dict()["alive"] is True


def test_a_forgotten_event_is_handed_out_again() -> None:
    receiver = WebhookReceiver(DOC_SECRET)
    receiver.handle(signed(receiver, BODY), BODY, NOW)
    receiver.forget("ev-1", withdrawn=True)
    assert receiver.handle(signed(receiver, BODY), BODY, NOW + 1).event is not None
    assert receiver.health(NOW + 1, "serving").accepted_requests == 1


def test_dedupe_memory_is_bounded_in_count_and_time() -> None:
    receiver = WebhookReceiver(DOC_SECRET, remember=2, remember_for=60.0)

    def deliver(event_id: str, now: float) -> bool:
        body = json.dumps({"op": 0, "s": 1, "t": "X", "id": event_id, "d": {}}).encode()
        return receiver.handle(signed(receiver, body, str(int(now))), body, now).event is not None

    assert deliver("a", NOW) and deliver("b", NOW) and not deliver("b", NOW)
    assert deliver("c", NOW)  # "a" leaves: at most two ids are kept
    assert deliver("a", NOW) and not deliver("c", NOW + 59)
    assert deliver("c", NOW + 61)  # remembered for 60 s only


def test_the_secret_never_shows() -> None:
    secret = "a-secret-that-is-long-enough-to-be-the-whole-seed!"
    receiver = WebhookReceiver(secret)
    seed = signing_seed(secret).decode()
    shown = [repr(receiver), str(receiver), repr(vars(receiver))]
    for body in (BODY, b"junk", json.dumps(DOC_VALIDATION).encode()):
        for headers in ({}, signed(receiver, body), {"X-Signature-Ed25519": "00" * 64, "X-Signature-Timestamp": "1"}):
            answer = receiver.handle(headers, body, NOW)
            shown += [repr(answer), answer.reason, answer.body.decode()]
    shown.append(json.dumps(receiver.health(NOW, "serving").to_dict()))
    for text in shown:
        assert secret[:16] not in text and seed[:16] not in text


def test_the_example_receiver_answers_a_signed_callback_over_http() -> None:
    example = Path(__file__).resolve().parent.parent / "examples" / "webhook_receiver.py"
    env = {**os.environ, "QQBOT_SECRET": DOC_SECRET}
    child = subprocess.Popen([sys.executable, str(example), "--port", "0"], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        url = child.stdout.readline().split()[-1]
        receiver = WebhookReceiver(DOC_SECRET)
        timestamp = str(int(time.time()))
        request = urllib.request.Request(url, data=BODY, headers=signed(receiver, BODY, timestamp), method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read()) == {"op": 12, "d": 0}
        printed = json.loads(child.stdout.readline())
        assert printed["id"] == "ev-1" and printed["d"]["content"] == "hi"
    finally:
        child.terminate()
        child.wait(timeout=10)
