"""The shared writer: every publisher's log appends and announcements of one event
loop leave in one Redis pipeline."""

from __future__ import annotations

import asyncio
import json
import weakref
from typing import TYPE_CHECKING, Any, NamedTuple

import redis
from channels.layers import get_channel_layer
from django.conf import settings

from . import clients
from .announcements import _Announcer
from .events import LogEvent

if TYPE_CHECKING:
    from .publisher import Publisher

WRITE_TIMEOUT = 5.0  # seconds a pipeline of log writes may take before it is given up


class LogLost(redis.RedisError):
    """The token log of a generation is gone: Redis came back empty, or it expired."""


def _already_logged(error: BaseException) -> bool:
    # A retried write whose first try did land: an entry id at or below the log's top.
    return isinstance(error, redis.ResponseError) and "equal or smaller" in str(error)


class _Plan(NamedTuple):
    """What one publisher queued in a pipeline, to read its replies by."""

    publisher: Publisher
    events: list[LogEvent]
    appends: int
    expire: bool
    announced: int  # announcements that joined the pipeline
    fresh: list[LogEvent]  # the events not announced before


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
        async with clients.async_client().pipeline(transaction=False) as pipe:
            for publisher in batch:
                plans.append(self._queue(pipe, publisher, ttl))
            results = await pipe.execute(raise_on_error=False)
        errors: list[BaseException | None] = []
        start = 0
        for plan in plans:
            mine = results[start : start + plan.appends + plan.expire + plan.announced]
            start += len(mine)
            errors.append(await self._settle(plan, mine))
        return errors

    def _queue(self, pipe: Any, publisher: Publisher, ttl: int) -> _Plan:
        """Add the publisher's unwritten events to ``pipe``, and their announcements."""
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
        announced = sum(self._announcer.add_to(pipe, publisher.group, e) for e in fresh)
        return _Plan(publisher, events, len(events), expire, announced, fresh)

    async def _settle(self, plan: _Plan, mine: list[Any]) -> BaseException | None:
        """Read the publisher's replies ``mine``: note what the log now holds, send the
        announcements a pipeline could not carry; return its first error, or None."""
        publisher, events, appends, _, announced, fresh = plan
        announcer = self._announcer
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
        return failed[0] if failed else None


_writers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Writer] = (
    weakref.WeakKeyDictionary()
)


def _writer() -> _Writer:
    loop = asyncio.get_running_loop()
    writer = _writers.get(loop)
    if writer is None or writer.task.done():  # a writer that ended for any reason is replaced
        writer = _writers[loop] = _Writer()
    return writer
