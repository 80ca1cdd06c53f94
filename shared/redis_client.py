"""This process's Redis client (rate limits, locks, blocklists, cache). The broker is Celery's own connection."""

from __future__ import annotations

import redis

from shared.settings import get_settings

_client: redis.Redis | None = None
_scripts: dict[tuple[int, str], object] = {}


class RedisNotConfiguredError(RuntimeError):
    pass


def get_redis() -> redis.Redis:
    global _client
    if _client is None:
        url = get_settings().redis_url
        if not url:
            raise RedisNotConfiguredError(
                "REDIS_URL is not set: run through `make run` (which starts an embedded Redis) or set it"
            )
        _client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=5, health_check_interval=30)
    return _client


def close_client() -> None:
    global _client
    if _client is not None:
        _client.close()
    _client = None


def script(source: str):
    """The Lua script `source`, registered once per client (register_script hashes the source on every call)."""
    client = get_redis()
    key = (id(client), source)
    if key not in _scripts:
        _scripts[key] = client.register_script(source)
    return _scripts[key]
