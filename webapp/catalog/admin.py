from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin

from .models import LanguageModel, ModelEndpoint
from .services import MODEL_FIELDS, ModelSpecError, model_params_check


class EndpointForm(forms.ModelForm):
    """The API key is write-only: it is never rendered back, and blank keeps the stored one."""

    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave blank to keep the current key.",
    )
    clear_api_key = forms.BooleanField(required=False, label="Remove the stored key")

    class Meta:
        model = ModelEndpoint
        fields = ["url", "api_key", "is_active"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("clear_api_key"):
            data["api_key"] = ""
        elif not data.get("api_key") and self.instance.pk:
            data["api_key"] = self.instance.api_key
        return data


class EndpointInline(admin.TabularInline):
    model = ModelEndpoint
    form = EndpointForm
    extra = 1


class LanguageModelForm(forms.ModelForm):
    licence_url = forms.URLField(required=False, assume_scheme="https")

    class Meta:
        model = LanguageModel
        fields = ["slug", *MODEL_FIELDS, "allowed_groups"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("backend"):
            try:
                model_params_check(
                    backend=data["backend"],
                    params=data.get("default_params") or {},
                    context_length=data.get("context_length") or 4096,
                )
            except ModelSpecError as exc:
                self.add_error("default_params", str(exc))
        return data


@admin.register(LanguageModel)
class LanguageModelAdmin(admin.ModelAdmin):
    form = LanguageModelForm
    inlines = [EndpointInline]
    list_display = ["display_name", "slug", "backend", "access_policy", "is_active", "position"]
    list_filter = ["backend", "access_policy", "is_active"]
    search_fields = ["slug", "display_name"]
    prepopulated_fields = {"slug": ["display_name"]}
    filter_horizontal = ["allowed_groups"]
