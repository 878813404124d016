"""Follow one generation from an async view: its token log, then its live announcements.

As the chat consumer does for a socket: join the generation's channel-layer
group first, read the log from the start, then take live events in ``seq``
order, dropping duplicates and filling a gap from the log. The database is
read only when the generation has gone quiet for a long while (its worker
may be gone and the log with it), never per token.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from channels.layers import get_channel_layer

from inference import relay

QUIET = 5.0  # seconds without an event after which the log is read again
PATIENCE = 12  # quiet periods (a minute) before the saved generation is asked how it ended

# Given the generation id, return its end as a done event if it has ended, else None.
Ended = Callable[[], Awaitable[relay.DoneEvent | None]]


class Waiting:
    """A tick with no event: the caller may keep its connection alive (an SSE comment)."""


async def generation_follow(
    generation_id: str, group: str, *, ended: Ended
) -> AsyncGenerator[relay.LogEvent | Waiting, None]:
    """Yield the generation's chunk events in order, then its done event.

    A ``Waiting`` comes every QUIET seconds while nothing happens (queued
    behind others, a slow first token). ``ended`` is asked after PATIENCE of
    those in a row: a generation whose log is gone ends as it was saved.
    """
    layer = get_channel_layer()
    await _keep_listening(layer)
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    # receive() is never cancelled by a timeout here: the pub/sub layer drops the
    # channel's subscription when it is. Only the end of the follow cancels it.
    reader = asyncio.create_task(_receive(layer, channel, inbox))
    try:
        last, quiet = 0, 0
        pending = await relay.log_read(generation_id, after_seq=0)
        while True:
            for event in pending:
                if event["seq"] <= last:
                    continue
                last, quiet = event["seq"], 0
                yield event
                if event["type"] == "done":
                    return
            arrived = await _next(inbox, generation_id, last)
            if arrived is not None:
                pending = arrived
            else:  # quiet: the log has anything an announcement missed
                quiet += 1
                pending = await relay.log_read(generation_id, after_seq=last)
                if pending:
                    continue
                if quiet % PATIENCE == 0:
                    done = await ended()
                    if done is not None:
                        pending = [{**done, "seq": last + 1}]
                        continue
                yield Waiting()
    finally:
        reader.cancel()
        with contextlib.suppress(BaseException):
            await reader
        with contextlib.suppress(Exception):
            await asyncio.shield(layer.group_discard(group, channel))


# One channel per event loop that stays subscribed: channels-redis' pub/sub layer pauses
# its reader for 100 ms whenever nothing is subscribed, so a call arriving in a quiet
# process would hear its first event that much later (measured: bench/api.py).
_listening: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, str] = weakref.WeakKeyDictionary()


async def _keep_listening(layer: Any) -> None:
    loop = asyncio.get_running_loop()
    if loop not in _listening:
        _listening[loop] = await layer.new_channel("api.listening.")


async def _receive(layer: Any, channel: str, inbox: asyncio.Queue[dict[str, Any]]) -> None:
    while True:
        inbox.put_nowait(await layer.receive(channel))


async def _next(
    inbox: asyncio.Queue[dict[str, Any]], generation_id: str, last: int
) -> list[relay.LogEvent] | None:
    """Return the next events after ``last`` (from the log when one was skipped), or None
    after QUIET seconds with nothing for this generation."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + QUIET
    while (left := deadline - loop.time()) > 0:
        try:
            message = await asyncio.wait_for(inbox.get(), left)
        except TimeoutError:
            return None
        event: Any = message.get("event") or {}
        if event.get("type") not in ("chunk", "done") or event.get("generation") != generation_id:
            continue  # a queue position: nothing to relay
        if event["seq"] <= last:
            continue
        if event["seq"] == last + 1:
            return [event]
        return await relay.log_read(generation_id, after_seq=last)
    return None
