"""The fake platform's control endpoint: another process pushes events, strikes faults and reads counters over HTTP.

Every request carries ``Authorization: Bearer <token>``.  The routes, under ``/_qqproto``:

``GET  /_qqproto/counters``  the platform's counters, the faults struck and the events pushed, as JSON;
                             ``"shards"`` holds the per-shard figures of :meth:`ShardRules.report`
                             (keyed by shard id as a string, as JSON object keys are strings)
``POST /_qqproto/events``    ``{"event_type", "data", "event_id", "shard"}`` (each optional: a realistic
                             message event is made up for what is missing; ``shard`` defaults to 0); answers
                             ``{"seq", "event_id"}``, or 409 when the shard has no session to receive it
``POST /_qqproto/faults``    ``{"fault": NAME, "value": N}``; NAME is a key of :data:`FAULTS`, ``value``
                             overrides its default (the close code, or how many answers fail)
``POST /_qqproto/shards/reset_peaks``  ``peak_live`` starts again from the sockets serving each shard now;
                             answers ``{"peak_live"}``
"""

from __future__ import annotations

import hmac
import random
from collections import Counter
from collections.abc import Callable

from ._dispatches import DispatchGenerator
from ._faults import strike
from ._http_server import HTTPRequest
from ._json import is_int, loads
from ._plans import Fault
from ._platform import FakeQQPlatform

__all__ = ["CONTROL_PREFIX", "FAULTS", "Control"]

CONTROL_PREFIX = "/_qqproto/"

Answer = tuple[int, object]
#: The largest ``value`` a fault takes (a count of answers, or a close code).
MAX_VALUE = 1_000_000

#: The faults the endpoint strikes by name: which fault, and its default value.
FAULTS: dict[str, tuple[Fault, float]] = {
    "close": (Fault.CLOSE, 4009),  # value: the close code; 4009 is the idle-session close
    "reconnect": (Fault.RECONNECT, 0),  # op 7
    "invalidate": (Fault.INVALIDATE, 0),  # op 9, d=false: the session is gone
    "invalidate_resumable": (Fault.INVALIDATE_RESUMABLE, 0),  # op 9, d=true
    "silence": (Fault.SILENCE, 0),  # the socket stays open and nothing more arrives on it
    "drop": (Fault.DROP, 0),  # every socket closed without a close frame
    "rate_limit": (Fault.SEND_RATE_LIMIT, 5),  # value: how many sends are answered 22009
    "token_5xx": (Fault.TOKEN_5XX, 3),  # value: how many token calls are answered 503
    "expire_tokens": (Fault.EXPIRE_TOKENS, 0),
    "fail_upgrades": (Fault.FAIL_UPGRADES, 3),  # value: how many gateway upgrades are refused
    "fail_resumes": (Fault.FAIL_RESUMES, 1),  # value: how many resumes are answered op 9
}


class Control:
    """Answers ``/_qqproto/`` requests for one platform; install it as ``platform.control``."""

    def __init__(self, platform: FakeQQPlatform, token: str, rng: random.Random) -> None:
        if not token:
            raise ValueError("the control endpoint needs a token")
        self._platform = platform
        self._token = f"Bearer {token}".encode()
        self._rng = rng
        self._events = DispatchGenerator(random.Random(rng.getrandbits(64)))
        self.faults_struck: Counter[str] = Counter()
        self.events_pushed = 0
        self._routes: dict[tuple[str, str], Callable[[dict[str, object], float], Answer]] = {
            ("GET", "counters"): lambda body, now: (200, self.counters()),
            ("POST", "events"): self._push_event,
            ("POST", "faults"): self._strike,
            ("POST", "shards/reset_peaks"): self._reset_peaks,
        }

    def __call__(self, request: HTTPRequest, now: float) -> Answer | None:
        """The answer to a control request; None for any other path, which the platform answers itself."""
        if not request.path.startswith(CONTROL_PREFIX):
            return None
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, self._token):
            return 401, {"message": "the control endpoint needs Authorization: Bearer <control token>"}
        route = self._routes.get((request.method, request.path[len(CONTROL_PREFIX) :]))
        if route is None:
            known = ", ".join(f"{method} {CONTROL_PREFIX}{name}" for method, name in self._routes)
            return 404, {"message": f"no such control route; there are {known}"}
        try:
            body = loads(request.body) if request.body else {}
        except ValueError:
            return 400, {"message": "the body is not JSON"}
        if not isinstance(body, dict):
            return 400, {"message": "the body must be a JSON object"}
        return route(body, now)

    def counters(self) -> dict[str, object]:
        """The platform's counters, the faults struck (by description), the events pushed from this side, and
        the per-shard figures under ``"shards"`` (JSON object keys are strings: shard ids come as ``"0"``, ``"1"``...).
        """
        return {
            **self._platform.counters.to_dict(),
            "faults_struck": dict(self.faults_struck),
            "events_pushed": self.events_pushed,
            "shards": self._platform.shard_report(),
        }

    def strike(self, fault: Fault, value: float, now: float) -> None:
        """Strike one of the platform's faults; ``faults_struck`` counts it under its description."""
        strike(self._platform, fault, value, now, self._rng)
        self.faults_struck[fault.value] += 1

    def push_event(
        self,
        now: float,
        event_type: str | None = None,
        data: object = None,
        event_id: str | None = None,
        *,
        shard: int = 0,
    ) -> tuple[int | None, str]:
        """Push a dispatch into ``shard``'s session, made up where not given: its seq (None when no session
        took it) and its id."""
        made_type, made_data, made_id = self._events.next(now)
        event_type = event_type or made_type
        event_id = event_id or f"{event_type}:{made_id.partition(':')[2]}"
        self.events_pushed += 1
        seq = self._platform.push_event(event_type, made_data if data is None else data, now, event_id, shard=shard)
        return seq, event_id

    def _push_event(self, body: dict[str, object], now: float) -> Answer:
        event_type, data, event_id = body.get("event_type"), body.get("data"), body.get("event_id")
        if not isinstance(event_type, (str, type(None))) or not isinstance(event_id, (str, type(None))):
            return 400, {"message": "event_type and event_id must be strings"}
        shard = body.get("shard", 0)
        if not is_int(shard) or shard < 0:
            return 400, {"message": f"shard must be a whole number from 0 up, not {shard!r}"}
        seq, event_id = self.push_event(now, event_type, data, event_id, shard=shard)
        if seq is None:
            message = f"shard {shard} has no session open: the event was not delivered"
            return 409, {"message": message, "event_id": event_id}
        return 200, {"seq": seq, "event_id": event_id}

    def _reset_peaks(self, body: dict[str, object], now: float) -> Answer:
        self._platform.shards.reset_peaks()
        report = self._platform.shard_report()
        return 200, {"peak_live": report["peak_live"]}

    def _strike(self, body: dict[str, object], now: float) -> Answer:
        name, given = body.get("fault"), body.get("value")
        if not isinstance(name, str) or name not in FAULTS:
            return 400, {"message": f"unknown fault {name!r}; there are {', '.join(FAULTS)}"}
        fault, value = FAULTS[name]
        if given is not None:
            if isinstance(given, bool) or not isinstance(given, (int, float)) or not 0 <= given <= MAX_VALUE:
                return 400, {"message": f"value must be a number from 0 to {MAX_VALUE}"}  # NaN and Infinity too
            value = given
        if fault is Fault.CLOSE and not (value == int(value) and 4000 <= value <= 4999):
            return 400, {"message": f"a gateway close code is a whole number from 4000 to 4999, not {value!r}"}
        self.strike(fault, value, now)
        return 200, {"fault": name, "struck": fault.value, "value": value}
