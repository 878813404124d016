"""The token log and the live announcements: the one place that talks to both.

Each generation has a Redis Stream (its token log, the truth) whose entry ids
are ``0-<seq>``, so a replay "after seq n" is one exclusive XRANGE and a chunk
can never be logged twice. Every logged event is then announced on the
channel-layer group the generation names (its conversation, compare session,
battle, or a group of its own), which only wakes the sockets up: a socket that
missed an announcement reads the log. Everything here is keyed by generation id.
A heartbeat key tells the reaper which generations still have a live worker,
and a cancel flag plus a pub/sub message tell the worker to stop.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Callable
from typing import Any, Literal, NotRequired, TypedDict

import redis
import redis.asyncio as aioredis
from channels.layers import get_channel_layer
from django.conf import settings

CANCEL_CHANNEL = "gatehouse:cancel"


class ChunkEvent(TypedDict):
    type: Literal["chunk"]
    generation: str
    seq: int
    text: str


class DoneEvent(TypedDict):
    type: Literal["done"]
    generation: str
    seq: int
    status: str
    stats: dict[str, Any]
    error: NotRequired[dict[str, str]]


class MessageEvent(TypedDict):
    type: Literal["message"]
    message: dict[str, Any]


LogEvent = ChunkEvent | DoneEvent


def _key(generation_id: str, kind: str) -> str:
    return f"gatehouse:gen:{generation_id}:{kind}"


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
            settings.REDIS_URL, decode_responses=True, max_connections=64, timeout=20
        )
        client = aioredis.Redis(connection_pool=pool)
        _async_clients[loop] = client
    return client


def sync_client() -> redis.Redis:
    global _sync_client
    if _sync_client is None:
        _sync_client = redis.Redis.from_url(
            settings.REDIS_URL, decode_responses=True, socket_timeout=5
        )
    return _sync_client


def ping() -> bool:
    try:
        return bool(sync_client().ping())
    except redis.RedisError:
        return False


class Publisher:
    """Log and announce one generation's events, numbered from 1 in order."""

    def __init__(self, generation_id: str, group: str) -> None:
        self.generation_id = generation_id
        self.group = group
        self.seq = 0
        self._lock = asyncio.Lock()
        self._log_key = _key(generation_id, "log")

    async def chunk(self, text: str) -> None:
        async with self._lock:
            self.seq += 1
            event: ChunkEvent = {
                "type": "chunk",
                "generation": self.generation_id,
                "seq": self.seq,
                "text": text,
            }
            await self._publish(event)

    async def done(
        self, *, status: str, stats: dict[str, Any], error: dict[str, str] | None
    ) -> None:
        async with self._lock:
            self.seq += 1
            event: DoneEvent = {
                "type": "done",
                "generation": self.generation_id,
                "seq": self.seq,
                "status": status,
                "stats": stats,
            }
            if error:
                event["error"] = error
            await self._publish(event)

    async def _publish(self, event: LogEvent) -> None:
        await _writer().write(self._log_key, event, self.group)


class _Writer:
    """Write the events of every generation on a loop in shared pipelines.

    Events that arrive while a pipeline is in flight leave together in the
    next one: one round trip carries many streams' log appends and
    announcements. A failed command fails only its own event.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[str, LogEvent, str, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._announcer = _Announcer(get_channel_layer())
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def write(self, log_key: str, event: LogEvent, group: str) -> None:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((log_key, event, group, future))
        self._wake.set()
        await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            try:
                errors = await self._execute(batch)
            except Exception as exc:
                errors = [exc] * len(batch)
            for (*_, future), error in zip(batch, errors, strict=True):
                if not future.done():
                    future.set_exception(error) if error else future.set_result(None)

    async def _execute(self, batch: list) -> list[BaseException | None]:
        """Run the batch in one pipeline; return each event's first error, or None."""
        ttl, sizes = settings.GENERATION["LOG_TTL"], []
        announcer = self._announcer
        async with async_client().pipeline(transaction=False) as pipe:
            for log_key, event, group, _ in batch:
                pipe.xadd(log_key, {"e": json.dumps(event)}, id=f"0-{event['seq']}")
                # The log's TTL outlasts GENERATION_MAX_DURATION: set at the start and the end.
                expire = event["seq"] == 1 or event["type"] == "done"
                if expire:
                    pipe.expire(log_key, ttl)
                announced = announcer.add_to(pipe, group, event)
                sizes.append(1 + expire + announced)
            results = await pipe.execute(raise_on_error=False)
        errors: list[BaseException | None] = []
        start = 0
        for size in sizes:
            failed = [r for r in results[start : start + size] if isinstance(r, Exception)]
            errors.append(failed[0] if failed else None)
            start += size
        if not announcer.pipelined:
            sent = await asyncio.gather(
                *(announcer.send(group, event) for _, event, group, _ in batch),
                return_exceptions=True,
            )
            errors = [
                e or (s if isinstance(s, BaseException) else None)
                for e, s in zip(errors, sent, strict=True)
            ]
        return errors


class _Announcer:
    """How an event reaches a channel-layer group.

    With channels-redis' pub/sub layer on the relay's own Redis, the PUBLISH
    joins the relay's pipeline, named as that layer names group channels (one
    round trip for many events). Any other layer gets the public ``group_send``.
    """

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self._group_channel = _pubsub_group_channel(layer)

    @property
    def pipelined(self) -> bool:
        return self._group_channel is not None

    def add_to(self, pipe: Any, group: str, event: LogEvent) -> bool:
        """Queue the announcement in ``pipe`` if this layer allows; return whether it did."""
        if self._group_channel is None:
            return False
        message = self.layer.serialize(_relay_message(event))
        pipe.publish(self._group_channel(group), message)
        return True

    async def send(self, group: str, event: LogEvent | MessageEvent) -> None:
        await self.layer.group_send(group, _relay_message(event))


def _relay_message(event: LogEvent | MessageEvent) -> dict[str, Any]:
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


_writers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Writer] = (
    weakref.WeakKeyDictionary()
)


def _writer() -> _Writer:
    loop = asyncio.get_running_loop()
    if loop not in _writers:
        _writers[loop] = _Writer()
    return _writers[loop]


async def publish_end(
    generation_id: str,
    group: str,
    *,
    after_seq: int,
    status: str,
    error: dict[str, str] | None = None,
) -> None:
    """Log and announce the end of a generation that no running worker will finish."""
    publisher = Publisher(generation_id, group)
    publisher.seq = after_seq
    await publisher.done(status=status, stats={}, error=error)


async def announce(group: str, event: LogEvent | MessageEvent) -> None:
    """Wake every socket of ``group`` up with ``event``."""
    await get_channel_layer().group_send(group, _relay_message(event))


async def log_read(generation_id: str, *, after_seq: int = 0) -> list[LogEvent]:
    """Return the logged events of a generation with a seq above ``after_seq``."""
    entries = await async_client().xrange(_key(generation_id, "log"), min=f"(0-{after_seq}")
    # redis-py's shared stream parser admits None replies and entries; XRANGE never returns them.
    return [json.loads(fields["e"]) for _, fields in entries]  # type: ignore[index, union-attr]


def log_text(generation_id: str) -> tuple[str, int]:
    """Return the text logged so far for a generation and the number of chunks."""
    entries = sync_client().xrange(_key(generation_id, "log"))
    # redis-py's shared stream parser admits None replies and entries; XRANGE never returns them.
    events = [json.loads(fields["e"]) for _, fields in entries]  # type: ignore[index, union-attr]
    chunks = [event["text"] for event in events if event["type"] == "chunk"]
    return "".join(chunks), len(chunks)


async def heartbeat(generation_id: str) -> None:
    ttl_ms = int(settings.GENERATION["HEARTBEAT_TTL"] * 1000)
    await async_client().set(_key(generation_id, "hb"), "1", px=ttl_ms)


def heartbeats_alive(generation_ids: list[str]) -> set[str]:
    """Return the ids among ``generation_ids`` whose worker beat recently."""
    if not generation_ids:
        return set()
    values = sync_client().mget([_key(gid, "hb") for gid in generation_ids])
    return {gid for gid, value in zip(generation_ids, values, strict=True) if value}


def cancel_request(generation_id: str) -> None:
    """Ask whichever worker runs ``generation_id`` to stop it."""
    client = sync_client()
    client.set(_key(generation_id, "cancel"), "1", ex=settings.GENERATION["LOG_TTL"])
    client.publish(CANCEL_CHANNEL, generation_id)


async def cancel_requested(generation_id: str) -> bool:
    return bool(await async_client().exists(_key(generation_id, "cancel")))
