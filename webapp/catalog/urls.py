from __future__ import annotations

from django.urls import path

from . import views

app_name = "catalog"
urlpatterns = [path("<slug:slug>/", views.model_detail, name="model_detail")]
