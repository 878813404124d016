"""Read access to generations."""

from __future__ import annotations

from typing import Any

from webapp.core.errors import NotFound
from webapp.core.ids import is_uuid

from .models import Generation


def generation_get(*, user: Any, generation_id: Any) -> Generation:
    """Return the user's generation, or raise NotFound (someone else's looks the same)."""
    if not user.is_authenticated or not is_uuid(generation_id):
        raise NotFound("There is no such reply.")
    generation = (
        Generation.objects.select_related("language_model")
        .filter(pk=generation_id, user=user)
        .first()
    )
    if generation is None:
        raise NotFound("There is no such reply.")
    return generation


def generation_summary(generation: Generation) -> dict[str, Any]:
    """Return what a page shows of a generation while and after it streams."""
    model = generation.language_model
    data: dict[str, Any] = {
        "id": str(generation.pk),
        "status": generation.status,
        "model": {"slug": model.slug, "name": model.display_name},
        "stats": generation.stats(),
    }
    if generation.error_code:
        data["error"] = {"code": generation.error_code, "detail": generation.error_detail}
    if generation.trimmed_messages:
        data["trimmed_messages"] = generation.trimmed_messages
    return data


def generation_details(generation: Generation) -> dict[str, Any]:
    """Return everything needed to reproduce the generation: model, revision, endpoint,
    the exact parameters and the input the backend received."""
    model = generation.language_model
    return {
        **generation_summary(generation),
        "origin": generation.origin,
        "text": generation.text,
        "backend": model.backend,
        "backend_model_id": generation.backend_model_id,
        "backend_revision": generation.backend_revision,
        "system_fingerprint": generation.system_fingerprint,
        "endpoint": generation.endpoint_url,
        "params": generation.params,
        "input": {
            "messages": generation.messages,
            "prompt": generation.prompt,
            "rendered_prompt": generation.rendered_prompt,
        },
        "tokens": generation.token_details,
        "created_at": generation.created_at.isoformat(),
        "started_at": generation.started_at.isoformat() if generation.started_at else None,
        "finished_at": generation.finished_at.isoformat() if generation.finished_at else None,
    }
