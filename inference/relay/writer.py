"""The shared writer: every publisher's log appends and announcements of one event
loop leave in one Redis command.

That command runs a Lua script (``_WRITE``): redis-py spent about 60 µs of the
worker's one loop to queue and read back each event's XADD and PUBLISH in a
pipeline, against about 15 µs for the script's arguments (bench figures in
docs/performance.md).
"""

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

WRITE_TIMEOUT = 5.0  # seconds a write of log events may take before it is given up


class LogLost(redis.RedisError):
    """The token log of a generation is gone: Redis came back empty, or it expired."""


def _already_logged(reply: str) -> bool:
    # A retried write whose first try did land: an entry id at or below the log's top.
    return "equal or smaller" in reply


class _Plan(NamedTuple):
    """What one publisher put in a write, to read its replies by."""

    publisher: Publisher
    events: list[LogEvent]
    announced: int  # announcements that joined the write
    fresh: list[LogEvent]  # the events not announced before


# KEYS: one log key per event. ARGV[1]: the logs' TTL in seconds; then six values per
# event: its entry id, '1' if it creates the log, its JSON, '1' to set the log's TTL
# after it, the channel to announce it on ('' for none) and the announcement.
# Returns, per event, 'ok', 'gone' (no log to append to), or the error's text; every
# command runs whatever the ones before it answered, as in a pipeline.
_WRITE = """
local out = {}
for i = 1, #KEYS do
  local a = 2 + (i - 1) * 6
  local res
  if ARGV[a + 1] == '1' then
    res = redis.pcall('XADD', KEYS[i], ARGV[a], 'e', ARGV[a + 2])
  else
    res = redis.pcall('XADD', KEYS[i], 'NOMKSTREAM', ARGV[a], 'e', ARGV[a + 2])
  end
  if type(res) == 'table' and res.err then
    out[i] = res.err
  elseif not res then
    out[i] = 'gone'
  else
    out[i] = 'ok'
  end
  if ARGV[a + 3] == '1' then
    redis.pcall('EXPIRE', KEYS[i], ARGV[1])
  end
  if ARGV[a + 4] ~= '' then
    redis.pcall('PUBLISH', ARGV[a + 4], ARGV[a + 5])
  end
end
return out
"""


class _Writer:
    """Write the events of every generation on a loop in shared writes.

    Events that arrive while a write is in flight leave together in the
    next one: one round trip carries many streams' log appends and
    announcements. A failed command fails only its own publisher's write,
    and a write that hangs is given up after WRITE_TIMEOUT seconds.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[Publisher, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._announcer = _Announcer(get_channel_layer())
        self._script = clients.async_client().register_script(_WRITE)
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
        """Write the batch in one command; return each publisher's first error, or None."""
        keys: list[str] = []
        args: list[Any] = [settings.GENERATION["LOG_TTL"]]
        plans = [self._queue(keys, args, publisher) for publisher in batch]
        client = clients.async_client()
        replies = await self._script(keys=keys, args=args, client=client)
        errors: list[BaseException | None] = []
        start = 0
        for plan in plans:
            mine = replies[start : start + len(plan.events)]
            start += len(mine)
            errors.append(await self._settle(plan, mine))
        return errors

    def _queue(self, keys: list[str], args: list[Any], publisher: Publisher) -> _Plan:
        """Add the publisher's unwritten events to the write, and their announcements."""
        events = publisher.unwritten()
        rewrite = publisher.lost
        # The log's TTL outlasts GENERATION_MAX_DURATION: set at the start and the end.
        expire = rewrite or events[0]["seq"] == publisher.base + 1
        expire = expire or events[-1]["type"] == "done"
        fresh, announced = [], 0
        for index, event in enumerate(events):
            # Only the first entry creates the log: a log missing later means Redis
            # lost it, and the publisher then writes every event it has again.
            creates = event["seq"] == publisher.base + 1 or (rewrite and index == 0)
            channel, message = "", b""
            if event["seq"] > publisher.announced:
                fresh.append(event)
                announcement = self._announcer.announcement(publisher.group, event)
                if announcement is not None:
                    (channel, message), announced = announcement, announced + 1
            keys.append(publisher.log_key)
            last = index == len(events) - 1
            args += [
                f"0-{event['seq']}",
                "1" if creates else "0",
                json.dumps(event),
                "1" if expire and last else "0",
                channel,
                message,
            ]
        return _Plan(publisher, events, announced, fresh)

    async def _settle(self, plan: _Plan, mine: list[str]) -> BaseException | None:
        """Read the publisher's replies ``mine``: note what the log now holds, send the
        announcements the write could not carry; return its first error, or None."""
        publisher, events, announced, fresh = plan
        announcer = self._announcer
        failed: list[BaseException] = [
            redis.ResponseError(reply)
            for reply in mine
            if reply not in ("ok", "gone") and not _already_logged(reply)
        ]
        if "gone" in mine:  # NOMKSTREAM found no log
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
