from __future__ import annotations

from django.urls import path, re_path

from . import views

app_name = "api"
urlpatterns = [
    path("models", views.models, name="models"),
    path("models/<path:slug>", views.model, name="model"),
    path("chat/completions", views.chat_completions, name="chat_completions"),
    path("completions", views.completions, name="completions"),
    path("openapi.json", views.openapi_document, name="openapi"),
    re_path(r"^(?P<path>.*)$", views.unknown, name="unknown"),
]
