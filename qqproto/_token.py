"""The access token: fetching it, reading the answer, and knowing when to refresh it (docs/protocol.md §7)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Union

from ._api import ApiAnswer, api_request
from ._config import GatewayConfig
from ._http import Endpoint, HttpExchange, HttpResponse

__all__ = ["CREDENTIAL_ERROR_CODES", "CredentialsRejected", "TokenCache", "TokenIssued", "TokenUnavailable"]

# Platform codes that mean the app id or secret is wrong (docs/protocol.md §7.1 and §9.4).
CREDENTIAL_ERROR_CODES = frozenset({100016, 11251, 11261, 11275})
# A token travels in an Authorization header: visible ASCII only.
USABLE_TOKEN = re.compile(r"[\x21-\x7e]+")


@dataclass(frozen=True)
class TokenIssued:
    """A token was stored."""

    expires_in: float


@dataclass(frozen=True)
class CredentialsRejected:
    """The token endpoint refused the app id or secret: retrying cannot help."""

    reason: str


@dataclass(frozen=True)
class TokenUnavailable:
    """The token endpoint failed in a way that may pass: retry later; ``cause`` is the key to count it by."""

    reason: str
    cause: str = "token"


TokenResult = Union[TokenIssued, CredentialsRejected, TokenUnavailable]


class TokenCache:
    """Holds the current access token and when to replace it; never shows the token."""

    def __init__(self, config: GatewayConfig) -> None:
        self._config = config
        self._endpoint = Endpoint.from_url(config.token_url)
        self._token: str | None = None
        self.expires_at = 0.0
        self.refresh_at = 0.0
        self.fetches = 0

    def __repr__(self) -> str:
        return f"TokenCache(held={self._token is not None}, expires_at={self.expires_at})"

    @property
    def endpoint(self) -> Endpoint:
        """Where the token endpoint lives."""
        return self._endpoint

    def usable(self, now: float) -> bool:
        """True while a token is held that has not expired."""
        return self._token is not None and now < self.expires_at

    @property
    def authorization(self) -> str:
        """The raw token, for the Identify/Resume payloads and the Authorization header."""
        if self._token is None:
            raise RuntimeError("no access token is held")
        return self._token

    def invalidate(self) -> None:
        """Forget the token, so the next use fetches a new one."""
        self._token = None
        self.expires_at = self.refresh_at = 0.0

    def request(self) -> HttpExchange:
        """The POST that asks for a token."""
        self.fetches += 1
        body = json.dumps({"appId": self._config.app_id, "clientSecret": self._config.client_secret}).encode()
        return api_request(self._config, "POST", self._endpoint, body=body)

    def accept(self, response: HttpResponse, now: float) -> TokenResult:
        """Read the token endpoint's answer and store the token it carries."""
        answer = ApiAnswer.of(response)
        if response.status in (401, 403) or answer.has(CREDENTIAL_ERROR_CODES):
            return CredentialsRejected(
                f"the token endpoint rejected the credentials ({answer.detail}); check app_id and client_secret "
                "in GatewayConfig against the QQ bot console"
            )
        if response.status != 200 or not answer.fields:
            return TokenUnavailable(f"the token endpoint answered {answer.detail}")
        token = answer.fields.get("access_token")
        expires_in = _seconds(answer.fields.get("expires_in"))
        if not isinstance(token, str) or not USABLE_TOKEN.fullmatch(token) or expires_in is None or expires_in <= 0:
            return TokenUnavailable(f"the token endpoint answered without a usable token ({answer.detail})")
        self._token = token
        self.expires_at = now + expires_in
        self.refresh_at = now + max(expires_in - self._config.token_refresh_margin, expires_in / 2)
        return TokenIssued(expires_in)


def _seconds(value: object) -> float | None:
    """``expires_in`` arrives as a number or as a string of digits (docs/protocol.md §7.1)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            return None
    if not isinstance(value, (int, float)):
        return None
    try:
        seconds = float(value)
    except OverflowError:
        return None
    return seconds if math.isfinite(seconds) else None
