"""Fixtures for the session stores: a real SQLite file and a real redis-server."""

from redis_server import redis_client, redis_url

__all__ = ["redis_client", "redis_url"]
