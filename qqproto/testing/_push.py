"""The platform's push side of webhook mode, sans-IO: what to POST to the callback URL, when, signed how.

| Behaviour | Reference |
| --- | --- |
| every request is signed: ed25519 over ``X-Signature-Timestamp`` + body, key from the bot secret | §13.3 |
| op 13 validation first; events wait until the answer carries the right signature | §13.2 |
| dispatch ``{"op": 0, "s", "t", "d", "id"}``, acknowledged by op 12 ``d`` = 0 | §2, §13.4 |
| no answer, a non-2xx answer or op 12 ``d`` = 1 → retried with capped, jittered backoff | §13.4 (schedule UNCONFIRMED) |
| faults: duplicate pushes, delayed pushes, held pushes released as a burst, bad signatures | §13.4 |

``now`` is the driver's monotonic clock; ``wall`` is Unix time, for timestamps.  Randomness
comes from the injected rng only.
"""

from __future__ import annotations

import json
import random
import string
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, signing_seed

__all__ = ["Push", "PushCounters", "WebhookPusher"]


@dataclass(frozen=True)
class Push:
    """One POST to make: its body and headers, and what it is for."""

    push_id: int
    body: bytes
    headers: dict[str, str]
    event_id: str | None
    attempt: int

    @property
    def validation(self) -> bool:
        """True for the op 13 callback validation."""
        return self.event_id is None


@dataclass
class PushCounters:
    """What the pusher did, for assertions and the demo's summary."""

    requests: int = 0
    validations: int = 0
    events: int = 0
    delivered: int = 0
    retries: int = 0
    given_up: int = 0
    duplicates_sent: int = 0
    bad_signatures_sent: int = 0
    bad_signatures_refused: int = 0
    failures: dict[str, int] = field(default_factory=dict)


@dataclass
class _Pending:
    body: bytes
    event_id: str | None
    due: float
    attempt: int = 0
    bad_signature: bool = False


class WebhookPusher:
    """Pushes signed callbacks and retries them until acknowledged; schedule faults on it."""

    def __init__(
        self,
        secret: str,
        rng: random.Random,
        *,
        retry_base: float = 0.2,
        retry_cap: float = 5.0,
        max_attempts: int = 20,
    ) -> None:
        self._key = Ed25519PrivateKey.from_private_bytes(signing_seed(secret))
        self._rng = rng
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.max_attempts = max_attempts
        self.counters = PushCounters()
        self.validated = False
        self.delivered_ids: list[str] = []
        self._seq = 0
        self._ids = 0
        self._waiting: list[_Pending] = []
        self._in_flight: dict[int, _Pending] = {}
        self._validation: _Pending | None = None
        self._validating = False
        self._hold_until = float("-inf")
        self._duplicates = 0
        self._delays: tuple[int, float] = (0, 0.0)
        self._bad_signatures = 0

    def __repr__(self) -> str:
        return f"<WebhookPusher validated={self.validated} waiting={len(self._waiting)}>"

    # -- events -----------------------------------------------------------------------------

    def push(self, event_type: str, data: object, event_id: str, now: float) -> int:
        """Queue a dispatch; returns its seq."""
        self._seq += 1
        body = json.dumps({"op": 0, "s": self._seq, "t": event_type, "d": data, "id": event_id}, ensure_ascii=False)
        due = now
        delayed, delay = self._delays
        if delayed:
            self._delays = (delayed - 1, delay)
            due += delay
        self._waiting.append(_Pending(body.encode(), event_id, due))
        self.counters.events += 1
        if self._duplicates:
            self._duplicates -= 1
            self._waiting.append(_Pending(body.encode(), event_id, due))
            self.counters.duplicates_sent += 1
        return self._seq

    @property
    def outstanding(self) -> int:
        """Pushes not yet acknowledged (waiting, in flight, or the validation)."""
        return len(self._waiting) + len(self._in_flight) + (not self.validated)

    def next_timer(self) -> float | None:
        """When :meth:`due` next has something (None: nothing is waiting)."""
        if self.validated:
            candidates = [p.due for p in self._waiting]
        elif self._validating:
            candidates = []
        else:
            candidates = [self._validation.due if self._validation is not None else 0.0]
        if not candidates:
            return None
        return max(min(candidates), self._hold_until)

    def due(self, now: float, wall: float) -> list[Push]:
        """The pushes to make now, signed at ``wall``; each is in flight until :meth:`answered`."""
        if now < self._hold_until:
            return []
        if not self.validated:
            return self._validate(now, wall)
        ready = [p for p in self._waiting if p.due <= now]
        self._waiting = [p for p in self._waiting if p.due > now]
        return [self._send(p, wall) for p in ready]

    def answered(self, push_id: int, status: int | None, body: bytes, now: float) -> None:
        """The answer to a push; ``status`` None: it never came (refused, reset, timed out)."""
        pending = self._in_flight.pop(push_id, None)
        if pending is None:
            return
        if pending is self._validation:
            self._validating = False
            if status == 200 and self._validation_ok(body):
                self.validated = True
                self.counters.validations += 1
                return
        elif status is not None and 200 <= status < 300 and not _asks_retry(body):
            self.counters.delivered += 1
            if pending.event_id is not None:
                self.delivered_ids.append(pending.event_id)
            return
        if pending.bad_signature and status == 401:
            self.counters.bad_signatures_refused += 1
        reason = "no answer" if status is None else ("op 12 d=1" if status == 200 else f"HTTP {status}")
        self.counters.failures[reason] = self.counters.failures.get(reason, 0) + 1
        if pending.attempt >= self.max_attempts:
            self.counters.given_up += 1
            return
        self.counters.retries += 1
        delay = min(self.retry_cap, self.retry_base * 2 ** (pending.attempt - 1))
        pending.due = now + delay * self._rng.uniform(0.5, 1.0)
        pending.bad_signature = False
        if pending is not self._validation:
            self._waiting.append(pending)

    # -- faults -----------------------------------------------------------------------------

    def duplicate_next(self, count: int) -> None:
        """Push each of the next ``count`` events twice, at once."""
        self._duplicates = count

    def delay_next(self, count: int, seconds: float) -> None:
        """Hold each of the next ``count`` events for ``seconds`` while later ones go ahead."""
        self._delays = (count, seconds)

    def hold(self, until: float) -> None:
        """Push nothing before ``until``; what queued up meanwhile then goes out as one burst."""
        self._hold_until = until

    def sign_badly_next(self, count: int) -> None:
        """Send the next ``count`` pushes with a wrong signature first (the receiver must refuse them)."""
        self._bad_signatures = count

    # -- inside -----------------------------------------------------------------------------

    def _validate(self, now: float, wall: float) -> list[Push]:
        pending = self._validation
        if pending is None:
            token = "".join(self._rng.choice(string.ascii_letters + string.digits) for _ in range(20))
            body = json.dumps({"op": 13, "d": {"plain_token": token, "event_ts": str(int(wall))}}).encode()
            pending = self._validation = _Pending(body, None, now)
        if self._validating or pending.due > now:
            return []
        self._validating = True
        return [self._send(pending, wall)]

    def _validation_ok(self, body: bytes) -> bool:
        assert self._validation is not None
        d = json.loads(self._validation.body)["d"]
        try:
            answer = json.loads(body)
        except ValueError:
            return False
        expected = self._key.sign(f"{d['event_ts']}{d['plain_token']}".encode()).hex()
        return (
            isinstance(answer, dict)
            and answer.get("plain_token") == d["plain_token"]
            and answer.get("signature") == expected
        )

    def _send(self, pending: _Pending, wall: float) -> Push:
        pending.attempt += 1
        self._ids += 1
        timestamp = str(int(wall))
        signature = self._key.sign(timestamp.encode() + pending.body)
        if self._bad_signatures and pending.event_id is not None:
            self._bad_signatures -= 1
            pending.bad_signature = True
            signature = signature[:-1] + bytes([signature[-1] ^ 0x01])
            self.counters.bad_signatures_sent += 1
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "QQBot-Callback",
            SIGNATURE_HEADER: signature.hex(),
            TIMESTAMP_HEADER: timestamp,
        }
        self._in_flight[self._ids] = pending
        self.counters.requests += 1
        return Push(self._ids, pending.body, headers, pending.event_id, pending.attempt)


def _asks_retry(body: bytes) -> bool:
    """True for op 12 with ``d`` = 1: the bot asks the platform to try again (§13.4)."""
    try:
        answer = json.loads(body)
    except ValueError:
        return False
    return isinstance(answer, dict) and answer.get("op") == 12 and answer.get("d") == 1
