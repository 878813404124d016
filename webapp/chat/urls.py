from __future__ import annotations

from django.urls import path

from . import views
from .library.urls import urlpatterns as library_urls

app_name = "chat"
urlpatterns = [
    path("", views.home, name="home"),
    path("c/new", views.conversation_new, name="new"),
    path("c/<uuid:conversation_id>/", views.conversation_detail, name="conversation"),
    *library_urls,
]
