from __future__ import annotations

from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "webapp.access"
    label = "access"
    verbose_name = "Gated access"
    default_auto_field = "django.db.models.BigAutoField"
