from __future__ import annotations

from django.apps import AppConfig


class PlaygroundConfig(AppConfig):
    name = "webapp.playground"
    label = "playground"
    verbose_name = "Playground"
