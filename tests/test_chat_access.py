"""Only the owner reaches a conversation, and every malformed frame is answered, not obeyed."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async

from inference import relay
from tests.factories import ConversationFactory, MessageFactory, reply_factory
from tests.ws import connect, open_socket
from webapp.chat.models import Message, Role
from webapp.generations.models import Generation, Status

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def someone_elses_reply(db, openai_model):
    conversation = ConversationFactory(model=openai_model)
    question = MessageFactory(conversation=conversation, role=Role.USER, content="Secret question")
    return reply_factory(conversation=conversation, parent=question, status=Status.STREAMING)


async def test_anonymous_visitors_are_told_they_are_signed_out_and_disconnected():
    connected, socket = await open_socket(None)
    assert connected  # accepted only to say why, with a close code the browser can read
    assert await socket.communicator.receive_output(timeout=2) == {
        "type": "websocket.close",
        "code": 4401,
    }


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://localhost:8080",  # another port of the same host
        "https://localhost",  # another scheme
        "http://localhost.evil.example",
        "null",
        "",
    ],
)
async def test_a_socket_from_another_origin_is_refused(user, origin):
    connected, _ = await open_socket(user, origin=origin)
    assert not connected


async def test_a_socket_from_the_sites_own_origin_is_accepted(user):
    connected, socket = await open_socket(user, origin="http://localhost")
    assert connected
    await socket.close()


async def test_json_nested_deep_gets_an_error_and_the_socket_stays_usable(user):
    socket = await connect(user)
    await socket.send("[" * 100_000 + "]" * 100_000)
    assert (await socket.receive())["code"] == "bad_json"
    await socket.send({"type": "dance"})
    assert (await socket.receive())["code"] == "unknown_type"
    await socket.close()


async def test_subscribing_to_someone_elses_conversation_is_refused_and_hears_nothing(
    user, someone_elses_reply
):
    conversation = someone_elses_reply.conversation
    socket = await connect(user)
    await socket.send({"type": "subscribe", "conversation": str(conversation.pk), "after_seq": 0})
    assert (await socket.receive())["code"] == "not_found"

    await relay.announce(
        conversation.group,
        {
            "type": "chunk",
            "generation": str(someone_elses_reply.generation_id),
            "seq": 1,
            "text": "leak",
        },
    )
    assert await socket.is_quiet()
    await socket.close()


async def test_posting_into_someone_elses_conversation_is_refused_and_saves_nothing(
    user, someone_elses_reply
):
    conversation = someone_elses_reply.conversation
    socket = await connect(user)
    await socket.send({"type": "send", "conversation": str(conversation.pk), "content": "Hijack"})
    assert (await socket.receive())["code"] == "not_found"
    assert await Message.objects.filter(conversation=conversation).acount() == 2
    await socket.close()


@pytest.mark.parametrize("frame_type", ["stop", "regenerate", "subscribe"])
async def test_stopping_regenerating_or_watching_someone_elses_reply_is_refused(
    user, someone_elses_reply, frame_type
):
    generation_id = str(someone_elses_reply.generation_id)
    frames = {
        "stop": {"type": "stop", "generation": generation_id},
        "regenerate": {"type": "regenerate", "message": str(someone_elses_reply.pk)},
        "subscribe": {"type": "subscribe", "generation": generation_id, "after_seq": 0},
    }
    socket = await connect(user)
    await socket.send(frames[frame_type])
    assert (await socket.receive())["code"] == "not_found"
    await relay.announce(
        someone_elses_reply.conversation.group,
        {"type": "chunk", "generation": generation_id, "seq": 1, "text": "leak"},
    )
    assert await socket.is_quiet()
    generation = await Generation.objects.aget(pk=generation_id)
    assert generation.status == Status.STREAMING
    assert await Message.objects.filter(conversation=someone_elses_reply.conversation).acount() == 2
    await socket.close()


BAD_FRAMES = [
    ("not json at all", "bad_json"),
    ("[1, 2]", "bad_frame"),
    ('{"type": 5}', "bad_frame"),
    ('{"type": "dance"}', "unknown_type"),
    ('{"type": "subscribe"}', "bad_frame"),
    (
        '{"type": "subscribe", "conversation": "x", '
        '"generations": {"0b6f8c2e-6d7a-4c1e-8a34-3f0f6a1d2c11": "ten"}}',
        "bad_frame",
    ),
    ('{"type": "subscribe", "conversation": "not-a-uuid"}', "not_found"),
    ('{"type": "stop"}', "bad_frame"),
    ('{"type": "stop", "generation": ["a"]}', "bad_frame"),
    ('{"type": "stop", "generation": "not-a-uuid"}', "not_found"),
    (
        '{"type": "subscribe", "generation": "x", "after_seq": 1000000000000000000000000000000}',
        "bad_frame",
    ),
    ('{"type": "subscribe", "generation": "x", "after_seq": -1}', "bad_frame"),
    ('{"type": "subscribe", "conversation": "x", "generations": [1]}', "bad_frame"),
    ('{"type": "subscribe", "conversation": "x", "generations": {"nope": 1}}', "bad_frame"),
    ('{"type": "subscribe", "conversation": "x", "latest": "nope"}', "bad_frame"),
    ('{"type": "regenerate", "message": "x", "same_settings": "yes"}', "bad_frame"),
    ('{"type": "send", "conversation": "x", "content": "hi", "parent": "nope"}', "bad_frame"),
]


@pytest.mark.parametrize(("text", "code"), BAD_FRAMES)
async def test_malformed_frames_get_an_error_frame_and_the_socket_stays_open(user, text, code):
    socket = await connect(user)
    await socket.send(text)
    frame = await socket.receive()
    assert frame["type"] == "error" and frame["code"] == code and frame["detail"]
    await socket.send({"type": "dance"})
    assert (await socket.receive())["code"] == "unknown_type"  # still open, still answering
    await socket.close()


async def test_a_binary_frame_or_an_oversized_frame_is_refused(user):
    socket = await connect(user)
    await socket.communicator.send_to(bytes_data=b"\x00\x01")
    assert (await socket.receive())["code"] == "bad_frame"
    await socket.send(json.dumps({"type": "send", "content": "x" * 300_000}))
    assert (await socket.receive())["code"] == "too_large"
    await socket.close()


@pytest.fixture
def own_conversation(user, openai_model):
    conversation = ConversationFactory(user=user, model=openai_model)
    MessageFactory(conversation=conversation, role=Role.USER, content="Hi")
    return conversation


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"content": ""}, "invalid"),
        ({"content": "   \n "}, "invalid"),
        ({"content": 42}, "bad_frame"),
        ({"content": "a" * 40_000}, "invalid"),
        ({"content": "nul \x00 byte"}, "invalid"),
        ({"content": "ok", "client_id": "not-a-uuid"}, "bad_frame"),
    ],
)
async def test_bad_sends_are_refused_and_save_nothing(user, own_conversation, fields, code):
    socket = await connect(user)
    await socket.send({"type": "send", "conversation": str(own_conversation.pk), **fields})
    assert (await socket.receive())["code"] == code
    assert await Message.objects.filter(conversation=own_conversation).acount() == 1
    await socket.close()


async def messages(socket, count: int) -> list[dict]:
    """The next ``count`` message frames, skipping the chunks of replies streaming meanwhile."""
    found: list[dict] = []
    while len(found) < count:
        frame = await socket.receive()
        if frame["type"] == "message":
            found.append(frame)
    return found


async def test_a_resend_with_the_same_client_id_creates_one_message(user, own_conversation):
    socket = await connect(user)
    frame = {
        "type": "send",
        "conversation": str(own_conversation.pk),
        "content": "Once",
        "client_id": "0b6f8c2e-6d7a-4c1e-8a34-3f0f6a1d2c11",
    }
    await socket.send(frame)
    first = await messages(socket, 2)
    await socket.send(frame)
    second = await messages(socket, 2)  # the reply may stream meanwhile: chunks are skipped
    assert [f["message"]["id"] for f in first] == [f["message"]["id"] for f in second]
    assert await Message.objects.filter(conversation=own_conversation, content="Once").acount() == 1
    await socket.close()


async def test_sending_after_a_reply_that_is_still_running_is_refused_as_busy(
    user, own_conversation
):
    question = await Message.objects.aget(conversation=own_conversation)
    await database_sync_to_async(reply_factory)(
        conversation=own_conversation, parent=question, status=Status.STREAMING
    )
    socket = await connect(user)
    await socket.send({"type": "send", "conversation": str(own_conversation.pk), "content": "More"})
    frame = await socket.receive()
    assert frame["code"] == "busy" and "stop" in frame["detail"]
    assert await Message.objects.filter(conversation=own_conversation).acount() == 2
    await socket.close()


async def test_a_send_after_a_finished_reply_goes_through_while_another_branch_runs(
    user, own_conversation
):
    question = await Message.objects.aget(conversation=own_conversation)
    finished = await database_sync_to_async(reply_factory)(
        conversation=own_conversation, parent=question, status=Status.DONE, text="Answer one"
    )
    await database_sync_to_async(reply_factory)(
        conversation=own_conversation, parent=question, status=Status.STREAMING
    )
    socket = await connect(user)
    frame = {"type": "send", "conversation": str(own_conversation.pk), "content": "Go on"}
    await socket.send({**frame, "parent": str(finished.pk)})
    # The reply may begin to stream (a worker is about) before both messages are echoed.
    frames = [await socket.receive()]
    while len(echoed := [f["message"] for f in frames if f["type"] == "message"]) < 2:
        assert frames[-1]["type"] != "error", frames
        frames.append(await socket.receive())
    assert [m["role"] for m in echoed] == ["user", "assistant"]
    assert echoed[0]["parent"] == str(finished.pk)
    generation = await Generation.objects.aget(pk=echoed[1]["generation"]["id"])
    assert [m["content"] for m in generation.messages] == ["Hi", "Answer one", "Go on"]
    await socket.close()


async def test_a_user_who_lost_access_to_the_model_cannot_send(user, own_conversation):
    model = own_conversation.model
    model.access_policy = "gated"
    await model.asave()
    socket = await connect(user)
    await socket.send({"type": "send", "conversation": str(own_conversation.pk), "content": "Hi"})
    assert (await socket.receive())["code"] == "forbidden"
    await socket.close()


async def test_stopping_a_queued_reply_ends_it_without_a_worker(user, own_conversation):
    question = await Message.objects.aget(conversation=own_conversation)
    reply = await database_sync_to_async(reply_factory)(
        conversation=own_conversation, parent=question, status=Status.QUEUED
    )
    generation_id = str(reply.generation_id)
    socket = await connect(user)
    await socket.send({"type": "subscribe", "conversation": str(own_conversation.pk)})
    await socket.send({"type": "stop", "generation": generation_id})
    done = (await socket.receive_until("done"))[-1]
    assert (done["generation"], done["status"]) == (generation_id, "stopped")
    assert (await Generation.objects.aget(pk=generation_id)).status == Status.STOPPED


async def test_a_socket_follows_at_most_so_many_conversations(user, openai_model):
    from webapp.chat.consumers import MAX_WATCHED

    conversations = [
        await database_sync_to_async(ConversationFactory)(user=user, model=openai_model)
        for _ in range(MAX_WATCHED + 1)
    ]
    socket = await connect(user)
    for conversation in conversations[:MAX_WATCHED]:
        await socket.send({"type": "subscribe", "conversation": str(conversation.pk)})
    assert await socket.is_quiet(0.5)  # every one of them taken, nothing to replay
    await socket.send({"type": "subscribe", "conversation": str(conversations[-1].pk)})
    refused = await socket.receive()
    assert refused["code"] == "too_many_subscriptions"
    await socket.send({"type": "subscribe", "conversation": str(conversations[0].pk)})
    assert await socket.is_quiet(0.3)  # one it follows already is fine
    await socket.close()
