"""A playground preset: a model, a prompt and the parameters, saved under a name."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from webapp.core.models import BaseModel


class PlaygroundPreset(BaseModel):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="playground_presets"
    )
    name = models.CharField(max_length=80)
    # A model removed from the catalog leaves the prompt and parameters behind.
    language_model = models.ForeignKey(
        "catalog.LanguageModel", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    prompt = models.TextField(blank=True)
    params = models.JSONField(default=dict, blank=True, help_text="As checked for the model.")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["user", "name"], name="playground_preset_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name
