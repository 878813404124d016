"""Following one generation from an API view: the token log first, then live announcements in
order, a missed one filled from the log, and the saved record when the log is gone (real
Redis and the channel layer)."""

from __future__ import annotations

import asyncio
import json
import uuid

from inference import relay
from webapp.api import follow
from webapp.api.follow import Waiting, generation_follow


async def nothing_saved():
    return None


async def collect(events, into: list) -> None:
    async for event in events:
        into.append(event)


async def until(condition, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def subscribed(group: str) -> None:
    """Wait until the follower's subscription to ``group`` has reached Redis."""
    from channels.layers import get_channel_layer

    channel = relay.announcements._pubsub_group_channel(get_channel_layer())(group)
    client = relay.async_client()
    async with asyncio.timeout(5):
        while not (await client.pubsub_numsub(channel))[0][1]:
            await asyncio.sleep(0.01)


async def test_a_follower_reads_what_was_logged_then_takes_live_events_in_order():
    generation_id = str(uuid.uuid4())
    publisher = relay.Publisher(generation_id, f"generation.{generation_id}")
    await publisher.chunk("Hello")  # before anyone follows: only in the log
    seen: list = []
    task = asyncio.create_task(
        collect(generation_follow(generation_id, publisher.group, ended=nothing_saved), seen)
    )
    await until(lambda: len(seen) == 1)
    await publisher.chunk(" there")
    await publisher.done(status="done", stats={"generated_tokens": 2}, error=None)
    await asyncio.wait_for(task, 5)
    assert [(e["seq"], e["type"]) for e in seen] == [(1, "chunk"), (2, "chunk"), (3, "done")]
    assert "".join(e.get("text", "") for e in seen) == "Hello there"


async def test_an_announcement_that_never_came_is_filled_from_the_log():
    generation_id = str(uuid.uuid4())
    group = f"generation.{generation_id}"
    seen: list = []
    task = asyncio.create_task(
        collect(generation_follow(generation_id, group, ended=nothing_saved), seen)
    )
    await subscribed(group)
    lost = {"type": "chunk", "generation": generation_id, "seq": 1, "text": "lost "}
    await relay.async_client().xadd(
        f"gatehouse:gen:{generation_id}:log", {"e": json.dumps(lost)}, id="0-1"
    )
    publisher = relay.Publisher(generation_id, group)
    publisher.skip_to(1)
    await publisher.chunk("found")
    await publisher.done(status="done", stats={}, error=None)
    await asyncio.wait_for(task, 5)
    assert [e["seq"] for e in seen] == [1, 2, 3]
    assert seen[0]["text"] == "lost "


async def test_a_generation_whose_log_is_gone_ends_as_it_was_saved(monkeypatch):
    monkeypatch.setattr(follow, "QUIET", 0.05)
    monkeypatch.setattr(follow, "PATIENCE", 3)
    asked = []

    async def saved():
        asked.append(1)
        return {"type": "done", "generation": "g", "seq": 0, "status": "done", "stats": {}}

    seen: list = []
    generation_id = str(uuid.uuid4())
    events = generation_follow(generation_id, f"generation.{generation_id}", ended=saved)
    await asyncio.wait_for(collect(events, seen), 5)
    assert [type(e) for e in seen[:2]] == [Waiting, Waiting]
    assert seen[-1]["type"] == "done" and seen[-1]["seq"] == 1
    assert asked == [1]
