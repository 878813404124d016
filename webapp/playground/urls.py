from __future__ import annotations

from django.urls import path

from . import views

app_name = "playground"
urlpatterns = [
    path("", views.playground, name="page"),
    path("complete", views.complete, name="complete"),
    path("code", views.code, name="code"),
    path("chat-template", views.chat_template, name="chat_template"),
    path("presets", views.preset_save, name="preset_save"),
    path("presets/<uuid:preset_id>/delete", views.preset_delete, name="preset_delete"),
]
