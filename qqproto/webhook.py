"""Webhook (HTTP callback) mode, sans-IO: verify each callback, answer it, and hand out its event once.

The platform signs ``X-Signature-Timestamp`` + the raw body with an ed25519 key derived from the
bot secret (docs/protocol.md §13.3); callback URL validation is op 13, answered with a signature over
``event_ts`` + ``plain_token`` (§13.2); dispatches are acknowledged with op 12 (§13.4) and may be
delivered more than once, so they are de-duplicated by event id. Needs the ``webhook`` extra
(``cryptography``).
"""

from __future__ import annotations

import enum
import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ._events import Dispatch, new_dispatch
from ._health import Health

__all__ = ["DEFAULT_MAX_BODY", "Outcome", "WebhookAnswer", "WebhookReceiver", "ack_body", "signing_seed"]

SIGNATURE_HEADER = "x-signature-ed25519"
TIMESTAMP_HEADER = "x-signature-timestamp"
#: The largest callback body accepted; events are a few kilobytes.
DEFAULT_MAX_BODY = 1 << 20


def ack_body(failed: bool = False) -> bytes:
    """The op 12 answer to a dispatch: ``d`` 0 when it was taken, 1 to ask the platform to retry (§13.4)."""
    return b'{"op": 12, "d": 1}' if failed else b'{"op": 12, "d": 0}'


ACK = ack_body()


class Outcome(enum.Enum):
    """What became of one callback; each rejection carries its HTTP status."""

    DISPATCH = "dispatch"
    DUPLICATE = "duplicate"
    VALIDATION = "validation"
    OTHER = "other"
    UNSIGNED = "unsigned"
    BAD_SIGNATURE = "bad_signature"
    STALE = "stale"
    MALFORMED = "malformed"
    TOO_LARGE = "too_large"
    WRONG_METHOD = "wrong_method"
    NOT_FOUND = "not_found"

    @property
    def status(self) -> int:
        """The HTTP status the callback is answered with."""
        return STATUS.get(self, 200)

    @property
    def rejected(self) -> bool:
        """True when the callback was refused and nothing in it reached the application."""
        return self.status != 200


STATUS = {
    Outcome.UNSIGNED: 401,
    Outcome.BAD_SIGNATURE: 401,
    Outcome.STALE: 401,
    Outcome.MALFORMED: 400,
    Outcome.TOO_LARGE: 413,
    Outcome.WRONG_METHOD: 405,
    Outcome.NOT_FOUND: 404,
}


def signing_seed(secret: str) -> bytes:
    """The 32-byte ed25519 seed: the secret repeated until it is long enough, then cut (docs/protocol.md §13.3)."""
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
    event: Dispatch | None = None
    reason: str = ""
    outcome: Outcome = Outcome.OTHER
    #: The event id of a dispatch or of a redelivery.
    event_id: str | None = None


class WebhookReceiver:
    """Checks and answers webhook callbacks; ``now`` is Unix time, as the signature timestamp is.

    ``max_age`` is the replay window: a signature timestamp further than that from ``now``, either
    way, is refused.  Event ids are remembered for de-duplication, at most ``remember`` of them and
    none longer than ``remember_for`` seconds.
    """

    def __init__(
        self,
        secret: str,
        *,
        max_age: float = 300.0,
        remember: int = 10_000,
        remember_for: float = 3600.0,
        verify_validation: bool = True,
        max_body: int = DEFAULT_MAX_BODY,
        path: str | None = "/",
    ) -> None:
        if max_age <= 0 or remember < 1 or remember_for <= 0 or max_body < 1:
            raise ValueError("max_age, remember, remember_for and max_body must be positive")
        self._key = Ed25519PrivateKey.from_private_bytes(signing_seed(secret))
        self._public = self._key.public_key()
        self.max_age = max_age
        self.max_body = max_body
        self.path = path
        self._remember = remember
        self._remember_for = remember_for
        self.verify_validation = verify_validation
        self._seen: OrderedDict[str, float] = OrderedDict()
        self.counts: dict[Outcome, int] = dict.fromkeys(Outcome, 0)
        self.last_event_at: float | None = None
        self.last_seq: int | None = None

    def __repr__(self) -> str:
        return f"<WebhookReceiver path={self.path!r} max_age={self.max_age:g}>"

    def sign(self, timestamp: str, body: bytes) -> str:
        """The hex signature the platform would put on ``body`` at ``timestamp``; for tests and validation."""
        return self._key.sign(timestamp.encode() + body).hex()

    def check_head(self, method: str, path: str, headers: Mapping[str, str]) -> WebhookAnswer | None:
        """Refuse a callback from its request line and headers alone, before its body is read; None: read on."""
        if self.path is not None and path != self.path:
            return self.refuse(Outcome.NOT_FOUND, f"no callback is served at {path!r}")
        if method != "POST":
            return self.refuse(Outcome.WRONG_METHOD, f"callbacks are POSTed, not sent with {method}")
        length = {name.lower(): value for name, value in headers.items()}.get("content-length", "0")
        if not length.isdigit():
            return self.refuse(Outcome.MALFORMED, "the Content-Length header is not a number")
        if int(length) > self.max_body:
            return self.too_large()
        return None

    def too_large(self) -> WebhookAnswer:
        """The answer to a body longer than ``max_body``."""
        return self.refuse(Outcome.TOO_LARGE, f"the body is longer than {self.max_body} bytes")

    def handle(self, headers: Mapping[str, str], body: bytes, now: float) -> WebhookAnswer:
        """Verify one callback (raw body, exactly as received) and decide the answer."""
        if len(body) > self.max_body:
            return self.too_large()
        fields = {name.lower(): value for name, value in headers.items()}
        if self.verify_validation:
            refusal = self._check_signature(fields, body, now)
            if refusal is not None:
                return refusal
        payload = _payload(body)
        if payload is None:
            return self.refuse(Outcome.MALFORMED, "the body is not a gateway payload")
        if not self.verify_validation and payload["op"] != 13:
            refusal = self._check_signature(fields, body, now)
            if refusal is not None:
                return refusal
        if payload["op"] == 13:
            return self._validation(payload.get("d"))
        if payload["op"] == 0:
            return self._dispatch(payload, now)
        self.counts[Outcome.OTHER] += 1
        if payload["op"] == 1:  # a heartbeat over HTTP (docs/protocol.md §13.5)
            return WebhookAnswer(200, json.dumps({"op": 11, "d": payload.get("d")}).encode())
        return WebhookAnswer(200, ACK)

    def forget(self, event_id: str, *, withdrawn: bool = False) -> None:
        """Hand ``event_id`` out again when it is redelivered: the application never finished with it.

        ``withdrawn``: it never reached the application at all, so it is no longer counted as accepted.
        """
        if self._seen.pop(event_id, None) is not None and withdrawn:
            self.counts[Outcome.DISPATCH] -= 1

    def refuse(self, outcome: Outcome, reason: str) -> WebhookAnswer:
        """Count a rejection and build its answer."""
        self.counts[outcome] += 1
        return WebhookAnswer(outcome.status, json.dumps({"message": reason}).encode(), reason=reason, outcome=outcome)

    def health(self, now: float, state: str) -> Health:
        """A health snapshot in webhook mode; ``state`` is the server's (serving, closed, fatal)."""
        rejected = {outcome.value: n for outcome, n in self.counts.items() if outcome.rejected and n}
        return Health(
            state=state,
            connected=state == "serving",
            session_id=None,
            last_seq=self.last_seq,
            shard=(0, 1),
            connected_for=None,
            heartbeat_interval=None,
            heartbeat_latency=None,
            last_heartbeat_ack_age=None,
            reconnect_attempts=0,
            next_retry_in=None,
            last_disconnect_reason=None,
            dispatches_delivered=self.counts[Outcome.DISPATCH],
            mode="webhook",
            last_event_at=self.last_event_at,
            last_event_age=None if self.last_event_at is None else now - self.last_event_at,
            accepted_requests=self.counts[Outcome.DISPATCH],
            duplicate_requests=self.counts[Outcome.DUPLICATE],
            rejected_requests=sum(rejected.values()),
            rejections_by_reason=rejected,
        )

    def _check_signature(self, headers: Mapping[str, str], body: bytes, now: float) -> WebhookAnswer | None:
        signature_hex, timestamp = headers.get(SIGNATURE_HEADER), headers.get(TIMESTAMP_HEADER)
        if not signature_hex or not timestamp:
            return self.refuse(Outcome.UNSIGNED, "the signature headers are missing")
        try:
            signature = bytes.fromhex(signature_hex)
            sent_at = float(timestamp)
        except ValueError:
            return self.refuse(Outcome.BAD_SIGNATURE, "the signature headers are malformed")
        if len(signature) != 64 or signature[63] & 0xE0:
            return self.refuse(Outcome.BAD_SIGNATURE, "the signature is malformed")
        try:
            self._public.verify(signature, timestamp.encode() + body)
        except InvalidSignature:
            return self.refuse(Outcome.BAD_SIGNATURE, "the signature does not match the body")
        if not abs(now - sent_at) <= self.max_age:
            return self.refuse(Outcome.STALE, f"the signature timestamp is more than {self.max_age:g}s away from now")
        return None

    def _validation(self, d: object) -> WebhookAnswer:
        plain_token = d.get("plain_token") if isinstance(d, dict) else None
        event_ts = d.get("event_ts") if isinstance(d, dict) else None
        if not isinstance(plain_token, str) or isinstance(event_ts, bool) or not isinstance(event_ts, (str, int)):
            return self.refuse(Outcome.MALFORMED, "callback validation without plain_token and event_ts")
        self.counts[Outcome.VALIDATION] += 1
        signature = self._key.sign(f"{event_ts}{plain_token}".encode()).hex()
        body = json.dumps({"plain_token": plain_token, "signature": signature}).encode()
        return WebhookAnswer(200, body, outcome=Outcome.VALIDATION)

    def _dispatch(self, payload: dict[str, object], now: float) -> WebhookAnswer:
        event_type, event_id, seq = payload.get("t"), payload.get("id"), payload.get("s")
        if not isinstance(event_type, str):
            return self.refuse(Outcome.MALFORMED, "a dispatch without an event type")
        if isinstance(event_id, str):
            self._forget_old(now)
            if event_id in self._seen:
                self.counts[Outcome.DUPLICATE] += 1
                reason = "a redelivery of an event already handed out"
                return WebhookAnswer(200, ACK, reason=reason, outcome=Outcome.DUPLICATE, event_id=event_id)
            if len(self._seen) >= self._remember:
                self._seen.popitem(last=False)
            self._seen[event_id] = now
        self.counts[Outcome.DISPATCH] += 1
        self.last_event_at = now
        if type(seq) is int and (self.last_seq is None or seq > self.last_seq):
            self.last_seq = seq  # callbacks may come out of order: the highest seen
        known_id = event_id if isinstance(event_id, str) else None
        event = new_dispatch(event_type, payload.get("d"), seq if type(seq) is int else 0, known_id)
        return WebhookAnswer(200, ACK, event, outcome=Outcome.DISPATCH, event_id=known_id)

    def _forget_old(self, now: float) -> None:
        while self._seen and now - next(iter(self._seen.values())) > self._remember_for:
            self._seen.popitem(last=False)


def _payload(body: bytes) -> dict[str, object] | None:
    """The envelope ``{op, d, s, t, id}`` of a body, or None when it is not one."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(payload, dict) or type(payload.get("op")) is not int:
        return None
    return payload
