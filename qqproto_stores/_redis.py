"""The shared session store: Redis, for bots whose shards run on more than one machine."""

from __future__ import annotations

import redis

from qqproto import SessionState

from ._records import decode_record

__all__ = ["RedisSessionStore"]


class RedisSessionStore:
    """Sessions in Redis, one string per key under ``prefix``.

    A save is an optimistic transaction (WATCH, read, compare, MULTI/SET), so a newer seq from
    another process is never overwritten by an older one. Connection errors are redis-py's own.
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

    def __repr__(self) -> str:
        return f"RedisSessionStore({self._where!r})"

    def load(self, key: str) -> SessionState | None:
        return decode_record(key, self._redis.get(self.prefix + key))

    def save(self, key: str, state: SessionState) -> bool:
        name = self.prefix + key

        def compare_and_set(pipe: redis.client.Pipeline) -> bool:
            if not state.supersedes(decode_record(key, pipe.get(name))):
                return False
            pipe.multi()
            pipe.set(name, state.to_json())
            return True

        # WATCH, compare, MULTI/SET; redis-py retries when another writer got in between.
        return bool(self._redis.transaction(compare_and_set, name, value_from_callable=True))  # type: ignore[arg-type]

    def clear(self, key: str) -> None:
        self._redis.delete(self.prefix + key)

    def close(self) -> None:
        """Close the connections this store opened."""
        self._redis.close()
