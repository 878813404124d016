"""Read personal tokens."""

from __future__ import annotations

from typing import Any

from .models import PersonalToken


def token_list(*, user: Any) -> list[PersonalToken]:
    """Return ``user``'s tokens, newest first, revoked ones included (they say so)."""
    return list(PersonalToken.objects.filter(user=user))
