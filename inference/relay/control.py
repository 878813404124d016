"""What the workers and the reaper tell each other through Redis: a heartbeat per
running generation, a cancel request, and how long Redis has held this state."""

from __future__ import annotations

import time

from django.conf import settings

from . import clients
from .clients import _key

CANCEL_CHANNEL = "gatehouse:cancel"


async def heartbeat(generation_id: str) -> None:
    ttl_ms = int(settings.GENERATION["HEARTBEAT_TTL"] * 1000)
    await clients.async_client().set(_key(generation_id, "hb"), "1", px=ttl_ms)


def heartbeats_alive(generation_ids: list[str]) -> set[str]:
    """Return the ids among ``generation_ids`` whose worker beat recently."""
    if not generation_ids:
        return set()
    values = clients.sync_client().mget([_key(gid, "hb") for gid in generation_ids])
    return {gid for gid, value in zip(generation_ids, values, strict=True) if value}


def redis_memory_age() -> tuple[float, bool]:
    """Return how long Redis has held the relay's state (heartbeats, queue, logs), in
    seconds, and whether this call is the first to look since it was empty.

    A Redis that restarted empty has lost every live worker's heartbeat and every
    queued task: the reaper must not take a missing beat for a dead worker until
    the workers have had time to beat again, and re-queues what was waiting.
    """
    client = clients.sync_client()
    key = "gatehouse:relay:since"
    now = time.time()
    fresh = bool(client.set(key, repr(now), nx=True))
    since = client.get(key)
    return (now - float(since) if since else 0.0), fresh


def cancel_request(generation_id: str) -> None:
    """Ask whichever worker runs ``generation_id`` to stop it."""
    client = clients.sync_client()
    client.set(_key(generation_id, "cancel"), "1", ex=settings.GENERATION["LOG_TTL"])
    client.publish(CANCEL_CHANNEL, generation_id)


async def cancel_requested(generation_id: str) -> bool:
    return bool(await clients.async_client().exists(_key(generation_id, "cancel")))
