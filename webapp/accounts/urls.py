from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("limits/", views.limits, name="account_limits"),
    path("limits.json", views.limits_json, name="account_limits_json"),
]
