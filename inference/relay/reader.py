"""Read a generation's token log back: the events after a seq, or its text so far."""

from __future__ import annotations

import json

from . import clients
from .clients import _key
from .events import LogEvent


async def log_read(generation_id: str, *, after_seq: int = 0) -> list[LogEvent]:
    """Return the logged events of a generation with a seq above ``after_seq``."""
    entries = await clients.async_client().xrange(_key(generation_id, "log"), min=f"(0-{after_seq}")
    # redis-py's shared stream parser admits None replies and entries; XRANGE never returns them.
    return [json.loads(fields["e"]) for _, fields in entries]  # type: ignore[index, union-attr]


def log_text(generation_id: str) -> tuple[str, int]:
    """Return the text logged so far for a generation and the number of chunks."""
    entries = clients.sync_client().xrange(_key(generation_id, "log"))
    # redis-py's shared stream parser admits None replies and entries; XRANGE never returns them.
    events = [json.loads(fields["e"]) for _, fields in entries]  # type: ignore[index, union-attr]
    chunks = [event["text"] for event in events if event["type"] == "chunk"]
    return "".join(chunks), len(chunks)
