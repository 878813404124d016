"""Branches: editing an earlier message makes a sibling with its own reply; the branch
the user views is remembered and is the context of the next reply; over the socket too."""

from __future__ import annotations

import uuid

import pytest
from channels.db import database_sync_to_async as sync_to_async

from tests.factories import UserFactory
from tests.ws import connect
from webapp.chat import configure, selectors, services
from webapp.chat.models import Conversation, Message
from webapp.core.errors import NotFound, ValidationFailed
from webapp.generations.models import Generation


def finish(message: Message, text: str) -> None:
    """The reply's generation ended with ``text`` (as the worker would save it)."""
    Generation.objects.filter(pk=message.generation_id).update(status="done", text=text)


def contents(generation_id) -> list[str]:
    return [m["content"] for m in Generation.objects.get(pk=generation_id).messages]


@pytest.fixture
def two_turns(unqueued, user, openai_model):
    """Q1 → A1 → Q2 → A2, both replies done."""
    return _two_turns(user, openai_model)


@pytest.mark.django_db
def test_edit_makes_a_sibling_whose_reply_sees_the_path_to_its_parent(two_turns, user):
    conversation, first, second = two_turns
    edited = services.message_edit(
        user=user, message_id=second.user_message.pk, content="Q2, said better"
    )
    assert edited.user_message.parent_id == first.assistant_message.pk
    assert edited.user_message.pk != second.user_message.pk
    assert contents(edited.assistant_message.generation_id) == ["Q1", "A1", "Q2, said better"]
    assert Message.objects.filter(pk=second.assistant_message.pk).exists()  # the old branch stays
    conversation.refresh_from_db()
    assert conversation.current_leaf_id == edited.assistant_message.pk
    path = selectors.message_path(conversation=conversation, leaf_id=conversation.current_leaf_id)
    assert [m.text for m in path] == ["Q1", "A1", "Q2, said better", ""]


@pytest.mark.django_db
def test_editing_the_first_message_makes_a_second_root(two_turns, user):
    _, first, _ = two_turns
    edited = services.message_edit(user=user, message_id=first.user_message.pk, content="Q1b")
    assert edited.user_message.parent_id is None
    assert contents(edited.assistant_message.generation_id) == ["Q1b"]


@pytest.mark.django_db
def test_the_next_reply_follows_the_branch_selected(two_turns, user):
    conversation, first, second = two_turns
    edited = services.message_edit(user=user, message_id=second.user_message.pk, content="Q2b")
    finish(edited.assistant_message, "A2b")
    configure.conversation_select(
        user=user, conversation_id=conversation.pk, leaf_id=second.assistant_message.pk
    )
    sent = services.message_send(user=user, conversation_id=conversation.pk, content="Q3")
    assert sent.user_message.parent_id == second.assistant_message.pk
    assert contents(sent.assistant_message.generation_id) == ["Q1", "A1", "Q2", "A2", "Q3"]
    # Selected above a fork: the page shows the branch down to the newest message below.
    configure.conversation_select(
        user=user, conversation_id=conversation.pk, leaf_id=first.user_message.pk
    )
    conversation.refresh_from_db()
    path = selectors.message_path(conversation=conversation, leaf_id=conversation.current_leaf_id)
    assert path[-1].pk == sent.assistant_message.pk


@pytest.mark.django_db
def test_a_reply_cannot_be_edited_and_nothing_is_saved(two_turns, user):
    _, _, second = two_turns
    before = Message.objects.count()
    with pytest.raises(ValidationFailed):
        services.message_edit(user=user, message_id=second.assistant_message.pk, content="x")
    for bad in ("", "   ", None, 12, "x" * 100_001):
        with pytest.raises(ValidationFailed):
            services.message_edit(user=user, message_id=second.user_message.pk, content=bad)
    assert Message.objects.count() == before


@pytest.mark.django_db
def test_another_users_ids_are_refused_and_nothing_changes(two_turns):
    conversation, first, second = two_turns
    stranger = UserFactory()
    before = Message.objects.count()
    with pytest.raises(NotFound):
        services.message_edit(user=stranger, message_id=second.user_message.pk, content="mine")
    with pytest.raises(NotFound):
        configure.conversation_select(
            user=stranger, conversation_id=conversation.pk, leaf_id=first.user_message.pk
        )
    # A message of another conversation is not a leaf of this one.
    other = services.conversation_start(user=stranger, model=conversation.model, content="Hi")
    with pytest.raises(NotFound):
        configure.conversation_select(
            user=conversation.user,
            conversation_id=conversation.pk,
            leaf_id=other.user_message.pk,
        )
    for leaf in ("nope", None, str(uuid.uuid4())):
        with pytest.raises(NotFound):
            configure.conversation_select(
                user=conversation.user, conversation_id=conversation.pk, leaf_id=leaf
            )
    assert Message.objects.count() == before + 2
    conversation.refresh_from_db()
    assert conversation.current_leaf_id == second.assistant_message.pk


# ---- over the websocket -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_edit_frame_announces_the_new_branch_and_select_remembers_the_old_one(
    unqueued, user, openai_model
):
    conversation, first, second = await sync_to_async(_two_turns)(user, openai_model)
    socket = await connect(user)
    client_id = str(uuid.uuid4())
    await socket.send(
        {
            "type": "edit",
            "message": str(second.user_message.pk),
            "content": "Q2, again",
            "client_id": client_id,
        }
    )
    frames = [await socket.receive(), await socket.receive()]
    user_frame, reply_frame = (f["message"] for f in frames)
    assert user_frame["role"] == "user" and user_frame["client_id"] == client_id
    assert user_frame["parent"] == str(first.assistant_message.pk)
    assert user_frame["content"] == "Q2, again"
    assert reply_frame["parent"] == user_frame["id"]

    # The same edit resent (a dropped connection) makes no second branch.
    await socket.send(
        {
            "type": "edit",
            "message": str(second.user_message.pk),
            "content": "Q2, again",
            "client_id": client_id,
        }
    )
    again = await socket.receive()
    assert again["message"]["id"] == user_frame["id"]
    await socket.receive()
    assert await sync_to_async(Message.objects.filter(content="Q2, again").count)() == 1

    await socket.send(
        {
            "type": "select",
            "conversation": str(conversation.pk),
            "leaf": str(second.assistant_message.pk),
        }
    )
    assert (await socket.receive())["type"] == "selected"
    saved = await Conversation.objects.aget(pk=conversation.pk)
    assert saved.current_leaf_id == second.assistant_message.pk
    await socket.close()


@pytest.mark.django_db(transaction=True)
async def test_bad_edit_and_select_frames_are_refused_and_change_nothing(
    unqueued, user, openai_model
):
    conversation, first, second = await sync_to_async(_two_turns)(user, openai_model)
    stranger = await sync_to_async(UserFactory)()
    socket = await connect(stranger)
    mine = await connect(user)
    bad = [
        (
            socket,
            {"type": "edit", "message": str(second.user_message.pk), "content": "x"},
            "not_found",
        ),
        (
            socket,
            {
                "type": "select",
                "conversation": str(conversation.pk),
                "leaf": str(first.user_message.pk),
            },
            "not_found",
        ),
        (mine, {"type": "edit", "message": "not-a-uuid", "content": "x"}, "bad_frame"),
        (mine, {"type": "edit", "message": str(second.user_message.pk)}, "bad_frame"),
        (
            mine,
            {"type": "edit", "message": str(second.user_message.pk), "content": ["x"]},
            "bad_frame",
        ),
        (
            mine,
            {"type": "edit", "message": str(second.assistant_message.pk), "content": "x"},
            "invalid",
        ),
        (mine, {"type": "edit", "message": str(second.user_message.pk), "content": " "}, "invalid"),
        (mine, {"type": "select", "conversation": str(conversation.pk), "leaf": 5}, "bad_frame"),
        (mine, {"type": "select", "conversation": str(conversation.pk)}, "bad_frame"),
        (
            mine,
            {"type": "select", "conversation": str(conversation.pk), "leaf": str(uuid.uuid4())},
            "not_found",
        ),
    ]
    for sock, frame, code in bad:
        await sock.send(frame)
        answer = await sock.receive()
        assert answer["type"] == "error" and answer["code"] == code, (frame, answer)
    assert await sync_to_async(Message.objects.count)() == 4
    saved = await Conversation.objects.aget(pk=conversation.pk)
    assert saved.current_leaf_id == second.assistant_message.pk
    await socket.close()
    await mine.close()


def _two_turns(user, model):
    """Q1 → A1 → Q2 → A2, both replies done."""
    first = services.conversation_start(user=user, model=model, content="Q1")
    finish(first.assistant_message, "A1")
    conversation = first.user_message.conversation
    second = services.message_send(user=user, conversation_id=conversation.pk, content="Q2")
    finish(second.assistant_message, "A2")
    return conversation, first, second
