from __future__ import annotations

from django.urls import path

from . import views

app_name = "generations"
urlpatterns = [
    path("<uuid:generation_id>/", views.generation_detail, name="detail"),
]
