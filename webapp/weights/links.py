"""Signed per-user download links (``django.core.signing``).

A link carries who it was made for, which file, and until when it works,
signed with the site's key under its own salt. It needs no session, so
``curl`` and ``wget`` can follow it; access is still decided again on every
request for the user the link names.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core import signing
from django.utils import timezone
from django.utils.dateformat import format as date_format

from webapp.core.errors import ApplicationError

SALT = "gatehouse.weights.link"


class LinkRefused(ApplicationError):
    code = "link_refused"


@dataclass(frozen=True)
class Link:
    user_id: str
    file_id: str
    expires: int  # Unix time


def link_sign(*, user_id: Any, file_id: Any, now: float | None = None) -> str:
    """Return the signed part of a link for ``user_id`` to ``file_id``, valid LINK_MAX_AGE."""
    expires = int((now or time.time()) + settings.WEIGHTS["LINK_MAX_AGE"])
    return signing.dumps({"u": str(user_id), "f": str(file_id), "e": expires}, salt=SALT)


def link_read(signed: str, *, now: float | None = None) -> Link:
    """Return what ``signed`` says, or raise LinkRefused (tampered, cut short, expired)."""
    try:
        data = signing.loads(signed, salt=SALT)
        link = Link(user_id=str(data["u"]), file_id=str(data["f"]), expires=int(data["e"]))
    except (signing.BadSignature, KeyError, TypeError, ValueError) as exc:
        raise LinkRefused(
            "This download link is not valid: it was changed or cut short. "
            "Copy the whole link, or get a new one from the gate's page."
        ) from exc
    if link.expires <= (now or time.time()):
        when = datetime.fromtimestamp(link.expires, tz=UTC)
        stamp = date_format(timezone.localtime(when), "j F Y, H:i e")
        raise LinkRefused(
            f"This download link expired on {stamp}. Get a new one from the gate's page."
        )
    return link
