"""Personal tokens as they arrive on a request: ``Authorization: Bearer gh_…``."""

from __future__ import annotations

from django.http import HttpRequest

from .models import PersonalToken
from .services import TokenRefused, token_authenticate


def bearer_secret(request: HttpRequest) -> str | None:
    """Return the bearer credential of ``request``, or None if it sends none."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def request_token(request: HttpRequest, *, scope: str) -> PersonalToken | None:
    """Return the usable token ``request`` carries, None if it carries none.

    Raises TokenRefused when it carries one that cannot be used.
    """
    secret = bearer_secret(request)
    if secret is None:
        return None
    return token_authenticate(secret=secret, scope=scope, ip=request.META.get("REMOTE_ADDR"))


__all__ = ["TokenRefused", "bearer_secret", "request_token"]
