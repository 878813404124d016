"""Staff attach weight files; the stored file is read and its checksum verified on save."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin

from webapp.core.errors import ValidationFailed

from .models import WeightFile, validate_sha256
from .services import weight_file_save, weight_file_verify


class WeightFileForm(forms.ModelForm):
    expected_sha256 = forms.CharField(
        required=False,
        max_length=64,
        validators=[validate_sha256],
        help_text="The SHA-256 the publisher gives; the stored file must match it. "
        "Blank: the file's own checksum is recorded.",
    )

    class Meta:
        model = WeightFile
        fields = ["gate", "name", "storage_path"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        try:
            self.measured = weight_file_verify(
                name=data["name"],
                storage_path=data["storage_path"],
                sha256=data.get("expected_sha256", ""),
            )
        except ValidationFailed as exc:
            raise forms.ValidationError(exc.detail) from exc
        return data


@admin.register(WeightFile)
class WeightFileAdmin(admin.ModelAdmin):
    form = WeightFileForm
    list_display = ["name", "gate", "size", "sha256", "updated_at"]
    list_filter = ["gate"]
    search_fields = ["name", "sha256", "gate__slug"]
    readonly_fields = ["size", "sha256"]

    def save_model(self, request: Any, obj: WeightFile, form: Any, change: bool) -> None:
        size, sha256 = form.measured
        weight_file_save(
            gate=obj.gate,
            name=obj.name,
            storage_path=obj.storage_path,
            size=size,
            sha256=sha256,
            file=obj,
        )
