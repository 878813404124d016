"""Number one generation's events and keep them until its token log holds them all."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import redis

from .clients import _key
from .events import ChunkEvent, DoneEvent, LogEvent, TokenDetail
from .writer import LogLost, _writer

END_PATIENCE = 30.0  # seconds an end is retried while Redis is away

logger = logging.getLogger(__name__)


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
        stats: dict[str, Any] | None,
        error: dict[str, str] | None,
        patience: float = 0.0,
    ) -> bool:
        """Log and announce the end, trying for ``patience`` seconds while Redis is away.
        ``stats`` None: the event carries none (a blind generation's)."""
        event: DoneEvent = {
            "type": "done",
            "generation": self.generation_id,
            "seq": self.seq + 1,
            "status": status,
        }
        if stats is not None:
            event["stats"] = stats
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
