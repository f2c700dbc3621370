"""Access tokens as the platform issues them: one current token, renewed only near its expiry."""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

__all__ = ["Grant", "TokenStore"]

_ALPHABET = string.ascii_letters + string.digits + "-_"


@dataclass(frozen=True)
class Grant:
    """The answer to one token call: the token and its remaining lifetime in whole seconds."""

    token: str
    expires_in: int
    new: bool


class TokenStore:
    """Issues and checks tokens (docs/protocol.md §7.2): the same token until the last ``overlap`` seconds."""

    def __init__(self, rng: random.Random, ttl: float, overlap: float) -> None:
        self._rng = rng
        self._ttl = ttl
        self._overlap = overlap
        self._expiry: dict[str, float] = {}
        self._current: str | None = None
        #: Every token ever issued, in order, expired ones included.
        self.issued: list[str] = []

    def grant(self, now: float) -> Grant:
        """The current token if it has more than ``overlap`` left, else a new one; old ones stay valid."""
        self._forget_expired(now)
        current = self._current
        if current is not None and current in self._expiry and self._expiry[current] - now > self._overlap:
            return Grant(current, int(self._expiry[current] - now), new=False)
        token = "".join(self._rng.choice(_ALPHABET) for _ in range(43))
        self._expiry[token] = now + self._ttl
        self._current = token
        self.issued.append(token)
        return Grant(token, int(self._ttl), new=True)

    def valid(self, token: str, now: float) -> bool:
        """True if ``token`` was issued here and has not expired."""
        return now < self._expiry.get(token, now)

    def expire_all(self) -> None:
        """Make every issued token invalid at once."""
        self._expiry.clear()
        self._current = None

    def _forget_expired(self, now: float) -> None:
        for token in [t for t, expiry in self._expiry.items() if expiry <= now]:
            del self._expiry[token]
