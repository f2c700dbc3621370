"""The gateway URL from ``GET /gateway/bot``: fetched once, cached, refetched only when it keeps failing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from ._api import ApiAnswer, api_request
from ._config import GatewayConfig
from ._http import Endpoint, HttpExchange, HttpResponse
from ._session import SessionStartLimit

__all__ = [
    "GatewayLocated",
    "GatewayRateLimited",
    "GatewayTokenRejected",
    "GatewayUnavailable",
    "GatewayUrlCache",
]

# Answers that mean "called too often" (docs/protocol.md §8.4).
RATE_LIMIT_CODES = frozenset({100017, 40023001})
RATE_LIMIT_TEXT = "频率限制"
# Answers that mean the access token is expired or wrong (docs/protocol.md §9.4).
TOKEN_ERROR_CODES = frozenset({11243, 11244})
# session_start_limit numbers beyond this are nonsense (and too large to turn into seconds).
MAX_LIMIT_VALUE = 2**53


@dataclass(frozen=True)
class GatewayLocated:
    """The gateway URL was fetched and cached; ``limit`` is the session start budget that came with it."""

    url: str
    limit: SessionStartLimit | None = None


@dataclass(frozen=True)
class GatewayRateLimited:
    """``/gateway/bot`` is rate limited: cool down, keep any cached URL."""

    reason: str


@dataclass(frozen=True)
class GatewayTokenRejected:
    """``/gateway/bot`` refused the access token: fetch a new one."""

    reason: str


@dataclass(frozen=True)
class GatewayUnavailable:
    """``/gateway/bot`` failed or answered nonsense: retry later."""

    reason: str


GatewayResult = Union[GatewayLocated, GatewayRateLimited, GatewayTokenRejected, GatewayUnavailable]


class GatewayUrlCache:
    """Keeps the gateway endpoint across reconnects."""

    def __init__(self, config: GatewayConfig, api: Endpoint) -> None:
        self._config = config
        self._api = api
        self.endpoint: Endpoint | None = None
        self.url: str | None = None
        self.failures = 0
        self.stale = False
        self.fetches = 0
        self.invalidations = 0
        self.suggested_shards: int | None = None

    @property
    def request_endpoint(self) -> Endpoint:
        """Where ``/gateway/bot`` is asked."""
        return self._api.join("/gateway/bot")

    def request(self, token: str) -> HttpExchange:
        """The ``GET /gateway/bot`` request."""
        self.fetches += 1
        return api_request(self._config, "GET", self.request_endpoint, token=token)

    def accept(self, response: HttpResponse, now: float) -> GatewayResult:
        """Read the answer to ``/gateway/bot``; cache the URL when it is good."""
        answer = ApiAnswer.of(response)
        fields, detail = answer.fields, answer.detail
        if response.status == 429 or answer.has(RATE_LIMIT_CODES) or RATE_LIMIT_TEXT in answer.message:
            return GatewayRateLimited(f"/gateway/bot is rate limited ({detail})")
        if response.status == 401 or answer.has(TOKEN_ERROR_CODES):
            return GatewayTokenRejected(f"/gateway/bot rejected the access token ({detail})")
        if response.status != 200 or not fields:
            return GatewayUnavailable(f"/gateway/bot answered {detail}")
        url = fields.get("url")
        try:
            endpoint = Endpoint.from_url(url) if isinstance(url, str) else None
        except ValueError:
            endpoint = None
        if endpoint is None or not str(url).lower().startswith(("ws://", "wss://")):
            return GatewayUnavailable(f"/gateway/bot answered without a ws(s) URL ({detail})")
        self.endpoint = endpoint
        self.url = url
        self.failures = 0
        self.stale = False
        shards = fields.get("shards")
        self.suggested_shards = shards if type(shards) is int and shards > 0 else None
        return GatewayLocated(str(url), _read_limit(fields.get("session_start_limit"), now))

    @property
    def needs_fetch(self) -> bool:
        """True when there is no URL, or the cached one went stale."""
        return self.endpoint is None or self.stale

    def fetch_failed(self) -> bool:
        """A fetch failed; True when a cached URL is still held and should go on being used.

        A stale URL gets one refetch: if that fails, the URL is trusted again until it fails
        ``gateway_url_failure_limit`` more times, so each invalidation costs at most one call.
        """
        if self.endpoint is None:
            return False
        self.stale = False
        self.failures = 0
        return True

    def connect_failed(self) -> None:
        """A connection to the cached URL failed; after too many in a row the URL is marked stale."""
        if self.endpoint is None:
            return
        self.failures += 1
        if self.failures >= self._config.gateway_url_failure_limit and not self.stale:
            self.stale = True
            self.invalidations += 1

    def connect_succeeded(self) -> None:
        """The cached URL answered with Hello."""
        self.failures = 0


def _read_limit(raw: object, now: float) -> SessionStartLimit | None:
    if not isinstance(raw, dict):
        return None
    values = [raw.get(key) for key in ("total", "remaining", "reset_after", "max_concurrency")]
    if not all(type(value) is int and 0 <= value <= MAX_LIMIT_VALUE for value in values):
        return None
    total, remaining, reset_after, concurrency = values
    assert isinstance(total, int) and isinstance(remaining, int)
    assert isinstance(reset_after, int) and isinstance(concurrency, int)
    return SessionStartLimit(total, remaining, now + reset_after / 1000.0, max(concurrency, 1))
