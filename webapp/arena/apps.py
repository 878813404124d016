from __future__ import annotations

from django.apps import AppConfig


class ArenaConfig(AppConfig):
    name = "webapp.arena"
    label = "arena"
    verbose_name = "Compare and arena"
