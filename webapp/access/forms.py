"""Forms: the request form built from a gate's fields, and the reviewer's decisions."""

from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.utils import timezone
from django_countries import countries

from .models import FieldKind, Gate, GateField, Level

MAX_TEXT = 500
MAX_LONG_TEXT = 5000
FIELD_PREFIX = "answer_"
# What the request form may carry besides the gate's own fields.
REQUEST_KEYS = {"csrfmiddlewaretoken", "levels", "licence", "accept_licence"}


def _field(spec: GateField) -> forms.Field:
    common: dict[str, Any] = {
        "label": spec.label,
        "required": spec.required,
        "help_text": spec.help_text,
    }
    if spec.kind == FieldKind.LONG_TEXT:
        return forms.CharField(max_length=MAX_LONG_TEXT, widget=forms.Textarea, **common)
    if spec.kind == FieldKind.SELECT:
        choices = [("", "—")] + [(c, c) for c in spec.choice_list()]
        return forms.ChoiceField(choices=choices, **common)
    if spec.kind == FieldKind.COUNTRY:
        return forms.ChoiceField(choices=[("", "—"), *countries], **common)
    if spec.kind == FieldKind.DATE:
        return forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), **common)
    if spec.kind == FieldKind.CHECKBOX:
        return forms.BooleanField(**common)
    if spec.kind == FieldKind.URL:
        return forms.URLField(max_length=MAX_TEXT, assume_scheme="https", **common)
    return forms.CharField(max_length=MAX_TEXT, **common)


def _stored(value: Any) -> Any:
    """An answer as JSON keeps it: dates as ISO text."""
    return value.isoformat() if isinstance(value, datetime.date) else value


class AccessRequestForm(forms.Form):
    """The gate's questions, the levels asked for, and the licence accepted."""

    levels = forms.MultipleChoiceField(
        choices=Level.choices, widget=forms.CheckboxSelectMultiple, label="Access asked for"
    )
    licence = forms.CharField(widget=forms.HiddenInput, required=False)
    accept_licence = forms.BooleanField(
        required=False, label="I have read the licence above and accept it."
    )

    def __init__(self, *args: Any, gate: Gate, licence: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate, self.licence_version = gate, licence
        requestable = [level for level in gate.levels.all() if level.requestable]
        self.fields["levels"].choices = [(lv.level, lv.get_level_display()) for lv in requestable]
        if licence is not None:
            self.fields["licence"].initial = str(licence.pk)
            self.fields["accept_licence"].required = True
        else:
            del self.fields["accept_licence"]
        for spec in gate.fields.all():
            self.fields[FIELD_PREFIX + spec.name] = _field(spec)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        known = REQUEST_KEYS | {FIELD_PREFIX + f.name for f in self.gate.fields.all()}
        if self.is_bound and (unknown := sorted(set(self.data) - known)):
            raise forms.ValidationError(
                f"This form has no field {', '.join(unknown)}; reload the page and try again.",
                code="unknown_field",
            )
        return data

    def answers(self) -> dict[str, Any]:
        return {
            name.removeprefix(FIELD_PREFIX): _stored(value)
            for name, value in self.cleaned_data.items()
            if name.startswith(FIELD_PREFIX)
        }


class ApproveForm(forms.Form):
    levels = forms.MultipleChoiceField(
        choices=Level.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Leave all unticked to give what each request asked for.",
    )
    expires_on = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Blank: the gate's default length.",
    )

    def expires_at(self) -> datetime.datetime | None:
        day = self.cleaned_data.get("expires_on")
        if day is None:
            return None
        end = datetime.datetime.combine(day, datetime.time(23, 59, 59))
        return timezone.make_aware(end, datetime.UTC)


class ReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        label="Reason (the person reads it)",
    )
