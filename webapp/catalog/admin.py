from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from .models import LanguageModel, ModelEndpoint
from .services import MODEL_FIELDS, ModelSpecError, model_access_changed, model_params_check


class EndpointForm(forms.ModelForm):
    """The API key is write-only: it is never rendered back, and blank keeps the stored one."""

    api_key = forms.CharField(
        required=False,
        label="New API key",
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave blank to keep the current key.",
    )
    clear_api_key = forms.BooleanField(required=False, label="Remove the stored key")

    class Meta:
        model = ModelEndpoint
        fields = ["url", "api_key", "is_active", "max_concurrent"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Not even as an initial value: no widget can print it, and only a typed key is a change.
        self.initial.pop("api_key", None)

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
    readonly_fields = ["key_status", "health"]

    def get_fields(self, request: HttpRequest, obj: LanguageModel | None = None) -> list[str]:
        # Without change permission every field is shown read-only, with its stored value:
        # the key is then left out, so no page ever prints it.
        if self.has_change_permission(request, obj):
            fields = ["url", "api_key", "clear_api_key", "is_active", "max_concurrent"]
            return [*fields, "key_status", "health"]
        return ["url", "is_active", "max_concurrent", "key_status", "health"]

    @admin.display(description="Health")
    def health(self, endpoint: ModelEndpoint) -> str:
        if endpoint.checked_at is None:
            return "not probed yet"
        state = "healthy" if endpoint.healthy else f"failing: {endpoint.health_detail}"
        reported = (
            f", reports {endpoint.reported_capacity} at once" if endpoint.reported_capacity else ""
        )
        return f"{state}{reported} (checked {endpoint.checked_at:%Y-%m-%d %H:%M:%S})"

    @admin.display(description="API key")
    def key_status(self, endpoint: ModelEndpoint) -> str:
        return "set" if endpoint.api_key else "not set"


class LanguageModelForm(forms.ModelForm):
    licence_url = forms.URLField(required=False, assume_scheme="https")

    class Meta:
        model = LanguageModel
        fields = ["slug", *MODEL_FIELDS, "gate", "allowed_groups"]

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
    list_display = [
        "display_name",
        "slug",
        "backend",
        "access_policy",
        "gate",
        "is_active",
        "position",
    ]
    list_filter = ["backend", "access_policy", "is_active"]
    search_fields = ["slug", "display_name"]
    prepopulated_fields = {"slug": ["display_name"]}
    filter_horizontal = ["allowed_groups"]

    def save_model(self, request: HttpRequest, obj: LanguageModel, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and {"access_policy", "is_active", "gate"} & set(form.changed_data):
            model_access_changed(model=obj)
