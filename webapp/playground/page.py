"""What the playground page shows: the models on offer, the chosen one's controls, a
loaded preset's values and the user's presets."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.http import HttpRequest
from django.urls import reverse

from inference.params import MAX_STOP_SEQUENCES

from .selectors import playground_fields, playground_models, preset_get, preset_list

DEFAULT_ALTERNATIVES = 3  # the token view is the point of the playground: on unless said


def page_context(request: HttpRequest) -> dict[str, Any]:
    user = request.user
    models = playground_models(user=user)
    preset = preset_get(user=user, preset_id=request.GET.get("preset"))
    if request.GET.get("preset") and preset is None:
        messages.error(request, "There is no such preset.")
    wanted = request.GET.get("model") or (
        preset.language_model.slug if preset and preset.language_model else ""
    )
    model = next((m for m in models if m.slug == wanted), models[0] if models else None)
    if wanted and model is not None and model.slug != wanted:
        messages.error(request, "That model is not in the playground for you: showing another.")
    values = dict(preset.params) if preset and model and preset.language_model == model else {}
    if not values and model is not None:
        values = _starting_values(model.backend)
    context: dict[str, Any] = {
        "models": models,
        "model": model,
        "preset": preset,
        "presets": preset_list(user=user),
        "prompt": preset.prompt if preset else "",
        "max_stop": MAX_STOP_SEQUENCES,
    }
    if model is not None:
        context["fields"] = playground_fields(model=model, values=values)
        context["stop"] = "\n".join(values.get("stop", []))
        context["grammar"] = grammar = values.get("grammar") or {}
        context["grammar_text"] = _grammar_text(grammar)
        context["config"] = _config(model)
    return context


def _grammar_text(grammar: dict[str, Any]) -> str:
    value = grammar.get("value", "")
    return value if isinstance(value, str) else json.dumps(value, indent=2)


def _starting_values(backend: str) -> dict[str, Any]:
    if backend == "tgi":
        return {"details": True, "top_n_tokens": DEFAULT_ALTERNATIVES}
    return {"logprobs": DEFAULT_ALTERNATIVES}


def _config(model: Any) -> dict[str, Any]:
    """What the page's script needs, as JSON."""
    return {
        "model": model.slug,
        "backend": model.backend,
        "wsPath": "/ws/chat/",
        "generationsPath": reverse(
            "generations:detail", args=["00000000-0000-0000-0000-000000000000"]
        ),
        "completeUrl": reverse("playground:complete"),
        "codeUrl": reverse("playground:code"),
        "templateUrl": reverse("playground:chat_template"),
        "presetUrl": reverse("playground:preset_save"),
    }
