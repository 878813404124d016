"""Per-user limits on generations: going over is refused with a reason that says when to
try again, nothing is saved or queued, and other users are not affected."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import transaction

from inference import relay
from tests.factories import ConversationFactory, UserFactory
from webapp.chat.models import Message
from webapp.chat.services import message_send
from webapp.core.errors import ValidationFailed
from webapp.generations.limits import LimitReached
from webapp.generations.models import Generation, Origin, Status
from webapp.generations.services import generation_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("unqueued")]


def test_a_third_reply_at_once_is_refused_and_nothing_is_saved(openai_model):
    user = UserFactory()
    conversations = [ConversationFactory(user=user, model=openai_model) for _ in range(3)]
    for conversation in conversations[:2]:
        message_send(user=user, conversation_id=conversation.pk, content="go")
    with pytest.raises(LimitReached) as refused:
        message_send(user=user, conversation_id=conversations[2].pk, content="one more")
    assert refused.value.code == "too_many_running"
    assert "stop one" in refused.value.detail
    assert not Message.objects.filter(conversation=conversations[2]).exists()
    assert Generation.objects.filter(user=user).count() == 2

    someone = UserFactory()  # another user is not held back
    message_send(
        user=someone,
        conversation_id=ConversationFactory(user=someone, model=openai_model).pk,
        content="hi",
    )
    Generation.objects.filter(user=user).update(status=Status.DONE)  # they finished
    message_send(user=user, conversation_id=conversations[2].pk, content="now")


def _sent_to_the_minute_limit(model, settings, limit: int) -> tuple[Any, Any]:
    """A user and conversation that sent ``limit`` replies this minute (all ended)."""
    settings.GENERATION_LIMITS = {**settings.GENERATION_LIMITS, "PER_MINUTE": limit}
    user = UserFactory()
    conversation = ConversationFactory(user=user, model=model)
    for turn in range(limit):
        message_send(user=user, conversation_id=conversation.pk, content=f"turn {turn}")
        Generation.objects.filter(user=user).update(status=Status.DONE)
    return user, conversation


def test_too_many_replies_in_a_minute_are_refused_with_when_to_try_again(openai_model, settings):
    user, conversation = _sent_to_the_minute_limit(openai_model, settings, 3)
    with pytest.raises(LimitReached) as refused:
        message_send(user=user, conversation_id=conversation.pk, content="too soon")
    assert refused.value.code == "rate_limited"
    assert 1 <= refused.value.retry_after <= 61
    assert f"Try again in {refused.value.retry_after} s" in refused.value.detail
    assert not Message.objects.filter(content="too soon").exists()


def test_a_group_can_raise_the_limit(openai_model, settings):
    settings.GENERATION_LIMITS = {
        **settings.GENERATION_LIMITS,
        "GROUPS": {"researchers": {"CONCURRENT": 4}},
    }
    user = UserFactory()
    user.groups.add(Group.objects.create(name="researchers"))
    for _ in range(4):
        conversation = ConversationFactory(user=user, model=openai_model)
        message_send(user=user, conversation_id=conversation.pk, content="go")
    assert Generation.objects.filter(user=user, status=Status.QUEUED).count() == 4


async def test_over_the_limit_the_socket_says_why_and_stays_open(openai_model):
    from channels.db import database_sync_to_async as sync

    from tests.ws import connect

    user = await sync(UserFactory)()
    conversations = [
        await sync(ConversationFactory)(user=user, model=openai_model) for _ in range(3)
    ]
    socket = await connect(user)
    for conversation in conversations:
        await socket.send({"type": "send", "conversation": str(conversation.pk), "content": "go"})
    refused = await socket.receive_until("error")
    assert refused[-1]["code"] == "too_many_running"
    await socket.send({"type": "dance"})
    assert (await socket.receive_until("error"))[-1]["code"] == "unknown_type"
    await socket.close()


def test_a_request_refused_for_its_parameters_does_not_count_toward_the_minute(
    openai_model, settings
):
    settings.GENERATION_LIMITS = {**settings.GENERATION_LIMITS, "PER_MINUTE": 2}
    user = UserFactory()
    for _ in range(3):
        with pytest.raises(ValidationFailed):
            _create(user, openai_model, params={"temperature": 99})
    for _ in range(2):  # the minute's two starts are still there
        _create(user, openai_model)
        Generation.objects.filter(user=user).update(status=Status.DONE)
    with pytest.raises(LimitReached) as refused:
        _create(user, openai_model)
    assert refused.value.code == "rate_limited"


def test_a_redis_restart_does_not_reset_the_minute(openai_model, settings):
    user, conversation = _sent_to_the_minute_limit(openai_model, settings, 2)
    relay.sync_client().flushdb()  # what a restart of Redis (which keeps nothing) leaves
    with pytest.raises(LimitReached) as refused:
        message_send(user=user, conversation_id=conversation.pk, content="too soon")
    assert refused.value.code == "rate_limited"


def _create(user, model, **kwargs) -> Generation:
    with transaction.atomic():
        return generation_create(
            user=user, model=model, origin=Origin.PLAYGROUND, prompt="Once upon", **kwargs
        )
