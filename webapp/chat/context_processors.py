from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from .library.selectors import conversation_page


def sidebar(request: HttpRequest) -> dict[str, Any]:
    """Give every page the user's conversations, queried once and only if the page shows them."""
    if not request.user.is_authenticated:
        return {"sidebar_page": None}
    user = request.user
    return {"sidebar_page": SimpleLazyObject(lambda: conversation_page(user=user))}
