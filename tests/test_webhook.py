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
from qqproto.webhook import WebhookReceiver, signing_seed

# Reference §13.2: the documented op 13 example and its signature.
DOC_SECRET = "DG5g3B4j9X2KOErG"
DOC_VALIDATION = {"d": {"plain_token": "Arq0D5A61EgUu4OxUvOp", "event_ts": "1725442341"}, "op": 13}
DOC_SIGNATURE = (
    "87befc99c42c651b3aac0278e71ada338433ae26fcb24307bdc5ad38c1adc2d0"
    "1bcfcadc0842edac85e85205028a1132afe09280305f13aa6909ffc2d652c706"
)
NOW = 1725442341.0
BODY = json.dumps({"op": 0, "s": 3, "t": "C2C_MESSAGE_CREATE", "id": "ev-1", "d": {"id": "m1", "content": "hi"}}).encode()


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


def test_a_body_that_is_not_a_payload_is_400() -> None:
    assert WebhookReceiver(DOC_SECRET).handle({}, b"not json", NOW).status == 400


def test_the_secret_never_shows() -> None:
    receiver = WebhookReceiver(DOC_SECRET)
    assert DOC_SECRET not in repr(receiver)


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
