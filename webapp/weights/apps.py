from __future__ import annotations

from django.apps import AppConfig


class WeightsConfig(AppConfig):
    name = "webapp.weights"
    label = "weights"
    verbose_name = "Weight files"
    default_auto_field = "django.db.models.BigAutoField"
