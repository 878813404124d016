"""The gate's weights page, the file URL (session or token) and the signed link."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from webapp.access.models import AuditOutcome, Gate

from .. import selectors
from ..authorize import (
    Downloader,
    DownloadRefused,
    access_check,
    link_downloader,
    request_downloader,
)
from ..links import link_sign
from ..models import WeightFile, file_name_problem
from ..services import download_record, weights_storage
from ..serving import StoredFile, file_response
from .refusals import refusal, wants_html


def link_url(request: HttpRequest, *, user_id: object, file: WeightFile, via: str = "") -> str:
    signed = link_sign(user_id=user_id, file_id=file.pk)
    url = reverse("weights:link", kwargs={"signed": signed, "name": file.name})
    return request.build_absolute_uri(url + (f"?via={via}" if via else ""))


def refused(
    request: HttpRequest, exc: DownloadRefused, *, via: str, gate: Gate | None, **detail: object
) -> HttpResponse:
    """Answer a refused attempt and record it (who, if known; why)."""
    gate = gate or exc.gate
    if exc.status == 401 and wants_html(request) and not request.headers.get("Authorization"):
        return redirect_to_login(request.get_full_path())
    download_record(
        gate=gate,
        user=exc.user,
        outcome=AuditOutcome.REFUSED,
        via=via,
        request=request,
        detail={"reason": exc.detail, **detail},
    )
    return refusal(request, exc.detail, status=exc.status, gate=gate)


def serve(request: HttpRequest, file: WeightFile, downloader: Downloader, via: str) -> HttpResponse:
    stored = StoredFile(
        storage=weights_storage(),
        path=file.storage_path,
        size=file.size,
        etag=file.sha256,
        filename=file.basename,
    )
    response = file_response(request, stored)
    status = response.status_code
    if status == 416 or (request.method == "GET" and status in (200, 206, 302)):
        _served_record(request, file=file, downloader=downloader, via=via, response=response)
    return response


def _served_record(
    request: HttpRequest,
    *,
    file: WeightFile,
    downloader: Downloader,
    via: str,
    response: HttpResponse,
) -> None:
    """Record a download, or a Range that could not be served as a refused attempt."""
    detail: dict[str, object] = {
        "status": response.status_code,
        "range": request.headers.get("Range"),
    }
    if response.status_code == 416:
        outcome = AuditOutcome.REFUSED
        detail["reason"] = getattr(request, "range_problem", "The range cannot be served.")
    else:
        outcome = AuditOutcome.OK
        detail["token"] = downloader.token.display_prefix if downloader.token else None
        # The answer's length; unknown when nginx or the object store sends the file.
        length = response.get("Content-Length")
        detail["bytes"] = int(length) if length else None
    download_record(
        gate=file.gate,
        user=downloader.user,
        outcome=outcome,
        via=via,
        request=request,
        file=file,
        detail=detail,
    )


@never_cache
def gate_weights(request: HttpRequest, gate: str) -> HttpResponse:
    found = selectors.gate_get(slug=gate)
    if found is None:
        return refusal(request, "No such gate.", status=404)
    try:
        access_check(downloader=Downloader(request.user), gate=found)
    except DownloadRefused as exc:
        return refused(request, exc, via="page", gate=found)
    context = {"gate": found, **files_context(request, gate=found)}
    return render(request, "weights/gate_weights.html", context)


def files_context(request: HttpRequest, *, gate: Gate) -> dict[str, object]:
    """What ``weights/_files.html`` shows a holder: files with their signed links, usage."""
    files = selectors.weight_file_list(gate=gate)
    return {
        "rows": [(file, link_url(request, user_id=request.user.pk, file=file)) for file in files],
        "hub_url": request.build_absolute_uri("/").rstrip("/"),
        "link_hours": settings.WEIGHTS["LINK_MAX_AGE"] // 3600,
    }


@require_safe
@never_cache
def file_download(request: HttpRequest, gate: str, name: str) -> HttpResponse:
    """Signed in: redirect to a signed link; with a personal token: serve the file here."""
    found = selectors.gate_get(slug=gate)
    if problem := file_name_problem(name):
        return refused(request, DownloadRefused(problem, status=400), via="file", gate=found)
    file = selectors.weight_file_get(gate=found, name=name) if found else None
    if file is None:
        return refusal(request, "No such file.", status=404, gate=found)
    try:
        downloader = request_downloader(request)
        access_check(downloader=downloader, gate=found)
    except DownloadRefused as exc:
        return refused(request, exc, via="file", gate=found, file=name)
    if downloader.token is not None:
        return serve(request, file, downloader, via="token")
    return HttpResponseRedirect(link_url(request, user_id=downloader.user.pk, file=file))


@require_safe
@never_cache
def link_download(request: HttpRequest, signed: str, name: str) -> HttpResponse:
    """A signed per-user link: no session needed, the signature names the user."""
    via = "hub" if request.GET.get("via") == "hub" else "link"
    if problem := file_name_problem(name):
        return refused(request, DownloadRefused(problem, status=400), via=via, gate=None)
    try:
        downloader, file = link_downloader(request, signed=signed, name=name)
        if file is None:
            return refusal(request, "This link's file is no longer offered.", status=404)
        access_check(downloader=downloader, gate=file.gate)
    except DownloadRefused as exc:
        return refused(request, exc, via=via, gate=exc.gate, file=name)
    return serve(request, file, downloader, via=via)
