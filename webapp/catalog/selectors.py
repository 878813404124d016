"""Read access to the catalog."""

from __future__ import annotations

import random
from typing import Any

import httpx

from .models import LanguageModel, ModelEndpoint
from .policy import Action, model_can_use


def model_list_usable(*, user: Any, action: Action = "chat") -> list[LanguageModel]:
    models = LanguageModel.objects.filter(is_active=True)
    return [m for m in models if model_can_use(user=user, model=m, action=action)]


def model_get_usable(*, user: Any, slug: str, action: Action = "view") -> LanguageModel | None:
    model = LanguageModel.objects.filter(slug=slug).first()
    if model is None or not model_can_use(user=user, model=model, action=action):
        return None
    return model


def endpoint_choose(*, model: LanguageModel) -> ModelEndpoint | None:
    """Return one active endpoint of ``model``, spreading requests across replicas."""
    endpoints = list(model.endpoints.filter(is_active=True))
    return random.choice(endpoints) if endpoints else None  # noqa: S311


def endpoint_any_healthy(*, timeout: float = 2.0) -> bool:
    """Return whether at least one active endpoint of an active model answers its health probe."""
    endpoints = ModelEndpoint.objects.filter(is_active=True, model__is_active=True).select_related(
        "model"
    )
    for endpoint in endpoints:
        path = "/health" if endpoint.model.backend == "tgi" else "/v1/models"
        url = endpoint.url.rstrip("/").removesuffix("/v1") + path
        headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
        try:
            if httpx.get(url, headers=headers, timeout=timeout).status_code == 200:
                return True
        except httpx.HTTPError:
            continue
    return False
