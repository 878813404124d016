"""One rule decides who may do what with a model: gated models by the live grant's levels,
private ones by group, everywhere the same way, lists included, the worker's claim too."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from tests.access_kinds import (
    KINDS,
    POLICIES,
    expected_refusal,
    refusal_matches,
    user_build,
    world_build,
)
from tests.factories import (
    ConversationFactory,
    GrantFactory,
    LanguageModelFactory,
    ModelEndpointFactory,
    UserFactory,
    gate_factory,
)
from webapp.access.models import GateLevel, Grant
from webapp.access.selectors.rule import gate_refusal
from webapp.catalog.policy import access_refusal, model_can_use
from webapp.catalog.selectors import model_list_usable

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(db):
    return world_build()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("policy", POLICIES)
def test_the_rule_answers_every_policy_and_kind_with_the_reason(world, policy, kind):
    user = user_build(kind, world)
    model = world.models[policy]
    expected = expected_refusal(policy, kind)
    refusal = access_refusal(user=user, model_or_gate=model, action="chat")
    assert refusal_matches(refusal, expected), refusal
    assert model_can_use(user=user, model=model, action="chat") is (expected is None)
    assert (model in model_list_usable(user=user, action="chat")) is (expected is None)


@pytest.mark.parametrize(
    ("levels", "allowed"),
    [
        (["chat"], {"view", "chat", "arena"}),
        (["api"], {"api"}),
        (["weights"], {"download"}),
        (["chat", "api", "weights"], {"view", "chat", "arena", "api", "download"}),
    ],
)
def test_each_level_opens_its_own_actions_and_nothing_else(levels, allowed):
    gate = gate_factory()
    model = LanguageModelFactory(access_policy="gated", gate=gate)
    user = GrantFactory(gate=gate, levels=levels).user
    for action in ("view", "chat", "arena", "api", "download"):
        assert model_can_use(user=user, model=model, action=action) is (action in allowed), action


def test_a_level_the_gate_stops_offering_opens_nothing_even_to_holders():
    gate = gate_factory()
    model = LanguageModelFactory(access_policy="gated", gate=gate)
    user = GrantFactory(gate=gate, levels=["chat", "weights"]).user
    GateLevel.objects.filter(gate=gate, level="weights").delete()
    assert model_can_use(user=user, model=model, action="chat")
    assert gate_refusal(user=user, gate=gate, level="weights") == (
        f"{gate.name} no longer offers weights access."
    )


def test_the_gate_rule_answers_downloads_by_the_weights_level():
    gate = gate_factory(name="Llama Gate")
    chat_only = GrantFactory(gate=gate, levels=["chat"]).user
    weights = GrantFactory(gate=gate, levels=["chat", "weights"]).user
    assert gate_refusal(user=weights, gate=gate, level="weights") is None
    assert gate_refusal(user=chat_only, gate=gate, level="weights") == (
        "Your access to Llama Gate does not include weights; ask for it on the gate's page."
    )
    model = LanguageModelFactory(access_policy="gated", gate=gate)
    assert access_refusal(user=weights, model_or_gate=gate, action="download") is None
    assert not model_can_use(user=chat_only, model=model, action="download")


def test_a_grant_that_expires_stops_working_at_that_moment():
    gate = gate_factory()
    model = LanguageModelFactory(access_policy="gated", gate=gate)
    grant = GrantFactory(gate=gate, expires_at=timezone.now() + timedelta(seconds=60))
    assert model_can_use(user=grant.user, model=model)
    Grant.objects.filter(pk=grant.pk).update(expires_at=timezone.now())
    assert not model_can_use(user=grant.user, model=model)


def test_a_gated_model_without_a_gate_is_closed_with_a_reason():
    model = LanguageModelFactory(access_policy="gated", display_name="Loose")
    assert access_refusal(user=UserFactory(), model_or_gate=model) == (
        "Loose is gated, and its gate is not set up yet."
    )


def test_only_a_gated_model_may_have_a_gate():
    model = LanguageModelFactory.build(access_policy="public", gate=gate_factory())
    with pytest.raises(ValidationError, match="Only a gated model has a gate"):
        model.full_clean()


def test_the_model_list_reads_grants_and_groups_once_however_many_models(
    django_assert_max_num_queries,
):
    user = UserFactory()
    for index in range(8):
        gate = gate_factory(slug=f"many-{index}")
        LanguageModelFactory(access_policy="gated", gate=gate)
        GrantFactory(gate=gate, user=user)
        LanguageModelFactory(access_policy="private")
    with django_assert_max_num_queries(3):  # the models, the grants, the group memberships
        usable = model_list_usable(user=user)
    assert len(usable) == 8


@pytest.fixture
def unqueued(monkeypatch):
    from inference.tasks import generate

    monkeypatch.setattr(generate, "delay_on_commit", lambda *args: None)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("change", ["revoked", "expired", "licence", "group left"])
def test_the_workers_claim_applies_the_rule_to_gated_and_private_models(unqueued, change):
    from django.contrib.auth.models import Group

    from tests.factories import LicenceVersionFactory
    from webapp.chat.services import message_send
    from webapp.generations.services import GenerationRefused, generation_claim

    gate = gate_factory(name="Claim Gate")
    user = UserFactory()
    if change == "group left":
        model = LanguageModelFactory(access_policy="private", display_name="Team Model")
        group = Group.objects.create(name="team")
        model.allowed_groups.add(group)
        user.groups.add(group)
    else:
        model = LanguageModelFactory(access_policy="gated", gate=gate)
        GrantFactory(gate=gate, user=user)
    ModelEndpointFactory(model=model)
    conversation = ConversationFactory(user=user, model=model)
    kept = message_send(user=user, conversation_id=conversation.pk, content="Allowed")
    assert generation_claim(generation_id=str(kept.assistant_message.generation_id)) is not None

    from webapp.generations.models import Generation, Status

    Generation.objects.update(status=Status.DONE)
    sent = message_send(user=user, conversation_id=conversation.pk, content="Go")
    grants = Grant.objects.filter(user=user)
    if change == "revoked":
        grants.update(revoked_at=timezone.now(), revoke_reason="Misuse.")
    elif change == "expired":
        grants.update(expires_at=timezone.now())
    elif change == "licence":
        LicenceVersionFactory(gate=gate, version=2)
    else:
        user.groups.clear()
    with pytest.raises(GenerationRefused) as refused:
        generation_claim(generation_id=str(sent.assistant_message.generation_id))
    assert refused.value.code == "forbidden"
    assert {
        "revoked": "Your access to Claim Gate was revoked: Misuse.",
        "expired": "Your access to Claim Gate expired on",
        "licence": "The licence of Claim Gate has changed",
        "group left": "This model is open to named groups only.",
    }[change] in refused.value.detail
