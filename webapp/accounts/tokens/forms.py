from __future__ import annotations

from datetime import datetime, timedelta

from django import forms
from django.utils import timezone

from .models import Scope

EXPIRY_CHOICES = [
    ("7", "In 7 days"),
    ("30", "In 30 days"),
    ("90", "In 90 days"),
    ("365", "In a year"),
    ("never", "Never"),
]


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="What the token is for, e.g. “cluster download script”.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    expiry = forms.ChoiceField(choices=EXPIRY_CHOICES, initial="30")
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices,
        initial=[Scope.DOWNLOADS],
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one scope."},
    )

    def expires_at(self) -> datetime | None:
        days = self.cleaned_data["expiry"]
        return None if days == "never" else timezone.now() + timedelta(days=int(days))
