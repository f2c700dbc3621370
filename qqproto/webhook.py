"""Webhook (HTTP callback) mode, sans-IO: verify each callback, answer it, and hand out its event once.

The platform signs ``X-Signature-Timestamp`` + the raw body with an ed25519 key derived from the
bot secret (reference §13.3); callback URL validation is op 13, answered with a signature over
``event_ts`` + ``plain_token`` (§13.2); dispatches are acknowledged with op 12 (§13.4) and may be
delivered more than once, so they are de-duplicated by event id. Needs the ``webhook`` extra
(``cryptography``).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Mapping, Optional

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ._events import Dispatch

__all__ = ["WebhookReceiver", "WebhookAnswer", "signing_seed"]

SIGNATURE_HEADER = "x-signature-ed25519"
TIMESTAMP_HEADER = "x-signature-timestamp"
ACK = json.dumps({"op": 12, "d": 0}).encode()


def signing_seed(secret: str) -> bytes:
    """The 32-byte ed25519 seed: the secret repeated until it is long enough, then cut (reference §13.3)."""
    if not secret:
        raise ValueError("the bot secret is empty")
    seed = secret
    while len(seed) < 32:
        seed += seed
    return seed[:32].encode()


@dataclass(frozen=True)
class WebhookAnswer:
    """The HTTP answer to send back, and the event the callback carried (None when it carried none)."""

    status: int
    body: bytes
    event: Optional[Dispatch] = None
    reason: str = ""


class WebhookReceiver:
    """Checks and answers webhook callbacks; ``now`` is Unix time, as the signature timestamp is."""

    def __init__(
        self,
        secret: str,
        *,
        max_age: float = 300.0,
        remember: int = 10_000,
        remember_for: float = 3600.0,
        verify_validation: bool = True,
    ) -> None:
        self._key = Ed25519PrivateKey.from_private_bytes(signing_seed(secret))
        self._public = self._key.public_key()
        self.max_age = max_age
        self._remember = remember
        self._remember_for = remember_for
        self.verify_validation = verify_validation
        self._seen: OrderedDict[str, float] = OrderedDict()

    def __repr__(self) -> str:
        return f"<WebhookReceiver max_age={self.max_age}>"

    def sign(self, timestamp: str, body: bytes) -> str:
        """The hex signature the platform would put on ``body`` at ``timestamp``; for tests and validation."""
        return self._key.sign(timestamp.encode() + body).hex()

    def handle(self, headers: Mapping[str, str], body: bytes, now: float) -> WebhookAnswer:
        """Verify one callback (raw body, exactly as received) and decide the answer."""
        fields = {name.lower(): value for name, value in headers.items()}
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            payload = None
        if not isinstance(payload, dict) or type(payload.get("op")) is not int:
            return _refuse(400, "the body is not a gateway payload")
        if payload["op"] != 13 or self.verify_validation:
            refusal = self._check_signature(fields, body, now)
            if refusal is not None:
                return refusal
        if payload["op"] == 13:
            return self._validation(payload.get("d"))
        if payload["op"] == 0:
            return self._dispatch(payload, now)
        return WebhookAnswer(200, ACK)

    def _check_signature(self, headers: Mapping[str, str], body: bytes, now: float) -> Optional[WebhookAnswer]:
        signature_hex, timestamp = headers.get(SIGNATURE_HEADER), headers.get(TIMESTAMP_HEADER)
        if not signature_hex or not timestamp:
            return _refuse(401, "the signature headers are missing")
        try:
            signature = bytes.fromhex(signature_hex)
            sent_at = float(timestamp)
        except ValueError:
            return _refuse(401, "the signature headers are malformed")
        if len(signature) != 64 or signature[63] & 0xE0:
            return _refuse(401, "the signature is malformed")
        try:
            self._public.verify(signature, timestamp.encode() + body)
        except InvalidSignature:
            return _refuse(401, "the signature does not match the body")
        if abs(now - sent_at) > self.max_age:
            return _refuse(401, f"the signature timestamp is more than {self.max_age:g}s away from now")
        return None

    def _validation(self, d: object) -> WebhookAnswer:
        plain_token = d.get("plain_token") if isinstance(d, dict) else None
        event_ts = d.get("event_ts") if isinstance(d, dict) else None
        if not isinstance(plain_token, str) or isinstance(event_ts, bool) or not isinstance(event_ts, (str, int)):
            return _refuse(400, "callback validation without plain_token and event_ts")
        signature = self._key.sign(f"{event_ts}{plain_token}".encode()).hex()
        return WebhookAnswer(200, json.dumps({"plain_token": plain_token, "signature": signature}).encode())

    def _dispatch(self, payload: dict[str, object], now: float) -> WebhookAnswer:
        event_type, event_id, seq = payload.get("t"), payload.get("id"), payload.get("s")
        if not isinstance(event_type, str):
            return _refuse(400, "a dispatch without an event type")
        if isinstance(event_id, str):
            self._forget_old(now)
            if event_id in self._seen:
                return WebhookAnswer(200, ACK, reason="a redelivery of an event already handed out")
            self._seen[event_id] = now
        event = Dispatch(
            event_type,
            payload.get("d"),
            seq if type(seq) is int else 0,
            event_id if isinstance(event_id, str) else None,
        )
        return WebhookAnswer(200, ACK, event)

    def _forget_old(self, now: float) -> None:
        while self._seen and (
            len(self._seen) >= self._remember or now - next(iter(self._seen.values())) > self._remember_for
        ):
            self._seen.popitem(last=False)


def _refuse(status: int, reason: str) -> WebhookAnswer:
    return WebhookAnswer(status, json.dumps({"message": reason}).encode(), reason=reason)
