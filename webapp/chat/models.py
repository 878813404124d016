"""Conversations and their messages (a tree: each message points at its parent)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from webapp.core.models import BaseModel


def conversation_group(conversation_id: object) -> str:
    """Return the channel-layer group every socket watching the conversation joins."""
    return f"conversation.{conversation_id}"


class Conversation(BaseModel):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations"
    )
    model = models.ForeignKey("catalog.LanguageModel", on_delete=models.PROTECT, related_name="+")
    title = models.CharField(max_length=200)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["user", "-updated_at"], name="chat_conv_user_recent")]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("chat:conversation", kwargs={"conversation_id": self.pk})

    @property
    def group(self) -> str:
        return conversation_group(self.pk)


class Role(models.TextChoices):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


class Status(models.TextChoices):
    QUEUED = "queued"
    STREAMING = "streaming"
    DONE = "done"
    STOPPED = "stopped"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


ACTIVE_STATUSES = (Status.QUEUED, Status.STREAMING)


class Message(BaseModel):
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DONE)
    client_id = models.UUIDField(null=True, blank=True)
    language_model = models.ForeignKey(
        "catalog.LanguageModel", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # What the backend reported; filled in when an assistant reply ends.
    finish_reason = models.CharField(max_length=32, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    generated_tokens = models.PositiveIntegerField(null=True, blank=True)
    time_to_first_token_ms = models.FloatField(null=True, blank=True)
    tokens_per_second = models.FloatField(null=True, blank=True)
    backend_model_id = models.CharField(max_length=300, blank=True)
    params = models.JSONField(default=dict, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_detail = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "client_id"],
                name="chat_message_unique_client_id",
                condition=models.Q(client_id__isnull=False),
            ),
        ]
        indexes = [
            models.Index(
                fields=["status", "started_at"],
                name="chat_msg_active",
                condition=models.Q(status__in=["queued", "streaming"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:40]}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    def stats(self) -> dict[str, object]:
        return {
            "finish_reason": self.finish_reason,
            "prompt_tokens": self.prompt_tokens,
            "generated_tokens": self.generated_tokens,
            "time_to_first_token_ms": self.time_to_first_token_ms,
            "tokens_per_second": self.tokens_per_second,
            "model_id": self.backend_model_id,
        }
