"""Gates in the admin: fields, levels, licences. Requests, grants and the audit log are
read-only here: decisions go through the review pages, so they are recorded and take
effect everywhere."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from .models import (
    AccessRequest,
    AuditEntry,
    Gate,
    GateField,
    GateLevel,
    Grant,
    LicenceVersion,
    ReviewerSettings,
)
from .services.gates import gate_levels_changed
from .services.grants import licence_publish


class GateLevelInline(admin.TabularInline):
    model = GateLevel
    extra = 0
    fields = ["level", "description", "requestable", "auto_approve"]


class GateFieldInline(admin.TabularInline):
    model = GateField
    extra = 0
    fields = ["position", "name", "label", "kind", "required", "help_text", "choices"]


class LicenceVersionInline(admin.StackedInline):
    """Published versions are read-only (people accepted them); a new one is published."""

    model = LicenceVersion
    extra = 0
    can_delete = False
    fields = ["title", "text"]
    readonly_fields: list[str] = []
    verbose_name = "licence version"

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Gate)
class GateAdmin(admin.ModelAdmin):
    inlines = [GateLevelInline, GateFieldInline, LicenceVersionInline]
    list_display = ["name", "slug", "is_open", "renewal", "grant_days", "transparency_public"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["models_behind", "pages"]
    fieldsets = (
        (None, {"fields": ("slug", "name", "summary", "description", "is_open", "position")}),
        (
            "Rules",
            {
                "fields": (
                    "approve_domains",
                    "cooldown_days",
                    "grant_days",
                    "renewal",
                    "reviewer_group",
                    "transparency_public",
                )
            },
        ),
        ("Models and pages", {"fields": ("models_behind", "pages")}),
    )

    @admin.display(description="Models behind this gate")
    def models_behind(self, gate: Gate) -> str:
        models = gate.models.all() if gate.pk else []
        return format_html_join(", ", "{}", ((m.display_name,) for m in models)) or "none yet"

    @admin.display(description="Pages")
    def pages(self, gate: Gate) -> str:
        if not gate.pk:
            return "—"
        return format_html(
            '<a href="{}">gate page</a> · <a href="{}">report and audit export</a>',
            gate.get_absolute_url(),
            reverse("access:report", args=[gate.slug]),
        )

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is LicenceVersion:
            # Published through the service (numbered, recorded, holders told), never edited.
            formset.new_objects = [
                licence_publish(
                    gate=form.instance,
                    title=new.cleaned_data["title"],
                    text=new.cleaned_data["text"],
                    by=request.user,
                )
                for new in formset.extra_forms
                if new.has_changed() and new.is_valid()
            ]
            formset.changed_objects, formset.deleted_objects = [], []
            return
        super().save_formset(request, form, formset, change)
        if formset.model is GateLevel and change and formset.has_changed():
            gate_levels_changed(gate=form.instance, by=request.user)


@admin.register(AccessRequest)
class AccessRequestAdmin(ReadOnly):
    list_display = ["user", "gate", "kind", "status", "created_at", "decided_at"]
    list_filter = ["status", "kind", "gate"]
    search_fields = ["user__email"]


@admin.register(Grant)
class GrantAdmin(ReadOnly):
    list_display = ["user", "gate", "levels", "expires_at", "revoked_at"]
    list_filter = ["gate"]
    search_fields = ["user__email"]


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnly):
    list_display = ["at", "action", "outcome", "actor_email", "subject_email", "gate_slug", "ip"]
    list_filter = ["action", "outcome", "gate_slug"]
    search_fields = ["actor_email", "subject_email", "target"]


@admin.register(ReviewerSettings)
class ReviewerSettingsAdmin(admin.ModelAdmin):
    list_display = ["user", "notify", "last_digest_at"]
