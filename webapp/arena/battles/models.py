"""Blind battles: two hidden models answer the same turns, the user votes, the names show.

A battle's sides are generations (origin ``arena``); a vote is the battle's ``winner``,
written once. Whether it counts toward the ratings is decided when it is cast
(``counted``, with ``not_counted_reason``); staff flags are applied when ratings are
computed, so flagging a voter later takes their votes out of the next leaderboard.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from webapp.core.models import BaseModel


class ArenaEntry(BaseModel):
    """A model staff have enabled for blind battles."""

    language_model = models.OneToOneField(
        "catalog.LanguageModel", on_delete=models.CASCADE, related_name="arena_entry"
    )
    enabled = models.BooleanField(default=True)
    weight = models.FloatField(default=1.0, help_text="Relative chance of being drawn.")
    give_away_words = models.TextField(
        blank=True,
        help_text="Words (one per line) that name the model or its maker, besides its own name: "
        "a reply that says one of them is not counted.",
    )

    class Meta:
        verbose_name_plural = "arena entries"

    def __str__(self) -> str:
        return str(self.language_model)


class Winner(models.TextChoices):
    # The values are those of FastChat's battle logs, so exports read as they do.
    MODEL_A = "model_a", "A is better"
    MODEL_B = "model_b", "B is better"
    TIE = "tie", "Tie"
    BOTH_BAD = "tie (bothbad)", "Both are bad"


class Battle(BaseModel):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="battles"
    )
    model_a = models.ForeignKey(
        "catalog.LanguageModel", on_delete=models.PROTECT, related_name="battles_as_a"
    )
    model_b = models.ForeignKey(
        "catalog.LanguageModel", on_delete=models.PROTECT, related_name="battles_as_b"
    )
    winner = models.CharField(max_length=16, choices=Winner.choices, blank=True)
    voted_at = models.DateTimeField(null=True, blank=True)
    counted = models.BooleanField(
        null=True, blank=True, help_text="Whether the vote counts toward the ratings."
    )
    not_counted_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [models.Index(fields=["voted_at"], name="battle_voted")]

    def __str__(self) -> str:
        return f"battle {self.pk}"


class BattleTurn(BaseModel):
    """One prompt of a battle and the two replies to it."""

    battle = models.ForeignKey(Battle, on_delete=models.CASCADE, related_name="turns")
    index = models.PositiveIntegerField()
    content = models.TextField()
    generation_a = models.OneToOneField(
        "generations.Generation", on_delete=models.CASCADE, related_name="arena_side_a"
    )
    generation_b = models.OneToOneField(
        "generations.Generation", on_delete=models.CASCADE, related_name="arena_side_b"
    )

    class Meta:
        ordering = ["index"]
        constraints = [
            models.UniqueConstraint(fields=["battle", "index"], name="battle_turn_index")
        ]


class VoterFlag(BaseModel):
    """A voter staff have flagged: their votes are kept and left out of the ratings."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="arena_flag"
    )
    reason = models.CharField(max_length=200)
    flagged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )


class Leaderboard(BaseModel):
    """One computation of the ratings, kept so the page says when and from what."""

    votes = models.PositiveIntegerField(help_text="Counted votes the fit used.")
    bootstrap_rounds = models.PositiveIntegerField()
    trigger = models.CharField(max_length=16, help_text="schedule or staff")
    # [{model (slug), name, rating, lower, upper, rank, votes, win_rate}, ...], best first.
    ratings = models.JSONField(default=list)
    # {"models": [slug, ...], "wins": [[fraction A beat B]], "battles": [[count]]}
    matrices = models.JSONField(default=dict)
    seconds = models.FloatField(help_text="How long the computation took.")

    class Meta:
        get_latest_by = "created_at"
