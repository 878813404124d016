"""Who is downloading, and may they: the same decision for links, tokens and the Hub API.

Every request asks the access rule again (``gate_refusal(..., level="weights")``),
so a revocation, an expiry, a licence not yet accepted or a deactivated
account stops the next request, halfway through a download included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from webapp.access.models import Gate, Level
from webapp.access.selectors.rule import gate_refusal
from webapp.accounts.models import PersonalToken, Scope, User
from webapp.accounts.tokens.http import request_token
from webapp.accounts.tokens.services import TokenRefused
from webapp.core.errors import ApplicationError

from .links import LinkRefused, link_read
from .models import WeightFile


class DownloadRefused(ApplicationError):
    """Refused, with the HTTP status to answer and the user and gate it concerns, if known."""

    code = "download_refused"

    def __init__(
        self, detail: str, *, status: int = 403, user: Any = None, gate: Gate | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.user, self.gate = status, user, gate


@dataclass(frozen=True)
class Downloader:
    user: Any
    token: PersonalToken | None = None


def token_downloader(request: HttpRequest) -> Downloader | None:
    """Return the holder of the request's personal token, None if it sends none."""
    try:
        token = request_token(request, scope=Scope.DOWNLOADS)
    except TokenRefused as exc:
        raise DownloadRefused(exc.detail, status=401) from exc
    return None if token is None else Downloader(token.user, token)


def request_downloader(request: HttpRequest) -> Downloader:
    """The token's holder if the request sends one, else the signed-in user (maybe anonymous)."""
    return token_downloader(request) or Downloader(request.user)


def access_check(*, downloader: Downloader, gate: Gate) -> None:
    """Raise DownloadRefused unless ``downloader`` holds the weights level of ``gate`` now."""
    reason = gate_refusal(user=downloader.user, gate=gate, level=Level.WEIGHTS)
    if reason is not None:
        status = 401 if not downloader.user.is_authenticated else 403
        raise DownloadRefused(reason, status=status, user=downloader.user, gate=gate)


def link_downloader(request: HttpRequest, *, signed: str, name: str) -> tuple[Downloader, Any]:
    """Return who the signed link was made for and its file (None if no longer offered)."""
    try:
        link = link_read(signed)
    except LinkRefused as exc:
        raise DownloadRefused(exc.detail) from exc
    file = WeightFile.objects.select_related("gate").filter(pk=link.file_id).first()
    if file is not None and file.name != name:
        file = None
    gate = file.gate if file else None
    user = User.objects.filter(pk=link.user_id).first()
    if user is None or not user.is_active:
        raise DownloadRefused(
            "The account this download link was made for is deactivated.", gate=gate
        )
    signed_in = request.user
    if signed_in.is_authenticated and signed_in.pk != user.pk:
        raise DownloadRefused(
            "This download link was made for another account: get your own from the gate's page.",
            user=signed_in,
            gate=gate,
        )
    try:
        holder = token_downloader(request)
    except DownloadRefused as exc:
        exc.gate = gate
        raise
    if holder is not None and holder.user.pk != user.pk:
        raise DownloadRefused(
            "This download link was made for another account than the token's.",
            user=holder.user,
            gate=gate,
        )
    return Downloader(user, holder.token if holder else None), file
