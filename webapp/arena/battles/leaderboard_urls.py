from __future__ import annotations

from django.urls import path

from . import leaderboard_views as views

app_name = "leaderboard"
urlpatterns = [
    path("", views.leaderboard, name="leaderboard"),
    path("recompute", views.recompute, name="recompute"),
    path("battles.jsonl", views.export, name="export"),
]
