from __future__ import annotations

from django.urls import path

from .views import browser

app_name = "weights"
urlpatterns = [
    path("<slug:gate>/", browser.gate_weights, name="gate"),
    path("<slug:gate>/files/<path:name>", browser.file_download, name="file"),
    path("d/<str:signed>/<path:name>", browser.link_download, name="link"),
]
