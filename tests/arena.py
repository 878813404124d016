"""Helpers of the arena tests: models entered in the arena, battles whose replies ended."""

from __future__ import annotations

import pytest
from django.utils import timezone

from tests.factories import LanguageModelFactory, ModelEndpointFactory
from webapp.arena.battles.models import ArenaEntry, BattleTurn
from webapp.generations.models import Generation, Status


@pytest.fixture
def votes_count(settings):
    """Every vote counts: no minimum account age, and a daily cap no test reaches."""
    settings.ARENA_MIN_ACCOUNT_AGE_HOURS = 0
    settings.ARENA_DAILY_VOTES = 100


def arena_model(
    slug: str,
    *,
    url: str = "http://127.0.0.1:9/",
    weight: float = 1.0,
    words: str = "",
    **fields,
):
    """A model with one healthy endpoint, enabled for the arena."""
    model = LanguageModelFactory(slug=slug, **fields)
    ModelEndpointFactory(model=model, url=url)
    ArenaEntry.objects.create(language_model=model, weight=weight, give_away_words=words)
    return model


def replies_end(
    turn: BattleTurn,
    text_a: str = "First answer.",
    text_b: str = "Second answer.",
    status: str = Status.DONE,
) -> None:
    """End both replies of ``turn`` as a worker would have (these tests run none)."""
    now = timezone.now()
    for generation, text in ((turn.generation_a, text_a), (turn.generation_b, text_b)):
        Generation.objects.filter(pk=generation.pk).update(
            status=status,
            text=text,
            finished_at=now,
            backend_model_id="hidden/backend-id",
            tokens_per_second=42.0,
            generated_tokens=9,
        )
