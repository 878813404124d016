"""The one access rule: may this user use this model for this action.

Every entry point (pages, websocket, API, arena pairing, weight downloads,
admin previews) asks ``model_can_use``; lists ask ``model_list_usable``,
which applies the same function.
"""

from __future__ import annotations

from typing import Any, Literal

from .models import AccessPolicy, LanguageModel

Action = Literal["view", "chat", "arena", "api", "download"]


def model_can_use(*, user: Any, model: LanguageModel, action: Action = "chat") -> bool:
    if not model.is_active:
        return False
    if getattr(user, "is_staff", False) and user.is_active:
        return True
    if model.access_policy == AccessPolicy.PUBLIC:
        return action == "view" or bool(user.is_authenticated)
    if not user.is_authenticated or not user.is_active:
        return False
    # Gated models need a grant and private ones a group: both arrive with the
    # gated-access work; until then only staff (above) may use them.
    return model.access_policy == AccessPolicy.REGISTERED
