"""The shared session store: Redis, for bots whose shards run on more than one machine."""

from __future__ import annotations

import redis

from qqproto import SessionState

from ._fencing import FencedOut, check_token
from ._records import decode_record

__all__ = ["RedisSessionStore"]

# KEYS: a fence. ARGV: a token. The fence becomes the larger of the two.
_RAISE_FENCE = """
local fence = redis.call('GET', KEYS[1])
if not fence or tonumber(fence) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
"""


class RedisSessionStore:
    """Sessions in Redis, one string per key under ``prefix``.

    A save is an optimistic transaction (WATCH, read, compare, MULTI/SET), so a newer seq from
    another process is never overwritten by an older one. A fenced write also WATCHes the key's
    fence, ``{prefix}{key}:fence``. Connection errors are redis-py's own.
    """

    def __init__(
        self,
        url_or_client: str | redis.Redis,
        *,
        prefix: str = "qqproto:session:",
        timeout: float = 2.0,
    ) -> None:
        if isinstance(url_or_client, str):
            self._redis: redis.Redis = redis.Redis.from_url(
                url_or_client, socket_timeout=timeout, socket_connect_timeout=timeout
            )
            self._where = url_or_client.split("@")[-1]  # never show a password
        else:
            self._redis = url_or_client
            self._where = "a client"
        self.prefix = prefix
        self._raise_fence = self._redis.register_script(_RAISE_FENCE)

    def __repr__(self) -> str:
        return f"RedisSessionStore({self._where!r})"

    def load(self, key: str) -> SessionState | None:
        return decode_record(key, self._redis.get(self.prefix + key))

    def save(self, key: str, state: SessionState) -> bool:
        return self._save(key, state, None)

    def clear(self, key: str) -> None:
        self._redis.delete(self.prefix + key)

    def raise_fence(self, key: str, token: int) -> None:
        """Make the key's fence ``max(fence, token)``: older tokens are refused from now on."""
        self._raise_fence(keys=[self.prefix + key + ":fence"], args=[check_token(token)])

    def save_fenced(self, key: str, state: SessionState, token: int) -> bool:
        """As :meth:`save`, unless ``token`` is older than the key's fence: then raise FencedOut."""
        return self._save(key, state, check_token(token))

    def clear_fenced(self, key: str, token: int) -> None:
        """As :meth:`clear`, unless ``token`` is older than the key's fence: then raise FencedOut."""
        check_token(token)
        name = self.prefix + key
        fence = name + ":fence"

        def check_and_delete(pipe: redis.client.Pipeline) -> None:
            _check_fence(key, token, pipe.get(fence))
            pipe.multi()
            pipe.delete(name)

        self._redis.transaction(check_and_delete, fence)

    def close(self) -> None:
        """Close the connections this store opened."""
        self._redis.close()

    def _save(self, key: str, state: SessionState, token: int | None) -> bool:
        name = self.prefix + key
        fence = name + ":fence"

        def compare_and_set(pipe: redis.client.Pipeline) -> bool:
            if token is not None:
                _check_fence(key, token, pipe.get(fence))
            if not state.supersedes(decode_record(key, pipe.get(name))):
                return False
            pipe.multi()
            pipe.set(name, state.to_json())
            return True

        # WATCH, compare, MULTI/SET; redis-py retries when another writer (or a fence) got in between.
        watched = (name,) if token is None else (name, fence)
        return bool(self._redis.transaction(compare_and_set, *watched, value_from_callable=True))  # type: ignore[arg-type]


def _check_fence(key: str, token: int, fence: bytes | str | None) -> None:
    if fence is not None and token < int(fence):
        raise FencedOut(key, token, int(fence))
