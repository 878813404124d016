"""Only the owner reaches a conversation, and every malformed frame is answered, not obeyed."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async

from inference import relay
from tests.factories import ConversationFactory, MessageFactory
from tests.ws import connect, open_socket
from webapp.chat.models import Message, Role, Status

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def someone_elses_reply(db, openai_model):
    conversation = ConversationFactory(model=openai_model)
    question = MessageFactory(conversation=conversation, role=Role.USER, content="Secret question")
    return MessageFactory(
        conversation=conversation,
        role=Role.ASSISTANT,
        parent=question,
        status=Status.STREAMING,
        content="",
    )


async def test_anonymous_visitors_are_told_they_are_signed_out_and_disconnected():
    connected, socket = await open_socket(None)
    assert connected  # accepted only to say why, with a close code the browser can read
    assert await socket.communicator.receive_output(timeout=2) == {
        "type": "websocket.close",
        "code": 4401,
    }


async def test_a_socket_from_a_foreign_origin_is_refused(user):
    connected, _ = await open_socket(user, origin="https://evil.example")
    assert not connected


async def test_subscribing_to_someone_elses_conversation_is_refused_and_hears_nothing(
    user, someone_elses_reply
):
    conversation = someone_elses_reply.conversation
    socket = await connect(user)
    await socket.send({"type": "subscribe", "conversation": str(conversation.pk), "after_seq": 0})
    assert (await socket.receive())["code"] == "not_found"

    await relay.announce(
        conversation.group,
        {"type": "chunk", "message": str(someone_elses_reply.pk), "seq": 1, "text": "leak"},
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


@pytest.mark.parametrize("frame_type", ["stop", "regenerate"])
async def test_stopping_or_regenerating_someone_elses_reply_is_refused(
    user, someone_elses_reply, frame_type
):
    socket = await connect(user)
    await socket.send({"type": frame_type, "message": str(someone_elses_reply.pk)})
    assert (await socket.receive())["code"] == "not_found"
    assert (await Message.objects.aget(pk=someone_elses_reply.pk)).status == Status.STREAMING
    assert await Message.objects.filter(conversation=someone_elses_reply.conversation).acount() == 2
    await socket.close()


BAD_FRAMES = [
    ("not json at all", "bad_json"),
    ("[1, 2]", "bad_frame"),
    ('{"type": 5}', "bad_frame"),
    ('{"type": "dance"}', "unknown_type"),
    ('{"type": "subscribe"}', "bad_frame"),
    ('{"type": "subscribe", "conversation": "x", "after_seq": "ten"}', "bad_frame"),
    ('{"type": "subscribe", "conversation": "not-a-uuid"}', "not_found"),
    ('{"type": "stop"}', "bad_frame"),
    ('{"type": "stop", "message": ["a"]}', "bad_frame"),
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


async def test_a_resend_with_the_same_client_id_creates_one_message(user, own_conversation):
    socket = await connect(user)
    frame = {
        "type": "send",
        "conversation": str(own_conversation.pk),
        "content": "Once",
        "client_id": "0b6f8c2e-6d7a-4c1e-8a34-3f0f6a1d2c11",
    }
    await socket.send(frame)
    first = [await socket.receive() for _ in range(2)]
    await socket.send(frame)
    second = [await socket.receive() for _ in range(2)]
    assert [f["message"]["id"] for f in first] == [f["message"]["id"] for f in second]
    assert await Message.objects.filter(conversation=own_conversation, content="Once").acount() == 1
    await socket.close()


async def test_sending_while_a_reply_is_still_running_is_refused_as_busy(user, own_conversation):
    await database_sync_to_async(MessageFactory)(
        conversation=own_conversation, role=Role.ASSISTANT, status=Status.STREAMING
    )
    socket = await connect(user)
    await socket.send({"type": "send", "conversation": str(own_conversation.pk), "content": "More"})
    frame = await socket.receive()
    assert frame["code"] == "busy" and "stop" in frame["detail"]
    assert await Message.objects.filter(conversation=own_conversation).acount() == 2
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
    reply = await database_sync_to_async(MessageFactory)(
        conversation=own_conversation, role=Role.ASSISTANT, status=Status.QUEUED, parent=question
    )
    socket = await connect(user)
    await socket.send({"type": "subscribe", "conversation": str(own_conversation.pk)})
    await socket.send({"type": "stop", "message": str(reply.pk)})
    done = (await socket.receive_until("done"))[-1]
    assert (done["message"], done["status"]) == (str(reply.pk), "stopped")
    assert (await Message.objects.aget(pk=reply.pk)).status == Status.STOPPED
