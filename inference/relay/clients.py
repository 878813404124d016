"""The relay's Redis clients and the names of its keys.

The other modules of the package call ``clients.async_client()`` and
``clients.sync_client()`` through this module, so a test that replaces one
here replaces it for the whole relay.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.retry import Retry


def _key(generation_id: str, kind: str) -> str:
    return f"gatehouse:gen:{generation_id}:{kind}"


# After a Redis restart every pooled connection is dead: a command on one is tried
# again on a new connection, and a connection idle for a while is checked first.
def _resilience(retry: type[Retry] | type[AsyncRetry]) -> dict[str, Any]:
    return {
        "socket_connect_timeout": 2,
        "retry": retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
        "retry_on_error": [redis.ConnectionError, redis.TimeoutError],
        "health_check_interval": 10,
    }


# One asyncio client per event loop (uvicorn's loop, the worker's relay loop, a test's loop).
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
    weakref.WeakKeyDictionary()
)
_sync_client: redis.Redis | None = None


def async_client() -> aioredis.Redis:
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        # Blocking: past max_connections a command waits for a connection instead of failing.
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.REDIS_URL,
            decode_responses=True,
            max_connections=64,
            timeout=20,
            **_resilience(AsyncRetry),
        )
        client = aioredis.Redis(connection_pool=pool)
        _async_clients[loop] = client
    return client


def sync_client() -> redis.Redis:
    global _sync_client
    if _sync_client is None:
        _sync_client = redis.Redis.from_url(
            settings.REDIS_URL,
            decode_responses=True,
            socket_timeout=5,
            **_resilience(Retry),
        )
    return _sync_client


def ping() -> bool:
    try:
        return bool(sync_client().ping())
    except redis.RedisError:
        return False
