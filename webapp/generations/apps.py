from __future__ import annotations

from django.apps import AppConfig


class GenerationsConfig(AppConfig):
    name = "webapp.generations"
    label = "generations"
    verbose_name = "Generations"
