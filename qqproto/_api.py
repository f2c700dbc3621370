"""The open API's conventions, once: how a request is built and how an answer's error envelope reads.

The platform answers errors with ``{"message", "code", "err_code", "trace_id"}`` (docs/protocol.md
§9.2): ``err_code`` is the code to use and ``code`` is being retired, and the two can differ
(the ``/gateway`` rate limit is known as code 100017 *or* err_code 40023001, §8.4). So a rule
matches when either carries its code, and the code reported is ``err_code`` first.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._config import GatewayConfig
from ._http import Endpoint, HttpExchange, HttpResponse

__all__ = ["ApiAnswer", "api_request"]

# Cut a platform message to this many characters before it goes into a reason.
MESSAGE_LIMIT = 200


def api_request(
    config: GatewayConfig, method: str, endpoint: Endpoint, *, token: str | None = None, body: bytes | None = None
) -> HttpExchange:
    """One open-API request: our User-Agent, JSON both ways, and ``QQBot`` authorization when ``token`` is given."""
    headers = [("User-Agent", config.user_agent)]
    if body is not None:
        headers.append(("Content-Type", "application/json"))
    headers.append(("Accept", "application/json"))
    if token is not None:
        headers += [("Authorization", f"QQBot {token}"), ("X-Union-Appid", config.app_id)]
    return HttpExchange(
        method,
        endpoint,
        headers,
        body or b"",
        max_header_size=config.max_http_header_size,
        max_body_size=config.max_http_body_size,
    )


@dataclass(frozen=True)
class ApiAnswer:
    """An open-API answer read one way: its status, JSON fields, codes, message and trace id."""

    status: int
    fields: Mapping[str, Any]
    codes: frozenset[int]
    code: int | None
    message: str
    trace_id: str | None

    @classmethod
    def of(cls, response: HttpResponse) -> ApiAnswer:
        """Read a complete HTTP response."""
        return cls.read(response.status, response.body, dict(response.headers))

    @classmethod
    def read(cls, status: int, body: bytes, headers: Mapping[str, str]) -> ApiAnswer:
        """Read an answer (``headers`` with lower-case names); a body that is not a JSON object has no fields."""
        try:
            obj = json.loads(body) if body else None
        except (ValueError, RecursionError):
            obj = None
        fields: Mapping[str, Any] = obj if isinstance(obj, dict) else {}
        err_code, code = _code(fields.get("err_code")), _code(fields.get("code"))
        codes = frozenset(c for c in (err_code, code) if c is not None)
        message = fields.get("message")
        trace_id = headers.get("x-tps-trace-id") or fields.get("trace_id")
        return cls(
            status,
            fields,
            codes,
            err_code if err_code is not None else code,
            message[:MESSAGE_LIMIT] if isinstance(message, str) else "",
            trace_id if isinstance(trace_id, str) and trace_id else None,
        )

    def has(self, codes: frozenset[int]) -> bool:
        """True when ``err_code`` or ``code`` is one of ``codes``."""
        return not self.codes.isdisjoint(codes)

    @property
    def ok(self) -> bool:
        """A 2xx status with no error code."""
        return 200 <= self.status < 300 and not self.codes

    @property
    def detail(self) -> str:
        """For reasons: ``HTTP 400, code 40034024: message``."""
        text = f"HTTP {self.status}"
        if self.code is not None:
            text += f", code {self.code}"
        return f"{text}: {self.message}" if self.message else text


def _code(value: object) -> int | None:
    """A platform code: a non-zero integer, or a string of digits; 0 and anything else mean none."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if type(value) is int and value != 0:
        return value
    return None
