from __future__ import annotations

from django.urls import path

from . import views

app_name = "compare"
urlpatterns = [
    path("", views.compare_home, name="home"),
    path("new", views.compare_new, name="new"),
    path("<uuid:session_id>/", views.compare_session, name="session"),
    path("<uuid:session_id>/send", views.compare_send, name="send"),
    path(
        "<uuid:session_id>/columns/<uuid:column_id>/continue",
        views.compare_continue,
        name="continue",
    ),
]
