from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from inference.params import MAX_STOP_SEQUENCES, params_controls


class StartForm(forms.Form):
    model = forms.SlugField(max_length=100)
    preset = forms.UUIDField(required=False)
    content = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), strip=True)

    def clean_content(self) -> str:
        content = self.cleaned_data["content"]
        if len(content) > settings.CHAT_MAX_MESSAGE_CHARS:
            raise forms.ValidationError(
                f"The message is too long (at most {settings.CHAT_MAX_MESSAGE_CHARS} characters)."
            )
        return content


PARAM_LABELS = {
    "max_new_tokens": "Max new tokens",
    "temperature": "Temperature",
    "top_p": "Top p",
    "top_k": "Top k",
    "repetition_penalty": "Repetition penalty",
    "seed": "Seed",
}


class SettingsForm(forms.Form):
    """A conversation's system prompt, model and sampling parameters.

    The numeric inputs take their bounds from the backend's ranges
    (``inference.params.params_controls``); blank means the model's default.
    The values are checked again by ``conversation_configure``.
    """

    model = forms.ChoiceField()
    system_prompt = forms.CharField(
        required=False, strip=True, widget=forms.Textarea(attrs={"rows": 4})
    )
    stop = forms.CharField(
        required=False,
        label="Stop sequences",
        help_text=f"One per line, at most {MAX_STOP_SEQUENCES}.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args: Any, conversation: Any, models: list[Any], **kwargs: Any) -> None:
        model = conversation.model
        kwargs.setdefault(
            "initial",
            {
                "model": model.slug,
                "system_prompt": conversation.system_prompt,
                "stop": "\n".join(conversation.params.get("stop", [])),
                **{k: v for k, v in conversation.params.items() if k != "stop"},
            },
        )
        super().__init__(*args, **kwargs)
        choices = [(m.slug, m.display_name) for m in models]
        if model.slug not in dict(choices):  # access gone: shown, but not offered to others
            choices.insert(0, (model.slug, model.display_name))
        self.fields["model"].choices = choices
        self.param_names = []
        for control in params_controls(model.backend, context_length=model.context_length):
            attrs: dict[str, Any] = {"step": control.step}
            if control.min is not None:
                attrs["min"] = control.min
            if control.max is not None:
                attrs["max"] = control.max
            default = model.default_params.get(control.name)
            if default is not None:
                attrs["placeholder"] = f"default {default}"
            field_class = forms.IntegerField if control.kind == "int" else forms.FloatField
            self.fields[control.name] = field_class(
                required=False,
                label=PARAM_LABELS.get(control.name, control.name),
                widget=forms.NumberInput(attrs=attrs),
            )
            self.param_names.append(control.name)

    def params(self) -> dict[str, Any]:
        """Return the parameters set in the form (blank ones are left to the model)."""
        data = {name: self.cleaned_data[name] for name in self.param_names}
        params: dict[str, Any] = {k: v for k, v in data.items() if v is not None}
        stop = [line for line in self.cleaned_data["stop"].splitlines() if line.strip()]
        if stop:
            params["stop"] = stop
        return params

    def param_fields(self) -> list[Any]:
        return [self[name] for name in self.param_names]


class PresetForm(forms.Form):
    name = forms.CharField(max_length=80, strip=True)
    public = forms.BooleanField(required=False, label="Publish for everyone")
