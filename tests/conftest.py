"""Fixtures shared by several test folders: a real redis-server (see stores/redis_server.py)."""

from stores.redis_server import redis_client, redis_url

__all__ = ["redis_client", "redis_url"]
