from __future__ import annotations

from django.urls import path

from . import views

app_name = "battles"
urlpatterns = [
    path("", views.arena_home, name="home"),
    path("battles/", views.battle_new, name="new"),
    path("<uuid:battle_id>/", views.battle_detail, name="detail"),
    path("<uuid:battle_id>/turns/", views.battle_turn, name="turn"),
    path("<uuid:battle_id>/vote/", views.battle_vote, name="vote"),
]
