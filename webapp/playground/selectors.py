"""Read access for the playground: the models it offers, their controls, presets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from inference.params import (
    COMPLETION_BACKENDS,
    COMPLETION_FLAGS,
    WIRE_NAMES,
    params_controls,
)
from webapp.catalog.models import LanguageModel
from webapp.catalog.policy import Action
from webapp.catalog.selectors import model_list_usable
from webapp.core.ids import is_uuid

from .models import PlaygroundPreset

ACTION: Action = (
    "chat"  # the access level a playground completion needs (generations' ORIGIN_ACTIONS)
)


def playground_models(*, user: Any) -> list[LanguageModel]:
    """Return the models ``user`` may use whose backend offers raw completion."""
    return [
        model
        for model in model_list_usable(user=user, action=ACTION)
        if model.backend in COMPLETION_BACKENDS
    ]


@dataclass(frozen=True)
class Field:
    """One control of the playground's form, as the template draws it."""

    name: str  # Gatehouse's name, as sent and saved
    label: str  # the backend's own name for it
    kind: str  # "int", "float", "bool", "choice"
    min: float | None = None
    max: float | None = None
    step: float | None = None
    default: Any = None  # the model's default, shown as a placeholder
    value: Any = None  # the preset's value, if one is loaded


def playground_fields(*, model: LanguageModel, values: dict[str, Any]) -> list[Field]:
    """Return the numeric and on/off controls of ``model``'s backend, bounded by its ranges."""
    backend = model.backend
    wire = WIRE_NAMES[backend]  # type: ignore[index]
    fields = [
        Field(
            name=c.name,
            label=wire.get(c.name, c.name),
            kind=c.kind,
            min=c.min,
            max=c.max,
            step=c.step,
            default=model.default_params.get(c.name),
            value=values.get(c.name),
        )
        for c in params_controls(backend, context_length=model.context_length, completion=True)  # type: ignore[arg-type]
    ]
    for name in COMPLETION_FLAGS[backend]:  # type: ignore[index]
        kind = "choice" if name == "do_sample" else "bool"
        fields.append(Field(name=name, label=name, kind=kind, value=values.get(name)))
    return fields


def preset_list(*, user: Any) -> list[PlaygroundPreset]:
    return list(PlaygroundPreset.objects.filter(user=user).select_related("language_model"))


def preset_get(*, user: Any, preset_id: Any) -> PlaygroundPreset | None:
    if not is_uuid(preset_id):
        return None
    return PlaygroundPreset.objects.filter(user=user, pk=preset_id).first()
