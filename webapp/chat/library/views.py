"""Sidebar endpoints (pages of the list, search, rename, pin, delete, undo) and exports."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from webapp.core.errors import ApplicationError, NotFound, ValidationFailed

from . import export, selectors, services

_STATUS = {"not_found": 404, "forbidden": 403, "conflict": 409, "expired": 409}


def error_response(exc: ApplicationError) -> JsonResponse:
    """Return the error as the JSON body the sidebar shows."""
    return JsonResponse(exc.as_dict(), status=_STATUS.get(exc.code, 400))


def _json_login_required(view):  # type: ignore[no-untyped-def]
    def wrapped(request: HttpRequest, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not request.user.is_authenticated:
            return JsonResponse({"code": "signed_out", "detail": "Sign in first."}, status=401)
        return view(request, *args, **kwargs)

    return wrapped


@login_required
@require_GET
def conversation_page(request: HttpRequest) -> HttpResponse:
    page = selectors.conversation_page(user=request.user, before=request.GET.get("before"))
    return render(
        request,
        "chat/library/_items.html",
        {"sidebar_page": page, "after_group": request.GET.get("group", "")},
    )


@login_required
@require_GET
def conversation_search(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")
    hits = selectors.conversation_search(user=request.user, query=query)
    return render(request, "chat/library/_hits.html", {"hits": hits, "query": query})


def json_answer(call: Callable[[], Any], shape: Callable[[Any], dict[str, Any]]) -> JsonResponse:
    """Run one service call and answer with its result shaped as JSON, or with its error."""
    try:
        found = call()
    except ApplicationError as exc:
        return error_response(exc)
    return JsonResponse(shape(found))


@require_POST
@_json_login_required
def conversation_rename(request: HttpRequest, conversation_id: str) -> JsonResponse:
    return json_answer(
        lambda: services.conversation_rename(
            user=request.user, conversation_id=conversation_id, title=request.POST.get("title")
        ),
        lambda c: {"id": str(c.pk), "title": c.title},
    )


@require_POST
@_json_login_required
def conversation_pin(request: HttpRequest, conversation_id: str) -> JsonResponse:
    pinned = request.POST.get("pinned")
    if pinned not in ("true", "false"):
        return error_response(ValidationFailed("Say pinned=true or pinned=false."))
    return json_answer(
        lambda: services.conversation_pin(
            user=request.user, conversation_id=conversation_id, pinned=pinned == "true"
        ),
        lambda c: {"id": str(c.pk), "pinned": c.pinned},
    )


@require_POST
@_json_login_required
def conversation_delete(request: HttpRequest, conversation_id: str) -> JsonResponse:
    return json_answer(
        lambda: services.conversation_delete(user=request.user, conversation_id=conversation_id),
        lambda c: {"id": str(c.pk), "undo_seconds": settings.CHAT_UNDO_SECONDS},
    )


@require_POST
@_json_login_required
def conversation_restore(request: HttpRequest, conversation_id: str) -> JsonResponse:
    return json_answer(
        lambda: services.conversation_restore(user=request.user, conversation_id=conversation_id),
        lambda c: {"id": str(c.pk), "restored": True},
    )


@login_required
@require_GET
def conversation_export(
    request: HttpRequest, kind: str, conversation_id: str | None = None
) -> HttpResponse:
    if kind not in ("json", "md"):
        return HttpResponse("Export as .json or .md.", status=404, content_type="text/plain")
    try:
        if kind == "json":
            data = export.conversations_export_json(
                user=request.user, conversation_id=conversation_id
            )
            body, content_type = json.dumps(data, ensure_ascii=False, indent=1), "application/json"
        else:
            body = export.conversations_export_markdown(
                user=request.user, conversation_id=conversation_id
            )
            content_type = "text/markdown; charset=utf-8"
    except NotFound as exc:
        return HttpResponse(exc.detail, status=404, content_type="text/plain; charset=utf-8")
    name = f"gatehouse-{conversation_id or 'conversations'}-{timezone.now():%Y%m%d}.{kind}"
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
