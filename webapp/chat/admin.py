"""Presets in the admin: staff see everyone's and publish or unpublish them for every user.

Conversations and messages are the users' own: they stay out of the admin.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .configure import presets_publish
from .models import Preset


@admin.register(Preset)
class PresetAdmin(admin.ModelAdmin):
    """Read-only but for publishing: a preset's text and parameters are its owner's."""

    list_display = ["name", "user", "public", "updated_at"]
    list_filter = ["public"]
    search_fields = ["name", "user__email", "system_prompt"]
    list_select_related = ["user"]
    fields = ["name", "user", "public", "system_prompt", "params", "created_at", "updated_at"]
    actions = ["publish", "unpublish"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    # Publishing presets is a staff duty (as on the presets page), not a model permission.
    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    @admin.action(description="Publish the selected presets for every user")
    def publish(self, request: HttpRequest, queryset: QuerySet[Preset]) -> None:
        self._publish(request, queryset, public=True)

    @admin.action(description="Unpublish the selected presets (their owners keep them)")
    def unpublish(self, request: HttpRequest, queryset: QuerySet[Preset]) -> None:
        self._publish(request, queryset, public=False)

    def _publish(self, request: HttpRequest, queryset: QuerySet[Preset], *, public: bool) -> None:
        count = presets_publish(
            user=request.user, preset_ids=list(queryset.values_list("pk", flat=True)), public=public
        )
        word = "Published" if public else "Unpublished"
        self.message_user(request, f"{word} {count} preset{'s' * (count != 1)}.", messages.SUCCESS)
