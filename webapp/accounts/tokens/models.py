"""A personal token: shown once, stored as a SHA-256 digest, looked up by its public prefix."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone

from webapp.core.models import BaseModel


class Scope(models.TextChoices):
    DOWNLOADS = "downloads", "Downloads: weight files and the Hub-compatible download API"
    CHAT = "chat", "Chat: the API's chat completions (/v1/chat/completions)"
    COMPLETIONS = "completions", "Completions: the API's raw text completions (/v1/completions)"
    MODELS = "models", "Models: list the models you may use through the API (/v1/models)"


class PersonalToken(BaseModel):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="personal_tokens"
    )
    name = models.CharField(max_length=100)
    # The token's first characters after "gh_": public, unique, how a token is found and shown.
    lookup = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64, help_text="SHA-256 of the whole secret, in hex.")
    scopes = models.JSONField(
        default=list,
        help_text="What the token opens: downloads, chat, completions, models (Scope).",
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        app_label = "accounts"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.display_prefix})"

    @property
    def display_prefix(self) -> str:
        return f"gh_{self.lookup}…"

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and not self.is_expired()
