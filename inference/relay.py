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
import logging
import time
import weakref
from collections.abc import Callable
from typing import Any, Literal, NotRequired, TypedDict

import redis
import redis.asyncio as aioredis
from channels.layers import get_channel_layer
from django.conf import settings
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

CANCEL_CHANNEL = "gatehouse:cancel"
WRITE_TIMEOUT = 5.0  # seconds a pipeline of log writes may take before it is given up
END_PATIENCE = 30.0  # seconds an end is retried while Redis is away

logger = logging.getLogger(__name__)


class Alternative(TypedDict):
    text: str
    logprob: float


class TokenDetail(TypedDict):
    """One generated token, when token details were asked for: its text, its log
    probability, and the most likely alternatives (best first)."""

    text: str
    logprob: float | None
    top: list[Alternative]


class ChunkEvent(TypedDict):
    type: Literal["chunk"]
    generation: str
    seq: int
    text: str
    tokens: NotRequired[list[TokenDetail]]  # the chunk's tokens, when details were asked for


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


class QueueEvent(TypedDict):
    """Where a waiting generation stands in its model's fair queue (1: next to start)."""

    type: Literal["queue"]
    generation: str
    position: int


LogEvent = ChunkEvent | DoneEvent


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


class Publisher:
    """Log and announce one generation's events, numbered from 1 in order.

    The publisher keeps every event it numbered: the log is never the only
    copy. A write that fails (Redis down) is logged and left pending, and the
    next write carries it again, so no numbered event is missing from the log
    once Redis answers. If the log vanished (Redis came back empty), the next
    write puts every event back from the first.
    """

    def __init__(self, generation_id: str, group: str) -> None:
        self.generation_id = generation_id
        self.group = group
        self.events: list[LogEvent] = []  # numbered base + 1, base + 2, …
        self.base = 0  # events up to this seq are someone else's (see skip_to)
        self.logged = 0  # the highest seq the log is known to hold
        self.announced = 0  # the highest seq announced
        self.lost = False  # the log is gone: write it again from the first event
        self.failures = 0
        self._lock = asyncio.Lock()
        self.log_key = _key(generation_id, "log")

    @property
    def seq(self) -> int:
        return self.base + len(self.events)

    def skip_to(self, seq: int) -> None:
        """Number the next event ``seq + 1``: the events before it were logged by another."""
        self.base = self.logged = self.announced = seq

    async def chunk(self, text: str) -> bool:
        """Log and announce the next chunk; return whether the log now holds every event."""
        self.add_chunk(text)
        return await self.sync()

    def add_chunk(self, text: str, *, tokens: list[TokenDetail] | None = None) -> None:
        """Number the next chunk (it is in ``text()`` at once); ``sync()`` writes it."""
        event: ChunkEvent = {
            "type": "chunk",
            "generation": self.generation_id,
            "seq": self.seq + 1,
            "text": text,
        }
        if tokens:
            event["tokens"] = tokens
        self.events.append(event)

    async def done(
        self,
        *,
        status: str,
        stats: dict[str, Any],
        error: dict[str, str] | None,
        patience: float = 0.0,
    ) -> bool:
        """Log and announce the end, trying for ``patience`` seconds while Redis is away."""
        event: DoneEvent = {
            "type": "done",
            "generation": self.generation_id,
            "seq": self.seq + 1,
            "status": status,
            "stats": stats,
        }
        if error:
            event["error"] = error
        self.events.append(event)
        deadline = asyncio.get_running_loop().time() + patience
        pause = 0.1
        while not await self.sync():
            if asyncio.get_running_loop().time() + pause > deadline:
                return False
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)
        return True

    async def sync(self) -> bool:
        """Write every event the log does not hold yet; return whether it now holds them all."""
        async with self._lock:
            if self.logged == self.seq:
                return True
            try:
                try:
                    await _writer().write(self)
                except LogLost:
                    await _writer().write(self)  # at once, the whole log from its first event
            except (redis.RedisError, OSError, TimeoutError) as exc:
                self.failures += 1
                if self.failures == 1 or self.failures % 50 == 0:
                    logger.warning(
                        "generation %s: the token log could not be written (%s: %s); %d events "
                        "wait for Redis",
                        self.generation_id,
                        type(exc).__name__,
                        exc,
                        self.seq - self.logged,
                    )
                return False
            if self.failures:
                logger.info("generation %s: the token log is written again", self.generation_id)
                self.failures = 0
            return True

    def text(self) -> str:
        """The text of every chunk numbered so far (logged or not)."""
        return "".join(e["text"] for e in self.events if e["type"] == "chunk")

    def unwritten(self) -> list[LogEvent]:
        return self.events if self.lost else self.events[self.logged - self.base :]


class LogLost(redis.RedisError):
    """The token log of a generation is gone: Redis came back empty, or it expired."""


def _already_logged(error: BaseException) -> bool:
    # A retried write whose first try did land: an entry id at or below the log's top.
    return isinstance(error, redis.ResponseError) and "equal or smaller" in str(error)


class _Writer:
    """Write the events of every generation on a loop in shared pipelines.

    Events that arrive while a pipeline is in flight leave together in the
    next one: one round trip carries many streams' log appends and
    announcements. A failed command fails only its own publisher's write,
    and a pipeline that hangs is given up after WRITE_TIMEOUT seconds.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[Publisher, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._announcer = _Announcer(get_channel_layer())
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def write(self, publisher: Publisher) -> None:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((publisher, future))
        self._wake.set()
        await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            try:
                async with asyncio.timeout(WRITE_TIMEOUT):
                    errors = await self._execute([publisher for publisher, _ in batch])
            except asyncio.CancelledError:
                for _, future in batch:
                    future.cancel()
                raise
            except Exception as exc:  # every waiter must hear of it
                errors = [exc] * len(batch)
            for (_, future), error in zip(batch, errors, strict=True):
                if not future.done():
                    future.set_exception(error) if error else future.set_result(None)

    async def _execute(self, batch: list[Publisher]) -> list[BaseException | None]:
        """Run the batch in one pipeline; return each publisher's first error, or None."""
        ttl, plans = settings.GENERATION["LOG_TTL"], []
        announcer = self._announcer
        async with async_client().pipeline(transaction=False) as pipe:
            for publisher in batch:
                events = publisher.unwritten()
                rewrite = publisher.lost
                for index, event in enumerate(events):
                    # Only the first entry creates the log: a log missing later means Redis
                    # lost it, and the publisher then writes every event it has again.
                    creates = event["seq"] == publisher.base + 1 or (rewrite and index == 0)
                    pipe.xadd(
                        publisher.log_key,
                        {"e": json.dumps(event)},
                        id=f"0-{event['seq']}",
                        nomkstream=not creates,
                    )
                # The log's TTL outlasts GENERATION_MAX_DURATION: set at the start and the end.
                expire = rewrite or events[0]["seq"] == publisher.base + 1
                expire = expire or events[-1]["type"] == "done"
                if expire:
                    pipe.expire(publisher.log_key, ttl)
                fresh = [e for e in events if e["seq"] > publisher.announced]
                announced = sum(announcer.add_to(pipe, publisher.group, e) for e in fresh)
                plans.append((publisher, events, len(events), expire, announced, fresh))
            results = await pipe.execute(raise_on_error=False)
        errors: list[BaseException | None] = []
        start = 0
        for publisher, events, appends, expire, announced, fresh in plans:
            mine = results[start : start + appends + expire + announced]
            start += len(mine)
            appended = mine[:appends]
            failed: list[BaseException] = [
                r for r in mine if isinstance(r, Exception) and not _already_logged(r)
            ]
            if any(r is None for r in appended):  # NOMKSTREAM found no log
                publisher.lost = True
                failed.insert(0, LogLost(f"the token log of {publisher.generation_id} is gone"))
            elif not failed:
                publisher.lost = False
                publisher.logged = events[-1]["seq"]
            if not announcer.pipelined and not failed:
                sent = await asyncio.gather(
                    *(announcer.send(publisher.group, e) for e in fresh), return_exceptions=True
                )
                failed += [s for s in sent if isinstance(s, BaseException)]
            if announced or not announcer.pipelined:
                publisher.announced = max(publisher.announced, fresh[-1]["seq"] if fresh else 0)
            errors.append(failed[0] if failed else None)
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


_writers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Writer] = (
    weakref.WeakKeyDictionary()
)


def _writer() -> _Writer:
    loop = asyncio.get_running_loop()
    writer = _writers.get(loop)
    if writer is None or writer.task.done():  # a writer that ended for any reason is replaced
        writer = _writers[loop] = _Writer()
    return writer


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
    publisher.skip_to(after_seq)
    await publisher.done(status=status, stats={}, error=error, patience=END_PATIENCE)


async def announce(group: str, event: LogEvent | MessageEvent | QueueEvent) -> None:
    """Wake every socket of ``group`` up with ``event``."""
    await get_channel_layer().group_send(group, _relay_message(event))


def _positions_key(queue: str) -> str:
    return f"gatehouse:queue:{queue}"


async def queue_positions_publish(queue: str, waiting: list[tuple[str, str, int]]) -> None:
    """Keep where each waiting generation of ``queue`` stands, for pages that subscribe
    later, and tell the pages following them now. ``waiting``: (id, group, position)."""
    key = _positions_key(queue)
    async with async_client().pipeline(transaction=True) as pipe:
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
    position = await async_client().hget(_positions_key(queue), generation_id)
    if position is None:
        return None
    return {"type": "queue", "generation": generation_id, "position": int(position)}


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


def redis_memory_age() -> tuple[float, bool]:
    """Return how long Redis has held the relay's state (heartbeats, queue, logs), in
    seconds, and whether this call is the first to look since it was empty.

    A Redis that restarted empty has lost every live worker's heartbeat and every
    queued task: the reaper must not take a missing beat for a dead worker until
    the workers have had time to beat again, and re-queues what was waiting.
    """
    client = sync_client()
    key = "gatehouse:relay:since"
    now = time.time()
    fresh = bool(client.set(key, repr(now), nx=True))
    since = client.get(key)
    return (now - float(since) if since else 0.0), fresh


def cancel_request(generation_id: str) -> None:
    """Ask whichever worker runs ``generation_id`` to stop it."""
    client = sync_client()
    client.set(_key(generation_id, "cancel"), "1", ex=settings.GENERATION["LOG_TTL"])
    client.publish(CANCEL_CHANNEL, generation_id)


async def cancel_requested(generation_id: str) -> bool:
    return bool(await async_client().exists(_key(generation_id, "cancel")))
