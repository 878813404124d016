"""Conversations and their messages (a tree: each message points at its parent)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from webapp.core.models import BaseModel
from webapp.generations.models import ACTIVE_STATUSES


def conversation_group(conversation_id: object) -> str:
    """Return the channel-layer group every socket watching the conversation joins."""
    return f"conversation.{conversation_id}"


class Conversation(BaseModel):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations"
    )
    model = models.ForeignKey("catalog.LanguageModel", on_delete=models.PROTECT, related_name="+")
    title = models.CharField(max_length=200)
    # Sent as the first message of every reply's input.
    system_prompt = models.TextField(blank=True)
    # Sampling parameters set for this conversation, over the model's defaults (validated).
    params = models.JSONField(default=dict, blank=True)
    # The last message of the branch the user last viewed; the page reopens on it.
    current_leaf = models.ForeignKey(
        "chat.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    pinned = models.BooleanField(default=False)
    # Set when the owner deletes it: hidden at once, purged once the undo window is over.
    deleted_at = models.DateTimeField(null=True, blank=True, db_index=True)

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


class Message(BaseModel):
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField(blank=True)
    client_id = models.UUIDField(null=True, blank=True)
    # A reply's text, status and stats live in its generation; user messages have none.
    generation = models.OneToOneField(
        "generations.Generation",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="chat_message",
    )
    # A finished reply as sanitized HTML, made once and shown on every later open;
    # ``html_key`` names what it was made from (renderer version, digest of the text).
    html = models.TextField(blank=True, editable=False)
    html_key = models.CharField(max_length=64, blank=True, editable=False)

    class Meta:
        ordering = ["created_at"]
        # A conversation's messages newest first: search walks them back to the newest match.
        indexes = [
            models.Index(fields=["conversation", "created_at"], name="chat_message_conv_time")
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "client_id"],
                name="chat_message_unique_client_id",
                condition=models.Q(client_id__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:40]}"

    @property
    def text(self) -> str:
        """Return what the message says: the user's words, or the reply's text so far."""
        return self.generation.text if self.generation_id else self.content  # type: ignore[union-attr]

    @property
    def status(self) -> str:
        return self.generation.status if self.generation_id else "done"  # type: ignore[union-attr]

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class Preset(BaseModel):
    """A system prompt with sampling parameters, saved under a name to start chats from.

    A public preset (published by staff) is offered to every user.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_presets"
    )
    name = models.CharField(max_length=80)
    system_prompt = models.TextField(blank=True)
    params = models.JSONField(default=dict, blank=True)
    public = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["user", "name"], name="chat_preset_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name


from .share_models import Share  # noqa: E402,F401  (registers the model with the app)
