"""The token log: ordered, never written twice, replayable after any seq."""

from __future__ import annotations

import asyncio
import socket
import uuid

import redis
import redis.asyncio

from inference import relay


def fresh_id() -> str:
    return str(uuid.uuid4())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_chunks_are_logged_in_order_and_replayed_after_any_seq():
    publisher = relay.Publisher(fresh_id(), "conversation.test")
    for text in ["a", "b", "c"]:
        await publisher.chunk(text)
    await publisher.done(status="done", stats={}, error=None)

    replay = await relay.log_read(publisher.generation_id, after_seq=1)
    assert [(e["type"], e["seq"]) for e in replay] == [("chunk", 2), ("chunk", 3), ("done", 4)]
    assert await asyncio.to_thread(relay.log_text, publisher.generation_id) == ("abc", 3)


async def test_a_write_that_landed_twice_is_not_logged_twice_and_spares_other_streams():
    first, second = relay.Publisher(fresh_id(), "g.1"), relay.Publisher(fresh_id(), "g.2")
    await first.chunk("once")
    first.logged = 0  # as if the reply to that write was lost: the next write carries it again
    results = await asyncio.gather(first.chunk("twice"), second.chunk("other"))
    assert results == [True, True]
    assert [e["text"] for e in await relay.log_read(first.generation_id)] == ["once", "twice"]
    assert [e["text"] for e in await relay.log_read(second.generation_id)] == ["other"]


async def test_events_numbered_while_redis_is_away_are_written_when_it_answers(monkeypatch):
    publisher = relay.Publisher(fresh_id(), "g.away")
    assert await publisher.chunk("a")
    working = relay.async_client()
    closed = redis.asyncio.Redis(port=free_port(), socket_connect_timeout=0.5, retry=None)
    # Every module of the relay reads its client through relay.clients: replaced there, for all.
    monkeypatch.setattr(relay.clients, "async_client", lambda: closed)
    assert not await publisher.chunk("b")
    assert not await publisher.chunk("c")
    monkeypatch.setattr(relay.clients, "async_client", lambda: working)
    assert await publisher.done(status="done", stats={}, error=None)
    events = await relay.log_read(publisher.generation_id)
    assert [(e["seq"], e.get("text")) for e in events] == [(1, "a"), (2, "b"), (3, "c"), (4, None)]


async def test_a_log_that_vanished_is_written_again_from_the_first_event():
    publisher = relay.Publisher(fresh_id(), "g.lost")
    await publisher.chunk("a")
    await publisher.chunk("b")
    await relay.async_client().delete(publisher.log_key)  # Redis restarted empty
    assert await publisher.chunk("c")  # finds no log, so writes a, b and c
    events = await relay.log_read(publisher.generation_id)
    assert "".join(e["text"] for e in events) == "abc"
    assert [e["seq"] for e in events] == [1, 2, 3]


async def test_a_write_after_redis_forgot_the_writers_script_loads_it_again():
    publisher = relay.Publisher(fresh_id(), "g.script")
    assert await publisher.chunk("a")
    await relay.async_client().script_flush()  # as a restarted Redis has no scripts
    assert await publisher.chunk("b")
    assert [e["text"] for e in await relay.log_read(publisher.generation_id)] == ["a", "b"]


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

    assert relay.announcements._Announcer(get_channel_layer()).pipelined
    message = await _announced_to_a_group_member("g.pipelined")
    assert message["type"] == "relay.event"
    assert (message["event"]["text"], message["event"]["seq"]) == ("hello", 1)


async def test_any_other_channel_layer_gets_the_announcements_through_group_send(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    from channels.layers import get_channel_layer

    assert not relay.announcements._Announcer(get_channel_layer()).pipelined
    message = await _announced_to_a_group_member("g.fallback")
    assert (message["event"]["text"], message["event"]["seq"]) == ("hello", 1)


async def test_a_layer_whose_sockets_all_closed_hears_the_next_one_at_once(settings, monkeypatch):
    # channels-redis' receiver polls every 100 ms while nothing is subscribed; ours waits
    # for the next subscribe. With the idle check pushed out to 30 s, only that wait
    # can deliver within the 5 s below.
    from inference.relay import layer as layer_module

    monkeypatch.setattr(layer_module, "IDLE_CHECK", 30.0)
    layer = layer_module.PubSubChannelLayer(**settings.CHANNEL_LAYERS["default"]["CONFIG"])
    first = await layer.new_channel()
    receiving = asyncio.create_task(layer.receive(first))
    await asyncio.sleep(0.05)
    receiving.cancel()  # the socket closed: its channel is unsubscribed, nothing is left
    await asyncio.gather(receiving, return_exceptions=True)
    shard = layer._get_layer()._shards[0]
    assert isinstance(shard, layer_module._Shard)
    async with asyncio.timeout(5):  # until the receiver has read Redis' unsubscribe reply
        while shard._pubsub.subscribed:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # and is idle
    try:
        second = await layer.new_channel()
        await layer.send(second, {"type": "relay.event", "event": {"text": "hello"}})
        message = await asyncio.wait_for(layer.receive(second), timeout=5)
        assert message["event"] == {"text": "hello"}
    finally:
        await layer.flush()
