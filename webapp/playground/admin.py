from __future__ import annotations

from django.contrib import admin

from .models import PlaygroundPreset


@admin.register(PlaygroundPreset)
class PlaygroundPresetAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "language_model", "updated_at")
    search_fields = ("name", "user__email")
    raw_id_fields = ("user", "language_model")
