"""The platform's HTTP endpoints: the token endpoint, ``/gateway``, ``/gateway/bot`` and ``/users/@me``."""

from __future__ import annotations

import random
from collections.abc import Callable

from ._config import PlatformConfig
from ._counters import PlatformCounters
from ._http_server import HTTPRequest, reason_phrase
from ._json import loads
from ._limits import RateLimit, SessionStartLimit
from ._tokens import TokenStore

__all__ = ["API", "Answer"]

Answer = tuple[int, object]

TOKEN_PATH = "/app/getAppAccessToken"
INVALID_SECRET = {"code": 100016, "message": "invalid appid or secret"}
TOKEN_MISSING = {"code": 11244, "message": "token not exist or expire"}
RATE_LIMITED = {"code": 100017, "message": "接口调用超过频率限制"}


class API:
    """Answers HTTP requests and owns what they share with the gateway: tokens and session starts."""

    def __init__(
        self, config: PlatformConfig, rng: random.Random, counters: PlatformCounters, bot_user: dict[str, object]
    ) -> None:
        self._config = config
        self._bot_user = bot_user
        self._counters = counters
        self.tokens = TokenStore(rng, config.token_ttl, config.token_overlap)
        self.session_starts = SessionStartLimit(config.session_start_total, config.session_start_window)
        self.gateway_url = "wss://api.sgroup.qq.com/websocket"
        self._rate = RateLimit(config.gateway_rate_limit)
        self._token_failures: tuple[int, int] = (0, 503)
        self._routes: dict[tuple[str, str], Callable[[HTTPRequest, float], Answer]] = {
            ("POST", TOKEN_PATH): self._token,
            ("GET", "/gateway"): self._gateway,
            ("GET", "/gateway/bot"): self._gateway_bot,
            ("GET", "/users/@me"): self._me,
        }

    def answer(self, request: HTTPRequest, now: float) -> Answer:
        """Status and JSON body for ``request``."""
        route = self._routes.get((request.method, request.path))
        if route is not None:
            return route(request, now)
        if any(path == request.path for _, path in self._routes):
            return 405, {"code": 405, "message": "method not allowed"}
        return 404, {"code": 404, "message": "not found"}

    def authorised(self, credential: str, now: float) -> bool:
        """True for ``QQBot <token>`` with a token that is valid at ``now`` (docs/protocol.md §7.3)."""
        scheme, _, token = credential.partition(" ")
        return scheme == "QQBot" and self.tokens.valid(token, now)

    def fail_token_calls(self, count: int, status: int) -> None:
        """Answer the next ``count`` token calls with HTTP ``status``."""
        self._token_failures = (count, status)

    def _token(self, request: HTTPRequest, now: float) -> Answer:
        self._counters.token_fetches += 1
        failures, status = self._token_failures
        if failures > 0:
            self._token_failures = (failures - 1, status)
            self._counters.token_failures += 1
            return status, {"code": status, "message": reason_phrase(status) or "error"}
        try:
            body = loads(request.body)
        except ValueError:
            body = None
        if (
            not isinstance(body, dict)
            or body.get("appId") != self._config.app_id
            or body.get("clientSecret") != self._config.client_secret
        ):
            self._counters.token_failures += 1
            return 401, INVALID_SECRET
        grant = self.tokens.grant(now)
        self._counters.tokens_issued += grant.new
        return 200, {"access_token": grant.token, "expires_in": str(grant.expires_in)}

    def _gateway(self, request: HTTPRequest, now: float) -> Answer:
        refusal = self._refusal(request, now)
        return refusal or (200, {"url": self.gateway_url})

    def _gateway_bot(self, request: HTTPRequest, now: float) -> Answer:
        refusal = self._refusal(request, now)
        return refusal or (
            200,
            {
                "url": self.gateway_url,
                "shards": self._config.shards_suggested,
                "session_start_limit": {
                    "total": self.session_starts.total,
                    "remaining": self.session_starts.remaining(now),
                    "reset_after": self.session_starts.reset_after_ms(now),
                    "max_concurrency": self._config.max_concurrency,
                },
            },
        )

    def _me(self, request: HTTPRequest, now: float) -> Answer:
        """The bot's own user, as ``GET /users/@me`` answers it (DOC ``openapi/user/me.md``)."""
        if not self.authorised(request.headers.get("authorization", ""), now):
            return 401, TOKEN_MISSING
        user = self._bot_user
        return 200, {
            "id": user["id"],
            "username": user["username"],
            "avatar": "",
            "union_openid": "",
            "union_user_account": "",
        }

    def _refusal(self, request: HTTPRequest, now: float) -> Answer | None:
        self._counters.gateway_calls += 1
        if not self.authorised(request.headers.get("authorization", ""), now):
            return 401, TOKEN_MISSING
        if not self._rate.allow(now):
            self._counters.gateway_rate_limited += 1
            return 400, RATE_LIMITED
        return None
