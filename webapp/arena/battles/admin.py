"""Staff enable models for the arena and set their weights, read battles, flag voters."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import ArenaEntry, Battle, VoterFlag
from .services import voter_flag


@admin.register(ArenaEntry)
class ArenaEntryAdmin(admin.ModelAdmin):
    list_display = ["language_model", "enabled", "weight"]
    list_editable = ["enabled", "weight"]
    list_filter = ["enabled"]
    search_fields = ["language_model__display_name", "language_model__slug"]
    autocomplete_fields = ["language_model"]


@admin.register(Battle)
class BattleAdmin(admin.ModelAdmin):
    """Read-only: battles are written by their services; staff may flag their voters."""

    list_display = ["created_at", "user", "model_a", "model_b", "winner", "counted"]
    list_filter = ["counted", "winner", "model_a", "model_b"]
    search_fields = ["id", "user__email", "not_counted_reason"]
    date_hierarchy = "created_at"
    list_select_related = ["user", "model_a", "model_b"]
    actions = ["flag_voters"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Flag the voters of the selected battles (leave them out of ratings)")
    def flag_voters(self, request: HttpRequest, queryset: QuerySet[Battle]) -> None:
        users = {battle.user for battle in queryset.select_related("user")}
        for user in users:
            voter_flag(user=user, reason="Flagged from the battles list.", flagged_by=request.user)
        self.message_user(request, f"Flagged {len(users)} voter(s).", messages.SUCCESS)


@admin.register(VoterFlag)
class VoterFlagAdmin(admin.ModelAdmin):
    list_display = ["user", "reason", "flagged_by", "created_at"]
    search_fields = ["user__email", "reason"]
    autocomplete_fields = ["user"]
    readonly_fields = ["flagged_by"]

    def save_model(self, request: HttpRequest, obj: VoterFlag, form: Any, change: bool) -> None:
        flag = voter_flag(user=obj.user, reason=obj.reason, flagged_by=request.user)
        obj.pk, obj.flagged_by = flag.pk, flag.flagged_by
