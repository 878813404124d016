"""The Hub-compatible download API, at the site's root as huggingface_hub expects."""

from __future__ import annotations

from django.urls import path

from .views import hub

urlpatterns = [
    path("api/models/<slug:repo>", hub.model_info, name="hub_model_info"),
    path(
        "api/models/<slug:repo>/revision/<str:revision>",
        hub.model_info,
        name="hub_model_info_revision",
    ),
    path("<slug:repo>/resolve/<str:revision>/<path:name>", hub.resolve, name="hub_resolve"),
]
