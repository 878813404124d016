"""Which two models a battle draws: only models the user may use for the arena, that staff
enabled and whose endpoints are healthy; weighted, with pairs that have few votes favoured."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from tests.arena import arena_model
from tests.factories import GrantFactory, UserFactory, gate_factory
from webapp.arena.battles.models import ArenaEntry, Battle
from webapp.arena.battles.pairing import (
    Candidate,
    arena_candidates,
    battle_pair_draw,
    pair_votes,
    pair_weights,
)
from webapp.catalog.models import AccessPolicy, ModelEndpoint
from webapp.core.errors import Conflict

pytestmark = pytest.mark.django_db

DRAWS = 300


def drawn_slugs(user, draws: int = DRAWS, seed: int = 1) -> Counter[str]:
    rng = random.Random(seed)
    seen: Counter[str] = Counter()
    for _ in range(draws):
        a, b = battle_pair_draw(user=user, rng=rng)
        assert a != b
        seen.update([a.slug, b.slug])
    return seen


def test_a_user_is_never_paired_with_a_model_they_may_not_use(user):
    arena_model("open-one")
    arena_model("open-two")
    gated = arena_model("gated-no-grant", access_policy=AccessPolicy.GATED)
    gated.gate = gate_factory(name="Gate of gated-no-grant")
    gated.save()
    arena_model("private-one", access_policy=AccessPolicy.PRIVATE)
    arena_model("switched-off", is_active=False)

    assert set(drawn_slugs(user)) == {"open-one", "open-two"}


def test_a_grant_at_the_chat_level_opens_a_gated_model_to_the_arena(user):
    arena_model("open-one")
    gated = arena_model("gated-granted", access_policy=AccessPolicy.GATED)
    gated.gate = gate_factory(name="Gate of gated-granted")
    gated.save()
    GrantFactory(gate=gated.gate, user=user, levels=["chat"])
    stranger = UserFactory()

    assert set(drawn_slugs(user)) == {"open-one", "gated-granted"}
    with pytest.raises(Conflict):  # only one model is open to the stranger
        battle_pair_draw(user=stranger)


def test_disabled_weightless_and_unhealthy_models_are_left_out(user):
    arena_model("in-one")
    arena_model("in-two")
    disabled = arena_model("disabled")
    ArenaEntry.objects.filter(language_model=disabled).update(enabled=False)
    arena_model("weightless", weight=0)
    sick = arena_model("sick")
    ModelEndpoint.objects.filter(model=sick).update(healthy=False)
    arena_model("not-entered")
    ArenaEntry.objects.filter(language_model__slug="not-entered").delete()

    assert [c.model.slug for c in arena_candidates(user=user)] == ["in-one", "in-two"]


def test_fewer_than_two_usable_models_is_a_clear_refusal(user):
    arena_model("lonely")
    with pytest.raises(Conflict) as refused:
        battle_pair_draw(user=user)
    assert "two models" in refused.value.detail


def test_a_heavier_model_is_drawn_more_often(user):
    arena_model("light-one")
    arena_model("light-two")
    arena_model("heavy", weight=4.0)

    seen = drawn_slugs(user, draws=600)
    # Pairs with heavy weigh 4 each against 1 for the light pair: heavy is in 8 of 9 draws.
    assert seen["heavy"] > 0.8 * 600
    assert seen["light-one"] + seen["light-two"] < 1.4 * 600


def test_a_pair_with_many_votes_is_drawn_less_often_than_a_new_one():
    models = [Candidate(model=arena_model(f"m-{i}"), weight=1.0) for i in range(3)]
    a, b, c = (candidate.model for candidate in models)
    votes = Counter({frozenset((a.pk, b.pk)): 99})

    weights = {frozenset((x.model.pk, y.model.pk)): w for x, y, w in pair_weights(models, votes)}
    assert weights[frozenset((a.pk, b.pk))] == pytest.approx(0.1)  # 1 / sqrt(1 + 99)
    assert weights[frozenset((a.pk, c.pk))] == weights[frozenset((b.pk, c.pk))] == 1.0


def test_voted_battles_in_either_order_count_for_the_pair(user):
    a, b = arena_model("x-one"), arena_model("x-two")
    arena_model("x-three")
    for first, second in ((a, b), (b, a)):
        Battle.objects.create(
            user=user, model_a=first, model_b=second, winner="tie", voted_at="2026-01-01T00:00Z"
        )
    Battle.objects.create(user=user, model_a=a, model_b=b)  # not voted: not counted

    assert pair_votes(model_ids=[a.pk, b.pk]) == Counter({frozenset((a.pk, b.pk)): 2})


def test_either_model_of_a_pair_may_be_model_a(user):
    arena_model("side-one")
    arena_model("side-two")
    draws = (battle_pair_draw(user=user, rng=random.Random(seed)) for seed in range(60))
    firsts = Counter(model_a.slug for model_a, _ in draws)
    assert set(firsts) == {"side-one", "side-two"}
