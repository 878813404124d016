"""Create, revoke and check personal tokens.

A token reads ``gh_<lookup><secret>``: 8 characters that find the row, then 32
that only its holder knows, all letters and digits (about 190 bits of chance
in the secret). The database keeps the lookup and the SHA-256 of the whole
token; the check compares digests with ``hmac.compare_digest``. Why SHA-256
and not a password hash: docs/decisions.md.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.formats import date_format

from webapp.core.errors import ApplicationError, NotFound, ValidationFailed

from .models import PersonalToken, Scope

PREFIX = "gh_"
LOOKUP_LENGTH = 8
SECRET_LENGTH = 32
_ALPHABET = string.ascii_letters + string.digits
TOKEN_LENGTH = len(PREFIX) + LOOKUP_LENGTH + SECRET_LENGTH


class TokenRefused(ApplicationError):
    """A token that cannot be used, with the reason its holder can act on."""

    code = "token_refused"


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def token_create(
    *, user: Any, name: str, scopes: list[str], expires_at: datetime | None = None
) -> tuple[PersonalToken, str]:
    """Create a token and return it with its secret, which is never readable again."""
    name = name.strip()
    if not name:
        raise ValidationFailed("Give the token a name, so you can tell it apart later.")
    if not scopes or set(scopes) - set(Scope.values):
        raise ValidationFailed(f"Choose scopes among: {', '.join(Scope.values)}.")
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationFailed("The expiry must be in the future.")
    for _ in range(5):  # a lookup collision is one in 62**8 per token: retry, never reuse
        lookup, secret = _random(LOOKUP_LENGTH), _random(SECRET_LENGTH)
        token = f"{PREFIX}{lookup}{secret}"
        try:
            with transaction.atomic():
                row = PersonalToken.objects.create(
                    user=user,
                    name=name[:100],
                    lookup=lookup,
                    digest=token_digest(token),
                    scopes=sorted(set(scopes)),
                    expires_at=expires_at,
                )
        except IntegrityError:
            continue
        return row, token
    raise ApplicationError("Could not create a token; try again.")


def token_revoke(*, user: Any, token_id: Any) -> PersonalToken:
    """Revoke one of ``user``'s tokens (revoking twice changes nothing)."""
    token = PersonalToken.objects.filter(user=user, pk=token_id).first()
    if token is None:
        raise NotFound("No such token.")
    if token.revoked_at is None:
        PersonalToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        token.refresh_from_db(fields=["revoked_at"])
    return token


def _when(moment: datetime) -> str:
    return date_format(timezone.localtime(moment), "j F Y, H:i e")


def token_authenticate(*, secret: str, scope: str, ip: str | None = None) -> PersonalToken:
    """Return the usable token ``secret`` names, with its user, and note where it was used.

    Raises TokenRefused with a readable reason: unknown, revoked, expired, a
    deactivated account, or a scope the token does not have.
    """
    unknown = TokenRefused(
        "This personal token is not valid: check that it was copied whole, "
        "or create a new one in your account settings."
    )
    if len(secret) != TOKEN_LENGTH or not secret.startswith(PREFIX):
        raise unknown
    lookup = secret[len(PREFIX) : len(PREFIX) + LOOKUP_LENGTH]
    token = PersonalToken.objects.select_related("user").filter(lookup=lookup).first()
    if token is None or not hmac.compare_digest(token.digest, token_digest(secret)):
        raise unknown
    now = timezone.now()
    if token.revoked_at is not None:
        raise TokenRefused(f"This personal token was revoked on {_when(token.revoked_at)}.")
    if token.is_expired(now):
        raise TokenRefused(f"This personal token expired on {_when(token.expires_at)}.")
    if not token.user.is_active:
        raise TokenRefused("The account this personal token belongs to is deactivated.")
    if scope not in token.scopes:
        raise TokenRefused(
            f"This personal token does not have the {scope} scope: create a token with it "
            "in your account settings.",
            code="missing_scope",
        )
    PersonalToken.objects.filter(pk=token.pk).update(last_used_at=now, last_used_ip=ip)
    token.last_used_at, token.last_used_ip = now, ip
    return token
