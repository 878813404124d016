"""Read access to the catalog."""

from __future__ import annotations

from typing import Any

from inference.params import BackendKind

from .models import LanguageModel, ModelEndpoint
from .policy import Action, model_can_use, models_usable


def model_list_usable(*, user: Any, action: Action = "chat") -> list[LanguageModel]:
    """Return the active models ``user`` may use for ``action``: three queries at most."""
    models = LanguageModel.objects.filter(is_active=True)
    return models_usable(user=user, models=models, action=action)


def model_get_usable(*, user: Any, slug: str, action: Action = "view") -> LanguageModel | None:
    model = LanguageModel.objects.filter(slug=slug).first()
    if model is None or not model_can_use(user=user, model=model, action=action):
        return None
    return model


def model_get(*, slug: str) -> LanguageModel | None:
    """Return the active model ``slug`` whoever asks (callers decide what to show)."""
    return LanguageModel.objects.filter(slug=slug, is_active=True).select_related("gate").first()


def endpoint_list_serving() -> list[tuple[BackendKind, str, str]]:
    """Return (backend kind, url, api key) of every active endpoint of an active model."""
    endpoints = ModelEndpoint.objects.filter(is_active=True, model__is_active=True)
    return list(endpoints.values_list("model__backend", "url", "api_key"))
