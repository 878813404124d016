from __future__ import annotations

from django.contrib import admin

from .models import Generation


@admin.register(Generation)
class GenerationAdmin(admin.ModelAdmin):
    """Read-only: generations are written by their services, never by hand."""

    list_display = ["created_at", "user", "language_model", "origin", "status", "generated_tokens"]
    list_filter = ["origin", "status", "language_model"]
    search_fields = ["id", "user__email"]
    date_hierarchy = "created_at"
    list_select_related = ["user", "language_model"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
