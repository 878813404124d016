from __future__ import annotations

from django.urls import path

from . import settings_views, views
from .library.urls import urlpatterns as library_urls

app_name = "chat"
urlpatterns = [
    path("", views.home, name="home"),
    path("c/new", views.conversation_new, name="new"),
    path("c/<uuid:conversation_id>/", views.conversation_detail, name="conversation"),
    path(
        "c/<uuid:conversation_id>/settings",
        settings_views.conversation_settings,
        name="settings",
    ),
    path("c/<uuid:conversation_id>/preset", settings_views.preset_create, name="preset_new"),
    path("presets/", settings_views.preset_list, name="presets"),
    path("presets/<uuid:preset_id>/publish", settings_views.preset_publish, name="preset_publish"),
    path("presets/<uuid:preset_id>/delete", settings_views.preset_delete, name="preset_delete"),
    *library_urls,
]
