from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from webapp import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("models/", include("webapp.catalog.urls")),
    path("generations/", include("webapp.generations.urls")),
    path("", include("webapp.chat.urls")),
]
