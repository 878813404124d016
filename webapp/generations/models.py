"""A generation: one reply of one model to one input, whatever asked for it.

Chat replies, compare columns, arena sides, API calls and playground
completions are all generations; the feature that asked points at its
generation, never the other way round.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from inference.generation import STAT_FIELDS
from webapp.core.models import BaseModel


class Origin(models.TextChoices):
    CHAT = "chat"
    COMPARE = "compare"
    ARENA = "arena"
    API = "api"
    PLAYGROUND = "playground"


class Status(models.TextChoices):
    QUEUED = "queued"
    STREAMING = "streaming"
    DONE = "done"
    STOPPED = "stopped"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


ACTIVE_STATUSES = (Status.QUEUED, Status.STREAMING)


def generation_group(generation_id: object) -> str:
    """Return the group of a generation that no feature announces elsewhere (an API call)."""
    return f"generation.{generation_id}"


class Generation(BaseModel):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="generations"
    )
    language_model = models.ForeignKey(
        "catalog.LanguageModel", on_delete=models.PROTECT, related_name="generations"
    )
    origin = models.CharField(max_length=16, choices=Origin.choices)
    # The input, frozen when the generation is created: chat messages, or a raw prompt.
    messages = models.JSONField(default=list, blank=True)
    # Older turns left out of ``messages`` to fit the model's context length.
    trimmed_messages = models.PositiveIntegerField(default=0)
    prompt = models.TextField(blank=True)
    params = models.JSONField(default=dict, blank=True, help_text="Sampling parameters as sent.")
    channel_group = models.CharField(
        max_length=120, help_text="The channel-layer group its events are announced on."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    text = models.TextField(blank=True)
    finish_reason = models.CharField(max_length=32, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    generated_tokens = models.PositiveIntegerField(null=True, blank=True)
    time_to_first_token_ms = models.FloatField(null=True, blank=True)
    tokens_per_second = models.FloatField(null=True, blank=True)
    # Who served it, as the backend reported: enough to tell two runs apart later.
    endpoint = models.ForeignKey(
        "catalog.ModelEndpoint",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="served",
    )
    endpoint_url = models.CharField(max_length=500, blank=True)
    backend_model_id = models.CharField(max_length=300, blank=True)
    backend_revision = models.CharField(max_length=100, blank=True)
    system_fingerprint = models.CharField(max_length=100, blank=True)
    rendered_prompt = models.TextField(
        blank=True, help_text="The text the backend received when it applied the chat template."
    )
    # When asked for (playground, API logprobs): per generated token its text, logprob and
    # top alternatives, as the chunk frames carried them.
    token_details = models.JSONField(default=list, blank=True)
    # The fair queue: a queued generation waits until it is admitted (given a slot on
    # one of the model's endpoints); a backend that answered 429 puts it back, to be
    # admitted again no sooner than ``not_before``.
    admitted_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    not_before = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_detail = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            models.Index(
                fields=["status", "started_at"],
                name="generation_active",
                condition=models.Q(status__in=["queued", "streaming"]),
            ),
            models.Index(fields=["user", "-created_at"], name="generation_user_recent"),
            models.Index(
                fields=["language_model", "created_at"],
                name="generation_waiting",
                condition=models.Q(status="queued"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.origin} {self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    def stats(self) -> dict[str, object]:
        """Return the figures a ``done`` frame carries, as saved."""
        return {
            **{name: getattr(self, name) for name in STAT_FIELDS},
            "model_id": self.backend_model_id,
        }
