"""How an event reaches the sockets of a channel-layer group, and where each waiting
generation stands in its model's fair queue."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings

from . import clients
from .events import LogEvent, MessageEvent, QueueEvent


class _Announcer:
    """How an event reaches a channel-layer group.

    With channels-redis' pub/sub layer on the relay's own Redis, the PUBLISH
    goes with the relay's own writes, named as that layer names group channels
    (one round trip for many events). Any other layer gets the public
    ``group_send``.
    """

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self._group_channel = _pubsub_group_channel(layer)

    @property
    def pipelined(self) -> bool:
        return self._group_channel is not None

    def announcement(self, group: str, event: LogEvent) -> tuple[str, bytes] | None:
        """The channel and message to PUBLISH for ``event``, if this layer allows."""
        if self._group_channel is None:
            return None
        return self._group_channel(group), self.layer.serialize(_relay_message(event))

    async def send(self, group: str, event: LogEvent | MessageEvent | QueueEvent) -> None:
        await self.layer.group_send(group, _relay_message(event))


def _relay_message(event: LogEvent | MessageEvent | QueueEvent) -> dict[str, Any]:
    """Wrap ``event`` as the channel-layer message the consumer's ``relay_event`` handles."""
    return {"type": "relay.event", "event": event}


def _pubsub_group_channel(layer: Any) -> Callable[[str], str] | None:
    """Return the pub/sub layer's group-channel naming, or None where it cannot be used.

    It is a private method of channels-redis (checked with 4.3): if a release
    renames it, or the layer talks to another Redis, events go by group_send.
    """
    try:
        from channels_redis.pubsub import RedisPubSubChannelLayer
    except ImportError:
        return None
    if not isinstance(layer, RedisPubSubChannelLayer):
        return None
    loop_layer = layer._get_layer()
    namer = getattr(loop_layer, "_get_group_channel_name", None)
    shards = getattr(loop_layer, "_shards", [])
    addresses = [getattr(shard, "host", {}).get("address") for shard in shards]
    if not callable(namer) or not callable(getattr(layer, "serialize", None)):
        return None
    return namer if addresses == [settings.REDIS_URL] else None


async def announce(group: str, event: LogEvent | MessageEvent | QueueEvent) -> None:
    """Wake every socket of ``group`` up with ``event``."""
    await get_channel_layer().group_send(group, _relay_message(event))


def _positions_key(queue: str) -> str:
    return f"gatehouse:queue:{queue}"


async def queue_positions_publish(queue: str, waiting: list[tuple[str, str, int]]) -> None:
    """Keep where each waiting generation of ``queue`` stands, for pages that subscribe
    later, and tell the pages following them now. ``waiting``: (id, group, position)."""
    key = _positions_key(queue)
    async with clients.async_client().pipeline(transaction=True) as pipe:
        pipe.delete(key)
        if waiting:
            pipe.hset(key, mapping={gid: position for gid, _, position in waiting})
            pipe.expire(key, settings.GENERATION["LOG_TTL"])
        await pipe.execute()
    layer = get_channel_layer()
    for generation_id, group, position in waiting:
        event: QueueEvent = {"type": "queue", "generation": generation_id, "position": position}
        await layer.group_send(group, _relay_message(event))


async def queue_position(queue: str, generation_id: str) -> QueueEvent | None:
    """Return the queue event of a waiting generation as last published, if any."""
    position = await clients.async_client().hget(_positions_key(queue), generation_id)
    if position is None:
        return None
    return {"type": "queue", "generation": generation_id, "position": int(position)}
