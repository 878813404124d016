"""Compare pages: pick 2 to 4 models and a prompt, the session with its columns, the next
turn (JSON, for the page's script), and "continue with this one"."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from webapp.access.services.audit import Caller, audit_refused_use
from webapp.catalog.policy import AccessRefused
from webapp.catalog.selectors import model_list_usable
from webapp.core.errors import ApplicationError, NotFound, ValidationFailed
from webapp.generations.limits import LimitReached
from webapp.generations.selectors import generation_summary

from . import selectors, services

_STATUS = {"not_found": 404, "forbidden": 403, "busy": 409}
NUMBERS = {"temperature": float, "top_p": float, "max_new_tokens": int, "seed": int}


@login_required
@require_GET
def compare_home(request: HttpRequest) -> HttpResponse:
    return render(request, "arena/compare/home.html", _home(request))


@login_required
@require_POST
def compare_new(request: HttpRequest) -> HttpResponse:
    chosen = request.POST.getlist("model")
    try:
        session = services.compare_start(
            user=request.user,
            model_slugs=chosen,
            content=request.POST.get("content"),
            params=_params(request.POST),
        )
    except ApplicationError as exc:
        _audit(request, exc)
        status = _status(exc)
        page = _home(request, error=exc, chosen=chosen, limited=isinstance(exc, LimitReached))
        return render(request, "arena/compare/home.html", page, status=status)
    return redirect(session)


@login_required
@require_GET
def compare_session(request: HttpRequest, session_id: str) -> HttpResponse:
    try:
        session = selectors.compare_get(user=request.user, session_id=session_id)
    except NotFound as exc:
        raise Http404(exc.detail) from exc
    data = selectors.compare_serialize(session, user=request.user)
    refused = [c for c in data["columns"] if c["refusal"]]
    context = {"session": session, "data": data, "refused": refused, "compare": session}
    return render(request, "arena/compare/session.html", context)


@require_POST
def compare_send(request: HttpRequest, session_id: str) -> JsonResponse:
    if not request.user.is_authenticated:
        return JsonResponse({"code": "signed_out", "detail": "Sign in first."}, status=401)
    try:
        row = services.compare_send(
            user=request.user, session_id=session_id, content=_body(request).get("content")
        )
    except ApplicationError as exc:
        _audit(request, exc)
        return JsonResponse(exc.as_dict(), status=_status(exc))
    replies = [
        {"column": str(r.column_id), **generation_summary(r.generation), "text": ""}
        for r in row.replies
    ]
    return JsonResponse(
        {"turn": {"id": str(row.turn.pk), "content": row.turn.content, "replies": replies}}
    )


@login_required
@require_POST
def compare_continue(request: HttpRequest, session_id: str, column_id: str) -> HttpResponse:
    try:
        conversation = services.compare_continue(
            user=request.user, session_id=session_id, column_id=column_id
        )
    except NotFound as exc:
        raise Http404(exc.detail) from exc
    except ApplicationError as exc:
        _audit(request, exc)
        messages.error(request, exc.detail)
        return redirect("compare:session", session_id=session_id)
    return redirect(conversation)


def _audit(request: HttpRequest, exc: ApplicationError) -> None:
    """An attempt the access rule refused goes into the audit log."""
    if isinstance(exc, AccessRefused):
        audit_refused_use(user=request.user, refused=exc, caller=Caller.of(request))


def _status(exc: ApplicationError) -> int:
    return 429 if isinstance(exc, LimitReached) else _STATUS.get(exc.code, 400)


def _body(request: HttpRequest) -> dict[str, Any]:
    if request.content_type != "application/json":
        return request.POST.dict()
    try:
        body = json.loads(request.body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationFailed("The request body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise ValidationFailed("The request body must be a JSON object.")
    return body


def _params(data: Any) -> dict[str, Any]:
    """Read the shared parameters from the form: a blank field keeps the model's default."""
    params: dict[str, Any] = {}
    for name, kind in NUMBERS.items():
        value = (data.get(name) or "").strip()
        if not value:
            continue
        try:
            params[name] = kind(value)
        except ValueError as exc:
            raise ValidationFailed(
                f"{name} must be a {'whole ' if kind is int else ''}number.",
                code="invalid_params",
            ) from exc
    return params


def _home(request: HttpRequest, **context: Any) -> dict[str, Any]:
    return {
        "models": model_list_usable(user=request.user, action="chat"),
        "sessions": selectors.compare_list(user=request.user),
        "form": request.POST if request.method == "POST" else {},
        "limits": services.MIN_MODELS,
        "most": services.MAX_MODELS,
        "chosen": [],
        **context,
    }
