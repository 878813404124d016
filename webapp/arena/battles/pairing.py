"""Which two models a new battle pits against each other.

The candidates are the models staff enabled for the arena that the user may
use for ``arena`` (the one access rule) and that have at least one healthy,
active endpoint. A pair is drawn with a chance proportional to

    weight(a) * weight(b) / sqrt(1 + votes(a, b))

where ``votes(a, b)`` is the number of voted battles between the two, in
either order: pairs that have few votes are drawn more often, as LMSYS does,
without ever starving a pair. Which of the two is "Model A" is a coin toss.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Exists, OuterRef

from webapp.catalog.models import LanguageModel, ModelEndpoint
from webapp.catalog.policy import models_usable
from webapp.core.errors import Conflict

from .models import Battle

NOT_ENOUGH_MODELS = (
    "The arena needs two models you may use, and fewer than two are open to you right now. "
    "Try again later."
)


@dataclass(frozen=True)
class Candidate:
    model: LanguageModel
    weight: float


def arena_candidates(*, user: Any) -> list[Candidate]:
    """Return the models a battle of ``user`` may draw, each with its sampling weight."""
    healthy = ModelEndpoint.objects.filter(model=OuterRef("pk"), is_active=True, healthy=True)
    models = (
        LanguageModel.objects.filter(
            is_active=True, arena_entry__enabled=True, arena_entry__weight__gt=0
        )
        .filter(Exists(healthy))
        .select_related("arena_entry")
    )
    usable = models_usable(user=user, models=models, action="arena")
    return [Candidate(model, model.arena_entry.weight) for model in usable]


def pair_votes(*, model_ids: list[Any]) -> Counter[frozenset[Any]]:
    """Return the number of voted battles of every pair among ``model_ids``."""
    rows = (
        Battle.objects.filter(voted_at__isnull=False, model_a__in=model_ids, model_b__in=model_ids)
        .values_list("model_a", "model_b")
        .annotate(n=Count("pk"))
    )
    votes: Counter[frozenset[Any]] = Counter()
    for a, b, n in rows:
        votes[frozenset((a, b))] += n
    return votes


def pair_weights(
    candidates: list[Candidate], votes: Counter[frozenset[Any]]
) -> list[tuple[Candidate, Candidate, float]]:
    """Return every pair of ``candidates`` with its chance weight (see the module)."""
    pairs = []
    for i, first in enumerate(candidates):
        for second in candidates[i + 1 :]:
            n = votes[frozenset((first.model.pk, second.model.pk))]
            pairs.append((first, second, first.weight * second.weight / math.sqrt(1 + n)))
    return pairs


def battle_pair_draw(
    *, user: Any, rng: random.Random | None = None
) -> tuple[LanguageModel, LanguageModel]:
    """Draw the two models of a new battle of ``user``, as (model A, model B)."""
    rng = rng or random.SystemRandom()
    candidates = arena_candidates(user=user)
    if len(candidates) < 2:
        raise Conflict(NOT_ENOUGH_MODELS, code="no_pair")
    pairs = pair_weights(candidates, pair_votes(model_ids=[c.model.pk for c in candidates]))
    first, second, _ = rng.choices(pairs, weights=[w for _, _, w in pairs])[0]
    sides = [first.model, second.model]
    rng.shuffle(sides)
    return sides[0], sides[1]
