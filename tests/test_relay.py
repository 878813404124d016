"""The token log: ordered, never written twice, replayable after any seq."""

from __future__ import annotations

import asyncio
import uuid

import redis

from inference import relay


def fresh_id() -> str:
    return str(uuid.uuid4())


async def test_chunks_are_logged_in_order_and_replayed_after_any_seq():
    publisher = relay.Publisher(fresh_id(), "conversation.test")
    for text in ["a", "b", "c"]:
        await publisher.chunk(text)
    await publisher.done(status="done", stats={}, error=None)

    replay = await relay.log_read(publisher.generation_id, after_seq=1)
    assert [(e["type"], e["seq"]) for e in replay] == [("chunk", 2), ("chunk", 3), ("done", 4)]
    assert await asyncio.to_thread(relay.log_text, publisher.generation_id) == ("abc", 3)


async def test_a_seq_logged_twice_fails_alone_and_leaves_other_streams_untouched():
    first, second = relay.Publisher(fresh_id(), "g.1"), relay.Publisher(fresh_id(), "g.2")
    await first.chunk("once")
    first.seq = 0  # a bug that reuses seq 1 must not overwrite the log
    results = await asyncio.gather(
        first.chunk("twice"), second.chunk("other"), return_exceptions=True
    )
    assert isinstance(results[0], redis.ResponseError)
    assert results[1] is None
    assert [e["text"] for e in await relay.log_read(first.generation_id)] == ["once"]
    assert [e["text"] for e in await relay.log_read(second.generation_id)] == ["other"]


async def test_the_log_expires(settings):
    publisher = relay.Publisher(fresh_id(), "g.3")
    await publisher.chunk("x")
    ttl = await relay.async_client().ttl(f"gatehouse:gen:{publisher.generation_id}:log")
    assert 0 < ttl <= settings.GENERATION["LOG_TTL"]


async def _announced_to_a_group_member(group: str) -> dict:
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    publisher = relay.Publisher(fresh_id(), group)
    await publisher.chunk("hello")
    message = await asyncio.wait_for(layer.receive(channel), timeout=5)
    await layer.group_discard(group, channel)
    return message


async def test_with_the_pubsub_layer_announcements_ride_in_the_relays_own_pipeline():
    from channels.layers import get_channel_layer

    assert relay._Announcer(get_channel_layer()).pipelined
    message = await _announced_to_a_group_member("g.pipelined")
    assert message["type"] == "relay.event"
    assert (message["event"]["text"], message["event"]["seq"]) == ("hello", 1)


async def test_any_other_channel_layer_gets_the_announcements_through_group_send(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    from channels.layers import get_channel_layer

    assert not relay._Announcer(get_channel_layer()).pipelined
    message = await _announced_to_a_group_member("g.fallback")
    assert (message["event"]["text"], message["event"]["seq"]) == ("hello", 1)
