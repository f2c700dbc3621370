"""Shard leases, fleet membership and the shared identify ration, kept in Redis.

Every step that reads and writes is one Lua script, so it is atomic; times come from the
Redis server (``TIME``, PX expiries), so the machines' clocks never matter.
"""

from __future__ import annotations

import math
import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis

from ._coordination import CoordinatorUnavailable, IdentifyTurn

__all__ = ["RedisCoordinator"]

_NOW_MS = "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"

# KEYS: members. ARGV: member, ttl ms.
_JOIN = (
    _NOW_MS
    + """
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
"""
)

# KEYS: members.
_MEMBERS = _NOW_MS + "return redis.call('ZRANGEBYSCORE', KEYS[1], string.format('(%d', now), '+inf')"

# KEYS: lease, token counter. ARGV: member, ttl ms.
# A token is never below the server's time in microseconds (below 2^53, exact in Lua), so
# tokens keep growing even after Redis restarts without its data, and fences kept in
# another store stay meaningful.
_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local t = redis.call('TIME')
local token = math.max(redis.call('INCR', KEYS[2]), t[1] * 1000000 + t[2])
redis.call('SET', KEYS[2], string.format('%d', token))
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. string.format('%d', token), 'PX', ARGV[2])
return token
"""

# KEYS: the fleet's shard count. ARGV: this member's count, ttl ms. Set by the first member,
# kept alive by every round of a member that agrees; answers the fleet's count.
_AGREE_SHARD_COUNT = """
local count = redis.call('GET', KEYS[1])
if not count then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return tonumber(ARGV[1])
end
if count == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return tonumber(count)
"""

# KEYS: a key. ARGV: the value it must still hold, ttl ms.
_EXPIRE_IF_HELD = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# KEYS: a key. ARGV: the value it must still hold.
_DELETE_IF_HELD = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""

# KEYS: bucket slot, daily starts left. ARGV: holder, hold ms, reported remaining or '', reset ms.
# A holder asking again while it holds the slot (its connection failed before it could identify)
# holds it again, with the start it was already given.
_TRY_IDENTIFY = """
local holding = redis.call('GET', KEYS[1])
if holding == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, 0, 0}
end
local left = redis.call('GET', KEYS[2])
if ARGV[3] ~= '' then
  local reported = tonumber(ARGV[3])
  if not left then
    redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
    left = ARGV[3]
  elseif reported < tonumber(left) then
    redis.call('SET', KEYS[2], ARGV[3], 'KEEPTTL')
    left = ARGV[3]
  end
end
if left and tonumber(left) <= 0 then
  return {0, math.max(redis.call('PTTL', KEYS[2]), 0), 1}
end
if holding then
  return {0, math.max(redis.call('PTTL', KEYS[1]), 0), 0}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if left then redis.call('DECR', KEYS[2]) end
return {1, 0, 0}
"""

# KEYS: bucket slot. ARGV: holder, window ms. The turn is used: marked so, it can be neither
# given back nor held again, and it frees one window from now.
_IDENTIFY_DONE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1] .. '\\ndone', 'PX', ARGV[2])
return 1
"""


class RedisCoordinator:
    """Shard leases with fencing tokens, fleet membership and the shared identify ration, in Redis."""

    def __init__(
        self,
        url_or_client: str | redis.Redis,
        app_id: str,
        *,
        prefix: str = "qqproto:",
        member_id: str | None = None,
        timeout: float = 2.0,
    ) -> None:
        if not isinstance(app_id, str) or not app_id:
            raise ValueError(f"app_id must be a non-empty string, got {app_id!r}")
        if member_id is None:
            member_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        elif not isinstance(member_id, str) or not member_id or not member_id.isprintable():
            raise ValueError(f"member_id must be a non-empty printable string, got {member_id!r}")
        self.member_id = member_id
        if isinstance(url_or_client, str):
            self._redis: redis.Redis = redis.Redis.from_url(
                url_or_client, socket_timeout=timeout, socket_connect_timeout=timeout
            )
            self._owns_client = True
            self._where = _address_of_url(url_or_client)
        else:
            self._redis = url_or_client
            self._owns_client = False
            self._where = _address_of_client(url_or_client)
        self._keys = f"{prefix}{app_id}:"
        self._join = self._redis.register_script(_JOIN)
        self._members = self._redis.register_script(_MEMBERS)
        self._claim = self._redis.register_script(_CLAIM)
        self._expire_if_held = self._redis.register_script(_EXPIRE_IF_HELD)
        self._delete_if_held = self._redis.register_script(_DELETE_IF_HELD)
        self._identify_done = self._redis.register_script(_IDENTIFY_DONE)
        self._agree_shard_count = self._redis.register_script(_AGREE_SHARD_COUNT)
        self._try_identify = self._redis.register_script(_TRY_IDENTIFY)

    def __repr__(self) -> str:
        return f"RedisCoordinator({self._where!r}, member_id={self.member_id!r})"

    def ping(self) -> None:
        """Check that Redis answers; raises CoordinatorUnavailable if not."""
        with self._talking("pinging it"):
            self._redis.ping()

    # -- membership --------------------------------------------------------------------

    def join(self, ttl: float) -> int:
        """Count this member live for ``ttl`` more seconds, drop expired members; the live count."""
        with self._talking("joining the fleet"):
            return int(self._join(keys=[self._keys + "members"], args=[self.member_id, _ms("ttl", ttl)]))

    def agree_shard_count(self, shard_count: int, ttl: float) -> int:
        """The fleet's shard count: ``shard_count`` if no live member set another; kept ``ttl`` more seconds if it agrees."""
        args: list[str | int] = [_index("shard_count", shard_count), _ms("ttl", ttl)]
        with self._talking("agreeing on the shard count"):
            return int(self._agree_shard_count(keys=[self._keys + "shard_count"], args=args))

    def leave(self) -> None:
        """Stop counting this member at once."""
        with self._talking("leaving the fleet"):
            self._redis.zrem(self._keys + "members", self.member_id)

    def members(self) -> list[str]:
        """The live members, sorted."""
        with self._talking("listing the fleet"):
            found = self._members(keys=[self._keys + "members"])
        return sorted(_text(member) for member in found)

    # -- leases ------------------------------------------------------------------------

    def claim(self, shard: int, ttl: float) -> int | None:
        """Take shard ``shard`` for ``ttl`` seconds if nobody holds it; its new fencing token, or None."""
        args: list[str | int] = [self.member_id, _ms("ttl", ttl)]
        with self._talking(f"claiming shard {_index('shard', shard)}"):
            token = self._claim(keys=[self._lease(shard), f"{self._keys}token:{shard}"], args=args)
        return None if token is None else int(token)

    def renew(self, shard: int, token: int, ttl: float) -> bool:
        """Extend our lease on ``shard`` by ``ttl`` seconds; False if it is no longer ours (the shard is lost)."""
        args: list[str | int] = [self._lease_value(token), _ms("ttl", ttl)]
        with self._talking(f"renewing the lease on shard {_index('shard', shard)}"):
            return bool(self._expire_if_held(keys=[self._lease(shard)], args=args))

    def release(self, shard: int, token: int) -> bool:
        """Give up our lease on ``shard``; True if it was still ours and is now free."""
        args: list[str | int] = [self._lease_value(token)]
        with self._talking(f"releasing shard {_index('shard', shard)}"):
            return bool(self._delete_if_held(keys=[self._lease(shard)], args=args))

    def owners(self, shard_count: int) -> dict[int, tuple[str, int] | None]:
        """Who holds each of shards ``0..shard_count-1``: (member, token), or None when free."""
        shards = range(_index("shard_count", shard_count))
        if not shards:
            return {}
        with self._talking("reading the shard leases"):
            values = self._redis.mget([self._lease(shard) for shard in shards])
        return {shard: None if value is None else _parse_lease(value) for shard, value in zip(shards, values)}

    # -- the identify ration -----------------------------------------------------------

    def try_identify(
        self, bucket: int, holder: str, *, hold: float, remaining: int | None, reset_after: float | None
    ) -> IdentifyTurn:
        """Take bucket ``bucket``'s turn for ``hold`` seconds, spending one daily start, if both are free.

        ``remaining`` and ``reset_after`` are what ``/gateway/bot`` last reported (both or neither):
        they start the shared daily counter, or lower it.
        """
        if (remaining is None) != (reset_after is None):
            raise ValueError("remaining and reset_after are reported together: pass both or neither")
        args: list[str | int] = [_holder(holder), _ms("hold", hold), "", ""]
        if remaining is not None and reset_after is not None:
            args[2:] = [_index("remaining", remaining), _ms("reset_after", reset_after, zero_ok=True)]
        keys = [self._slot(bucket), self._keys + "identify:remaining"]
        with self._talking(f"asking for an identify turn in bucket {bucket}"):
            granted, wait_ms, exhausted = self._try_identify(keys=keys, args=args)
        return IdentifyTurn(granted=bool(granted), retry_after=int(wait_ms) / 1000, exhausted=bool(exhausted))

    def identify_done(self, bucket: int, holder: str, window: float) -> None:
        """``holder``'s Identify is done with: its bucket frees ``window`` seconds from now, if it still holds it."""
        args: list[str | int] = [_holder(holder), _ms("window", window, zero_ok=True)]
        with self._talking(f"re-arming the identify turn of bucket {bucket}"):
            self._identify_done(keys=[self._slot(bucket)], args=args)

    def give_back(self, bucket: int, holder: str) -> None:
        """Free bucket ``bucket``'s turn without identifying, if ``holder`` still holds it."""
        args: list[str | int] = [_holder(holder)]
        with self._talking(f"giving back the identify turn of bucket {bucket}"):
            self._delete_if_held(keys=[self._slot(bucket)], args=args)

    def close(self) -> None:
        """Close the connections this coordinator opened (a client passed in stays open)."""
        if self._owns_client:
            self._redis.close()

    # -- inside ------------------------------------------------------------------------

    def _lease(self, shard: int) -> str:
        return f"{self._keys}lease:{_index('shard', shard)}"

    def _lease_value(self, token: int) -> str:
        return f"{self.member_id} {_index('token', token)}"

    def _slot(self, bucket: int) -> str:
        return f"{self._keys}identify:{_index('bucket', bucket)}"

    @contextmanager
    def _talking(self, doing: str) -> Iterator[None]:
        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise CoordinatorUnavailable(f"Redis at {self._where} is unavailable while {doing}: {exc}") from exc
        except redis.ResponseError as exc:  # a read-only replica, a user without the rights, out of memory
            raise CoordinatorUnavailable(f"Redis at {self._where} refused {doing}: {exc}") from exc


def _index(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    return value


def _ms(name: str, seconds: float, *, zero_ok: bool = False) -> int:
    """A duration for PX, in whole milliseconds and at least one."""
    number = not isinstance(seconds, bool) and isinstance(seconds, (int, float)) and seconds < math.inf
    if not number or not (seconds >= 0 if zero_ok else seconds > 0):
        raise ValueError(f"{name} must be a number of seconds {'>=' if zero_ok else '>'} 0, got {seconds!r}")
    return max(1, round(seconds * 1000))


def _holder(holder: str) -> str:
    if not isinstance(holder, str) or not holder or not holder.isprintable():
        raise ValueError(f"holder must be a non-empty printable string, got {holder!r}")
    return holder


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _parse_lease(value: Any) -> tuple[str, int]:
    member, _, token = _text(value).rpartition(" ")
    return member, int(token)


def _address_of_url(url: str) -> str:
    """The URL without its user name and password."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"


def _address_of_client(client: redis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    return f"redis://{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"
