"""Named compare sessions: 2 to 4 models answer the same turns side by side.

A session has one column per model, with one set of parameters and one seed for
all of them. Each turn is one prompt; each column's reply to it is a generation
(origin ``compare``) whose input is that column's own history. Every generation of
a session is announced on the session's group, so one socket follows them all.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from webapp.core.models import BaseModel


def compare_group(session_id: object) -> str:
    """Return the channel-layer group a session's generations are announced on."""
    return f"compare.{session_id}"


class CompareSession(BaseModel):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="compare_sessions"
    )
    title = models.CharField(max_length=200)
    # The overrides every column's replies are sent with, over each model's defaults;
    # the seed is among them.
    params = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["user", "-updated_at"], name="compare_user_recent")]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("compare:session", kwargs={"session_id": self.pk})

    @property
    def group(self) -> str:
        return compare_group(self.pk)


class CompareColumn(BaseModel):
    session = models.ForeignKey(CompareSession, on_delete=models.CASCADE, related_name="columns")
    index = models.PositiveSmallIntegerField()
    language_model = models.ForeignKey(
        "catalog.LanguageModel", on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["index"]
        constraints = [
            models.UniqueConstraint(fields=["session", "index"], name="compare_column_index"),
            models.UniqueConstraint(
                fields=["session", "language_model"], name="compare_column_model"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.session_id} column {self.index}"


class CompareTurn(BaseModel):
    """One prompt of a session, sent to every column."""

    session = models.ForeignKey(CompareSession, on_delete=models.CASCADE, related_name="turns")
    index = models.PositiveIntegerField()
    content = models.TextField()

    class Meta:
        ordering = ["index"]
        constraints = [
            models.UniqueConstraint(fields=["session", "index"], name="compare_turn_index"),
        ]

    def __str__(self) -> str:
        return f"{self.session_id} turn {self.index}"


class CompareReply(BaseModel):
    """One column's answer to one turn."""

    turn = models.ForeignKey(CompareTurn, on_delete=models.CASCADE, related_name="replies")
    column = models.ForeignKey(CompareColumn, on_delete=models.CASCADE, related_name="replies")
    generation = models.OneToOneField(
        "generations.Generation", on_delete=models.CASCADE, related_name="compare_reply"
    )

    class Meta:
        verbose_name_plural = "compare replies"
        constraints = [
            models.UniqueConstraint(fields=["turn", "column"], name="compare_reply_once"),
        ]

    def __str__(self) -> str:
        return f"{self.turn} / {self.column}"
