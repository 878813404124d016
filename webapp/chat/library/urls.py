from __future__ import annotations

from django.urls import path

from . import share_views, views

urlpatterns = [
    path("c/list", views.conversation_page, name="list"),
    path("c/search", views.conversation_search, name="search"),
    path("c/data", share_views.data_page, name="data"),
    path("c/export.<str:kind>", views.conversation_export, name="export_all"),
    path("c/<uuid:conversation_id>/rename", views.conversation_rename, name="rename"),
    path("c/<uuid:conversation_id>/pin", views.conversation_pin, name="pin"),
    path("c/<uuid:conversation_id>/delete", views.conversation_delete, name="delete"),
    path("c/<uuid:conversation_id>/restore", views.conversation_restore, name="restore"),
    path("c/<uuid:conversation_id>/share", share_views.share_create, name="share_create"),
    path("c/<uuid:conversation_id>/export.<str:kind>", views.conversation_export, name="export"),
    path("s/<str:token>", share_views.share_detail, name="share"),
    path("s/<str:token>/continue", share_views.share_continue, name="share_continue"),
    path("s/<str:token>/revoke", share_views.share_revoke, name="share_revoke"),
]
