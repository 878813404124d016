from __future__ import annotations

from django import forms
from django.conf import settings


class StartForm(forms.Form):
    model = forms.SlugField(max_length=100)
    content = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), strip=True)

    def clean_content(self) -> str:
        content = self.cleaned_data["content"]
        if len(content) > settings.CHAT_MAX_MESSAGE_CHARS:
            raise forms.ValidationError(
                f"The message is too long (at most {settings.CHAT_MAX_MESSAGE_CHARS} characters)."
            )
        return content
