from __future__ import annotations

from django.urls import path

from . import views

app_name = "accounts"
urlpatterns = [
    path("", views.token_list, name="tokens"),
    path("new/", views.token_new, name="token_new"),
    path("<uuid:token_id>/revoke/", views.token_revoke, name="token_revoke"),
]
