"""The channel layer: channels-redis' pub/sub layer, whose receiver wakes on a subscribe.

The library's receiver (channels-redis 4.3) reads the shard's pub/sub connection
while anything is subscribed, and sleeps 100 ms at a time while nothing is. A web
process whose sockets have all closed is in that sleep when the next page opens:
its first reply then reached the page up to 100 ms late, the one slow reply of
every run of single replies in bench/relay.py (docs/performance.md). Here the idle
receiver waits for the next subscribe instead, and reads at once.

If a release of channels-redis changes the receiver, this class changes nothing
the layer does but that wait; tests/test_relay.py checks the layer end to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer, RedisSingleShardConnection

logger = logging.getLogger(__name__)

IDLE_CHECK = 1.0  # seconds an idle receiver waits before it looks again, whatever happens


class _Shard(RedisSingleShardConnection):
    def __init__(self, host: Any, channel_layer: Any) -> None:
        super().__init__(host, channel_layer)
        self._subscribed = asyncio.Event()

    async def subscribe(self, channel: str) -> None:
        await super().subscribe(channel)
        self._subscribed.set()

    async def _do_receiving(self) -> None:
        while True:
            try:
                if self._pubsub and self._pubsub.subscribed:
                    message = await self._pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=0.1
                    )
                    self._receive_message(message)
                else:
                    self._subscribed.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(IDLE_CHECK):
                            await self._subscribed.wait()
            except (asyncio.CancelledError, TimeoutError, GeneratorExit):
                raise
            except BaseException:  # as the library does
                logger.exception("Unexpected exception in receive task")
                await asyncio.sleep(1)


class PubSubChannelLayer(RedisPubSubChannelLayer):
    """channels-redis' ``RedisPubSubChannelLayer``, with the receiver above."""

    def _get_layer(self) -> Any:
        fresh = asyncio.get_running_loop() not in self._layers
        layer = super()._get_layer()
        if fresh:  # no shard has connected yet: each is only its host so far
            layer._shards = [_Shard(shard.host, layer) for shard in layer._shards]
        return layer
