from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from .selectors import conversation_list


def sidebar(request: HttpRequest) -> dict[str, Any]:
    """Give every page the user's conversations, queried once and only if the page shows them."""
    if not request.user.is_authenticated:
        return {"conversations": None}
    user = request.user
    return {"conversations": SimpleLazyObject(lambda: list(conversation_list(user=user)))}
