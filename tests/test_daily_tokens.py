"""A daily budget of tokens per user and model: a generation's prompt and reply tokens are
counted when it ends; past the budget a send is refused with when it resets (midnight UTC),
nothing is saved or queued, groups may raise it and each model has its own."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import Group

from tests.factories import (
    ConversationFactory,
    GenerationFactory,
    LanguageModelFactory,
    ModelEndpointFactory,
    UserFactory,
)
from tests.inference_server import directive
from webapp.chat.models import Message
from webapp.chat.services import message_send
from webapp.generations.limits import (
    LimitReached,
    in_words,
    limits_for,
    tokens_record,
    until_midnight,
)
from webapp.generations.models import Generation, Status

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def budget(settings):
    """Set the default daily budget (and any other limits) for this test."""

    def set_limits(**limits):
        settings.GENERATION_LIMITS = {**settings.GENERATION_LIMITS, **limits}

    return set_limits


def used(user, model, tokens: int) -> None:
    """A finished generation of ``tokens`` tokens, counted as the worker counts it."""
    generation = GenerationFactory(
        user=user, language_model=model, prompt_tokens=tokens - 1, channel_group="g"
    )
    tokens_record(generation_id=str(generation.pk), prompt_tokens=tokens - 1, generated_tokens=1)


def send(user, model, content="Hello"):
    conversation = ConversationFactory(user=user, model=model)
    return message_send(user=user, conversation_id=conversation.pk, content=content)


def wait_until_ended(generation_id, timeout: float = 10.0) -> Generation:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        generation = Generation.objects.get(pk=generation_id)
        if not generation.is_active:
            return generation
        time.sleep(0.05)
    raise AssertionError(f"generation {generation_id} is still {generation.status}")


def test_a_reply_counts_its_prompt_and_generated_tokens_and_then_the_budget_refuses(
    worker, inference, openai_model, budget
):
    budget(TOKENS_PER_DAY=40)
    user = UserFactory()
    conversation = ConversationFactory(user=user, model=openai_model)
    first = message_send(
        user=user, conversation_id=conversation.pk, content="Hi " + directive(n_tokens=30)
    )
    done = wait_until_ended(first.assistant_message.generation_id)
    assert done.status == Status.DONE and done.prompt_tokens and done.generated_tokens == 30
    saved = Message.objects.count(), Generation.objects.count()

    with pytest.raises(LimitReached) as refused:
        message_send(user=user, conversation_id=conversation.pk, content="one more")

    spent = done.prompt_tokens + done.generated_tokens
    assert refused.value.code == "daily_tokens"
    wait = refused.value.retry_after
    assert abs(wait - until_midnight(time.time())) <= 2
    assert f"You have used {spent:,} of your 40 tokens for {openai_model.display_name}" in (
        refused.value.detail
    )
    assert f"resets at midnight UTC, in {in_words(wait)}" in refused.value.detail
    assert (Message.objects.count(), Generation.objects.count()) == saved  # nothing saved


def test_under_the_budget_a_send_goes_through_and_a_staff_member_has_none(
    unqueued, openai_model, budget
):
    budget(TOKENS_PER_DAY=100)
    user, staff = UserFactory(), UserFactory(is_staff=True)
    used(user, openai_model, 99)
    send(user, openai_model)  # 99 of 100: still under
    Generation.objects.filter(user=user).update(status=Status.DONE)
    used(user, openai_model, 1)
    with pytest.raises(LimitReached):
        send(user, openai_model)
    used(staff, openai_model, 10_000)
    send(staff, openai_model)


def test_a_group_raises_the_budget(unqueued, openai_model, budget):
    budget(TOKENS_PER_DAY=100, GROUPS={"researchers": {"TOKENS_PER_DAY": 10_000}})
    member, other = UserFactory(), UserFactory()
    member.groups.add(Group.objects.create(name="researchers"))
    for user in (member, other):
        used(user, openai_model, 500)
    send(member, openai_model)
    with pytest.raises(LimitReached) as refused:
        send(other, openai_model)
    assert refused.value.code == "daily_tokens"


def test_each_model_has_a_budget_of_its_own(unqueued, openai_model, budget):
    budget(TOKENS_PER_DAY=100)
    other_model = LanguageModelFactory(slug="another", display_name="Another Model")
    ModelEndpointFactory(model=other_model)
    user = UserFactory()
    used(user, openai_model, 100)
    with pytest.raises(LimitReached) as refused:
        send(user, openai_model)
    assert "other models have budgets of their own" in refused.value.detail
    send(user, other_model)  # its own budget is untouched


def test_a_model_may_have_its_own_budget_and_a_group_its_own_for_that_model(
    unqueued, openai_model, budget
):
    budget(
        TOKENS_PER_DAY=1_000,
        MODELS={"scripted-openai": {"TOKENS_PER_DAY": 50}},
        GROUPS={
            "general": {"TOKENS_PER_DAY": 5_000},  # a general raise: this model too
            "pilots": {"MODELS": {"scripted-openai": {"TOKENS_PER_DAY": 0}}},  # no budget
        },
    )
    plain, general, pilot = UserFactory(), UserFactory(), UserFactory()
    general.groups.add(Group.objects.create(name="general"))
    pilot.groups.add(Group.objects.create(name="pilots"))
    assert limits_for(plain).tokens_per_day("scripted-openai") == 50
    assert limits_for(plain).tokens_per_day("anything-else") == 1_000
    assert limits_for(general).tokens_per_day("scripted-openai") == 5_000
    assert limits_for(pilot).tokens_per_day("scripted-openai") == 0
    assert limits_for(pilot).tokens_per_day("anything-else") == 1_000

    used(plain, openai_model, 60)
    with pytest.raises(LimitReached) as refused:
        send(plain, openai_model)
    assert "of your 50 tokens" in refused.value.detail
    used(pilot, openai_model, 1_000_000)
    send(pilot, openai_model)


def test_no_budget_reads_no_token_count(unqueued, openai_model, budget):
    budget(TOKENS_PER_DAY=0)
    user = UserFactory()
    used(user, openai_model, 10**9)
    send(user, openai_model)


async def test_over_the_budget_the_socket_says_when_it_resets_and_stays_open(
    unqueued, openai_model, budget
):
    from channels.db import database_sync_to_async as sync

    from tests.ws import connect

    budget(TOKENS_PER_DAY=10)
    user = await sync(UserFactory)()
    conversation = await sync(ConversationFactory)(user=user, model=openai_model)
    await sync(used)(user, openai_model, 10)
    socket = await connect(user)
    await socket.send({"type": "send", "conversation": str(conversation.pk), "content": "hi"})
    refused = (await socket.receive_until("error"))[-1]
    assert refused["code"] == "daily_tokens"
    assert abs(refused["retry_after"] - until_midnight(time.time())) <= 2
    assert "midnight UTC" in refused["detail"]
    assert not await Message.objects.filter(conversation=conversation).aexists()
    await socket.send({"type": "dance"})
    assert (await socket.receive_until("error"))[-1]["code"] == "unknown_type"
    await socket.close()
