"""A share: a read-only snapshot of one conversation's path, behind an unguessable link."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models

from webapp.core.models import BaseModel


def share_token() -> str:
    """Return a fresh public id: 128 random bits, URL-safe."""
    return secrets.token_urlsafe(16)


class Share(BaseModel):
    token = models.CharField(max_length=32, unique=True, default=share_token, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="shares"
    )
    # The source may be deleted later; the snapshot stays until its owner revokes it.
    conversation = models.ForeignKey(
        "chat.Conversation", null=True, blank=True, on_delete=models.SET_NULL, related_name="shares"
    )
    model = models.ForeignKey("catalog.LanguageModel", on_delete=models.PROTECT, related_name="+")
    title = models.CharField(max_length=200)
    params = models.JSONField(default=dict, blank=True)
    # The path to the leaf when shared, copied: [{"role", "content", "model", "params"}, ...].
    messages = models.JSONField(default=list)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("chat:share", kwargs={"token": self.token})
